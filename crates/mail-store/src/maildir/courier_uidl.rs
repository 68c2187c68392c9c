//! `courierpop3dsizelist`, where Courier's POP3 server keeps the UIDL and size of each message
//! of the INBOX (courier-libs `imap/pop3dserver.c`, `readpop3dlist`/`savepop3dlist`/`print_uidl`;
//! the field meanings match `courier-dovecot-migrate.pl`'s `read_courier_pop3`):
//!
//! ```text
//! /3 <next uid> <uidvalidity>                   header, version 3 (courier-imap 4.x and later)
//! <file name> <size> <uid>:<uidvalidity>:<utf8> version 3 lines
//! <file name> <size> <uid>:<uidvalidity>        version 2 lines (header `/2 ...`)
//! <file name> <size> <uid>                      version 1 lines
//! <file name> <size>                            version 0: a file without a `/` header line
//! ```
//!
//! `<file name>` is the name in `cur/` when the list was saved (flags included); messages are
//! matched by base name (up to `:`), as `cmpmsgs` does. The file name is everything before the
//! last two spaces. The UIDL the client saw (`print_uidl`) is `UID<uid>-<uidvalidity>`, or
//! `UID<uid>` when the UIDVALIDITY is 0, or — for a UID of 0 (version 0) — the base name with
//! every byte outside `!`..`~` and `'`, `"`, `+` written as `+XX` (upper-case hex).
//!
//! Columba reads the file once, when it takes a Maildir over (no `dovecot-uidlist` yet), and
//! keeps each UIDL as the `P` field of the message's `dovecot-uidlist` record, as the
//! migration script does; POP3 then answers with it (see `uidl`). Reading it later would change
//! the UIDLs Columba has already shown and make clients download everything again. The file
//! itself is never written, so a rollback to Courier finds it as it was.

use std::collections::HashMap;
use std::io;
use std::path::Path;

use super::io as mio;
use crate::{Result, StoreError};

pub const FILE_NAME: &str = "courierpop3dsizelist";

/// Bigger than any real list (a million messages take about 60 MB): refuse rather than load it.
const MAX_FILE_BYTES: u64 = 256 << 20;

/// Courier reads lines into a 2048-byte buffer and cuts longer ones; such a line cannot be one
/// Courier wrote, so it is skipped.
const MAX_LINE: usize = 2048 - 20;

/// The highest version `pop3dserver.c` writes (`LISTVERSION`).
const NEWEST_VERSION: u32 = 3;

/// The UIDLs of the file in `dir`, by message base name; empty when there is no file. Damaged
/// lines are skipped with a warning; a header Courier would not accept makes the whole file
/// ignored (Courier then gave every message a new UIDL too).
pub fn read(dir: &Path) -> Result<HashMap<String, String>> {
    let path = dir.join(FILE_NAME);
    let content = match mio::read_foreign(&path, MAX_FILE_BYTES) {
        Ok(Some(c)) => c,
        Ok(None) => return Ok(HashMap::new()),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            tracing::warn!(file = %path.display(), "Courier POP3 UIDL list ignored: {e}");
            return Ok(HashMap::new());
        }
        Err(e) => return Err(StoreError::io(&path, e)),
    };
    let uidls = parse(&content, &path);
    if !uidls.is_empty() {
        tracing::info!(
            file = %path.display(),
            "taking {} POP3 UIDLs over from Courier",
            uidls.len()
        );
    }
    Ok(uidls)
}

/// Parses the file's content (see the module documentation).
pub fn parse(content: &[u8], path: &Path) -> HashMap<String, String> {
    let warn = |line: usize, problem: &str| {
        tracing::warn!(file = %path.display(), line, "broken courierpop3dsizelist: {problem}");
    };
    let mut out = HashMap::new();
    let mut lines = content
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(n, l)| (n + 1, l))
        .peekable();
    if let Some((_, first)) = lines.peek()
        && first.first() == Some(&b'/')
    {
        let header = String::from_utf8_lossy(first);
        match header_version(&header) {
            Some(v) if (1..=NEWEST_VERSION).contains(&v) => {}
            _ => {
                warn(
                    1,
                    &format!("unknown header {header:?}; the file is ignored"),
                );
                return out;
            }
        }
        lines.next();
    }
    for (line_no, raw) in lines {
        if raw.is_empty() {
            continue;
        }
        if raw.len() > MAX_LINE {
            warn(line_no, "line too long");
            continue;
        }
        let text = String::from_utf8_lossy(raw);
        match parse_line(&text) {
            Ok((base, uidl)) => {
                if out.contains_key(base) {
                    warn(
                        line_no,
                        &format!("{base} listed twice; the first entry is kept"),
                    );
                } else {
                    out.insert(base.to_owned(), uidl);
                }
            }
            Err(problem) => warn(line_no, &problem),
        }
    }
    out
}

