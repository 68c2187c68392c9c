//! Mail storage: the [`MailStore`] and [`Mailbox`] traits the session layer talks to, the
//! per-session [`MailboxView`] that turns shared mailbox state into sequence numbers and untagged
//! updates, and the backends (Maildir and mbox now; Columba's own format later).
//!
//! This crate owns where mail lives and how changes to it become visible. It knows nothing of
//! sockets, of IMAP or POP3 syntax, or of MIME: it stores and returns message bytes and their
//! metadata (UIDs, flags, dates, sizes). Per-mailbox state goes through the `mail-index` crate,
//! which no backend bypasses, and every backend shares it between processes through the
//! transaction log (`index_log`).

pub mod error;
mod index_log;
mod indexed;
pub mod maildir;
pub mod mbox;
pub mod migrate;
#[cfg(test)]
mod testing;
pub mod view;

pub use error::{StoreError, StoreErrorKind};
pub use view::{MailboxView, MessageList, ViewEvent, ViewMessage};

use std::any::Any;
use std::sync::{Arc, Weak};

use mail_types::{Flags, Keyword, MailboxName, ModSeq, Uid, UidRuns, UidValidity};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A mailbox in the user's hierarchy as LIST shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxEntry {
    pub name: MailboxName,
    /// `false` for a name that exists only because something below it does (`\Noselect`,
    /// RFC 3501 6.3.8).
    pub selectable: bool,
}

/// The figures STATUS (RFC 3501 6.3.10) and SELECT report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxStatus {
    pub messages: u32,
    /// Messages no session has claimed as `\Recent` yet.
    pub recent: u32,
    pub uid_next: Uid,
    pub uid_validity: UidValidity,
    pub unseen: u32,
    /// Messages flagged `\Deleted`.
    pub deleted: u32,
    pub highest_modseq: ModSeq,
    /// Sum of RFC822.SIZE of all messages (RFC 8438).
    pub size: u64,
}

/// The state of one message in a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageState {
    pub uid: Uid,
    pub flags: Flags,
    pub modseq: ModSeq,
}

/// Immutable facts about one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageInfo {
    /// INTERNALDATE, seconds since the epoch (RFC 3501 2.3.3).
    pub internal_date: i64,
    /// RFC822.SIZE: octets of the message with CRLF line endings.
    pub size: u64,
}

/// A position in a mailbox's change history; opaque to callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct ChangeCursor(pub u64);

/// A mailbox's messages at one moment as one list that every view opened at that moment
/// shares (see [`Mailbox::shared_snapshot`]). The entries carry no `\Recent`: that is `recent`.
#[derive(Debug, Clone)]
pub struct SharedSnapshot {
    pub messages: Arc<Vec<ViewMessage>>,
    /// Where in `messages` the first message without `\Seen` is (SELECT's `[UNSEEN n]`),
    /// worked out once per list rather than by every SELECT.
    pub first_unseen: Option<usize>,
    pub recent: Vec<Uid>,
    pub cursor: ChangeCursor,
    pub uid_next: Uid,
    pub highest_modseq: ModSeq,
}

/// A mailbox's messages at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// In UID order.
    pub messages: Vec<MessageState>,
    /// The messages this session sees as `\Recent`: those it just claimed, or with
    /// `claim_recent == false` those nobody has claimed yet (RFC 3501 2.3.2).
    pub recent: Vec<Uid>,
    pub cursor: ChangeCursor,
    pub uid_next: Uid,
    pub highest_modseq: ModSeq,
}

/// What changed after a cursor. A message appended and then changed appears once in `appended`
/// with its latest state; one appended and expunged in the same window appears in both lists.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Possibly every UID below UIDNEXT without a message (a cursor older than the history):
    /// go by its runs, not UID by UID.
    pub expunged: UidRuns,
    /// In UID order.
    pub appended: Vec<MessageState>,
    /// Messages whose flags or modseq changed, with their latest state.
    pub flags: Vec<MessageState>,
    /// Messages newly seen as `\Recent` by this caller (see [`Snapshot::recent`]).
    pub recent: Vec<Uid>,
    pub cursor: ChangeCursor,
    pub uid_next: Option<Uid>,
    pub highest_modseq: Option<ModSeq>,
}

