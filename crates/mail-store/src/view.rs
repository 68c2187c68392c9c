//! A session's view of its selected mailbox: the message sequence numbers it has told its client
//! about, and the untagged updates that bring it up to date.
//!
//! RFC 3501 7.4.1 forbids an EXPUNGE response while a FETCH, STORE or SEARCH is in progress (and
//! sequence numbers must not shift under a client in the middle of one), so a view may hold
//! messages that another session already expunged. They keep their sequence numbers, marked
//! `expunged`, until a command that allows EXPUNGE responses syncs again.

use std::collections::BTreeSet;
use std::sync::Arc;

use mail_types::{Flags, ModSeq, SeqNum, SeqSet, Uid, UidValidity};

use crate::{ChangeCursor, Changes, Mailbox, MessageState, Result, StoreError};

mod list;

pub use list::MessageList;

/// One message as this session knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewMessage {
    pub uid: Uid,
    pub flags: Flags,
    pub modseq: ModSeq,
    /// `\Recent` for this session (RFC 3501 2.3.2).
    pub recent: bool,
    /// Expunged elsewhere, not yet reported to the client.
    pub expunged: bool,
}

impl From<MessageState> for ViewMessage {
    fn from(m: MessageState) -> Self {
        ViewMessage {
            uid: m.uid,
            flags: m.flags,
            modseq: m.modseq,
            recent: false,
            expunged: false,
        }
    }
}

/// An untagged update the session must send, in order (RFC 3501 7.3.1, 7.3.2, 7.4.1, 7.4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewEvent {
    /// `* n EXPUNGE`; the number is valid at the moment it is sent.
    Expunge(SeqNum, Uid),
    /// `* n FETCH (FLAGS ...)` for a change made by someone else.
    Flags {
        seq: SeqNum,
        uid: Uid,
        flags: Flags,
        recent: bool,
        modseq: ModSeq,
    },
    /// `* n EXISTS`
    Exists(u32),
    /// `* n RECENT`
    Recent(u32),
}

/// A sequence set refers to a message number beyond the mailbox (RFC 3501 6.4.5 wants BAD).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid message sequence number {0}")]
pub struct InvalidSeq(pub u32);

pub struct MailboxView {
    mailbox: Arc<dyn Mailbox>,
    messages: MessageList,
    /// Messages expunged elsewhere and marked, not yet reported (RFC 3501 7.4.1).
    pending_expunges: BTreeSet<Uid>,
    cursor: ChangeCursor,
    read_only: bool,
    uid_next: Uid,
    highest_modseq: ModSeq,
    /// The UIDVALIDITY the session was told; the view's UIDs mean nothing under another.
    uid_validity: UidValidity,
    /// The shared list's first message without `\Seen`, while the view has not changed since
    /// it was opened: SELECT's `[UNSEEN n]` without a walk through a million messages.
    unseen_at_open: Option<Option<u32>>,
}

impl MailboxView {
    /// Selects `mailbox` (RFC 3501 6.3.1); a read-only view (EXAMINE, 6.3.2) claims no `\Recent`.
    /// The message list is the one the mailbox shares among all views opened at the same state.
    pub fn open(mailbox: Arc<dyn Mailbox>, read_only: bool) -> Result<Self> {
        mailbox.refresh()?;
        // Read before the snapshot: a change in between shows at the next sync, never unseen.
        let uid_validity = mailbox.uid_validity();
        let snap = mailbox.shared_snapshot(!read_only)?;
        let mut messages = MessageList::new(snap.messages);
        for uid in snap.recent {
            if let Some(i) = messages.index_of(uid)
                && let Some(m) = messages.get_mut(i)
            {
                m.recent = true;
            }
        }
        Ok(MailboxView {
            mailbox,
            messages,
            pending_expunges: BTreeSet::new(),
            cursor: snap.cursor,
            read_only,
            uid_next: snap.uid_next,
            highest_modseq: snap.highest_modseq,
            uid_validity,
            unseen_at_open: match snap.first_unseen {
                None => Some(None),
                Some(i) => u32::try_from(i).ok().map(Some),
            },
        })
    }

    /// The UIDVALIDITY the view's UIDs belong to.
    pub fn uid_validity(&self) -> UidValidity {
        self.uid_validity
    }

