//! `kill -9` in the middle of a stream of APPENDs: every message whose commit returned is still
//! there with its UID, and no UID is handed out twice.
//!
//! The test re-runs its own binary as the child that appends (`COLUMBA_CRASH_CHILD` names the
//! Maildir); the child prints each committed UID, and the parent kills it with SIGKILL mid-way.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use mail_store::MailStore;
use mail_store::maildir::MaildirStore;
use mail_types::{Flags, MailboxName, SystemFlags, Uid};

const CHILD_ENV: &str = "COLUMBA_CRASH_CHILD";

fn body(n: u32) -> Vec<u8> {
    format!(
        "Subject: message {n}\r\n\r\n{}\r\n",
        "x".repeat(n as usize % 500)
    )
    .into_bytes()
}

fn child(root: &str) {
    let store = MaildirStore::new(root.into()).unwrap();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    for n in 0.. {
        let mut w = inbox.begin_append().unwrap();
        w.write(&body(n)).unwrap();
        let flags = if n % 2 == 0 {
            Flags::default()
        } else {
            Flags::new(SystemFlags::SEEN, [])
        };
        let uid = w.commit(flags, None).unwrap();
        println!("COMMITTED {} {n}", uid.get());
    }
}

#[test]
fn kill_9_keeps_committed_messages() {
    if let Ok(root) = std::env::var(CHILD_ENV) {
        child(&root);
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("Maildir");
    let mut proc = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "kill_9_keeps_committed_messages", "--nocapture"])
        .env(CHILD_ENV, &root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = proc.stdout.take().unwrap();
    let mut committed: Vec<(u32, u32)> = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let Some(rest) = line.strip_prefix("COMMITTED ") else {
            continue;
        };
        let mut parts = rest.split(' ').map(|p| p.parse::<u32>().unwrap());
        committed.push((parts.next().unwrap(), parts.next().unwrap()));
        if committed.len() == 40 {
            // SIGKILL in the middle of the next append, at a point that varies between runs
            // (writing tmp/, holding the uidlist lock, renaming).
            let jitter = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
                % 3000;
            std::thread::sleep(std::time::Duration::from_micros(u64::from(jitter)));
            proc.kill().unwrap();
            break;
        }
    }
    proc.wait().unwrap();
    assert_eq!(committed.len(), 40);

    let store = MaildirStore::new(root.clone()).unwrap();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    for &(uid, n) in &committed {
        let uid = Uid::new(uid).unwrap();
        assert_eq!(inbox.read_message(uid).unwrap(), body(n), "UID {uid}");
    }
    let highest = committed.iter().map(|c| c.0).max().unwrap();
    // The child went on appending while we read its output, and the append the kill cut short
    // may or may not have made it; whatever is there is whole, and no UID repeats.
    let snapshot = inbox.snapshot(false).unwrap();
    assert!(snapshot.messages.len() >= 40);
    for m in &snapshot.messages {
        let text = inbox.read_message(m.uid).unwrap();
        assert!(text.starts_with(b"Subject: message ") && text.ends_with(b"\r\n"));
    }
    let mut w = inbox.begin_append().unwrap();
    w.write(&body(1000)).unwrap();
    let next = w.commit(Flags::default(), None).unwrap();
    assert!(next.get() > highest);
    assert!(snapshot.messages.iter().all(|m| m.uid < next));
    // The child's tmp/ file of the interrupted append is its only leftover.
    assert!(std::fs::read_dir(root.join("tmp")).unwrap().count() <= 1);
    assert!(!root.join("dovecot-uidlist.lock").exists());
}
