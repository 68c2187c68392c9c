//! Per-mailbox state that every storage format shares: the UID map, flags and keywords, modseqs,
//! the change history sessions catch up from, and `\Recent` ownership.
//!
//! This crate owns the index: an in-memory structure per mailbox and its on-disk files (main
//! index, transaction log, cache; see "On-disk files" below). It knows nothing of any mailbox
//! format (Maildir file names, mbox offsets are opaque `backend` references to it), of sockets
//! or of IMAP.
//!
//! # Model
//!
//! A [`MailboxIndex`] is a state (header plus records in UID order) that changes only through
//! [`Op`]s given to [`MailboxIndex::apply`], the idea of Aerogramme's `uidindex.rs`. Every op that
//! a client can observe (append, expunge, flag change) takes the next modseq (RFC 7162 3.1), so
//! the highest modseq doubles as the cursor of the change history: "what changed after cursor
//! `c`" is "records created after `c`, records whose modseq is above `c`, and the expunges logged
//! after `c`". That answers both a session's catch-up and CONDSTORE/QRESYNC's `CHANGEDSINCE` and
//! `VANISHED (EARLIER)` without a per-session log.
//!
//! `\Recent` (RFC 3501 2.3.2) is a bit per record: set when a backend reports a message nobody
//! has seen, cleared by the first session that claims it ([`MailboxIndex::claim_recent`]).
//! Read-only sessions look at [`MailboxIndex::unclaimed_recent`] without claiming.
//!
//! Memory per message is one fixed 56-byte record plus its backend reference in a shared arena
//! (a Maildir file name, ~50 bytes, or about 11 bytes while it is still coded as the index file
//! had it); keywords are a bit mask into the mailbox's keyword table.
//!
//! # On-disk files
//!
//! Three files beside the mail (in a Maildir's directory, in an mbox's control directory), each
//! validated field by field when read, none trusted: any inconsistency is an error naming what
//! was wrong, and the backend falls back to its mail files (which stay the truth, as Dovecot's
//! index files are caches of its Maildir or mbox). Both backends write all three; the mbox
//! backend's own state in them is the mbox file's stamp, its `X-IMAPbase` and the log position.
//!
//! - `columba.index` (`file.rs`): the whole state — header, keyword names, records, the expunge
//!   history that answers `VANISHED`/`CHANGEDSINCE`, backend references — plus the backend's
//!   own state (for Maildir: directory stamps, the uidlist stamp and the log position this file
//!   continues). Records have a fixed size (32 bytes) and are copied into the index's array
//!   with every field checked; backend references are cut into tokens predicted from the
//!   previous reference (`refs.rs`) in blocks of 64, kept coded and decoded a block at a time
//!   when first read (`file_names.rs`), so opening a mailbox decodes no file name. Read whole
//!   with one `read` (not mapped: a file truncated under a mapping would kill the process with
//!   SIGBUS), written whole to a temporary file, fsynced and renamed, never changed in place.
//! - `columba.index.log` ([`log`]): append-only, one length-prefixed CRC32C record per
//!   transaction with its ops (appends with their record fields and backend reference,
//!   expunges, flag and keyword changes, backend-reference changes (as the tail that differs
//!   from the old reference) and info updates, `\Recent`
//!   claims, UIDNEXT and HIGHESTMODSEQ raises, a new UIDVALIDITY) and the HIGHESTMODSEQ before
//!   and after. Writers hold an `flock` on it and catch up before changing anything, so every
//!   process applies the same ops to the same state through [`MailboxIndex::apply`] and hands
//!   out the same mod-sequences; readers poll its size. Opening is "load the main index, replay
//!   the log from its position". Past 1 MiB the backend folds it into a new main index and a new
//!   log generation (rename, not truncation); a new generation and the index it continues are
//!   written under an `flock` of the directory ([`PairLock`]), so that two processes starting
//!   one at once cannot leave the index of one beside the log of the other. Appends are
//!   fdatasynced per [`FsyncPolicy`].
//! - `columba.index.cache` ([`MessageCache`]): derived per-message values (ENVELOPE,
//!   BODYSTRUCTURE, save dates), append-only with checksummed entries, never fsynced.
//!
//! A transaction is recorded by the index itself: between [`MailboxIndex::start_journal`] and
//! [`MailboxIndex::take_journal`] every op applied (and every `\Recent` claim, reset or
//! mod-sequence raise) is encoded as the log stores it, so a backend cannot change the state
//! without the change reaching the log.

