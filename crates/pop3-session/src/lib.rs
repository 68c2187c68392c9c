//! The POP3 session engine: the AUTHORIZATION, TRANSACTION and UPDATE states of RFC 1939 with
//! the extensions of RFC 2449 (CAPA, response codes), RFC 5034 (AUTH) and RFC 2595 (STLS), and
//! one handler file per command family under `cmd/`.
//!
//! This crate owns what a POP3 conversation means: message numbers fixed for the session,
//! deletion marks that take effect only at QUIT, UIDLs, the maildrop lock. It reads and writes a
//! byte stream it is given (sockets and TLS belong to the binary, which also supplies the STLS
//! upgrade), parses with `pop3-proto`, and reaches mail only through the `mail-store` traits —
//! and only after authentication, through the store a successful login yields. It knows no file
//! paths, no Maildir, no MIME and nothing of IMAP.

mod cmd;
mod context;
mod lock;
mod maildrop;
mod session;
mod uidl;

pub use context::{Pop3Settings, SessionContext};
pub use lock::{MaildropGuard, MaildropLocks};
pub use session::{serve, serve_logged_in, serve_tls};
pub use session_api::{
    AsyncStream, BoxedStream, ConnectionInfo, TlsUpgrade, UpgradeFuture, UserBackend,
};
pub use uidl::{UidlFormat, UidlFormatError};