    pub fn mailbox(&self) -> &Arc<dyn Mailbox> {
        &self.mailbox
    }

    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// EXISTS as the client knows it.
    pub fn exists(&self) -> u32 {
        self.messages.len() as u32
    }

    pub fn recent_count(&self) -> u32 {
        self.messages.recent_count() as u32
    }

    pub fn uid_next(&self) -> Uid {
        self.uid_next
    }

    pub fn highest_modseq(&self) -> ModSeq {
        self.highest_modseq
    }

    /// The messages in sequence order (iterate it, or ask `last()`, `len()`).
    pub fn messages(&self) -> &MessageList {
        &self.messages
    }

    pub fn get(&self, seq: SeqNum) -> Option<&ViewMessage> {
        self.messages.get(seq.get() as usize - 1)
    }

    pub fn seq_of(&self, uid: Uid) -> Option<SeqNum> {
        self.index_of(uid).and_then(|i| SeqNum::new(i as u32 + 1))
    }

    fn index_of(&self, uid: Uid) -> Option<usize> {
        self.messages.index_of(uid)
    }

    /// The sequence number of the first message without `\Seen` (SELECT's `[UNSEEN n]`).
    pub fn first_unseen(&self) -> Option<SeqNum> {
        let position = match self.unseen_at_open {
            Some(known) => known.map(|i| i as usize),
            None => self
                .messages
                .iter()
                .position(|m| !m.flags.system.contains(mail_types::SystemFlags::SEEN)),
        };
        position.and_then(|i| SeqNum::new(i as u32 + 1))
    }