mod arena;
mod cache;
mod codec;
mod file;
mod file_names;
mod keywords;
pub mod log;
mod refs;

use std::fmt;

use mail_types::{Flags, Keyword, ModSeq, SystemFlags, Uid, UidRuns, UidValidity};

use arena::{Arena, Span};
use keywords::KeywordTable;

pub use cache::{CacheRepair, MessageCache};
pub use file::{IndexFileError, LoadedIndex, damage_reference_block, fix_index_checksums};
pub use keywords::MAX_KEYWORDS;
pub use log::{
    FsyncPolicy, IndexLog, Journal, LogError, LogLock, LogPosition, LogSummary, PairLock,
    verify_file_bytes,
};

/// Why an [`Op`] was refused. The state is unchanged when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    /// UIDs only grow (RFC 3501 2.3.1.1): an append must use a UID at or above UIDNEXT.
    #[error("UID {uid} is below UIDNEXT {uid_next}")]
    UidNotAscending { uid: u32, uid_next: u32 },
    #[error("the UID space of this mailbox is exhausted")]
    UidsExhausted,
    #[error("more than {MAX_KEYWORDS} keywords in one mailbox")]
    TooManyKeywords,
    #[error("no message with UID {0}")]
    NoSuchUid(u32),
    /// A logged reference change keeps more of the old reference than there is.
    #[error("UID {uid}: the log keeps {keep} bytes of a {len}-byte backend reference")]
    BackendTail { uid: u32, keep: usize, len: usize },
}

/// The mailbox-wide values (RFC 3501 2.3.1.1, RFC 7162 3.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub uid_validity: UidValidity,
    pub uid_next: Uid,
    pub highest_modseq: ModSeq,
}

/// A new message as a backend reports it.
#[derive(Debug, Clone, Copy)]
pub struct NewRecord<'a> {
    pub uid: Uid,
    pub flags: &'a Flags,
    /// INTERNALDATE, seconds since the epoch, if the backend knows it cheaply.
    pub internal_date: Option<i64>,
    /// RFC822.SIZE if known cheaply.
    pub size: Option<u64>,
    /// No session has seen the message yet.
    pub recent: bool,
    /// The backend's own reference (a Maildir file name); opaque here.
    pub backend: &'a [u8],
}

