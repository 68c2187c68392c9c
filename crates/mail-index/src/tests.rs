use super::*;

fn uid(n: u32) -> Uid {
    Uid::new(n).unwrap()
}

fn kw(s: &str) -> Keyword {
    Keyword::new(s).unwrap()
}

fn flags(system: SystemFlags, keywords: &[&str]) -> Flags {
    Flags::new(system, keywords.iter().map(|k| kw(k)))
}

fn index() -> MailboxIndex {
    MailboxIndex::new(UidValidity::new(1234).unwrap())
}

fn append(ix: &mut MailboxIndex, n: u32, recent: bool, name: &str) -> Option<ModSeq> {
    ix.apply(Op::Append(NewRecord {
        uid: uid(n),
        flags: &Flags::default(),
        internal_date: Some(1_600_000_000),
        size: Some(100),
        recent,
        backend: name.as_bytes(),
    }))
    .unwrap()
}

#[test]
fn records_stay_small() {
    // The per-message cost the crate documentation promises.
    assert!(std::mem::size_of::<Record>() <= 56);
}

#[test]
fn append_takes_uids_in_order_and_bumps_modseq() {
    let mut ix = index();
    assert_eq!(ix.header().uid_next, uid(1));
    assert_eq!(ix.header().highest_modseq.get(), 1);
    assert_eq!(append(&mut ix, 1, false, "a").map(ModSeq::get), Some(2));
    assert_eq!(append(&mut ix, 5, false, "b").map(ModSeq::get), Some(3));
    assert_eq!(ix.header().uid_next, uid(6));
    let err = ix
        .apply(Op::Append(NewRecord {
            uid: uid(5),
            flags: &Flags::default(),
            internal_date: None,
            size: None,
            recent: false,
            backend: b"c",
        }))
        .unwrap_err();
    assert_eq!(
        err,
        IndexError::UidNotAscending {
            uid: 5,
            uid_next: 6
        }
    );
    let r = ix.get(uid(5)).unwrap();
    assert_eq!(r.backend(), b"b");
    assert_eq!(r.size(), Some(100));
    assert_eq!(ix.get(uid(3)).map(|r| r.uid()), None);
    let c = ix
        .apply(Op::Append(NewRecord {
            uid: uid(6),
            flags: &Flags::default(),
            internal_date: None,
            size: None,
            recent: false,
            backend: b"c",
        }))
        .unwrap();
    assert!(c.is_some());
    assert_eq!(ix.get(uid(6)).unwrap().internal_date(), None);
    assert_eq!(ix.get(uid(6)).unwrap().size(), None);
}

#[test]
fn flag_changes_take_a_modseq_only_when_something_changes() {
    let mut ix = index();
    append(&mut ix, 1, false, "a");
    let f = flags(SystemFlags::SEEN, &["$Forwarded"]);
    let m = ix
        .apply(Op::SetFlags {
            uid: uid(1),
            flags: &f,
        })
        .unwrap();
    assert_eq!(m.map(ModSeq::get), Some(3));
    // Same flags again, keyword in another case: nothing to do.
    let same = flags(SystemFlags::SEEN, &["$forwarded"]);
    assert_eq!(
        ix.apply(Op::SetFlags {
            uid: uid(1),
            flags: &same
        })
        .unwrap(),
        None
    );
    assert_eq!(ix.get(uid(1)).unwrap().flags(), f);
    assert_eq!(ix.get(uid(1)).unwrap().modseq().get(), 3);
    assert_eq!(
        ix.apply(Op::SetFlags {
            uid: uid(9),
            flags: &f
        }),
        Err(IndexError::NoSuchUid(9))
    );
}

