//! `dovecot-uidlist`, the UID ↔ file map of a Maildir, read and written as Dovecot does
//! (`maildir-uidlist.c`).
//!
//! Version 3 (Dovecot 1.1 and later):
//!
//! ```text
//! 3 V<uidvalidity> N<nextuid> G<mailbox guid> [<key><value> ...]
//! <uid> [<key><value> ...] :<base file name>
//! ```
//!
//! Record keys are capital letters (`W` size with CRLF, `S` stored size, `G` message GUID, `P`
//! POP3 UIDL, `O` POP3 order); unknown ones are carried along. Version 1 (`1 <uidvalidity>
//! <nextuid>` and `<uid> <file name>`) is still read. UIDs ascend; NEXTUID in the header may lag
//! behind the records (Dovecot appends records in place without rewriting the header), so the
//! next UID is the larger of the header value and the last record + 1.
//!
//! Writers hold the `dovecot-uidlist.lock` dot lock. New records go to the end of the file
//! (`append`, Dovecot's `maildir_uidlist_sync_update`), fdatasynced before the UIDs they give
//! are used; the whole file is rewritten (`write`: `dovecot-uidlist.tmp`, fsync, rename) only when
//! it must change otherwise: a new header, a damaged or old-format file, or once a quarter of its
//! records name expunged messages (`wants_rewrite`, Dovecot's `maildir_uidlist_want_recreate`).
//! A crash during an append can leave a torn last line: readers ignore it, but its UID counts as
//! used, and the next writer rewrites the file instead of appending after it.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::Duration;

use super::dotlock::LockSettings;
use super::io::{self as mio, FileStamp};
use crate::{Result, StoreError};
use foldhash::{HashMap as FastMap, HashMapExt as _};

pub const FILE_NAME: &str = "dovecot-uidlist";
const TEMP_NAME: &str = "dovecot-uidlist.tmp";

/// `MAILDIR_UIDLIST_LOCK_STALE_TIMEOUT` (and the wait Dovecot allows on top of it).
pub const LOCK: LockSettings = LockSettings {
    stale_timeout: Duration::from_secs(120),
    timeout: Duration::from_secs(122),
};

/// The parsed file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Uidlist {
    /// 0 when the header was unreadable.
    pub uid_validity: u32,
    /// At least one more than the highest UID ever listed.
    pub next_uid: u32,
    /// The mailbox GUID, 32 hex digits.
    pub guid: Option<String>,
    /// Header fields Columba does not interpret, kept as written (`<key><value>`).
    pub header_ext: Vec<String>,
    pub records: Vec<Record>,
}

/// One message line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub uid: u32,
    /// Extension fields, space-separated `<key><value>` (may be empty).
    pub ext: String,
    /// The base name (file name up to `:`).
    pub base: String,
}

/// The value of extension field `key` in a record's space-separated extension fields.
pub fn ext_value(ext: &str, key: u8) -> Option<&str> {
    ext.split(' ')
        .find(|f| f.as_bytes().first() == Some(&key))
        .map(|f| &f[1..])
}

/// The result of reading a file, with what was wrong with it.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub list: Uidlist,
    /// The header gave a version, a UIDVALIDITY and a NEXTUID.
    pub header_ok: bool,
    /// The file is not what Columba would write (broken lines, old version, no GUID...), so it
    /// should be rewritten at the next chance.
    pub needs_rewrite: bool,
}

