//! The maildrop as one POP3 session sees it: the INBOX's messages numbered when the session
//! entered the TRANSACTION state, with their sizes and the session's deletion marks.
//!
//! RFC 1939 5: message numbers stay fixed for the session, and a message marked deleted keeps
//! its number but is no longer counted or listed. Sizes are the store's RFC822.SIZE (octets of
//! the CRLF form, from the index), so STAT, LIST and the `+OK` of RETR agree with the bytes sent.

use std::sync::Arc;

use mail_store::{Mailbox, StoreError, StoreErrorKind};
use mail_types::{MailboxName, Uid, UidValidity};

use crate::lock::MaildropGuard;

/// One message of the listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub uid: Uid,
    pub size: u64,
    /// Marked by DELE; undone by RSET; applied at QUIT.
    pub deleted: bool,
    /// Sent in full by RETR (gets `\Seen` at QUIT).
    pub retrieved: bool,
}

/// Why a message number cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    NoSuchMessage(u32),
    Deleted,
}

impl Lookup {
    /// The reply text, as Dovecot words it.
    pub fn text(self) -> String {
        match self {
            Lookup::NoSuchMessage(n) => format!("There's no message {n}."),
            Lookup::Deleted => "Message is deleted.".to_owned(),
        }
    }
}

/// The TRANSACTION state's data.
pub(crate) struct Maildrop {
    pub mailbox: Arc<dyn Mailbox>,
    pub uid_validity: UidValidity,
    pub entries: Vec<Entry>,
    /// Held for the whole session when `lock_session` is on.
    pub _lock: Option<MaildropGuard>,
}

impl Maildrop {
    /// Opens the INBOX and numbers its messages. Reads only the index: sizes come from it (for
    /// Maildir, the `W=` size in file names or `dovecot-uidlist`). Blocking.
    pub fn open(
        store: &dyn mail_store::MailStore,
        lock: Option<MaildropGuard>,
    ) -> Result<Maildrop, StoreError> {
        let mailbox = store.open(&MailboxName::inbox())?;
        mailbox.refresh()?;
        let snapshot = mailbox.snapshot(false)?;
        let mut entries = Vec::with_capacity(snapshot.messages.len());
        for message in &snapshot.messages {
            match mailbox.message_info(message.uid) {
                Ok(info) => entries.push(Entry {
                    uid: message.uid,
                    size: info.size,
                    deleted: false,
                    retrieved: false,
                }),
                // Expunged by someone else since the snapshot: not part of this session.
                Err(e) if e.kind() == StoreErrorKind::Expunged => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Maildrop {
            uid_validity: mailbox.uid_validity(),
            mailbox,
            entries,
            _lock: lock,
        })
    }

    /// The message numbered `msg`, unless it does not exist or is marked deleted.
    pub fn get(&self, msg: u32) -> Result<&Entry, Lookup> {
        let entry = (msg as usize)
            .checked_sub(1)
            .and_then(|i| self.entries.get(i))
            .ok_or(Lookup::NoSuchMessage(msg))?;
        if entry.deleted {
            return Err(Lookup::Deleted);
        }
        Ok(entry)
    }

    pub fn get_mut(&mut self, msg: u32) -> Result<&mut Entry, Lookup> {
        self.get(msg)?;
        // `get` just checked that the index is in range.
        self.entries
            .get_mut(msg as usize - 1)
            .ok_or(Lookup::NoSuchMessage(msg))
    }

    /// Messages not marked deleted, with their numbers.
    pub fn live(&self) -> impl Iterator<Item = (u32, &Entry)> {
        self.entries
            .iter()
            .zip(1u32..)
            .filter(|(e, _)| !e.deleted)
            .map(|(e, n)| (n, e))
    }

    /// Count and total size of the messages not marked deleted (STAT).
    pub fn totals(&self) -> (usize, u64) {
        self.live()
            .fold((0, 0), |(count, size), (_, e)| (count + 1, size + e.size))
    }

    /// The message's UIDL: the one a migration stored, or the configured format's.
    pub fn uidl(&self, entry: &Entry, format: &crate::uidl::UidlFormat) -> String {
        self.mailbox
            .stored_uidl(entry.uid)
            .unwrap_or_else(|| format.format(entry.uid, self.uid_validity))
    }
}
