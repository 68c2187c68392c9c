//! A closed set of storage failures, after Dovecot's `mail-error.h`: the protocol layers map each
//! kind to a fixed client-visible reply, and only the log sees the detail.

use std::io;
use std::path::PathBuf;

use mail_types::UidValidity;

/// What kind of failure, as far as a client may know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// The mailbox does not exist.
    NotFound,
    AlreadyExists,
    /// The name is not acceptable to this storage (too long, reserved, unrepresentable).
    InvalidName,
    /// The operation is not allowed on this mailbox (deleting INBOX, renaming into itself).
    NotPossible,
    /// The message was expunged.
    Expunged,
    /// Another process holds a lock for too long.
    InUse,
    NoPermission,
    OverQuota,
    /// Anything else: the detail goes to the log, the client gets a generic message.
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("mailbox does not exist: {0}")]
    NotFound(String),
    #[error("mailbox already exists: {0}")]
    AlreadyExists(String),
    #[error("invalid mailbox name: {0}")]
    InvalidName(String),
    #[error("not possible: {0}")]
    NotPossible(String),
    #[error("message was expunged")]
    Expunged,
    #[error("mailbox is in use: {0}")]
    InUse(String),
    #[error("permission denied: {0}")]
    NoPermission(String),
    #[error("quota exceeded")]
    OverQuota,
    /// The selected mailbox got a new UIDVALIDITY under a session ([`crate::MailboxView::sync`]):
    /// the session cannot go on (RFC 3501 2.3.1.1) and must end.
    #[error("UIDVALIDITY changed from {was} to {now}")]
    UidValidityChanged { was: UidValidity, now: UidValidity },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{0}")]
    Internal(String),
}

impl StoreError {
    pub fn kind(&self) -> StoreErrorKind {
        match self {
            StoreError::NotFound(_) => StoreErrorKind::NotFound,
            StoreError::AlreadyExists(_) => StoreErrorKind::AlreadyExists,
            StoreError::InvalidName(_) => StoreErrorKind::InvalidName,
            StoreError::NotPossible(_) => StoreErrorKind::NotPossible,
            StoreError::Expunged => StoreErrorKind::Expunged,
            StoreError::InUse(_) => StoreErrorKind::InUse,
            StoreError::NoPermission(_) => StoreErrorKind::NoPermission,
            StoreError::OverQuota => StoreErrorKind::OverQuota,
            StoreError::Io { source, .. } if source.kind() == io::ErrorKind::PermissionDenied => {
                StoreErrorKind::NoPermission
            }
            // Only a session's view returns it, and the session ends on it rather than reply.
            StoreError::UidValidityChanged { .. } => StoreErrorKind::Internal,
            StoreError::Io { .. } | StoreError::Internal(_) => StoreErrorKind::Internal,
        }
    }

    /// Wraps an I/O error with the path it concerns, so logs say which file failed.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        StoreError::Io {
            path: path.into(),
            source,
        }
    }
}