/// One change to the state. Ops are the unit a future transaction log records.
#[derive(Debug, Clone, Copy)]
pub enum Op<'a> {
    /// A message arrives; takes the next modseq.
    Append(NewRecord<'a>),
    /// Messages are gone; takes one modseq for the whole batch. Unknown UIDs are ignored.
    Expunge(&'a [Uid]),
    /// A message's flags are replaced; takes a modseq only if they differ.
    SetFlags { uid: Uid, flags: &'a Flags },
    /// The backend reference changes (a Maildir file was renamed); not visible to clients.
    SetBackend { uid: Uid, backend: &'a [u8] },
    /// Facts computed lazily (INTERNALDATE, size) are remembered; not a client-visible change.
    SetInfo {
        uid: Uid,
        internal_date: Option<i64>,
        size: Option<u64>,
    },
    /// Another process took the message's `\Recent` (a Maildir file left `new/`).
    DropRecent(Uid),
    /// UIDNEXT grows without an append (another process used UIDs we never saw).
    RaiseUidNext(Uid),
}

/// A message's client-visible state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSnapshot {
    pub uid: Uid,
    pub flags: Flags,
    pub modseq: ModSeq,
}

/// What changed after a cursor (see the crate documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSet {
    /// Messages expunged after the cursor. Once the history no longer reaches back to the
    /// cursor, every UID below UIDNEXT without a message (one run per gap, however long).
    pub expunged: UidRuns,
    /// Messages created after the cursor, ascending, with their latest state; a message created
    /// and expunged in the window is here with its last state and also in `expunged`.
    pub appended: Vec<MessageSnapshot>,
    /// Messages that existed at the cursor and changed after it, ascending.
    pub changed: Vec<MessageSnapshot>,
    /// Unclaimed `\Recent` messages among `appended`.
    pub recent: Vec<Uid>,
}

const BIT_RECENT: u8 = 1;

/// Sentinels for facts not known yet; kept out of the public API, which uses `Option`.
const UNKNOWN_DATE: i64 = i64::MIN;
const UNKNOWN_SIZE: u64 = u64::MAX;

/// One message: fixed size, no heap allocation of its own.
#[derive(Debug, Clone, Copy)]
struct Record {
    uid: u32,
    system: u8,
    bits: u8,
    keywords: u64,
    modseq: u64,
    /// The modseq of the append that created the record, to tell new records from changed ones.
    created: u64,
    internal_date: i64,
    size: u64,
    backend: Span,
}

/// An expunge remembered for "vanished since" (RFC 7162 3.2.5.1) and for sessions catching up.
#[derive(Debug, Clone, Copy)]
struct Expunged {
    uid: u32,
    system: u8,
    keywords: u64,
    created: u64,
    expunged: u64,
}

/// Expunges remembered before the oldest are forgotten (RFC 7162 3.2.5.2 lets a server answer
/// `VANISHED (EARLIER)` with more UIDs than needed once it has forgotten).
const EXPUNGE_HISTORY_MAX: usize = 1 << 20;

/// Read access to one record.
#[derive(Clone, Copy)]
pub struct RecordRef<'a> {
    index: &'a MailboxIndex,
    rec: &'a Record,
}

impl<'a> RecordRef<'a> {
    pub fn uid(&self) -> Uid {
        // Records are only created from a valid `Uid`.
        Uid::new(self.rec.uid).unwrap_or(Uid::MAX)
    }

    pub fn flags(&self) -> Flags {
        self.index
            .keywords
            .flags(self.rec.system, self.rec.keywords)
    }

    pub fn system_flags(&self) -> SystemFlags {
        SystemFlags::from_bits_truncate(self.rec.system)
    }

    pub fn modseq(&self) -> ModSeq {
        ModSeq::new(self.rec.modseq).unwrap_or(ModSeq::MIN)
    }

    pub fn internal_date(&self) -> Option<i64> {
        (self.rec.internal_date != UNKNOWN_DATE).then_some(self.rec.internal_date)
    }

    pub fn size(&self) -> Option<u64> {
        (self.rec.size != UNKNOWN_SIZE).then_some(self.rec.size)
    }

    /// `\Recent` and not yet claimed by any session.
    pub fn recent_unclaimed(&self) -> bool {
        self.rec.bits & BIT_RECENT != 0
    }

    pub fn backend(&self) -> &'a [u8] {
        self.index.arena.get(self.rec.backend)
    }

    pub fn snapshot(&self) -> MessageSnapshot {
        MessageSnapshot {
            uid: self.uid(),
            flags: self.flags(),
            modseq: self.modseq(),
        }
    }
}

impl fmt::Debug for RecordRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("uid", &self.rec.uid)
            .field("flags", &self.flags())
            .field("modseq", &self.rec.modseq)
            .field("backend", &String::from_utf8_lossy(self.backend()))
            .finish()
    }
}