    /// The messages a sequence set names, in ascending order, as (sequence number, UID).
    /// For sequence numbers, a number beyond EXISTS is an error (RFC 3501 6.4.5 / 9); for UIDs,
    /// UIDs that do not exist are ignored and `*` is the highest UID (RFC 3501 6.4.8).
    pub fn resolve(&self, set: &SeqSet, by_uid: bool) -> Result<Vec<(SeqNum, Uid)>, InvalidSeq> {
        let mut out = Vec::new();
        if by_uid {
            let star = self.messages.last().map_or(0, |m| m.uid.get());
            for (lo, hi) in set.normalized(star) {
                let Some(lo_uid) = Uid::new(lo.max(1)) else {
                    continue;
                };
                let start = self.messages.first_at_or_above(lo_uid);
                for (i, m) in self.messages.iter_from(start).enumerate() {
                    if m.uid.get() > hi {
                        break;
                    }
                    if let Some(seq) = SeqNum::new((start + i) as u32 + 1) {
                        out.push((seq, m.uid));
                    }
                }
            }
        } else {
            let exists = self.exists();
            for (lo, hi) in set.normalized(exists) {
                if hi > exists || lo == 0 {
                    return Err(InvalidSeq(if lo == 0 { 0 } else { hi }));
                }
                let iter = self.messages.iter_from(lo as usize - 1);
                for (n, m) in (lo..=hi).zip(iter) {
                    if let Some(seq) = SeqNum::new(n) {
                        out.push((seq, m.uid));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Records flag changes this session made itself (the STORE reply reports them), so the next
    /// sync does not report them again.
    pub fn note_own_changes(&mut self, states: &[MessageState]) {
        if !states.is_empty() {
            self.unseen_at_open = None;
        }
        self.messages.reserve_changes(states.len());
        for s in states {
            if let Some(i) = self.index_of(s.uid)
                && let Some(m) = self.messages.get_mut(i)
            {
                m.flags = s.flags.clone();
                m.modseq = s.modseq;
            }
        }
    }

    /// Pulls in what changed in the mailbox since the last sync and returns the untagged
    /// responses to send. With `allow_expunge == false` (during FETCH, STORE, SEARCH, RFC 3501
    /// 7.4.1) expunges are remembered and reported by a later sync.
    ///
    /// When the mailbox got a new UIDVALIDITY (its UIDs were renumbered: someone lost and rebuilt
    /// `dovecot-uidlist`), nothing is reported but `UidValidityChanged`: UIDs the client holds
    /// must not silently name other messages (RFC 3501 2.3.1.1), so the session has to end. The
    /// view stays as it was, and says so again at every later sync.
    pub fn sync(&mut self, allow_expunge: bool) -> Result<Vec<ViewEvent>> {
        self.mailbox.refresh()?;
        let now = self.mailbox.uid_validity();
        if now != self.uid_validity {
            return Err(StoreError::UidValidityChanged {
                was: self.uid_validity,
                now,
            });
        }
        let changes = self.mailbox.changes_since(self.cursor, !self.read_only)?;
        Ok(self.apply(changes, allow_expunge))
    }

    fn apply(&mut self, changes: Changes, allow_expunge: bool) -> Vec<ViewEvent> {
        if !(changes.expunged.is_empty() && changes.appended.is_empty() && changes.flags.is_empty())
        {
            self.unseen_at_open = None;
        }
        let mut events = Vec::new();
        self.cursor = changes.cursor;
        if let Some(n) = changes.uid_next {
            self.uid_next = n;
        }
        if let Some(m) = changes.highest_modseq {
            self.highest_modseq = m;
        }
        // Run by run, from the first message of the view in it: a run may be a gap of billions
        // of UIDs (see `Changes::expunged`).
        for &(low, high) in changes.expunged.runs() {
            let Some(low) = Uid::new(low) else { continue };
            let mut i = self.messages.first_at_or_above(low);
            while let Some(m) = self.messages.get(i)
                && m.uid.get() <= high
            {
                let uid = m.uid;
                if let Some(m) = self.messages.get_mut(i) {
                    m.expunged = true;
                }
                self.pending_expunges.insert(uid);
                i += 1;
            }
        }
        if allow_expunge {
            // Ascending UIDs are ascending sequence numbers; each EXPUNGE renumbers the messages
            // after it, so each number is taken just before its message goes.
            for uid in std::mem::take(&mut self.pending_expunges) {
                if let Some(i) = self.index_of(uid) {
                    if let Some(s) = SeqNum::new(i as u32 + 1) {
                        events.push(ViewEvent::Expunge(s, uid));
                    }
                    self.messages.remove(i);
                }
            }
        }
        for state in changes.flags {
            let Some(i) = self.index_of(state.uid) else {
                continue;
            };
            let Some(m) = self.messages.get(i) else {
                continue;
            };
            if m.expunged || (m.flags == state.flags && m.modseq == state.modseq) {
                continue;
            }
            let flags_changed = m.flags != state.flags;
            let Some(m) = self.messages.get_mut(i) else {
                continue;
            };
            m.modseq = state.modseq;
            if flags_changed {
                m.flags = state.flags;
                if let Some(seq) = SeqNum::new(i as u32 + 1) {
                    events.push(ViewEvent::Flags {
                        seq,
                        uid: m.uid,
                        flags: m.flags.clone(),
                        recent: m.recent,
                        modseq: m.modseq,
                    });
                }
            }
        }
        let before = self.messages.len();
        let last_uid = self.messages.last().map(|m| m.uid);
        let expunged_now = changes.expunged;
        for state in changes.appended {
            if last_uid.is_some_and(|l| state.uid <= l) || self.index_of(state.uid).is_some() {
                continue;
            }
            let gone = expunged_now.contains(state.uid);
            if gone && allow_expunge {
                // Appended and expunged between two syncs: the client never needs to hear of it.
                continue;
            }
            if gone {
                self.pending_expunges.insert(state.uid);
            }
            self.messages.push(ViewMessage {
                uid: state.uid,
                flags: state.flags,
                modseq: state.modseq,
                recent: false,
                expunged: gone,
            });
        }
        let mut recent_changed = false;
        for uid in changes.recent {
            if let Some(i) = self.index_of(uid)
                && self.messages.get(i).is_some_and(|m| !m.recent)
                && let Some(m) = self.messages.get_mut(i)
            {
                m.recent = true;
                recent_changed = true;
            }
        }
        if self.messages.len() != before {
            events.push(ViewEvent::Exists(self.exists()));
            events.push(ViewEvent::Recent(self.recent_count()));
        } else if recent_changed {
            events.push(ViewEvent::Recent(self.recent_count()));
        }
        self.messages.maybe_compact();
        events
    }
}

#[cfg(test)]
mod tests;
