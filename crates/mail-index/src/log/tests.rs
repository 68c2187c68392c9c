use mail_types::{Flags, Keyword, SystemFlags, Uid, UidValidity};
use proptest::prelude::*;

use super::*;
use crate::testing::observable;
use crate::{MailboxIndex, NewRecord, Op};

fn uv() -> UidValidity {
    UidValidity::new(4242).unwrap()
}

/// A step a writer may take; indexes into the current records keep every step meaningful.
#[derive(Debug, Clone)]
enum Step {
    Append {
        flags: u8,
        kw: Option<u8>,
        recent: bool,
    },
    Expunge(Vec<usize>),
    SetFlags {
        pick: usize,
        flags: u8,
        kw: Option<u8>,
    },
    SetBackend {
        pick: usize,
    },
    SetInfo {
        pick: usize,
        size: u64,
    },
    DropRecent {
        pick: usize,
    },
    RaiseUidNext(u8),
    RaiseModseq(u8),
    Claim,
    Reset,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (any::<u8>(), proptest::option::of(0u8..4), any::<bool>())
            .prop_map(|(flags, kw, recent)| Step::Append { flags, kw, recent }),
        1 => proptest::collection::vec(any::<usize>(), 0..4).prop_map(Step::Expunge),
        3 => (any::<usize>(), any::<u8>(), proptest::option::of(0u8..4))
            .prop_map(|(pick, flags, kw)| Step::SetFlags { pick, flags, kw }),
        1 => any::<usize>().prop_map(|pick| Step::SetBackend { pick }),
        1 => (any::<usize>(), any::<u64>()).prop_map(|(pick, size)| Step::SetInfo { pick, size }),
        1 => any::<usize>().prop_map(|pick| Step::DropRecent { pick }),
        1 => any::<u8>().prop_map(Step::RaiseUidNext),
        1 => any::<u8>().prop_map(Step::RaiseModseq),
        1 => Just(Step::Claim),
        1 => Just(Step::Reset),
    ]
}

fn flags_of(bits: u8, kw: Option<u8>) -> Flags {
    let names = ["$Junk", "work", "Later", "$label1"];
    Flags::new(
        SystemFlags::from_bits_truncate(bits),
        kw.map(|k| Keyword::new(names[usize::from(k)]).unwrap()),
    )
}

fn pick(ix: &MailboxIndex, n: usize) -> Option<Uid> {
    let len = ix.len();
    (len > 0).then(|| ix.records().nth(n % len).map(|r| r.uid()))?
}

/// Applies a step the way a backend would (errors are a backend's business and leave no trace).
fn run(ix: &mut MailboxIndex, s: &Step, counter: &mut u32) {
    *counter += 1;
    match s {
        Step::Append { flags, kw, recent } => {
            let f = flags_of(*flags, *kw);
            let name = format!("m{counter}");
            let _ = ix.apply(Op::Append(NewRecord {
                uid: ix.header().uid_next,
                flags: &f,
                internal_date: counter.is_multiple_of(2).then_some(i64::from(*counter)),
                size: counter.is_multiple_of(3).then_some(u64::from(*counter)),
                recent: *recent,
                backend: name.as_bytes(),
            }));
        }
        Step::Expunge(picks) => {
            let uids: Vec<Uid> = picks.iter().filter_map(|p| pick(ix, *p)).collect();
            let _ = ix.apply(Op::Expunge(&uids));
        }
        Step::SetFlags { pick: p, flags, kw } => {
            if let Some(uid) = pick(ix, *p) {
                let _ = ix.apply(Op::SetFlags {
                    uid,
                    flags: &flags_of(*flags, *kw),
                });
            }
        }
        Step::SetBackend { pick: p } => {
            if let Some(uid) = pick(ix, *p) {
                let name = format!("renamed{counter}");
                let _ = ix.apply(Op::SetBackend {
                    uid,
                    backend: name.as_bytes(),
                });
            }
        }
        Step::SetInfo { pick: p, size } => {
            if let Some(uid) = pick(ix, *p) {
                let _ = ix.apply(Op::SetInfo {
                    uid,
                    internal_date: Some(-5),
                    size: Some(*size % 1_000_000),
                });
            }
        }
        Step::DropRecent { pick: p } => {
            if let Some(uid) = pick(ix, *p) {
                let _ = ix.apply(Op::DropRecent(uid));
            }
        }
        Step::RaiseUidNext(by) => {
            let next = ix.header().uid_next.get().saturating_add(u32::from(*by));
            let _ = ix.apply(Op::RaiseUidNext(Uid::new(next).unwrap()));
        }
        Step::RaiseModseq(by) => ix.raise_modseq(ix.cursor() + u64::from(*by)),
        Step::Claim => {
            ix.claim_recent();
        }
        Step::Reset => ix.reset(UidValidity::new(5000 + *counter).unwrap()),
    }
}

