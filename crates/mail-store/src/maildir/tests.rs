//! Store tests on a temporary Maildir: what the session layer relies on, what other programs see
//! on disk, and recovery from damage.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use mail_types::{Flag, Flags, Keyword, MailboxName, SeqNum, SystemFlags, Uid};

use super::*;
use crate::{
    ChangeCursor, ChangeListener, FlagChange, MailStore, Mailbox, MailboxView, StoreErrorKind,
};

fn n(s: &str) -> MailboxName {
    MailboxName::new(s).unwrap()
}

fn uid(v: u32) -> Uid {
    Uid::new(v).unwrap()
}

fn kw(s: &str) -> Keyword {
    Keyword::new(s).unwrap()
}

fn flags(system: SystemFlags, keywords: &[&str]) -> Flags {
    Flags::new(system, keywords.iter().map(|k| kw(k)))
}

fn store() -> (tempfile::TempDir, MaildirStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = MaildirStore::new(dir.path().join("Maildir")).unwrap();
    (dir, store)
}

fn append(mb: &dyn Mailbox, body: &[u8], f: Flags, date: Option<i64>) -> Uid {
    let mut w = mb.begin_append().unwrap();
    w.write(body).unwrap();
    w.commit(f, date).unwrap()
}

const MSG: &[u8] = b"Subject: hello\r\nFrom: a@example.org\r\n\r\nline one\r\nline two\r\n";

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

fn uidlist_text(dir: &Path) -> String {
    fs::read_to_string(dir.join("dovecot-uidlist")).unwrap()
}

mod tmp_cleanup;
mod uidlist_append;

#[test]
fn new_creates_the_root_privately() {
    let (_t, store) = store();
    for sub in ["cur", "new", "tmp"] {
        let m = fs::metadata(store.root().join(sub)).unwrap();
        assert!(m.is_dir());
        assert_eq!(m.permissions().mode() & 0o777, 0o700);
    }
    // Opening an existing tree again works.
    MaildirStore::new(store.root().to_owned()).unwrap();
}

#[test]
fn append_then_read_back_exactly() {
    let (_t, store) = store();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    let u1 = append(inbox.as_ref(), MSG, Flags::default(), Some(1_600_000_000));
    let u2 = append(
        inbox.as_ref(),
        b"Subject: two\r\n\r\nx\r\n",
        Flags::default(),
        None,
    );
    assert_eq!((u1.get(), u2.get()), (1, 2));

    assert_eq!(inbox.read_message(u1).unwrap(), MSG);
    let info = inbox.message_info(u1).unwrap();
    assert_eq!(info.size, MSG.len() as u64);
    assert_eq!(info.internal_date, 1_600_000_000);

    // On disk: LF line endings, S= and W= in the name, mtime = INTERNALDATE, mode 0600, no flags
    // so new/.
    let new = files(&store.root().join("new"));
    assert_eq!(new.len(), 2);
    let stored_len = MSG.len() - MSG.iter().filter(|&&b| b == b'\r').count();
    assert!(
        new[0].ends_with(&format!(",S={stored_len},W={}", MSG.len())),
        "{new:?}"
    );
    let path = store.root().join("new").join(&new[0]);
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(meta.len() as usize, stored_len);
    assert_eq!(meta.mtime(), 1_600_000_000);
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert!(!fs::read(&path).unwrap().contains(&b'\r'));
    assert!(files(&store.root().join("tmp")).is_empty());

    // The records were appended to the file the open wrote, whose NEXTUID lags behind them
    // as in Dovecot's files.
    let text = uidlist_text(store.root());
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with(&format!("3 V{} N1 G", inbox.uid_validity())),
        "{header}"
    );
    assert_eq!(lines.next().unwrap(), format!("1 :{}", new[0]));
    assert_eq!(lines.next().unwrap(), format!("2 :{}", new[1]));

    let status = inbox.status().unwrap();
    assert_eq!(status.messages, 2);
    assert_eq!(status.recent, 2);
    assert_eq!(status.unseen, 2);
    assert_eq!(status.uid_next, uid(3));
    assert_eq!(
        status.size,
        MSG.len() as u64 + b"Subject: two\r\n\r\nx\r\n".len() as u64
    );
}

#[test]
fn crlf_handling_across_chunks() {
    let (_t, store) = store();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    let mut w = inbox.begin_append().unwrap();
    // CR at a chunk end, a bare LF, a bare CR, and a trailing CR.
    for chunk in [&b"a\r"[..], b"\nb\n", b"c\rd\r", b"\r\ne\r"] {
        w.write(chunk).unwrap();
    }
    let u = w.commit(Flags::default(), None).unwrap();
    let back = inbox.read_message(u).unwrap();
    // A bare CR right before a CRLF does not survive LF storage (Dovecot loses it too: it
    // stores "\r\n" there and reads that back unchanged); the size still matches the bytes.
    assert_eq!(back, b"a\r\nb\r\nc\rd\r\ne\r");
    assert_eq!(inbox.message_info(u).unwrap().size, back.len() as u64);
}

#[test]
fn dropped_writer_leaves_nothing() {
    let (_t, store) = store();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    let mut w = inbox.begin_append().unwrap();
    w.write(MSG).unwrap();
    assert_eq!(files(&store.root().join("tmp")).len(), 1);
    drop(w);
    assert!(files(&store.root().join("tmp")).is_empty());
    assert_eq!(inbox.status().unwrap().messages, 0);
}

#[test]
fn flags_and_keywords_live_in_the_file_name() {
    let (_t, store) = store();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    let u = append(
        inbox.as_ref(),
        MSG,
        flags(SystemFlags::SEEN, &["$Forwarded", "Junk"]),
        None,
    );
    let cur = files(&store.root().join("cur"));
    assert_eq!(cur.len(), 1);
    assert!(cur[0].ends_with(":2,Sab"), "{cur:?}");
    assert_eq!(
        fs::read_to_string(store.root().join("dovecot-keywords")).unwrap(),
        "0 $Forwarded\n1 Junk\n"
    );

    let changed = inbox
        .store_flags(
            &[u],
            &FlagChange::Add(flags(
                SystemFlags::FLAGGED.union(SystemFlags::DRAFT),
                &["$Label1"],
            )),
        )
        .unwrap();
    assert_eq!(changed.len(), 1);
    let want = Flags::new(
        SystemFlags::SEEN
            .union(SystemFlags::FLAGGED)
            .union(SystemFlags::DRAFT),
        [kw("$Forwarded"), kw("Junk"), kw("$Label1")],
    );
    assert_eq!(changed[0].flags, want);
    let cur = files(&store.root().join("cur"));
    assert!(cur[0].ends_with(":2,DFSabc"), "{cur:?}");

    // No change, no result.
    let same = inbox
        .store_flags(&[u], &FlagChange::Add(flags(SystemFlags::SEEN, &[])))
        .unwrap();
    assert!(same.is_empty());

    let removed = inbox
        .store_flags(
            &[u, uid(99)],
            &FlagChange::Remove(flags(SystemFlags::ALL, &["junk"])),
        )
        .unwrap();
    assert_eq!(
        removed[0].flags,
        flags(SystemFlags::empty(), &["$Forwarded", "$Label1"])
    );
    assert!(removed[0].modseq > changed[0].modseq);
    let cur = files(&store.root().join("cur"));
    assert!(cur[0].ends_with(":2,ac"), "{cur:?}");

    // A reopened store reads the same flags back from disk.
    drop(inbox);
    let other = MaildirStore::new(store.root().to_owned()).unwrap();
    let again = other.open_maildir(&MailboxName::inbox()).unwrap();
    let snap = again.snapshot(false).unwrap();
    assert_eq!(snap.messages[0].flags, removed[0].flags);
}

