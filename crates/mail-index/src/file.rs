//! The main index file: a [`MailboxIndex`] saved whole, so that reopening a mailbox after a
//! restart is one read and a validation pass instead of a parse of `dovecot-uidlist` and a scan
//! of every mail file.
//!
//! The file is a cache (Dovecot's `dovecot.index` plays the same part): the mail files and the
//! backend's own records stay the truth. So reading is strict — any inconsistency is reported as
//! a [`IndexFileError`] naming what was wrong, and the caller rebuilds from the mail data — and
//! writing is atomic (temporary file, fsync, rename, fsync of the directory), so a crash leaves
//! either the old file or the new one.
//!
//! # Layout (little-endian; version 2)
//!
//! ```text
//! header   magic "CLMBIDX\0" | version u32 | uid_validity u32 | uid_next u32 | record_count u32
//!          | highest_modseq u64 | expunge_horizon u64 | keyword_count u32 | expunge_count u32
//!          | keywords_len u32 | backend_state_len u32 | records_len u64 | expunges_len u64
//!          | backend_bytes u64 | crc32c u32
//! body     keywords (u8 length + name, each) | backend state | records | expunges
//! trailer  crc32c of the body u32 | magic "CLMBEND\0"
//! ```
//!
//! Records are coded against the record before them (the first against zeros), in varints
//! (LEB128) and zigzag varints (`zz`), so that a million messages take about 12 MB instead of
//! the 113 MB of version 1's fixed 50-byte records plus whole file names:
//!
//! ```text
//! record   head1 u8 | head2 u8 | [uid: varint(uid - previous uid - 2)] | [keywords varint]
//!          | [created: zz(created - previous created - 1)] | [modseq: zz(modseq - previous
//!          modseq - 1)] | [date: zz(date - last known date)] | [size varint] | backend reference
//! head1    bits 0-4 system flags | bit 5 \Recent unclaimed | bit 6 keywords follow (not 0)
//!          | bit 7 modseq follows (differs from created)
//! head2    bit 0 uid is the previous + 1 | bit 1 created is the previous + 1 | bit 2 date
//!          follows (known) | bit 3 size follows (known) | bits 4-5 the reference reuses the
//!          previous one's structure and mask (see `refs.rs`) | bits 6-7 zero
//! expunge  zz(uid - previous uid) | system u8 | keywords varint | varint(expunged - created)
//!          | varint(expunged - previous expunged)
//! ```
//!
//! Every field has exactly one encoding (no overlong varint, no optional field written with
//! the value its absence stands for), so a file that is accepted saves back to the same bytes.
//! Every length and count is checked against the file size before anything is allocated from
//! it, so a corrupt count cannot make the reader allocate gigabytes; the references are
//! decoded into an arena no longer than the header declares, which may be at most 64 times
//! the records section (names are predicted from the previous one, so a few bytes can stand
//! for a long name) and 4 GiB (the arena's limit).
//!
//! A version 1 file (fixed-size records) is refused as [`IndexFileError::Version`]: the caller
//! rebuilds the index from the mail files, as for any other unusable index file.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use mail_types::{Keyword, SystemFlags, UidValidity};

use crate::arena::Arena;
use crate::codec::{Reader, len_u32, put_u32, put_u64, put_varint, temp_beside, unzigzag, zigzag};
use crate::keywords::{KeywordTable, MAX_KEYWORDS};
use crate::refs::{self, Reuse};
use crate::{BIT_RECENT, Expunged, MailboxIndex, Record, UNKNOWN_DATE, UNKNOWN_SIZE};

const MAGIC: &[u8; 8] = b"CLMBIDX\0";
const END_MAGIC: &[u8; 8] = b"CLMBEND\0";
const VERSION: u32 = 2;
const HEADER_SIZE: usize = 8 + 4 * 4 + 8 * 2 + 4 * 4 + 8 * 3 + 4;
/// The fewest bytes a record takes (its two header bytes).
const MIN_RECORD_SIZE: u64 = 2;
/// The fewest bytes an expunge takes (five one-byte fields).
const MIN_EXPUNGE_SIZE: u64 = 5;
/// At most this many bytes of backend references decoded per byte of the records section.
const MAX_REFERENCE_EXPANSION: u64 = 64;
const TRAILER_SIZE: usize = 4 + 8;

