//! Micro-benchmarks of the index (issue 3): opening a saved index file — what a warm SELECT
//! costs before any session logic — and replaying changes into an index and answering
//! "what changed since" (what a session's sync and a QRESYNC SELECT do).
//!
//!     cargo bench -p mail-index --bench index
//!
//! The test suite (`cargo test --all-targets`) runs each once, as a check that they work.

use mail_index::{MailboxIndex, NewRecord, Op};
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
