//! The IMAP session engine: the connection state machine (not authenticated, authenticated,
//! selected, logout — RFC 3501 3) and one handler file per command family under `cmd/`.
//!
//! This crate owns what an IMAP conversation means. It reads and writes a byte stream it is given
//! (any `AsyncRead + AsyncWrite`; sockets and TLS belong to the binary, which also supplies the
//! STARTTLS upgrade), parses with `imap-proto`, reads messages with `mail-parse`, and reaches mail
//! only through the `mail-store` traits — and only after authentication, through the store that a
//! successful login yields. It knows no file paths, no Maildir and no socket addresses beyond
//! the ones it is told for logging and policy.

mod capability;
mod cmd;
mod context;
pub mod fetch;
mod names;
mod session;

/// Moved to `auth` so that POP3 shares it; re-exported for existing users.
pub use auth::LoginPenalty;
pub use context::{
    AsyncStream, BoxedStream, ConnectionInfo, ImapSettings, SessionContext, TlsUpgrade,
    UpgradeFuture, UserBackend,
};
pub use session::{serve, serve_logged_in, serve_tls};