#[test]
fn the_27th_keyword_is_refused_without_side_effects() {
    let (_t, store) = store();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    let u = append(inbox.as_ref(), MSG, Flags::default(), None);
    let many: Vec<String> = (0..26).map(|i| format!("k{i}")).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    inbox
        .store_flags(&[u], &FlagChange::Add(flags(SystemFlags::empty(), &refs)))
        .unwrap();
    let err = inbox
        .store_flags(&[u], &FlagChange::Add(flags(SystemFlags::SEEN, &["extra"])))
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::NotPossible);
    assert!(
        !inbox.snapshot(false).unwrap().messages[0]
            .flags
            .contains(&Flag::Seen)
    );
}

#[test]
fn expunge_removes_only_deleted_messages() {
    let (_t, store) = store();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    let u: Vec<Uid> = (0..4)
        .map(|_| append(inbox.as_ref(), MSG, Flags::default(), None))
        .collect();
    let deleted = flags(SystemFlags::DELETED, &[]);
    inbox
        .store_flags(&[u[0], u[1], u[3]], &FlagChange::Add(deleted))
        .unwrap();
    assert_eq!(inbox.expunge(Some(&[u[1], u[2]])).unwrap(), vec![u[1]]);
    assert_eq!(inbox.expunge(None).unwrap(), vec![u[0], u[3]]);
    assert_eq!(inbox.expunge(None).unwrap(), vec![]);
    let left: Vec<Uid> = inbox
        .snapshot(false)
        .unwrap()
        .messages
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(left, vec![u[2]]);
    assert_eq!(
        inbox.read_message(u[0]).unwrap_err().kind(),
        StoreErrorKind::Expunged
    );
    assert_eq!(
        files(&store.root().join("cur")).len() + files(&store.root().join("new")).len(),
        1
    );
    // UIDs are never reused.
    assert_eq!(append(inbox.as_ref(), MSG, Flags::default(), None), uid(5));
}

#[test]
fn copy_between_maildirs_uses_hard_links() {
    let (_t, store) = store();
    store.create(&n("Archive")).unwrap();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    let archive = store.open(&n("Archive")).unwrap();
    append(archive.as_ref(), MSG, Flags::default(), None);
    let a = append(
        inbox.as_ref(),
        MSG,
        flags(SystemFlags::SEEN, &["Work"]),
        Some(1_500_000_000),
    );
    let b = append(
        inbox.as_ref(),
        b"Subject: b\n\nbody\n",
        Flags::default(),
        Some(1_400_000_000),
    );
    let pairs = inbox.copy_to(&[b, a, uid(77)], archive.as_ref()).unwrap();
    assert_eq!(pairs, vec![(a, uid(2)), (b, uid(3))]);
    assert_eq!(archive.read_message(uid(2)).unwrap(), MSG);
    assert_eq!(
        archive.message_info(uid(2)).unwrap().internal_date,
        1_500_000_000
    );
    assert_eq!(
        archive.message_info(uid(3)).unwrap().internal_date,
        1_400_000_000
    );
    let snap = archive.snapshot(false).unwrap();
    assert_eq!(snap.messages[1].flags, flags(SystemFlags::SEEN, &["Work"]));
    assert!(snap.messages[2].flags.system.is_empty());
    // Same inode in both mailboxes.
    let src = files(&store.root().join("cur"));
    let dst = files(&store.root().join(".Archive/cur"));
    let ino = |p: std::path::PathBuf| fs::metadata(p).unwrap().ino();
    assert_eq!(
        ino(store.root().join("cur").join(&src[0])),
        ino(store.root().join(".Archive/cur").join(&dst[0]))
    );
    assert!(files(&store.root().join(".Archive/tmp")).is_empty());

    // Copying into the same mailbox works too.
    let again = inbox.copy_to(&[a], inbox.as_ref()).unwrap();
    assert_eq!(again, vec![(a, uid(3))]);
    assert_eq!(inbox.read_message(uid(3)).unwrap(), MSG);
}

#[test]
fn list_create_delete() {
    let (_t, store) = store();
    store.create(&n("a/b/c")).unwrap();
    store.create(&n("Entw\u{fc}rfe")).unwrap();
    assert_eq!(
        store.create(&n("a/b")).unwrap_err().kind(),
        StoreErrorKind::AlreadyExists
    );
    assert_eq!(
        store.create(&MailboxName::inbox()).unwrap_err().kind(),
        StoreErrorKind::AlreadyExists
    );
    let long = "x".repeat(300);
    assert_eq!(
        store.create(&n(&long)).unwrap_err().kind(),
        StoreErrorKind::InvalidName
    );
    assert!(store.root().join(".Entw&APw-rfe/maildirfolder").exists());
    assert!(store.root().join(".a.b.c/cur").is_dir());

    let listed = |store: &MaildirStore| -> Vec<(String, bool)> {
        let mut v: Vec<(String, bool)> = store
            .list()
            .unwrap()
            .into_iter()
            .map(|e| (e.name.to_string(), e.selectable))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        listed(&store),
        [
            ("Entw\u{fc}rfe".to_owned(), true),
            ("INBOX".to_owned(), true),
            ("a".to_owned(), true),
            ("a/b".to_owned(), true),
            ("a/b/c".to_owned(), true),
        ]
    );

    let before = store.open(&n("a/b")).unwrap();
    let old_uv = before.uid_validity();
    store.delete(&n("a/b")).unwrap();
    // The open handle learns it is gone.
    assert_eq!(
        before.refresh().unwrap_err().kind(),
        StoreErrorKind::NotFound
    );
    assert_eq!(
        listed(&store),
        [
            ("Entw\u{fc}rfe".to_owned(), true),
            ("INBOX".to_owned(), true),
            ("a".to_owned(), true),
            ("a/b".to_owned(), false),
            ("a/b/c".to_owned(), true),
        ]
    );
    assert_eq!(
        store.open_maildir(&n("a/b")).unwrap_err().kind(),
        StoreErrorKind::NotFound
    );
    assert_eq!(
        store.delete(&n("a/b")).unwrap_err().kind(),
        StoreErrorKind::NotFound
    );
    // A \Noselect directory with children cannot be deleted.
    store.create(&n("p/q")).unwrap();
    fs::remove_dir(store.root().join(".p/cur")).unwrap();
    assert_eq!(
        store.delete(&n("p")).unwrap_err().kind(),
        StoreErrorKind::NotPossible
    );
    assert_eq!(
        store.delete(&n("nothing")).unwrap_err().kind(),
        StoreErrorKind::NotFound
    );
    assert_eq!(
        store.delete(&MailboxName::inbox()).unwrap_err().kind(),
        StoreErrorKind::NotPossible
    );
    // Created again: a new UIDVALIDITY.
    store.create(&n("a/b")).unwrap();
    assert_ne!(store.open(&n("a/b")).unwrap().uid_validity(), old_uv);
    assert!(
        files(store.root())
            .iter()
            .all(|f| !f.starts_with("DOVECOT-TRASHED"))
    );
}