/// How many bytes `a` and `b` start with in common.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// The state of one mailbox.
#[derive(Debug, Clone)]
pub struct MailboxIndex {
    uid_validity: UidValidity,
    uid_next: u32,
    highest_modseq: u64,
    records: Vec<Record>,
    arena: Arena,
    keywords: KeywordTable,
    expunges: Vec<Expunged>,
    /// Expunges at or below this modseq were forgotten.
    expunge_horizon: u64,
    unclaimed_recent: usize,
    /// The ops of the transaction in progress, for the log; `None` outside transactions.
    journal: Option<Box<Journal>>,
}

impl MailboxIndex {
    /// An empty mailbox: UIDNEXT 1, HIGHESTMODSEQ 1.
    pub fn new(uid_validity: UidValidity) -> Self {
        MailboxIndex {
            uid_validity,
            uid_next: 1,
            highest_modseq: 1,
            records: Vec::new(),
            arena: Arena::default(),
            keywords: KeywordTable::default(),
            expunges: Vec::new(),
            expunge_horizon: 0,
            unclaimed_recent: 0,
            journal: None,
        }
    }

    /// Starts recording every change for the transaction log (see [`log`]); a journal already
    /// started is dropped.
    pub fn start_journal(&mut self) {
        self.journal = Some(Box::new(Journal {
            bytes: Vec::new(),
            ops: 0,
            modseq_before: self.highest_modseq,
        }));
    }

    /// Ends the recording and returns it; `None` when none was started on this index (it was
    /// replaced meanwhile, so its changes are not in any journal).
    pub fn take_journal(&mut self) -> Option<Journal> {
        self.journal.take().map(|j| *j)
    }

    fn journal_mut(&mut self) -> Option<&mut Journal> {
        self.journal.as_deref_mut()
    }

    pub fn header(&self) -> Header {
        Header {
            uid_validity: self.uid_validity,
            uid_next: Uid::new(self.uid_next).unwrap_or(Uid::MAX),
            highest_modseq: ModSeq::new(self.highest_modseq).unwrap_or(ModSeq::MIN),
        }
    }

    pub fn uid_validity(&self) -> UidValidity {
        self.uid_validity
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The current cursor: the highest modseq.
    pub fn cursor(&self) -> u64 {
        self.highest_modseq
    }

    /// The keywords ever used in this mailbox (RFC 3501 7.2.6 FLAGS).
    pub fn keywords(&self) -> &[Keyword] {
        self.keywords.names()
    }

    pub fn get(&self, uid: Uid) -> Option<RecordRef<'_>> {
        self.position(uid.get()).map(|i| RecordRef {
            index: self,
            rec: &self.records[i],
        })
    }

    /// All records in UID order.
    pub fn records(
        &self,
    ) -> impl ExactSizeIterator<Item = RecordRef<'_>> + DoubleEndedIterator + '_ {
        self.records
            .iter()
            .map(move |rec| RecordRef { index: self, rec })
    }

    fn position(&self, uid: u32) -> Option<usize> {
        self.records.binary_search_by_key(&uid, |r| r.uid).ok()
    }

    fn next_modseq(&mut self) -> u64 {
        self.highest_modseq = self.highest_modseq.saturating_add(1);
        self.highest_modseq
    }

    /// Applies one op. Returns the modseq it took, if it made a client-visible change.
    pub fn apply(&mut self, op: Op<'_>) -> Result<Option<ModSeq>, IndexError> {
        // A new reference that starts like the old one (a Maildir file renamed for its flags
        // keeps all but the end of its name) is logged as the old one's length kept and the
        // new tail: a STORE on a million messages writes tens of megabytes less log.
        let keep = match op {
            Op::SetBackend { uid, backend } if self.journal.is_some() => {
                self.get(uid).map(|r| common_prefix(r.backend(), backend))
            }
            _ => None,
        };
        let taken = self.apply_unjournaled(op)?;
        if let Some(j) = self.journal_mut() {
            match (op, keep) {
                (Op::SetBackend { uid, backend }, Some(keep)) if keep > 0 => {
                    log::encode_set_backend_tail(&mut j.bytes, uid, keep, &backend[keep..]);
                }
                _ => log::encode_op(&mut j.bytes, &op),
            }
            j.ops += 1;
        }
        Ok(taken)
    }

