//! What the server binary hands a protocol session, whichever the protocol: the byte stream, the
//! STARTTLS upgrade, the way to check a password and open a user's mail, and facts about the
//! connection. `imap-session`, `pop3-session` and `lmtp-session` code against these types, so
//! the binary implements each of them once and no protocol depends on another. Beside them,
//! what several protocols do alike: swapping the stream for a TLS one, writing the login log
//! lines in Dovecot's shape, the user's quota (IMAP reports and enforces it, delivery enforces
//! it: [`quota`]) and storing a delivered message ([`delivery`]).
//!
//! This crate owns only these interfaces. It knows no protocol syntax, no sockets or TLS library
//! (a stream is any `AsyncRead + AsyncWrite`), no password database and no mailbox format.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use auth::sasl::Mechanism;
use auth::{AuthError, AuthOutcome, LoginPenalty, UserRecord};
use mail_store::{MailStore, StoreError};
use tokio::io::{AsyncRead, AsyncWrite};

pub mod delivery;
mod login_policy;
pub mod quota;
mod sasl;

pub use login_policy::{LoginPolicy, Referral};
pub use sasl::{
    SaslExchange, offered_mechanisms, sasl_step, start_external_sasl, start_mechanism, start_sasl,
};

/// Any bidirectional byte stream: a TCP socket, a TLS stream, an in-memory pipe in tests.
pub trait AsyncStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> AsyncStream for T {}

pub type BoxedStream = Box<dyn AsyncStream>;

/// Result of a TLS handshake started by STARTTLS or STLS.
pub type UpgradeFuture = Pin<Box<dyn Future<Output = io::Result<BoxedStream>> + Send>>;

/// A TLS handshake's stream and the user a verified client certificate names, if the client
/// presented one (see [`TlsUpgrade::upgrade_verified`]).
pub type VerifiedUpgradeFuture =
    Pin<Box<dyn Future<Output = io::Result<(BoxedStream, Option<String>)>> + Send>>;

/// Performs the server side of a TLS handshake on an established stream (IMAP STARTTLS,
/// RFC 3501 6.2.1; POP3 STLS, RFC 2595 4). The binary implements it with rustls; sessions only
/// know that it exists.
pub trait TlsUpgrade: Send + Sync {
    fn upgrade(&self, stream: BoxedStream) -> UpgradeFuture;

    /// [`TlsUpgrade::upgrade`], also giving the user the client's certificate names when the
    /// binary verifies client certificates and the client presented one that verified: the
    /// identity SASL EXTERNAL logs in (RFC 4422 Appendix A). The default verifies none.
    fn upgrade_verified(&self, stream: BoxedStream) -> VerifiedUpgradeFuture {
        let upgraded = self.upgrade(stream);
        Box::pin(async move { Ok((upgraded.await?, None)) })
    }
}

/// Checks credentials and opens mail. Implemented by the binary over the `auth` crate's
/// databases and the configured mail location. `authenticate`, `open_store` and the steps of
/// an exchange may block (password hashing, disk, PAM).
pub trait UserBackend: Send + Sync {
    fn authenticate(&self, username: &str, password: &[u8]) -> Result<AuthOutcome, AuthError>;
    fn open_store(&self, user: &UserRecord) -> Result<Arc<dyn MailStore>, StoreError>;

    /// The SASL mechanisms to offer (IMAP `AUTH=`, POP3 `SASL`), in order. Sessions offer the
    /// plaintext ones only where a password may be sent in the clear.
    fn mechanisms(&self) -> Vec<Mechanism> {
        Mechanism::PLAINTEXT.to_vec()
    }

    /// Starts a SASL exchange for one of [`UserBackend::mechanisms`]. `None` (the default)
    /// runs PLAIN and LOGIN over [`UserBackend::authenticate`] instead; see [`start_sasl`].
    fn sasl_exchange(&self, mechanism: Mechanism) -> Option<Box<dyn SaslExchange>> {
        let _ = mechanism;
        None
    }

    /// Starts SASL EXTERNAL for a connection whose verified TLS client certificate names
    /// `identity`; `None` (the default) when EXTERNAL is not offered. See
    /// [`start_external_sasl`].
    fn sasl_external(&self, identity: &str) -> Option<Box<dyn SaslExchange>> {
        let _ = identity;
        None
    }

    /// Where a logged-in user's mail is served. `None` (the default): in this process, by the
    /// same session, through [`UserBackend::open_store`]. `Some`: this process only logs users
    /// in (the unprivileged login process of privilege separation); the session hands the
    /// connection over instead of opening mail, and [`UserBackend::open_store`] is never called.
    fn login_hand_off(&self) -> Option<&dyn LoginHandOff> {
        None
    }

    /// Counts a logged-in connection of `user` speaking `protocol` ("imap", "pop3") against
    /// the per-(user, address) limit (Dovecot's
    /// `mail_max_userip_connections`). The session holds the returned slot while it is logged
    /// in; dropping it gives the place back. The default counts nothing.
    fn claim_connection(
        &self,
        protocol: &'static str,
        user: &str,
        connection: &ConnectionInfo,
    ) -> Result<Option<ConnectionSlot>, TooManyConnections> {
        let _ = (protocol, user, connection);
        Ok(None)
    }
}