/// The version of a `/<version> <next uid> [<uidvalidity>]` header, if it reads as one. As in
/// `readpop3dlist`, what follows the next UID is not checked.
fn header_version(header: &str) -> Option<u32> {
    let mut fields = header.strip_prefix('/')?.split(' ');
    let version = parse_number(fields.next()?)?;
    parse_number(fields.next()?)?;
    u32::try_from(version).ok()
}

/// One message line: its base name and the UIDL Courier showed for it.
fn parse_line(text: &str) -> Result<(&str, String), String> {
    let (rest, uid_field) = text
        .rsplit_once(' ')
        .ok_or_else(|| format!("no size: {text:?}"))?;
    // Version 0 lines end with the size; later ones with `<uid>[:<uidv>[:<utf8>]]` after it.
    let (name, uid, uidv) = match rest.rsplit_once(' ') {
        Some((name, size)) if parse_number(size).is_some() => {
            let mut parts = uid_field.split(':');
            let uid = parts.next().and_then(parse_number);
            let uidv = parts.next().map(parse_number);
            let utf8 = parts.next().map(parse_number);
            match (uid, uidv, utf8, parts.next()) {
                (Some(uid), None, None, None) => (name, uid, 0),
                (Some(uid), Some(Some(uidv)), None | Some(Some(_)), None) => (name, uid, uidv),
                _ => return Err(format!("invalid UID field {uid_field:?}")),
            }
        }
        _ => {
            parse_number(uid_field).ok_or_else(|| format!("invalid size: {text:?}"))?;
            (rest, 0, 0)
        }
    };
    let base = super::filename::base(name);
    if base.is_empty() || base.contains('/') {
        return Err(format!("invalid file name {name:?}"));
    }
    let uidl = match (uid, uidv) {
        (0, _) => escaped_name(base),
        (uid, 0) => format!("UID{uid}"),
        (uid, uidv) => format!("UID{uid}-{uidv}"),
    };
    Ok((base, uidl))
}

