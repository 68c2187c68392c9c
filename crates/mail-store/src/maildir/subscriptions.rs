//! The `subscriptions` file in the Maildir root, in Dovecot's format (`subscription-file.c`).
//!
//! Version 2 starts with the line `V\t2` and an empty line; each following line is one
//! subscribed name in its storage form (see `names`), hierarchy levels separated by TAB. Version
//! 1 files (no header) list storage names with `.` as separator. Changes go through
//! `subscriptions.lock`, renamed over the file (Dovecot's lock timeout 120 s, stale after 30 s).
//! Lines Columba cannot decode are kept untouched when the file is rewritten.

use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use mail_types::{HIERARCHY_SEPARATOR, MailboxName};

use super::dotlock::{self, LockSettings};
use super::names;
use crate::{Result, StoreError};

pub const FILE_NAME: &str = "subscriptions";
/// Courier-IMAP's subscriptions: one name per line under its `INBOX.` namespace.
pub const COURIER_FILE_NAME: &str = "courierimapsubscribed";
const VERSION2_HEADER: &str = "V\t2\n\n";

const LOCK: LockSettings = LockSettings {
    stale_timeout: Duration::from_secs(30),
    timeout: Duration::from_secs(120),
};

/// The line for `name` in a version 2 file.
pub fn line_of(name: &MailboxName) -> String {
    if name.is_inbox() {
        return "INBOX".to_owned();
    }
    name.components()
        .map(|c| tab_escape(&names::storage_component(c)))
        .collect::<Vec<_>>()
        .join("\t")
}

/// The name a line stands for, if it decodes.
pub fn name_of_line(line: &str, version: u8) -> Option<MailboxName> {
    let parts: Vec<String> = if version >= 2 {
        line.split('\t').map(tab_unescape).collect()
    } else {
        line.split('.').map(str::to_owned).collect()
    };
    let mut components = Vec::with_capacity(parts.len());
    for p in &parts {
        components.push(names::component_of_storage(p)?);
    }
    MailboxName::new(&components.join(&HIERARCHY_SEPARATOR.to_string())).ok()
}

/// Dovecot's `str_append_tabescaped`: `\001` escapes `\001`, TAB, CR and LF.
fn tab_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\u{1}' => out.push_str("\u{1}1"),
            '\t' => out.push_str("\u{1}t"),
            '\r' => out.push_str("\u{1}r"),
            '\n' => out.push_str("\u{1}n"),
            _ => out.push(c),
        }
    }
    out
}

fn tab_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\u{1}' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('1') => out.push('\u{1}'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// The file's lines (header removed) and version.
fn read_lines(path: &Path) -> Result<(u8, Vec<String>)> {
    let content = match fs::read(path) {
        Ok(c) => c,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return courier_lines(path),
        Err(e) => return Err(StoreError::io(path, e)),
    };
    let text = String::from_utf8_lossy(&content);
    let (version, body) = match text.strip_prefix(VERSION2_HEADER) {
        Some(rest) => (2, rest),
        None => (1, &*text),
    };
    let lines = body
        .split('\n')
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    Ok((version, lines))
}

/// Without a file of our own, a tree Courier-IMAP served keeps its subscriptions: its names
/// (`INBOX.Sent`, `INBOX.Lists.rust`) are version 1 lines once the namespace is dropped. The
/// first change writes them into our file; Courier's is left as it was.
fn courier_lines(path: &Path) -> Result<(u8, Vec<String>)> {
    let Some(root) = path.parent() else {
        return Ok((2, Vec::new()));
    };
    let courier = root.join(COURIER_FILE_NAME);
    let content = match fs::read(&courier) {
        Ok(c) => c,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((2, Vec::new())),
        Err(e) => return Err(StoreError::io(&courier, e)),
    };
    let lines = String::from_utf8_lossy(&content)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.strip_prefix("INBOX.").unwrap_or(l).to_owned())
        .collect();
    Ok((1, lines))
}