/// How STORE changes flags (RFC 3501 6.4.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlagChange {
    Replace(Flags),
    Add(Flags),
    Remove(Flags),
}

/// Told when a mailbox changes, so that an IDLE session can wake up. Implementations must be cheap
/// and must not call back into the store.
pub trait ChangeListener: Send + Sync {
    fn mailbox_changed(&self);
}

/// A user's mail: the mailbox hierarchy and subscriptions.
pub trait MailStore: Send + Sync {
    /// Every mailbox, including `\Noselect` parents, in no particular order.
    fn list(&self) -> Result<Vec<MailboxEntry>>;
    /// Creates a mailbox; missing parents are created too (RFC 3501 6.3.3).
    fn create(&self, name: &MailboxName) -> Result<()>;
    /// Deletes a mailbox (RFC 3501 6.3.4): INBOX cannot be deleted; a mailbox with children
    /// becomes `\Noselect` instead of disappearing (its messages are removed).
    fn delete(&self, name: &MailboxName) -> Result<()>;
    /// Renames a mailbox and its children (RFC 3501 6.3.5). Renaming INBOX moves its messages to
    /// the new mailbox and leaves INBOX empty.
    fn rename(&self, from: &MailboxName, to: &MailboxName) -> Result<()>;
    fn subscriptions(&self) -> Result<Vec<MailboxName>>;
    fn set_subscribed(&self, name: &MailboxName, subscribed: bool) -> Result<()>;
    /// Opens a mailbox. Every opener in this process gets a handle on the same shared state.
    fn open(&self, name: &MailboxName) -> Result<Arc<dyn Mailbox>>;
    /// Creates a mailbox carrying special-use attributes (`\Junk`, RFC 6154 3), all or
    /// nothing: when they cannot be kept, no mailbox is left behind. Backends that keep no
    /// attributes refuse with `NotPossible`.
    fn create_special_use(&self, name: &MailboxName, uses: &[String]) -> Result<()> {
        let _ = uses;
        Err(StoreError::NotPossible(format!(
            "{name}: special-use attributes are not kept by this mailbox format"
        )))
    }
    /// The special-use attributes given to a mailbox at its creation (none by default).
    fn special_use(&self, name: &MailboxName) -> Vec<String> {
        let _ = name;
        Vec::new()
    }
    /// Starts writing mailbox `name` as a migration does (see [`migrate`]): messages under the
    /// UIDs the source gave them, with the source's UIDVALIDITY and UIDNEXT. Formats that cannot
    /// refuse with `NotPossible`.
    fn import(
        &self,
        name: &MailboxName,
        plan: &migrate::ImportPlan,
    ) -> Result<Box<dyn migrate::MailboxImport>> {
        let _ = plan;
        Err(StoreError::NotPossible(format!(
            "{name}: this mailbox format cannot be the destination of a migration"
        )))
    }
}