    fn apply_unjournaled(&mut self, op: Op<'_>) -> Result<Option<ModSeq>, IndexError> {
        let taken = match op {
            Op::Append(new) => Some(self.append(new)?),
            Op::Expunge(uids) => self.expunge(uids),
            Op::SetFlags { uid, flags } => self.set_flags(uid, flags)?,
            Op::SetBackend { uid, backend } => {
                let i = self
                    .position(uid.get())
                    .ok_or(IndexError::NoSuchUid(uid.get()))?;
                if self.arena.get(self.records[i].backend) != backend {
                    self.arena.release(self.records[i].backend);
                    self.records[i].backend = self.arena.push(backend);
                    self.maybe_compact();
                }
                None
            }
            Op::SetInfo {
                uid,
                internal_date,
                size,
            } => {
                let i = self
                    .position(uid.get())
                    .ok_or(IndexError::NoSuchUid(uid.get()))?;
                if let Some(d) = internal_date {
                    self.records[i].internal_date = d;
                }
                if let Some(s) = size {
                    self.records[i].size = s;
                }
                None
            }
            Op::DropRecent(uid) => {
                if let Some(i) = self.position(uid.get())
                    && self.records[i].bits & BIT_RECENT != 0
                {
                    self.records[i].bits &= !BIT_RECENT;
                    self.unclaimed_recent -= 1;
                }
                None
            }
            Op::RaiseUidNext(uid) => {
                self.uid_next = self.uid_next.max(uid.get());
                None
            }
        };
        Ok(taken.and_then(ModSeq::new))
    }

    fn append(&mut self, new: NewRecord<'_>) -> Result<u64, IndexError> {
        let uid = new.uid.get();
        if uid < self.uid_next {
            return Err(IndexError::UidNotAscending {
                uid,
                uid_next: self.uid_next,
            });
        }
        let keywords = self
            .keywords
            .mask_of(new.flags)
            .ok_or(IndexError::TooManyKeywords)?;
        let next = uid.checked_add(1).ok_or(IndexError::UidsExhausted)?;
        let modseq = self.next_modseq();
        let backend = self.arena.push(new.backend);
        self.records.push(Record {
            uid,
            system: new.flags.system.bits(),
            bits: if new.recent { BIT_RECENT } else { 0 },
            keywords,
            modseq,
            created: modseq,
            internal_date: new.internal_date.unwrap_or(UNKNOWN_DATE),
            size: new.size.unwrap_or(UNKNOWN_SIZE),
            backend,
        });
        if new.recent {
            self.unclaimed_recent += 1;
        }
        self.uid_next = next;
        Ok(modseq)
    }

    fn expunge(&mut self, uids: &[Uid]) -> Option<u64> {
        let mut wanted: Vec<u32> = uids.iter().map(|u| u.get()).collect();
        wanted.sort_unstable();
        wanted.dedup();
        wanted.retain(|u| self.position(*u).is_some());
        if wanted.is_empty() {
            return None;
        }
        let modseq = self.next_modseq();
        let mut gone = Vec::with_capacity(wanted.len());
        let arena = &mut self.arena;
        let mut unclaimed = self.unclaimed_recent;
        self.records.retain(|r| {
            if wanted.binary_search(&r.uid).is_err() {
                return true;
            }
            arena.release(r.backend);
            if r.bits & BIT_RECENT != 0 {
                unclaimed -= 1;
            }
            gone.push(Expunged {
                uid: r.uid,
                system: r.system,
                keywords: r.keywords,
                created: r.created,
                expunged: modseq,
            });
            false
        });
        self.unclaimed_recent = unclaimed;
        self.expunges.extend(gone);
        if self.expunges.len() > EXPUNGE_HISTORY_MAX {
            let drop = self.expunges.len() / 2;
            self.expunge_horizon = self.expunges[drop - 1].expunged;
            self.expunges.drain(..drop);
        }
        self.maybe_compact();
        Some(modseq)
    }