/// A decimal number as Courier writes them: digits only.
fn parse_number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `print_uidl`'s version 0 UIDL: the base name with unsafe bytes as `+XX`.
fn escaped_name(base: &str) -> String {
    let mut out = String::with_capacity(base.len());
    for b in base.bytes() {
        if !(0x21..=0x7e).contains(&b) || matches!(b, b'\'' | b'"' | b'+') {
            out.push_str(&format!("+{b:02X}"));
        } else {
            out.push(char::from(b));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn p(content: &str) -> HashMap<String, String> {
        parse(content.as_bytes(), Path::new("courierpop3dsizelist"))
    }

    fn get<'a>(map: &'a HashMap<String, String>, base: &str) -> Option<&'a str> {
        map.get(base).map(String::as_str)
    }

    /// Written by Courier's pop3d 5.0.13 (Debian bookworm) for two messages.
    #[test]
    fn reads_version_3_as_courier_wrote_it() {
        let map = p("/3 3 1795950650\n\
             1600000001.M1P1.host:2,S 20 1:1795950650:0\n\
             1600000002.M2P1.host:2, 24 2:1795950650:0\n");
        assert_eq!(map.len(), 2);
        assert_eq!(get(&map, "1600000001.M1P1.host"), Some("UID1-1795950650"));
        assert_eq!(get(&map, "1600000002.M2P1.host"), Some("UID2-1795950650"));
    }

    #[test]
    fn older_versions() {
        let map = p("/2 9 1234\na.M1P1.h:2,S 100 7:1234\nb.M2P1.h 5 8:0\n");
        assert_eq!(get(&map, "a.M1P1.h"), Some("UID7-1234"));
        assert_eq!(get(&map, "b.M2P1.h"), Some("UID8"));
        let map = p("/1 9\na.M1P1.h 100 7\n");
        assert_eq!(get(&map, "a.M1P1.h"), Some("UID7"));
        // Version 0: no header, the UIDL is the escaped base name.
        let map = p("1000.M1P1.h\"x'+y:2,S 12\n");
        assert_eq!(
            get(&map, "1000.M1P1.h\"x'+y"),
            Some("1000.M1P1.h+22x+27+2By")
        );
        // A UID of 0 in a later version means the same.
        let map = p("/2 1 5\nc.h\u{e9} 3 0:5\n");
        assert_eq!(get(&map, "c.h\u{e9}"), Some("c.h+C3+A9"));
    }

    #[test]
    fn damage_is_skipped_line_by_line() {
        // (file content, base names that must be found)
        let table: &[(&str, &[&str])] = &[
            ("/3 3 17\nok 1 1:17:0\nnosize\nbad x 2:17:0\n", &["ok"]),
            ("/3 3 17\nok 1 1:17:0\nbad 1 -2:17:0\n", &["ok"]),
            (
                "/3 3 17\nbad 1 1:17:0:0:0\nbad2 1 1:x\nok 1 3:17\n",
                &["ok"],
            ),
            (
                "/3 3 17\nbad 1 99999999999999999999999:17\nok 1 1:17\n",
                &["ok"],
            ),
            (
                "/3 3 17\n/etc/passwd 1 1:17\n 1 2:17\n:2,S 1 3:17\nok 1 4:17\n",
                &["ok"],
            ),
            ("/3 3 17\nok 1 1:17\nok 1 2:17\n", &["ok"]),
            ("/3 3 17\nok 1 1:17\ntorn 1 2:", &["ok"]),
            ("/9 3 17\nunknown 1 1:17\n", &[]),
            ("/x\nunknown 1 1:17\n", &[]),
            ("/3 3 17 trailing\nok 1 1:17\n", &["ok"]),
            ("/3\nunknown 1 1:17\n", &[]),
            ("", &[]),
            ("\n\n\n", &[]),
        ];
        for (content, want) in table {
            let map = p(content);
            let mut found: Vec<&str> = map.keys().map(String::as_str).collect();
            found.sort_unstable();
            assert_eq!(found, *want, "{content:?}");
        }
        // The first of two entries for one message wins.
        assert_eq!(
            get(&p("/3 3 17\nok 1 1:17\nok 1 2:17\n"), "ok"),
            Some("UID1-17")
        );
        let long = format!("/3 3 17\n{} 1 1:17\nok 1 2:17\n", "x".repeat(5000));
        assert_eq!(p(&long).len(), 1);
    }

    #[test]
    fn uidls_are_valid_pop3_uidls() {
        // RFC 1939 7: printable ASCII without spaces, whatever bytes the file holds.
        let map = parse(
            b"1000.M1P1.\x01\xff\x7f 12\n1001 \t.x 12\n",
            Path::new("courierpop3dsizelist"),
        );
        assert_eq!(map.len(), 2);
        for uidl in map.values() {
            assert!(uidl.bytes().all(|b| (0x21..=0x7e).contains(&b)), "{uidl:?}");
        }
    }

    #[test]
    fn missing_file_is_empty_and_odd_files_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).unwrap().is_empty());
        fs::write(dir.path().join(FILE_NAME), "/3 2 5\na 1 1:5:0\n").unwrap();
        assert_eq!(read(dir.path()).unwrap().len(), 1);
        let f = fs::File::create(dir.path().join(FILE_NAME)).unwrap();
        f.set_len(MAX_FILE_BYTES + 1).unwrap();
        assert!(read(dir.path()).unwrap().is_empty());
        // A FIFO would block a plain open until someone writes to it.
        fs::remove_file(dir.path().join(FILE_NAME)).unwrap();
        mio::make_fifo(&dir.path().join(FILE_NAME));
        assert!(read(dir.path()).unwrap().is_empty());
        fs::remove_file(dir.path().join(FILE_NAME)).unwrap();
        fs::create_dir(dir.path().join(FILE_NAME)).unwrap();
        assert!(read(dir.path()).unwrap().is_empty());
    }
}