#[test]
fn changes_since_separates_new_changed_and_expunged() {
    let mut ix = index();
    append(&mut ix, 1, false, "a");
    append(&mut ix, 2, false, "b");
    append(&mut ix, 3, false, "c");
    let cursor = ix.cursor();
    assert_eq!(ix.changes_since(cursor), ChangeSet::default());

    let seen = flags(SystemFlags::SEEN, &[]);
    ix.apply(Op::SetFlags {
        uid: uid(1),
        flags: &seen,
    })
    .unwrap();
    ix.apply(Op::Expunge(&[uid(2)])).unwrap();
    append(&mut ix, 4, true, "d");
    append(&mut ix, 5, false, "e");
    // 5 is appended and expunged inside the window; 4 changes after its append.
    ix.apply(Op::Expunge(&[uid(5), uid(77)])).unwrap();
    ix.apply(Op::SetFlags {
        uid: uid(4),
        flags: &seen,
    })
    .unwrap();

    let ch = ix.changes_since(cursor);
    assert_eq!(uids(&ch.expunged), vec![uid(2), uid(5)]);
    assert_eq!(
        ch.appended.iter().map(|m| m.uid).collect::<Vec<_>>(),
        vec![uid(4), uid(5)]
    );
    assert_eq!(ch.appended[0].flags, seen);
    assert_eq!(ch.changed.len(), 1);
    assert_eq!(ch.changed[0].uid, uid(1));
    assert_eq!(ch.changed[0].flags, seen);
    assert_eq!(ch.recent, vec![uid(4)]);

    // From the latest cursor nothing is new.
    assert_eq!(ix.changes_since(ix.cursor()), ChangeSet::default());
    // Vanished since the cursor (QRESYNC).
    assert_eq!(uids(&ix.expunged_since(cursor)), vec![uid(2), uid(5)]);
    assert_eq!(uids(&ix.expunged_since(0)), vec![uid(2), uid(5)]);
}

#[test]
fn recent_is_claimed_once() {
    let mut ix = index();
    append(&mut ix, 1, true, "a");
    append(&mut ix, 2, false, "b");
    append(&mut ix, 3, true, "c");
    assert_eq!(ix.unclaimed_recent(), vec![uid(1), uid(3)]);
    assert_eq!(ix.unclaimed_recent_count(), 2);
    ix.apply(Op::DropRecent(uid(3))).unwrap();
    assert_eq!(ix.claim_recent(), vec![uid(1)]);
    assert_eq!(ix.claim_recent(), Vec::<Uid>::new());
    assert_eq!(ix.unclaimed_recent_count(), 0);
    append(&mut ix, 4, true, "d");
    ix.apply(Op::Expunge(&[uid(4)])).unwrap();
    assert_eq!(ix.unclaimed_recent_count(), 0);
}

#[test]
fn backend_references_survive_many_renames() {
    let mut ix = index();
    for n in 1..=50 {
        append(&mut ix, n, false, &format!("file-{n}"));
    }
    for round in 0..200 {
        for n in 1..=50 {
            let name = format!("file-{n}:2,{round}");
            ix.apply(Op::SetBackend {
                uid: uid(n),
                backend: name.as_bytes(),
            })
            .unwrap();
        }
    }
    for n in 1..=50 {
        assert_eq!(
            ix.get(uid(n)).unwrap().backend(),
            format!("file-{n}:2,199").as_bytes()
        );
    }
    // Compaction keeps the arena near its live size.
    assert!(ix.arena.heap_bytes() < 64 * 1024);
    // Renames are not client-visible changes.
    assert_eq!(ix.cursor(), 51);
}

#[test]
fn keywords_are_limited_per_mailbox() {
    let mut ix = index();
    append(&mut ix, 1, false, "a");
    for i in 0..MAX_KEYWORDS {
        let f = flags(SystemFlags::empty(), &[&format!("k{i}")]);
        ix.apply(Op::SetFlags {
            uid: uid(1),
            flags: &f,
        })
        .unwrap();
    }
    let f = flags(SystemFlags::empty(), &["onetoomany"]);
    assert_eq!(
        ix.apply(Op::SetFlags {
            uid: uid(1),
            flags: &f
        }),
        Err(IndexError::TooManyKeywords)
    );
    assert_eq!(ix.keywords().len(), MAX_KEYWORDS);
}

#[test]
fn info_and_uid_next_ops() {
    let mut ix = index();
    crate::testing::append_bare(&mut ix, 1, false, b"x");
    ix.apply(Op::SetInfo {
        uid: uid(1),
        internal_date: Some(42),
        size: Some(7),
    })
    .unwrap();
    let r = ix.get(uid(1)).unwrap();
    assert_eq!((r.internal_date(), r.size()), (Some(42), Some(7)));
    ix.apply(Op::RaiseUidNext(uid(10))).unwrap();
    ix.apply(Op::RaiseUidNext(uid(3))).unwrap();
    assert_eq!(ix.header().uid_next, uid(10));
}

