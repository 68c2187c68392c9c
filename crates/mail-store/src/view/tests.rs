//! `MailboxView` against a fake in-memory mailbox (the shared `mail-index` state behind a
//! mutex, as a real backend keeps it), so each test controls exactly what other sessions do.

use std::any::Any;
use std::sync::{Arc, Mutex, Weak};

use mail_index::{MailboxIndex, NewRecord, Op};
use mail_types::{Flags, SeqBound, SeqNum, SeqRange, SeqSet, SystemFlags, Uid, UidValidity};

use super::*;
use crate::{
    AppendWriter, ChangeListener, FlagChange, MailboxStatus, MessageInfo, Snapshot, StoreError,
};

struct Fake {
    index: Mutex<MailboxIndex>,
    /// The list views opened at the same state share, as the real backends keep it.
    shared: Mutex<crate::indexed::SharedList>,
}

impl Fake {
    fn new() -> Arc<Fake> {
        Arc::new(Fake {
            index: Mutex::new(MailboxIndex::new(UidValidity::new(7).unwrap())),
            shared: Mutex::new(Default::default()),
        })
    }

    /// Another session (or process) delivers a message.
    fn deliver(&self) -> Uid {
        let mut ix = self.index.lock().unwrap();
        let uid = ix.header().uid_next;
        ix.apply(Op::Append(NewRecord {
            uid,
            flags: &Flags::default(),
            internal_date: Some(0),
            size: Some(1),
            recent: true,
            backend: b"",
        }))
        .unwrap();
        uid
    }

    /// Another session expunges.
    fn remove(&self, uids: &[u32]) {
        let uids: Vec<Uid> = uids.iter().map(|&u| uid(u)).collect();
        self.index
            .lock()
            .unwrap()
            .apply(Op::Expunge(&uids))
            .unwrap();
    }

    /// Another session sets flags.
    fn set(&self, u: u32, system: SystemFlags) {
        let f = Flags::new(system, []);
        self.index
            .lock()
            .unwrap()
            .apply(Op::SetFlags {
                uid: uid(u),
                flags: &f,
            })
            .unwrap();
    }
}

fn uid(n: u32) -> Uid {
    Uid::new(n).unwrap()
}

fn seq(n: u32) -> SeqNum {
    SeqNum::new(n).unwrap()
}

fn state(m: mail_index::MessageSnapshot) -> MessageState {
    MessageState {
        uid: m.uid,
        flags: m.flags,
        modseq: m.modseq,
    }
}

impl Mailbox for Fake {
    fn name(&self) -> mail_types::MailboxName {
        mail_types::MailboxName::inbox()
    }

    fn uid_validity(&self) -> UidValidity {
        self.index.lock().unwrap().uid_validity()
    }

    fn refresh(&self) -> Result<()> {
        Ok(())
    }

    fn snapshot(&self, claim_recent: bool) -> Result<Snapshot> {
        let mut ix = self.index.lock().unwrap();
        let recent = if claim_recent {
            ix.claim_recent()
        } else {
            ix.unclaimed_recent()
        };
        let h = ix.header();
        Ok(Snapshot {
            messages: ix.records().map(|r| state(r.snapshot())).collect(),
            recent,
            cursor: ChangeCursor(ix.cursor()),
            uid_next: h.uid_next,
            highest_modseq: h.highest_modseq,
        })
    }

    fn shared_snapshot(&self, claim_recent: bool) -> Result<crate::SharedSnapshot> {
        let mut ix = self.index.lock().unwrap();
        let recent = if claim_recent {
            ix.claim_recent()
        } else {
            ix.unclaimed_recent()
        };
        let mut shared = self.shared.lock().unwrap();
        Ok(crate::indexed::shared_snapshot(&ix, &mut shared, recent))
    }

