//! Columba shares an mbox with the programs that touch mail spools directly:
//!
//! - procmail (fed by formail) delivers into the INBOX while Columba has it open and keeps
//!   changing flags, appending and expunging: every delivery arrives exactly once, UIDs Columba
//!   handed out never change, and the file stays readable by both.
//! - mutt opens the file after Columba changed flags and sees them: its `~R`, `~F` and `~D`
//!   patterns pick the messages Columba marked `\Seen`, `\Flagged` and `\Deleted`.
//!
//! Without the programs the tests print "skipping: ..." and pass, unless
//! `COLUMBA_REQUIRE_EXTERNAL=1`.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use mail_store::mbox::{MboxSettings, MboxStore};
use mail_store::{FlagChange, MailStore, Mailbox};
use mail_types::{Flags, MailboxName, SystemFlags, Uid};

use common::{have, mbox_inbox};

fn subjects(mailbox: &dyn Mailbox) -> Vec<(u32, String)> {
    mailbox
        .snapshot(false)
        .unwrap()
        .messages
        .iter()
        .map(|m| {
            let text = String::from_utf8(mailbox.read_message(m.uid).unwrap()).unwrap();
            let subject = text
                .lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .unwrap_or("")
                .to_owned();
            (m.uid.get(), subject)
        })
        .collect()
}

fn system(f: SystemFlags) -> Flags {
    Flags::new(f, [])
}

/// Delivers one message with formail + procmail (procmail's own dot lock and fcntl lock).
fn procmail_deliver(rc: &Path, subject: &str) {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("formail -ds procmail -m {}", rc.display()))
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let message = format!(
        "From deliver@example.com Sun Nov 29 08:42:00 2026\nSubject: {subject}\n\n\
         From the delivery agent\nbody of {subject}\n"
    );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(message.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "procmail failed");
}

#[test]
fn procmail_delivers_while_columba_works_on_the_mailbox() {
    if !have("procmail") || !have("formail") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_store, inbox, inbox_path) = mbox_inbox(dir.path());
    // procmail waits LOCKSLEEP seconds when the dot lock is taken: one is its minimum.
    let rc = dir.path().join("procmailrc");
    std::fs::write(&rc, format!("LOCKSLEEP=1\n:0:\n{}\n", inbox_path.display())).unwrap();

    const DELIVERIES: usize = 12;
    let delivering = {
        let rc = rc.clone();
        std::thread::spawn(move || {
            for i in 0..DELIVERIES {
                procmail_deliver(&rc, &format!("delivered {i}"));
                std::thread::sleep(Duration::from_millis(15));
            }
        })
    };
    // Meanwhile: appends, flag changes and expunges, each a rewrite or an append under the
    // mbox locks.
    let mut appended = Vec::new();
    let mut expunged = Vec::new();
    let mut round = 0;
    // A fixed number of rounds with pauses: procmail sleeps a whole second whenever it finds
    // the lock taken, so Columba must not hold it all the time.
    while round < 10 {
        std::thread::sleep(Duration::from_millis(40));
        let mut w = inbox.begin_append().unwrap();
        w.write(format!("Subject: columba {round}\r\n\r\nFrom Columba\r\n").as_bytes())
            .unwrap();
        let uid = w.commit(Flags::default(), None).unwrap();
        appended.push((uid.get(), format!("columba {round}")));
        inbox.refresh().unwrap();
        let snapshot = inbox.snapshot(true).unwrap();
        if let Some(first) = snapshot.messages.first() {
            inbox
                .store_flags(&[first.uid], &FlagChange::Add(system(SystemFlags::SEEN)))
                .unwrap();
        }
        if round % 2 == 1 {
            inbox
                .store_flags(&[uid], &FlagChange::Add(system(SystemFlags::DELETED)))
                .unwrap();
            assert_eq!(inbox.expunge(Some(&[uid])).unwrap(), vec![uid]);
            expunged.push(uid.get());
        }
        round += 1;
    }
    delivering.join().unwrap();
    inbox.refresh().unwrap();

    let seen = subjects(&*inbox);
    let uids: Vec<u32> = seen.iter().map(|(u, _)| *u).collect();
    let mut sorted = uids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(uids, sorted, "UIDs ascend and are unique: {seen:?}");
    for i in 0..DELIVERIES {
        let subject = format!("delivered {i}");
        let copies = seen.iter().filter(|(_, s)| *s == subject).count();
        assert_eq!(copies, 1, "{subject} arrived {copies} times: {seen:?}");
    }
    for (uid, subject) in &appended {
        let present = seen.iter().any(|(u, s)| u == uid && s == subject);
        assert_eq!(
            present,
            !expunged.contains(uid),
            "{uid} {subject}: {seen:?}"
        );
    }
    // A fresh reader of the file (another process) sees the same mailbox.
    let again = MboxStore::new(
        dir.path().join("mail2"),
        inbox_path.clone(),
        MboxSettings::default(),
    )
    .unwrap();
    drop(inbox);
    mail_store::mbox::release_idle_mailboxes(dir.path());
    let reopened = again.open(&MailboxName::inbox()).unwrap();
    assert_eq!(subjects(&*reopened), seen);
}