#[test]
fn rename_moves_children_and_subscriptions() {
    let (_t, store) = store();
    store.create(&n("a/b")).unwrap();
    store.create(&n("a/b/c")).unwrap();
    store.create(&n("other")).unwrap();
    let ab = store.open(&n("a/b")).unwrap();
    let u = append(ab.as_ref(), MSG, Flags::default(), None);
    let uv = ab.uid_validity();
    store.set_subscribed(&n("a/b/c"), true).unwrap();
    store.set_subscribed(&n("other"), true).unwrap();

    assert_eq!(
        store.rename(&n("a/b"), &n("other")).unwrap_err().kind(),
        StoreErrorKind::AlreadyExists
    );
    assert_eq!(
        store.rename(&n("a/b"), &n("a/b/c/d")).unwrap_err().kind(),
        StoreErrorKind::NotPossible
    );
    assert_eq!(
        store.rename(&n("zz"), &n("yy")).unwrap_err().kind(),
        StoreErrorKind::NotFound
    );
    store.rename(&n("a/b"), &n("x/y")).unwrap();
    let names: Vec<String> = store
        .list()
        .unwrap()
        .into_iter()
        .map(|e| e.name.to_string())
        .collect();
    for want in ["x", "x/y", "x/y/c", "a", "other"] {
        assert!(names.contains(&want.to_owned()), "{want} in {names:?}");
    }
    assert!(!names.contains(&"a/b".to_owned()));
    let xy = store.open(&n("x/y")).unwrap();
    assert_eq!(xy.uid_validity(), uv);
    assert_eq!(xy.read_message(u).unwrap(), MSG);
    assert_eq!(store.subscriptions().unwrap(), vec![n("other"), n("x/y/c")]);
}

#[test]
fn renaming_inbox_moves_its_messages() {
    let (_t, store) = store();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    append(
        inbox.as_ref(),
        MSG,
        flags(SystemFlags::SEEN, &["Old"]),
        None,
    );
    append(inbox.as_ref(), b"Subject: 2\n\n2\n", Flags::default(), None);
    store.rename(&MailboxName::inbox(), &n("Before")).unwrap();
    assert_eq!(inbox.status().unwrap().messages, 0);
    let before = store.open(&n("Before")).unwrap();
    let snap = before.snapshot(false).unwrap();
    assert_eq!(snap.messages.len(), 2);
    assert_eq!(snap.messages[0].flags, flags(SystemFlags::SEEN, &["Old"]));
    assert_eq!(before.read_message(snap.messages[0].uid).unwrap(), MSG);
    // INBOX still works.
    assert_eq!(append(inbox.as_ref(), MSG, Flags::default(), None), uid(3));
}

#[test]
fn subscriptions_round_trip() {
    let (_t, store) = store();
    store.set_subscribed(&n("dot.ted"), true).unwrap();
    store.set_subscribed(&n("INBOX"), true).unwrap();
    store.set_subscribed(&n("a/\u{fc}"), true).unwrap();
    store.set_subscribed(&n("INBOX"), false).unwrap();
    assert_eq!(
        store.subscriptions().unwrap(),
        vec![n("dot.ted"), n("a/\u{fc}")]
    );
    assert_eq!(
        fs::read_to_string(store.root().join("subscriptions")).unwrap(),
        "V\t2\n\ndot\\2eted\na\t&APw-\n"
    );
}

#[test]
fn every_open_shares_one_mailbox() {
    let (_t, store) = store();
    let a = store.open_maildir(&MailboxName::inbox()).unwrap();
    let other = MaildirStore::new(store.root().join("..").join("Maildir")).unwrap();
    let b = other.open_maildir(&n("inbox")).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
}

#[test]
fn recent_belongs_to_the_first_session() {
    let (_t, store) = store();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    append(inbox.as_ref(), MSG, Flags::default(), None);
    append(inbox.as_ref(), MSG, Flags::default(), None);

    let other_store = MaildirStore::new(store.root().to_owned()).unwrap();
    let examine =
        MailboxView::open(other_store.open(&MailboxName::inbox()).unwrap(), true).unwrap();
    assert_eq!(examine.recent_count(), 2);

    let first = MailboxView::open(store.open(&MailboxName::inbox()).unwrap(), false).unwrap();
    let second =
        MailboxView::open(other_store.open(&MailboxName::inbox()).unwrap(), false).unwrap();
    assert_eq!(first.recent_count(), 2);
    assert_eq!(second.recent_count(), 0);
    // Claimed messages leave new/ for cur/ (with the empty info part), as in Dovecot.
    assert!(files(&store.root().join("new")).is_empty());
    let cur = files(&store.root().join("cur"));
    assert!(cur.iter().all(|f| f.ends_with(":2,")), "{cur:?}");
    assert_eq!(inbox.status().unwrap().recent, 0);

    // A new message goes to whichever session syncs first.
    append(inbox.as_ref(), MSG, Flags::default(), None);
    let mut second = second;
    let mut first = first;
    let events = second.sync(true).unwrap();
    assert!(events.contains(&crate::ViewEvent::Exists(3)));
    assert!(events.contains(&crate::ViewEvent::Recent(1)));
    let events = first.sync(true).unwrap();
    assert!(events.contains(&crate::ViewEvent::Recent(2)), "{events:?}");
}

