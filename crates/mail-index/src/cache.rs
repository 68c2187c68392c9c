//! The cache file: values derived from a message (its encoded ENVELOPE, BODYSTRUCTURE, chosen
//! header fields) kept on disk so that a second FETCH or SEARCH of them reads no mail file, as
//! Dovecot's `dovecot.index.cache` does.
//!
//! The file is append-only: each entry is `uid u32 | field u8 | length u32 | crc32c u32 | value`,
//! after a header naming the mailbox's UIDVALIDITY. Entries of expunged messages become garbage,
//! and the file is rewritten without them (temporary file + rename) once garbage is most of it.
//! Other processes append to the same file; a reader picks their entries up by scanning from
//! where it stopped when the file has grown.
//!
//! Nothing in the file is trusted: a bad header makes the cache start over empty, and a bad
//! entry (torn write after a crash, flipped bits) ends the valid part, which is truncated away.
//! Every such repair is reported as a [`CacheRepair`] for the caller to log. Being a cache, the
//! file is never fsynced: losing it costs only the time to derive the values again.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::FileExt as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use mail_types::{Uid, UidValidity};

const MAGIC: &[u8; 8] = b"CLMBCCH\0";
const VERSION: u32 = 2;
/// magic, version, UIDVALIDITY, crc32c of the three.
const HEADER_SIZE: u64 = 8 + 4 + 4 + 4;
const ENTRY_HEADER: usize = 4 + 1 + 4 + 4;
/// Larger values are not cached (a BODYSTRUCTURE of thousands of parts): deriving them again is
/// cheaper than carrying them.
pub const MAX_VALUE: usize = 1 << 20;
/// Rewrite once garbage is at least this large and most of the file.
const COMPACT_MIN_GARBAGE: u64 = 1 << 20;

/// Something wrong with the cache file that was repaired; the caller logs it as a warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRepair {
    pub path: PathBuf,
    pub what: String,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    offset: u64,
    len: u32,
    crc: u32,
}

/// One mailbox's cache file, open.
#[derive(Debug)]
pub struct MessageCache {
    path: PathBuf,
    file: Option<File>,
    uid_validity: UidValidity,
    slots: HashMap<(u32, u8), Slot>,
    /// How far the file has been scanned (and is known valid).
    end: u64,
    garbage: u64,
}