const H1_RECENT: u8 = 0x20;
const H1_KEYWORDS: u8 = 0x40;
const H1_MODSEQ: u8 = 0x80;
const H2_UID_NEXT: u8 = 0x01;
const H2_CREATED_NEXT: u8 = 0x02;
const H2_DATE: u8 = 0x04;
const H2_SIZE: u8 = 0x08;
const H2_SAME_STRUCTURE: u8 = 0x10;
const H2_SAME_MASK: u8 = 0x20;
const H2_KNOWN: u8 = 0x3f;

/// Recomputes both checksums of an index file after its bytes were changed, so that tests and
/// the fuzz target reach the decoding of its records instead of stopping at a checksum.
#[doc(hidden)]
pub fn fix_index_checksums(bytes: &mut [u8]) {
    if bytes.len() < HEADER_SIZE + TRAILER_SIZE {
        return;
    }
    let crc = crc32c::crc32c(&bytes[..HEADER_SIZE - 4]);
    bytes[HEADER_SIZE - 4..HEADER_SIZE].copy_from_slice(&crc.to_le_bytes());
    let body_end = bytes.len() - TRAILER_SIZE;
    let crc = crc32c::crc32c(&bytes[HEADER_SIZE..body_end]);
    bytes[body_end..body_end + 4].copy_from_slice(&crc.to_le_bytes());
}