/// Runs `txns` as transactions on `start`; returns the log body and the state after each.
fn write_log(start: &MailboxIndex, txns: &[Vec<Step>]) -> (Vec<u8>, Vec<String>, Vec<usize>) {
    let mut ix = start.clone();
    let mut body = Vec::new();
    let mut states = vec![observable(&ix)];
    let mut ends = vec![0];
    let mut counter = 0;
    for (i, txn) in txns.iter().enumerate() {
        ix.start_journal();
        for s in txn {
            run(&mut ix, s, &mut counter);
        }
        let journal = ix.take_journal().unwrap();
        let state = format!("state {i}");
        body.extend_from_slice(&transaction_record(&journal, &ix, state.as_bytes()));
        states.push(observable(&ix));
        ends.push(body.len());
    }
    (body, states, ends)
}

fn txns() -> impl Strategy<Value = Vec<Vec<Step>>> {
    proptest::collection::vec(proptest::collection::vec(step(), 0..6), 0..8)
}

proptest! {
    /// Any sequence of transactions, written then replayed on the writer's starting state, gives
    /// the writer's state, modseqs included.
    #[test]
    fn replay_gives_the_writers_state(txns in txns()) {
        let start = MailboxIndex::new(uv());
        let (body, states, _) = write_log(&start, &txns);
        let mut reader = start.clone();
        let out = replay_bytes(&mut reader, &body, LOG_HEADER_SIZE).unwrap();
        prop_assert_eq!(out.applied, txns.len());
        prop_assert!(out.torn.is_none());
        prop_assert_eq!(observable(&reader), states.last().unwrap().clone());
        if let Some(last) = txns.len().checked_sub(1) {
            let state = format!("state {last}");
            prop_assert_eq!(out.backend_state.as_deref(), Some(state.as_bytes()));
        }
    }

    /// A log cut at any offset replays to the state after the last whole transaction before the
    /// cut, and reports the cut as a torn tail unless it falls between records.
    #[test]
    fn a_cut_log_gives_a_prefix(txns in txns()) {
        let start = MailboxIndex::new(uv());
        let (body, states, ends) = write_log(&start, &txns);
        for cut in 0..=body.len() {
            let mut reader = start.clone();
            let out = replay_bytes(&mut reader, &body[..cut], LOG_HEADER_SIZE).unwrap();
            let whole = ends.iter().filter(|&&e| e <= cut).count() - 1;
            prop_assert_eq!(out.applied, whole);
            prop_assert_eq!(out.torn.is_some(), !ends.contains(&cut));
            prop_assert_eq!(observable(&reader), states[whole].clone());
        }
    }

    /// A flipped byte never yields a state the writer did not have: the replay stops at a prefix
    /// (torn tail) or reports damage, having applied only whole records before it.
    #[test]
    fn flipped_bytes_never_give_garbage(txns in txns(), at in any::<usize>(), bit in 0u8..8) {
        let start = MailboxIndex::new(uv());
        let (mut body, states, _) = write_log(&start, &txns);
        prop_assume!(!body.is_empty());
        let at = at % body.len();
        body[at] ^= 1 << bit;
        let mut reader = start.clone();
        match replay_bytes(&mut reader, &body, LOG_HEADER_SIZE) {
            Ok(out) => prop_assert_eq!(observable(&reader), states[out.applied].clone()),
            Err(LogError::Corrupt { .. }) => {
                prop_assert!(states.contains(&observable(&reader)));
            }
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }
}

#[test]
fn a_record_that_does_not_continue_the_index_is_refused() {
    let start = MailboxIndex::new(uv());
    let steps = vec![vec![Step::Append {
        flags: 0,
        kw: None,
        recent: false,
    }]];
    let (body, _, _) = write_log(&start, &steps);
    let mut ahead = start.clone();
    ahead.raise_modseq(50);
    let err = replay_bytes(&mut ahead, &body, LOG_HEADER_SIZE).unwrap_err();
    assert!(
        matches!(
            err,
            LogError::Diverged {
                offset: LOG_HEADER_SIZE,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn damage_before_the_end_is_corruption_and_a_zeroed_tail_is_torn() {
    let start = MailboxIndex::new(uv());
    let steps: Vec<Vec<Step>> = (0..3)
        .map(|_| {
            vec![Step::Append {
                flags: 1,
                kw: Some(1),
                recent: true,
            }]
        })
        .collect();
    let (body, states, ends) = write_log(&start, &steps);
    // A byte of the first record's body flipped, two good records after it.
    let mut bad = body.clone();
    bad[ends[0] + 12] ^= 0x40;
    let mut reader = start.clone();
    let err = replay_bytes(&mut reader, &bad, LOG_HEADER_SIZE).unwrap_err();
    assert!(
        matches!(
            err,
            LogError::Corrupt {
                offset: LOG_HEADER_SIZE,
                ..
            }
        ),
        "{err}"
    );
    // The file grew but the last record's blocks never reached the disk: zeros.
    let mut zeroed = body.clone();
    for b in &mut zeroed[ends[2]..] {
        *b = 0;
    }
    let mut reader = start.clone();
    let out = replay_bytes(&mut reader, &zeroed, LOG_HEADER_SIZE).unwrap();
    assert_eq!(out.applied, 2);
    assert_eq!(
        out.torn.map(|t| t.0),
        Some(LOG_HEADER_SIZE + ends[2] as u64)
    );
    assert_eq!(observable(&reader), states[2]);
}

#[test]
fn headers_are_validated() {
    let good = header_bytes(uv(), 77);
    assert_eq!(parse_header(&good).unwrap(), (uv(), 77));
    for cut in 0..good.len() {
        assert!(parse_header(&good[..cut]).is_err(), "cut at {cut}");
    }
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x10;
        assert!(parse_header(&bad).is_err(), "flip at {i}");
    }
    assert!(matches!(
        parse_header(&[0u8; LOG_HEADER_SIZE as usize]),
        Err(LogError::BadMagic)
    ));
}

fn append_txn(ix: &mut MailboxIndex, name: &str) -> Journal {
    ix.start_journal();
    ix.apply(Op::Append(NewRecord {
        uid: ix.header().uid_next,
        flags: &Flags::default(),
        internal_date: None,
        size: None,
        recent: false,
        backend: name.as_bytes(),
    }))
    .unwrap();
    ix.take_journal().unwrap()
}

#[test]
fn two_handles_share_changes_and_a_torn_tail_is_cut_by_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("columba.index.log");
    let mut a = IndexLog::create(&path, uv(), 9).unwrap();
    let mut b = IndexLog::open_at(&path, uv(), a.position()).unwrap();
    let mut ia = MailboxIndex::new(uv());
    let mut ib = ia.clone();

    let lock = a.lock().unwrap();
    a.catch_up(&mut ia, Some(&lock)).unwrap();
    let j = append_txn(&mut ia, "one");
    a.append(&lock, &transaction_record(&j, &ia, b"s1"), true)
        .unwrap();
    drop(lock);

    assert!(b.has_news().unwrap());
    let out = b.catch_up(&mut ib, None).unwrap();
    assert_eq!(out.applied, 1);
    assert_eq!(out.backend_state.as_deref(), Some(&b"s1"[..]));
    assert_eq!(observable(&ib), observable(&ia));
    assert_eq!(b.position(), a.position());

    // A writer that died halfway through its write.
    let j = append_txn(&mut ib.clone(), "two");
    let rec = transaction_record(&j, &ib, b"s2");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&rec[..rec.len() / 2])
        .unwrap();
    let before = observable(&ib);
    let out = b.catch_up(&mut ib, None).unwrap();
    assert!(out.torn.is_some());
    assert_eq!(observable(&ib), before);
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        b.position().offset + rec.len() as u64 / 2
    );
    // The next writer cuts it off and appends after the last whole record.
    let lock = a.lock().unwrap();
    let out = a.catch_up(&mut ia, Some(&lock)).unwrap();
    assert!(out.torn.is_some());
    assert_eq!(std::fs::metadata(&path).unwrap().len(), a.position().offset);
    let j = append_txn(&mut ia, "three");
    a.append(&lock, &transaction_record(&j, &ia, b"s3"), false)
        .unwrap();
    drop(lock);
    b.catch_up(&mut ib, None).unwrap();
    assert_eq!(observable(&ib), observable(&ia));
}

#[test]
fn rotation_is_noticed_and_foreign_logs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("columba.index.log");
    let a = IndexLog::create(&path, uv(), 9).unwrap();
    assert!(!a.replaced());
    let b = IndexLog::create(&path, uv(), 10).unwrap();
    assert!(a.replaced());
    assert!(matches!(a.lock(), Err(LogError::Replaced)));
    let pos = LogPosition {
        generation: 9,
        offset: LOG_HEADER_SIZE,
    };
    assert!(matches!(
        IndexLog::open_at(&path, uv(), pos),
        Err(LogError::Generation {
            expected: 9,
            found: 10
        })
    ));
    let other = UidValidity::new(1).unwrap();
    assert!(matches!(
        IndexLog::open_at(&path, other, b.position()),
        Err(LogError::UidValidity { .. })
    ));
    let beyond = LogPosition {
        generation: 10,
        offset: 1000,
    };
    assert!(matches!(
        IndexLog::open_at(&path, uv(), beyond),
        Err(LogError::TooShort { .. })
    ));
    assert_eq!(
        LogPosition::from_bytes(b.position().to_bytes()),
        b.position()
    );
}

