//! `kill -9` in the middle of mbox appends and expunges, 60 rounds on one file: no message whose
//! append returned is lost, none whose expunge returned comes back, no message is there twice,
//! and UIDs never change.
//!
//! Each round re-runs this test binary as a child (`COLUMBA_MBOX_CRASH_CHILD` names the mbox)
//! that appends and expunges in a loop, printing each operation once it returned; the parent
//! kills it with SIGKILL after a few operations plus a varying delay, then opens the file
//! itself (journal recovery included) and checks it against what the child acknowledged.
//!
//! The rounds lock with fcntl and flock only: a dot lock left by a killed process is broken
//! only once it is two seconds old, which one last round checks with the default locks.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use mail_store::mbox::{
    JOURNAL_FILE, LockConfig, LockMethod, MboxSettings, MboxStore, release_idle_mailboxes,
};
use mail_store::{FlagChange, MailStore, Mailbox};
use mail_types::{Flags, MailboxName, SystemFlags};

const CHILD_ENV: &str = "COLUMBA_MBOX_CRASH_CHILD";
const DOTLOCK_ENV: &str = "COLUMBA_MBOX_CRASH_DOTLOCK";
const ROUNDS: u64 = 60;

fn settings(dotlock: bool) -> MboxSettings {
    let mut locks = LockConfig::default();
    if !dotlock {
        locks.write = vec![LockMethod::Fcntl, LockMethod::Flock];
    }
    locks.timeout = Duration::from_secs(10);
    MboxSettings {
        locks,
        ..MboxSettings::default()
    }
}

fn open(dir: &Path, dotlock: bool) -> (MboxStore, std::sync::Arc<dyn Mailbox>) {
    let store = MboxStore::new(dir.join("mail"), dir.join("inbox"), settings(dotlock)).unwrap();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    (store, inbox)
}

/// A message whose body says which one it is, with `From ` lines to quote.
fn message(tag: u64) -> Vec<u8> {
    format!(
        "Subject: m{tag}\r\n\r\nFrom the crash test\r\n{}\r\n",
        "y".repeat((tag % 300) as usize)
    )
    .into_bytes()
}

/// What the mailbox holds: UID -> the tag in its subject.
fn contents(inbox: &dyn Mailbox) -> BTreeMap<u32, u64> {
    let mut out = BTreeMap::new();
    for m in inbox.snapshot(false).unwrap().messages {
        let text = String::from_utf8(inbox.read_message(m.uid).unwrap()).unwrap();
        let tag: u64 = text
            .strip_prefix("Subject: m")
            .and_then(|s| s.split('\r').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("UID {} is damaged: {text:?}", m.uid));
        assert_eq!(text.as_bytes(), message(tag), "UID {} is damaged", m.uid);
        out.insert(m.uid.get(), tag);
    }
    out
}

fn child(dir: &str, round: u64, dotlock: bool) {
    let (_store, inbox) = open(Path::new(dir), dotlock);
    let deleted = Flags::new(SystemFlags::DELETED, []);
    for op in 0u64.. {
        if op % 3 == 2 {
            // Expunge the oldest message: the whole file is rewritten.
            let Some(first) = inbox
                .snapshot(false)
                .unwrap()
                .messages
                .first()
                .map(|m| m.uid)
            else {
                println!("SKIPPED");
                continue;
            };
            inbox
                .store_flags(&[first], &FlagChange::Add(deleted.clone()))
                .unwrap();
            let gone = inbox.expunge(Some(&[first])).unwrap();
            assert_eq!(gone, vec![first]);
            println!("EXPUNGED {}", first.get());
        } else {
            let tag = round * 1000 + op;
            let mut w = inbox.begin_append().unwrap();
            w.write(&message(tag)).unwrap();
            let uid = w.commit(Flags::default(), None).unwrap();
            println!("APPENDED {} {tag}", uid.get());
        }
    }
}

/// One round: the child works until killed; returns the acknowledged operations.
/// The operations the child acknowledged in one round, in order.
#[derive(Default)]
struct Acked {
    appended: Vec<(u32, u64)>,
    expunged: Vec<u32>,
    /// How many operations returned (skipped expunges of an empty mailbox included): the
    /// index of the one the kill interrupted.
    count: usize,
}