/// Runs mutt on `mbox` with `keys` pushed, in a pseudo-terminal (mutt needs one).
fn run_mutt(dir: &Path, mbox: &Path, keys: &str) {
    let muttrc = dir.join("muttrc");
    std::fs::write(
        &muttrc,
        "set mbox_type=mbox\nset move=no\nset quit=yes\nset wait_key=no\n\
         set confirmcreate=no\nset confirmappend=no\nset mark_old=no\n",
    )
    .unwrap();
    let command = format!(
        "TERM=vt100 mutt -n -F {} -f {} -e 'push \"{keys}\"'",
        muttrc.display(),
        mbox.display()
    );
    let status = Command::new("timeout")
        .arg("60")
        .arg("script")
        .arg("-qec")
        .arg(&command)
        .arg("/dev/null")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "mutt: {status}");
}

#[test]
fn mutt_sees_the_flags_columba_wrote() {
    if !have("mutt") || !have("script") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_store, inbox, inbox_path) = mbox_inbox(dir.path());
    let mut uids: Vec<Uid> = Vec::new();
    for name in ["plain", "read", "flagged", "deleted", "answered"] {
        let mut w = inbox.begin_append().unwrap();
        w.write(format!("Subject: {name}\r\n\r\nbody\r\n").as_bytes())
            .unwrap();
        uids.push(w.commit(Flags::default(), None).unwrap());
    }
    for (uid, flag) in [
        (uids[1], SystemFlags::SEEN),
        (uids[2], SystemFlags::FLAGGED),
        (uids[3], SystemFlags::DELETED),
        (uids[4], SystemFlags::ANSWERED),
    ] {
        inbox
            .store_flags(&[uid], &FlagChange::Add(system(flag)))
            .unwrap();
    }
    // mutt copies what its patterns match into one mbox each, then leaves without changes.
    let out = |n: &str| dir.path().join(n);
    let keys = format!(
        "<tag-pattern>~R<enter><tag-prefix><copy-message>{r}<enter><untag-pattern>.<enter>\
         <tag-pattern>~F<enter><tag-prefix><copy-message>{f}<enter><untag-pattern>.<enter>\
         <tag-pattern>~D<enter><tag-prefix><copy-message>{d}<enter><untag-pattern>.<enter>\
         <tag-pattern>~Q<enter><tag-prefix><copy-message>{a}<enter><untag-pattern>.<enter>\
         <exit>",
        r = out("read").display(),
        f = out("flagged").display(),
        d = out("deleted").display(),
        a = out("answered").display(),
    );
    run_mutt(dir.path(), &inbox_path, &keys);
    for (file, subject) in [
        ("read", "read"),
        ("flagged", "flagged"),
        ("deleted", "deleted"),
        ("answered", "answered"),
    ] {
        let text = std::fs::read_to_string(out(file))
            .unwrap_or_else(|e| panic!("mutt copied nothing to {file}: {e}"));
        let subjects: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("Subject: "))
            .collect();
        assert_eq!(subjects, vec![subject], "{file}: {text}");
    }
}
