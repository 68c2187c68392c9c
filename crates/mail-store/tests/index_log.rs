//! The transaction log (`columba.index.log`) between "processes": two `MaildirMailbox`es opened
//! with `open_unshared` on one Maildir share nothing in memory, only the files, as two server
//! processes do. A change in one reaches the other with the same mod-sequence; a restart after a
//! crash replays the log instead of listing directories; a torn tail is cut off; and every kind
//! of damaged log falls back to the mail files with UIDs and flags intact.
//!
//! The tests count this process's directory listings, so they run one at a time (`SERIAL`).

mod common;

use std::sync::{Arc, Mutex};

use mail_store::maildir::{self, LOG_FILE, MaildirMailbox, MaildirStore};
use mail_store::{ChangeCursor, FlagChange, Mailbox};
use mail_types::{Flags, MailboxName, SystemFlags, Uid};

static SERIAL: Mutex<()> = Mutex::new(());

fn store(root: &std::path::Path) -> MaildirStore {
    MaildirStore::new(root.to_owned()).unwrap()
}

fn process(root: &std::path::Path) -> Arc<MaildirMailbox> {
    store(root).open_unshared(&MailboxName::inbox()).unwrap()
}

fn append(mb: &MaildirMailbox, i: u32, flags: Flags) -> Uid {
    let mut w = mb.begin_append().unwrap();
    w.write(format!("Subject: {i}\r\n\r\nbody {i}\r\n").as_bytes())
        .unwrap();
    w.commit(flags, None).unwrap()
}

/// (UID, flags, modseq) of every message, and HIGHESTMODSEQ.
fn state(mb: &MaildirMailbox) -> (Vec<(u32, String, u64)>, u64) {
    let s = mb.snapshot(false).unwrap();
    let msgs = s
        .messages
        .iter()
        .map(|m| (m.uid.get(), format!("{:?}", m.flags), m.modseq.get()))
        .collect();
    (msgs, s.highest_modseq.get())
}

/// The UIDs of the messages, ascending.
fn uids(mb: &MaildirMailbox) -> Vec<Uid> {
    let snapshot = mb.snapshot(false).unwrap();
    snapshot.messages.iter().map(|m| m.uid).collect()
}

/// (UID, flags) only: what must survive any fallback to the mail files.
fn uids_and_flags(mb: &MaildirMailbox) -> Vec<(u32, String)> {
    state(mb).0.into_iter().map(|(u, f, _)| (u, f)).collect()
}

fn seen() -> Flags {
    Flags::new(SystemFlags::SEEN, [])
}

fn flagged() -> FlagChange {
    FlagChange::Add(Flags::new(SystemFlags::FLAGGED, []))
}

type TwoProcesses = (
    tempfile::TempDir,
    std::path::PathBuf,
    Arc<MaildirMailbox>,
    Arc<MaildirMailbox>,
);

/// Two "processes" on a new Maildir.
fn two_processes() -> TwoProcesses {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("Maildir");
    let a = process(&root);
    let b = process(&root);
    (tmp, root, a, b)
}

/// [`two_processes`], the first having appended `n` messages, seen by both.
fn two_processes_with_messages(n: u32) -> TwoProcesses {
    let (tmp, root, a, b) = two_processes();
    for i in 0..n {
        append(&a, i, Flags::default());
    }
    b.refresh().unwrap();
    (tmp, root, a, b)
}

/// A STORE on `uid` in `a` reaches `b` as a change since its cursor, with a's modseq.
fn store_in_a_is_seen_in_b(a: &MaildirMailbox, b: &MaildirMailbox, uid: u32) {
    let before = b.snapshot(false).unwrap().cursor;
    let stored = a
        .store_flags(&[Uid::new(uid).unwrap()], &flagged())
        .unwrap();
    assert_eq!(stored.len(), 1);
    b.refresh().unwrap();
    let changes = b.changes_since(before, false).unwrap();
    assert_eq!(changes.flags.len(), 1);
    assert_eq!(changes.flags[0].uid.get(), uid);
    assert_eq!(changes.flags[0].modseq, stored[0].modseq);
    assert_eq!(changes.flags[0].flags, stored[0].flags);
}