    fn changes_since(&self, cursor: ChangeCursor, claim_recent: bool) -> Result<Changes> {
        let mut ix = self.index.lock().unwrap();
        let ch = ix.changes_since(cursor.0);
        let recent = if claim_recent {
            ix.claim_recent()
        } else {
            ch.recent
        };
        let h = ix.header();
        Ok(Changes {
            expunged: ch.expunged,
            appended: ch.appended.into_iter().map(state).collect(),
            flags: ch.changed.into_iter().map(state).collect(),
            recent,
            cursor: ChangeCursor(ix.cursor()),
            uid_next: Some(h.uid_next),
            highest_modseq: Some(h.highest_modseq),
        })
    }

    fn status(&self) -> Result<MailboxStatus> {
        Err(StoreError::Internal("not needed".into()))
    }

    fn message_info(&self, _uid: Uid) -> Result<MessageInfo> {
        Err(StoreError::Internal("not needed".into()))
    }

    fn read_message(&self, _uid: Uid) -> Result<Vec<u8>> {
        Err(StoreError::Internal("not needed".into()))
    }

    fn store_flags(&self, uids: &[Uid], change: &FlagChange) -> Result<Vec<MessageState>> {
        let FlagChange::Replace(f) = change else {
            return Err(StoreError::Internal("only Replace in the fake".into()));
        };
        let mut ix = self.index.lock().unwrap();
        let mut out = Vec::new();
        for &u in uids {
            if let Some(m) = ix.apply(Op::SetFlags { uid: u, flags: f }).unwrap() {
                out.push(MessageState {
                    uid: u,
                    flags: f.clone(),
                    modseq: m,
                });
            }
        }
        Ok(out)
    }

    fn expunge(&self, _only: Option<&[Uid]>) -> Result<Vec<Uid>> {
        Err(StoreError::Internal("not needed".into()))
    }

    fn begin_append(&self) -> Result<Box<dyn AppendWriter>> {
        Err(StoreError::Internal("not needed".into()))
    }

    fn copy_to(&self, _uids: &[Uid], _dest: &dyn Mailbox) -> Result<Vec<(Uid, Uid)>> {
        Err(StoreError::Internal("not needed".into()))
    }

    fn watch(&self, _listener: Weak<dyn ChangeListener>) {}

    fn as_any(&self) -> &dyn Any {
        self
    }
}

fn fake_with(n: u32) -> Arc<Fake> {
    let fake = Fake::new();
    for _ in 0..n {
        fake.deliver();
    }
    fake
}

fn view(fake: &Arc<Fake>, read_only: bool) -> MailboxView {
    MailboxView::open(fake.clone(), read_only).unwrap()
}

fn uids(v: &MailboxView) -> Vec<u32> {
    v.messages().iter().map(|m| m.uid.get()).collect()
}

#[test]
fn expunges_wait_for_a_command_that_allows_them() {
    let fake = fake_with(5);
    let mut v = view(&fake, false);
    fake.remove(&[2, 4]);

    // During FETCH/STORE/SEARCH: nothing is said and the numbers stay.
    assert_eq!(v.sync(false).unwrap(), vec![]);
    assert_eq!(v.exists(), 5);
    assert!(v.get(seq(2)).unwrap().expunged);
    assert_eq!(v.seq_of(uid(5)), Some(seq(5)));

    // Later, each EXPUNGE carries the number valid when it is sent.
    let events = v.sync(true).unwrap();
    assert_eq!(
        events,
        vec![
            ViewEvent::Expunge(seq(2), uid(2)),
            ViewEvent::Expunge(seq(3), uid(4))
        ]
    );
    assert_eq!(uids(&v), [1, 3, 5]);
    assert_eq!(v.seq_of(uid(5)), Some(seq(3)));
}

#[test]
fn consecutive_expunges_reuse_the_running_number() {
    let fake = fake_with(4);
    let mut v = view(&fake, false);
    fake.remove(&[1, 2, 3]);
    assert_eq!(
        v.sync(true).unwrap(),
        vec![
            ViewEvent::Expunge(seq(1), uid(1)),
            ViewEvent::Expunge(seq(1), uid(2)),
            ViewEvent::Expunge(seq(1), uid(3))
        ]
    );
    assert_eq!(uids(&v), [4]);
}

