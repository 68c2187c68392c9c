//! The mailbox's keyword names, numbered, so that each record stores its keywords as a bit mask.

use mail_types::{Flags, Keyword, SystemFlags};

/// Keywords one mailbox can hold. Records keep their keywords in a `u64`; Maildir++ allows only
/// 26 anyway (the letters `a`-`z` of the file name).
pub const MAX_KEYWORDS: usize = 64;

#[derive(Debug, Default, Clone)]
pub(crate) struct KeywordTable {
    names: Vec<Keyword>,
}

impl KeywordTable {
    /// The bit of `k`, adding it to the table if needed. `None` when the table is full.
    pub(crate) fn intern(&mut self, k: &Keyword) -> Option<u64> {
        if let Some(i) = self.position(k) {
            return Some(1u64 << i);
        }
        if self.names.len() >= MAX_KEYWORDS {
            return None;
        }
        self.names.push(k.clone());
        Some(1u64 << (self.names.len() - 1))
    }

    /// Keywords match case-insensitively, as Dovecot matches them (`Flags` does the same).
    fn position(&self, k: &Keyword) -> Option<usize> {
        self.names.iter().position(|n| n.eq_ignore_case(k))
    }

    /// The mask of `flags`' keywords, interning new ones; `None` if the table overflows.
    pub(crate) fn mask_of(&mut self, flags: &Flags) -> Option<u64> {
        let mut mask = 0;
        for k in flags.keywords() {
            mask |= self.intern(k)?;
        }
        Some(mask)
    }

    pub(crate) fn flags(&self, system: u8, mask: u64) -> Flags {
        let system = SystemFlags::from_bits_truncate(system);
        if mask == 0 {
            return Flags::new(system, []);
        }
        let names = self
            .names
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1u64 << i) != 0)
            .map(|(_, k)| k.clone());
        Flags::new(system, names)
    }

    pub(crate) fn names(&self) -> &[Keyword] {
        &self.names
    }
}