    fn set_flags(&mut self, uid: Uid, flags: &Flags) -> Result<Option<u64>, IndexError> {
        let i = self
            .position(uid.get())
            .ok_or(IndexError::NoSuchUid(uid.get()))?;
        let keywords = self
            .keywords
            .mask_of(flags)
            .ok_or(IndexError::TooManyKeywords)?;
        let system = flags.system.bits();
        let rec = &self.records[i];
        if rec.system == system && rec.keywords == keywords {
            return Ok(None);
        }
        let modseq = self.next_modseq();
        let rec = &mut self.records[i];
        rec.system = system;
        rec.keywords = keywords;
        rec.modseq = modseq;
        Ok(Some(modseq))
    }

    fn maybe_compact(&mut self) {
        if self.arena.wants_compaction() {
            self.arena
                .compact(self.records.iter_mut().map(|r| &mut r.backend));
        }
    }

    /// Makes every later mod-sequence larger than `floor` (RFC 7162 3.1.1: mod-sequences never go
    /// back, even when the index was rebuilt after a crash and handed some out before). When that
    /// moves HIGHESTMODSEQ, this index missed what happened up to `floor`, so its expunge history
    /// no longer reaches back: "expunged since" below `floor` becomes every absent UID.
    pub fn raise_modseq(&mut self, floor: u64) {
        if floor > self.highest_modseq {
            if let Some(j) = self.journal_mut() {
                log::encode_raise_modseq(&mut j.bytes, floor);
                j.ops += 1;
            }
            self.highest_modseq = floor;
            self.expunge_horizon = self.expunge_horizon.max(floor);
            // Every remembered expunge is now at or below the horizon, where the history is
            // answered by absent UIDs instead; kept, they would make the index file invalid.
            self.expunges.clear();
        }
    }

    /// Claims every unclaimed `\Recent` message for the caller (RFC 3501 2.3.2: the first session
    /// to be told of a message gets its `\Recent`). Returns their UIDs, ascending.
    pub fn claim_recent(&mut self) -> Vec<Uid> {
        if self.unclaimed_recent == 0 {
            return Vec::new();
        }
        if let Some(j) = self.journal_mut() {
            log::encode_claim_recent(&mut j.bytes);
            j.ops += 1;
        }
        let mut out = Vec::with_capacity(self.unclaimed_recent);
        for r in &mut self.records {
            if r.bits & BIT_RECENT != 0 {
                r.bits &= !BIT_RECENT;
                if let Some(uid) = Uid::new(r.uid) {
                    out.push(uid);
                }
            }
        }
        self.unclaimed_recent = 0;
        out
    }

    /// The `\Recent` messages nobody has claimed, ascending (what a read-only session shows).
    pub fn unclaimed_recent(&self) -> Vec<Uid> {
        if self.unclaimed_recent == 0 {
            return Vec::new();
        }
        self.records
            .iter()
            .filter(|r| r.bits & BIT_RECENT != 0)
            .filter_map(|r| Uid::new(r.uid))
            .collect()
    }

    pub fn unclaimed_recent_count(&self) -> usize {
        self.unclaimed_recent
    }

