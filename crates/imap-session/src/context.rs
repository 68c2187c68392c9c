//! What a session is given by the server that runs it: settings, the way to authenticate users and
//! open their mail, the STARTTLS upgrade, and facts about the connection.

use std::sync::Arc;
use std::time::Duration;

use auth::LoginPenalty;
use imap_proto::Limits;

/// The interfaces every protocol session shares live in `session-api`; re-exported here so that
/// users of this crate keep their paths.
pub use session_api::{
    AsyncStream, BoxedStream, ConnectionInfo, TlsUpgrade, UpgradeFuture, UserBackend,
};

/// IMAP settings that do not change per connection.
#[derive(Debug, Clone)]
pub struct ImapSettings {
    pub limits: Limits,
    /// Allow LOGIN and plaintext SASL on connections without TLS from non-loopback peers
    /// (Dovecot's `disable_plaintext_auth = no`). Loopback peers are always allowed.
    pub allow_plaintext_auth_without_tls: bool,
    /// Disconnect a client that has not logged in within this time.
    pub login_timeout: Duration,
    /// Disconnect an authenticated client idle this long (RFC 9051 5.4: at least 30 minutes).
    pub idle_timeout: Duration,
    /// How often IDLE checks the mailbox for changes made by other processes.
    pub idle_poll_interval: Duration,
    /// How often IDLE sends `* OK Still here` so that NAT boxes keep the connection.
    pub idle_keepalive: Duration,
    /// Failed logins on one connection before it is closed.
    pub max_auth_attempts: u32,
    /// Invalid commands in a row before the connection is closed.
    pub max_bad_commands: u32,
    /// Mailbox names and their special-use attribute (RFC 6154), as Dovecot's
    /// `special_use` settings: `("Sent", "\\Sent")`.
    pub special_use: Vec<(String, String)>,
    /// Mailboxes created and subscribed at login when they are missing (Dovecot's
    /// `auto = subscribe`); none by default here, the binary's configuration names them.
    pub auto_create: Vec<String>,
    /// Offer UTF8=ACCEPT (RFC 6855). Off by default: once it is advertised, RFC 6855 4 requires
    /// refusing an APPEND with 8-bit header bytes from every client that did not enable it, and
    /// migration tools copying old mail with raw 8-bit headers are such clients. Dovecot 2.3
    /// does not offer it either; IMAP4rev2 clients get UTF-8 names either way.
    pub utf8_accept: bool,
    /// Host names by which an absolute IMAP URL (RFC 5092 3) may name this server, lower-case,
    /// for CATENATE (RFC 4469 3); the address the client connected to is always accepted too.
    pub url_hosts: Vec<String>,
}

impl Default for ImapSettings {
    fn default() -> Self {
        ImapSettings {
            limits: Limits::default(),
            allow_plaintext_auth_without_tls: false,
            login_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(30 * 60),
            idle_poll_interval: Duration::from_millis(500),
            idle_keepalive: Duration::from_secs(2 * 60),
            max_auth_attempts: 3,
            max_bad_commands: 20,
            utf8_accept: false,
            // Debian's Dovecot default (15-mailboxes.conf), and Archive.
            special_use: [
                ("Drafts", "\\Drafts"),
                ("Junk", "\\Junk"),
                ("Trash", "\\Trash"),
                ("Sent", "\\Sent"),
                ("Sent Messages", "\\Sent"),
                ("Archive", "\\Archive"),
            ]
            .iter()
            .map(|(n, a)| ((*n).to_owned(), (*a).to_owned()))
            .collect(),
            auto_create: Vec::new(),
            url_hosts: vec!["localhost".to_owned()],
        }
    }
}

/// Everything sessions of one listener share.
pub struct SessionContext {
    pub settings: ImapSettings,
    pub backend: Arc<dyn UserBackend>,
    /// `None` when STARTTLS is not offered (no certificate, or already implicit TLS).
    pub starttls: Option<Arc<dyn TlsUpgrade>>,
    pub penalty: Arc<LoginPenalty>,
}