#[derive(Default)]
struct Counter(AtomicUsize);

impl ChangeListener for Counter {
    fn mailbox_changed(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn listeners_hear_of_changes_and_die_quietly() {
    let (_t, store) = store();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    let counter = Arc::new(Counter::default());
    let weak: Weak<dyn ChangeListener> =
        Arc::downgrade(&(counter.clone() as Arc<dyn ChangeListener>));
    inbox.watch(weak);
    let u = append(inbox.as_ref(), MSG, Flags::default(), None);
    assert_eq!(counter.0.load(Ordering::SeqCst), 1);
    inbox
        .store_flags(&[u], &FlagChange::Add(flags(SystemFlags::SEEN, &[])))
        .unwrap();
    assert_eq!(counter.0.load(Ordering::SeqCst), 2);
    // External change picked up by refresh.
    fs::write(store.root().join("new/1.M1P1.ext"), b"Subject: x\n\n").unwrap();
    backdate_dir(&store.root().join("new"));
    inbox.refresh().unwrap();
    assert_eq!(counter.0.load(Ordering::SeqCst), 3);
    drop(counter);
    append(inbox.as_ref(), MSG, Flags::default(), None);
}

/// Moves a directory's mtime into the past, so a change made within the same clock tick as the
/// last scan is still noticed (tests run faster than mtime granularity).
fn backdate_dir(dir: &Path) {
    let f = fs::File::open(dir).unwrap();
    super::io::set_times(&f, SystemTime::now() - Duration::from_secs(30)).unwrap();
}

#[test]
fn refresh_sees_other_programs() {
    let (_t, store) = store();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    let u1 = append(inbox.as_ref(), MSG, flags(SystemFlags::SEEN, &[]), None);
    let u2 = append(inbox.as_ref(), MSG, flags(SystemFlags::SEEN, &[]), None);
    let mut view = MailboxView::open(inbox.clone(), false).unwrap();
    let cursor = inbox.snapshot(false).unwrap().cursor;

    // A delivery by another program (two files, named so that Dovecot's order differs from
    // readdir's), a flag change by a mail client, a removal.
    fs::write(
        store.root().join("new/1700000001.M2P9.mx"),
        b"Subject: late\n\nb\n",
    )
    .unwrap();
    fs::write(
        store.root().join("new/1700000000.M5P9.mx"),
        b"Subject: early\n\nb\n",
    )
    .unwrap();
    let cur = files(&store.root().join("cur"));
    let renamed = cur[0].replace(":2,S", ":2,FS");
    fs::rename(
        store.root().join("cur").join(&cur[0]),
        store.root().join("cur").join(&renamed),
    )
    .unwrap();
    fs::remove_file(store.root().join("cur").join(&cur[1])).unwrap();
    backdate_dir(&store.root().join("new"));
    backdate_dir(&store.root().join("cur"));

    inbox.refresh().unwrap();
    let ch = inbox.changes_since(cursor, false).unwrap();
    assert_eq!(ch.expunged.iter().collect::<Vec<_>>(), vec![u2]);
    assert_eq!(ch.flags.len(), 1);
    assert_eq!(ch.flags[0].uid, u1);
    assert!(ch.flags[0].flags.contains(&Flag::Flagged));
    let appended: Vec<u32> = ch.appended.iter().map(|m| m.uid.get()).collect();
    assert_eq!(appended, [3, 4]);
    assert_eq!(ch.recent, vec![uid(3), uid(4)]);
    // The earlier file name got the lower UID.
    assert_eq!(
        inbox.read_message(uid(3)).unwrap(),
        b"Subject: early\r\n\r\nb\r\n"
    );
    assert!(uidlist_text(store.root()).contains(" :1700000000.M5P9.mx\n"));

    let events = view.sync(true).unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, crate::ViewEvent::Expunge(s, _) if s.get() == 2))
    );
    assert!(events.contains(&crate::ViewEvent::Exists(3)));

    // Nothing changed: refresh is cheap and reports nothing.
    let cursor = inbox.snapshot(false).unwrap().cursor;
    inbox.refresh().unwrap();
    let ch = inbox.changes_since(cursor, false).unwrap();
    assert!(ch.expunged.is_empty() && ch.appended.is_empty() && ch.flags.is_empty());
}

#[test]
fn read_after_an_external_rename_finds_the_file() {
    let (_t, store) = store();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    let u = append(inbox.as_ref(), MSG, flags(SystemFlags::SEEN, &[]), None);
    let cur = files(&store.root().join("cur"));
    fs::rename(
        store.root().join("cur").join(&cur[0]),
        store
            .root()
            .join("cur")
            .join(cur[0].replace(":2,S", ":2,RS")),
    )
    .unwrap();
    // No refresh: the read notices the file moved and rescans.
    assert_eq!(inbox.read_message(u).unwrap(), MSG);
    // STORE on a file renamed elsewhere retries after a rescan.
    let cur = files(&store.root().join("cur"));
    fs::rename(
        store.root().join("cur").join(&cur[0]),
        store
            .root()
            .join("cur")
            .join(cur[0].replace(":2,RS", ":2,S")),
    )
    .unwrap();
    let changed = inbox
        .store_flags(&[u], &FlagChange::Add(flags(SystemFlags::DRAFT, &[])))
        .unwrap();
    assert_eq!(changed.len(), 1);
    assert!(files(&store.root().join("cur"))[0].ends_with(":2,DS"));
    // A file deleted elsewhere is simply expunged.
    fs::remove_file(
        store
            .root()
            .join("cur")
            .join(&files(&store.root().join("cur"))[0]),
    )
    .unwrap();
    assert_eq!(
        inbox.read_message(u).unwrap_err().kind(),
        StoreErrorKind::Expunged
    );
}