    /// Everything a session at cursor `since` has not seen (see the crate documentation).
    pub fn changes_since(&self, since: u64) -> ChangeSet {
        let mut out = ChangeSet::default();
        if since >= self.highest_modseq {
            return out;
        }
        for r in &self.records {
            if r.created > since {
                let rec = RecordRef {
                    index: self,
                    rec: r,
                };
                out.appended.push(rec.snapshot());
                if r.bits & BIT_RECENT != 0 {
                    out.recent.push(rec.uid());
                }
            } else if r.modseq > since {
                out.changed.push(
                    RecordRef {
                        index: self,
                        rec: r,
                    }
                    .snapshot(),
                );
            }
        }
        let mut expunged_appends = Vec::new();
        if since >= self.expunge_horizon {
            let start = self.expunges.partition_point(|e| e.expunged <= since);
            let mut expunged = Vec::new();
            for e in &self.expunges[start..] {
                if let Some(uid) = Uid::new(e.uid) {
                    expunged.push(uid);
                    if e.created > since {
                        expunged_appends.push(MessageSnapshot {
                            uid,
                            flags: self.keywords.flags(e.system, e.keywords),
                            modseq: ModSeq::new(e.expunged).unwrap_or(ModSeq::MIN),
                        });
                    }
                }
            }
            expunged.sort_unstable();
            out.expunged = UidRuns::from_ascending(expunged);
        } else {
            // The history no longer reaches back that far: report every UID below UIDNEXT
            // that has no record, which is a superset of what the caller has not seen.
            out.expunged = self.missing_uids();
        }
        if !expunged_appends.is_empty() {
            out.appended.extend(expunged_appends);
            out.appended.sort_unstable_by_key(|m| m.uid);
        }
        out
    }

    /// UIDs expunged after modseq `since` (RFC 7162 3.2.5.1 `VANISHED (EARLIER)`), ascending. Once
    /// the history is shorter than asked for, every UID below UIDNEXT without a record.
    pub fn expunged_since(&self, since: u64) -> UidRuns {
        if since < self.expunge_horizon {
            return self.missing_uids();
        }
        let start = self.expunges.partition_point(|e| e.expunged <= since);
        let mut out: Vec<Uid> = self.expunges[start..]
            .iter()
            .filter_map(|e| Uid::new(e.uid))
            .collect();
        out.sort_unstable();
        UidRuns::from_ascending(out)
    }

    /// Every UID below UIDNEXT without a record, as one run per gap: a mailbox of two messages
    /// with UIDNEXT in the billions has two runs here, not billions of UIDs.
    fn missing_uids(&self) -> UidRuns {
        let mut out = UidRuns::default();
        let mut expect = 1u32;
        for r in &self.records {
            out.push(expect, r.uid.saturating_sub(1));
            expect = r.uid.saturating_add(1);
        }
        out.push(expect, self.uid_next.saturating_sub(1));
        out
    }

    /// Starts over under a new UIDVALIDITY (RFC 3501 2.3.1.1): every record is expunged, and
    /// UIDNEXT goes back to 1. Modseqs keep growing so that cursors stay meaningful.
    pub fn reset(&mut self, uid_validity: UidValidity) {
        let all: Vec<Uid> = self
            .records
            .iter()
            .filter_map(|r| Uid::new(r.uid))
            .collect();
        self.expunge(&all);
        self.uid_validity = uid_validity;
        self.uid_next = 1;
        // The old UIDs mean nothing under the new UIDVALIDITY (UID 1 is about to name another
        // message), so their history is forgotten: "expunged since" before this point becomes
        // "every absent UID" of the new numbering, and the index stays one the file can hold.
        self.expunges.clear();
        self.expunge_horizon = self.highest_modseq;
        if let Some(j) = self.journal_mut() {
            log::encode_reset(&mut j.bytes, uid_validity);
            j.ops += 1;
        }
    }

    /// Approximate heap bytes held, for tests and diagnostics.
    pub fn heap_bytes(&self) -> usize {
        self.records.capacity() * std::mem::size_of::<Record>()
            + self.arena.heap_bytes()
            + self.expunges.capacity() * std::mem::size_of::<Expunged>()
    }
}

#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;