/// One mailbox, shared by every session that has it open.
pub trait Mailbox: Send + Sync {
    fn name(&self) -> MailboxName;
    fn uid_validity(&self) -> UidValidity;
    /// Picks up changes other processes made to the storage (new deliveries, flags changed by a
    /// program working on the files, files removed). Cheap when nothing changed.
    fn refresh(&self) -> Result<()>;
    fn snapshot(&self, claim_recent: bool) -> Result<Snapshot>;
    /// [`Mailbox::snapshot`] as a list shared with every other caller at the same state, so that
    /// sessions selecting a big mailbox do not each copy it. Backends that keep no such list
    /// build one per call.
    fn shared_snapshot(&self, claim_recent: bool) -> Result<SharedSnapshot> {
        let snap = self.snapshot(claim_recent)?;
        let messages: Vec<ViewMessage> = snap.messages.into_iter().map(ViewMessage::from).collect();
        Ok(SharedSnapshot {
            first_unseen: indexed::first_unseen(&messages),
            messages: Arc::new(messages),
            recent: snap.recent,
            cursor: snap.cursor,
            uid_next: snap.uid_next,
            highest_modseq: snap.highest_modseq,
        })
    }
    fn changes_since(&self, cursor: ChangeCursor, claim_recent: bool) -> Result<Changes>;
    fn status(&self) -> Result<MailboxStatus>;
    /// `Err` with kind `Expunged` when the message is gone.
    fn message_info(&self, uid: Uid) -> Result<MessageInfo>;
    /// The message with CRLF line endings (exactly `message_info().size` bytes).
    fn read_message(&self, uid: Uid) -> Result<Vec<u8>>;
    /// Changes the flags of the listed messages that still exist; returns their new state, only
    /// for messages whose flags actually changed.
    fn store_flags(&self, uids: &[Uid], change: &FlagChange) -> Result<Vec<MessageState>>;
    /// Permanently removes messages flagged `\Deleted` (all of them, or only those in `only`,
    /// RFC 4315 2.1). Returns the expunged UIDs.
    fn expunge(&self, only: Option<&[Uid]>) -> Result<Vec<Uid>>;
    /// Starts saving a new message; bytes are streamed to a temporary file as they arrive.
    fn begin_append(&self) -> Result<Box<dyn AppendWriter>>;
    /// Copies messages into `dest` (RFC 3501 6.4.7), keeping flags and internal dates. Returns
    /// (source UID, new UID) pairs for the messages that still existed.
    fn copy_to(&self, uids: &[Uid], dest: &dyn Mailbox) -> Result<Vec<(Uid, Uid)>>;
    /// Registers a listener; it is dropped automatically once the `Weak` is dead.
    fn watch(&self, listener: Weak<dyn ChangeListener>);
    /// A cached, derived value for a message (an encoded ENVELOPE or BODYSTRUCTURE), if any.
    fn cached(&self, uid: Uid, field: CacheField) -> Option<Arc<[u8]>> {
        let _ = (uid, field);
        None
    }
    /// [`Mailbox::cached`] for many messages, in the order of `uids`; backends with a cache
    /// file read it in a few large reads instead of one per message.
    fn cached_many(&self, uids: &[Uid], field: CacheField) -> Vec<Option<Arc<[u8]>>> {
        uids.iter().map(|&uid| self.cached(uid, field)).collect()
    }
    /// Offers a derived value to the cache; backends without a cache ignore it.
    fn cache(&self, uid: Uid, field: CacheField, value: &[u8]) {
        let _ = (uid, field, value);
    }
    /// A stable identifier of the mailbox (RFC 8474 4 MAILBOXID): the same while its name and
    /// UIDVALIDITY are, kept by RENAME, never given to another mailbox. `None` where the
    /// backend has none.
    fn mailbox_id(&self) -> Option<String> {
        None
    }
    /// The save date of a message (RFC 8514 3): when it entered this mailbox (by APPEND, COPY,
    /// MOVE or delivery), seconds since the epoch, never changing while it stays there. `None`
    /// where the backend keeps none (see [`Mailbox::has_save_dates`]) or the message is gone.
    fn save_date(&self, uid: Uid) -> Option<i64> {
        let _ = uid;
        None
    }
    /// Whether [`Mailbox::save_date`] answers for this mailbox (RFC 8514 4.3
    /// SAVEDATESUPPORTED); without it SAVEDATE is NIL and the SAVED* keys use INTERNALDATE.
    fn has_save_dates(&self) -> bool {
        false
    }
    /// The POP3 UIDL a migration stored for a message (Dovecot keeps it as the `P` field of
    /// `dovecot-uidlist`); POP3 shows it instead of the UIDL its format would make, so clients
    /// moved from another server do not download everything again. `None` for most messages.
    fn stored_uidl(&self, uid: Uid) -> Option<String> {
        let _ = uid;
        None
    }
    /// The keywords defined in the mailbox (RFC 3501 7.2.6 FLAGS), when the backend keeps a
    /// table of them; `None` makes the caller collect them from the messages.
    fn keywords(&self) -> Option<Vec<Keyword>> {
        None
    }
    /// Commits the messages of one APPEND together (MULTIAPPEND, RFC 3502 3: "all or none"):
    /// either every message gets a UID, in order, or none stays in the mailbox. This default
    /// commits one message at a time and, when one fails, expunges those already committed;
    /// backends that can commit several files under one lock override it so that no other
    /// session ever sees part of the batch.
    fn commit_appends(&self, batch: Vec<PendingAppend>) -> Result<Vec<Uid>> {
        commit_appends_one_by_one(self, batch)
    }
    /// For backends that can do a native copy between two of their own mailboxes.
    fn as_any(&self) -> &dyn Any;
}

