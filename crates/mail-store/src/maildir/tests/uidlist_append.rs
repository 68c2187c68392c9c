//! `dovecot-uidlist` grows by appending, is rewritten only when it must be, and a torn last line
//! is never appended to and its UID never reused.

use std::io::Write;

use super::*;

fn uidlist_ino(root: &Path) -> u64 {
    fs::metadata(root.join("dovecot-uidlist")).unwrap().ino()
}

fn listed_uids(root: &Path) -> Vec<u32> {
    uidlist_text(root)
        .lines()
        .skip(1)
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect()
}

/// The INBOX at `root` as a restarted process opens it.
fn reopen(root: &Path) -> Arc<dyn Mailbox> {
    registry_forget(&[root.to_owned()]);
    MaildirStore::new(root.to_owned())
        .unwrap()
        .open(&MailboxName::inbox())
        .unwrap()
}

fn indexed_uids(mb: &dyn Mailbox) -> Vec<u32> {
    let snap = mb.snapshot(false).unwrap();
    snap.messages.iter().map(|m| m.uid.get()).collect()
}

/// Adds bytes to the end of the uidlist as another process would.
fn append_raw(root: &Path, bytes: &[u8]) {
    fs::OpenOptions::new()
        .append(true)
        .open(root.join("dovecot-uidlist"))
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

fn expunge(mb: &dyn Mailbox, uids: &[u32]) {
    let uids: Vec<Uid> = uids.iter().map(|&u| uid(u)).collect();
    let deleted = flags(SystemFlags::DELETED, &[]);
    mb.store_flags(&uids, &FlagChange::Add(deleted)).unwrap();
    assert_eq!(mb.expunge(Some(&uids)).unwrap(), uids);
}

#[test]
fn appends_go_to_the_end_until_a_quarter_is_expunged() {
    let (_t, store) = store();
    let root = store.root().to_owned();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    let ino = uidlist_ino(&root);
    for _ in 0..8 {
        append(inbox.as_ref(), MSG, Flags::default(), None);
    }
    assert_eq!(uidlist_ino(&root), ino);
    assert_eq!(listed_uids(&root), (1..=8).collect::<Vec<_>>());

    // One of nine expunged: the record stays, the new one is appended after it.
    expunge(inbox.as_ref(), &[1]);
    assert_eq!(append(inbox.as_ref(), MSG, Flags::default(), None), uid(9));
    assert_eq!(uidlist_ino(&root), ino);
    assert_eq!(listed_uids(&root), (1..=9).collect::<Vec<_>>());

    // Three of ten would be dead weight: rewritten without them, NEXTUID brought up to date.
    expunge(inbox.as_ref(), &[2, 3]);
    assert_eq!(append(inbox.as_ref(), MSG, Flags::default(), None), uid(10));
    assert_ne!(uidlist_ino(&root), ino);
    assert_eq!(listed_uids(&root), (4..=10).collect::<Vec<_>>());
    let text = uidlist_text(&root);
    assert!(
        text.starts_with(&format!("3 V{} N11 G", inbox.uid_validity())),
        "{text}"
    );

    // What a restarted process reads agrees, and the next UID is not one used before.
    drop(inbox);
    let inbox = reopen(&root);
    assert_eq!(indexed_uids(inbox.as_ref()), (4..=10).collect::<Vec<_>>());
    assert_eq!(append(inbox.as_ref(), MSG, Flags::default(), None), uid(11));
}

#[test]
fn a_torn_last_line_is_not_appended_to_and_its_uid_not_reused() {
    let (_t, store) = store();
    let root = store.root().to_owned();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    for _ in 0..3 {
        append(inbox.as_ref(), MSG, Flags::default(), None);
    }
    // Another process died halfway through appending UID 4 (its message never acknowledged).
    append_raw(&root, b"4 :1800000000.M1P2.crashed,S=");

    assert_eq!(append(inbox.as_ref(), MSG, Flags::default(), None), uid(5));
    let text = uidlist_text(&root);
    assert!(text.ends_with('\n'), "{text:?}");
    assert!(!text.contains("crashed"), "{text:?}");
    let parsed = uidlist::parse(text.as_bytes(), Path::new("dovecot-uidlist"));
    assert!(!parsed.needs_rewrite, "{text:?}");
    assert_eq!(listed_uids(&root), [1, 2, 3, 5]);
    assert_eq!(parsed.list.next_uid, 6);

    // Torn again, then a restart: the torn UID stays used, the file is repaired on open.
    append_raw(&root, b"6 W12 :1800000001.M");
    drop(inbox);
    let inbox = reopen(&root);
    assert_eq!(indexed_uids(inbox.as_ref()), [1, 2, 3, 5]);
    assert!(uidlist_text(&root).ends_with('\n'));
    assert_eq!(listed_uids(&root), [1, 2, 3, 5]);
    assert_eq!(append(inbox.as_ref(), MSG, Flags::default(), None), uid(7));
    assert_eq!(listed_uids(&root), [1, 2, 3, 5, 7]);
}

#[test]
fn records_another_process_appended_are_kept() {
    let (_t, store) = store();
    let root = store.root().to_owned();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    append(inbox.as_ref(), MSG, Flags::default(), None);
    // A Dovecot delivery: file in new/, record appended under the lock, as Dovecot writes it.
    let base = "1800000000.M9P9.dovecot,S=3,W=4";
    fs::write(root.join("new").join(base), b"a\nb").unwrap();
    {
        let _lock =
            dotlock::DotLock::acquire(&root.join("dovecot-uidlist"), &uidlist::LOCK).unwrap();
        append_raw(&root, format!("2 :{base}\n").as_bytes());
    }
    let ino = uidlist_ino(&root);
    assert_eq!(append(inbox.as_ref(), MSG, Flags::default(), None), uid(3));
    assert_eq!(uidlist_ino(&root), ino);
    assert_eq!(listed_uids(&root), [1, 2, 3]);
    assert!(uidlist_text(&root).contains(&format!("\n2 :{base}\n")));
    assert_eq!(inbox.read_message(uid(2)).unwrap(), b"a\r\nb");
}

#[test]
fn a_file_back_under_a_new_uid_is_listed_once() {
    let (_t, store) = store();
    let root = store.root().to_owned();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    for _ in 0..8 {
        append(inbox.as_ref(), MSG, Flags::default(), None);
    }
    let text = uidlist_text(&root);
    let first = text.lines().nth(1).unwrap().strip_prefix("1 :").unwrap();
    let file = root.join("new").join(first);
    let aside = root.join("aside");
    fs::rename(&file, &aside).unwrap();
    backdate_dir(&root.join("new"));
    inbox.refresh().unwrap();
    // One of eight gone: its record stays in the file.
    assert_eq!(listed_uids(&root), (1..=8).collect::<Vec<_>>());

    // The file comes back: a new UID, and the old record goes (Dovecot would see the name twice).
    fs::rename(&aside, &file).unwrap();
    backdate_dir(&root.join("new"));
    inbox.refresh().unwrap();
    assert_eq!(listed_uids(&root), (2..=9).collect::<Vec<_>>());
    assert_eq!(uidlist_text(&root).matches(first).count(), 1);
    let parsed = uidlist::parse(uidlist_text(&root).as_bytes(), Path::new("dovecot-uidlist"));
    assert!(!parsed.needs_rewrite);
}
