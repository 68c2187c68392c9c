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
//! # Layout (little-endian; version 3)
//!
//! ```text
//! header   magic "CLMBIDX\0" | version u32 | uid_validity u32 | uid_next u32 | record_count u32
//!          | highest_modseq u64 | expunge_horizon u64 | keyword_count u32 | expunge_count u32
//!          | keywords_len u32 | backend_state_len u32 | extra_count u32 | zero u32
//!          | references_len u64 | expunges_len u64 | crc32c u32
//! body     keywords (u8 length + name, each) | backend state | extras | records
//!          | references | expunges
//! trailer  crc32c of the body u32 | magic "CLMBEND\0"
//! record   uid u32 | system flags u8 | bits u8 | zero u16 | modseq u64 | created u64
//!          | date u32 | size u32                                       (32 bytes, UID order)
//! bits     bit 0 \Recent unclaimed | bit 1 the next extra is this record's
//! date     seconds since the epoch; u32::MAX unknown; 0 when the record has an extra
//! size     RFC822.SIZE; u32::MAX unknown; 0 when the record has an extra
//! extra    keywords u64 | date i64 | size u64                          (24 bytes, UID order)
//!          for the records with keywords or a date or size the record cannot hold
//!          (i64::MIN and u64::MAX stand for unknown there)
//! expunge  zz(uid - previous uid) | system u8 | keywords varint | varint(expunged - created)
//!          | varint(expunged - previous expunged)
//! ```
//!
//! Records have a fixed size so that opening a mailbox is a read of the file, a section at a
//! time, two checksums and a copy of the records into the index's array with their fields
//! checked — no decoding of variable-length fields — as Dovecot copies its mapped
//! `dovecot.index` into memory on the first change. The extras come first so that the records
//! can be read in chunks and never whole into a buffer of their own. The backend references (Maildir file names, 60 bytes raw) are kept in their compact
//! coding and decoded a block at a time when first read (`file_names.rs`): a million messages
//! take 42 MB (32 of records, 10 of names) instead of 110 MB raw.
//!
//! Every field has exactly one encoding (no optional field written with the value its absence
//! stands for, zero where the layout says zero), so a file that is accepted, and whose
//! references all decode, saves back to the same bytes. Every length and count is checked
//! against the file size before anything is allocated from it, so a corrupt count cannot make
//! the reader allocate gigabytes.
//!
//! Files of versions 1 and 2 (version 2 coded every field in varints and decoded every name on
//! open) are refused as [`IndexFileError::Version`]: the caller rebuilds the index from the mail
//! files, keeping UIDs, as for any other unusable index file.

