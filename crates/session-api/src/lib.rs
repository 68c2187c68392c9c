//! What the server binary hands a protocol session, whichever the protocol: the byte stream, the
//! STARTTLS upgrade, the way to check a password and open a user's mail, and facts about the
//! connection. `imap-session` and `pop3-session` both code against these types, so the binary
//! implements each of them once and neither protocol depends on the other.
//!
//! This crate owns only these interfaces. It knows no protocol syntax, no sockets or TLS library
//! (a stream is any `AsyncRead + AsyncWrite`), no password database and no mailbox format.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use auth::{AuthError, AuthOutcome, UserRecord};
use mail_store::{MailStore, StoreError};
use tokio::io::{AsyncRead, AsyncWrite};

/// Any bidirectional byte stream: a TCP socket, a TLS stream, an in-memory pipe in tests.
pub trait AsyncStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> AsyncStream for T {}

pub type BoxedStream = Box<dyn AsyncStream>;

/// Result of a TLS handshake started by STARTTLS or STLS.
pub type UpgradeFuture = Pin<Box<dyn Future<Output = io::Result<BoxedStream>> + Send>>;

/// Performs the server side of a TLS handshake on an established stream (IMAP STARTTLS,
/// RFC 3501 6.2.1; POP3 STLS, RFC 2595 4). The binary implements it with rustls; sessions only
/// know that it exists.
pub trait TlsUpgrade: Send + Sync {
    fn upgrade(&self, stream: BoxedStream) -> UpgradeFuture;
}

/// Checks credentials and opens mail. Implemented by the binary over the `auth` crate's
/// databases and the configured mail location. Both calls may block (password hashing, disk).
pub trait UserBackend: Send + Sync {
    fn authenticate(&self, username: &str, password: &[u8]) -> Result<AuthOutcome, AuthError>;
    fn open_store(&self, user: &UserRecord) -> Result<Arc<dyn MailStore>, StoreError>;
}

/// Facts about one connection, for policy and for the log.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    pub remote: SocketAddr,
    pub local: SocketAddr,
    /// TLS from the first byte (IMAPS on 993, POP3S on 995).
    pub implicit_tls: bool,
    /// A short random id that ties this connection's log lines together (Dovecot's `session=<>`).
    pub session_id: String,
}