#[test]
fn reset_expunges_everything_under_a_new_uidvalidity() {
    let mut ix = index();
    append(&mut ix, 1, false, "a");
    append(&mut ix, 2, false, "b");
    let cursor = ix.cursor();
    ix.reset(UidValidity::new(99).unwrap());
    assert!(ix.is_empty());
    assert_eq!(ix.header().uid_next, uid(1));
    assert_eq!(ix.uid_validity().get(), 99);
    append(&mut ix, 1, false, "a");
    let ch = ix.changes_since(cursor);
    // UID 1 names the new message now: the old numbering's expunges are not reported in it.
    assert!(ch.expunged.is_empty());
    assert_eq!(ch.appended.len(), 1);
    // Found by the index_log fuzz target: the history of the old numbering made the state one
    // the index file refuses ("UID out of range").
    let loaded = MailboxIndex::from_file_bytes(&ix.to_file_bytes(b"")).unwrap();
    assert_eq!(loaded.index.changes_since(cursor), ch);
}

#[test]
fn forgotten_history_reports_every_missing_uid() {
    let mut ix = index();
    for n in 1..=5 {
        append(&mut ix, n, false, "x");
    }
    ix.apply(Op::Expunge(&[uid(2), uid(4)])).unwrap();
    ix.expunge_horizon = ix.cursor();
    ix.expunges.clear();
    ix.apply(Op::RaiseUidNext(uid(8))).unwrap();
    assert_eq!(
        uids(&ix.expunged_since(0)),
        vec![uid(2), uid(4), uid(6), uid(7)]
    );
    assert_eq!(ix.changes_since(1).expunged.count(), 4);
}

/// Found by the index_file fuzz target: with UIDNEXT in the billions and a few messages, "every
/// missing UID" was a vector of billions of UIDs (the process ran out of memory); it is a run per
/// gap.
#[test]
fn forgotten_history_with_a_huge_uidnext_is_a_few_runs() {
    let mut ix = index();
    append(&mut ix, 1, false, "a");
    append(&mut ix, 3_000_000_000, false, "b");
    ix.apply(Op::RaiseUidNext(uid(u32::MAX))).unwrap();
    ix.raise_modseq(ix.cursor() + 10);
    let gone = ix.changes_since(1).expunged;
    assert_eq!(
        gone.runs(),
        &[(2, 2_999_999_999), (3_000_000_001, u32::MAX - 1)]
    );
    assert_eq!(ix.expunged_since(0), gone);
}

#[test]
fn raising_the_modseq_floor_forgets_history_below_it() {
    let mut ix = index();
    append(&mut ix, 1, false, "a");
    append(&mut ix, 2, false, "b");
    append(&mut ix, 3, false, "c");
    ix.apply(Op::Expunge(&[uid(2)])).unwrap();
    assert_eq!(uids(&ix.expunged_since(1)), [uid(2)]);
    // Below the current value: nothing changes.
    ix.raise_modseq(2);
    assert_eq!(ix.cursor(), 5);
    assert_eq!(uids(&ix.expunged_since(5)), []);
    // Above it (an older index reloaded after a crash): later changes come after the floor,
    // and "expunged since" an earlier point is every absent UID.
    ix.raise_modseq(100);
    assert_eq!(ix.cursor(), 100);
    assert_eq!(append(&mut ix, 4, false, "d").map(ModSeq::get), Some(101));
    assert_eq!(uids(&ix.expunged_since(50)), [uid(2)]);
    assert_eq!(uids(&ix.expunged_since(100)), []);
}

#[test]
fn a_raised_modseq_leaves_an_index_that_saves_and_loads() {
    let mut ix = index();
    append(&mut ix, 1, false, "a");
    append(&mut ix, 2, false, "b");
    ix.apply(Op::Expunge(&[uid(1)])).unwrap();
    // A restart found a ceiling above everything this index handed out.
    ix.raise_modseq(ix.cursor() + 4096);
    let bytes = ix.to_file_bytes(b"state");
    let loaded = MailboxIndex::from_file_bytes(&bytes).expect("a raised index must load");
    assert_eq!(loaded.index.len(), 1);
    // What was expunged before the raise is still reported to a client from before it.
    assert_eq!(uids(&loaded.index.expunged_since(1)), vec![uid(1)]);
}

/// The UIDs of a set, for comparing with a list.
fn uids(set: &mail_types::UidRuns) -> Vec<Uid> {
    set.iter().collect()
}
