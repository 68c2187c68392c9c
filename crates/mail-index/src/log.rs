//! The transaction log: every change a process makes to a [`MailboxIndex`], appended to one file
//! beside the main index (Dovecot's `dovecot.index.log`), so that other processes — a second
//! server, a delivery command — learn each other's changes with the mod-sequences they took, and
//! a restart is "load the main index, replay the log from where it ends" instead of a rescan.
//!
//! # Layout (little-endian)
//!
//! ```text
//! header  magic "CLMBLOG\0" | version u32 | uid_validity u32 | generation u64 | crc32c u32
//! record  length u32 | crc32c u32 | type u8 | body          (length counts type + body;
//!                                                             the crc covers length, type, body)
//! type 1  transaction: modseq_before u64 | modseq_after u64 | uid_next_after u32
//!         | op_count u32 | ops | state_len u32 | backend state
//! op      1 append       uid u32 | system u8 | recent u8 | keywords | date i64 | size u64
//!                        | backend_len u32 | backend
//!         2 expunge      count u32 | uid u32 ...
//!         3 set flags    uid u32 | system u8 | keywords
//!         4 set backend  uid u32 | backend_len u32 | backend
//!         5 set info     uid u32 | date i64 | size u64
//!         6 drop recent  uid u32
//!         7 raise UIDNEXT uid u32
//!         8 raise modseq floor u64
//!         9 claim recent
//!        10 reset        uid_validity u32
//!        11 set backend tail  uid u32 | keep u32 | tail_len u32 | tail   (the new reference is
//!                        the first `keep` bytes of the current one and the tail: a Maildir
//!                        flag change renames only the end of the file name)
//! keywords  count u8 | (length u8 | name) ...      (names, not bits: replay interns them in the
//!                                                    same order as the writer did)
//! ```
//!
//! A date of `i64::MIN` or a size of `u64::MAX` means "unknown", as in the main index.
//!
//! The generation ties a log to the main index it continues: the index's backend state records
//! the generation and the offset it includes, and a log with another generation (a rotated one,
//! or another mailbox's) is never replayed into it. Generations start at a value drawn from the
//! clock and the process id and grow by one at each rotation, so two mailboxes practically never
//! share one.
//!
//! # Writers, readers and damage
//!
//! Writers append under an exclusive `flock` on the log file, after reading every record other
//! writers added (so their own ops apply to the same state and take the same mod-sequences), one
//! `write(2)` per transaction. Rotation replaces the file by rename, never truncates it in place;
//! a waiter that wins the lock on the replaced file sees that the path names another file now
//! ([`LogError::Replaced`]) and starts over with the new one.
//!
//! Readers need no lock: they apply whole records from their offset to the end of the file and
//! stop at the first one that is incomplete or fails its checksum. Only a writer decides what
//! such a record is: when nothing valid could follow it (its length reaches the end of the file,
//! or everything after its start is zero bytes — a write cut short by a crash), it is a torn
//! tail and is cut off; otherwise the log is damaged in the middle ([`LogError::Corrupt`]) and
//! the caller falls back to its mail files. Each record also carries the HIGHESTMODSEQ before
//! and after it, so a record that does not continue the reader's state is refused
//! ([`LogError::Diverged`]) instead of being applied to the wrong base.
//!
//! # Durability ([`FsyncPolicy`], Dovecot's `mail_fsync`)
//!
//! See [`FsyncPolicy`] for when an append is `fdatasync`ed.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{FileExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use mail_types::{Flags, Keyword, SystemFlags, Uid, UidValidity};

use crate::codec::{Reader, put_u32, put_u64, temp_beside};
use crate::{IndexError, MailboxIndex, NewRecord, Op, UNKNOWN_DATE, UNKNOWN_SIZE};

const MAGIC: &[u8; 8] = b"CLMBLOG\0";
const VERSION: u32 = 1;
/// magic, version, UIDVALIDITY, generation, crc32c.
pub const LOG_HEADER_SIZE: u64 = 8 + 4 + 4 + 8 + 4;
const RECORD_HEADER: usize = 4 + 4;
const REC_TRANSACTION: u8 = 1;

const OP_APPEND: u8 = 1;
const OP_EXPUNGE: u8 = 2;
const OP_SET_FLAGS: u8 = 3;
const OP_SET_BACKEND: u8 = 4;
const OP_SET_INFO: u8 = 5;
const OP_DROP_RECENT: u8 = 6;
const OP_RAISE_UID_NEXT: u8 = 7;
const OP_RAISE_MODSEQ: u8 = 8;
const OP_CLAIM_RECENT: u8 = 9;
const OP_RESET: u8 = 10;
const OP_SET_BACKEND_TAIL: u8 = 11;