/// A logged-in connection's place in its user's per-address count (see
/// [`UserBackend::claim_connection`]).
pub type ConnectionSlot = Box<dyn Send + Sync>;

/// The user already has `max` connections of this protocol from this address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyConnections {
    pub max: usize,
}

impl std::fmt::Display for TooManyConnections {
    /// Dovecot's wording, which administrators search their logs for.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Maximum number of connections from user+IP exceeded (mail_max_userip_connections={})",
            self.max
        )
    }
}

/// A connection whose user has just proved who they are, on its way from the login process to
/// the process that serves that user's mail. The receiving session resumes exactly where the
/// login session stopped: it opens the mail, answers the login command, then reads
/// `pending_input` before anything else from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedIn {
    pub user: UserRecord,
    /// The login method for the log line (`PLAIN`, `SCRAM-SHA-256`, ...).
    pub method: String,
    /// The IMAP tag of the LOGIN or AUTHENTICATE command, still unanswered. POP3: `None`.
    pub tag: Option<String>,
    /// Bytes the client sent after the login command (pipelined commands), not yet decoded.
    pub pending_input: Vec<u8>,
    /// The connection is encrypted (implicit TLS, STARTTLS or STLS).
    pub tls: bool,
}

/// Hands a logged-in connection to the process that serves the user's mail (see
/// [`UserBackend::login_hand_off`]). The returned future lives as long as the connection does
/// from this side, e.g. while the login process relays its TLS stream.
pub trait LoginHandOff: Send + Sync {
    fn hand_off(
        &self,
        stream: BoxedStream,
        info: ConnectionInfo,
        login: LoggedIn,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>>;
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

/// Replaces `stream` with the TLS stream `upgrader` makes of it (after the protocol's "begin TLS
/// now" reply has been flushed), and returns the user a verified client certificate names, if
/// any (SASL EXTERNAL's identity; see [`TlsUpgrade::upgrade_verified`]). On failure the old
/// stream is gone, and the connection must end.
pub async fn upgrade_in_place(
    stream: &mut BoxedStream,
    upgrader: &dyn TlsUpgrade,
) -> io::Result<Option<String>> {
    let plain = std::mem::replace(stream, Box::new(tokio::io::empty()));
    let (upgraded, client_user) = upgrader.upgrade_verified(plain).await?;
    *stream = upgraded;
    Ok(client_user)
}

impl ConnectionInfo {
    /// `rip=…, lip=…, [TLS, ]session=<…>`: how Dovecot's login lines name a connection.
    pub fn log_fields(&self, tls: bool) -> String {
        format!(
            "rip={}, lip={}, {}session=<{}>",
            self.remote.ip(),
            self.local.ip(),
            if tls { "TLS, " } else { "" },
            self.session_id
        )
    }
}

/// Logs a successful login as Dovecot does: `imap-login: Login: user=<…>, method=PLAIN, rip=…`.
/// `process` is the login process's name (`imap-login`, `pop3-login`).
pub fn log_login(process: &str, user: &str, method: &str, info: &ConnectionInfo, tls: bool) {
    tracing::info!(
        "{process}: Login: user=<{}>, method={method}, {}",
        printable(user),
        info.log_fields(tls)
    );
}

/// A failed login: counts it against the peer's address in the shared `penalty`, logs it as
/// Dovecot does (with `attempts` on this connection and the delay), and waits out the delay
/// before the protocol answers — so more connections do not buy an attacker faster guesses.
pub async fn failed_login(
    penalty: &LoginPenalty,
    process: &str,
    user: &str,
    method: &str,
    info: &ConnectionInfo,
    tls: bool,
    attempts: u32,
) {
    let delay = penalty.record_failure(info.remote.ip());
    tracing::info!(
        "{process}: Authentication failed: user=<{}>, method={method}, {}, attempts={attempts}, delay={}ms",
        printable(user),
        info.log_fields(tls),
        delay.as_millis()
    );
    tokio::time::sleep(delay).await;
}

/// A client-supplied name made safe for one log line: at most 64 characters, no control
/// characters (a CR or LF would forge a line).
fn printable(name: &str) -> String {
    name.chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_fields_and_names() {
        let info = ConnectionInfo {
            remote: "192.0.2.1:5000".parse().unwrap(),
            local: "127.0.0.1:110".parse().unwrap(),
            implicit_tls: false,
            session_id: "abc".into(),
        };
        assert_eq!(
            info.log_fields(true),
            "rip=192.0.2.1, lip=127.0.0.1, TLS, session=<abc>"
        );
        assert_eq!(
            info.log_fields(false),
            "rip=192.0.2.1, lip=127.0.0.1, session=<abc>"
        );
        assert_eq!(printable("ev\r\nil"), "ev??il");
        assert_eq!(printable(&"x".repeat(100)).len(), 64);
    }
}
