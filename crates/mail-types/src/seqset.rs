//! Sequence sets (RFC 3501 9, `sequence-set`): lists of numbers and ranges naming messages by
//! sequence number or by UID, where `*` stands for the largest number in use.

use std::fmt;
use std::num::NonZeroU32;

/// One end of a range: a number, or `*` (the largest message number or UID in the mailbox).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeqBound {
    Value(NonZeroU32),
    Star,
}

impl SeqBound {
    fn resolve(self, star: u32) -> u32 {
        match self {
            SeqBound::Value(v) => v.get(),
            SeqBound::Star => star,
        }
    }
}

/// A single number or range as written; `a:b` and `b:a` mean the same (RFC 3501 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeqRange {
    pub start: SeqBound,
    pub end: SeqBound,
}

/// A non-empty sequence set as the client wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SeqSet {
    ranges: Vec<SeqRange>,
}

impl SeqSet {
    /// `None` when `ranges` is empty: the grammar has no empty set.
    pub fn new(ranges: Vec<SeqRange>) -> Option<Self> {
        (!ranges.is_empty()).then_some(SeqSet { ranges })
    }

    pub fn single(n: NonZeroU32) -> Self {
        let b = SeqBound::Value(n);
        SeqSet {
            ranges: vec![SeqRange { start: b, end: b }],
        }
    }

    /// `1:*`
    pub fn all() -> Self {
        SeqSet {
            ranges: vec![SeqRange {
                start: SeqBound::Value(NonZeroU32::MIN),
                end: SeqBound::Star,
            }],
        }
    }

    pub fn ranges(&self) -> &[SeqRange] {
        &self.ranges
    }

    /// The set as sorted, merged, inclusive `(low, high)` ranges once `*` is known to be `star`.
    /// With `star == 0` (an empty mailbox) `*` resolves to 0, so ranges may start at 0; callers
    /// treat 0 as matching nothing.
    pub fn normalized(&self, star: u32) -> Vec<(u32, u32)> {
        let mut out: Vec<(u32, u32)> = self
            .ranges
            .iter()
            .map(|r| {
                let (a, b) = (r.start.resolve(star), r.end.resolve(star));
                (a.min(b), a.max(b))
            })
            .collect();
        out.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(out.len());
        for (lo, hi) in out {
            match merged.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        merged
    }

    pub fn contains(&self, value: u32, star: u32) -> bool {
        self.ranges.iter().any(|r| {
            let (a, b) = (r.start.resolve(star), r.end.resolve(star));
            a.min(b) <= value && value <= a.max(b)
        })
    }

    /// Whether any bound is `*`.
    pub fn uses_star(&self) -> bool {
        self.ranges
            .iter()
            .any(|r| r.start == SeqBound::Star || r.end == SeqBound::Star)
    }

    /// The most compact set covering exactly `values` (which need not be sorted); `None` if empty.
    pub fn from_values(values: impl IntoIterator<Item = u32>) -> Option<Self> {
        let mut v: Vec<u32> = values.into_iter().filter(|&x| x != 0).collect();
        v.sort_unstable();
        v.dedup();
        let mut ranges = Vec::new();
        let mut i = 0;
        while i < v.len() {
            let start = v[i];
            let mut end = start;
            while i + 1 < v.len() && v[i + 1] == end + 1 {
                i += 1;
                end = v[i];
            }
            i += 1;
            if let (Some(s), Some(e)) = (NonZeroU32::new(start), NonZeroU32::new(end)) {
                ranges.push(SeqRange {
                    start: SeqBound::Value(s),
                    end: SeqBound::Value(e),
                });
            }
        }
        SeqSet::new(ranges)
    }
}

impl fmt::Display for SeqBound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeqBound::Value(v) => write!(f, "{v}"),
            SeqBound::Star => f.write_str("*"),
        }
    }
}

impl fmt::Display for SeqSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if r.start == r.end {
                write!(f, "{}", r.start)?;
            } else {
                write!(f, "{}:{}", r.start, r.end)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(n: u32) -> SeqBound {
        SeqBound::Value(NonZeroU32::new(n).unwrap())
    }

    #[test]
    fn normalization_sorts_merges_and_resolves_star() {
        let set = SeqSet::new(vec![
            SeqRange {
                start: v(9),
                end: v(7),
            },
            SeqRange {
                start: v(1),
                end: v(2),
            },
            SeqRange {
                start: v(3),
                end: v(3),
            },
            SeqRange {
                start: SeqBound::Star,
                end: v(20),
            },
        ])
        .unwrap();
        assert_eq!(set.normalized(15), vec![(1, 3), (7, 9), (15, 20)]);
        assert!(set.contains(8, 15));
        assert!(!set.contains(5, 15));
        assert_eq!(set.to_string(), "9:7,1:2,3,*:20");
    }

    #[test]
    fn compact_form_of_values() {
        let set = SeqSet::from_values([5, 1, 2, 3, 9, 10, 3]).unwrap();
        assert_eq!(set.to_string(), "1:3,5,9:10");
        assert!(SeqSet::from_values([]).is_none());
        assert_eq!(SeqSet::all().to_string(), "1:*");
    }
}
