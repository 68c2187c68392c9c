//! APPEND into a big Maildir: how long a commit takes and what it does to `dovecot-uidlist`.
//!
//! The mailbox is made directly on disk (message files in `cur/` and a uidlist naming them, as
//! Dovecot leaves them), opened once, and then messages are appended one at a time. The test
//! prints the time per APPEND and checks that the uidlist stays complete and readable; it
//! asserts nothing about time.
//!
//! It runs with 2,000 messages by default; `COLUMBA_UIDLIST_SCALE=100000` gives the figure for
//! a big mailbox:
//!
//!     COLUMBA_UIDLIST_SCALE=100000 cargo test --release -p mail-store --test uidlist_scale -- --nocapture

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use mail_store::MailStore;
use mail_store::maildir::MaildirStore;
use mail_types::{Flags, MailboxName, SystemFlags};

const UIDVALIDITY: u32 = 1_700_000_000;
const APPENDS: usize = 200;

fn messages() -> u32 {
    std::env::var("COLUMBA_UIDLIST_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

/// `count` messages in `cur/`, all in the uidlist with UIDs 1..=count.
fn make_maildir(root: &Path, count: u32) {
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(root.join(sub)).unwrap();
    }
    let body = b"Subject: filler\n\nx\n";
    let mut list = format!(
        "3 V{UIDVALIDITY} N{} G0123456789abcdef0123456789abcdef\n",
        count + 1
    );
    for uid in 1..=count {
        let base = format!("{}.M{uid}P1.filler,S=19,W=22", 1_600_000_000 + uid);
        fs::write(root.join("cur").join(format!("{base}:2,S")), body).unwrap();
        list.push_str(&format!("{uid} :{base}\n"));
    }
    fs::write(root.join("dovecot-uidlist"), list).unwrap();
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[test]
fn append_into_a_big_mailbox() {
    let count = messages();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("Maildir");
    make_maildir(&root, count);

    let opened = Instant::now();
    let store = MaildirStore::new(root.clone()).unwrap();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    let open_time = opened.elapsed();
    assert_eq!(inbox.uid_validity().get(), UIDVALIDITY);

    let before = fs::metadata(root.join("dovecot-uidlist")).unwrap().len();
    let mut times = Vec::with_capacity(APPENDS);
    let mut uids = Vec::with_capacity(APPENDS);
    for i in 0..APPENDS {
        let message = format!("Subject: appended {i}\r\n\r\nbody\r\n");
        let started = Instant::now();
        let mut w = inbox.begin_append().unwrap();
        w.write(message.as_bytes()).unwrap();
        let flags = if i % 2 == 0 {
            Flags::default()
        } else {
            Flags::new(SystemFlags::SEEN, [])
        };
        uids.push(w.commit(flags, None).unwrap().get());
        times.push(started.elapsed());
    }
    let after = fs::metadata(root.join("dovecot-uidlist")).unwrap().len();
    let expected: Vec<u32> = (count + 1..=count + APPENDS as u32).collect();
    assert_eq!(uids, expected);

    // The file names every message under the UID its APPEND was told.
    let text = fs::read_to_string(root.join("dovecot-uidlist")).unwrap();
    let listed: Vec<u32> = text
        .lines()
        .skip(1)
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(listed, (1..=count + APPENDS as u32).collect::<Vec<_>>());
    assert!(text.ends_with('\n'));

    let worst = times.iter().max().copied().unwrap_or_default();
    let total: Duration = times.iter().sum();
    let med = median(&mut times);
    println!(
        "uidlist scale: {count} messages, open {:.1} ms; {APPENDS} APPENDs: median {:.2} ms, \
         mean {:.2} ms, max {:.2} ms; dovecot-uidlist {before} -> {after} bytes",
        open_time.as_secs_f64() * 1e3,
        med.as_secs_f64() * 1e3,
        total.as_secs_f64() * 1e3 / APPENDS as f64,
        worst.as_secs_f64() * 1e3,
    );
    let _ = std::io::stdout().flush();
}
