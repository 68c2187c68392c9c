//! `Mailbox::commit_appends`, the commit of a MULTIAPPEND (RFC 3502 3): all messages get UIDs
//! in order, or none stays in the mailbox.

use std::sync::Arc;

use mail_store::maildir::MaildirStore;
use mail_store::{AppendWriter, MailStore, Mailbox, PendingAppend, StoreError};
use mail_types::{Flags, MailboxName, SystemFlags, Uid};

fn inbox(root: &std::path::Path) -> Arc<dyn Mailbox> {
    MaildirStore::new(root.to_owned())
        .unwrap()
        .open(&MailboxName::inbox())
        .unwrap()
}

fn pending(mb: &Arc<dyn Mailbox>, text: &str, flags: Flags) -> PendingAppend {
    let mut writer = mb.begin_append().unwrap();
    writer.write(text.as_bytes()).unwrap();
    PendingAppend {
        writer,
        flags,
        internal_date: Some(1_000_000_000),
    }
}

fn uids_in(mb: &Arc<dyn Mailbox>) -> Vec<Uid> {
    mb.refresh().unwrap();
    let snap = mb.snapshot(false).unwrap();
    snap.messages.iter().map(|m| m.uid).collect()
}

fn tmp_is_empty(root: &std::path::Path) -> bool {
    std::fs::read_dir(root.join("tmp")).map_or(true, |mut d| d.next().is_none())
}

/// A writer of a backend whose commit always fails.
struct FailingWriter;

impl AppendWriter for FailingWriter {
    fn write(&mut self, _chunk: &[u8]) -> mail_store::Result<()> {
        Ok(())
    }
    fn commit(self: Box<Self>, _flags: Flags, _date: Option<i64>) -> mail_store::Result<Uid> {
        Err(StoreError::Internal("disk on fire".to_owned()))
    }
}

#[test]
fn a_batch_gets_consecutive_uids_in_order_with_its_flags_and_dates() {
    let tmp = tempfile::tempdir().unwrap();
    let mb = inbox(tmp.path());
    let seen = Flags::new(SystemFlags::SEEN, []);
    let batch = vec![
        pending(&mb, "Subject: one\r\n\r\n1\r\n", Flags::default()),
        pending(&mb, "Subject: two\r\n\r\n2\r\n", seen.clone()),
        pending(&mb, "Subject: three\r\n\r\n3\r\n", Flags::default()),
    ];
    let uids = mb.commit_appends(batch).unwrap();
    let got: Vec<u32> = uids.iter().map(|u| u.get()).collect();
    assert_eq!(got, vec![1, 2, 3]);
    assert_eq!(uids_in(&mb), uids);
    let two = mb.read_message(uids[1]).unwrap();
    assert_eq!(two, b"Subject: two\r\n\r\n2\r\n");
    let snap = mb.snapshot(false).unwrap();
    assert_eq!(snap.messages[1].flags, seen);
    assert_eq!(
        mb.message_info(uids[2]).unwrap().internal_date,
        1_000_000_000
    );
    assert!(tmp_is_empty(tmp.path()));
}

#[test]
fn a_failing_message_leaves_none_of_the_batch_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let mb = inbox(tmp.path());
    let before = pending(&mb, "Subject: kept\r\n\r\nx\r\n", Flags::default());
    let kept = mb.commit_appends(vec![before]).unwrap();
    // A writer of another backend forces the one-by-one path, which must undo the first commit.
    let batch = vec![
        pending(&mb, "Subject: first\r\n\r\n1\r\n", Flags::default()),
        PendingAppend {
            writer: Box::new(FailingWriter),
            flags: Flags::default(),
            internal_date: None,
        },
    ];
    let err = mb.commit_appends(batch).unwrap_err();
    assert!(err.to_string().contains("disk on fire"), "{err}");
    assert_eq!(uids_in(&mb), kept);
    // UIDs are never reused: the next message comes after the removed one.
    let next = mb
        .commit_appends(vec![pending(
            &mb,
            "Subject: after\r\n\r\n",
            Flags::default(),
        )])
        .unwrap();
    assert_eq!(next[0].get(), 3);
    assert!(tmp_is_empty(tmp.path()));
}

#[test]
fn a_dropped_batch_leaves_no_file() {
    let tmp = tempfile::tempdir().unwrap();
    let mb = inbox(tmp.path());
    let batch = vec![
        pending(&mb, "Subject: a\r\n\r\n", Flags::default()),
        pending(&mb, "Subject: b\r\n\r\n", Flags::default()),
    ];
    assert!(!tmp_is_empty(tmp.path()));
    drop(batch);
    assert!(tmp_is_empty(tmp.path()));
    assert!(uids_in(&mb).is_empty());
}