/// Parses the file, keeping every record that can be trusted. Problems are logged with the file
/// and line; nothing here panics on bad input.
pub fn parse(content: &[u8], path: &Path) -> Parsed {
    let mut list = Uidlist::default();
    let mut needs_rewrite = false;
    let mut lines = content.split_inclusive(|&b| b == b'\n');
    let warn = |line: usize, problem: &str| {
        tracing::warn!(file = %path.display(), line, "broken dovecot-uidlist: {problem}");
    };

    let mut version = 0u8;
    let header_ok = match lines.next() {
        None => {
            warn(1, "the file is empty");
            false
        }
        Some(raw) if !raw.ends_with(b"\n") => {
            warn(1, "the header is truncated");
            false
        }
        Some(raw) => {
            let text = String::from_utf8_lossy(trim_newline(raw)).into_owned();
            match parse_header(&text, &mut list) {
                Ok(v) => {
                    version = v;
                    if v != 3 || list.guid.is_none() {
                        needs_rewrite = true;
                    }
                    true
                }
                Err(problem) => {
                    warn(1, &problem);
                    list = Uidlist::default();
                    false
                }
            }
        }
    };
    if !header_ok {
        needs_rewrite = true;
    }

    let mut last_uid = 0u32;
    for (n, raw) in lines.enumerate() {
        let line_no = n + 2;
        let complete = raw.ends_with(b"\n");
        let text = String::from_utf8_lossy(trim_newline(raw));
        if text.is_empty() && complete {
            continue;
        }
        match parse_record(&text, version) {
            Ok((rec, dropped_ext)) if complete => {
                if rec.uid <= last_uid {
                    warn(
                        line_no,
                        &format!("UIDs not ascending ({} after {last_uid})", rec.uid),
                    );
                    needs_rewrite = true;
                    continue;
                }
                if dropped_ext {
                    warn(line_no, "invalid extension field removed");
                    needs_rewrite = true;
                }
                last_uid = rec.uid;
                list.records.push(rec);
            }
            Ok((rec, _)) => {
                // A torn last line: the record is not trusted, but its UID may have been handed
                // out, so it is never used again.
                warn(line_no, "the last line is truncated");
                last_uid = last_uid.max(rec.uid);
                needs_rewrite = true;
            }
            Err(problem) => {
                if let Some(uid) = leading_uid(&text) {
                    last_uid = last_uid.max(uid);
                }
                warn(line_no, &problem);
                needs_rewrite = true;
            }
        }
    }
    if drop_duplicates(&mut list.records, path) {
        needs_rewrite = true;
    }
    list.next_uid = list.next_uid.max(last_uid.saturating_add(1)).max(1);
    Parsed {
        list,
        header_ok,
        needs_rewrite,
    }
}

/// A file listed twice: the later line (higher UID) wins, as in Dovecot. One pass with a map of
/// the names seen (a million lines after a cold open: a sort of the names took far longer).
fn drop_duplicates(records: &mut Vec<Record>, path: &Path) -> bool {
    // Names in strictly ascending byte order are all different, and a file whose UIDs were
    // given by time usually is (while its ten-digit timestamps differ): one pass over
    // neighbours in memory instead of a map of a million names.
    if records.windows(2).all(|w| w[0].base < w[1].base) {
        return false;
    }
    let mut dead: Vec<usize> = Vec::new();
    {
        let mut seen: FastMap<&str, usize> = FastMap::with_capacity(records.len());
        for (i, r) in records.iter().enumerate() {
            if let Some(earlier) = seen.insert(r.base.as_str(), i) {
                tracing::warn!(
                    file = %path.display(),
                    "broken dovecot-uidlist: duplicate file entry {} (UID {} -> {})",
                    r.base,
                    records[earlier].uid,
                    r.uid
                );
                dead.push(earlier);
            }
        }
    }
    if dead.is_empty() {
        return false;
    }
    let mut is_dead = vec![false; records.len()];
    for i in dead {
        is_dead[i] = true;
    }
    let mut i = 0;
    records.retain(|_| {
        i += 1;
        !is_dead[i - 1]
    });
    true
}

fn trim_newline(raw: &[u8]) -> &[u8] {
    raw.strip_suffix(b"\n").unwrap_or(raw)
}

fn leading_uid(text: &str) -> Option<u32> {
    let end = text.bytes().position(|b| !b.is_ascii_digit())?;
    text[..end].parse().ok().filter(|u| *u > 0)
}

fn parse_header(text: &str, list: &mut Uidlist) -> Result<u8, String> {
    let mut fields = text.split(' ').filter(|f| !f.is_empty());
    let version = fields.next().ok_or("empty header")?;
    match version {
        "1" => {
            let v = fields.next().and_then(|f| f.parse().ok());
            let n = fields.next().and_then(|f| f.parse().ok());
            match (v, n) {
                (Some(v), Some(n)) if v > 0 && n > 0 => {
                    list.uid_validity = v;
                    list.next_uid = n;
                    Ok(1)
                }
                _ => Err("corrupted version 1 header".to_owned()),
            }
        }
        "3" => {
            for f in fields {
                // The key is one character; garbage may make it a multi-byte one.
                let mut chars = f.chars();
                let key = chars.next();
                let value = chars.as_str();
                match key {
                    Some('V') => {
                        list.uid_validity = value.parse().map_err(|_| "bad UIDVALIDITY")?
                    }
                    Some('N') => list.next_uid = value.parse().map_err(|_| "bad NEXTUID")?,
                    Some('G') => {
                        if value.len() != 32 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
                            return Err(format!("invalid mailbox GUID {value:?}"));
                        }
                        list.guid = Some(value.to_ascii_lowercase());
                    }
                    _ => list.header_ext.push(f.to_owned()),
                }
            }
            if list.uid_validity == 0 || list.next_uid == 0 {
                return Err(format!(
                    "broken header (uidvalidity = {}, next_uid = {})",
                    list.uid_validity, list.next_uid
                ));
            }
            Ok(3)
        }
        other => Err(format!("unsupported version {other:?}")),
    }
}