impl MessageCache {
    /// Opens (or creates) the cache at `path` for a mailbox with `uid_validity`. Never fails: a
    /// file that cannot be used is replaced, and a cache that cannot be written works in memory
    /// only as an empty cache. Returns what had to be repaired.
    pub fn open(path: &Path, uid_validity: UidValidity) -> (MessageCache, Vec<CacheRepair>) {
        let mut cache = MessageCache {
            path: path.to_owned(),
            file: None,
            uid_validity,
            slots: HashMap::new(),
            end: HEADER_SIZE,
            garbage: 0,
        };
        let mut repairs = Vec::new();
        match OpenOptions::new().read(true).write(true).open(path) {
            Ok(mut f) => match read_header(&mut f) {
                Ok(v) if v == uid_validity.get() => {
                    cache.file = Some(f);
                    cache.scan_tail(&mut repairs);
                }
                Ok(_) => {
                    // Another UIDVALIDITY: the values belong to other messages.
                    cache.reset(&mut repairs, "belongs to another UIDVALIDITY; started over");
                }
                Err(what) => cache.reset(&mut repairs, what),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => cache.reset(&mut repairs, ""),
            Err(e) => repairs.push(cache.repair(format!("cannot open: {e}; caching disabled"))),
        }
        (cache, repairs)
    }

    fn repair(&self, what: String) -> CacheRepair {
        CacheRepair {
            path: self.path.clone(),
            what,
        }
    }

    /// A cache with no file: holds nothing, stores nothing. For when the real one cannot be
    /// used, so callers need no second code path.
    pub fn disabled() -> MessageCache {
        MessageCache {
            path: PathBuf::new(),
            file: None,
            uid_validity: UidValidity::MIN,
            slots: HashMap::new(),
            end: HEADER_SIZE,
            garbage: 0,
        }
    }

    /// The UIDVALIDITY the cache's values belong to.
    pub fn uid_validity(&self) -> UidValidity {
        self.uid_validity
    }

    /// Drops the open file and everything known of it.
    fn forget_file(&mut self) {
        self.slots.clear();
        self.garbage = 0;
        self.end = HEADER_SIZE;
        self.file = None;
    }

    /// Replaces the file with an empty one; `why` empty means there simply was none.
    fn reset(&mut self, repairs: &mut Vec<CacheRepair>, why: &str) {
        if !why.is_empty() {
            repairs.push(self.repair(why.to_owned()));
        }
        self.forget_file();
        match write_fresh(&self.path, self.uid_validity, &[]) {
            Ok(f) => self.file = Some(f),
            Err(e) => repairs.push(self.repair(format!("cannot create: {e}; caching disabled"))),
        }
    }

    /// Reads entries appended since the last scan (by this or another process). A bad entry
    /// ends the valid part; the file is cut there so later appends follow valid data.
    fn scan_tail(&mut self, repairs: &mut Vec<CacheRepair>) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        let Ok(len) = file.metadata().map(|m| m.len()) else {
            return;
        };
        if len <= self.end {
            return;
        }
        if file.seek(SeekFrom::Start(self.end)).is_err() {
            return;
        }
        let mut reader = std::io::BufReader::with_capacity(256 * 1024, &*file);
        let mut pos = self.end;
        let mut head = [0u8; ENTRY_HEADER];
        let mut value = Vec::new();
        let mut bad = None;
        while pos < len {
            if reader.read_exact(&mut head).is_err() {
                bad = Some("truncated entry header");
                break;
            }
            let uid = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
            let field = head[4];
            let vlen = u32::from_le_bytes([head[5], head[6], head[7], head[8]]);
            let crc = u32::from_le_bytes([head[9], head[10], head[11], head[12]]);
            if uid == 0
                || vlen as usize > MAX_VALUE
                || pos + (ENTRY_HEADER as u64) + u64::from(vlen) > len
            {
                bad = Some("entry header out of range");
                break;
            }
            value.resize(vlen as usize, 0);
            if reader.read_exact(&mut value).is_err() {
                bad = Some("truncated entry");
                break;
            }
            if entry_crc(self.uid_validity, uid, field, &value) != crc {
                bad = Some("entry checksum mismatch");
                break;
            }
            let slot = Slot {
                offset: pos + ENTRY_HEADER as u64,
                len: vlen,
                crc,
            };
            if let Some(old) = self.slots.insert((uid, field), slot) {
                self.garbage += ENTRY_HEADER as u64 + u64::from(old.len);
            }
            pos += ENTRY_HEADER as u64 + u64::from(vlen);
        }
        drop(reader);
        self.end = pos;
        if let Some(what) = bad {
            repairs.push(self.repair(format!("{what} at offset {pos}; truncated there")));
            if let Some(f) = self.file.as_ref()
                && f.set_len(pos).is_err()
            {
                self.file = None;
            }
        }
    }

    /// Another process compacted the file (renamed a new one over it): reopen and rescan,
    /// instead of reading and appending to the unlinked old file.
    fn follow_replacement(&mut self, repairs: &mut Vec<CacheRepair>) {
        use std::os::unix::fs::MetadataExt as _;
        let Some(file) = self.file.as_ref() else {
            return;
        };
        let (Ok(ours), Ok(theirs)) = (file.metadata(), std::fs::metadata(&self.path)) else {
            return;
        };
        if ours.ino() == theirs.ino() && ours.dev() == theirs.dev() {
            return;
        }
        self.forget_file();
        // Gone or unreadable: caching stops until the mailbox is opened again.
        if let Ok(mut f) = OpenOptions::new().read(true).write(true).open(&self.path) {
            match read_header(&mut f) {
                Ok(v) if v == self.uid_validity.get() => self.file = Some(f),
                Ok(_) => {}
                Err(what) => repairs.push(self.repair(what.to_owned())),
            }
        }
    }

    /// The cached value of `field` for `uid`, if any. Values are checked against their checksum
    /// again when read, so damage done after the scan is not served either.
    pub fn get(&mut self, uid: Uid, field: u8) -> Option<Vec<u8>> {
        let slot = match self.slots.get(&(uid.get(), field)) {
            Some(s) => *s,
            None => {
                // Another process may have added it.
                let mut repairs = Vec::new();
                self.scan_tail(&mut repairs);
                *self.slots.get(&(uid.get(), field))?
            }
        };
        let file = self.file.as_ref()?;
        let mut value = vec![0u8; slot.len as usize];
        file.read_exact_at(&mut value, slot.offset).ok()?;
        if entry_crc(self.uid_validity, uid.get(), field, &value) != slot.crc {
            self.slots.remove(&(uid.get(), field));
            return None;
        }
        Some(value)
    }