/// When log appends are `fdatasync`ed; the `fsync` setting, named after Dovecot's `mail_fsync`.
///
/// `Optimized` (the default) syncs every transaction that hands out a mod-sequence or a UID —
/// an append, an expunge, a flag change — before the writer releases the lock, i.e. before any
/// client can be told of it. The mail files themselves are already durable at that point (the
/// Maildir writer fsyncs new files and the directories; mbox rewrites go through a fsynced
/// journal), so what the sync adds is that the mod-sequences clients saw survive a power loss and
/// are never handed out again for something else. Transactions that change nothing a client can
/// see (a file moved from `new/` to `cur/`, a cached size) are not synced: after a crash they are
/// derived from the mail files again. A `kill -9` loses nothing under any policy, since written
/// data stays in the page cache. `Always` syncs every append; `Never` syncs none — then a power
/// loss may lose the log's tail, and the backend raises HIGHESTMODSEQ to its saved ceiling at
/// every open, as if the log were lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    #[default]
    Optimized,
    Always,
    Never,
}

/// Where a reader or the main index stands in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogPosition {
    pub generation: u64,
    pub offset: u64,
}

impl LogPosition {
    /// 16 bytes, for a backend to keep in its saved state.
    pub fn to_bytes(self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.generation.to_le_bytes());
        out[8..].copy_from_slice(&self.offset.to_le_bytes());
        out
    }

    pub fn from_bytes(bytes: [u8; 16]) -> LogPosition {
        let mut g = [0u8; 8];
        let mut o = [0u8; 8];
        g.copy_from_slice(&bytes[..8]);
        o.copy_from_slice(&bytes[8..]);
        LogPosition {
            generation: u64::from_le_bytes(g),
            offset: u64::from_le_bytes(o),
        }
    }
}

/// Why a log could not be used (or not further than some offset). Each names the problem for the
/// warning the caller logs.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot read or write the log: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a log file (bad magic or too short)")]
    BadMagic,
    #[error("unsupported log version {0}")]
    Version(u32),
    #[error("header checksum mismatch")]
    HeaderChecksum,
    #[error("log belongs to UIDVALIDITY {found}, the index to {expected}")]
    UidValidity { expected: u32, found: u32 },
    #[error("log generation {found} does not continue the index (generation {expected})")]
    Generation { expected: u64, found: u64 },
    #[error("log is {size} bytes, the index continues it at offset {offset}")]
    TooShort { offset: u64, size: u64 },
    #[error("damaged record at offset {offset}: {what}")]
    Corrupt { offset: u64, what: &'static str },
    #[error("record at offset {offset} does not continue this index: {what}")]
    Diverged { offset: u64, what: String },
    #[error("the log was replaced by another process")]
    Replaced,
}

/// The ops of the transaction in progress, encoded as the log stores them
/// ([`MailboxIndex::start_journal`]).
#[derive(Debug, Clone, Default)]
pub struct Journal {
    pub(crate) bytes: Vec<u8>,
    pub(crate) ops: u32,
    pub(crate) modseq_before: u64,
}

impl Journal {
    pub fn is_empty(&self) -> bool {
        self.ops == 0
    }

    pub fn op_count(&self) -> u32 {
        self.ops
    }

    /// HIGHESTMODSEQ when the transaction started.
    pub fn modseq_before(&self) -> u64 {
        self.modseq_before
    }
}

/// One op as the log stores it, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LogOp {
    Append {
        uid: Uid,
        flags: Flags,
        recent: bool,
        internal_date: i64,
        size: u64,
        backend: Vec<u8>,
    },
    Expunge(Vec<Uid>),
    SetFlags {
        uid: Uid,
        flags: Flags,
    },
    SetBackend {
        uid: Uid,
        backend: Vec<u8>,
    },
    SetBackendTail {
        uid: Uid,
        keep: u32,
        tail: Vec<u8>,
    },
    SetInfo {
        uid: Uid,
        internal_date: i64,
        size: u64,
    },
    DropRecent(Uid),
    RaiseUidNext(Uid),
    RaiseModseq(u64),
    ClaimRecent,
    Reset(UidValidity),
}

/// A decoded transaction record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Transaction {
    pub(crate) modseq_before: u64,
    pub(crate) modseq_after: u64,
    pub(crate) uid_next_after: u32,
    pub(crate) ops: Vec<LogOp>,
    pub(crate) backend_state: Vec<u8>,
}

// ---- encoding ----------------------------------------------------------------------------

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u32(out, u32::try_from(b.len()).unwrap_or(u32::MAX));
    out.extend_from_slice(b);
}

