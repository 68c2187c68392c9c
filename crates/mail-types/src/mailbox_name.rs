//! Mailbox names as the rest of Columba sees them: Unicode, hierarchical, and safe to map onto a
//! file system. Wire encodings (modified UTF-7, RFC 3501 5.1.3) are the protocol crate's business;
//! by the time a name reaches this type it is plain UTF-8.

use std::fmt;

/// The hierarchy delimiter Columba shows to clients (RFC 3501 5.1.1). Storage backends map it onto
/// their own layout (Maildir++ uses `.` on disk).
pub const HIERARCHY_SEPARATOR: char = '/';

/// A validated mailbox name. `INBOX` is case-insensitive (RFC 3501 5.1) and is normalised to
/// upper case, also as the first level of a hierarchy (`inbox/x` becomes `INBOX/x`).
///
/// Validation exists for safety, not taste: a name must never address anything outside the
/// user's mail root, whichever backend stores it. So components may not be empty, `.` or `..`,
/// may not hold control characters, and the name may not start with `/` or `~`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MailboxName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailboxNameError {
    #[error("mailbox name is empty")]
    Empty,
    #[error("mailbox name is too long")]
    TooLong,
    #[error("mailbox name has an empty hierarchy level")]
    EmptyComponent,
    #[error("mailbox name has a '.' or '..' hierarchy level")]
    DotComponent,
    #[error("mailbox name contains a control character")]
    ControlCharacter,
    #[error("mailbox name may not start with '~'")]
    HomeReference,
    #[error("mailbox name contains a wildcard character")]
    Wildcard,
}

impl MailboxName {
    /// Longest name accepted, in bytes of UTF-8. Backends may impose tighter limits of their own.
    pub const MAX_LEN: usize = 1024;
    /// Deepest hierarchy accepted.
    pub const MAX_DEPTH: usize = 32;

    pub fn new(name: &str) -> Result<Self, MailboxNameError> {
        if name.is_empty() {
            return Err(MailboxNameError::Empty);
        }
        if name.len() > Self::MAX_LEN {
            return Err(MailboxNameError::TooLong);
        }
        if name.chars().any(|c| c.is_control()) {
            return Err(MailboxNameError::ControlCharacter);
        }
        if name.contains(['*', '%']) {
            return Err(MailboxNameError::Wildcard);
        }
        if name.starts_with('~') {
            return Err(MailboxNameError::HomeReference);
        }
        let mut depth = 0;
        for component in name.split(HIERARCHY_SEPARATOR) {
            depth += 1;
            match component {
                "" => return Err(MailboxNameError::EmptyComponent),
                "." | ".." => return Err(MailboxNameError::DotComponent),
                _ => {}
            }
        }
        if depth > Self::MAX_DEPTH {
            return Err(MailboxNameError::TooLong);
        }
        Ok(MailboxName(normalize_inbox(name)))
    }

    /// The INBOX.
    pub fn inbox() -> Self {
        MailboxName("INBOX".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_inbox(&self) -> bool {
        self.0 == "INBOX"
    }

    /// Hierarchy levels, top first.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split(HIERARCHY_SEPARATOR)
    }

    /// The name one level up, if any.
    pub fn parent(&self) -> Option<MailboxName> {
        self.0
            .rfind(HIERARCHY_SEPARATOR)
            .map(|at| MailboxName(self.0[..at].to_owned()))
    }

    /// Every ancestor, nearest last (`a/b/c` yields `a`, `a/b`).
    pub fn ancestors(&self) -> Vec<MailboxName> {
        let mut out = Vec::new();
        let mut cur = self.parent();
        while let Some(p) = cur {
            cur = p.parent();
            out.push(p);
        }
        out.reverse();
        out
    }

    /// True when `self` lies strictly below `ancestor` in the hierarchy.
    pub fn is_descendant_of(&self, ancestor: &MailboxName) -> bool {
        self.0.len() > ancestor.0.len()
            && self.0.starts_with(&ancestor.0)
            && self.0[ancestor.0.len()..].starts_with(HIERARCHY_SEPARATOR)
    }

    /// Replaces the prefix `from` (which `self` equals or descends from) by `to`: the name this
    /// mailbox gets when `from` is renamed to `to`.
    pub fn rebase(&self, from: &MailboxName, to: &MailboxName) -> Option<MailboxName> {
        if self == from {
            return Some(to.clone());
        }
        if self.is_descendant_of(from) {
            return MailboxName::new(&format!("{}{}", to.0, &self.0[from.0.len()..])).ok();
        }
        None
    }
}

fn normalize_inbox(name: &str) -> String {
    let first_len = name.find(HIERARCHY_SEPARATOR).unwrap_or(name.len());
    if name[..first_len].eq_ignore_ascii_case("INBOX") {
        format!("INBOX{}", &name[first_len..])
    } else {
        name.to_owned()
    }
}

impl fmt::Display for MailboxName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbox_is_case_insensitive_also_as_a_parent() {
        assert!(MailboxName::new("inbox").unwrap().is_inbox());
        assert_eq!(MailboxName::new("Inbox/Sub").unwrap().as_str(), "INBOX/Sub");
        assert_eq!(MailboxName::new("Inboxes").unwrap().as_str(), "Inboxes");
    }

    #[test]
    fn hostile_names_are_refused() {
        let cases = [
            ("", MailboxNameError::Empty),
            ("/etc/passwd", MailboxNameError::EmptyComponent),
            ("a//b", MailboxNameError::EmptyComponent),
            ("a/", MailboxNameError::EmptyComponent),
            ("..", MailboxNameError::DotComponent),
            ("a/../../b", MailboxNameError::DotComponent),
            ("./a", MailboxNameError::DotComponent),
            ("a\nb", MailboxNameError::ControlCharacter),
            ("a\u{0}b", MailboxNameError::ControlCharacter),
            ("a\u{7f}", MailboxNameError::ControlCharacter),
            ("~root", MailboxNameError::HomeReference),
            ("a*", MailboxNameError::Wildcard),
            ("a%b", MailboxNameError::Wildcard),
        ];
        for (name, err) in cases {
            assert_eq!(MailboxName::new(name), Err(err), "{name:?}");
        }
        assert_eq!(
            MailboxName::new(&"x".repeat(2000)),
            Err(MailboxNameError::TooLong)
        );
        assert_eq!(
            MailboxName::new(&["a"; 40].join("/")),
            Err(MailboxNameError::TooLong)
        );
    }

    #[test]
    fn unicode_and_dots_inside_names_are_fine() {
        assert!(MailboxName::new("Entw\u{fc}rfe").is_ok());
        assert!(MailboxName::new("john.doe/..hidden").is_ok());
    }

    #[test]
    fn hierarchy_helpers() {
        let n = MailboxName::new("a/b/c").unwrap();
        assert_eq!(n.parent().unwrap().as_str(), "a/b");
        let anc: Vec<_> = n
            .ancestors()
            .iter()
            .map(|a| a.as_str().to_owned())
            .collect();
        assert_eq!(anc, ["a", "a/b"]);
        let a = MailboxName::new("a").unwrap();
        assert!(n.is_descendant_of(&a));
        assert!(!MailboxName::new("ab").unwrap().is_descendant_of(&a));
        let z = MailboxName::new("z").unwrap();
        assert_eq!(n.rebase(&a, &z).unwrap().as_str(), "z/b/c");
        assert_eq!(MailboxName::new("ab").unwrap().rebase(&a, &z), None);
    }
}
