//! Mailbox names on disk in Maildir++ as Dovecot 2.3 lays them out with the `listescape` plugin
//! and `separator = /` (`mailbox_list_escape_name_params`, `mailbox-list-maildir.c`).
//!
//! INBOX is the Maildir root; every other mailbox is the directory `.<c1>.<c2>...` in the root,
//! one component per hierarchy level. A component is stored in modified UTF-7 (RFC 3501 5.1.3,
//! `mail_types::utf7`), and then the characters the layout cannot hold literally are escaped as
//! `\` and two lowercase hex digits: `.` (the on-disk separator) becomes `\2e`, `\` becomes `\5c`,
//! and `~` at the start of a component becomes `\7e` (so it cannot be read as a home directory).

use mail_types::{HIERARCHY_SEPARATOR, MailboxName, utf7};

use crate::{Result, StoreError};

/// The longest directory name most file systems accept (`NAME_MAX`).
const NAME_MAX: usize = 255;

const ESCAPE: char = '\\';

/// The directory of `name` relative to the Maildir root: `""` for INBOX, `.a.b` for `a/b`.
/// `InvalidName` when the result cannot be one directory entry.
pub fn dir_name(name: &MailboxName) -> Result<String> {
    if name.is_inbox() {
        return Ok(String::new());
    }
    let mut out = String::with_capacity(name.as_str().len() + 8);
    for component in name.components() {
        out.push('.');
        out.push_str(&storage_component(component));
    }
    if out.len() > NAME_MAX {
        return Err(StoreError::InvalidName(format!(
            "{name}: longer than {NAME_MAX} bytes on disk"
        )));
    }
    Ok(out)
}

/// One hierarchy level as stored on disk: modified UTF-7, then escaped.
pub fn storage_component(component: &str) -> String {
    let encoded = utf7::encode(component);
    let mut out = String::with_capacity(encoded.len() + 4);
    for (i, c) in encoded.chars().enumerate() {
        let escape = match c {
            '.' | ESCAPE | '/' => true,
            '~' => i == 0,
            _ => false,
        };
        if escape {
            out.push(ESCAPE);
            out.push_str(&format!("{:02x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// The component a stored one stands for, if it decodes.
pub fn component_of_storage(stored: &str) -> Option<String> {
    let mut unescaped = String::with_capacity(stored.len());
    let bytes = stored.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            let hex = stored
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = hex.filter(u8::is_ascii) {
                unescaped.push(char::from(b));
                i += 3;
                continue;
            }
        }
        let c = stored[i..].chars().next()?;
        unescaped.push(c);
        i += c.len_utf8();
    }
    utf7::decode(unescaped.as_bytes()).ok()
}

/// The mailbox a root-level directory entry holds, if the entry is a Maildir++ folder whose name
/// decodes to exactly this directory (names that would not map back are not shown, because no
/// command could reach them).
pub fn mailbox_of_dir(dir: &str) -> Option<MailboxName> {
    let rest = dir.strip_prefix('.')?;
    if rest.is_empty() || rest == "." {
        return None;
    }
    let mut components = Vec::new();
    for stored in rest.split('.') {
        components.push(component_of_storage(stored)?);
    }
    let joined = components.join(&HIERARCHY_SEPARATOR.to_string());
    let name = MailboxName::new(&joined).ok()?;
    // `.INBOX` would shadow the root; it only ever holds INBOX's children.
    if name.is_inbox() {
        return None;
    }
    (dir_name(&name).ok()? == dir).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> MailboxName {
        MailboxName::new(s).unwrap()
    }

    /// What Dovecot 2.3.19 (listescape, `separator = /`) created for these names.
    const DOVECOT: &[(&str, &str)] = &[
        ("a/b/c", ".a.b.c"),
        ("Entw\u{fc}rfe", ".Entw&APw-rfe"),
        ("dot.ted", ".dot\\2eted"),
        ("back\\\\slash", ".back\\5c\\5cslash"),
        ("x/~t", ".x.\\7et"),
        ("INBOX/sub", ".INBOX.sub"),
        ("A&B", ".A&-B"),
        ("\u{53f0}\u{5317}", ".&U,BTFw-"),
    ];

    #[test]
    fn names_map_like_dovecot_both_ways() {
        for (name, dir) in DOVECOT {
            assert_eq!(dir_name(&n(name)).unwrap(), *dir, "{name}");
            assert_eq!(mailbox_of_dir(dir), Some(n(name)), "{dir}");
        }
        assert_eq!(dir_name(&MailboxName::inbox()).unwrap(), "");
        assert_eq!(dir_name(&n("inbox")).unwrap(), "");
    }

    #[test]
    fn entries_that_are_not_folders() {
        for dir in [
            "cur",
            ".",
            "..",
            ".INBOX",
            ".a..b",
            ".&Jjo",
            ".bad&AGE-",
            ".~home",
            ".a.~b",
            ".x\\2Ey",
        ] {
            assert_eq!(mailbox_of_dir(dir), None, "{dir}");
        }
    }

    #[test]
    fn too_long_for_the_disk() {
        let long = "x".repeat(254);
        assert!(dir_name(&n(&long)).is_ok());
        let too_long = "x".repeat(255);
        assert_eq!(
            dir_name(&n(&too_long)).unwrap_err().kind(),
            crate::StoreErrorKind::InvalidName
        );
        // Non-ASCII grows in modified UTF-7.
        let wide = "\u{e9}".repeat(100);
        assert!(dir_name(&n(&wide)).is_err());
    }
}