#[test]
fn a_change_reaches_the_other_process_with_its_modseq() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (_tmp, _root, a, b) = two_processes();
    for i in 0..5 {
        append(&a, i, if i % 2 == 0 { seen() } else { Flags::default() });
    }
    let cursor = ChangeCursor(b.snapshot(false).unwrap().cursor.0);
    let scans = maildir::directory_scans();
    b.refresh().unwrap();
    assert_eq!(state(&b), state(&a), "appends arrive with their modseqs");
    assert_eq!(
        maildir::directory_scans(),
        scans,
        "the log, not a scan, told b"
    );
    assert!(b.log_stats().replayed > 0);

    // STORE in a: b reports the same modseq, as a change since its cursor.
    store_in_a_is_seen_in_b(&a, &b, 2);
    assert_eq!(state(&b), state(&a));
    let since_start = b.changes_since(cursor, false).unwrap();
    assert_eq!(since_start.appended.len(), 5);

    // EXPUNGE in b: a learns it with b's modseq, and VANISHED-style history has it.
    let at = a.snapshot(false).unwrap().cursor;
    b.store_flags(
        &[Uid::new(3).unwrap()],
        &FlagChange::Add(Flags::new(SystemFlags::DELETED, [])),
    )
    .unwrap();
    assert_eq!(b.expunge(None).unwrap(), [Uid::new(3).unwrap()]);
    a.refresh().unwrap();
    let changes = a.changes_since(at, false).unwrap();
    assert_eq!(changes.expunged.runs(), [(3, 3)]);
    assert_eq!(state(&a), state(&b));

    // Appends from both sides interleave without a reused UID or modseq.
    let u1 = append(&b, 10, Flags::default());
    let u2 = append(&a, 11, Flags::default());
    assert!(u2 > u1);
    a.refresh().unwrap();
    b.refresh().unwrap();
    assert_eq!(state(&a), state(&b));
    assert_eq!(a.log_stats().recoveries + b.log_stats().recoveries, 0);
}

#[test]
fn recent_goes_to_one_process_only() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (_tmp, _root, a, b) = two_processes_with_messages(1);
    let claimed_a = a.snapshot(true).unwrap().recent;
    let claimed_b = b.snapshot(true).unwrap().recent;
    assert_eq!(
        claimed_a.len() + claimed_b.len(),
        1,
        "{claimed_a:?} {claimed_b:?}"
    );
}

/// A restarted process (the first one died without saving its index) replays the log and lists
/// no directory; with a torn record at the end, it cuts it off and still needs no scan.
#[test]
fn a_restart_replays_the_log_and_cuts_a_torn_tail() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("Maildir");
    let a = process(&root);
    for i in 0..4 {
        append(&a, i, Flags::default());
    }
    a.store_flags(&[Uid::new(1).unwrap()], &flagged()).unwrap();
    let expected = state(&a);
    // kill -9: nothing saved on the way out.
    std::mem::forget(a);
    let log = root.join(LOG_FILE);
    let whole = std::fs::metadata(&log).unwrap().len();
    let mut bytes = std::fs::read(&log).unwrap();
    // Half of a record, as a write cut short leaves it.
    bytes.extend_from_slice(&[40, 0, 0, 0, 1, 2, 3, 4, 1, 9, 9]);
    std::fs::write(&log, &bytes).unwrap();

    let scans = maildir::directory_scans();
    let b = process(&root);
    // The records are all there; HIGHESTMODSEQ moves to the saved ceiling, since a cut log may
    // have lost mod-sequences a client saw.
    let (messages, highest) = state(&b);
    assert_eq!(messages, expected.0);
    assert!(highest > expected.1);
    assert_eq!(maildir::directory_scans(), scans, "replayed, not rescanned");
    let stats = b.log_stats();
    assert_eq!(stats.recoveries, 0);
    assert!(stats.replayed >= 5, "{stats:?}");
    // The torn bytes are gone; what follows the last whole record is b's own (the raise).
    let now = std::fs::read(&log).unwrap();
    let whole = whole as usize;
    assert_eq!(now[..whole], bytes[..whole]);
    assert!(!now[whole..].starts_with(&bytes[whole..]), "torn tail cut");
    // The cut log takes new records.
    b.store_flags(&[Uid::new(2).unwrap()], &flagged()).unwrap();
    let expected = state(&b);
    std::mem::forget(b);
    assert_eq!(state(&process(&root)), expected);
}

/// Builds a mailbox whose log holds changes the main index does not, then leaves it as a
/// crashed process would. Returns the state a client must see.
fn crashed_mailbox(root: &std::path::Path) -> (Vec<(u32, String)>, u64) {
    let a = process(root);
    for i in 0..6 {
        append(&a, i, if i % 3 == 0 { seen() } else { Flags::default() });
    }
    a.store_flags(&[Uid::new(2).unwrap(), Uid::new(4).unwrap()], &flagged())
        .unwrap();
    a.store_flags(
        &[Uid::new(5).unwrap()],
        &FlagChange::Add(Flags::new(SystemFlags::DELETED, [])),
    )
    .unwrap();
    a.expunge(None).unwrap();
    let expected = (uids_and_flags(&a), state(&a).1);
    std::mem::forget(a);
    expected
}