#[test]
fn new_messages_bring_exists_and_recent() {
    let fake = fake_with(2);
    let mut v = view(&fake, false);
    assert_eq!(v.recent_count(), 2);
    fake.deliver();
    fake.deliver();
    assert_eq!(
        v.sync(false).unwrap(),
        vec![ViewEvent::Exists(4), ViewEvent::Recent(4)]
    );
    assert_eq!(v.uid_next(), uid(5));
    // A second session opened now sees nothing recent: all claimed.
    let other = view(&fake, false);
    assert_eq!(other.recent_count(), 0);
    // Nothing new: no events.
    assert_eq!(v.sync(true).unwrap(), vec![]);
}

/// RFC 3501 7.3.2: RECENT counts this session's `\Recent` messages, also after so many arrived
/// that the view's message list stopped sharing with other sessions and became its own.
#[test]
fn recent_survives_the_list_becoming_private() {
    let fake = fake_with(0);
    let mut v = view(&fake, false);
    for _ in 0..5000 {
        fake.deliver();
    }
    assert_eq!(
        v.sync(false).unwrap(),
        vec![ViewEvent::Exists(5000), ViewEvent::Recent(5000)]
    );
    assert_eq!(v.recent_count(), 5000);
    fake.deliver();
    assert_eq!(
        v.sync(false).unwrap(),
        vec![ViewEvent::Exists(5001), ViewEvent::Recent(5001)]
    );
}

#[test]
fn recent_goes_to_exactly_one_session() {
    let fake = fake_with(0);
    let mut a = view(&fake, false);
    let mut b = view(&fake, false);
    let mut ro = view(&fake, true);
    fake.deliver();
    // The read-only session sees it as recent without taking it.
    assert_eq!(
        ro.sync(true).unwrap(),
        vec![ViewEvent::Exists(1), ViewEvent::Recent(1)]
    );
    assert_eq!(
        b.sync(true).unwrap(),
        vec![ViewEvent::Exists(1), ViewEvent::Recent(1)]
    );
    assert_eq!(
        a.sync(true).unwrap(),
        vec![ViewEvent::Exists(1), ViewEvent::Recent(0)]
    );
    assert!(b.messages().get(0).unwrap().recent && !a.messages().get(0).unwrap().recent);
}

/// A STORE over more messages than a view keeps as differences from the shared list: the view
/// takes a list of its own, shows its new flags and `\Recent`, and the other session's view
/// (same shared list) is untouched until it syncs.
#[test]
fn a_bulk_store_leaves_other_views_alone() {
    let fake = fake_with(6000);
    let mut mine = view(&fake, false);
    let mut theirs = view(&fake, false);
    assert!(mine.messages().shares_with(theirs.messages()));
    assert_eq!(mine.recent_count(), 6000);
    let all: Vec<Uid> = (1..=6000).map(uid).collect();
    let flagged = Flags::new(SystemFlags::FLAGGED, []);
    let states = mine
        .mailbox()
        .store_flags(&all, &FlagChange::Replace(flagged.clone()))
        .unwrap();
    assert_eq!(states.len(), 6000);
    mine.note_own_changes(&states);
    assert!(!mine.messages().shares_with(theirs.messages()));
    for (i, m) in mine.messages().iter().enumerate() {
        assert_eq!(
            (m.uid, &m.flags, m.recent),
            (uid(i as u32 + 1), &flagged, true)
        );
    }
    assert_eq!(mine.recent_count(), 6000);
    assert_eq!(mine.sync(true).unwrap(), vec![]);
    assert!(
        theirs
            .messages()
            .iter()
            .all(|m| m.flags == Flags::default())
    );
    assert_eq!(theirs.sync(true).unwrap().len(), 6000);
    assert!(theirs.messages().iter().all(|m| m.flags == flagged));
}