    /// The values of `field` for many messages at once, in the order of `uids`: what
    /// [`get`](Self::get) gives for each, read with a few large reads instead of one per
    /// message (entries near each other in the file are read together).
    pub fn get_many(&mut self, uids: &[Uid], field: u8) -> Vec<Option<Vec<u8>>> {
        /// Entries closer than this are read in one go, gap included.
        const MAX_GAP: u64 = 64 * 1024;
        /// The largest single read.
        const MAX_RUN: u64 = 4 << 20;
        let mut out = vec![None; uids.len()];
        if uids
            .iter()
            .any(|u| !self.slots.contains_key(&(u.get(), field)))
        {
            // Another process may have added some.
            let mut repairs = Vec::new();
            self.scan_tail(&mut repairs);
        }
        let mut wanted: Vec<(Slot, usize)> = uids
            .iter()
            .enumerate()
            .filter_map(|(i, u)| self.slots.get(&(u.get(), field)).map(|s| (*s, i)))
            .collect();
        wanted.sort_unstable_by_key(|(s, _)| s.offset);
        let Some(file) = self.file.as_ref() else {
            return out;
        };
        let mut bad = Vec::new();
        let mut buf = Vec::new();
        let mut i = 0;
        while i < wanted.len() {
            let start = wanted[i].0.offset;
            let mut end = start + u64::from(wanted[i].0.len);
            let mut j = i + 1;
            while let Some((next, _)) = wanted.get(j) {
                let next_end = next.offset + u64::from(next.len);
                if next.offset > end + MAX_GAP || next_end - start > MAX_RUN {
                    break;
                }
                end = end.max(next_end);
                j += 1;
            }
            buf.resize((end - start) as usize, 0);
            if file.read_exact_at(&mut buf, start).is_ok() {
                for &(slot, idx) in &wanted[i..j] {
                    let from = (slot.offset - start) as usize;
                    let Some(value) = buf.get(from..from + slot.len as usize) else {
                        continue;
                    };
                    let uid = uids[idx].get();
                    if entry_crc(self.uid_validity, uid, field, value) == slot.crc {
                        out[idx] = Some(value.to_vec());
                    } else {
                        bad.push(uid);
                    }
                }
            }
            i = j;
        }
        for uid in bad {
            self.slots.remove(&(uid, field));
        }
        out
    }

    /// Adds a value. Failures are ignored: the value is simply not cached.
    pub fn put(&mut self, uid: Uid, field: u8, value: &[u8]) {
        if value.len() > MAX_VALUE {
            return;
        }
        // Follow another process's compaction, and pick up its entries, so our offsets are right.
        let mut repairs = Vec::new();
        self.follow_replacement(&mut repairs);
        self.scan_tail(&mut repairs);
        let Some(file) = self.file.as_mut() else {
            return;
        };
        let crc = entry_crc(self.uid_validity, uid.get(), field, value);
        let mut entry = Vec::with_capacity(ENTRY_HEADER + value.len());
        entry.extend_from_slice(&uid.get().to_le_bytes());
        entry.push(field);
        entry.extend_from_slice(&(value.len() as u32).to_le_bytes());
        entry.extend_from_slice(&crc.to_le_bytes());
        entry.extend_from_slice(value);
        // One write at the end of the file, so that a concurrent appender cannot interleave.
        let at = match file.seek(SeekFrom::End(0)) {
            Ok(at) => at,
            Err(_) => return,
        };
        if at != self.end || file.write_all(&entry).is_err() {
            // Someone appended between our scan and our write, or the disk is full: leave the
            // entry out rather than guess offsets.
            return;
        }
        let slot = Slot {
            offset: at + ENTRY_HEADER as u64,
            len: value.len() as u32,
            crc,
        };
        if let Some(old) = self.slots.insert((uid.get(), field), slot) {
            self.garbage += ENTRY_HEADER as u64 + u64::from(old.len);
        }
        self.end = at + entry.len() as u64;
    }

    /// Forgets the values of expunged messages; compacts the file when garbage dominates.
    pub fn forget(&mut self, uids: &[Uid]) {
        let gone: std::collections::HashSet<u32> = uids.iter().map(|u| u.get()).collect();
        let mut freed = 0u64;
        self.slots.retain(|(uid, _), slot| {
            if gone.contains(uid) {
                freed += ENTRY_HEADER as u64 + u64::from(slot.len);
                false
            } else {
                true
            }
        });
        self.garbage += freed;
        if self.garbage >= COMPACT_MIN_GARBAGE && self.garbage * 2 > self.end {
            self.compact();
        }
    }

