//! What a session is given by the server that runs it: settings, the way to authenticate users and
//! open their mail, the STARTTLS upgrade, and facts about the connection.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use auth::{AuthError, AuthOutcome, UserRecord};
use imap_proto::Limits;
use mail_store::{MailStore, StoreError};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::penalty::LoginPenalty;

/// Any bidirectional byte stream: a TCP socket, a TLS stream, an in-memory pipe in tests.
pub trait AsyncStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> AsyncStream for T {}

pub type BoxedStream = Box<dyn AsyncStream>;

/// Result of a TLS handshake started by STARTTLS.
pub type UpgradeFuture = Pin<Box<dyn Future<Output = io::Result<BoxedStream>> + Send>>;

/// Performs the server side of a TLS handshake on an established stream (RFC 3501 6.2.1). The
/// binary implements it with rustls; the session only knows that it exists.
pub trait TlsUpgrade: Send + Sync {
    fn upgrade(&self, stream: BoxedStream) -> UpgradeFuture;
}

/// Checks credentials and opens mail. Implemented by the binary over the `auth` crate's
/// databases and the configured mail location. Both calls may block (password hashing, disk).
pub trait UserBackend: Send + Sync {
    fn authenticate(&self, username: &str, password: &[u8]) -> Result<AuthOutcome, AuthError>;
    fn open_store(&self, user: &UserRecord) -> Result<Arc<dyn MailStore>, StoreError>;
}

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
}

impl Default for ImapSettings {
    fn default() -> Self {
        ImapSettings {
            limits: Limits::default(),
            allow_plaintext_auth_without_tls: false,
            login_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(30 * 60),
            idle_poll_interval: Duration::from_secs(1),
            idle_keepalive: Duration::from_secs(2 * 60),
            max_auth_attempts: 3,
            max_bad_commands: 20,
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

/// Facts about one connection, for policy and for the log.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    pub remote: SocketAddr,
    pub local: SocketAddr,
    /// TLS from the first byte (IMAPS, port 993).
    pub implicit_tls: bool,
    /// A short random id that ties this connection's log lines together (Dovecot's `session=<>`).
    pub session_id: String,
}
