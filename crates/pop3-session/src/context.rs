//! What a POP3 session is given by the server that runs it: settings, the way to authenticate
//! users and open their mail, the STLS upgrade, the shared login penalty and maildrop locks.

use std::sync::Arc;
use std::time::Duration;

use auth::LoginPenalty;
use session_api::{TlsUpgrade, UserBackend};

use crate::lock::MaildropLocks;
use crate::uidl::UidlFormat;

/// POP3 settings that do not change per connection.
#[derive(Debug, Clone)]
pub struct Pop3Settings {
    /// Longest command line, without its CRLF. RFC 2449 4 says 255 octets; long passwords need
    /// more, as other servers allow.
    pub max_line: usize,
    /// Allow USER/PASS and plaintext SASL on connections without TLS from non-loopback peers
    /// (Dovecot's `disable_plaintext_auth = no`). Loopback peers are always allowed.
    pub allow_plaintext_auth_without_tls: bool,
    /// Disconnect a client that has not logged in within this time.
    pub login_timeout: Duration,
    /// Disconnect a logged-in client silent this long, without entering UPDATE (RFC 1939 3:
    /// the autologout timer is at least 10 minutes).
    pub idle_timeout: Duration,
    /// Failed logins on one connection before it is closed.
    pub max_auth_attempts: u32,
    /// Invalid commands in a row before the connection is closed.
    pub max_bad_commands: u32,
    /// How UIDLs are made for messages without a stored one (Dovecot's `pop3_uidl_format`).
    pub uidl_format: UidlFormat,
    /// One POP3 session per user at a time (Dovecot's `pop3_lock_session`); a second one gets
    /// `-ERR [IN-USE]`. IMAP sessions are never locked out.
    pub lock_session: bool,
}

impl Default for Pop3Settings {
    fn default() -> Self {
        Pop3Settings {
            max_line: 1024,
            allow_plaintext_auth_without_tls: false,
            login_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(10 * 60),
            max_auth_attempts: 3,
            max_bad_commands: 20,
            uidl_format: UidlFormat::default(),
            lock_session: true,
        }
    }
}

/// Everything sessions of one listener share. The penalty and the locks must be the same
/// objects for every listener (and the penalty the one IMAP uses), or they protect nothing.
pub struct SessionContext {
    pub settings: Pop3Settings,
    pub backend: Arc<dyn UserBackend>,
    /// `None` when STLS is not offered (no certificate, or already implicit TLS).
    pub starttls: Option<Arc<dyn TlsUpgrade>>,
    pub penalty: Arc<LoginPenalty>,
    pub locks: Arc<MaildropLocks>,
}