use std::io::{Read, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use mail_types::{Keyword, SystemFlags, UidValidity};

use crate::arena::{Arena, Span};
use crate::codec::{Reader, len_u32, put_u32, put_u64, put_varint, temp_beside, unzigzag, zigzag};
use crate::file_names::{BlockWriter, FileNames, Scratch};
use crate::keywords::{KeywordTable, MAX_KEYWORDS};
use crate::{BIT_RECENT, Expunged, MailboxIndex, Record, UNKNOWN_DATE, UNKNOWN_SIZE};

const MAGIC: &[u8; 8] = b"CLMBIDX\0";
const END_MAGIC: &[u8; 8] = b"CLMBEND\0";
const VERSION: u32 = 3;
const HEADER_SIZE: usize = 8 + 4 * 4 + 8 * 2 + 4 * 6 + 8 * 2 + 4;
const RECORD_SIZE: usize = 32;
const EXTRA_SIZE: usize = 24;
/// The fewest bytes an expunge takes (five one-byte fields).
const MIN_EXPUNGE_SIZE: u64 = 5;
const TRAILER_SIZE: usize = 4 + 8;

const R_RECENT: u8 = 0x01;
const R_EXTRA: u8 = 0x02;
/// A date or size the record does not know (or holds in its extra).
const NOT_HERE: u32 = u32::MAX;

/// The record's own fields for a date and a size, or `None` when either needs the extra.
fn compact_date_size(date: i64, size: u64) -> Option<(u32, u32)> {
    let date = if date == UNKNOWN_DATE {
        NOT_HERE
    } else {
        u32::try_from(date).ok().filter(|d| *d != NOT_HERE)?
    };
    let size = if size == UNKNOWN_SIZE {
        NOT_HERE
    } else {
        u32::try_from(size).ok().filter(|s| *s != NOT_HERE)?
    };
    Some((date, size))
}

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

/// Makes block `block` of an index file's references undecodable (its decoded length one
/// more than its names) with the checksums fixed: what a writer's bug would leave, for the
/// backends' tests of the repair. `false` when the file has no such block.
#[doc(hidden)]
pub fn damage_reference_block(bytes: &mut [u8], block: usize) -> bool {
    let u32_at = |at: usize| Reader::new(bytes.get(at..).unwrap_or(&[])).u32();
    let entry = (|| {
        let count = u32_at(8 + 4 * 3)? as usize;
        let at = 8 + 4 * 4 + 8 * 2 + 4 * 2;
        let (kw, state, extras) = (u32_at(at)?, u32_at(at + 4)?, u32_at(at + 8)?);
        let table = HEADER_SIZE + kw as usize + state as usize + extras as usize * EXTRA_SIZE;
        let entry = table + count * RECORD_SIZE + block * 8 + 4;
        (block < count.div_ceil(crate::file_names::BLOCK)).then_some(entry)
    })();
    let Some((entry, len)) = entry.and_then(|e| Some((e, u32_at(e)?))) else {
        return false;
    };
    bytes[entry..entry + 4].copy_from_slice(&len.wrapping_add(1).to_le_bytes());
    fix_index_checksums(bytes);
    true
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
        let mut records = Vec::with_capacity(self.records.len() * RECORD_SIZE);
        let mut extras = Vec::new();
        let mut names = BlockWriter::default();
        let mut scratch = Scratch::default();
        for r in &self.records {
            self.arena
                .with(r.backend, &mut scratch, |name| names.push(name));
            let compact = compact_date_size(r.internal_date, r.size).filter(|_| r.keywords == 0);
            let mut bits = 0;
            if r.bits & BIT_RECENT != 0 {
                bits |= R_RECENT;
            }
            if compact.is_none() {
                bits |= R_EXTRA;
                put_u64(&mut extras, r.keywords);
                put_u64(&mut extras, r.internal_date as u64);
                put_u64(&mut extras, r.size);
            }
            let (date, size) = compact.unwrap_or((0, 0));
            put_u32(&mut records, r.uid);
            records.extend_from_slice(&[r.system & SystemFlags::ALL.bits(), bits, 0, 0]);
            put_u64(&mut records, r.modseq);
            put_u64(&mut records, r.created);
            put_u32(&mut records, date);
            put_u32(&mut records, size);
        }
        let names = names.finish();
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
        let body_len = kw_bytes.len()
            + backend_state.len()
            + records.len()
            + extras.len()
            + names.len()
            + expunges.len();
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
        put_u32(&mut out, len_u32(extras.len() / EXTRA_SIZE));
        put_u32(&mut out, 0);
        put_u64(&mut out, names.len() as u64);
        put_u64(&mut out, expunges.len() as u64);
        let crc = crc32c::crc32c(&out);
        put_u32(&mut out, crc);
        let body_start = out.len();
        out.extend_from_slice(&kw_bytes);
        out.extend_from_slice(backend_state);
        out.extend_from_slice(&extras);
        out.extend_from_slice(&records);
        drop(records);
        out.extend_from_slice(&names);
        out.extend_from_slice(&expunges);
        let crc = crc32c::crc32c(&out[body_start..]);
        put_u32(&mut out, crc);
        out.extend_from_slice(END_MAGIC);
        out
    }

    /// Reads an index file's bytes, validating every field (see the module documentation).
    pub fn from_file_bytes(mut bytes: &[u8]) -> Result<LoadedIndex, IndexFileError> {
        let len = bytes.len() as u64;
        Self::read_from(&mut bytes, len)
    }

    /// Reads an index file of `len` bytes from `src`, a section at a time and the records a
    /// chunk at a time, so that opening a large mailbox copies its file once, into the
    /// structures that keep it, and not first into a buffer as large as the file.
    fn read_from(src: &mut impl Read, len: u64) -> Result<LoadedIndex, IndexFileError> {
        let mut header = [0u8; HEADER_SIZE];
        let filled = read_up_to(src, &mut header)?;
        let mut h = Reader::new(&header[..filled]);
        if h.take(8).ok_or(IndexFileError::BadMagic)? != MAGIC {
            return Err(IndexFileError::BadMagic);
        }
        let version = h.u32().ok_or(IndexFileError::BadMagic)?;
        if version != VERSION {
            return Err(IndexFileError::Version(version));
        }
        if len < (HEADER_SIZE + TRAILER_SIZE) as u64 || filled < HEADER_SIZE {
            return Err(IndexFileError::Size {
                expected: (HEADER_SIZE + TRAILER_SIZE) as u64,
                actual: len,
            });
        }
        // The header is whole (checked above), so its reads cannot fail; zeros stand in anyway.
        let uid_validity = h.u32().unwrap_or(0);
        let uid_next = h.u32().unwrap_or(0);
        let record_count = u64::from(h.u32().unwrap_or(0));
        let highest_modseq = h.u64().unwrap_or(0);
        let expunge_horizon = h.u64().unwrap_or(0);
        let keyword_count = h.u32().unwrap_or(0) as usize;
        let expunge_count = u64::from(h.u32().unwrap_or(0));
        let keywords_len = u64::from(h.u32().unwrap_or(0));
        let backend_state_len = u64::from(h.u32().unwrap_or(0));
        let extra_count = u64::from(h.u32().unwrap_or(0));
        let zero = h.u32().unwrap_or(0);
        let references_len = h.u64().unwrap_or(0);
        let expunges_len = h.u64().unwrap_or(0);
        // Both counts are below 2^32, so these cannot overflow.
        let records_len = record_count * RECORD_SIZE as u64;
        let extras_len = extra_count * EXTRA_SIZE as u64;
        let crc_at = h.pos;
        let stored_crc = h.u32().unwrap_or(0);
        if crc32c::crc32c(&header[..crc_at]) != stored_crc {
            return Err(IndexFileError::HeaderChecksum);
        }
        // Sizes in u64 with checked arithmetic: a hostile count cannot overflow into a small one.
        let sections = [
            keywords_len,
            backend_state_len,
            extras_len,
            records_len,
            references_len,
            expunges_len,
        ];
        let body_len = sections
            .iter()
            .try_fold(0u64, |acc, n| acc.checked_add(*n))
            .unwrap_or(u64::MAX);
        let expected = body_len.saturating_add((HEADER_SIZE + TRAILER_SIZE) as u64);
        if expected != len {
            return Err(IndexFileError::Size {
                expected,
                actual: len,
            });
        }

        let mut body = Body {
            src,
            crc: 0,
            consumed: 0,
        };
        let header = FileHeader {
            uid_validity,
            uid_next,
            record_count,
            highest_modseq,
            expunge_horizon,
            keyword_count,
            expunge_count,
            extra_count,
            zero,
            sections,
        };
        let parsed = read_body(&mut body, &header);
        // A field found wrong is reported as the checksum's failure when the body does not
        // match its checksum either (bit rot, not a writer's mistake): read the rest for it.
        let rest = body_len.saturating_sub(body.consumed);
        body.skip(rest)?;
        let mut trailer = [0u8; TRAILER_SIZE];
        body.src.read_exact(&mut trailer)?;
        if &trailer[4..] != END_MAGIC {
            return Err(IndexFileError::BadMagic);
        }
        let body_crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
        if body.crc != body_crc {
            return Err(IndexFileError::BodyChecksum);
        }
        parsed
    }

    /// Decodes every backend reference still in the loaded file's coding (see `file_names.rs`),
    /// without keeping them: `Err` names the first block that does not decode. What
    /// `columba index check` runs; opening a file checks all but this.
    pub fn check_references(&self) -> Result<(), String> {
        self.arena.file().map_or(Ok(()), FileNames::check)
    }

    /// A block of the loaded file's references that did not decode when it was read (its
    /// references read as empty), if one did not: the file is not what this index's writer
    /// writes, and the backend should rebuild from the mail files.
    pub fn reference_damage(&self) -> Option<String> {
        self.arena
            .file()
            .and_then(FileNames::damage)
            .map(str::to_owned)
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
        let mut file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let len = file.metadata()?.len();
        Self::read_from(&mut file, len).map(Some)
    }
}