fn crash_round(dir: &Path, round: u64, dotlock: bool) -> Acked {
    let mut proc = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sigkill_during_append_and_expunge",
            "--nocapture",
        ])
        .env(CHILD_ENV, dir)
        .env(DOTLOCK_ENV, if dotlock { "1" } else { "0" })
        .env("COLUMBA_MBOX_CRASH_ROUND", round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = proc.stdout.take().unwrap();
    let mut acked = Acked::default();
    // Kill after 1 to 5 acknowledged operations, then a delay that varies between rounds, so
    // the kill lands in different places of the next append or rewrite.
    let after = 1 + (round % 5) as usize;
    // Lines written before the kill are still read: the child acknowledged those operations.
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split(' ').collect();
        match words.as_slice() {
            ["APPENDED", uid, tag] => acked
                .appended
                .push((uid.parse().unwrap(), tag.parse().unwrap())),
            ["EXPUNGED", uid] => acked.expunged.push(uid.parse().unwrap()),
            ["SKIPPED"] => {}
            _ => continue,
        }
        acked.count += 1;
        if acked.count == after {
            std::thread::sleep(Duration::from_micros(round * 1237 % 12_000));
            let _ = proc.kill();
        }
    }
    proc.wait().unwrap();
    acked
}

#[test]
fn sigkill_during_append_and_expunge() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        let round = std::env::var("COLUMBA_MBOX_CRASH_ROUND")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(0);
        let dotlock = std::env::var(DOTLOCK_ENV).is_ok_and(|v| v == "1");
        child(&dir, round, dotlock);
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // What the mailbox must hold: UID -> tag.
    let mut model: BTreeMap<u32, u64> = BTreeMap::new();
    let mut highest_uid = 0;
    // Rounds where the interrupted operation left no trace (killed before it wrote anything).
    let mut untouched = 0;
    // Rounds whose kill left a journal for recovery to finish or undo.
    let mut journals = 0;
    for round in 1..=ROUNDS + 1 {
        // The last round takes the dot lock too and leaves it behind.
        let dotlock = round == ROUNDS + 1;
        let acked = crash_round(dir, round, dotlock);
        for &(uid, tag) in &acked.appended {
            assert!(
                uid > highest_uid,
                "round {round}: UID {uid} handed out again"
            );
            highest_uid = uid;
            model.insert(uid, tag);
        }
        for uid in &acked.expunged {
            model.remove(uid);
        }
        // The interrupted operation, if it was an expunge, targeted the oldest message.
        let interrupted_expunge = (acked.count % 3 == 2)
            .then(|| model.keys().next().copied())
            .flatten();
        if dir.join("mail/.imap/INBOX").join(JOURNAL_FILE).exists() {
            journals += 1;
        }
        let (_store, inbox) = open(dir, dotlock);
        assert!(!dir.join("mail/.imap/INBOX").join(JOURNAL_FILE).exists());
        let found = contents(&*inbox);
        // The operation the kill interrupted may or may not have happened; nothing else.
        let mut unexplained: Vec<String> = Vec::new();
        for (uid, tag) in &found {
            match model.get(uid) {
                Some(t) if t == tag => {}
                Some(t) => unexplained.push(format!("UID {uid} holds m{tag}, not m{t}")),
                None if *uid > highest_uid && tag / 1000 == round => {}
                None => unexplained.push(format!("UID {uid} (m{tag}) came back")),
            }
        }
        let missing: Vec<u32> = model
            .keys()
            .filter(|u| !found.contains_key(u))
            .copied()
            .collect();
        // Only the message an interrupted expunge was removing may be gone.
        let allowed: Vec<u32> = interrupted_expunge.into_iter().collect();
        assert!(
            missing.iter().all(|u| allowed.contains(u)) && unexplained.is_empty(),
            "round {round}: missing {missing:?}, {unexplained:?}"
        );
        if missing.is_empty() && found.len() == model.len() {
            untouched += 1;
        }
        let mut tags: Vec<u64> = found.values().copied().collect();
        tags.sort_unstable();
        tags.dedup();
        assert_eq!(
            tags.len(),
            found.len(),
            "round {round}: a message is there twice"
        );
        highest_uid = highest_uid.max(found.keys().copied().max().unwrap_or(0));
        model = found;
        drop(inbox);
        release_idle_mailboxes(dir);
    }
    assert!(
        highest_uid as u64 >= ROUNDS,
        "the child did too little: {highest_uid}"
    );
    eprintln!(
        "{} of {} kills interrupted an operation that then showed; {journals} left a journal",
        ROUNDS + 1 - untouched,
        ROUNDS + 1
    );
}