/// One record line; the flag says an invalid extension field was dropped.
fn parse_record(text: &str, version: u8) -> Result<(Record, bool), String> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let uid: u32 = text[..digits]
        .parse()
        .map_err(|_| format!("invalid data: {text:?}"))?;
    if uid == 0 || uid == u32::MAX || text.as_bytes().get(digits) != Some(&b' ') {
        return Err(format!("invalid data: {text:?}"));
    }
    let mut rest = text[digits..].trim_start_matches(' ');
    let mut ext = String::new();
    let mut dropped = false;
    // Version 1 lines have the file name right after the UID; version 3 lines have extension
    // fields and then `:name`. A header we could not read gives no version: accept both.
    let v3 = version == 3 || (version != 1 && text.contains(" :"));
    if v3 {
        while !rest.is_empty() && !rest.starts_with(':') {
            let end = rest.find(' ').unwrap_or(rest.len());
            let field = &rest[..end];
            if field.as_bytes().first().is_some_and(u8::is_ascii_uppercase) {
                if !ext.is_empty() {
                    ext.push(' ');
                }
                ext.push_str(field);
            } else {
                dropped = true;
            }
            rest = rest[end..].trim_start_matches(' ');
        }
        rest = rest.strip_prefix(':').unwrap_or(rest);
    }
    if rest.is_empty() {
        return Err(format!("invalid extended fields: {text:?}"));
    }
    if rest.contains('/') {
        return Err(format!("broken file name: {rest:?}"));
    }
    // Dovecot writes the name up to `:`; an old writer may have stored flags too.
    let base = super::filename::base(rest).to_owned();
    Ok((Record { uid, ext, base }, dropped))
}

/// The file content for `list` (always version 3).
pub fn serialize(list: &Uidlist) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + list.records.len() * 64);
    serialize_into(
        &mut out,
        list,
        list.records
            .iter()
            .map(|r| (r.uid, r.ext.as_str(), r.base.as_str())),
    );
    out
}

/// Writes the header of `header` (its records are ignored) and then `records`, which must
/// ascend by UID: `(uid, extension fields, base name)`.
pub fn serialize_into<'a>(
    out: &mut Vec<u8>,
    header: &Uidlist,
    records: impl Iterator<Item = (u32, &'a str, &'a str)>,
) {
    use std::io::Write as _;
    let guid = header.guid.as_deref().unwrap_or("");
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "3 V{} N{} G{}",
        header.uid_validity, header.next_uid, guid
    );
    for f in &header.header_ext {
        out.push(b' ');
        out.extend_from_slice(f.as_bytes());
    }
    out.push(b'\n');
    for (uid, ext, base) in records {
        serialize_record(out, uid, ext, base);
    }
}

/// One record line: `<uid>[ <ext>] :<base>`.
fn serialize_record(out: &mut Vec<u8>, uid: u32, ext: &str, base: &str) {
    use std::io::Write as _;
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{uid}");
    if !ext.is_empty() {
        out.push(b' ');
        out.extend_from_slice(ext.as_bytes());
    }
    out.extend_from_slice(b" :");
    out.extend_from_slice(base.as_bytes());
    out.push(b'\n');
}

/// Whether a file holding `records` records, `expunged` of them for messages that are gone,
/// should be rewritten rather than appended to when `new` records are added: once a quarter of
/// what it would hold is dead weight (Dovecot's `UIDLIST_COMPRESS_PERCENTAGE`).
pub fn wants_rewrite(records: usize, expunged: usize, new: usize) -> bool {
    let total = records as u64 + new as u64;
    let live = total.saturating_sub(expunged as u64);
    total * 75 / 100 >= live && expunged > 0
}