/// Fills `buf` from `src` as far as it has bytes; returns how many it got.
fn read_up_to(src: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match src.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The body of an index file as it is read, with the checksum of what was read so far.
struct Body<'a, R> {
    src: &'a mut R,
    crc: u32,
    consumed: u64,
}

impl<R: Read> Body<'_, R> {
    fn read_exact(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        self.src.read_exact(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, buf);
        self.consumed += buf.len() as u64;
        Ok(())
    }

    /// The next `len` bytes; `len` was checked against the file's length.
    fn bytes(&mut self, len: u64) -> Result<Vec<u8>, IndexFileError> {
        let mut out =
            vec![0; usize::try_from(len).map_err(|_| IndexFileError::Header("section too long"))?];
        self.read_exact(&mut out)?;
        Ok(out)
    }

    /// Reads and checksums `len` bytes without keeping them.
    fn skip(&mut self, mut len: u64) -> std::io::Result<()> {
        let mut buf = [0u8; 8192];
        while len > 0 {
            let n = len.min(buf.len() as u64) as usize;
            self.read_exact(&mut buf[..n])?;
            len -= n as u64;
        }
        Ok(())
    }
}

/// The header fields the body is read with.
struct FileHeader {
    uid_validity: u32,
    uid_next: u32,
    record_count: u64,
    highest_modseq: u64,
    expunge_horizon: u64,
    keyword_count: usize,
    expunge_count: u64,
    extra_count: u64,
    zero: u32,
    /// Lengths of keywords, backend state, extras, records, references, expunges.
    sections: [u64; 6],
}