/// A STORE of thousands of messages: every file gets its new name, the index records exactly
/// those names and flags, files another program renamed meanwhile are found again and changed
/// too, and a process reading the mailbox from disk afterwards sees the same.
#[test]
fn a_store_of_thousands_renames_every_file_and_records_it() {
    let (_t, store) = store();
    let cur = store.root().join("cur");
    let count = 5000u32;
    for i in 0..count {
        let name = format!("{}.M{i}P1.example,S=10:2,", 1_600_000_000 + i);
        fs::write(cur.join(name), b"Subject: x\n\nbody\n").unwrap();
    }
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    let before = inbox.snapshot(false).unwrap();
    assert_eq!(before.messages.len(), count as usize);
    // An MUA flags three messages behind the index's back, one in the first batch, one in the
    // middle and the last.
    let elsewhere = [7u32, 2500, count - 1];
    for i in elsewhere {
        let name = format!("{}.M{i}P1.example,S=10:2,", 1_600_000_000 + i);
        fs::rename(cur.join(&name), cur.join(format!("{name}F"))).unwrap();
    }
    let all: Vec<Uid> = before.messages.iter().map(|m| m.uid).collect();
    let changed = inbox
        .store_flags(&all, &FlagChange::Add(flags(SystemFlags::SEEN, &[])))
        .unwrap();
    assert_eq!(changed.len(), count as usize);
    let expect = |i: u32| {
        if elsewhere.contains(&i) {
            flags(SystemFlags::SEEN.union(SystemFlags::FLAGGED), &[])
        } else {
            flags(SystemFlags::SEEN, &[])
        }
    };
    let on_disk = files(&cur);
    assert_eq!(on_disk.len(), count as usize);
    for i in 0..count {
        let info = if elsewhere.contains(&i) { "FS" } else { "S" };
        let name = format!("{}.M{i}P1.example,S=10:2,{info}", 1_600_000_000 + i);
        assert!(on_disk.binary_search(&name).is_ok(), "{name} missing");
    }
    let mut reported: Vec<(Uid, Flags)> = changed.into_iter().map(|m| (m.uid, m.flags)).collect();
    reported.sort_by_key(|(u, _)| *u);
    let after = inbox.snapshot(false).unwrap();
    for (i, m) in after.messages.iter().enumerate() {
        assert_eq!(m.uid, all[i]);
        assert_eq!(m.flags, expect(i as u32), "message {i}");
        assert_eq!(reported[i], (m.uid, m.flags.clone()));
        assert_eq!(
            inbox.read_message(m.uid).unwrap(),
            b"Subject: x\r\n\r\nbody\r\n"
        );
    }
    // The registry keeps a mailbox only while someone has it open: this reads the disk.
    drop(inbox);
    let again = MaildirStore::new(store.root().to_owned()).unwrap();
    let reread = again
        .open(&MailboxName::inbox())
        .unwrap()
        .snapshot(false)
        .unwrap();
    let flags_of = |s: &crate::Snapshot| -> Vec<(Uid, Flags)> {
        s.messages
            .iter()
            .map(|m| (m.uid, m.flags.clone()))
            .collect()
    };
    assert_eq!(flags_of(&reread), flags_of(&after));
}

#[test]
fn uidlist_grows_in_place_and_stale_locks_are_broken() {
    let (_t, store) = store();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    append(inbox.as_ref(), MSG, Flags::default(), None);
    let ino1 = fs::metadata(store.root().join("dovecot-uidlist"))
        .unwrap()
        .ino();
    // A crashed process left its lock behind (a pid that cannot exist, two minutes old).
    let lock = store.root().join("dovecot-uidlist.lock");
    fs::write(&lock, format!("2147483646:{}", filename::raw_hostname())).unwrap();
    let f = fs::File::options().write(true).open(&lock).unwrap();
    super::io::set_times(&f, SystemTime::now() - Duration::from_secs(120)).unwrap();
    let u2 = append(inbox.as_ref(), MSG, Flags::default(), None);
    assert_eq!(u2, uid(2));
    assert!(!lock.exists());
    let ino2 = fs::metadata(store.root().join("dovecot-uidlist"))
        .unwrap()
        .ino();
    // The new record went to the end of the same file.
    assert_eq!(ino1, ino2);
    assert!(uidlist_text(store.root()).contains("\n2 :"));
    assert!(!store.root().join("dovecot-uidlist.tmp").exists());
}

#[test]
fn committed_uids_survive_a_restart_and_are_not_reused() {
    let (_t, store) = store();
    let path = store.root().to_owned();
    {
        let inbox = store.open(&MailboxName::inbox()).unwrap();
        for _ in 0..3 {
            append(inbox.as_ref(), MSG, Flags::default(), None);
        }
        let deleted = flags(SystemFlags::DELETED, &[]);
        inbox
            .store_flags(&[uid(3)], &FlagChange::Add(deleted))
            .unwrap();
        inbox.expunge(None).unwrap();
    }
    // A file that made it into new/ without a UID (crash between rename and uidlist write).
    fs::write(path.join("new/1800000000.M1P1.crash,S=3,W=4"), b"x\ny").unwrap();
    // Force a rebuild from disk, as a new process would.
    super::registry_forget(std::slice::from_ref(&path));
    let again = MaildirStore::new(path.clone()).unwrap();
    let inbox = again.open(&MailboxName::inbox()).unwrap();
    let uids: Vec<u32> = inbox
        .snapshot(false)
        .unwrap()
        .messages
        .iter()
        .map(|m| m.uid.get())
        .collect();
    assert_eq!(uids, [1, 2, 4]);
    assert_eq!(append(inbox.as_ref(), MSG, Flags::default(), None), uid(5));
}

#[test]
fn saved_index_repairs_a_torn_uidlist() {
    let (_t, store) = store();
    let path = store.root().to_owned();
    let old_uv = {
        let inbox = store.open(&MailboxName::inbox()).unwrap();
        for _ in 0..3 {
            append(inbox.as_ref(), MSG, Flags::default(), None);
        }
        inbox.uid_validity()
    };
    // As at a restart: the last user is gone, the mailbox saves its index on the way out.
    super::release_idle_mailboxes(&path);
    let text = uidlist_text(&path);
    fs::write(path.join("dovecot-uidlist"), &text[..text.len() - 10]).unwrap();
    let inbox = MaildirStore::new(path.clone())
        .unwrap()
        .open(&MailboxName::inbox())
        .unwrap();
    assert_eq!(inbox.uid_validity(), old_uv);
    let uids: Vec<u32> = inbox
        .snapshot(false)
        .unwrap()
        .messages
        .iter()
        .map(|m| m.uid.get())
        .collect();
    // The index still knew the torn record: the message keeps UID 3, and the uidlist is
    // whole again, so Dovecot agrees.
    assert_eq!(uids, [1, 2, 3]);
    let repaired = uidlist_text(&path);
    assert!(repaired.lines().any(|l| l.starts_with("3 ")), "{repaired}");
    assert_eq!(append(inbox.as_ref(), MSG, Flags::default(), None), uid(4));
}