/// The fuzz target's seeds (written by hand from the layout in the module documentation) are
/// valid logs: all but the torn one replay whole.
#[test]
fn fuzz_seeds_are_valid_logs() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/index_log");
    for (name, whole) in [("seed0", true), ("seed1", true), ("seed2", false)] {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let (uv, _) = parse_header(&bytes).unwrap();
        let mut ix = MailboxIndex::new(uv);
        let body = &bytes[LOG_HEADER_SIZE as usize..];
        let out = replay_bytes(&mut ix, body, LOG_HEADER_SIZE).unwrap();
        assert_eq!(out.torn.is_none(), whole, "{name}");
        assert!(out.applied >= 2, "{name}");
    }
}

/// `columba index check`'s reading of a whole file: every record counted, a torn tail
/// reported with its offset, damage in the middle an error, a bad header refused.
#[test]
fn whole_files_are_verified() {
    let start = MailboxIndex::new(uv());
    let steps: Vec<Vec<Step>> = (0..3)
        .map(|_| {
            vec![Step::Append {
                flags: 0,
                kw: None,
                recent: false,
            }]
        })
        .collect();
    let (body, _, ends) = write_log(&start, &steps);
    let mut file = header_bytes(uv(), 7);
    file.extend_from_slice(&body);
    let summary = verify_file_bytes(&file).unwrap();
    assert_eq!(
        summary,
        LogSummary {
            uid_validity: uv(),
            generation: 7,
            transactions: 3,
            torn: None
        }
    );
    let cut = &file[..file.len() - 3];
    let summary = verify_file_bytes(cut).unwrap();
    assert_eq!(summary.transactions, 2);
    assert_eq!(
        summary.torn.map(|t| t.0),
        Some(LOG_HEADER_SIZE + ends[2] as u64)
    );
    let mut flipped = file.clone();
    flipped[LOG_HEADER_SIZE as usize + ends[1] + 12] ^= 1;
    assert!(matches!(
        verify_file_bytes(&flipped),
        Err(LogError::Corrupt { .. })
    ));
    assert!(verify_file_bytes(&file[..10]).is_err());
}