/// Records decoded per read: 64 KiB, so that the copy out of the page cache stays in the CPU's
/// cache on its way into the index's array.
const RECORDS_PER_READ: usize = 2048;

/// Reads and checks the body's sections in file order.
fn read_body<R: Read>(
    body: &mut Body<'_, R>,
    h: &FileHeader,
) -> Result<LoadedIndex, IndexFileError> {
    let [
        keywords_len,
        backend_state_len,
        extras_len,
        _,
        references_len,
        expunges_len,
    ] = h.sections;
    let uid_validity =
        UidValidity::new(h.uid_validity).ok_or(IndexFileError::Header("UIDVALIDITY is 0"))?;
    if h.uid_next == 0 {
        return Err(IndexFileError::Header("UIDNEXT is 0"));
    }
    if h.highest_modseq == 0 {
        return Err(IndexFileError::Header("HIGHESTMODSEQ is 0"));
    }
    if h.expunge_horizon > h.highest_modseq {
        return Err(IndexFileError::Header(
            "expunge horizon above HIGHESTMODSEQ",
        ));
    }
    if h.keyword_count > MAX_KEYWORDS {
        return Err(IndexFileError::Header("too many keywords"));
    }
    if h.zero != 0 {
        return Err(IndexFileError::Header("reserved field not zero"));
    }
    if h.extra_count > h.record_count {
        return Err(IndexFileError::Header("more extras than records"));
    }
    // Counts against the bytes that must hold them, before anything is allocated for them.
    if h.expunge_count > expunges_len / MIN_EXPUNGE_SIZE {
        return Err(IndexFileError::Header(
            "more expunges than their section holds",
        ));
    }

    let keyword_bytes = body.bytes(keywords_len)?;
    let mut kw = Reader::new(&keyword_bytes);
    let mut table = KeywordTable::default();
    for i in 0..h.keyword_count {
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
    let backend_state = body.bytes(backend_state_len)?;
    let known_keywords = if h.keyword_count == 64 {
        u64::MAX
    } else {
        (1u64 << h.keyword_count) - 1
    };

    let extras = body.bytes(extras_len)?;
    let (extras, _) = extras.as_chunks::<EXTRA_SIZE>();
    let mut records = RecordReader {
        extras: extras.iter(),
        records: Vec::with_capacity(h.record_count as usize),
        unclaimed_recent: 0,
        prev_uid: 0,
        uid_next: h.uid_next,
        highest_modseq: h.highest_modseq,
        known_keywords,
    };
    let mut chunk = vec![[0u8; RECORD_SIZE]; RECORDS_PER_READ];
    let mut left = h.record_count as usize;
    while left > 0 {
        let n = left.min(RECORDS_PER_READ);
        body.read_exact(chunk[..n].as_flattened_mut())?;
        records.push(&chunk[..n])?;
        left -= n;
    }
    drop(chunk);
    if records.extras.next().is_some() {
        return Err(IndexFileError::Header("more extras than records with one"));
    }
    let (records, unclaimed_recent) = (records.records, records.unclaimed_recent);
    let names = FileNames::parse(body.bytes(references_len)?, records.len())
        .map_err(IndexFileError::Header)?;
    let arena = Arena::from_file(names, records.len());

    let expunge_bytes = body.bytes(expunges_len)?;
    let mut expunges = Vec::with_capacity(h.expunge_count as usize);
    let mut e = Reader::new(&expunge_bytes);
    let (mut prev_uid, mut prev) = (0u32, 0u64);
    for index in 0..h.expunge_count as usize {
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
        if uid == 0 || uid >= h.uid_next {
            return Err(bad("UID out of range"));
        }
        if expunged > h.highest_modseq || expunged <= h.expunge_horizon {
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
            uid_next: h.uid_next,
            highest_modseq: h.highest_modseq,
            records,
            arena,
            keywords: table,
            expunges,
            expunge_horizon: h.expunge_horizon,
            unclaimed_recent,
            journal: None,
        },
        backend_state,
    })
}