#[test]
fn damaged_uidlist_recovers() {
    let (_t, store) = store();
    let path = store.root().to_owned();
    let old_uv = {
        let inbox = store.open(&MailboxName::inbox()).unwrap();
        for _ in 0..3 {
            append(inbox.as_ref(), MSG, Flags::default(), None);
        }
        inbox.uid_validity()
    };
    let text = uidlist_text(&path);

    // Truncated in the middle of the last line: the first records keep their UIDs, the torn
    // one gets a new UID above it.
    let cut = text.len() - 10;
    fs::write(path.join("dovecot-uidlist"), &text[..cut]).unwrap();
    super::registry_forget(std::slice::from_ref(&path));
    // Without our saved index (that case is `saved_index_repairs_a_torn_uidlist`).
    let _ = fs::remove_file(path.join(super::persist::INDEX_FILE));
    let inbox = MaildirStore::new(path.clone())
        .unwrap()
        .open(&MailboxName::inbox())
        .unwrap();
    assert_eq!(inbox.uid_validity(), old_uv);
    let uids: Vec<u32> = inbox
        .snapshot(false)
        .unwrap()
        .messages
        .iter()
        .map(|m| m.uid.get())
        .collect();
    assert_eq!(uids, [1, 2, 4]);
    drop(inbox);

    // Garbage, but our saved index still knows the UIDs: kept, and the uidlist rewritten.
    fs::write(
        path.join("dovecot-uidlist"),
        b"\x00\x01garbage\nmore garbage",
    )
    .unwrap();
    super::registry_forget(std::slice::from_ref(&path));
    let inbox = MaildirStore::new(path.clone())
        .unwrap()
        .open(&MailboxName::inbox())
        .unwrap();
    assert_eq!(inbox.uid_validity(), old_uv);
    let uids: Vec<u32> = inbox
        .snapshot(false)
        .unwrap()
        .messages
        .iter()
        .map(|m| m.uid.get())
        .collect();
    assert_eq!(uids, [1, 2, 4]);
    assert!(
        uidlist_text(&path).starts_with(&format!("3 V{old_uv} N5 G")),
        "{}",
        uidlist_text(&path)
    );
    drop(inbox);

    // Garbage and no index: no UIDVALIDITY to trust, so a new one.
    fs::write(
        path.join("dovecot-uidlist"),
        b"\x00\x01garbage\nmore garbage",
    )
    .unwrap();
    super::registry_forget(std::slice::from_ref(&path));
    let _ = fs::remove_file(path.join(super::persist::INDEX_FILE));
    let inbox = MaildirStore::new(path.clone())
        .unwrap()
        .open(&MailboxName::inbox())
        .unwrap();
    assert_ne!(inbox.uid_validity(), old_uv);
    assert_eq!(inbox.status().unwrap().messages, 3);
    assert!(uidlist_text(&path).starts_with(&format!("3 V{} N4 G", inbox.uid_validity())));

    // Lost while open: rewritten from memory, same UIDVALIDITY and UIDs.
    let uv = inbox.uid_validity();
    fs::remove_file(path.join("dovecot-uidlist")).unwrap();
    inbox.refresh().unwrap();
    assert_eq!(append(inbox.as_ref(), MSG, Flags::default(), None), uid(4));
    let text = uidlist_text(&path);
    assert!(text.starts_with(&format!("3 V{uv} N4 G")), "{text}");
    assert!(text.contains("\n4 :"), "{text}");
}

#[test]
fn garbage_keywords_and_stray_files_do_not_hurt() {
    let (_t, store) = store();
    fs::write(
        store.root().join("dovecot-keywords"),
        b"zz top\n0 Good\n1\n\xff\n",
    )
    .unwrap();
    fs::write(store.root().join("cur/1.M1P1.h:2,Sab"), b"Subject: x\n\n").unwrap();
    fs::write(store.root().join("cur/.hidden"), b"x").unwrap();
    fs::create_dir(store.root().join("cur/stray-dir")).unwrap();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    let snap = inbox.snapshot(false).unwrap();
    assert_eq!(snap.messages.len(), 1);
    assert_eq!(
        snap.messages[0].flags,
        flags(SystemFlags::SEEN, &["Good", "unknown-1"])
    );
    assert_eq!(inbox.message_info(uid(1)).unwrap().size, 14);
    // A new keyword does not take the letter of the lost one.
    inbox
        .store_flags(
            &[uid(1)],
            &FlagChange::Add(flags(SystemFlags::empty(), &["New"])),
        )
        .unwrap();
    assert_eq!(
        fs::read_to_string(store.root().join("dovecot-keywords")).unwrap(),
        "0 Good\n1 unknown-1\n2 New\n"
    );
}

#[test]
fn views_of_one_mailbox_see_each_others_changes() {
    let (_t, store) = store();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    let u = append(inbox.as_ref(), MSG, Flags::default(), None);
    let mut a = MailboxView::open(inbox.clone(), false).unwrap();
    let mut b = MailboxView::open(store.open(&MailboxName::inbox()).unwrap(), false).unwrap();
    let states = a
        .mailbox()
        .store_flags(&[u], &FlagChange::Add(flags(SystemFlags::SEEN, &[])))
        .unwrap();
    a.note_own_changes(&states);
    assert!(a.sync(true).unwrap().is_empty());
    let events = b.sync(true).unwrap();
    assert!(matches!(&events[..], [crate::ViewEvent::Flags { uid, .. }] if *uid == u));
    let _ = ChangeCursor::default();
}

/// Views opened at the same state share one message list; changes each sees go into its own
/// small overlay, and a view opened after a change gets the new list.
#[test]
fn views_share_one_message_list() {
    let (_t, store) = store();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    for _ in 0..20 {
        append(inbox.as_ref(), MSG, Flags::default(), None);
    }
    let mut a = MailboxView::open(inbox.clone(), false).unwrap();
    let mut b = MailboxView::open(inbox.clone(), true).unwrap();
    assert!(a.messages().shares_with(b.messages()));
    let states = a
        .mailbox()
        .store_flags(
            &[uid(3)],
            &FlagChange::Add(flags(SystemFlags::FLAGGED, &[])),
        )
        .unwrap();
    a.note_own_changes(&states);
    assert_eq!(b.sync(true).unwrap().len(), 1);
    assert!(
        a.messages().shares_with(b.messages()),
        "changes live in the overlays"
    );
    let c = MailboxView::open(inbox.clone(), true).unwrap();
    assert!(!c.messages().shares_with(a.messages()));
    let flagged = |v: &MailboxView| {
        v.messages()
            .iter()
            .filter(|m| m.flags.system.contains(SystemFlags::FLAGGED))
            .map(|m| m.uid)
            .collect::<Vec<_>>()
    };
    assert_eq!(flagged(&a), [uid(3)]);
    assert_eq!(flagged(&b), [uid(3)]);
    assert_eq!(flagged(&c), [uid(3)]);
    // An expunge seen by one view leaves the shared list alone.
    inbox
        .store_flags(
            &[uid(5)],
            &FlagChange::Add(flags(SystemFlags::DELETED, &[])),
        )
        .unwrap();
    inbox.expunge(None).unwrap();
    assert!(
        b.sync(true)
            .unwrap()
            .contains(&crate::ViewEvent::Expunge(SeqNum::new(5).unwrap(), uid(5)))
    );
    assert_eq!(b.exists(), 19);
    assert_eq!(a.exists(), 20);
    assert_eq!(
        a.sync(true).unwrap()[0],
        crate::ViewEvent::Expunge(SeqNum::new(5).unwrap(), uid(5))
    );
}

