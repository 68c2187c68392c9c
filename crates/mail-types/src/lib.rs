//! Validated vocabulary shared by every Columba crate: message identifiers (`Uid`, `SeqNum`,
//! `UidValidity`, `ModSeq`), flags and keywords, mailbox names, sequence sets and UID runs, and
//! calendar arithmetic for dates.
//!
//! This crate owns the *meaning* of these values and the rules that make one valid (a UID is never
//! zero, a keyword is an IMAP atom, a mailbox name cannot climb out of the user's root). It knows
//! nothing of wire syntax beyond what validation needs, nothing of storage and nothing of sockets;
//! the protocol crates turn bytes into these types and the store consumes them.

pub mod date;
mod flags;
mod mailbox_name;
mod seqset;
mod uid_runs;
pub mod utf7;

pub use flags::{Flag, Flags, Keyword, KeywordError, SystemFlags, is_atom_char};
pub use mailbox_name::{HIERARCHY_SEPARATOR, MailboxName, MailboxNameError};
pub use seqset::{SeqBound, SeqRange, SeqSet};
pub use uid_runs::UidRuns;

use std::fmt;
use std::num::{NonZeroU32, NonZeroU64};

macro_rules! nonzero_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(NonZeroU32);

        impl $name {
            /// The smallest valid value (1).
            pub const MIN: $name = $name(NonZeroU32::MIN);
            /// The largest valid value (2^32 - 1).
            pub const MAX: $name = $name(NonZeroU32::MAX);

            /// `None` for zero, which is never a valid value.
            pub const fn new(value: u32) -> Option<Self> {
                match NonZeroU32::new(value) {
                    Some(v) => Some($name(v)),
                    None => None,
                }
            }

            pub const fn get(self) -> u32 {
                self.0.get()
            }

            /// The next value, or `None` when the 32-bit space is exhausted.
            pub fn next(self) -> Option<Self> {
                self.0.get().checked_add(1).and_then(Self::new)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<$name> for u32 {
            fn from(v: $name) -> u32 {
                v.get()
            }
        }
    };
}

nonzero_id!(
    /// A message's unique identifier within one mailbox and one `UidValidity` (RFC 3501 2.3.1.1).
    /// UIDs strictly ascend in mailbox order and are never reused.
    Uid
);
nonzero_id!(
    /// A message's position in a session's view of the selected mailbox (RFC 3501 2.3.1.2),
    /// counted from 1. Sequence numbers shift when messages are expunged.
    SeqNum
);
nonzero_id!(
    /// The UIDVALIDITY of a mailbox (RFC 3501 2.3.1.1): if it changes, clients discard their UID caches.
    UidValidity
);

/// A per-message modification sequence (RFC 7162 3.1): every change to a message raises it, and the
/// mailbox's HIGHESTMODSEQ is the largest one. Zero is never assigned to a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModSeq(NonZeroU64);

impl ModSeq {
    pub const MIN: ModSeq = ModSeq(NonZeroU64::MIN);

    pub const fn new(value: u64) -> Option<Self> {
        match NonZeroU64::new(value) {
            Some(v) => Some(ModSeq(v)),
            None => None,
        }
    }

    pub const fn get(self) -> u64 {
        self.0.get()
    }

    /// The next modseq; saturates at `u64::MAX`, which a mailbox will not reach in practice.
    pub fn next(self) -> Self {
        ModSeq(self.0.saturating_add(1))
    }
}

impl fmt::Display for ModSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_is_never_an_identifier() {
        assert!(Uid::new(0).is_none());
        assert!(SeqNum::new(0).is_none());
        assert!(UidValidity::new(0).is_none());
        assert!(ModSeq::new(0).is_none());
        assert_eq!(Uid::new(7).map(Uid::get), Some(7));
    }

    #[test]
    fn next_stops_at_the_end_of_the_space() {
        assert_eq!(Uid::MAX.next(), None);
        assert_eq!(Uid::MIN.next(), Uid::new(2));
        assert_eq!(
            ModSeq::new(u64::MAX).map(ModSeq::next),
            ModSeq::new(u64::MAX)
        );
    }
}
