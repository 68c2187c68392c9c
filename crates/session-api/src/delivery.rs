//! Storing one incoming message for one user, as the local delivery agent (`columba deliver`)
//! and the LMTP server both do: the target mailbox chosen as Dovecot's LDA chooses it, the
//! user's quota checked first, the message committed (and so fsynced) through the same
//! [`MailStore`] IMAP reads, so sessions with the mailbox selected see it at their next sync.

use std::borrow::Cow;

use auth::UserRecord;
use mail_store::{MailStore, StoreError};
use mail_types::{Flags, MailboxName, Uid};

use crate::quota::QuotaLimits;

/// Why a message was not stored.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The message would take the user over a quota limit (RFC 9208).
    #[error("{}", crate::quota::QUOTA_EXCEEDED_MESSAGE)]
    OverQuota,
    /// The store failed (disk, lock, permissions): worth trying again later.
    #[error("storing the message failed: {0}")]
    Store(#[from] StoreError),
}

/// Where a message went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub mailbox: MailboxName,
    pub uid: Uid,
}

/// Stores `message` (LF or CRLF line ends; stored as the store keeps them) in `user`'s
/// `mailbox`, with no flags and INTERNALDATE now. A mailbox that is not given, whose name is
/// not valid, or that does not exist means INBOX: a delivery never creates mailboxes, and a
/// save that fails for another reason than quota is tried once more into INBOX (Dovecot's
/// `lda_mailbox_autocreate = no` behaviour, and its fallback).
pub fn deliver(
    store: &dyn MailStore,
    user: &UserRecord,
    mailbox: Option<&str>,
    message: &[u8],
) -> Result<Delivered, DeliveryError> {
    let message = to_crlf(message);
    let limits = QuotaLimits::of(user);
    if limits.would_exceed(store, message.len() as u64, 1)? {
        return Err(DeliveryError::OverQuota);
    }
    let target = target_mailbox(store, mailbox);
    match save(store, &target, &message) {
        Ok(uid) => Ok(Delivered {
            mailbox: target,
            uid,
        }),
        Err(e) if !target.is_inbox() => {
            tracing::warn!(
                user = %user.name,
                "saving to {target} failed ({e}); delivering to INBOX instead"
            );
            let inbox = MailboxName::inbox();
            let uid = save(store, &inbox, &message)?;
            Ok(Delivered {
                mailbox: inbox,
                uid,
            })
        }
        Err(e) => Err(e.into()),
    }
}

fn save(store: &dyn MailStore, name: &MailboxName, message: &[u8]) -> Result<Uid, StoreError> {
    let mailbox = store.open(name)?;
    let mut writer = mailbox.begin_append()?;
    writer.write(message)?;
    writer.commit(Flags::default(), None)
}

/// The mailbox a delivery asked for, if it exists; INBOX otherwise. The name is UTF-8, or
/// modified UTF-7 as IMAP clients show it (`-m Caf&AOk-`).
pub fn target_mailbox(store: &dyn MailStore, requested: Option<&str>) -> MailboxName {
    let Some(requested) = requested.filter(|n| !n.is_empty()) else {
        return MailboxName::inbox();
    };
    let utf8 = if requested.contains('&') {
        mail_types::utf7::decode(requested.as_bytes()).unwrap_or_else(|_| requested.to_owned())
    } else {
        requested.to_owned()
    };
    let Ok(name) = MailboxName::new(&utf8) else {
        tracing::info!("delivery to an invalid mailbox name {requested:?}: using INBOX");
        return MailboxName::inbox();
    };
    if name.is_inbox() {
        return name;
    }
    let exists = store
        .list()
        .map(|entries| entries.iter().any(|e| e.selectable && e.name == name))
        .unwrap_or(false);
    if exists {
        name
    } else {
        tracing::info!("delivery to mailbox {name}, which does not exist: using INBOX");
        MailboxName::inbox()
    }
}

/// The message with every line ending in CRLF (a bare LF becomes CRLF), as
/// [`mail_store::AppendWriter::write`] takes it and as RFC822.SIZE counts it.
pub fn to_crlf(message: &[u8]) -> Cow<'_, [u8]> {
    let bare_lf = message
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || message[i - 1] != b'\r'));
    if !bare_lf {
        return Cow::Borrowed(message);
    }
    let mut out = Vec::with_capacity(message.len() + message.len() / 32);
    let mut previous = 0u8;
    for &b in message {
        if b == b'\n' && previous != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        previous = b;
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use mail_store::maildir::MaildirStore;

    use super::*;

    fn store() -> (tempfile::TempDir, Arc<dyn MailStore>) {
        let dir = tempfile::tempdir().unwrap();
        let store = MaildirStore::new(dir.path().join("Maildir")).unwrap();
        (dir, Arc::new(store))
    }

    #[test]
    fn line_ends_become_crlf() {
        assert_eq!(&*to_crlf(b"a\r\nb\r\n"), b"a\r\nb\r\n");
        assert!(matches!(to_crlf(b"a\r\n"), Cow::Borrowed(_)));
        assert_eq!(&*to_crlf(b"a\nb\r\n\n"), b"a\r\nb\r\n\r\n");
        assert_eq!(&*to_crlf(b"\n"), b"\r\n");
        assert_eq!(&*to_crlf(b"no end"), b"no end");
    }

    #[test]
    fn missing_or_invalid_mailboxes_mean_inbox() {
        let (_dir, store) = store();
        store.create(&MailboxName::new("Lists").unwrap()).unwrap();
        store.create(&MailboxName::new("Café").unwrap()).unwrap();
        let target = |n| target_mailbox(store.as_ref(), n).as_str().to_owned();
        assert_eq!(target(None), "INBOX");
        assert_eq!(target(Some("")), "INBOX");
        assert_eq!(target(Some("inbox")), "INBOX");
        assert_eq!(target(Some("Lists")), "Lists");
        assert_eq!(target(Some("Café")), "Café");
        assert_eq!(target(Some("Caf&AOk-")), "Café");
        assert_eq!(target(Some("Nowhere")), "INBOX");
        assert_eq!(target(Some("../etc")), "INBOX");
        assert_eq!(target(Some("a\nb")), "INBOX");
    }

    #[test]
    fn delivers_and_refuses_over_quota() {
        let (_dir, store) = store();
        let mut user = UserRecord::named("u");
        user.extra = vec![("quota_rule".into(), "*:messages=2".into())];
        let message = b"Subject: hi\n\nbody\n";
        for expected in 1..=2 {
            let done = deliver(store.as_ref(), &user, None, message).unwrap();
            assert_eq!(done.mailbox, MailboxName::inbox());
            assert_eq!(done.uid.get(), expected);
        }
        assert!(matches!(
            deliver(store.as_ref(), &user, None, message),
            Err(DeliveryError::OverQuota)
        ));
        let inbox = store.open(&MailboxName::inbox()).unwrap();
        let uid = inbox.snapshot(false).unwrap().messages[0].uid;
        assert_eq!(
            inbox.read_message(uid).unwrap(),
            b"Subject: hi\r\n\r\nbody\r\n"
        );
    }
}