/// Copies fixed-size records (and their extras) into the index's array, checking every field;
/// each record's reference is the file's reference of the same number.
struct RecordReader<'e> {
    extras: std::slice::Iter<'e, [u8; EXTRA_SIZE]>,
    records: Vec<Record>,
    unclaimed_recent: usize,
    prev_uid: u32,
    uid_next: u32,
    highest_modseq: u64,
    known_keywords: u64,
}

impl RecordReader<'_> {
    fn push(&mut self, fixed: &[[u8; RECORD_SIZE]]) -> Result<(), IndexFileError> {
        for f in fixed {
            let index = self.records.len();
            let bad = |what| IndexFileError::Record { index, what };
            let u32_at = |at: usize| u32::from_le_bytes([f[at], f[at + 1], f[at + 2], f[at + 3]]);
            let u64_at = |at: usize| u64::from(u32_at(at)) | u64::from(u32_at(at + 4)) << 32;
            let uid = u32_at(0);
            let (system, bits) = (f[4], f[5]);
            let (modseq, created) = (u64_at(8), u64_at(16));
            let (date, size) = (u32_at(24), u32_at(28));
            if uid <= self.prev_uid {
                return Err(bad("UIDs not ascending"));
            }
            if uid >= self.uid_next {
                return Err(bad("UID at or above UIDNEXT"));
            }
            if system & !SystemFlags::ALL.bits() != 0 || bits & !(R_RECENT | R_EXTRA) != 0 {
                return Err(bad("unknown flag bits"));
            }
            if f[6] != 0 || f[7] != 0 {
                return Err(bad("reserved field not zero"));
            }
            if modseq == 0 || modseq > self.highest_modseq || created == 0 || created > modseq {
                return Err(bad("modseq out of order"));
            }
            let (keywords, internal_date, size) = if bits & R_EXTRA != 0 {
                let e = self.extras.next().ok_or(bad("extra missing"))?;
                let at = |i: usize| {
                    u64::from_le_bytes([
                        e[i],
                        e[i + 1],
                        e[i + 2],
                        e[i + 3],
                        e[i + 4],
                        e[i + 5],
                        e[i + 6],
                        e[i + 7],
                    ])
                };
                let (keywords, date, size) = (at(0), at(8) as i64, at(16));
                if u32_at(24) != 0 || u32_at(28) != 0 {
                    return Err(bad("date or size both in the record and its extra"));
                }
                if keywords == 0 && compact_date_size(date, size).is_some() {
                    return Err(bad("extra not needed"));
                }
                if keywords & !self.known_keywords != 0 {
                    return Err(bad("keyword bit without a keyword name"));
                }
                (keywords, date, size)
            } else {
                let date = if date == NOT_HERE {
                    UNKNOWN_DATE
                } else {
                    i64::from(date)
                };
                let size = if size == NOT_HERE {
                    UNKNOWN_SIZE
                } else {
                    u64::from(size)
                };
                (0, date, size)
            };
            let bits = if bits & R_RECENT != 0 {
                self.unclaimed_recent += 1;
                BIT_RECENT
            } else {
                0
            };
            self.prev_uid = uid;
            self.records.push(Record {
                uid,
                system,
                bits,
                keywords,
                modseq,
                created,
                internal_date,
                size,
                backend: Span::in_file(len_u32(index)),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
