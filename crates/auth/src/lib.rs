//! Who a user is and whether they proved it: password databases (passdb), user databases
//! (userdb), password hash schemes, SASL mechanisms as pure step machines, and the per-address
//! delay that makes failed logins expensive (shared by every protocol).
//!
//! This crate owns credential checking. It knows nothing of IMAP or POP3 framing (a SASL
//! mechanism consumes and produces raw bytes; base64 and continuation lines are the protocol's
//! business), nothing of sockets and nothing of mail storage: a successful check yields a
//! [`UserRecord`], which the server turns into a mail store.
//!
//! The types below are the interface other crates code against: keep their signatures stable.

pub mod passwd_file;
mod penalty;
pub mod sasl;
pub mod scheme;

pub use penalty::LoginPenalty;

use std::path::PathBuf;

/// What the passdb/userdb knows about an authenticated user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The canonical user name.
    pub name: String,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub home: Option<PathBuf>,
    /// `key=value` fields of the passwd-file's extra column (e.g. `userdb_mail=...`).
    pub extra: Vec<(String, String)>,
}

/// The result of a password check. The protocol layers answer the two failures identically, so
/// a client cannot probe for user names; the log tells them apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    Success(UserRecord),
    UnknownUser,
    WrongPassword,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("password database {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("password database {path} line {line}: {reason}")]
    Malformed {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("unsupported password scheme {0}")]
    UnsupportedScheme(String),
}

/// A password database that can check a plaintext password (RFC 4616 PLAIN, LOGIN, IMAP LOGIN).
pub trait PassDb: Send + Sync {
    fn verify_plain(&self, user: &str, password: &[u8]) -> Result<AuthOutcome, AuthError>;
}