/// A mailbox of "another backend": it forwards to a Maildir mailbox but cannot be downcast to
/// one, so copies to it go through `begin_append`.
struct Foreign(Arc<dyn Mailbox>);

impl Mailbox for Foreign {
    fn name(&self) -> MailboxName {
        self.0.name()
    }
    fn uid_validity(&self) -> mail_types::UidValidity {
        self.0.uid_validity()
    }
    fn refresh(&self) -> crate::Result<()> {
        self.0.refresh()
    }
    fn snapshot(&self, claim: bool) -> crate::Result<crate::Snapshot> {
        self.0.snapshot(claim)
    }
    fn changes_since(&self, c: ChangeCursor, claim: bool) -> crate::Result<crate::Changes> {
        self.0.changes_since(c, claim)
    }
    fn status(&self) -> crate::Result<crate::MailboxStatus> {
        self.0.status()
    }
    fn message_info(&self, uid: Uid) -> crate::Result<crate::MessageInfo> {
        self.0.message_info(uid)
    }
    fn read_message(&self, uid: Uid) -> crate::Result<Vec<u8>> {
        self.0.read_message(uid)
    }
    fn store_flags(&self, uids: &[Uid], c: &FlagChange) -> crate::Result<Vec<crate::MessageState>> {
        self.0.store_flags(uids, c)
    }
    fn expunge(&self, only: Option<&[Uid]>) -> crate::Result<Vec<Uid>> {
        self.0.expunge(only)
    }
    fn begin_append(&self) -> crate::Result<Box<dyn crate::AppendWriter>> {
        self.0.begin_append()
    }
    fn copy_to(&self, uids: &[Uid], dest: &dyn Mailbox) -> crate::Result<Vec<(Uid, Uid)>> {
        self.0.copy_to(uids, dest)
    }
    fn watch(&self, l: Weak<dyn ChangeListener>) {
        self.0.watch(l)
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[test]
fn copy_to_another_backend_reads_and_appends() {
    let (_t, store) = store();
    store.create(&n("Other")).unwrap();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    let other = Foreign(store.open(&n("Other")).unwrap());
    let a = append(
        inbox.as_ref(),
        MSG,
        flags(SystemFlags::ANSWERED, &["K"]),
        Some(1_234_567_890),
    );
    let pairs = inbox.copy_to(&[a], &other).unwrap();
    assert_eq!(pairs, vec![(a, uid(1))]);
    assert_eq!(other.read_message(uid(1)).unwrap(), MSG);
    assert_eq!(
        other.message_info(uid(1)).unwrap().internal_date,
        1_234_567_890
    );
    assert_eq!(
        other.snapshot(false).unwrap().messages[0].flags,
        flags(SystemFlags::ANSWERED, &["K"])
    );
    let src = files(&store.root().join("cur"));
    let dst = files(&store.root().join(".Other/cur"));
    assert_ne!(
        fs::metadata(store.root().join("cur").join(&src[0]))
            .unwrap()
            .ino(),
        fs::metadata(store.root().join(".Other/cur").join(&dst[0]))
            .unwrap()
            .ino()
    );
}

#[test]
fn concurrent_sessions_keep_uids_unique() {
    let (_t, store) = store();
    let root = store.root().to_owned();
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let root = root.clone();
            std::thread::spawn(move || {
                let store = MaildirStore::new(root).unwrap();
                let inbox = store.open(&MailboxName::inbox()).unwrap();
                let mut view = MailboxView::open(inbox.clone(), false).unwrap();
                let mut mine = Vec::new();
                for i in 0..25 {
                    let body = format!("Subject: {t}-{i}\r\n\r\nx\r\n");
                    let u = append(inbox.as_ref(), body.as_bytes(), Flags::default(), None);
                    mine.push((u, body));
                    if i % 3 == 0 {
                        let f = flags(SystemFlags::SEEN, &[&format!("t{t}")]);
                        inbox.store_flags(&[u], &FlagChange::Add(f)).unwrap();
                    }
                    if i % 4 == 0 {
                        view.sync(true).unwrap();
                    }
                }
                mine
            })
        })
        .collect();
    let mut all: Vec<(Uid, String)> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    all.sort();
    assert_eq!(all.len(), 100);
    assert!(
        all.windows(2).all(|w| w[0].0 < w[1].0),
        "a UID was handed out twice"
    );

    // What a fresh process reads from disk is the same.
    super::registry_forget(std::slice::from_ref(&root));
    let inbox = MaildirStore::new(root.clone())
        .unwrap()
        .open(&MailboxName::inbox())
        .unwrap();
    let snap = inbox.snapshot(false).unwrap();
    assert_eq!(snap.messages.len(), 100);
    for ((u, body), m) in all.iter().zip(&snap.messages) {
        assert_eq!(*u, m.uid);
        assert_eq!(inbox.read_message(*u).unwrap(), body.as_bytes());
    }
    assert_eq!(uidlist_text(&root).lines().count(), 101);
}

/// Whatever is on disk, parsing never panics and never hands out a UID twice.
mod damage {
    use proptest::prelude::*;

    use super::super::{filename, keywords, names, subscriptions, uidlist};
    use mail_types::MailboxName;

