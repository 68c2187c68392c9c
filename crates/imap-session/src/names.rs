//! Mailbox names from the wire and LIST pattern matching (RFC 3501 5.1, 6.3.8).

use imap_proto::response::Code;
use imap_proto::{ListPattern, MailboxArg};
use mail_types::{HIERARCHY_SEPARATOR, MailboxName, utf7};

use crate::session::{Reply, Session};

/// Longest LIST pattern accepted; matching is O(pattern x name), so it is bounded.
const MAX_PATTERN_CHARS: usize = 1024;

impl Session {
    /// The mailbox an argument names: modified UTF-7 (RFC 3501 5.1.3), or UTF-8 as it is once
    /// the client enabled IMAP4rev2 (RFC 9051 5.1) or UTF8=ACCEPT (RFC 6855 3).
    pub(crate) fn mailbox_name(&self, arg: &MailboxArg) -> Result<MailboxName, Reply> {
        if self.utf8 {
            mailbox_name_utf8(arg)
        } else {
            mailbox_name(arg)
        }
    }
}

/// A UTF-8 mailbox argument (RFC 9051 5.1) into a validated name.
fn mailbox_name_utf8(arg: &MailboxArg) -> Result<MailboxName, Reply> {
    let name = std::str::from_utf8(&arg.0)
        .map_err(|_| Reply::no("Mailbox name is not valid UTF-8.").with_code(Code::CanNot))?;
    // RFC 6855 3: Net-Unicode without C0/C1 controls, DEL, LINE and PARAGRAPH SEPARATOR.
    if name
        .chars()
        .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}')
    {
        return Err(
            Reply::no("Mailbox name has a control character or line separator.")
                .with_code(Code::CanNot),
        );
    }
    MailboxName::new(name)
        .map_err(|e| Reply::no(format!("Invalid mailbox name: {e}.")).with_code(Code::CanNot))
}

/// Decodes a mailbox argument (modified UTF-7, RFC 3501 5.1.3) into a validated name.
pub(crate) fn mailbox_name(arg: &MailboxArg) -> Result<MailboxName, Reply> {
    // Control characters are invalid modified UTF-7 too, but saying so helps the user more.
    if arg.0.iter().any(|b| b.is_ascii_control()) {
        return Err(
            Reply::no("Invalid mailbox name: mailbox name contains a control character.")
                .with_code(Code::CanNot),
        );
    }
    let decoded = utf7::decode(&arg.0).map_err(|_| {
        Reply::no("Mailbox name is not valid modified UTF-7.").with_code(Code::CanNot)
    })?;
    MailboxName::new(&decoded)
        .map_err(|e| Reply::no(format!("Invalid mailbox name: {e}.")).with_code(Code::CanNot))
}

/// A LIST/LSUB pattern: reference and mailbox pattern joined (RFC 3501 6.3.8), with `*`
/// matching anything and `%` anything but the hierarchy separator.
pub(crate) struct ListMatcher {
    pattern: Vec<char>,
}

impl ListMatcher {
    /// `utf8`: the client enabled IMAP4rev2, whose patterns are UTF-8 (RFC 9051 5.1).
    pub(crate) fn new(
        reference: &ListPattern,
        pattern: &ListPattern,
        utf8: bool,
    ) -> Result<Self, Reply> {
        let decode = |raw: &[u8]| {
            if utf8 {
                return String::from_utf8(raw.to_vec())
                    .map_err(|_| Reply::no("Pattern is not valid UTF-8.").with_code(Code::CanNot));
            }
            utf7::decode(raw).map_err(|_| {
                Reply::no("Pattern is not valid modified UTF-7.").with_code(Code::CanNot)
            })
        };
        let mut joined = decode(&reference.0)?;
        joined.push_str(&decode(&pattern.0)?);
        let mut chars: Vec<char> = joined.chars().collect();
        if chars.len() > MAX_PATTERN_CHARS {
            return Err(Reply::no("Pattern is too long.").with_code(Code::Limit));
        }
        // INBOX is case-insensitive (RFC 3501 5.1), also as the first level of a pattern.
        if chars.len() >= 5
            && chars[..5]
                .iter()
                .collect::<String>()
                .eq_ignore_ascii_case("INBOX")
            && chars.get(5).is_none_or(|c| *c == HIERARCHY_SEPARATOR)
        {
            chars.splice(..5, "INBOX".chars());
        }
        Ok(ListMatcher { pattern: chars })
    }

