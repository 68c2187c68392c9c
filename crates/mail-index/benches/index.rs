//! Micro-benchmarks of the index (issue 3): opening a saved index file — what a warm SELECT
//! costs before any session logic — and replaying changes into an index and answering
//! "what changed since" (what a session's sync and a QRESYNC SELECT do).
//! Replaying the transaction log (`columba.index.log`) is measured alone and as part of an open.
//!
//!     cargo bench -p mail-index --bench index
//!
//! The test suite (`cargo test --all-targets`) runs each once, as a check that they work.

use mail_index::{IndexLog, LogPosition, MailboxIndex, NewRecord, Op, log};
use mail_types::{Flags, Keyword, SystemFlags, Uid, UidValidity};

fn main() {
    // The test suite passes libtest's arguments (`--test-threads`), which divan's own parser
    // refuses: run each benchmark once then.
    if std::env::args().any(|a| a.starts_with("--test-threads")) {
        divan::Divan::default().test_benches();
    } else {
        divan::main();
    }
}

/// An index of `n` messages shaped like a real mailbox: a tenth expunged, a third seen and
/// with a keyword, most with date and size known.
fn mailbox(n: u32) -> MailboxIndex {
    let mut ix = MailboxIndex::new(UidValidity::new(1_700_000_000).unwrap());
    let seen = Flags::new(SystemFlags::SEEN, [Keyword::new("$Junk").unwrap()]);
    let plain = Flags::default();
    for u in 1..=n {
        let backend = format!("1700000000.M{u}P1.host,S=4000,W=4100:2,");
        ix.apply(Op::Append(NewRecord {
            uid: Uid::new(u).unwrap(),
            flags: if u % 3 == 0 { &seen } else { &plain },
            internal_date: (u % 5 != 0).then_some(1_600_000_000 + i64::from(u)),
            size: (u % 7 != 0).then_some(4100),
            recent: false,
            backend: backend.as_bytes(),
        }))
        .unwrap();
    }
    let gone: Vec<Uid> = (1..=n)
        .filter(|u| u % 10 == 1)
        .map(|u| Uid::new(u).unwrap())
        .collect();
    ix.apply(Op::Expunge(&gone)).unwrap();
    ix
}

/// `MailboxIndex::read_file`: validate and load a saved index of `n` messages.
#[divan::bench(args = [10_000, 100_000, 1_000_000], sample_count = 10)]
fn open_index_file(bencher: divan::Bencher, n: u32) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("columba.index");
    mailbox(n).write_file(&path, b"").unwrap();
    bencher.bench(|| MailboxIndex::read_file(&path).unwrap().unwrap());
}

/// 1,000 flag changes applied to an index of `n` messages, then the changes since before them
/// collected (a session's sync; a QRESYNC SELECT's FETCH list).
#[divan::bench(args = [10_000, 100_000, 1_000_000], sample_count = 10)]
fn replay_1000_flag_changes(bencher: divan::Bencher, n: u32) {
    let base = mailbox(n);
    let flagged = Flags::new(SystemFlags::FLAGGED, []);
    bencher.with_inputs(|| base.clone()).bench_values(|mut ix| {
        let since = ix.header().highest_modseq.get();
        for u in (2..=n).step_by((n / 1000) as usize).take(1000) {
            let _ = ix.apply(Op::SetFlags {
                uid: Uid::new(u).unwrap(),
                flags: &flagged,
            });
        }
        ix.changes_since(since)
    });
}

/// A log body of `k` transactions, each one flag change of a message of `base` (cycling through
/// them, alternating \Flagged on and off), as another process writes them.
fn flag_change_log(base: &MailboxIndex, k: u32) -> Vec<u8> {
    let mut ix = base.clone();
    let uids: Vec<Uid> = ix.records().map(|r| r.uid()).collect();
    let on = Flags::new(SystemFlags::FLAGGED, []);
    let off = Flags::default();
    let mut body = Vec::new();
    for i in 0..k as usize {
        let uid = uids[i % uids.len()];
        let flags = if (i / uids.len()).is_multiple_of(2) {
            &on
        } else {
            &off
        };
        ix.start_journal();
        ix.apply(Op::SetFlags { uid, flags }).unwrap();
        let journal = ix.take_journal().unwrap();
        body.extend(log::transaction_record(&journal, &ix, b""));
    }
    body
}

/// Replaying `k` logged flag changes (one transaction each, checksums verified) into an index
/// of 100,000 messages: what a process pays to catch up with another's changes, and what an
/// open pays for the log written since the main index.
#[divan::bench(args = [1_000, 100_000], sample_count = 10)]
fn replay_log_flag_changes(bencher: divan::Bencher, k: u32) {
    let base = mailbox(100_000);
    let body = flag_change_log(&base, k);
    bencher
        .with_inputs(|| base.clone())
        .bench_values(|mut ix| log::replay_bytes(&mut ix, &body, log::LOG_HEADER_SIZE).unwrap());
}

/// Opening a mailbox of 100,000 messages as a process does: load `columba.index`, open the log
/// at the position the index continues and replay `k` flag changes from the file.
#[divan::bench(args = [0, 1_000, 100_000], sample_count = 10)]
fn open_index_and_replay_log(bencher: divan::Bencher, k: u32) {
    let dir = tempfile::tempdir().unwrap();
    let index_path = dir.path().join("columba.index");
    let log_path = dir.path().join("columba.index.log");
    let base = mailbox(100_000);
    let uv = base.uid_validity();
    let (mut log, lock) = IndexLog::create_with(&log_path, uv, 1, |_| {
        base.write_file(&index_path, b"").map_err(|e| e.to_string())
    })
    .unwrap();
    log.append(&lock, &flag_change_log(&base, k), false)
        .unwrap();
    drop(lock);
    let start = LogPosition {
        generation: 1,
        offset: log::LOG_HEADER_SIZE,
    };
    bencher.bench(|| {
        let mut ix = MailboxIndex::read_file(&index_path).unwrap().unwrap().index;
        let mut log = IndexLog::open_at(&log_path, uv, start).unwrap();
        log.catch_up(&mut ix, None).unwrap();
        ix
    });
}