/// One streamed APPEND message waiting for the end of its command (see
/// [`Mailbox::commit_appends`]).
pub struct PendingAppend {
    pub writer: Box<dyn AppendWriter>,
    pub flags: Flags,
    /// INTERNALDATE, seconds since the epoch; `None` for now.
    pub internal_date: Option<i64>,
}

/// [`Mailbox::commit_appends`] for backends without a batch commit: commit in order, and on a
/// failure remove what was already committed, so the caller's "none" holds.
pub fn commit_appends_one_by_one<M: Mailbox + ?Sized>(
    mailbox: &M,
    batch: Vec<PendingAppend>,
) -> Result<Vec<Uid>> {
    let mut committed = Vec::with_capacity(batch.len());
    for pending in batch {
        match pending.writer.commit(pending.flags, pending.internal_date) {
            Ok(uid) => committed.push(uid),
            Err(e) => {
                if !committed.is_empty() {
                    let deleted = Flags::new(mail_types::SystemFlags::DELETED, []);
                    let undone = mailbox
                        .store_flags(&committed, &FlagChange::Add(deleted))
                        .and_then(|_| mailbox.expunge(Some(&committed)));
                    if let Err(undo) = undone {
                        return Err(StoreError::Internal(format!(
                            "{e}; and the messages committed before it could not be removed: {undo}"
                        )));
                    }
                }
                return Err(e);
            }
        }
    }
    Ok(committed)
}

/// Derived per-message values worth caching (the index issue stores them on disk).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheField {
    Envelope,
    BodyStructure,
    Body,
    // Id 4 was `SearchHeaders` (decoded FROM/TO/CC/BCC/SUBJECT values and the sent date): SEARCH
    // reads those from the cached ENVELOPE now. The id stays reserved, never reused: cache
    // files written before may still hold such entries.
    /// What SORT and THREAD compare: base subject, sent date, first addresses and display
    /// names, Message-ID and the ids a message refers to.
    SortKeys,
    /// When the message entered its mailbox (RFC 8514 save date), seconds since the epoch as
    /// 8 big-endian bytes.
    SaveDate,
    /// The message's EMAILID (RFC 8474 5.1), derived from its immutable content.
    EmailId,
    /// The message's PREVIEW text (RFC 8970).
    Preview,
}

impl CacheField {
    /// The number naming the field in cache files; never reused for another meaning.
    pub fn id(self) -> u8 {
        match self {
            CacheField::Envelope => 1,
            CacheField::BodyStructure => 2,
            CacheField::Body => 3,
            // 4: retired (`SearchHeaders`), never reused.
            CacheField::SortKeys => 5,
            CacheField::SaveDate => 6,
            CacheField::EmailId => 7,
            CacheField::Preview => 8,
        }
    }
}

/// A message being saved. Dropping it without `commit` discards it and leaves no trace.
pub trait AppendWriter: Send {
    /// Appends bytes of the message as the client sent them (CRLF line endings).
    fn write(&mut self, chunk: &[u8]) -> Result<()>;
    /// Makes the message durable (written, fsynced, linked into the mailbox) and returns its UID.
    /// `internal_date` defaults to now.
    fn commit(self: Box<Self>, flags: Flags, internal_date: Option<i64>) -> Result<Uid>;
    /// The writer as `Any`, so that a backend's [`Mailbox::commit_appends`] can recognise its
    /// own writers and commit them as one batch; `None` keeps the one-by-one default.
    fn as_any_mut(&mut self) -> Option<&mut dyn Any> {
        None
    }
}
