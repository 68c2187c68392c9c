//! Courier-IMAP's keywords, kept in the `courierimapkeywords/` directory of each Maildir folder
//! rather than in file names (courier-libs `maildir/maildirkeywords2.c`: `maildir_kwImport`,
//! `maildir_kwExport`, `scan_updates`, `read_updates`, `maildir_kwSaveCommon`; checked against
//! the files courier-imap 5.0.13 writes, see `tests/fixtures/courier/`):
//!
//! - `:list` — the keyword names, one per line, then an empty line, then one line per message
//!   with keywords: `<base name>:<index> <index>...`, indexes counting from 0 into the names.
//!   An index past the names is ignored; a line without `:` is skipped; a later line for the
//!   same message replaces an earlier one.
//! - `<base name>` — the newest change of one message's keywords, written by a STORE since
//!   `:list` was last rewritten: the message's full keyword list, one name per line (an empty
//!   file: no keywords). It overrides everything else for that message.
//! - `.<n>.<base name>` — an older change, renamed so by the next Courier session; the one with
//!   the highest `<n>` overrides `:list`. `.tmp.*` are scratch files of a change in progress.
//!
//! When Columba indexes such a folder from its files (it takes the folder over, or has no saved
//! index) and the folder has no `dovecot-keywords` yet, it reads these and writes the keywords
//! the way Dovecot keeps them: letters in the file names (`cur/`) with `dovecot-keywords` naming
//! them, as `courier-dovecot-migrate.pl` converts them (`import_courier_keywords`). From then on
//! `dovecot-keywords` exists and Courier's directory is not read again, so later changes made
//! through Columba are never undone by stale Courier data. Columba never writes into
//! `courierimapkeywords/`: a rollback to Courier finds the keywords as Courier left them (but
//! not the changes made since, which only Dovecot's format holds).

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::Path;

use mail_types::{Flags, Keyword, SystemFlags};

use super::filename::{self, MAX_KEYWORD_LETTERS};
use super::io as mio;
use super::mailbox::MaildirMailbox;
use super::state::{Dir, State};
use super::sync::Entry;
use crate::{Result, StoreError};
use foldhash::HashMap as FastMap;

pub const DIR_NAME: &str = "courierimapkeywords";
const LIST_NAME: &str = ":list";

/// `:list` holds one line per message with keywords: far below this for any real mailbox.
const MAX_LIST_BYTES: u64 = 256 << 20;
/// One message's keyword list.
const MAX_UPDATE_BYTES: u64 = 64 << 10;

/// Which change of a message's keywords is the newest (`scan_updates`): the plain-named file
/// beats every numbered one, and among those the highest number wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    Numbered(u64),
    Newest,
}

/// The keywords of each message, by base name; `None` when the folder has no keyword directory.
/// Names that are not valid IMAP keywords are skipped with a warning; unreadable update files
/// leave the message with what `:list` says.
pub fn read(dir: &Path) -> Result<Option<HashMap<String, Vec<Keyword>>>> {
    let kw_dir = dir.join(DIR_NAME);
    let entries = match fs::read_dir(&kw_dir) {
        Ok(e) => e,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(StoreError::io(&kw_dir, e)),
    };
    let list_path = kw_dir.join(LIST_NAME);
    let mut by_base = match mio::read_foreign(&list_path, MAX_LIST_BYTES) {
        Ok(Some(content)) => parse_list(&content, &list_path),
        Ok(None) => HashMap::new(),
        Err(e) => {
            tracing::warn!(file = %list_path.display(), "Courier keyword list ignored: {e}");
            HashMap::new()
        }
    };

    let mut newest: HashMap<String, (Rank, String)> = HashMap::new();
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io(&kw_dir, e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            tracing::warn!(dir = %kw_dir.display(), "ignoring a Courier keyword file whose name is not UTF-8");
            continue;
        };
        let Some((rank, base)) = update_name(&name) else {
            continue;
        };
        let base = filename::base(base);
        if base.is_empty() {
            continue;
        }
        if newest.get(base).is_none_or(|(r, _)| rank > *r) {
            newest.insert(base.to_owned(), (rank, name.clone()));
        }
    }
    for (base, (_, name)) in newest {
        let path = kw_dir.join(&name);
        match mio::read_foreign(&path, MAX_UPDATE_BYTES) {
            Ok(Some(content)) => {
                by_base.insert(base, parse_names(&content, &path));
            }
            // Removed by a Courier session since the listing: `:list` has it now.
            Ok(None) => {}
            Err(e) => tracing::warn!(file = %path.display(), "Courier keyword change ignored: {e}"),
        }
    }
    by_base.retain(|_, k| !k.is_empty());
    Ok(Some(by_base))
}