/// Why an index file was not used. Each names the problem for the warning the caller logs.
#[derive(Debug, thiserror::Error)]
pub enum IndexFileError {
    #[error("cannot read or write the index file: {0}")]
    Io(#[from] std::io::Error),
    #[error("not an index file (bad magic)")]
    BadMagic,
    #[error("unsupported index file version {0}")]
    Version(u32),
    #[error("header checksum mismatch")]
    HeaderChecksum,
    #[error("body checksum mismatch")]
    BodyChecksum,
    #[error("file is {actual} bytes, its header describes {expected}")]
    Size { expected: u64, actual: u64 },
    #[error("invalid header field: {0}")]
    Header(&'static str),
    #[error("invalid keyword name at position {0}")]
    Keyword(usize),
    #[error("record {index}: {what}")]
    Record { index: usize, what: &'static str },
    #[error("expunge history entry {index}: {what}")]
    Expunge { index: usize, what: &'static str },
}

/// A loaded index and the backend's own state saved beside it (for Maildir: what was last seen
/// of the directories and of `dovecot-uidlist`), opaque to this crate.
#[derive(Debug)]
pub struct LoadedIndex {
    pub index: MailboxIndex,
    pub backend_state: Vec<u8>,
}

fn put_zigzag(out: &mut Vec<u8>, v: u64) {
    put_varint(out, zigzag(v as i64));
}

impl MailboxIndex {
    /// The index file's bytes for this state and the backend's `backend_state`.
    pub fn to_file_bytes(&self, backend_state: &[u8]) -> Vec<u8> {
        let keywords = self.keywords.names();
        let mut kw_bytes = Vec::new();
        for k in keywords {
            let name = k.as_str().as_bytes();
            // Keyword names are atoms bounded far below 255 bytes by `Keyword::new`; longer ones
            // could not be read back, so they are cut (and the reader then rejects the file).
            let len = name.len().min(255);
            kw_bytes.push(len as u8);
            kw_bytes.extend_from_slice(&name[..len]);
        }
        let mut records = Vec::with_capacity(self.records.len() * 16);
        let mut backend_bytes = 0u64;
        let mut names = refs::Encoder::default();
        let mut name_bytes = Vec::with_capacity(64);
        let (mut prev_uid, mut prev_created, mut prev_modseq, mut last_date) =
            (0u32, 0u64, 0u64, 0i64);
        for r in &self.records {
            let name = self.arena.get(r.backend);
            backend_bytes += name.len() as u64;
            name_bytes.clear();
            let reuse = names.encode(name, &mut name_bytes);
            let mut h1 = r.system & SystemFlags::ALL.bits();
            if r.bits & BIT_RECENT != 0 {
                h1 |= H1_RECENT;
            }
            if r.keywords != 0 {
                h1 |= H1_KEYWORDS;
            }
            if r.modseq != r.created {
                h1 |= H1_MODSEQ;
            }
            let mut h2 = 0;
            if r.uid == prev_uid.wrapping_add(1) {
                h2 |= H2_UID_NEXT;
            }
            if r.created == prev_created.wrapping_add(1) {
                h2 |= H2_CREATED_NEXT;
            }
            if r.internal_date != UNKNOWN_DATE {
                h2 |= H2_DATE;
            }
            if r.size != UNKNOWN_SIZE {
                h2 |= H2_SIZE;
            }
            if reuse.structure {
                h2 |= H2_SAME_STRUCTURE;
            }
            if reuse.mask {
                h2 |= H2_SAME_MASK;
            }
            records.push(h1);
            records.push(h2);
            if h2 & H2_UID_NEXT == 0 {
                // UIDs ascend, so the distance is at least 2 here.
                put_varint(
                    &mut records,
                    u64::from(r.uid.wrapping_sub(prev_uid).wrapping_sub(2)),
                );
            }
            if r.keywords != 0 {
                put_varint(&mut records, r.keywords);
            }
            if h2 & H2_CREATED_NEXT == 0 {
                put_zigzag(
                    &mut records,
                    r.created.wrapping_sub(prev_created).wrapping_sub(1),
                );
            }
            if r.modseq != r.created {
                put_zigzag(
                    &mut records,
                    r.modseq.wrapping_sub(prev_modseq).wrapping_sub(1),
                );
            }
            if r.internal_date != UNKNOWN_DATE {
                put_zigzag(&mut records, r.internal_date.wrapping_sub(last_date) as u64);
                last_date = r.internal_date;
            }
            if r.size != UNKNOWN_SIZE {
                put_varint(&mut records, r.size);
            }
            records.extend_from_slice(&name_bytes);
            prev_uid = r.uid;
            prev_created = r.created;
            prev_modseq = r.modseq;
        }
        let mut expunges = Vec::with_capacity(self.expunges.len() * 8);
        let (mut prev_uid, mut prev_expunged) = (0u32, 0u64);
        for e in &self.expunges {
            put_zigzag(
                &mut expunges,
                (i64::from(e.uid) - i64::from(prev_uid)) as u64,
            );
            expunges.push(e.system);
            put_varint(&mut expunges, e.keywords);
            put_varint(&mut expunges, e.expunged.wrapping_sub(e.created));
            put_varint(&mut expunges, e.expunged.wrapping_sub(prev_expunged));
            prev_uid = e.uid;
            prev_expunged = e.expunged;
        }
        let body_len = kw_bytes.len() + backend_state.len() + records.len() + expunges.len();
        let mut out = Vec::with_capacity(HEADER_SIZE + body_len + TRAILER_SIZE);
        out.extend_from_slice(MAGIC);
        put_u32(&mut out, VERSION);
        put_u32(&mut out, self.uid_validity.get());
        put_u32(&mut out, self.uid_next);
        put_u32(&mut out, len_u32(self.records.len()));
        put_u64(&mut out, self.highest_modseq);
        put_u64(&mut out, self.expunge_horizon);
        put_u32(&mut out, len_u32(keywords.len()));
        put_u32(&mut out, len_u32(self.expunges.len()));
        put_u32(&mut out, len_u32(kw_bytes.len()));
        put_u32(&mut out, len_u32(backend_state.len()));
        put_u64(&mut out, records.len() as u64);
        put_u64(&mut out, expunges.len() as u64);
        put_u64(&mut out, backend_bytes);
        let crc = crc32c::crc32c(&out);
        put_u32(&mut out, crc);
        let body_start = out.len();
        out.extend_from_slice(&kw_bytes);
        out.extend_from_slice(backend_state);
        out.extend_from_slice(&records);
        drop(records);
        out.extend_from_slice(&expunges);
        let crc = crc32c::crc32c(&out[body_start..]);
        put_u32(&mut out, crc);
        out.extend_from_slice(END_MAGIC);
        out
    }

    /// Reads an index file's bytes, validating every field (see the module documentation).
    pub fn from_file_bytes(bytes: &[u8]) -> Result<LoadedIndex, IndexFileError> {
        let mut h = Reader::new(bytes);
        if h.take(8).ok_or(IndexFileError::BadMagic)? != MAGIC {
            return Err(IndexFileError::BadMagic);
        }
        let version = h.u32().ok_or(IndexFileError::BadMagic)?;
        if version != VERSION {
            return Err(IndexFileError::Version(version));
        }
        if bytes.len() < HEADER_SIZE + TRAILER_SIZE {
            return Err(IndexFileError::Size {
                expected: (HEADER_SIZE + TRAILER_SIZE) as u64,
                actual: bytes.len() as u64,
            });
        }
        // The length was checked above, so the header reads cannot fail; zeros stand in anyway.
        let uid_validity = h.u32().unwrap_or(0);
        let uid_next = h.u32().unwrap_or(0);
        let record_count = u64::from(h.u32().unwrap_or(0));
        let highest_modseq = h.u64().unwrap_or(0);
        let expunge_horizon = h.u64().unwrap_or(0);
        let keyword_count = h.u32().unwrap_or(0) as usize;
        let expunge_count = u64::from(h.u32().unwrap_or(0));
        let keywords_len = u64::from(h.u32().unwrap_or(0));
        let backend_state_len = u64::from(h.u32().unwrap_or(0));
        let records_len = h.u64().unwrap_or(0);
        let expunges_len = h.u64().unwrap_or(0);
        let backend_bytes = h.u64().unwrap_or(0);
        let crc_at = h.pos;
        let stored_crc = h.u32().unwrap_or(0);
        if crc32c::crc32c(&bytes[..crc_at]) != stored_crc {
            return Err(IndexFileError::HeaderChecksum);
        }
        // Sizes in u64 with checked arithmetic: a hostile count cannot overflow into a small one.
        let expected = [
            HEADER_SIZE as u64,
            keywords_len,
            backend_state_len,
            records_len,
            expunges_len,
            TRAILER_SIZE as u64,
        ]
        .iter()
        .try_fold(0u64, |acc, n| acc.checked_add(*n))
        .unwrap_or(u64::MAX);
        if expected != bytes.len() as u64 {
            return Err(IndexFileError::Size {
                expected,
                actual: bytes.len() as u64,
            });
        }
        let body = &bytes[HEADER_SIZE..bytes.len() - TRAILER_SIZE];
        let trailer = &bytes[bytes.len() - TRAILER_SIZE..];
        if &trailer[4..] != END_MAGIC {
            return Err(IndexFileError::BadMagic);
        }
        let body_crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
        if crc32c::crc32c(body) != body_crc {
            return Err(IndexFileError::BodyChecksum);
        }

        let uid_validity =
            UidValidity::new(uid_validity).ok_or(IndexFileError::Header("UIDVALIDITY is 0"))?;
        if uid_next == 0 {
            return Err(IndexFileError::Header("UIDNEXT is 0"));
        }
        if highest_modseq == 0 {
            return Err(IndexFileError::Header("HIGHESTMODSEQ is 0"));
        }
        if expunge_horizon > highest_modseq {
            return Err(IndexFileError::Header(
                "expunge horizon above HIGHESTMODSEQ",
            ));
        }
        if keyword_count > MAX_KEYWORDS {
            return Err(IndexFileError::Header("too many keywords"));
        }
        // Counts against the bytes that must hold them, before anything is allocated for them.
        if record_count > records_len / MIN_RECORD_SIZE {
            return Err(IndexFileError::Header(
                "more records than their section holds",
            ));
        }
        if expunge_count > expunges_len / MIN_EXPUNGE_SIZE {
            return Err(IndexFileError::Header(
                "more expunges than their section holds",
            ));
        }
        // The arena addresses its bytes with 32 bits.
        if backend_bytes > u64::from(u32::MAX) {
            return Err(IndexFileError::Header("backend references too long"));
        }
        // A reference predicted from the one before costs a few bytes whatever its length, so
        // a small hostile file could declare gigabytes of them; bound what it can make us
        // allocate by the size of the section that codes them. Real files stay far below
        // (Maildir names: about 57 bytes each from about 12 of records); one above is a cache
        // miss, rebuilt from the mail files.
        if backend_bytes > records_len.saturating_mul(MAX_REFERENCE_EXPANSION) {
            return Err(IndexFileError::Header(
                "backend references too long for their records",
            ));
        }

        // The sizes were checked against the file length, so every take below succeeds; the
        // reader still returns `None` rather than trusting that.
        let mut b = Reader::new(body);
        let short = IndexFileError::Header("section shorter than declared");
        let mut kw = Reader::new(
            b.take(keywords_len as usize)
                .ok_or(IndexFileError::Header("keywords"))?,
        );
        let mut table = KeywordTable::default();
        for i in 0..keyword_count {
            let len = kw.u8().ok_or(IndexFileError::Keyword(i))? as usize;
            let name = kw.take(len).ok_or(IndexFileError::Keyword(i))?;
            let name = std::str::from_utf8(name).map_err(|_| IndexFileError::Keyword(i))?;
            let k = Keyword::new(name).map_err(|_| IndexFileError::Keyword(i))?;
            // Interning a name already present would shift every later bit.
            if table.names().iter().any(|n| n.eq_ignore_case(&k)) {
                return Err(IndexFileError::Keyword(i));
            }
            table.intern(&k).ok_or(IndexFileError::Keyword(i))?;
        }
        if kw.pos != kw.buf.len() {
            return Err(IndexFileError::Header("keyword section has trailing bytes"));
        }
        let backend_state = b.take(backend_state_len as usize).ok_or(short)?.to_vec();
        let known_keywords = if keyword_count == 64 {
            u64::MAX
        } else {
            (1u64 << keyword_count) - 1
        };

        let records_section = b
            .take(records_len as usize)
            .ok_or(IndexFileError::Header("section shorter than declared"))?;
        let (records, arena, unclaimed_recent) = read_records(
            records_section,
            record_count as usize,
            backend_bytes as usize,
            uid_next,
            highest_modseq,
            known_keywords,
        )?;

        let mut expunges = Vec::with_capacity(expunge_count as usize);
        let mut e = Reader::new(
            b.take(expunges_len as usize)
                .ok_or(IndexFileError::Header("section shorter than declared"))?,
        );
        let (mut prev_uid, mut prev) = (0u32, 0u64);
        for index in 0..expunge_count as usize {
            let bad = |what| IndexFileError::Expunge { index, what };
            let uid = e.varint().ok_or(bad("truncated"))?;
            let uid = i64::from(prev_uid).wrapping_add(unzigzag(uid));
            let uid = u32::try_from(uid).map_err(|_| bad("UID out of range"))?;
            let system = e.u8().ok_or(bad("truncated"))?;
            let keywords = e.varint().ok_or(bad("truncated"))?;
            let age = e.varint().ok_or(bad("truncated"))?;
            let step = e.varint().ok_or(bad("truncated"))?;
            let expunged = prev.checked_add(step).ok_or(bad("modseq out of order"))?;
            let created = expunged
                .checked_sub(age)
                .ok_or(bad("modseq out of order"))?;
            if uid == 0 || uid >= uid_next {
                return Err(bad("UID out of range"));
            }
            if expunged > highest_modseq || expunged <= expunge_horizon {
                return Err(bad("modseq out of order"));
            }
            if system & !SystemFlags::ALL.bits() != 0 || keywords & !known_keywords != 0 {
                return Err(bad("invalid flags"));
            }
            prev_uid = uid;
            prev = expunged;
            expunges.push(Expunged {
                uid,
                system,
                keywords,
                created,
                expunged,
            });
        }
        if e.pos != e.buf.len() {
            return Err(IndexFileError::Header("expunge section has trailing bytes"));
        }
        Ok(LoadedIndex {
            index: MailboxIndex {
                uid_validity,
                uid_next,
                highest_modseq,
                records,
                arena,
                keywords: table,
                expunges,
                expunge_horizon,
                unclaimed_recent,
                journal: None,
            },
            backend_state,
        })
    }

    /// Writes the index file at `path` atomically: a temporary file beside it, fsync, rename over
    /// the old one, fsync of the directory. A crash at any point leaves a whole file.
    pub fn write_file(&self, path: &Path, backend_state: &[u8]) -> Result<(), IndexFileError> {
        let bytes = self.to_file_bytes(backend_state);
        let (dir, tmp) = temp_beside(path);
        let result = (|| {
            // The user's alone, as the mail files are: it holds flags, sizes and dates.
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)?;
            std::fs::File::open(dir)?.sync_all()
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        Ok(result?)
    }

    /// Reads the index file at `path`; `Ok(None)` when there is none.
    pub fn read_file(path: &Path) -> Result<Option<LoadedIndex>, IndexFileError> {
        match std::fs::read(path) {
            Ok(bytes) => Self::from_file_bytes(&bytes).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// Decodes the record section (see the module documentation): the records, the arena of
/// their references and how many are unclaimed `\Recent`.
fn read_records(
    section: &[u8],
    count: usize,
    backend_bytes: usize,
    uid_next: u32,
    highest_modseq: u64,
    known_keywords: u64,
) -> Result<(Vec<Record>, Arena, usize), IndexFileError> {
    let mut r = Reader::new(section);
    let mut records = Vec::with_capacity(count);
    // References shrink to a fifth or so; more than 64 times the section is not reserved ahead
    // even if the header says so (the decoder still stops at the declared length).
    let mut arena = Vec::with_capacity(backend_bytes.min(section.len().saturating_mul(64)));
    let mut names = refs::Decoder::default();
    let mut unclaimed_recent = 0;
    let (mut prev_uid, mut prev_created, mut prev_modseq, mut last_date) = (0u32, 0u64, 0u64, 0i64);
    for index in 0..count {
        let bad = |what| IndexFileError::Record { index, what };
        let h1 = r.u8().ok_or(bad("truncated"))?;
        let h2 = r.u8().ok_or(bad("truncated"))?;
        if h2 & !H2_KNOWN != 0 {
            return Err(bad("unknown header bits"));
        }
        let uid = if h2 & H2_UID_NEXT != 0 {
            prev_uid.checked_add(1)
        } else {
            let d = r.varint().ok_or(bad("truncated"))?;
            u32::try_from(d)
                .ok()
                .and_then(|d| prev_uid.checked_add(d))
                .and_then(|u| u.checked_add(2))
        };
        let uid = uid.ok_or(bad("UID at or above UIDNEXT"))?;
        if uid >= uid_next {
            return Err(bad("UID at or above UIDNEXT"));
        }
        let keywords = if h1 & H1_KEYWORDS != 0 {
            let k = r.varint().ok_or(bad("truncated"))?;
            if k == 0 {
                return Err(bad("keywords written as none"));
            }
            k
        } else {
            0
        };
        let created = if h2 & H2_CREATED_NEXT != 0 {
            prev_created.wrapping_add(1)
        } else {
            let d = r.varint().ok_or(bad("truncated"))?;
            if d == 0 {
                return Err(bad("modseq not canonical"));
            }
            prev_created
                .wrapping_add(1)
                .wrapping_add(unzigzag(d) as u64)
        };
        let modseq = if h1 & H1_MODSEQ != 0 {
            let d = r.varint().ok_or(bad("truncated"))?;
            let m = prev_modseq.wrapping_add(1).wrapping_add(unzigzag(d) as u64);
            if m == created {
                return Err(bad("modseq not canonical"));
            }
            m
        } else {
            created
        };
        let internal_date = if h2 & H2_DATE != 0 {
            let d = r.varint().ok_or(bad("truncated"))?;
            let date = last_date.wrapping_add(unzigzag(d));
            if date == UNKNOWN_DATE {
                return Err(bad("date not canonical"));
            }
            last_date = date;
            date
        } else {
            UNKNOWN_DATE
        };
        let size = if h2 & H2_SIZE != 0 {
            let s = r.varint().ok_or(bad("truncated"))?;
            if s == UNKNOWN_SIZE {
                return Err(bad("size not canonical"));
            }
            s
        } else {
            UNKNOWN_SIZE
        };
        let system = h1 & SystemFlags::ALL.bits();
        if keywords & !known_keywords != 0 {
            return Err(bad("keyword bit without a keyword name"));
        }
        if modseq == 0 || modseq > highest_modseq || created == 0 || created > modseq {
            return Err(bad("modseq out of order"));
        }
        let start = arena.len();
        let reuse = Reuse {
            structure: h2 & H2_SAME_STRUCTURE != 0,
            mask: h2 & H2_SAME_MASK != 0,
        };
        names
            .decode(&mut r, reuse, &mut arena, backend_bytes)
            .map_err(bad)?;
        let bits = if h1 & H1_RECENT != 0 {
            unclaimed_recent += 1;
            BIT_RECENT
        } else {
            0
        };
        prev_uid = uid;
        prev_created = created;
        prev_modseq = modseq;
        records.push(Record {
            uid,
            system,
            bits,
            keywords,
            modseq,
            created,
            internal_date,
            size,
            backend: Arena::span(start, arena.len()),
        });
    }
    if r.pos != r.buf.len() {
        return Err(IndexFileError::Header("record section has trailing bytes"));
    }
    if arena.len() != backend_bytes {
        return Err(IndexFileError::Header(
            "backend reference lengths do not add up",
        ));
    }
    Ok((records, Arena::from_bytes(arena), unclaimed_recent))
}

#[cfg(test)]
mod tests;
