//! Save dates (RFC 8514 3) in the Maildir store: recorded when a message is committed, taken
//! from the file for a message another program delivered, never changing while the message
//! stays in its mailbox, and new for a copy.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mail_store::maildir::MaildirStore;
use mail_store::{FlagChange, MailStore};
use mail_types::{Flags, MailboxName, SystemFlags};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn save_dates_are_kept_and_copies_get_their_own() {
    let tmp = tempfile::tempdir().unwrap();
    let store = MaildirStore::new(tmp.path().to_owned()).unwrap();
    store.create(&MailboxName::new("Other").unwrap()).unwrap();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    assert!(inbox.has_save_dates());

    // Appended with an INTERNALDATE in 2001: the save date is now all the same.
    let mut w = inbox.begin_append().unwrap();
    w.write(b"Subject: appended\r\n\r\nx\r\n").unwrap();
    let appended = w.commit(Flags::default(), Some(978_307_200)).unwrap();
    let saved = inbox.save_date(appended).unwrap();
    assert!(
        (saved - now()).abs() <= 2,
        "save date {saved}, now {}",
        now()
    );

    // Delivered by another program: the file's ctime, recorded at first asking.
    std::fs::write(
        tmp.path().join("new").join("1700000000.M1P1.elsewhere"),
        b"Subject: delivered\n\nx\n",
    )
    .unwrap();
    inbox.refresh().unwrap();
    let snap = inbox.snapshot(false).unwrap();
    let delivered = snap.messages.last().unwrap().uid;
    assert_ne!(delivered, appended);
    let first = inbox.save_date(delivered).unwrap();
    assert!((first - now()).abs() <= 2);

    // A flag change renames the files (moving their ctime); the save dates stay.
    std::thread::sleep(Duration::from_millis(1100));
    let seen = Flags::new(SystemFlags::SEEN, []);
    let changed = inbox
        .store_flags(&[appended, delivered], &FlagChange::Add(seen))
        .unwrap();
    assert_eq!(changed.len(), 2);
    assert_eq!(inbox.save_date(delivered), Some(first));
    assert_eq!(inbox.save_date(appended), Some(saved));

    // A copy entered the other mailbox later: its own, later save date.
    let other = store.open(&MailboxName::new("Other").unwrap()).unwrap();
    let pairs = inbox.copy_to(&[delivered], other.as_ref()).unwrap();
    let copy = other.save_date(pairs[0].1).unwrap();
    assert!(copy > first, "copy {copy}, original {first}");
    assert_eq!(inbox.save_date(delivered), Some(first));

    // Gone messages have none.
    let deleted = Flags::new(SystemFlags::DELETED, []);
    inbox
        .store_flags(&[appended], &FlagChange::Add(deleted))
        .unwrap();
    inbox.expunge(None).unwrap();
    assert_eq!(inbox.save_date(appended), None);
}
