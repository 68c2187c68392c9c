//! Message flags (RFC 3501 2.3.2): the five permanent system flags and keywords.
//!
//! `\Recent` is deliberately absent: it is a property of a session's view, not of the stored
//! message, so the session layer tracks it.

use std::fmt;

/// The permanent system flags as a bit set. The bit values are part of the on-disk index format
/// of later issues, so they never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct SystemFlags(u8);

impl SystemFlags {
    pub const SEEN: SystemFlags = SystemFlags(1);
    pub const ANSWERED: SystemFlags = SystemFlags(2);
    pub const FLAGGED: SystemFlags = SystemFlags(4);
    pub const DELETED: SystemFlags = SystemFlags(8);
    pub const DRAFT: SystemFlags = SystemFlags(16);
    pub const ALL: SystemFlags = SystemFlags(31);

    pub const fn empty() -> Self {
        SystemFlags(0)
    }

    /// Keeps only the defined bits, so a damaged byte read from disk cannot invent flags.
    pub const fn from_bits_truncate(bits: u8) -> Self {
        SystemFlags(bits & Self::ALL.0)
    }

    pub const fn bits(self) -> u8 {
        self.0
    }

    pub const fn contains(self, other: SystemFlags) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn insert(&mut self, other: SystemFlags) {
        self.0 |= other.0;
    }

    pub fn remove(&mut self, other: SystemFlags) {
        self.0 &= !other.0;
    }

    pub const fn union(self, other: SystemFlags) -> Self {
        SystemFlags(self.0 | other.0)
    }

    pub const fn difference(self, other: SystemFlags) -> Self {
        SystemFlags(self.0 & !other.0)
    }

    /// Flags in the canonical order IMAP servers conventionally print them.
    pub fn iter(self) -> impl Iterator<Item = Flag> {
        [
            (Self::ANSWERED, Flag::Answered),
            (Self::FLAGGED, Flag::Flagged),
            (Self::DELETED, Flag::Deleted),
            (Self::SEEN, Flag::Seen),
            (Self::DRAFT, Flag::Draft),
        ]
        .into_iter()
        .filter(move |(bit, _)| self.contains(*bit))
        .map(|(_, flag)| flag)
    }
}

/// A keyword (user-defined flag): an IMAP atom that does not start with `\` (RFC 3501 9, `flag-keyword`).
/// Keywords compare case-sensitively as stored but servers match them case-insensitively
/// (RFC 3501 2.3.2 leaves this open; Dovecot matches case-insensitively), see [`Keyword::eq_ignore_case`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Keyword(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeywordError {
    #[error("keyword is empty")]
    Empty,
    #[error("keyword is longer than {max} bytes")]
    TooLong { max: usize },
    #[error("keyword contains a character that is not allowed in an IMAP atom")]
    InvalidCharacter,
}

impl Keyword {
    /// Keywords longer than this are refused; Dovecot's limit is similar and no client needs more.
    pub const MAX_LEN: usize = 255;