    proptest! {
        #[test]
        fn uidlist_parse_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let parsed = uidlist::parse(&bytes, std::path::Path::new("x"));
            let uids: Vec<u32> = parsed.list.records.iter().map(|r| r.uid).collect();
            prop_assert!(uids.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(uids.iter().all(|&u| u < parsed.list.next_uid));
        }

        #[test]
        fn uidlist_text_lines_are_handled(lines in proptest::collection::vec("[0-9A-Z :a-z,=.\u{e9}/]{0,20}", 0..12)) {
            let text = lines.join("\n");
            let parsed = uidlist::parse(text.as_bytes(), std::path::Path::new("x"));
            // Whatever was accepted survives a write and a second read unchanged.
            if parsed.header_ok {
                let again = uidlist::parse(&uidlist::serialize(&parsed.list), std::path::Path::new("x"));
                prop_assert_eq!(again.list.records, parsed.list.records);
                prop_assert!(again.list.next_uid >= parsed.list.next_uid);
            }
        }

        #[test]
        fn file_names_are_total(name in "\\PC{0,40}") {
            let _ = filename::base(&name);
            let _ = filename::size_field(&name, b'S');
            let (s, l) = filename::flags(&name);
            let set = filename::with_flags(&name, s, l);
            prop_assert_eq!(filename::flags(&set), (s, l));
            let _ = filename::sort_cmp(&name, "1.M1P1.h");
        }

        #[test]
        fn keyword_files_are_total(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let map = keywords::KeywordMap::parse(&bytes, std::path::Path::new("k"));
            let again = keywords::KeywordMap::parse(&map.serialize(), std::path::Path::new("k"));
            prop_assert_eq!(again.serialize(), map.serialize());
        }

        #[test]
        fn folder_names_round_trip(name in "[a-zA-Z0-9 .\\\\~&\u{e4}\u{4e2d}\u{1f600}-]{1,12}(/[a-zA-Z0-9 .\\\\~&\u{e4}-]{1,8}){0,3}") {
            let _ = names::mailbox_of_dir(&name);
            if let Ok(mailbox) = MailboxName::new(&name)
                && let Ok(dir) = names::dir_name(&mailbox) {
                    if !mailbox.is_inbox() {
                        prop_assert_eq!(names::mailbox_of_dir(&dir), Some(mailbox.clone()));
                    }
                    let line = subscriptions::line_of(&mailbox);
                    prop_assert_eq!(subscriptions::name_of_line(&line, 2), Some(mailbox));
                }
        }
    }
}

#[test]
fn a_cold_scan_keeps_uidlist_uids_and_numbers_new_files_in_dovecot_order() {
    let (_t, store) = store();
    let root = store.root().to_owned();
    fs::write(
        root.join("dovecot-uidlist"),
        "3 V77 N13 G00112233445566778899aabbccddeeff\n\
         5 :1600000000.M2P1.h\n\
         9 W30 :1600000000.M1P1.h\n\
         12 :1600000000.M3P1.h\n",
    )
    .unwrap();
    for name in [
        "1600000000.M1P1.h:2,S",
        "1600000000.M2P1.h:2,F",
        "1700000002.M5P1.h:2,",
        "1700000001.M10P1.h:2,",
    ] {
        fs::write(root.join("cur").join(name), MSG).unwrap();
    }
    fs::write(root.join("new/1700000001.M9P1.h"), MSG).unwrap();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    let snap = inbox.snapshot(false).unwrap();
    let got: Vec<(u32, SystemFlags)> = snap
        .messages
        .iter()
        .map(|m| (m.uid.get(), m.flags.system))
        .collect();
    assert_eq!(
        got,
        [
            (5, SystemFlags::FLAGGED),
            (9, SystemFlags::SEEN),
            (13, SystemFlags::empty()),
            (14, SystemFlags::empty()),
            (15, SystemFlags::empty()),
        ]
    );
    // The new files by time, then microseconds: 1700000001.M9, 1700000001.M10, 1700000002.M5.
    let text = uidlist_text(&root);
    assert!(
        text.ends_with("13 :1700000001.M9P1.h\n14 :1700000001.M10P1.h\n15 :1700000002.M5P1.h\n"),
        "{text}"
    );
    assert!(text.contains("\n9 W30 :1600000000.M1P1.h\n"), "{text}");
    // The size the uidlist gave, since the name has none.
    assert_eq!(inbox.message_info(uid(9)).unwrap().size, 30);
    let status = inbox.status().unwrap();
    assert_eq!((status.uid_validity.get(), status.uid_next.get()), (77, 16));
}

#[test]
fn files_sharing_a_base_name_are_told_apart() {
    let (_t, store) = store();
    let root = store.root().to_owned();
    // Two different files with one base name: the second one listed (new/ is listed first)
    // gets a fresh name in new/.
    fs::write(root.join("cur/1600000000.M1P1.h:2,S"), MSG).unwrap();
    fs::write(
        root.join("new/1600000000.M1P1.h"),
        b"Subject: other\r\n\r\n",
    )
    .unwrap();
    // Hard links of one file are one message.
    fs::write(root.join("cur/1600000000.M2P1.h:2,S"), MSG).unwrap();
    fs::hard_link(
        root.join("cur/1600000000.M2P1.h:2,S"),
        root.join("new/1600000000.M2P1.h"),
    )
    .unwrap();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    assert_eq!(inbox.snapshot(false).unwrap().messages.len(), 3);
    let in_new = files(&root.join("new"));
    assert_eq!(in_new.len(), 3, "{in_new:?}");
    assert_eq!(in_new[..2], ["1600000000.M1P1.h", "1600000000.M2P1.h"]);
    assert_eq!(files(&root.join("cur")), ["1600000000.M2P1.h:2,S"]);
}

/// An index file whose checksums are right but one block of its file names does not decode
/// (what a bug in its writer would leave; bit rot fails the checksums): reading a message of
/// that block repairs the names from `dovecot-uidlist`, and every message keeps its UID, flags
/// and body.
#[test]
fn unreadable_file_names_in_the_index_are_repaired_from_the_uidlist() {
    let (_t, store) = store();
    let path = store.root().to_owned();
    let mut want = Vec::new();
    {
        let inbox = store.open(&MailboxName::inbox()).unwrap();
        for n in 0..150u32 {
            let f = match n % 3 {
                0 => flags(SystemFlags::SEEN, &[]),
                1 => flags(SystemFlags::FLAGGED, &["$Work"]),
                _ => Flags::default(),
            };
            let body = format!("Subject: {n}\r\n\r\nbody {n}\r\n");
            let u = append(inbox.as_ref(), body.as_bytes(), f.clone(), None);
            want.push((u, f, body));
        }
    }
    // As at a restart: the last user is gone, the mailbox saves its index on the way out.
    super::release_idle_mailboxes(&path);
    let index = path.join(super::persist::INDEX_FILE);
    let mut bytes = fs::read(&index).unwrap();
    assert!(mail_index::damage_reference_block(&mut bytes, 1));
    fs::write(&index, &bytes).unwrap();

    let again = MaildirStore::new(path.clone()).unwrap();
    let inbox = again.open(&MailboxName::inbox()).unwrap();
    // UID 100 is the 100th message: in the second block of 64.
    let (u, _, body) = &want[99];
    assert_eq!(inbox.read_message(*u).unwrap(), body.as_bytes());
    crate::testing::assert_holds(inbox.as_ref(), &want);
    // Nothing was added or renumbered: the next UID follows the last.
    assert_eq!(inbox.status().unwrap().uid_next.get(), 151);
}
