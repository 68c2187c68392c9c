//! The messages of one view: a list shared with every other view opened at the same state of
//! the mailbox, plus what this session sees differently (its `\Recent` messages, changes it was
//! told about, messages gone or arrived since). A thousand sessions on a mailbox of a million
//! messages hold one list, not a thousand copies.
//!
//! Sequence numbers are positions in the list (1-based); the shared part keeps its positions
//! and a sorted list of the removed ones translates between the two. Once this session's own
//! part grows large next to the shared one, the list is copied into a private one and starts
//! over — rarely, and only for sessions that stay selected through many changes. A list that
//! is this view's alone is changed in place: a STORE of every message in a million-message
//! mailbox builds no overlay at all.

use std::collections::HashMap;
use std::sync::Arc;

use mail_types::Uid;

use super::ViewMessage;

#[derive(Debug, Clone)]
pub struct MessageList {
    /// In UID order; never changed while another view shares it.
    base: Arc<Vec<ViewMessage>>,
    /// `base` was made by this view (copied, or changed in place), so it may hold `\Recent`
    /// messages; a list shared from the mailbox never does.
    own_base: bool,
    /// Positions in `base` gone from this view, ascending.
    removed: Vec<usize>,
    /// This view's version of entries of `base`, by position.
    changed: HashMap<usize, ViewMessage>,
    /// Messages after the last one of `base`, in UID order.
    appended: Vec<ViewMessage>,
}

/// Overlay entries beyond which the list is made private again (see the module documentation).
const COMPACT_AT: usize = 4096;

impl MessageList {
    pub fn new(base: Arc<Vec<ViewMessage>>) -> MessageList {
        MessageList {
            base,
            own_base: false,
            removed: Vec::new(),
            changed: HashMap::new(),
            appended: Vec::new(),
        }
    }

    fn base_live(&self) -> usize {
        self.base.len() - self.removed.len()
    }

    pub fn len(&self) -> usize {
        self.base_live() + self.appended.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The position in `base` of the `i`-th (0-based) message still in the view there: the
    /// smallest position `p` with `i + 1` live positions at or below it.
    fn base_position(&self, i: usize) -> usize {
        let live_through = |p: usize| p + 1 - self.removed.partition_point(|&r| r <= p);
        let (mut lo, mut hi) = (i, i + self.removed.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if live_through(mid) > i {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    }

    /// The message at 0-based index `i` (sequence number `i + 1`).
    pub fn get(&self, i: usize) -> Option<&ViewMessage> {
        let live = self.base_live();
        if i < live {
            let p = self.base_position(i);
            self.changed.get(&p).or_else(|| self.base.get(p))
        } else {
            self.appended.get(i - live)
        }
    }

    /// Where `uid` is, as a 0-based index.
    pub fn index_of(&self, uid: Uid) -> Option<usize> {
        if let Ok(p) = self.base.binary_search_by_key(&uid, |m| m.uid) {
            let gone = self.removed.partition_point(|&r| r < p);
            if self.removed.get(gone) == Some(&p) {
                return None;
            }
            return Some(p - gone);
        }
        let j = self.appended.binary_search_by_key(&uid, |m| m.uid).ok()?;
        Some(self.base_live() + j)
    }

    /// The first index whose UID is at least `uid` (a partition point, as on a slice).
    pub fn first_at_or_above(&self, uid: Uid) -> usize {
        let p = self.base.partition_point(|m| m.uid < uid);
        let gone = self.removed.partition_point(|&r| r < p);
        if p < self.base.len() {
            return p - gone;
        }
        self.base_live() + self.appended.partition_point(|m| m.uid < uid)
    }

    /// The message at index `i`, to change: an entry of the shared list is copied first.
    pub fn get_mut(&mut self, i: usize) -> Option<&mut ViewMessage> {
        let live = self.base_live();
        if i < live {
            let p = self.base_position(i);
            if !self.changed.contains_key(&p) && Arc::get_mut(&mut self.base).is_some() {
                // No other view holds the list: no overlay needed.
                self.own_base = true;
                return Arc::get_mut(&mut self.base).and_then(|b| b.get_mut(p));
            }
            if !self.changed.contains_key(&p) {
                let original = self.base.get(p)?.clone();
                self.changed.insert(p, original);
            }
            self.changed.get_mut(&p)
        } else {
            self.appended.get_mut(i - live)
        }
    }

    /// Takes the message at index `i` out; the ones after it move up by one.
    pub fn remove(&mut self, i: usize) {
        let live = self.base_live();
        if i < live {
            let p = self.base_position(i);
            self.changed.remove(&p);
            let at = self.removed.partition_point(|&r| r < p);
            self.removed.insert(at, p);
        } else if i - live < self.appended.len() {
            self.appended.remove(i - live);
        }
    }

    /// Adds a message after the last one (its UID is above every UID in the list).
    pub fn push(&mut self, m: ViewMessage) {
        self.appended.push(m);
    }

    pub fn last(&self) -> Option<&ViewMessage> {
        self.len().checked_sub(1).and_then(|i| self.get(i))
    }

    /// The messages in sequence order.
    pub fn iter(&self) -> Iter<'_> {
        self.iter_from(0)
    }

    /// The messages from index `i` on, without walking the ones before it.
    pub fn iter_from(&self, i: usize) -> Iter<'_> {
        let live = self.base_live();
        if i < live {
            let p = self.base_position(i);
            Iter {
                list: self,
                pos: p,
                removed: self.removed.partition_point(|&r| r < p),
                appended: 0,
            }
        } else {
            Iter {
                list: self,
                pos: self.base.len(),
                removed: self.removed.len(),
                appended: i - live,
            }
        }
    }

    /// How many messages are `\Recent` for this view. A list shared from the mailbox has none,
    /// so only what this view changed or added needs counting, unless the list is its own.
    pub fn recent_count(&self) -> usize {
        if self.own_base {
            return self.iter().filter(|m| m.recent).count();
        }
        let changed = self.changed.values();
        changed
            .chain(self.appended.iter())
            .filter(|m| m.recent)
            .count()
    }

    /// Copies the list into a private one once this view's part outweighs sharing.
    pub fn maybe_compact(&mut self) {
        let own = self.removed.len() + self.changed.len() + self.appended.len();
        if own >= Self::overlay_limit(self.base.len()) {
            self.make_private();
        }
    }

    /// Prepares for `n` changes at once: more than an overlay is good for, and the list becomes
    /// this view's own first, so that they are made in place.
    pub fn reserve_changes(&mut self, n: usize) {
        let own = self.removed.len() + self.changed.len() + self.appended.len();
        if own + n >= Self::overlay_limit(self.base.len()) {
            self.make_private();
        }
    }

    fn overlay_limit(shared: usize) -> usize {
        COMPACT_AT.max(shared / 8)
    }

    fn make_private(&mut self) {
        if self.own_base
            && self.removed.is_empty()
            && self.changed.is_empty()
            && self.appended.is_empty()
            && Arc::get_mut(&mut self.base).is_some()
        {
            return;
        }
        let all: Vec<ViewMessage> = self.iter().cloned().collect();
        *self = MessageList::new(Arc::new(all));
        self.own_base = true;
    }

    /// Whether both lists share their common part (tests and diagnostics).
    pub fn shares_with(&self, other: &MessageList) -> bool {
        Arc::ptr_eq(&self.base, &other.base)
    }
}

pub struct Iter<'a> {
    list: &'a MessageList,
    pos: usize,
    removed: usize,
    appended: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a ViewMessage;

