//! Who a user is and whether they proved it: password databases (passdb), user databases
//! (userdb), password hash schemes, SASL mechanisms as pure step machines, and the per-address
//! delay that makes failed logins expensive (shared by every protocol).
//!
//! This crate owns credential checking. It knows nothing of IMAP or POP3 framing (a SASL
//! mechanism consumes and produces raw bytes; base64 and continuation lines are the protocol's
//! business), nothing of sockets and nothing of mail storage: a successful check yields a
//! [`UserRecord`], which the server turns into a mail store.
//!
//! The shape is Dovecot's: a [`PassDb`] checks credentials (passwd-file, `/etc/shadow`, PAM,
//! a checkpassword program, SQL), a [`UserDb`] says who the user is on the system (uid, gid,
//! home: passwd-file, `getpwnam`, a static template, SQL), and an [`Authenticator`] joins the
//! two, refuses uids outside the allowed range and runs SASL exchanges ([`Exchange`]). Every
//! piece is a plain value without global state, so the same code can later run inside a
//! separate, privileged auth process that answers an unprivileged login process.
//!
//! The types below are the interface other crates code against: keep their signatures stable.

mod authenticator;
mod cache;
pub mod cert;
pub mod checkpassword;
pub mod crypt;
mod http;
pub mod oauth2;
pub mod pam;
pub mod passwd_file;
mod penalty;
pub mod sasl;
pub mod scheme;
pub mod scram;
pub mod shadow;
pub mod sql;
pub mod system;
pub mod userdb;

pub use authenticator::{
    AuthSettings, Authenticator, Exchange, ExchangeStep, Failure, FailureKind, UidRange, UserLookup,
};
pub use penalty::LoginPenalty;

use std::path::PathBuf;

use zeroize::Zeroizing;

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

impl UserRecord {
    /// A record with a name and nothing else.
    pub fn named(name: impl Into<String>) -> UserRecord {
        UserRecord {
            name: name.into(),
            uid: None,
            gid: None,
            home: None,
            extra: Vec::new(),
        }
    }
}

/// The result of a password check. The protocol layers answer the two failures identically, so
/// a client cannot probe for user names; the log tells them apart.
///
/// `WrongPassword` also covers a right password that may not log in: a locked or expired
/// account, or a uid outside the allowed range. The crate logs which it was.
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
    /// A backend that could not give an answer (PAM or a checkpassword program failing, a
    /// system lookup error): a temporary failure, not a wrong password.
    #[error("{backend}: {reason}")]
    Backend {
        backend: &'static str,
        reason: String,
    },
    /// A configuration that cannot work (a mechanism the passdb cannot serve, an unknown
    /// static uid): reported when the authenticator is built.
    #[error("authentication configuration: {0}")]
    Config(String),
}

/// A secret a challenge-response mechanism can check a proof against. `Debug` shows no secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// The password itself (`{PLAIN}` in a passwd-file): serves CRAM-MD5 and SCRAM.
    Plaintext(Zeroizing<Vec<u8>>),
    /// SCRAM keys (`{SCRAM-SHA-1}`, `{SCRAM-SHA-256}`): serve that SCRAM mechanism only.
    Scram(scram::ScramKeys),
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Secret::Plaintext(_) => f.write_str("Plaintext(<redacted>)"),
            Secret::Scram(keys) => f.debug_tuple("Scram").field(keys).finish(),
        }
    }
}

/// What a passdb holds for a user, for a challenge-response mechanism.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialLookup {
    Found {
        secret: Secret,
        record: UserRecord,
    },
    UnknownUser,
    /// The user exists, but what is stored is a one-way hash no challenge can be checked with.
    NotAvailable,
}

/// A password database (Dovecot's passdb): checks credentials.
pub trait PassDb: Send + Sync {
    /// Checks a plaintext password (RFC 4616 PLAIN, LOGIN, IMAP LOGIN, POP3 PASS).
    fn verify_plain(&self, user: &str, password: &[u8]) -> Result<AuthOutcome, AuthError>;

    /// Whether [`PassDb::lookup_credentials`] can ever find a secret: mechanisms such as
    /// CRAM-MD5 and SCRAM are offered only over a passdb that says so.
    fn supports_credentials(&self) -> bool {
        false
    }

    /// The stored secret of `user`, for a challenge-response mechanism.
    fn lookup_credentials(&self, user: &str) -> Result<CredentialLookup, AuthError> {
        let _ = user;
        Ok(CredentialLookup::NotAvailable)
    }
}

/// A user database (Dovecot's userdb): who a user is on this system.
pub trait UserDb: Send + Sync {
    /// The record of `user` (the canonical name the passdb gave), `None` when unknown.
    fn lookup(&self, user: &str) -> Result<Option<UserRecord>, AuthError>;
}

/// Reads a secret kept in a file of its own (an OAuth client secret, a database password),
/// without its final line end.
pub fn read_secret_file(path: &std::path::Path) -> Result<Zeroizing<String>, AuthError> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|source| AuthError::Io {
            path: path.to_owned(),
            source,
        })?,
    );
    Ok(Zeroizing::new(
        text.trim_end_matches(['\r', '\n']).to_owned(),
    ))
}