#[test]
fn flag_changes_are_reported_once() {
    let fake = fake_with(3);
    let mut mine = view(&fake, false);
    let mut theirs = view(&fake, false);
    let seen = Flags::new(SystemFlags::SEEN, []);
    let states = mine
        .mailbox()
        .store_flags(&[uid(2)], &FlagChange::Replace(seen.clone()))
        .unwrap();
    mine.note_own_changes(&states);
    // The STORE reply already showed it: the next sync stays quiet.
    assert_eq!(mine.sync(true).unwrap(), vec![]);
    // The other session hears of it once.
    let events = theirs.sync(true).unwrap();
    assert_eq!(events.len(), 1);
    assert!(matches!(
        &events[0],
        ViewEvent::Flags { seq: s, uid: u, flags, .. } if *s == seq(2) && *u == uid(2) && *flags == seen
    ));
    assert_eq!(theirs.sync(true).unwrap(), vec![]);
    // A change by someone else after ours is reported to us.
    fake.set(2, SystemFlags::FLAGGED);
    assert_eq!(mine.sync(true).unwrap().len(), 1);
    // A change to a message expunged in the same window is not.
    fake.set(3, SystemFlags::DRAFT);
    fake.remove(&[3]);
    let modseq = fake.index.lock().unwrap().get(uid(2)).unwrap().modseq();
    assert_eq!(
        theirs.sync(true).unwrap(),
        vec![
            ViewEvent::Expunge(seq(3), uid(3)),
            ViewEvent::Flags {
                seq: seq(2),
                uid: uid(2),
                flags: Flags::new(SystemFlags::FLAGGED, []),
                recent: false,
                modseq,
            }
        ]
    );
}

#[test]
fn appended_and_expunged_between_syncs() {
    // When expunges may be sent, the client never hears of the message.
    let fake = fake_with(1);
    let mut v = view(&fake, true);
    let u = fake.deliver();
    fake.remove(&[u.get()]);
    assert_eq!(v.sync(true).unwrap(), vec![]);
    assert_eq!(v.exists(), 1);

    // During a FETCH it is announced (EXISTS must not shrink) and expunged later.
    let u = fake.deliver();
    fake.remove(&[u.get()]);
    // (The first message is still unclaimed, so this read-only view counts it as recent.)
    assert_eq!(
        v.sync(false).unwrap(),
        vec![ViewEvent::Exists(2), ViewEvent::Recent(1)]
    );
    assert!(v.get(seq(2)).unwrap().expunged);
    assert_eq!(v.sync(true).unwrap(), vec![ViewEvent::Expunge(seq(2), u)]);
    assert_eq!(v.exists(), 1);
}

#[test]
fn expunge_and_delivery_in_one_sync() {
    let fake = fake_with(3);
    let mut v = view(&fake, false);
    fake.remove(&[3]);
    fake.deliver();
    // Same count as before, but the client must still hear EXISTS for the new message.
    assert_eq!(
        v.sync(true).unwrap(),
        vec![
            ViewEvent::Expunge(seq(3), uid(3)),
            ViewEvent::Exists(3),
            ViewEvent::Recent(3)
        ]
    );
    assert_eq!(uids(&v), [1, 2, 4]);
}

fn set(ranges: &[(u32, Option<u32>)]) -> SeqSet {
    let b = |v: Option<u32>| match v {
        Some(n) => SeqBound::Value(std::num::NonZeroU32::new(n).unwrap()),
        None => SeqBound::Star,
    };
    SeqSet::new(
        ranges
            .iter()
            .map(|&(lo, hi)| SeqRange {
                start: b(Some(lo)),
                end: b(hi),
            })
            .collect(),
    )
    .unwrap()
}

