//! Reopening a mailbox from its saved index (`columba.index`), as a restarted server does: no
//! directory is listed when nothing changed, changes made while it was closed (a delivery into
//! `new/`, flags renamed in `cur/`, a file deleted) are all found, and a damaged index is
//! rebuilt from the files with the same UIDs. One test function: it counts this process's
//! directory listings, which parallel tests would disturb.

use std::sync::Arc;

use mail_store::maildir::{self, MaildirStore};
use mail_store::{FlagChange, MailStore, Mailbox};
use mail_types::{Flags, MailboxName, SystemFlags};

fn open(root: &std::path::Path) -> Arc<dyn Mailbox> {
    maildir::release_idle_mailboxes(root);
    MaildirStore::new(root.to_owned())
        .unwrap()
        .open(&MailboxName::inbox())
        .unwrap()
}

/// (UID, flags) of every message.
fn state(mb: &Arc<dyn Mailbox>) -> Vec<(u32, String)> {
    mb.snapshot(false)
        .unwrap()
        .messages
        .iter()
        .map(|m| (m.uid.get(), format!("{:?}", m.flags)))
        .collect()
}

/// Opens the mailbox whose index file was spoiled: same UIDs and flags, from a rebuild that
/// lists the directories.
fn assert_rebuilt(root: &std::path::Path, expected: &[(u32, String)]) {
    let scans = maildir::directory_scans();
    let inbox = open(root);
    assert_eq!(state(&inbox), expected);
    assert!(
        maildir::directory_scans() > scans,
        "the rebuild lists the directories"
    );
}

#[test]
fn reopening_from_the_saved_index() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("Maildir");
    let before = {
        let inbox = open(&root);
        for i in 0..50 {
            let mut w = inbox.begin_append().unwrap();
            w.write(format!("Subject: {i}\r\n\r\nbody\r\n").as_bytes())
                .unwrap();
            let flags = if i % 2 == 0 {
                Flags::new(SystemFlags::SEEN, [])
            } else {
                Flags::default()
            };
            w.commit(flags, None).unwrap();
        }
        state(&inbox)
    };
    // Directory mtimes have a granularity, so the first reopen after our own writes lists the
    // directories once more (a change by someone else in the same clock tick would hide behind
    // the same mtime). After that clean scan, a reopen lists nothing.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let inbox = open(&root);
    assert_eq!(state(&inbox), before);
    drop(inbox);
    let scans = maildir::directory_scans();
    let inbox = open(&root);
    assert_eq!(state(&inbox), before);
    let _ = inbox.status().unwrap();
    assert_eq!(
        maildir::directory_scans(),
        scans,
        "an unchanged mailbox was listed on open"
    );
    drop(inbox);

    // Changes while closed, by other programs.
    maildir::release_idle_mailboxes(&root);
    std::fs::write(
        root.join("new/1800000000.M1P1.mda"),
        b"Subject: delivered\n\nhi\n",
    )
    .unwrap();
    let cur: Vec<_> = std::fs::read_dir(root.join("cur"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let mut sorted = cur.clone();
    sorted.sort();
    // Another MUA marks one message \Flagged (renames it) and deletes another.
    let renamed = sorted[1].to_string_lossy().into_owned();
    std::fs::rename(&sorted[1], format!("{renamed}F")).unwrap();
    std::fs::remove_file(&sorted[2]).unwrap();
    let inbox = open(&root);
    let after = state(&inbox);
    assert_eq!(after.len(), before.len(), "one gone, one delivered");
    let uids: Vec<u32> = after.iter().map(|(u, _)| *u).collect();
    assert_eq!(*uids.last().unwrap(), 51, "the delivery got the next UID");
    assert_eq!(uids.iter().filter(|u| **u <= 50).count(), 49);
    // The survivors kept their UIDs (the deleted file's UID is simply gone).
    let old: Vec<u32> = before.iter().map(|(u, _)| *u).collect();
    assert!(uids[..49].iter().all(|u| old.contains(u)));
    let flagged: Vec<u32> = inbox
        .snapshot(false)
        .unwrap()
        .messages
        .iter()
        .filter(|m| m.flags.system.contains(SystemFlags::FLAGGED))
        .map(|m| m.uid.get())
        .collect();
    assert_eq!(flagged.len(), 1);
    // Changes through Columba are saved on the way out as well.
    inbox
        .store_flags(
            &[mail_types::Uid::new(1).unwrap()],
            &FlagChange::Add(Flags::new(SystemFlags::ANSWERED, [])),
        )
        .unwrap();
    let expected = state(&inbox);
    drop(inbox);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let inbox = open(&root);
    assert_eq!(state(&inbox), expected);
    drop(inbox);

    // A damaged index: logged, rebuilt from the files and dovecot-uidlist, same UIDs and flags.
    maildir::release_idle_mailboxes(&root);
    let index = root.join("columba.index");
    let mut bytes = std::fs::read(&index).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&index, &bytes).unwrap();
    assert_rebuilt(&root, &expected);
    for junk in [Vec::new(), vec![0u8; 4096], b"CLMBIDX\0garbage".to_vec()] {
        maildir::release_idle_mailboxes(&root);
        std::fs::write(&index, &junk).unwrap();
        let inbox = open(&root);
        assert_eq!(state(&inbox), expected);
    }

    // An index file of an older format (version 1, fixed-size records), as an upgraded server
    // finds it: refused by its version, rebuilt from the files and dovecot-uidlist with the
    // same UIDs and flags, and saved in the current format.
    maildir::release_idle_mailboxes(&root);
    let mut old = std::fs::read(&index).unwrap();
    old[8..12].copy_from_slice(&1u32.to_le_bytes());
    std::fs::write(&index, &old).unwrap();
    assert!(matches!(
        mail_index::MailboxIndex::read_file(&index),
        Err(mail_index::IndexFileError::Version(1))
    ));
    assert_rebuilt(&root, &expected);
    maildir::release_idle_mailboxes(&root);
    assert!(
        mail_index::MailboxIndex::read_file(&index)
            .unwrap()
            .is_some()
    );
}