fn put_keywords(out: &mut Vec<u8>, flags: &Flags) {
    let kws = flags.keywords();
    // A mailbox holds at most 64 keywords, so more can never apply; the op would have failed.
    let n = kws.len().min(usize::from(u8::MAX));
    out.push(n as u8);
    for k in &kws[..n] {
        let name = k.as_str().as_bytes();
        let len = name.len().min(255);
        out.push(len as u8);
        out.extend_from_slice(&name[..len]);
    }
}

/// Encodes an op applied through [`MailboxIndex::apply`].
pub(crate) fn encode_op(out: &mut Vec<u8>, op: &Op<'_>) {
    match *op {
        Op::Append(NewRecord {
            uid,
            flags,
            internal_date,
            size,
            recent,
            backend,
        }) => {
            out.push(OP_APPEND);
            put_u32(out, uid.get());
            out.push(flags.system.bits());
            out.push(u8::from(recent));
            put_keywords(out, flags);
            put_u64(out, internal_date.unwrap_or(UNKNOWN_DATE) as u64);
            put_u64(out, size.unwrap_or(UNKNOWN_SIZE));
            put_bytes(out, backend);
        }
        Op::Expunge(uids) => {
            out.push(OP_EXPUNGE);
            put_u32(out, u32::try_from(uids.len()).unwrap_or(u32::MAX));
            for u in uids {
                put_u32(out, u.get());
            }
        }
        Op::SetFlags { uid, flags } => {
            out.push(OP_SET_FLAGS);
            put_u32(out, uid.get());
            out.push(flags.system.bits());
            put_keywords(out, flags);
        }
        Op::SetBackend { uid, backend } => {
            out.push(OP_SET_BACKEND);
            put_u32(out, uid.get());
            put_bytes(out, backend);
        }
        Op::SetInfo {
            uid,
            internal_date,
            size,
        } => {
            out.push(OP_SET_INFO);
            put_u32(out, uid.get());
            put_u64(out, internal_date.unwrap_or(UNKNOWN_DATE) as u64);
            put_u64(out, size.unwrap_or(UNKNOWN_SIZE));
        }
        Op::DropRecent(uid) => {
            out.push(OP_DROP_RECENT);
            put_u32(out, uid.get());
        }
        Op::RaiseUidNext(uid) => {
            out.push(OP_RAISE_UID_NEXT);
            put_u32(out, uid.get());
        }
    }
}

/// A [`Op::SetBackend`] whose new reference starts with the first `keep` bytes of the old one.
pub(crate) fn encode_set_backend_tail(out: &mut Vec<u8>, uid: Uid, keep: usize, tail: &[u8]) {
    out.push(OP_SET_BACKEND_TAIL);
    put_u32(out, uid.get());
    put_u32(out, u32::try_from(keep).unwrap_or(u32::MAX));
    put_bytes(out, tail);
}

pub(crate) fn encode_raise_modseq(out: &mut Vec<u8>, floor: u64) {
    out.push(OP_RAISE_MODSEQ);
    put_u64(out, floor);
}

pub(crate) fn encode_claim_recent(out: &mut Vec<u8>) {
    out.push(OP_CLAIM_RECENT);
}

pub(crate) fn encode_reset(out: &mut Vec<u8>, uid_validity: UidValidity) {
    out.push(OP_RESET);
    put_u32(out, uid_validity.get());
}

/// The bytes of one transaction record: `journal`'s ops, which left `index` where it is now,
/// and the backend's state after them.
pub fn transaction_record(
    journal: &Journal,
    index: &MailboxIndex,
    backend_state: &[u8],
) -> Vec<u8> {
    // Framed in place: a STORE on a million messages has tens of megabytes of ops, copied once.
    let mut out =
        Vec::with_capacity(RECORD_HEADER + 1 + 24 + journal.bytes.len() + 4 + backend_state.len());
    put_u32(&mut out, 0);
    put_u32(&mut out, 0);
    out.push(REC_TRANSACTION);
    put_u64(&mut out, journal.modseq_before);
    put_u64(&mut out, index.highest_modseq);
    put_u32(&mut out, index.uid_next);
    put_u32(&mut out, journal.ops);
    out.extend_from_slice(&journal.bytes);
    put_bytes(&mut out, backend_state);
    seal(&mut out);
    out
}

/// Fills in the length and checksum of a record framed in place.
fn seal(out: &mut [u8]) {
    let len = u32::try_from(out.len() - RECORD_HEADER).unwrap_or(u32::MAX);
    out[..4].copy_from_slice(&len.to_le_bytes());
    let crc = record_crc(out);
    out[4..8].copy_from_slice(&crc.to_le_bytes());
}

/// The checksum of a framed record: its length field and everything after the checksum.
fn record_crc(framed: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&framed[..4]);
    crc32c::crc32c_append(crc, &framed[RECORD_HEADER..])
}