    /// Whether `name` matches. The matcher simulates the pattern as a set of positions, so any
    /// number of wildcards costs at most pattern x name steps (no exponential backtracking).
    pub(crate) fn matches(&self, name: &str) -> bool {
        let p = &self.pattern;
        let mut states = vec![false; p.len() + 1];
        states[0] = true;
        close_over_wildcards(p, &mut states);
        for c in name.chars() {
            let mut next = vec![false; p.len() + 1];
            for i in 0..p.len() {
                if !states[i] {
                    continue;
                }
                match p[i] {
                    '*' => next[i] = true,
                    '%' if c != HIERARCHY_SEPARATOR => next[i] = true,
                    '%' => {}
                    lit if lit == c => next[i + 1] = true,
                    _ => {}
                }
            }
            close_over_wildcards(p, &mut next);
            if !next.iter().any(|&s| s) {
                return false;
            }
            states = next;
        }
        states[p.len()]
    }

    /// Whether the pattern ends in `%`: then hierarchy levels that are not mailboxes themselves
    /// also match, as `\Noselect` (RFC 3501 6.3.8).
    pub(crate) fn ends_with_percent(&self) -> bool {
        self.pattern.last() == Some(&'%')
    }
}

/// A wildcard may match the empty string, so a state sitting on one also sits after it.
fn close_over_wildcards(p: &[char], states: &mut [bool]) {
    for i in 0..p.len() {
        if states[i] && (p[i] == '*' || p[i] == '%') {
            states[i + 1] = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(reference: &str, pattern: &str) -> ListMatcher {
        ListMatcher::new(
            &ListPattern(reference.as_bytes().to_vec()),
            &ListPattern(pattern.as_bytes().to_vec()),
            false,
        )
        .unwrap_or_else(|_| panic!("pattern {pattern:?}"))
    }

    #[test]
    fn wildcards_follow_rfc3501() {
        let star = m("", "*");
        assert!(star.matches("a/b/c") && star.matches("INBOX"));
        let pct = m("", "%");
        assert!(pct.matches("a") && !pct.matches("a/b"));
        let sub = m("a/", "%");
        assert!(sub.matches("a/b") && !sub.matches("a/b/c") && !sub.matches("b/c"));
        let mid = m("", "a*c");
        assert!(mid.matches("abc") && mid.matches("a/x/c") && !mid.matches("abd"));
        let pmid = m("", "a%c");
        assert!(pmid.matches("abbc") && !pmid.matches("a/c"));
        assert!(m("", "").matches(""));
    }

    #[test]
    fn inbox_is_case_insensitive_in_patterns() {
        assert!(m("", "inbox").matches("INBOX"));
        assert!(m("", "Inbox/%").matches("INBOX/x"));
        assert!(!m("", "inboxes").matches("INBOXES"));
    }

    #[test]
    fn many_wildcards_stay_cheap() {
        let p = "*%".repeat(500);
        let matcher = m("", &p);
        assert!(matcher.matches(&"a/".repeat(500)));
        let percents = m("", &"%".repeat(1000));
        assert!(
            !percents.matches(&"a/".repeat(500)),
            "% never crosses a separator"
        );
    }

    #[test]
    fn non_ascii_patterns_are_decoded() {
        assert!(m("", "Entw&APw-rfe").matches("Entw\u{fc}rfe"));
        assert!(
            ListMatcher::new(
                &ListPattern(Vec::new()),
                &ListPattern(b"&Jjo".to_vec()),
                false
            )
            .is_err()
        );
    }
}