/// A Maildir flag change renames only the end of a file name: the log keeps the old name's
/// length and the new tail, replays to the same reference, and a replay onto a reference too
/// short for what it keeps does not continue the index.
#[test]
fn a_renamed_reference_is_logged_as_its_new_tail() {
    let mut ix = MailboxIndex::new(uv());
    let name = "c1609459251.M39595P4001Q6.bench.example,S=2760,W=2817:2,";
    append_txn(&mut ix, name);
    let uid = ix.records().next().unwrap().uid();
    let base = ix.clone();
    ix.start_journal();
    let renamed = format!("{name}S");
    ix.apply(Op::SetBackend {
        uid,
        backend: renamed.as_bytes(),
    })
    .unwrap();
    let journal = ix.take_journal().unwrap();
    let record = transaction_record(&journal, &ix, b"");
    assert!(
        record.len() < 60,
        "{} bytes for a one-letter rename",
        record.len()
    );
    let mut reader = base.clone();
    let out = replay_bytes(&mut reader, &record, LOG_HEADER_SIZE).unwrap();
    assert_eq!(out.applied, 1);
    assert_eq!(observable(&reader), observable(&ix));
    assert_eq!(reader.get(uid).unwrap().backend(), renamed.as_bytes());
    // Another process whose reference for the message is shorter than what is kept.
    let mut short = MailboxIndex::new(uv());
    append_txn(&mut short, "c1");
    let err = replay_bytes(&mut short, &record, LOG_HEADER_SIZE).unwrap_err();
    assert!(matches!(err, LogError::Diverged { .. }), "{err}");
}