#[test]
fn a_damaged_log_falls_back_to_the_mail_files() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let other = tempfile::tempdir().unwrap();
    let other_root = other.path().join("Maildir");
    crashed_mailbox(&other_root);
    let foreign = std::fs::read(other_root.join(LOG_FILE)).unwrap();

    let variants = common::log_damage(foreign);
    for (what, damage) in variants {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("Maildir");
        let (expected, highest) = crashed_mailbox(&root);
        let log = root.join(LOG_FILE);
        damage(&log, &std::fs::read(&log).unwrap_or_default());
        let b = process(&root);
        assert_eq!(uids_and_flags(&b), expected, "{what}");
        assert!(state(&b).1 > highest, "{what}: no modseq comes round again");
        // A log cut short is a torn tail (cut off); anything else is a fallback to the files.
        let cut = what.starts_with("truncated before");
        assert_eq!(b.log_stats().recoveries, u64::from(!cut), "{what}");
        // A new generation was started, and it works.
        b.store_flags(&[Uid::new(1).unwrap()], &flagged()).unwrap();
        let after = state(&b);
        std::mem::forget(b);
        let c = process(&root);
        assert_eq!(state(&c), after, "{what}: the new log replays");
        assert_eq!(c.log_stats().recoveries, 0, "{what}");
    }
}

/// Another generation's log (an older one put back) is refused like a foreign one.
#[test]
fn another_generations_log_is_refused() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("Maildir");
    let (expected, _) = crashed_mailbox(&root);
    let old = std::fs::read(root.join(LOG_FILE)).unwrap();
    // A clean close saves the index; the next open that finds damage starts a new generation.
    let b = process(&root);
    drop(b);
    std::fs::write(root.join(LOG_FILE), b"junk").unwrap();
    let c = process(&root);
    assert_eq!(c.log_stats().recoveries, 1);
    drop(c);
    std::fs::write(root.join(LOG_FILE), &old).unwrap();
    let d = process(&root);
    assert_eq!(uids_and_flags(&d), expected);
    assert_eq!(d.log_stats().recoveries, 1);
}

/// A damaged log found while both processes have the mailbox open: the one that finds it
/// rescans and starts a new generation, the other follows the rotation, and both keep serving
/// the same data with the same modseqs.
#[test]
fn damage_while_open_is_survived_by_both_processes() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (_tmp, root, a, b) = two_processes_with_messages(4);
    let log = root.join(LOG_FILE);
    let len = std::fs::metadata(&log).unwrap().len() as usize;
    std::fs::write(&log, vec![0xA5u8; len]).unwrap();
    // a's next change finds the log damaged (it cannot tell what b may have written there).
    let stored = a.store_flags(&[Uid::new(1).unwrap()], &flagged()).unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(a.log_stats().recoveries, 1);
    b.refresh().unwrap();
    assert_eq!(uids_and_flags(&b), uids_and_flags(&a));
    store_in_a_is_seen_in_b(&a, &b, 2);
    assert_eq!(state(&a), state(&b));
}

/// A rotation (main index rewritten, new log generation) is followed by the other process
/// without a rescan, and changes keep their modseqs across it.
#[test]
fn a_rotation_is_followed_by_the_other_process() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (_tmp, root, a, b) = two_processes_with_messages(4);
    // An expunge before the rotation: the history that answers VANISHED must survive it.
    let before_expunge = b.snapshot(false).unwrap().cursor;
    a.store_flags(
        &[Uid::new(3).unwrap()],
        &FlagChange::Add(Flags::new(SystemFlags::DELETED, [])),
    )
    .unwrap();
    a.expunge(None).unwrap();
    let generation_file = std::fs::metadata(root.join(LOG_FILE)).unwrap();
    a.rotate_log();
    let rotated = std::fs::metadata(root.join(LOG_FILE)).unwrap();
    assert_ne!(
        std::os::unix::fs::MetadataExt::ino(&generation_file),
        std::os::unix::fs::MetadataExt::ino(&rotated),
        "rotation renames a new file into place"
    );
    store_in_a_is_seen_in_b(&a, &b, 2);
    assert_eq!(
        b.changes_since(before_expunge, false)
            .unwrap()
            .expunged
            .runs(),
        [(3, 3)],
        "b reloaded the rotated index with its expunge history"
    );
    append(&b, 9, Flags::default());
    a.refresh().unwrap();
    assert_eq!(state(&a), state(&b));
    assert_eq!(a.log_stats().recoveries + b.log_stats().recoveries, 0);
    let expected = state(&a);
    std::mem::forget(a);
    std::mem::forget(b);
    let c = process(&root);
    assert_eq!(state(&c), expected);
    assert_eq!(c.log_stats().recoveries, 0);
    assert_eq!(
        c.changes_since(before_expunge, false)
            .unwrap()
            .expunged
            .runs(),
        [(3, 3)]
    );
}

