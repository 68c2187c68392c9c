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
//! # Layout (little-endian)
//!
//! ```text
//! header   magic "CLMBIDX\0" | version u32 | uid_validity u32 | uid_next u32 | record_count u32
//!          | highest_modseq u64 | expunge_horizon u64 | keyword_count u32 | expunge_count u32
//!          | keywords_len u32 | backend_state_len u32 | backend_bytes u64 | crc32c u32
//! body     keywords (u8 length + name, each) | backend state | records (RECORD_SIZE each)
//!          | expunges (EXPUNGE_SIZE each) | backend references (concatenated in record order)
//! trailer  crc32c of the body u32 | magic "CLMBEND\0"
//! ```
//!
//! Every length is checked against the file size before anything is allocated from it, so a
//! corrupt count cannot make the reader allocate gigabytes.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use mail_types::{Keyword, SystemFlags, UidValidity};

use crate::arena::Arena;
use crate::codec::{Reader, len_u32, put_u32, put_u64, temp_beside};
use crate::keywords::{KeywordTable, MAX_KEYWORDS};
use crate::{BIT_RECENT, Expunged, MailboxIndex, Record};

const MAGIC: &[u8; 8] = b"CLMBIDX\0";
const END_MAGIC: &[u8; 8] = b"CLMBEND\0";
const VERSION: u32 = 1;
const HEADER_SIZE: usize = 8 + 4 * 4 + 8 * 2 + 4 * 4 + 8 + 4;
/// uid u32, system u8, bits u8, keywords u64, modseq u64, created u64, internal_date i64,
/// size u64, backend length u32.
const RECORD_SIZE: usize = 4 + 1 + 1 + 8 * 5 + 4;
/// uid u32, system u8, keywords u64, created u64, expunged u64.
const EXPUNGE_SIZE: usize = 4 + 1 + 8 * 3;
const TRAILER_SIZE: usize = 4 + 8;

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
        let backend_bytes: usize = self
            .records
            .iter()
            .map(|r| self.arena.get(r.backend).len())
            .sum();
        let body_len = kw_bytes.len()
            + backend_state.len()
            + self.records.len() * RECORD_SIZE
            + self.expunges.len() * EXPUNGE_SIZE
            + backend_bytes;
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
        put_u64(&mut out, backend_bytes as u64);
        let crc = crc32c::crc32c(&out);
        put_u32(&mut out, crc);
        let body_start = out.len();
        out.extend_from_slice(&kw_bytes);
        out.extend_from_slice(backend_state);
        for r in &self.records {
            put_u32(&mut out, r.uid);
            out.push(r.system);
            out.push(r.bits);
            put_u64(&mut out, r.keywords);
            put_u64(&mut out, r.modseq);
            put_u64(&mut out, r.created);
            put_u64(&mut out, r.internal_date as u64);
            put_u64(&mut out, r.size);
            put_u32(&mut out, len_u32(self.arena.get(r.backend).len()));
        }
        for e in &self.expunges {
            put_u32(&mut out, e.uid);
            out.push(e.system);
            put_u64(&mut out, e.keywords);
            put_u64(&mut out, e.created);
            put_u64(&mut out, e.expunged);
        }
        for r in &self.records {
            out.extend_from_slice(self.arena.get(r.backend));
        }
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
            record_count.saturating_mul(RECORD_SIZE as u64),
            expunge_count.saturating_mul(EXPUNGE_SIZE as u64),
            backend_bytes,
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

        let record_count = record_count as usize;
        let mut records = Vec::with_capacity(record_count);
        let mut lengths = Vec::with_capacity(record_count);
        let mut unclaimed_recent = 0;
        let mut prev_uid = 0u32;
        let mut total = 0u64;
        for index in 0..record_count {
            let bad = |what| IndexFileError::Record { index, what };
            let raw = b.take(RECORD_SIZE).ok_or(bad("truncated"))?;
            let mut r = Reader::new(raw);
            let uid = r.u32().ok_or(bad("truncated"))?;
            let system = r.u8().ok_or(bad("truncated"))?;
            let bits = r.u8().ok_or(bad("truncated"))?;
            let keywords = r.u64().ok_or(bad("truncated"))?;
            let modseq = r.u64().ok_or(bad("truncated"))?;
            let created = r.u64().ok_or(bad("truncated"))?;
            let internal_date = r.u64().ok_or(bad("truncated"))? as i64;
            let size = r.u64().ok_or(bad("truncated"))?;
            let len = r.u32().ok_or(bad("truncated"))?;
            if uid <= prev_uid {
                return Err(bad("UIDs not ascending"));
            }
            if uid >= uid_next {
                return Err(bad("UID at or above UIDNEXT"));
            }
            if system & !SystemFlags::ALL.bits() != 0 {
                return Err(bad("unknown system flag bits"));
            }
            if bits & !BIT_RECENT != 0 {
                return Err(bad("unknown state bits"));
            }
            if keywords & !known_keywords != 0 {
                return Err(bad("keyword bit without a keyword name"));
            }
            if modseq == 0 || modseq > highest_modseq || created == 0 || created > modseq {
                return Err(bad("modseq out of order"));
            }
            total = total.saturating_add(u64::from(len));
            if bits & BIT_RECENT != 0 {
                unclaimed_recent += 1;
            }
            prev_uid = uid;
            lengths.push(len);
            records.push(Record {
                uid,
                system,
                bits,
                keywords,
                modseq,
                created,
                internal_date,
                size,
                backend: Default::default(),
            });
        }
        if total != backend_bytes {
            return Err(IndexFileError::Header(
                "backend reference lengths do not add up",
            ));
        }
        let mut expunges = Vec::with_capacity(expunge_count as usize);
        let mut prev = 0u64;
        for index in 0..expunge_count as usize {
            let bad = |what| IndexFileError::Expunge { index, what };
            let mut r = Reader::new(b.take(EXPUNGE_SIZE).ok_or(bad("truncated"))?);
            let uid = r.u32().ok_or(bad("truncated"))?;
            let system = r.u8().ok_or(bad("truncated"))?;
            let keywords = r.u64().ok_or(bad("truncated"))?;
            let created = r.u64().ok_or(bad("truncated"))?;
            let expunged = r.u64().ok_or(bad("truncated"))?;
            if uid == 0 || uid >= uid_next {
                return Err(bad("UID out of range"));
            }
            if expunged < prev
                || expunged > highest_modseq
                || expunged <= expunge_horizon
                || created > expunged
            {
                return Err(bad("modseq out of order"));
            }
            if system & !SystemFlags::ALL.bits() != 0 || keywords & !known_keywords != 0 {
                return Err(bad("invalid flags"));
            }
            prev = expunged;
            expunges.push(Expunged {
                uid,
                system,
                keywords,
                created,
                expunged,
            });
        }
        let mut arena = Arena::default();
        for (rec, len) in records.iter_mut().zip(lengths) {
            let value = b
                .take(len as usize)
                .ok_or(IndexFileError::Header("backend references truncated"))?;
            rec.backend = arena.push(value);
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

#[cfg(test)]
mod tests;