/// The rank and message of a directory entry, for the files that record a change.
fn update_name(name: &str) -> Option<(Rank, &str)> {
    if name.starts_with(':') {
        return None;
    }
    let Some(rest) = name.strip_prefix('.') else {
        return Some((Rank::Newest, name));
    };
    let (n, base) = rest.split_once('.')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        // `.tmp.<time><name>` scratch files, `.` and `..`, anything else.
        return None;
    }
    Some((Rank::Numbered(n.parse().ok()?), base))
}

/// A keyword name from a line, or a warning.
fn keyword(line: &[u8], path: &Path, line_no: usize) -> Option<Keyword> {
    let text = String::from_utf8_lossy(line);
    match Keyword::new(&text) {
        Ok(k) => Some(k),
        Err(e) => {
            tracing::warn!(file = %path.display(), line = line_no, "Courier keyword {text:?} ignored: {e}");
            None
        }
    }
}

/// An update file: names up to the first empty line.
fn parse_names(content: &[u8], path: &Path) -> Vec<Keyword> {
    content
        .split(|&b| b == b'\n')
        .take_while(|l| !l.is_empty())
        .enumerate()
        .filter_map(|(n, l)| keyword(l, path, n + 1))
        .collect()
}

/// `:list` (see the module documentation).
pub fn parse_list(content: &[u8], path: &Path) -> HashMap<String, Vec<Keyword>> {
    let mut lines = content.split(|&b| b == b'\n').enumerate();
    // Invalid names keep their place: the indexes after them still count them.
    let mut names: Vec<Option<Keyword>> = Vec::new();
    for (n, line) in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        names.push(keyword(line, path, n + 1));
    }
    let mut out = HashMap::new();
    for (n, line) in lines {
        if line.is_empty() {
            continue;
        }
        let text = String::from_utf8_lossy(line);
        let warn = |problem: &str| {
            tracing::warn!(file = %path.display(), line = n + 1, "broken Courier keyword list: {problem}");
        };
        let Some((base, indexes)) = text.split_once(':') else {
            warn(&format!("no ':' in {text:?}"));
            continue;
        };
        if base.is_empty() || base.contains('/') {
            warn(&format!("invalid file name {base:?}"));
            continue;
        }
        let mut keywords = Vec::new();
        for field in indexes.split(' ').filter(|f| !f.is_empty()) {
            match field.parse::<usize>().ok().map(|i| names.get(i)) {
                Some(Some(Some(k))) => keywords.push(k.clone()),
                // An invalid name, already reported.
                Some(Some(None)) => {}
                _ => warn(&format!("keyword index {field:?} out of range")),
            }
        }
        out.insert(base.to_owned(), keywords);
    }
    out
}