/// A rotation writes the new main index before it renames the new log into place; a crash
/// between the two leaves an index naming a generation whose log never appeared. The index
/// also names where the old generation ended, so every process continues the old log from
/// there — replaying what others appended to it after — instead of rescanning.
#[test]
fn a_rotation_cut_short_continues_the_old_log() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (_tmp, root, a, b) = two_processes_with_messages(4);
    a.store_flags(&[Uid::new(1).unwrap()], &flagged()).unwrap();
    let old_log = std::fs::read(root.join(LOG_FILE)).unwrap();
    a.rotate_log();
    // The crash: the rotating process dies, its new log is never seen; the old one stays.
    std::mem::forget(a);
    let replacement = root.join("old-generation");
    std::fs::write(&replacement, &old_log).unwrap();
    std::fs::rename(&replacement, root.join(LOG_FILE)).unwrap();

    // A process that was running follows the "rotation" back to the old generation.
    b.store_flags(&[Uid::new(2).unwrap()], &flagged()).unwrap();
    // A process started now continues the old log and sees that change without a scan.
    let scans = maildir::directory_scans();
    let c = process(&root);
    assert_eq!(state(&c), state(&b));
    assert_eq!(maildir::directory_scans(), scans, "replayed, not rescanned");
    c.store_flags(&[Uid::new(3).unwrap()], &flagged()).unwrap();
    b.refresh().unwrap();
    assert_eq!(state(&b), state(&c));
    assert_eq!(b.log_stats().recoveries + c.log_stats().recoveries, 0);
    let expected = state(&c);
    std::mem::forget(b);
    std::mem::forget(c);
    let d = process(&root);
    assert_eq!(state(&d), expected);
    assert_eq!(d.log_stats().recoveries, 0);
}

/// With `fsync = never` a power loss may have lost the log's tail, so every open raises
/// HIGHESTMODSEQ to the saved ceiling — still replaying the log rather than rescanning.
#[test]
fn fsync_never_raises_modseqs_at_every_open() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("Maildir");
    maildir::set_fsync_policy(mail_index::FsyncPolicy::Never);
    let a = process(&root);
    append(&a, 1, Flags::default());
    let (messages, highest) = state(&a);
    std::mem::forget(a);
    let b = process(&root);
    maildir::set_fsync_policy(mail_index::FsyncPolicy::Optimized);
    let (after, raised) = state(&b);
    assert_eq!(after.len(), messages.len());
    assert!(raised > highest, "{raised} > {highest}");
    assert_eq!(b.log_stats().recoveries, 0);
}

/// Two "processes" changing one mailbox at the same time from two threads each: the writers'
/// lock and the catch-up before each change keep them in step — at the end both hold the same
/// messages, flags and modseqs, no modseq or UID was handed out twice, and nobody had to fall
/// back to a rescan.
#[test]
fn concurrent_writers_stay_in_step() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (_tmp, _root, a, b) = two_processes_with_messages(6);
    let handed_out = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = [a.clone(), a.clone(), b.clone(), b.clone()]
        .into_iter()
        .enumerate()
        .map(|(w, mb)| {
            let handed_out = handed_out.clone();
            std::thread::spawn(move || {
                for i in 0..25u32 {
                    match (i + w as u32) % 4 {
                        0 => {
                            let uid = append(&mb, 100 * w as u32 + i, Flags::default());
                            handed_out
                                .lock()
                                .unwrap()
                                .push(("uid", u64::from(uid.get())));
                        }
                        1 | 2 => {
                            let mut uids = uids(&mb);
                            uids.retain(|u| u.get() % 3 == i % 3);
                            for s in mb.store_flags(&uids, &flagged()).unwrap_or_default() {
                                handed_out.lock().unwrap().push(("modseq", s.modseq.get()));
                            }
                            let unflag = FlagChange::Remove(Flags::new(SystemFlags::FLAGGED, []));
                            for s in mb.store_flags(&uids, &unflag).unwrap_or_default() {
                                handed_out.lock().unwrap().push(("modseq", s.modseq.get()));
                            }
                        }
                        _ => {
                            let last = uids(&mb).last().copied();
                            if let Some(uid) = last {
                                let deleted = FlagChange::Add(Flags::new(SystemFlags::DELETED, []));
                                let _ = mb.store_flags(&[uid], &deleted);
                                let _ = mb.expunge(Some(&[uid]));
                            }
                        }
                    }
                    mb.refresh().unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    a.refresh().unwrap();
    b.refresh().unwrap();
    assert_eq!(state(&a), state(&b));
    let mut seen = handed_out.lock().unwrap().clone();
    let total = seen.len();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), total, "a UID or modseq was handed out twice");
    assert_eq!(a.log_stats().recoveries + b.log_stats().recoveries, 0);
    assert!(a.log_stats().replayed > 0 && b.log_stats().replayed > 0);
}