/// Two writers starting a log at the same moment (each found none) end with the index of one
/// beside the log of the same one, never crossed: the index write and the log rename of each
/// happen under the directory's `PairLock`. (Threads stand in for the processes of the crash
/// test; without the lock they also trip over each other's temporary log, named by process.)
#[test]
fn logs_started_at_once_leave_a_matching_pair() {
    for round in 0..20u64 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("columba.index.log");
        let index = dir.path().join("index");
        let start = std::sync::Barrier::new(2);
        std::thread::scope(|s| {
            for writer in 0..2u64 {
                let (path, index, start) = (&path, &index, &start);
                s.spawn(move || {
                    start.wait();
                    let generation = 1000 + writer;
                    IndexLog::create_with(path, uv(), generation, |pos| {
                        // The index names the generation; the pause lets the other writer run.
                        let tmp = index.with_extension(format!("tmp{writer}"));
                        std::fs::write(&tmp, pos.generation.to_le_bytes()).unwrap();
                        std::fs::rename(&tmp, index).unwrap();
                        std::thread::sleep(std::time::Duration::from_millis(
                            1 + (round + writer) % 3,
                        ));
                        Ok(())
                    })
                    .unwrap();
                });
            }
        });
        let named = u64::from_le_bytes(std::fs::read(&index).unwrap().try_into().unwrap());
        let log = IndexLog::open(&path).unwrap();
        assert_eq!(log.generation(), named, "round {round}");
    }
}
