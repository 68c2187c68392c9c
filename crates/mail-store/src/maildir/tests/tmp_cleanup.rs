//! The mailbox looks at `tmp/` when it is opened and synced, at most once an hour.

use super::*;

fn tmp_atime(root: &Path) -> SystemTime {
    super::io::atime_ctime(&fs::metadata(root.join("tmp")).unwrap()).0
}

fn set_tmp_atime(root: &Path, t: SystemTime) {
    let dir = fs::File::open(root.join("tmp")).unwrap();
    super::io::set_atime(&dir, t).unwrap();
}

#[test]
fn tmp_is_scanned_on_open_and_then_at_most_once_an_hour() {
    let (_t, store) = store();
    let root = store.root().to_owned();
    let hour = Duration::from_secs(3600);
    let two_hours_ago = SystemTime::now() - 2 * hour;
    // A delivery in progress: fresh, so never touched.
    fs::write(root.join("tmp/1800000000.M1P1.writing"), b"Subject: par").unwrap();
    set_tmp_atime(&root, two_hours_ago);

    let inbox = store.open(&MailboxName::inbox()).unwrap();
    // Scanned: tmp/'s atime records it, for Dovecot and other processes too.
    assert!(tmp_atime(&root) > SystemTime::now() - hour);
    assert!(root.join("tmp/1800000000.M1P1.writing").exists());

    // Within the hour, syncs do not look again.
    set_tmp_atime(&root, two_hours_ago);
    fs::write(root.join("new/1800000001.M1P1.mx"), b"Subject: x\n\ny\n").unwrap();
    backdate_dir(&root.join("new"));
    inbox.refresh().unwrap();
    assert_eq!(inbox.status().unwrap().messages, 1);
    let (atime, expected) = (tmp_atime(&root), two_hours_ago);
    let off = atime
        .duration_since(expected)
        .unwrap_or_else(|e| e.duration());
    assert!(off < Duration::from_secs(2), "{atime:?} {expected:?}");
}