    /// Keeps only the values of messages `live` accepts: after opening, the owner drops what
    /// the file still holds of messages expunged since it was last compacted.
    pub fn retain(&mut self, mut live: impl FnMut(Uid) -> bool) {
        let dead: Vec<Uid> = self
            .slots
            .keys()
            .filter_map(|(u, _)| Uid::new(*u))
            .filter(|u| !live(*u))
            .collect();
        if !dead.is_empty() {
            self.forget(&dead);
        }
    }

    /// Rewrites the file with only the live values.
    pub fn compact(&mut self) {
        let Some(file) = self.file.as_ref() else {
            return;
        };
        let mut keys: Vec<(u32, u8)> = self.slots.keys().copied().collect();
        keys.sort_unstable();
        let mut body = Vec::new();
        let mut slots = HashMap::with_capacity(keys.len());
        for key in keys {
            let Some(slot) = self.slots.get(&key).copied() else {
                continue;
            };
            let mut value = vec![0u8; slot.len as usize];
            if file.read_exact_at(&mut value, slot.offset).is_err()
                || entry_crc(self.uid_validity, key.0, key.1, &value) != slot.crc
            {
                continue;
            }
            let offset = HEADER_SIZE + body.len() as u64 + ENTRY_HEADER as u64;
            body.extend_from_slice(&key.0.to_le_bytes());
            body.push(key.1);
            body.extend_from_slice(&slot.len.to_le_bytes());
            body.extend_from_slice(&slot.crc.to_le_bytes());
            body.extend_from_slice(&value);
            slots.insert(key, Slot { offset, ..slot });
        }
        if let Ok(f) = write_fresh(&self.path, self.uid_validity, &body) {
            self.end = HEADER_SIZE + body.len() as u64;
            self.file = Some(f);
            self.slots = slots;
            self.garbage = 0;
        }
    }

    /// Bytes of the file that hold live values, and the garbage; for `index dump` and tests.
    pub fn sizes(&self) -> (u64, u64) {
        (self.end.saturating_sub(self.garbage), self.garbage)
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

/// The checksum covers the mailbox's UIDVALIDITY too, so that an entry copied in from another
/// mailbox's cache (same UID, same field, even at the same offset) never passes for ours.
fn entry_crc(uid_validity: UidValidity, uid: u32, field: u8, value: &[u8]) -> u32 {
    let mut head = [0u8; 13];
    head[..4].copy_from_slice(&uid_validity.get().to_le_bytes());
    head[4..8].copy_from_slice(&uid.to_le_bytes());
    head[8] = field;
    head[9..].copy_from_slice(&(value.len() as u32).to_le_bytes());
    crc32c::crc32c_append(crc32c::crc32c(&head), value)
}

fn header_bytes(uid_validity: UidValidity) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_SIZE as usize);
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&VERSION.to_le_bytes());
    h.extend_from_slice(&uid_validity.get().to_le_bytes());
    let crc = crc32c::crc32c(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    h
}

/// Reads and checks the header; returns the UIDVALIDITY it names.
fn read_header(f: &mut File) -> Result<u32, &'static str> {
    let mut h = [0u8; HEADER_SIZE as usize];
    f.read_exact_at(&mut h, 0)
        .map_err(|_| "shorter than its header; started over")?;
    if &h[..8] != MAGIC {
        return Err("bad magic; started over");
    }
    if h[8..12] != VERSION.to_le_bytes() {
        return Err("unknown version; started over");
    }
    if crc32c::crc32c(&h[..16]).to_le_bytes() != h[16..20] {
        return Err("header checksum mismatch; started over");
    }
    Ok(u32::from_le_bytes([h[12], h[13], h[14], h[15]]))
}

/// Writes a new cache file (header + `body`) beside `path` and renames it into place.
fn write_fresh(path: &Path, uid_validity: UidValidity, body: &[u8]) -> std::io::Result<File> {
    let (_, tmp) = crate::codec::temp_beside(path);
    let result = (|| {
        // The user's alone: it holds envelopes, subjects and addresses.
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&header_bytes(uid_validity))?;
        f.write_all(body)?;
        std::fs::rename(&tmp, path)?;
        Ok(f)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests;