impl MaildirMailbox {
    /// Takes the keywords Courier kept for the files found by a scan over into Dovecot's form,
    /// when this folder has Courier keywords and no `dovecot-keywords`: each file gets its
    /// letters (files in `new/` move to `cur/`, as a flag change moves them, and stay `\Recent`)
    /// and `entries` are updated to the new names. Only as many keywords as there are free
    /// letters (26 at most) can be kept; the rest are reported and stay in Courier's directory
    /// only. The caller holds the
    /// `dovecot-uidlist` lock. Problems are logged: the mail is indexed with what it has.
    pub(super) fn import_courier_keywords<'a>(
        &self,
        st: &mut State,
        entries: &mut FastMap<&'a str, Entry<'a>>,
    ) {
        if self.path.join(super::keywords::FILE_NAME).exists() {
            return;
        }
        let courier = match read(&self.path) {
            Ok(Some(k)) => k,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(mailbox = %self.path.display(), "Courier keywords not taken over: {e}");
                return;
            }
        };
        let mut wanted: Vec<(&String, &Vec<Keyword>)> = courier
            .iter()
            .filter(|(base, _)| entries.contains_key(base.as_str()))
            .collect();
        if wanted.is_empty() {
            return;
        }
        wanted.sort_by(|a, b| filename::sort_cmp(a.0, b.0));
        // Letters already in file names stay theirs (their names are lost, Dovecot shows them
        // as `unknown-<n>`): the imported keywords must not take them.
        for e in entries.values() {
            let (system, letters) = filename::flags(&e.fname);
            st.keywords.flags(system, letters);
        }
        // IMAP keywords are case-insensitive; a hostile list may hold millions of names, so
        // they are told apart by a set, and only as many as there are letters are kept.
        let free = MAX_KEYWORD_LETTERS.saturating_sub(st.keywords.letters_in_use());
        let mut seen: HashSet<String> = HashSet::new();
        let mut all: Vec<Keyword> = Vec::new();
        let mut dropped: Vec<&str> = Vec::new();
        for k in wanted.iter().flat_map(|(_, k)| k.iter()) {
            if seen.insert(k.as_str().to_ascii_lowercase()) {
                if all.len() < free {
                    all.push(k.clone());
                } else {
                    dropped.push(k.as_str());
                }
            }
        }
        if !dropped.is_empty() {
            let shown: Vec<&str> = dropped.iter().take(10).copied().collect();
            tracing::warn!(
                mailbox = %self.path.display(),
                "more Courier keywords than Maildir letters; {} not taken over: {}{}",
                dropped.len(),
                shown.join(" "),
                if dropped.len() > shown.len() { " ..." } else { "" }
            );
        }
        let table = Flags::new(SystemFlags::empty(), all);
        if let Err(e) = st.keywords.letters_creating(&table, &self.path) {
            tracing::warn!(mailbox = %self.path.display(), "Courier keywords not taken over: {e}");
            return;
        }
        let mut moved = 0usize;
        for (base, keywords) in wanted {
            let Some(entry) = entries.get_mut(base.as_str()) else {
                continue;
            };
            // Keywords without a letter (beyond the 26) were reported above.
            let letters = keywords
                .iter()
                .filter_map(|k| {
                    st.keywords
                        .letters(&Flags::new(SystemFlags::empty(), [k.clone()]))
                })
                .fold(0, |set, l| set | l);
            let (system, old_letters) = filename::flags(&entry.fname);
            if letters & !old_letters == 0 {
                continue;
            }
            let target = filename::with_flags(&entry.fname, system, old_letters | letters);
            let from = self.path.join(entry.dir.name()).join(&*entry.fname);
            let to = self.path.join(Dir::Cur.name()).join(&target);
            match mio::rename_noreplace(&from, &to) {
                Ok(()) => {
                    entry.dir = Dir::Cur;
                    entry.fname = std::borrow::Cow::Owned(target);
                    moved += 1;
                }
                Err(e) => tracing::warn!(
                    file = %from.display(),
                    "cannot give the message its Courier keywords: {e}"
                ),
            }
        }
        tracing::info!(
            mailbox = %self.path.display(),
            "took the keywords of {moved} messages over from Courier-IMAP"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(map: &HashMap<String, Vec<Keyword>>, base: &str) -> Option<Vec<String>> {
        map.get(base)
            .map(|k| k.iter().map(|k| k.as_str().to_owned()).collect())
    }

    /// `:list` as courier-imap 5.0.13 wrote it.
    #[test]
    fn reads_the_list_courier_wrote() {
        let map = parse_list(
            b"$Bar\nfoo\n\n1600000001.M1P1.host:0 1\n",
            Path::new(":list"),
        );
        assert_eq!(
            names(&map, "1600000001.M1P1.host"),
            Some(vec!["$Bar".to_owned(), "foo".to_owned()])
        );
        assert_eq!(map.len(), 1);
    }

    #[test]
    fn hostile_lists_give_what_can_be_trusted() {
        // (content, base name, keywords it must get)
        type Row<'a> = (&'a [u8], &'a str, Option<&'a [&'a str]>);
        let table: &[Row] = &[
            (b"a\nb\n\nm:1 0 1\n", "m", Some(&["b", "a", "b"])),
            (
                b"a\n\nm:0 7 99999999999999999999999 -1 x\n",
                "m",
                Some(&["a"]),
            ),
            (b"a\nbad name\nc\n\nm:0 1 2\n", "m", Some(&["a", "c"])),
            (b"a\n\\Seen\nc\x01\n\nm:0 1 2\n", "m", Some(&["a"])),
            (b"a\n\nno colon here\nm:0\n", "m", Some(&["a"])),
            (b"a\n\n../x/y:0\n", "../x/y", None),
            (b"a\n\nm:0\nm:\n", "m", Some(&[])),
            (b"a\nb\n", "a", None),
            (b"", "m", None),
            (b"\xff\xfe\n\nm:0\n", "m", Some(&[])),
        ];
        for (content, base, want) in table {
            let map = parse_list(content, Path::new(":list"));
            let want = want.map(|w| w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(
                names(&map, base),
                want,
                "{:?}",
                String::from_utf8_lossy(content)
            );
        }
    }

    /// A folder whose keyword directory holds `list` as `:list`.
    fn keyword_dir(list: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let kw = dir.path().join(DIR_NAME);
        fs::create_dir(&kw).unwrap();
        fs::write(kw.join(LIST_NAME), list).unwrap();
        (dir, kw)
    }

    #[test]
    fn update_files_override_the_list() {
        let (dir, kw) = keyword_dir("a\nb\n\nm1:0\nm2:0 1\nm3:1\nm4:0\n");
        // m1: two numbered changes, the higher wins.
        fs::write(kw.join(".5.m1"), "old\n").unwrap();
        fs::write(kw.join(".12.m1"), "new\n").unwrap();
        // m2: the plain-named change beats any numbered one.
        fs::write(kw.join(".99.m2"), "numbered\n").unwrap();
        fs::write(kw.join("m2"), "plain\n\nignored after the empty line\n").unwrap();
        // m3: all keywords removed.
        fs::write(kw.join(".7.m3"), "").unwrap();
        // m5: only a change, no list line; scratch files are not changes.
        fs::write(kw.join("m5:2,S"), "five\n").unwrap();
        fs::write(kw.join(".tmp.1700000000.x.m4"), "scratch\n").unwrap();
        fs::write(kw.join(".x.m4"), "junk\n").unwrap();
        fs::create_dir(kw.join(".3.m4")).unwrap();
        let map = read(dir.path()).unwrap().unwrap();
        assert_eq!(names(&map, "m1"), Some(vec!["new".to_owned()]));
        assert_eq!(names(&map, "m2"), Some(vec!["plain".to_owned()]));
        assert_eq!(names(&map, "m3"), None);
        assert_eq!(names(&map, "m4"), Some(vec!["a".to_owned()]));
        assert_eq!(names(&map, "m5"), Some(vec!["five".to_owned()]));
        assert!(read(&dir.path().join("nowhere")).unwrap().is_none());
    }

    #[test]
    fn oversized_and_special_files_are_refused() {
        let (dir, kw) = keyword_dir("a\n\nm:0\nn:0\n");
        let f = fs::File::create(kw.join("m")).unwrap();
        f.set_len(MAX_UPDATE_BYTES + 1).unwrap();
        // Nor does a FIFO hang the reader.
        mio::make_fifo(&kw.join("n"));
        let map = read(dir.path()).unwrap().unwrap();
        // The oversized change and the FIFO are ignored: the list's keywords stay.
        assert_eq!(names(&map, "m"), Some(vec!["a".to_owned()]));
        assert_eq!(names(&map, "n"), Some(vec!["a".to_owned()]));
    }
}