    fn next(&mut self) -> Option<&'a ViewMessage> {
        let list = self.list;
        while self.pos < list.base.len() {
            let p = self.pos;
            self.pos += 1;
            while self.removed < list.removed.len() && list.removed[self.removed] < p {
                self.removed += 1;
            }
            if list.removed.get(self.removed) == Some(&p) {
                continue;
            }
            return list.changed.get(&p).or_else(|| list.base.get(p));
        }
        let m = list.appended.get(self.appended)?;
        self.appended += 1;
        Some(m)
    }
}

impl<'a> IntoIterator for &'a MessageList {
    type Item = &'a ViewMessage;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use mail_types::{Flags, ModSeq, SystemFlags};
    use proptest::prelude::*;

    use super::*;

    fn msg(uid: u32) -> ViewMessage {
        ViewMessage {
            uid: Uid::new(uid).unwrap(),
            flags: Flags::default(),
            modseq: ModSeq::new(1).unwrap(),
            recent: false,
            expunged: false,
        }
    }

    proptest! {
        /// The list behaves like a plain vector under any mix of edits, and never changes the
        /// shared part.
        #[test]
        fn behaves_like_a_vec(
            n in 0usize..60,
            ops in proptest::collection::vec((0u8..5, 0usize..80), 0..80),
        ) {
            let base: Vec<ViewMessage> = (1..=n as u32).map(|u| msg(u * 2)).collect();
            let shared = Arc::new(base.clone());
            let mut list = MessageList::new(shared.clone());
            let mut model = base.clone();
            let mut next_uid = n as u32 * 2 + 1;
            for (op, at) in ops {
                match op {
                    0 if !model.is_empty() => {
                        let i = at % model.len();
                        list.remove(i);
                        model.remove(i);
                    }
                    1 if !model.is_empty() => {
                        let i = at % model.len();
                        let m = list.get_mut(i).unwrap();
                        m.flags = Flags::new(SystemFlags::SEEN, []);
                        m.recent = at % 2 == 0;
                        model[i].flags = Flags::new(SystemFlags::SEEN, []);
                        model[i].recent = at % 2 == 0;
                    }
                    2 => {
                        list.push(msg(next_uid));
                        model.push(msg(next_uid));
                        next_uid += 1;
                    }
                    3 => list.reserve_changes(at * 100),
                    _ => list.maybe_compact(),
                }
                prop_assert_eq!(list.len(), model.len());
                prop_assert_eq!(list.recent_count(), model.iter().filter(|m| m.recent).count());
                let seen: Vec<ViewMessage> = list.iter().cloned().collect();
                prop_assert_eq!(&seen, &model);
                for (i, m) in model.iter().enumerate() {
                    prop_assert_eq!(list.get(i), Some(m));
                    let tail: Vec<ViewMessage> = list.iter_from(i).cloned().collect();
                    prop_assert_eq!(&tail[..], &model[i..]);
                    prop_assert_eq!(list.index_of(m.uid), Some(i));
                    prop_assert_eq!(list.first_at_or_above(m.uid), i);
                }
                prop_assert_eq!(list.get(model.len()), None);
                prop_assert_eq!(list.last(), model.last());
            }
            prop_assert_eq!(&*shared, &base);
        }
    }

    #[test]
    fn removed_uids_are_not_found() {
        let mut list = MessageList::new(Arc::new((1..=5).map(msg).collect()));
        list.remove(1);
        assert_eq!(list.index_of(Uid::new(2).unwrap()), None);
        assert_eq!(list.index_of(Uid::new(3).unwrap()), Some(1));
        assert_eq!(list.first_at_or_above(Uid::new(2).unwrap()), 1);
        assert_eq!(list.first_at_or_above(Uid::new(9).unwrap()), 4);
    }
}
