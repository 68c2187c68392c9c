//! A set of UIDs kept as runs of consecutive values, for sets that can be as large as the UID
//! space: "every UID below UIDNEXT without a message" is one run per gap, whatever the gaps'
//! length (RFC 7162 3.2.5.1 lets `VANISHED (EARLIER)` name such a superset).

use std::num::NonZeroU32;

use crate::{SeqBound, SeqRange, SeqSet, Uid};

/// UIDs as sorted, disjoint, non-adjacent inclusive runs `(low, high)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UidRuns {
    runs: Vec<(u32, u32)>,
}

impl UidRuns {
    /// The set of `uids`, which must ascend (repeats are ignored; a smaller one after a larger
    /// one is ignored too, so that the runs stay sorted whatever the caller does).
    pub fn from_ascending(uids: impl IntoIterator<Item = Uid>) -> UidRuns {
        let mut out = UidRuns::default();
        for uid in uids {
            out.push(uid.get(), uid.get());
        }
        out
    }

    /// Adds `low..=high` above everything in the set (a run that is not, or is empty, is
    /// ignored); merges it with the last run when they touch.
    pub fn push(&mut self, low: u32, high: u32) {
        if low == 0 || low > high {
            return;
        }
        match self.runs.last_mut() {
            Some(last) if low <= last.1 => {
                if high > last.1 && low >= last.0 {
                    last.1 = high;
                }
            }
            Some(last) if low == last.1 + 1 => last.1 = high,
            _ => self.runs.push((low, high)),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    pub fn contains(&self, uid: Uid) -> bool {
        let u = uid.get();
        let i = self.runs.partition_point(|r| r.1 < u);
        self.runs.get(i).is_some_and(|r| r.0 <= u)
    }

    pub fn runs(&self) -> &[(u32, u32)] {
        &self.runs
    }

    /// How many UIDs the set holds.
    pub fn count(&self) -> u64 {
        self.runs.iter().map(|r| u64::from(r.1 - r.0) + 1).sum()
    }

    /// Every UID, ascending. A set made of gaps can hold billions: callers that can meet one
    /// go by [`UidRuns::runs`].
    pub fn iter(&self) -> impl Iterator<Item = Uid> + '_ {
        self.runs
            .iter()
            .flat_map(|&(lo, hi)| (lo..=hi).filter_map(Uid::new))
    }

    /// The UIDs that are also in `ranges` (sorted, disjoint inclusive ranges, such as
    /// [`SeqSet::normalized`] gives).
    pub fn within(&self, ranges: &[(u32, u32)]) -> UidRuns {
        let mut out = UidRuns::default();
        let (mut i, mut j) = (0, 0);
        while let (Some(&(a, b)), Some(&(c, d))) = (self.runs.get(i), ranges.get(j)) {
            out.push(a.max(c), b.min(d));
            if b < d {
                i += 1;
            } else {
                j += 1;
            }
        }
        out
    }

    /// The set as a sequence set of UIDs (RFC 3501 9); `None` when it is empty.
    pub fn to_seq_set(&self) -> Option<SeqSet> {
        let ranges = self
            .runs
            .iter()
            .filter_map(|&(lo, hi)| {
                Some(SeqRange {
                    start: SeqBound::Value(NonZeroU32::new(lo)?),
                    end: SeqBound::Value(NonZeroU32::new(hi)?),
                })
            })
            .collect();
        SeqSet::new(ranges)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uids(v: &[u32]) -> UidRuns {
        UidRuns::from_ascending(v.iter().map(|&u| Uid::new(u).unwrap()))
    }

    #[test]
    fn runs_merge_and_answer_membership() {
        let set = uids(&[1, 2, 3, 5, 5, 7, 8, 4]);
        assert_eq!(set.runs(), &[(1, 3), (5, 5), (7, 8)]);
        assert_eq!(set.count(), 6);
        for (u, inside) in [
            (1, true),
            (3, true),
            (4, false),
            (5, true),
            (6, false),
            (8, true),
            (9, false),
        ] {
            assert_eq!(set.contains(Uid::new(u).unwrap()), inside, "{u}");
        }
        assert_eq!(
            set.iter().map(|u| u.get()).collect::<Vec<_>>(),
            [1, 2, 3, 5, 7, 8]
        );
        assert_eq!(set.to_seq_set().unwrap().to_string(), "1:3,5,7:8");
        assert!(UidRuns::default().to_seq_set().is_none());
    }

    #[test]
    fn a_huge_run_costs_nothing_to_hold_or_intersect() {
        let mut set = UidRuns::default();
        set.push(2, u32::MAX - 1);
        assert_eq!(set.count(), u64::from(u32::MAX) - 2);
        assert!(set.contains(Uid::new(4_000_000_000).unwrap()));
        let some = set.within(&[(1, 3), (10, 12), (u32::MAX - 5, u32::MAX)]);
        assert_eq!(
            some.runs(),
            &[(2, 3), (10, 12), (u32::MAX - 5, u32::MAX - 1)]
        );
        assert!(set.within(&[]).is_empty());
    }
}