/// The subscribed names, in file order, without duplicates.
pub fn list(root: &Path) -> Result<Vec<MailboxName>> {
    let path = root.join(FILE_NAME);
    let (version, lines) = read_lines(&path)?;
    let mut out: Vec<MailboxName> = Vec::with_capacity(lines.len());
    for line in &lines {
        match name_of_line(line, version) {
            Some(n) => {
                if !out.contains(&n) {
                    out.push(n);
                }
            }
            None => tracing::warn!(
                file = %path.display(),
                "ignoring a subscription that is not a valid name: {line:?}"
            ),
        }
    }
    Ok(out)
}

/// Adds or removes one subscription (Dovecot's `subsfile_set_subscribed`). The file is rewritten
/// in version 2 format only when something changes.
pub fn set(root: &Path, name: &MailboxName, subscribed: bool) -> Result<()> {
    set_many(root, &[(name.clone(), subscribed)])
}

/// Several changes in one rewrite (a RENAME moves the subscriptions of a whole subtree).
pub fn set_many(root: &Path, changes: &[(MailboxName, bool)]) -> Result<()> {
    let path = root.join(FILE_NAME);
    dotlock::replace(&path, &LOCK, |file, lock_path| {
        // Read under the lock so that concurrent changes are not lost.
        let (version, mut lines) = read_lines(&path)?;
        let mut changed = false;
        for (name, subscribed) in changes {
            let matches = |l: &String| name_of_line(l, version).as_ref() == Some(name);
            let present = lines.iter().any(matches);
            if *subscribed && !present {
                lines.push(line_of(name));
                changed = true;
            } else if !*subscribed && present {
                lines.retain(|l| !matches(l));
                changed = true;
            }
        }
        if !changed {
            return Ok(false);
        }
        let mut out = String::from(VERSION2_HEADER);
        for l in &lines {
            // Upgrading a version 1 file re-encodes the names that decode and keeps the rest.
            let l = if version < 2 {
                name_of_line(l, 1)
                    .map(|n| line_of(&n))
                    .unwrap_or_else(|| l.clone())
            } else {
                l.clone()
            };
            out.push_str(&l);
            out.push('\n');
        }
        file.write_all(out.as_bytes())
            .map_err(|e| StoreError::io(lock_path, e))?;
        Ok(true)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> MailboxName {
        MailboxName::new(s).unwrap()
    }

    /// Written by Dovecot 2.3.19 for SUBSCRIBE Entw&APw-rfe, dot.ted, INBOX, a/b/c, x/~t.
    const DOVECOT: &str = "V\t2\n\nEntw&APw-rfe\ndot\\2eted\nINBOX\na\tb\tc\nx\t\\7et\n";

    #[test]
    fn reads_dovecot_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE_NAME), DOVECOT).unwrap();
        let names = list(dir.path()).unwrap();
        let want = ["Entw\u{fc}rfe", "dot.ted", "INBOX", "a/b/c", "x/~t"];
        assert_eq!(names, want.map(n));
        for name in want {
            let l = line_of(&n(name));
            assert!(DOVECOT.contains(&format!("\n{l}\n")), "{l}");
        }
    }

    #[test]
    fn set_and_unset_rewrite_in_version_2() {
        let dir = tempfile::tempdir().unwrap();
        assert!(list(dir.path()).unwrap().is_empty());
        set(dir.path(), &n("a/b"), true).unwrap();
        set(dir.path(), &n("inbox"), true).unwrap();
        set(dir.path(), &n("a/b"), true).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join(FILE_NAME)).unwrap(),
            "V\t2\n\na\tb\nINBOX\n"
        );
        set(dir.path(), &n("a/b"), false).unwrap();
        set(dir.path(), &n("never"), false).unwrap();
        assert_eq!(list(dir.path()).unwrap(), [MailboxName::inbox()]);
        assert!(!dir.path().join("subscriptions.lock").exists());
    }

    #[test]
    fn version_1_files_are_upgraded_and_garbage_kept() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE_NAME), "a.b\nbad&\nINBOX\n").unwrap();
        assert_eq!(list(dir.path()).unwrap(), [n("a/b"), n("INBOX")]);
        set(dir.path(), &n("c"), true).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join(FILE_NAME)).unwrap(),
            "V\t2\n\na\tb\nbad&\nINBOX\nc\n"
        );
    }

    #[test]
    fn tab_escaping() {
        let s = "a\u{1}b\tc\rd\ne";
        assert_eq!(tab_unescape(&tab_escape(s)), s);
    }
}