    pub fn new(name: &str) -> Result<Self, KeywordError> {
        if name.is_empty() {
            return Err(KeywordError::Empty);
        }
        if name.len() > Self::MAX_LEN {
            return Err(KeywordError::TooLong { max: Self::MAX_LEN });
        }
        if name.starts_with('\\') || !name.bytes().all(is_atom_char) {
            return Err(KeywordError::InvalidCharacter);
        }
        Ok(Keyword(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn eq_ignore_case(&self, other: &Keyword) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl fmt::Display for Keyword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An `ATOM-CHAR` of RFC 3501 9: any CHAR except atom-specials
/// (`(`, `)`, `{`, SP, CTL, `%`, `*`, `"`, `\`, `]`).
pub fn is_atom_char(b: u8) -> bool {
    !matches!(
        b,
        b'(' | b')' | b'{' | b' ' | b'%' | b'*' | b'"' | b'\\' | b']'
    ) && (0x21..0x7f).contains(&b)
}

/// One flag as it appears in STORE, APPEND and FETCH FLAGS.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Flag {
    Seen,
    Answered,
    Flagged,
    Deleted,
    Draft,
    Keyword(Keyword),
}

impl Flag {
    /// Parses `\Seen` etc. (case-insensitively, RFC 3501 2.3.2) or a keyword. `\Recent` and
    /// unknown `\Extension` flags are refused here; the protocol layer decides what to do with them.
    pub fn parse(s: &str) -> Result<Flag, KeywordError> {
        if let Some(system) = s.strip_prefix('\\') {
            return match system.to_ascii_lowercase().as_str() {
                "seen" => Ok(Flag::Seen),
                "answered" => Ok(Flag::Answered),
                "flagged" => Ok(Flag::Flagged),
                "deleted" => Ok(Flag::Deleted),
                "draft" => Ok(Flag::Draft),
                _ => Err(KeywordError::InvalidCharacter),
            };
        }
        Keyword::new(s).map(Flag::Keyword)
    }

    pub fn system_bit(&self) -> Option<SystemFlags> {
        match self {
            Flag::Seen => Some(SystemFlags::SEEN),
            Flag::Answered => Some(SystemFlags::ANSWERED),
            Flag::Flagged => Some(SystemFlags::FLAGGED),
            Flag::Deleted => Some(SystemFlags::DELETED),
            Flag::Draft => Some(SystemFlags::DRAFT),
            Flag::Keyword(_) => None,
        }
    }
}

impl Flag {
    /// The flag as IMAP writes it (`\\Seen`, or the keyword).
    pub fn as_str(&self) -> &str {
        match self {
            Flag::Seen => "\\Seen",
            Flag::Answered => "\\Answered",
            Flag::Flagged => "\\Flagged",
            Flag::Deleted => "\\Deleted",
            Flag::Draft => "\\Draft",
            Flag::Keyword(k) => k.as_str(),
        }
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The stored flags of one message: system flags plus keywords (kept sorted, without duplicates
/// under case-insensitive comparison).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Flags {
    pub system: SystemFlags,
    keywords: Vec<Keyword>,
}

impl Flags {
    pub fn new(system: SystemFlags, keywords: impl IntoIterator<Item = Keyword>) -> Self {
        let mut flags = Flags {
            system,
            keywords: Vec::new(),
        };
        for k in keywords {
            flags.add_keyword(k);
        }
        flags
    }

    pub fn from_flags<'a>(list: impl IntoIterator<Item = &'a Flag>) -> Self {
        let mut flags = Flags::default();
        for f in list {
            flags.insert(f);
        }
        flags
    }

    pub fn keywords(&self) -> &[Keyword] {
        &self.keywords
    }

    pub fn has_keyword(&self, k: &Keyword) -> bool {
        self.keywords.iter().any(|x| x.eq_ignore_case(k))
    }

    pub fn contains(&self, flag: &Flag) -> bool {
        match flag {
            Flag::Keyword(k) => self.has_keyword(k),
            other => other.system_bit().is_some_and(|b| self.system.contains(b)),
        }
    }

    pub fn insert(&mut self, flag: &Flag) {
        match flag {
            Flag::Keyword(k) => self.add_keyword(k.clone()),
            other => {
                if let Some(b) = other.system_bit() {
                    self.system.insert(b)
                }
            }
        }
    }

    pub fn remove(&mut self, flag: &Flag) {
        match flag {
            Flag::Keyword(k) => self.keywords.retain(|x| !x.eq_ignore_case(k)),
            other => {
                if let Some(b) = other.system_bit() {
                    self.system.remove(b)
                }
            }
        }
    }

    fn add_keyword(&mut self, k: Keyword) {
        if !self.has_keyword(&k) {
            let at = self.keywords.partition_point(|x| x < &k);
            self.keywords.insert(at, k);
        }
    }

    /// All flags, system flags first, in a stable order.
    pub fn iter(&self) -> impl Iterator<Item = Flag> + '_ {
        self.system
            .iter()
            .chain(self.keywords.iter().cloned().map(Flag::Keyword))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_atoms_without_backslash() {
        assert!(Keyword::new("$Forwarded").is_ok());
        assert!(Keyword::new("NonJunk").is_ok());
        for bad in [
            "",
            "\\Seen",
            "a b",
            "a(b",
            "a]",
            "a*",
            "a%",
            "a\"",
            "caf\u{e9}",
            "a\u{7}",
        ] {
            assert!(Keyword::new(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(Keyword::new(&"x".repeat(256)).is_err());
    }

    #[test]
    fn system_flags_parse_case_insensitively() {
        assert_eq!(Flag::parse("\\SEEN"), Ok(Flag::Seen));
        assert_eq!(Flag::parse("\\draft"), Ok(Flag::Draft));
        assert!(Flag::parse("\\Recent").is_err());
        assert!(Flag::parse("\\Bogus").is_err());
    }

    #[test]
    fn flags_dedupe_keywords_case_insensitively_and_keep_order() {
        let mut f = Flags::default();
        f.insert(&Flag::parse("b").unwrap());
        f.insert(&Flag::parse("A").unwrap());
        f.insert(&Flag::parse("a").unwrap());
        f.insert(&Flag::Seen);
        let shown: Vec<String> = f.iter().map(|x| x.to_string()).collect();
        assert_eq!(shown, ["\\Seen", "A", "b"]);
        f.remove(&Flag::parse("B").unwrap());
        assert!(!f.contains(&Flag::parse("b").unwrap()));
        assert!(f.contains(&Flag::Seen));
    }

    #[test]
    fn truncation_drops_undefined_bits() {
        assert_eq!(SystemFlags::from_bits_truncate(0xff), SystemFlags::ALL);
    }
}