/// The log header's bytes.
pub fn header_bytes(uid_validity: UidValidity, generation: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(LOG_HEADER_SIZE as usize);
    out.extend_from_slice(MAGIC);
    put_u32(&mut out, VERSION);
    put_u32(&mut out, uid_validity.get());
    put_u64(&mut out, generation);
    let crc = crc32c::crc32c(&out);
    put_u32(&mut out, crc);
    out
}

// ---- decoding ----------------------------------------------------------------------------

impl<'a> Reader<'a> {
    fn uid(&mut self) -> Option<Uid> {
        Uid::new(self.u32()?)
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn system(&mut self) -> Option<SystemFlags> {
        let bits = self.u8()?;
        (bits & !SystemFlags::ALL.bits() == 0).then(|| SystemFlags::from_bits_truncate(bits))
    }

    fn keywords(&mut self) -> Option<Vec<Keyword>> {
        let n = self.u8()?;
        let mut out = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            let len = usize::from(self.u8()?);
            let name = std::str::from_utf8(self.take(len)?).ok()?;
            out.push(Keyword::new(name).ok()?);
        }
        Some(out)
    }

    fn done(&self) -> bool {
        self.pos == self.buf.len()
    }
}

/// Reads the header; `(uid_validity, generation)`.
pub fn parse_header(bytes: &[u8]) -> Result<(UidValidity, u64), LogError> {
    let mut r = Reader::new(bytes);
    if r.take(8) != Some(&MAGIC[..]) {
        return Err(LogError::BadMagic);
    }
    let version = r.u32().ok_or(LogError::BadMagic)?;
    if version != VERSION {
        return Err(LogError::Version(version));
    }
    let uv = r.u32().ok_or(LogError::BadMagic)?;
    let generation = r.u64().ok_or(LogError::BadMagic)?;
    let at = r.pos;
    let crc = r.u32().ok_or(LogError::BadMagic)?;
    if crc32c::crc32c(&bytes[..at]) != crc {
        return Err(LogError::HeaderChecksum);
    }
    let uv = UidValidity::new(uv).ok_or(LogError::BadMagic)?;
    Ok((uv, generation))
}

fn decode_op(r: &mut Reader<'_>) -> Option<LogOp> {
    Some(match r.u8()? {
        OP_APPEND => {
            let uid = r.uid()?;
            let system = r.system()?;
            let recent = match r.u8()? {
                0 => false,
                1 => true,
                _ => return None,
            };
            let keywords = r.keywords()?;
            let internal_date = r.u64()? as i64;
            let size = r.u64()?;
            let backend = r.bytes()?.to_vec();
            LogOp::Append {
                uid,
                flags: Flags::new(system, keywords),
                recent,
                internal_date,
                size,
                backend,
            }
        }
        OP_EXPUNGE => {
            let n = r.u32()? as usize;
            // Each UID takes 4 bytes: a count beyond the record is damage, not an allocation.
            if n > (r.buf.len() - r.pos) / 4 {
                return None;
            }
            let mut uids = Vec::with_capacity(n);
            for _ in 0..n {
                uids.push(r.uid()?);
            }
            LogOp::Expunge(uids)
        }
        OP_SET_FLAGS => {
            let uid = r.uid()?;
            let system = r.system()?;
            let keywords = r.keywords()?;
            LogOp::SetFlags {
                uid,
                flags: Flags::new(system, keywords),
            }
        }
        OP_SET_BACKEND => LogOp::SetBackend {
            uid: r.uid()?,
            backend: r.bytes()?.to_vec(),
        },
        OP_SET_BACKEND_TAIL => LogOp::SetBackendTail {
            uid: r.uid()?,
            keep: r.u32()?,
            tail: r.bytes()?.to_vec(),
        },
        OP_SET_INFO => LogOp::SetInfo {
            uid: r.uid()?,
            internal_date: r.u64()? as i64,
            size: r.u64()?,
        },
        OP_DROP_RECENT => LogOp::DropRecent(r.uid()?),
        OP_RAISE_UID_NEXT => LogOp::RaiseUidNext(r.uid()?),
        OP_RAISE_MODSEQ => LogOp::RaiseModseq(r.u64()?),
        OP_CLAIM_RECENT => LogOp::ClaimRecent,
        OP_RESET => LogOp::Reset(UidValidity::new(r.u32()?)?),
        _ => return None,
    })
}