/// A new mailbox GUID: 128 random bits in hex, as `guid_128_generate` produces.
pub fn new_guid() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::getrandom(&mut bytes).is_err() {
        // No entropy source: time and pid still make a GUID unique enough for a mailbox.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        bytes[..8].copy_from_slice(&now.as_nanos().to_le_bytes()[..8]);
        bytes[8..12].copy_from_slice(&std::process::id().to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads the file; `None` if it does not exist. The stamp belongs to the content read.
pub fn read(dir: &Path) -> Result<Option<(Parsed, FileStamp)>> {
    let path = dir.join(FILE_NAME);
    let mut file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io(&path, e)),
    };
    let meta = file.metadata().map_err(|e| StoreError::io(&path, e))?;
    let mut content = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut content)
        .map_err(|e| StoreError::io(&path, e))?;
    Ok(Some((parse(&content, &path), FileStamp::of(&meta))))
}

/// Courier-IMAP's UID list. Its format is version 1 of Dovecot's (`1 <uidvalidity> <nextuid>`,
/// then `<uid> <file name>`), which `parse` reads.
pub const COURIER_FILE_NAME: &str = "courierimapuiddb";

/// A Maildir that Courier-IMAP served and Dovecot never did: its `courierimapuiddb`, so that its
/// UIDVALIDITY and UIDs carry over (Dovecot does the same when it takes over such a tree). The
/// caller then writes `dovecot-uidlist` from it; Courier's file is left as it was.
pub fn read_courier(dir: &Path) -> Result<Option<Parsed>> {
    let path = dir.join(COURIER_FILE_NAME);
    let content = match std::fs::read(&path) {
        Ok(c) => c,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io(&path, e)),
    };
    let mut parsed = parse(&content, &path);
    parsed.needs_rewrite = true;
    tracing::info!(file = %path.display(), "taking UIDs over from Courier-IMAP");
    Ok(Some(parsed))
}

/// Replaces the file with `list`; the caller holds the lock. Durable when it returns: the
/// temporary file is fsynced before the rename and the directory after it.
pub fn write(dir: &Path, list: &Uidlist) -> Result<FileStamp> {
    write_bytes(dir, &serialize(list))
}

/// Adds `records` (UIDs above every UID in the file) at the end of the file, the way Dovecot
/// appends, and fdatasyncs it: the UIDs are durable when this returns. The caller holds the
/// lock and knows the file: it must still be the one `expected` describes, ending with a
/// complete line. If it is not (someone wrote without the lock), nothing is written and
/// `InUse` is returned. A failed write is cut off again so that no torn line stays behind.
pub fn append(dir: &Path, expected: &FileStamp, records: &[Record]) -> Result<FileStamp> {
    let path = dir.join(FILE_NAME);
    let mut file = fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(|e| mio::error(&path, e))?;
    let meta = file.metadata().map_err(|e| StoreError::io(&path, e))?;
    if FileStamp::of(&meta) != *expected {
        return Err(StoreError::InUse(format!(
            "{} changed although we hold its lock",
            path.display()
        )));
    }
    let mut content = Vec::with_capacity(records.len() * 64);
    for r in records {
        serialize_record(&mut content, r.uid, &r.ext, &r.base);
    }
    let written = file
        .write_all(&content)
        .and_then(|()| file.sync_data())
        .and_then(|()| file.metadata());
    match written {
        Ok(meta) => Ok(FileStamp::of(&meta)),
        Err(e) => {
            // Best effort: a torn line left behind is ignored by readers (its UID stays used)
            // and makes the next writer rewrite the file.
            if file.set_len(expected.size).is_ok() {
                let _ = file.sync_data();
            }
            Err(mio::error(&path, e))
        }
    }
}