#[test]
fn resolving_sequence_sets() {
    let fake = fake_with(5);
    fake.remove(&[2, 3]);
    let v = view(&fake, false);
    // UIDs 1, 4, 5 at sequence numbers 1..3.
    let by_seq = v.resolve(&set(&[(2, None)]), false).unwrap();
    assert_eq!(by_seq, vec![(seq(2), uid(4)), (seq(3), uid(5))]);
    assert_eq!(v.resolve(&set(&[(4, Some(4))]), false), Err(InvalidSeq(4)));
    // By UID, missing UIDs are skipped and `*` is the highest UID, even below the range start.
    let by_uid = v.resolve(&set(&[(2, Some(4))]), true).unwrap();
    assert_eq!(by_uid, vec![(seq(2), uid(4))]);
    let star = v.resolve(&set(&[(100, None)]), true).unwrap();
    assert_eq!(star, vec![(seq(3), uid(5))]);
    assert_eq!(v.first_unseen(), Some(seq(1)));
}

/// SELECT's `[UNSEEN n]` (RFC 3501 6.3.1) comes from the shared list, worked out once for all
/// views at that state; once the view changes (its own STORE, or another session's changes
/// it syncs) it works the answer out itself.
#[test]
fn first_unseen_follows_changes() {
    let fake = fake_with(3);
    fake.set(1, SystemFlags::SEEN);
    let mut v = view(&fake, false);
    assert_eq!(v.first_unseen(), Some(seq(2)));
    let seen = Flags::new(SystemFlags::SEEN, []);
    let states = v
        .mailbox()
        .store_flags(&[uid(2)], &FlagChange::Replace(seen))
        .unwrap();
    v.note_own_changes(&states);
    assert_eq!(v.first_unseen(), Some(seq(3)));
    fake.set(3, SystemFlags::SEEN);
    v.sync(true).unwrap();
    assert_eq!(v.first_unseen(), None);
    fake.set(1, SystemFlags::empty());
    v.sync(true).unwrap();
    assert_eq!(v.first_unseen(), Some(seq(1)));
    // A view opened now shares the list (brought up to date) and its answer.
    let w = view(&fake, false);
    assert!(w.messages().shares_with(view(&fake, true).messages()));
    assert_eq!(w.first_unseen(), Some(seq(1)));
    fake.set(1, SystemFlags::SEEN);
    assert_eq!(view(&fake, false).first_unseen(), None);
}

#[test]
fn a_new_uidvalidity_ends_the_view() {
    let fake = fake_with(3);
    let mut v = view(&fake, false);
    assert_eq!(v.uid_validity(), UidValidity::new(7).unwrap());
    // Someone rebuilt the mailbox's UIDs under a new UIDVALIDITY; UID 2 is another message now.
    fake.index
        .lock()
        .unwrap()
        .reset(UidValidity::new(8).unwrap());
    fake.deliver();
    fake.deliver();
    for _ in 0..2 {
        match v.sync(true) {
            Err(StoreError::UidValidityChanged { was, now }) => {
                assert_eq!((was.get(), now.get()), (7, 8));
            }
            other => panic!("{other:?}"),
        }
    }
    // Nothing of the new numbering leaked into the view.
    assert_eq!(uids(&v), [1, 2, 3]);
}

/// A view whose cursor is older than the mailbox's history (the index was rebuilt after a crash,
/// forgetting its expunges) learns of expunges as "every UID below UIDNEXT without a message":
/// with UIDs in the billions, runs of billions, which the view takes run by run.
#[test]
fn forgotten_history_with_huge_uids_is_taken_run_by_run() {
    let fake = fake_with(3);
    let mut v = view(&fake, false);
    fake.remove(&[2]);
    {
        let mut ix = fake.index.lock().unwrap();
        ix.apply(Op::RaiseUidNext(uid(4_000_000_000))).unwrap();
        let floor = ix.cursor() + 5;
        ix.raise_modseq(floor);
    }
    let big = fake.deliver();
    assert_eq!(big, uid(4_000_000_000));
    let events = v.sync(true).unwrap();
    assert_eq!(events[0], ViewEvent::Expunge(seq(2), uid(2)));
    assert_eq!(uids(&v), [1, 3, 4_000_000_000]);
}