/// Decodes a record's type and body (checksum already verified).
pub(crate) fn decode_record(payload: &[u8]) -> Result<Transaction, &'static str> {
    let mut r = Reader::new(payload);
    if r.u8() != Some(REC_TRANSACTION) {
        return Err("unknown record type");
    }
    let modseq_before = r.u64().ok_or("truncated transaction header")?;
    let modseq_after = r.u64().ok_or("truncated transaction header")?;
    let uid_next_after = r.u32().ok_or("truncated transaction header")?;
    let count = r.u32().ok_or("truncated transaction header")? as usize;
    // Every op takes at least one byte.
    if count > payload.len() {
        return Err("op count beyond the record");
    }
    let mut ops = Vec::with_capacity(count);
    for _ in 0..count {
        ops.push(decode_op(&mut r).ok_or("malformed op")?);
    }
    let backend_state = r.bytes().ok_or("malformed backend state")?.to_vec();
    if !r.done() {
        return Err("trailing bytes in the record");
    }
    if modseq_before == 0 || modseq_after < modseq_before || uid_next_after == 0 {
        return Err("invalid transaction header");
    }
    Ok(Transaction {
        modseq_before,
        modseq_after,
        uid_next_after,
        ops,
        backend_state,
    })
}

/// One step through the records of a log body.
#[derive(Debug)]
pub(crate) enum Next<'a> {
    /// A whole record with a good checksum: its payload and its framed length.
    Record(&'a [u8], usize),
    /// Nothing more.
    End,
    /// A record that is incomplete or fails its checksum, and nothing valid could follow it:
    /// a write cut short.
    Torn(&'static str),
    /// A bad record with data after it.
    Corrupt(&'static str),
}

/// Looks at the record at the start of `rest` (the bytes from there to the end of the file).
pub(crate) fn next_record(rest: &[u8]) -> Next<'_> {
    if rest.is_empty() {
        return Next::End;
    }
    let all_zero = || rest.iter().all(|&b| b == 0);
    if rest.len() < RECORD_HEADER + 1 {
        return Next::Torn("incomplete record header");
    }
    let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    let stored = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
    if len == 0 {
        return if all_zero() {
            Next::Torn("zeroed tail")
        } else {
            Next::Corrupt("zero record length")
        };
    }
    let end = RECORD_HEADER.saturating_add(len);
    if end > rest.len() {
        // Either a write cut short or a damaged length: both end the readable log, and a
        // length reaching past the end leaves nothing to lose by cutting it off.
        return Next::Torn("record runs past the end of the file");
    }
    let framed = &rest[..end];
    if record_crc(framed) != stored {
        return if end == rest.len() || all_zero() {
            Next::Torn("checksum mismatch in the last record")
        } else {
            Next::Corrupt("checksum mismatch")
        };
    }
    Next::Record(&framed[RECORD_HEADER..], end)
}

/// Applies a decoded transaction to `index`, checking that it continues the index's state.
pub(crate) fn replay(index: &mut MailboxIndex, txn: &Transaction) -> Result<(), String> {
    if index.highest_modseq != txn.modseq_before {
        return Err(format!(
            "it starts at HIGHESTMODSEQ {}, the index is at {}",
            txn.modseq_before, index.highest_modseq
        ));
    }
    for op in &txn.ops {
        apply_op(index, op).map_err(|e| e.to_string())?;
    }
    if index.highest_modseq != txn.modseq_after || index.uid_next != txn.uid_next_after {
        return Err(format!(
            "it ends at HIGHESTMODSEQ {} UIDNEXT {}, replay gave {} and {}",
            txn.modseq_after, txn.uid_next_after, index.highest_modseq, index.uid_next
        ));
    }
    Ok(())
}

fn apply_op(index: &mut MailboxIndex, op: &LogOp) -> Result<(), IndexError> {
    let date = |d: i64| (d != UNKNOWN_DATE).then_some(d);
    let size_of = |s: u64| (s != UNKNOWN_SIZE).then_some(s);
    match op {
        LogOp::Append {
            uid,
            flags,
            recent,
            internal_date,
            size,
            backend,
        } => {
            index.apply(Op::Append(NewRecord {
                uid: *uid,
                flags,
                internal_date: date(*internal_date),
                size: size_of(*size),
                recent: *recent,
                backend,
            }))?;
        }
        LogOp::Expunge(uids) => {
            index.apply(Op::Expunge(uids))?;
        }
        LogOp::SetFlags { uid, flags } => {
            index.apply(Op::SetFlags { uid: *uid, flags })?;
        }
        LogOp::SetBackend { uid, backend } => {
            index.apply(Op::SetBackend { uid: *uid, backend })?;
        }
        LogOp::SetBackendTail { uid, keep, tail } => {
            let old = index
                .get(*uid)
                .ok_or(IndexError::NoSuchUid(uid.get()))?
                .backend();
            let keep = *keep as usize;
            let head = old.get(..keep).ok_or(IndexError::BackendTail {
                uid: uid.get(),
                keep,
                len: old.len(),
            })?;
            let backend = [head, tail].concat();
            index.apply(Op::SetBackend {
                uid: *uid,
                backend: &backend,
            })?;
        }
        LogOp::SetInfo {
            uid,
            internal_date,
            size,
        } => {
            index.apply(Op::SetInfo {
                uid: *uid,
                internal_date: date(*internal_date),
                size: size_of(*size),
            })?;
        }
        LogOp::DropRecent(uid) => {
            index.apply(Op::DropRecent(*uid))?;
        }
        LogOp::RaiseUidNext(uid) => {
            index.apply(Op::RaiseUidNext(*uid))?;
        }
        LogOp::RaiseModseq(floor) => index.raise_modseq(*floor),
        LogOp::ClaimRecent => {
            index.claim_recent();
        }
        LogOp::Reset(uv) => index.reset(*uv),
    }
    Ok(())
}

/// Where the readable part of a log ended before its bytes did, and why: a torn tail.
pub type TornTail = Option<(u64, &'static str)>;

/// What reading a log body from some offset gave.
#[derive(Debug, Default)]
pub struct ReplayOutcome {
    /// Transactions applied.
    pub applied: usize,
    /// Bytes of the body consumed by them.
    pub consumed: u64,
    /// The backend state of the last transaction applied.
    pub backend_state: Option<Vec<u8>>,
    /// Where the readable log ended before the end of the bytes, and why: a torn tail.
    pub torn: Option<(u64, &'static str)>,
}

/// Applies every whole record of `body` (log bytes starting at log offset `base`) to `index`.
/// A torn tail ends the replay (reported in the outcome); damage in the middle and records
/// that do not continue the index are errors, after the records before them were applied.
pub fn replay_bytes(
    index: &mut MailboxIndex,
    body: &[u8],
    base: u64,
) -> Result<ReplayOutcome, LogError> {
    let mut out = ReplayOutcome::default();
    let (consumed, torn) = each_transaction(body, base, |txn, offset| {
        replay(index, &txn).map_err(|what| LogError::Diverged { offset, what })?;
        out.applied += 1;
        out.backend_state = Some(txn.backend_state);
        Ok(())
    })?;
    out.consumed = consumed;
    out.torn = torn;
    Ok(out)
}

/// Decodes every whole record of `body` (log bytes starting at log offset `base`) and hands
/// each transaction to `each` with its offset, in order. Returns the bytes consumed by whole
/// records and, when the readable log ends before the bytes do, where and why (a torn tail).
/// A damaged record before the end is an error, after the records before it were handed over.
fn each_transaction(
    body: &[u8],
    base: u64,
    mut each: impl FnMut(Transaction, u64) -> Result<(), LogError>,
) -> Result<(u64, TornTail), LogError> {
    let mut pos = 0usize;
    loop {
        let offset = base + pos as u64;
        match next_record(body.get(pos..).unwrap_or(&[])) {
            Next::End => return Ok((pos as u64, None)),
            Next::Torn(what) => return Ok((pos as u64, Some((offset, what)))),
            Next::Corrupt(what) => return Err(LogError::Corrupt { offset, what }),
            Next::Record(payload, len) => {
                let txn =
                    decode_record(payload).map_err(|what| LogError::Corrupt { offset, what })?;
                each(txn, offset)?;
                pos += len;
            }
        }
    }
}

/// What a whole log file holds, checked without an index to replay onto
/// ([`verify_file_bytes`]): `columba index check`'s view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSummary {
    pub uid_validity: UidValidity,
    pub generation: u64,
    /// Whole transactions, each with a valid checksum and a readable body.
    pub transactions: usize,
    /// Where a torn tail starts and why (a writer cuts it off under the lock).
    pub torn: Option<(u64, &'static str)>,
}

/// Checks a whole log file's bytes: the header, then every record's length, checksum and body.
/// Damage in the middle is an error naming its offset; a torn tail is reported, not an error.
pub fn verify_file_bytes(bytes: &[u8]) -> Result<LogSummary, LogError> {
    let (uid_validity, generation) = parse_header(bytes)?;
    let body = bytes.get(LOG_HEADER_SIZE as usize..).unwrap_or(&[]);
    let mut transactions = 0;
    let (_, torn) = each_transaction(body, LOG_HEADER_SIZE, |_, _| {
        transactions += 1;
        Ok(())
    })?;
    Ok(LogSummary {
        uid_validity,
        generation,
        transactions,
        torn,
    })
}

// ---- the file ----------------------------------------------------------------------------

/// An exclusive lock (`flock`) on the directory of the index files, held while a main index and
/// the log that continues it are replaced: by [`IndexLog::create_with`], and by a caller that
/// writes a main index for the current log (which checks, holding it, that the log was not
/// replaced meanwhile). Each holder opens the directory anew, so it excludes other threads as
/// well as other processes; the directory itself is the lock file.
pub struct PairLock {
    _dir: Option<File>,
}

impl PairLock {
    /// Waits for the lock of the directory holding `path` (the log's path). Best effort: where
    /// a directory cannot be locked (some network file systems) the caller goes on without,
    /// as before the lock existed, rather than lose its log or its index over a rare race.
    pub fn acquire(path: &Path) -> PairLock {
        let (dir, _) = temp_beside(path);
        let dir = File::open(dir).ok().filter(|d| d.lock().is_ok());
        PairLock { _dir: dir }
    }
}

/// An exclusive lock on a log file (released when dropped).
#[derive(Debug)]
pub struct LogLock {
    file: File,
}

impl Drop for LogLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// A generation number for a new log lineage: unlikely to be any other mailbox's.
pub fn fresh_generation() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mixed = nanos ^ (u64::from(std::process::id()) << 40);
    // Half the range is left for the lineage to grow into without wrapping.
    (mixed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 2).max(1)
}

/// One mailbox's log file, open, with the offset up to which this process has applied it.
#[derive(Debug)]
pub struct IndexLog {
    path: PathBuf,
    file: File,
    dev: u64,
    ino: u64,
    uid_validity: UidValidity,
    generation: u64,
    offset: u64,
}

impl IndexLog {
    /// Starts a new log at `path`: a temporary file with the header, fsynced and locked, then
    /// `before_install` (which writes the main index that the new log continues, at the
    /// position it is given), then the rename over the old log and an fsync of the directory.
    /// Returns the new log holding its lock, so that nobody appends before the caller is done;
    /// processes waiting on the old file find it replaced.
    pub fn create_with(
        path: &Path,
        uid_validity: UidValidity,
        generation: u64,
        before_install: impl FnOnce(LogPosition) -> Result<(), String>,
    ) -> Result<(IndexLog, LogLock), LogError> {
        let (dir, tmp) = temp_beside(path);
        // Two processes starting a log at once (both found none: a mailbox indexed for the
        // first time by a server and by one still shutting down) must not interleave their
        // index and log renames into an index of one and a log of the other.
        let _pair = PairLock::acquire(path);
        let result = (|| -> Result<(File, LogLock), LogError> {
            let mut f = OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&tmp)?;
            f.set_len(0)?;
            f.write_all(&header_bytes(uid_validity, generation))?;
            f.sync_all()?;
            let lock = LogLock {
                file: f.try_clone()?,
            };
            lock.file.lock()?;
            before_install(LogPosition {
                generation,
                offset: LOG_HEADER_SIZE,
            })
            .map_err(|e| LogError::Io(std::io::Error::other(e)))?;
            std::fs::rename(&tmp, path)?;
            File::open(dir)?.sync_all()?;
            Ok((f, lock))
        })();
        let (file, lock) = match result {
            Ok(v) => v,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        let log = IndexLog::from_file(path, file, uid_validity, generation)?;
        Ok((log, lock))
    }

    /// [`IndexLog::create_with`] for a log no main index refers to yet.
    pub fn create(
        path: &Path,
        uid_validity: UidValidity,
        generation: u64,
    ) -> Result<IndexLog, LogError> {
        IndexLog::create_with(path, uid_validity, generation, |_| Ok(())).map(|(log, _)| log)
    }

    /// Opens the log at `path` and validates its header; positioned after the header.
    pub fn open(path: &Path) -> Result<IndexLog, LogError> {
        let file = OpenOptions::new().read(true).append(true).open(path)?;
        let mut head = [0u8; LOG_HEADER_SIZE as usize];
        let n = read_at_most(&file, &mut head, 0)?;
        let (uid_validity, generation) = parse_header(&head[..n])?;
        IndexLog::from_file(path, file, uid_validity, generation)
    }

    /// The handle of an open log file, positioned after its header.
    fn from_file(
        path: &Path,
        file: File,
        uid_validity: UidValidity,
        generation: u64,
    ) -> Result<IndexLog, LogError> {
        let meta = file.metadata()?;
        Ok(IndexLog {
            path: path.to_owned(),
            file,
            dev: meta.dev(),
            ino: meta.ino(),
            uid_validity,
            generation,
            offset: LOG_HEADER_SIZE,
        })
    }

    /// Opens the log that continues an index at `pos` whose UIDVALIDITY is `uid_validity`,
    /// positioned at `pos`.
    pub fn open_at(
        path: &Path,
        uid_validity: UidValidity,
        pos: LogPosition,
    ) -> Result<IndexLog, LogError> {
        let mut log = IndexLog::open(path)?;
        if log.uid_validity != uid_validity {
            return Err(LogError::UidValidity {
                expected: uid_validity.get(),
                found: log.uid_validity.get(),
            });
        }
        if log.generation != pos.generation {
            return Err(LogError::Generation {
                expected: pos.generation,
                found: log.generation,
            });
        }
        let size = log.size()?;
        if pos.offset < LOG_HEADER_SIZE || pos.offset > size {
            return Err(LogError::TooShort {
                offset: pos.offset,
                size,
            });
        }
        log.offset = pos.offset;
        Ok(log)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn uid_validity(&self) -> UidValidity {
        self.uid_validity
    }

    /// How far this process has applied the log.
    pub fn position(&self) -> LogPosition {
        LogPosition {
            generation: self.generation,
            offset: self.offset,
        }
    }

    /// The file's size now.
    pub fn size(&self) -> Result<u64, LogError> {
        Ok(self.file.metadata()?.len())
    }

    /// Whether records may be waiting: the file grew past our offset (or shrank below it).
    pub fn has_news(&self) -> Result<bool, LogError> {
        Ok(self.size()? != self.offset)
    }

    /// Whether the path now names another file (rotated or replaced) or none.
    pub fn replaced(&self) -> bool {
        match std::fs::metadata(&self.path) {
            Ok(m) => m.dev() != self.dev || m.ino() != self.ino,
            Err(_) => true,
        }
    }

    /// Takes the writers' lock. [`LogError::Replaced`] when the file was rotated away while we
    /// waited: the caller must open the new one.
    pub fn lock(&self) -> Result<LogLock, LogError> {
        let file = self.file.try_clone()?;
        file.lock()?;
        let lock = LogLock { file };
        if self.replaced() {
            return Err(LogError::Replaced);
        }
        Ok(lock)
    }

    /// Applies what other processes appended since our offset. Without `lock` (a reader) a bad
    /// record just ends the replay (`torn` in the outcome); a writer holding `lock` cuts a torn
    /// tail off the file and gets [`LogError::Corrupt`] for damage in the middle.
    pub fn catch_up(
        &mut self,
        index: &mut MailboxIndex,
        lock: Option<&LogLock>,
    ) -> Result<ReplayOutcome, LogError> {
        if lock.is_some() {
            // Cheap, and it catches a file overwritten in place, which its size alone hides.
            self.check_header()?;
        }
        let size = self.size()?;
        if size < self.offset {
            return Err(LogError::TooShort {
                offset: self.offset,
                size,
            });
        }
        if size == self.offset {
            return Ok(ReplayOutcome::default());
        }
        let mut body = vec![0u8; (size - self.offset) as usize];
        let n = read_at_most(&self.file, &mut body, self.offset)?;
        body.truncate(n);
        let result = replay_bytes(index, &body, self.offset);
        let outcome = match result {
            Ok(o) => o,
            Err(e) => {
                // Records before the bad one were applied: keep the offset in step with them.
                if let LogError::Corrupt { offset, .. } | LogError::Diverged { offset, .. } = &e {
                    self.offset = *offset;
                }
                return Err(e);
            }
        };
        self.offset += outcome.consumed;
        if let (Some((at, _)), Some(_)) = (outcome.torn, lock) {
            self.file.set_len(at)?;
            self.file.sync_data()?;
        }
        Ok(outcome)
    }

    /// Reads the header again: it must still name our UIDVALIDITY and generation.
    fn check_header(&self) -> Result<(), LogError> {
        let mut head = [0u8; LOG_HEADER_SIZE as usize];
        let n = read_at_most(&self.file, &mut head, 0)?;
        let (uid_validity, generation) = parse_header(&head[..n])?;
        if uid_validity != self.uid_validity {
            return Err(LogError::UidValidity {
                expected: self.uid_validity.get(),
                found: uid_validity.get(),
            });
        }
        if generation != self.generation {
            return Err(LogError::Generation {
                expected: self.generation,
                found: generation,
            });
        }
        Ok(())
    }

    /// Appends one transaction in a single write, then `fdatasync`s it if `sync`. The caller
    /// holds `lock` and has caught up, so the record goes exactly at our offset.
    pub fn append(&mut self, _lock: &LogLock, record: &[u8], sync: bool) -> Result<(), LogError> {
        let size = self.size()?;
        if size != self.offset {
            // Someone wrote without the lock, or we did not catch up: never guess.
            return Err(LogError::Diverged {
                offset: self.offset,
                what: format!("the log is {size} bytes at append time"),
            });
        }
        self.file.write_all(record)?;
        if sync {
            self.file.sync_data()?;
        }
        self.offset += record.len() as u64;
        Ok(())
    }
}

fn read_at_most(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests;