/// Replaces the file with already serialized content (see [`serialize_into`]).
pub fn write_bytes(dir: &Path, content: &[u8]) -> Result<FileStamp> {
    let tmp = dir.join(TEMP_NAME);
    let path = dir.join(FILE_NAME);
    let result = (|| {
        let mut f = mio::create_truncate(&tmp).map_err(|e| mio::error(&tmp, e))?;
        f.write_all(content).map_err(|e| mio::error(&tmp, e))?;
        f.sync_data().map_err(|e| mio::error(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| mio::error(&path, e))?;
        let meta = f.metadata().map_err(|e| StoreError::io(&path, e))?;
        Ok(FileStamp::of(&meta))
    })();
    match result {
        Ok(stamp) => {
            mio::fsync_dir(dir)?;
            Ok(stamp)
        }
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(content: &str) -> Parsed {
        parse(content.as_bytes(), Path::new("dovecot-uidlist"))
    }

    /// Written by Dovecot 2.3.19 (APPEND of three messages, the second expunged afterwards: the
    /// record stays until the file is compacted, and NEXTUID in the header lags behind).
    const DOVECOT: &str = "3 V1795919202 N3 G3f31a21f628d0b6bac67000083ecc375\n\
        1 :1795919202.M525959P26540.vm,S=24,W=28\n\
        2 :1795919202.M535548P26540.vm,S=16,W=19\n\
        3 :1795919202.M539486P26540.vm,S=18,W=21\n";

    #[test]
    fn reads_a_dovecot_file() {
        let parsed = p(DOVECOT);
        assert!(parsed.header_ok);
        assert!(!parsed.needs_rewrite);
        let l = &parsed.list;
        assert_eq!(l.uid_validity, 1795919202);
        assert_eq!(l.next_uid, 4);
        assert_eq!(l.guid.as_deref(), Some("3f31a21f628d0b6bac67000083ecc375"));
        assert_eq!(l.records.len(), 3);
        assert_eq!(l.records[2].base, "1795919202.M539486P26540.vm,S=18,W=21");
    }

    #[test]
    fn round_trip_keeps_extensions() {
        let text = "3 V7 N10 G00112233445566778899aabbccddeeff X1\n\
            3 W120 GABC :a.M1P1.h\n\
            9 :b.M2P1.h,S=5,W=6\n";
        let parsed = p(text);
        assert!(!parsed.needs_rewrite);
        assert_eq!(parsed.list.header_ext, ["X1"]);
        assert_eq!(ext_value(&parsed.list.records[0].ext, b'W'), Some("120"));
        assert_eq!(ext_value(&parsed.list.records[0].ext, b'G'), Some("ABC"));
        assert_eq!(String::from_utf8(serialize(&parsed.list)).unwrap(), text);
    }

    #[test]
    fn version_1_is_read_and_upgraded() {
        let parsed = p("1 1111 5\n1 a.M1P1.h:2,S\n4 b.M1P1.h\n");
        assert!(parsed.header_ok && parsed.needs_rewrite);
        assert_eq!(parsed.list.uid_validity, 1111);
        assert_eq!(parsed.list.records[0].base, "a.M1P1.h");
        assert_eq!(parsed.list.next_uid, 5);
    }

    #[test]
    fn damage_keeps_what_can_be_trusted_and_never_lowers_next_uid() {
        let parsed = p("3 V5 N2 G00112233445566778899aabbccddeeff\n\
            1 :a\n\
            garbage\n\
            7 :b\n\
            6 :c\n\
            8 lower :d\n\
            10 :e/f\n\
            12 :tor");
        let l = &parsed.list;
        assert!(parsed.header_ok && parsed.needs_rewrite);
        let uids: Vec<u32> = l.records.iter().map(|r| r.uid).collect();
        assert_eq!(uids, [1, 7, 8]);
        assert_eq!(l.records[2].base, "d");
        // 10 (bad name) and 12 (torn) may have been handed out: they are not reused.
        assert_eq!(l.next_uid, 13);
    }

    #[test]
    fn broken_headers() {
        for text in [
            "",
            "3 V5 N1 G00",
            "x V5 N2\n1 :a\n",
            "3 V0 N2\n",
            "3 N2 Gq\n",
            "9 V1 N1\n",
            "\u{e9} V1 N1\n",
        ] {
            let parsed = p(text);
            assert!(!parsed.header_ok, "{text:?}");
            assert_eq!(parsed.list.uid_validity, 0, "{text:?}");
        }
        // Unknown header fields are kept, whatever they hold.
        let parsed = parse(b"3 V5 N2 \xff\xfe Zq\n1 :\xe9\n", Path::new("x"));
        assert!(parsed.header_ok);
        assert_eq!(parsed.list.header_ext.len(), 2);
        assert_eq!(parsed.list.records.len(), 1);
        // Records survive a broken header (their UIDs must not be reused).
        let parsed = p("3 V5 Nx\n4 :a\n");
        assert_eq!(parsed.list.records.len(), 1);
        assert_eq!(parsed.list.next_uid, 5);
    }

    #[test]
    fn duplicate_names_keep_the_later_uid() {
        let parsed = p("3 V5 N1 G00112233445566778899aabbccddeeff\n1 :a\n2 :b\n3 :a\n");
        let uids: Vec<(u32, &str)> = parsed
            .list
            .records
            .iter()
            .map(|r| (r.uid, r.base.as_str()))
            .collect();
        assert_eq!(uids, [(2, "b"), (3, "a")]);
        assert!(parsed.needs_rewrite);
        // Ascending names (no map needed) and unordered ones without duplicates are kept whole.
        for text in ["1 :a\n2 :b\n3 :c\n", "1 :c\n2 :a\n3 :b\n"] {
            let parsed = p(&format!(
                "3 V5 N1 G00112233445566778899aabbccddeeff\n{text}"
            ));
            assert_eq!(parsed.list.records.len(), 3, "{text}");
            assert!(!parsed.needs_rewrite, "{text}");
        }
        // A duplicate right after its first line, in otherwise ascending names.
        let parsed = p("3 V5 N1 G00112233445566778899aabbccddeeff\n1 :a\n2 :a\n3 :b\n");
        let uids: Vec<u32> = parsed.list.records.iter().map(|r| r.uid).collect();
        assert_eq!(uids, [2, 3]);
    }

    #[test]
    fn append_adds_dovecot_lines_to_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE_NAME), DOVECOT).unwrap();
        let stamp = mio::stamp(&dir.path().join(FILE_NAME)).unwrap().unwrap();
        let new = [
            Record {
                uid: 4,
                ext: String::new(),
                base: "1795919300.M1P2.vm,S=5,W=6".to_owned(),
            },
            Record {
                uid: 7,
                ext: "W120 GABC".to_owned(),
                base: "1795919301.M1P2.vm".to_owned(),
            },
        ];
        let after = append(dir.path(), &stamp, &new).unwrap();
        assert_eq!(after.ino, stamp.ino);
        let text = fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        assert_eq!(
            text,
            format!("{DOVECOT}4 :1795919300.M1P2.vm,S=5,W=6\n7 W120 GABC :1795919301.M1P2.vm\n")
        );
        let (parsed, read_stamp) = read(dir.path()).unwrap().unwrap();
        assert_eq!(read_stamp, after);
        assert!(!parsed.needs_rewrite);
        assert_eq!(parsed.list.next_uid, 8);
        assert_eq!(parsed.list.records[3..], new);

        // A file that is not the one the caller knows is left alone.
        let err = append(dir.path(), &stamp, &new).unwrap_err();
        assert_eq!(err.kind(), crate::StoreErrorKind::InUse);
        assert_eq!(
            fs::read_to_string(dir.path().join(FILE_NAME)).unwrap(),
            text
        );
    }

    #[test]
    fn rewrite_once_a_quarter_is_dead_weight() {
        // (records in the file, of them expunged, new records) -> rewrite?
        let table = [
            ((0, 0, 1), false),
            ((100, 0, 1), false),
            ((100, 24, 1), false),
            ((100, 25, 0), true),
            ((99, 25, 1), true),
            ((5, 1, 0), false),
            ((4, 1, 0), true),
            ((3, 1, 1), true),
            ((1_000_000, 250_000, 0), true),
        ];
        for ((records, expunged, new), want) in table {
            assert_eq!(
                wants_rewrite(records, expunged, new),
                want,
                "{records} {expunged} {new}"
            );
        }
    }

    #[test]
    fn write_replaces_through_rename() {
        let dir = tempfile::tempdir().unwrap();
        let list = p(DOVECOT).list;
        let first = write(dir.path(), &list).unwrap();
        let second = write(dir.path(), &list).unwrap();
        // A new inode each time: the file is replaced, never rewritten in place.
        assert_ne!(first.ino, second.ino);
        assert!(!dir.path().join(TEMP_NAME).exists());
        let (parsed, stamp) = read(dir.path()).unwrap().unwrap();
        assert_eq!(parsed.list, list);
        assert_eq!(stamp, second);
        assert!(read(&dir.path().join("nowhere")).unwrap().is_none());
    }
}
