//! The transaction log (`columba.index.log`) of an mbox mailbox between "processes": two
//! `MboxMailbox`es opened with `open_unshared` on one mbox file share nothing in memory, only
//! the files, as two server processes do. A change in one reaches the other with the same
//! mod-sequence, without the other reading the mbox again; a restart after a crash replays the
//! log instead of scanning the file; a torn tail is cut off; and every kind of damaged log falls
//! back to the mbox file with UIDs (`X-UID`) and flags (`Status`, `X-Status`, `X-Keywords`)
//! intact. The Maildir counterpart is `index_log.rs`.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use mail_store::mbox::{LOG_FILE, MboxMailbox, MboxSettings, MboxStore};
use mail_store::{ChangeCursor, FlagChange, Mailbox};
use mail_types::{Flags, Keyword, MailboxName, SystemFlags, Uid};

fn store(dir: &Path) -> MboxStore {
    MboxStore::new(
        dir.join("mail"),
        dir.join("spool/inbox"),
        MboxSettings::default(),
    )
    .unwrap()
}

fn process(dir: &Path) -> Arc<MboxMailbox> {
    store(dir).open_unshared(&MailboxName::inbox()).unwrap()
}

fn log_path(dir: &Path) -> PathBuf {
    dir.join("mail/.imap/INBOX").join(LOG_FILE)
}

fn append(mb: &MboxMailbox, i: u32, flags: Flags) -> Uid {
    let mut w = mb.begin_append().unwrap();
    w.write(format!("Subject: {i}\r\n\r\nbody {i}\r\nFrom here\r\n").as_bytes())
        .unwrap();
    w.commit(flags, Some(1_795_941_720)).unwrap()
}

/// (UID, flags, modseq) of every message, and HIGHESTMODSEQ.
fn state(mb: &MboxMailbox) -> (Vec<(u32, String, u64)>, u64) {
    let s = mb.snapshot(false).unwrap();
    let msgs = s
        .messages
        .iter()
        .map(|m| (m.uid.get(), format!("{:?}", m.flags), m.modseq.get()))
        .collect();
    (msgs, s.highest_modseq.get())
}

fn uids(mb: &MboxMailbox) -> Vec<Uid> {
    let snapshot = mb.snapshot(false).unwrap();
    snapshot.messages.iter().map(|m| m.uid).collect()
}

/// (UID, flags) only: what must survive any fallback to the mbox file.
fn uids_and_flags(mb: &MboxMailbox) -> Vec<(u32, String)> {
    state(mb).0.into_iter().map(|(u, f, _)| (u, f)).collect()
}

fn seen() -> Flags {
    Flags::new(SystemFlags::SEEN, [])
}

fn flagged() -> FlagChange {
    FlagChange::Add(Flags::new(SystemFlags::FLAGGED, []))
}

fn deleted() -> FlagChange {
    FlagChange::Add(Flags::new(SystemFlags::DELETED, []))
}

type TwoProcesses = (tempfile::TempDir, Arc<MboxMailbox>, Arc<MboxMailbox>);

/// Two "processes" on a new mbox, the first having appended `n` messages, seen by both.
fn two_processes_with_messages(n: u32) -> TwoProcesses {
    let tmp = tempfile::tempdir().unwrap();
    let a = process(tmp.path());
    let b = process(tmp.path());
    for i in 0..n {
        append(&a, i, Flags::default());
    }
    b.refresh().unwrap();
    (tmp, a, b)
}

/// A STORE on `uid` in `a` reaches `b` as a change since its cursor, with a's modseq, and
/// without `b` reading the mbox file.
fn store_in_a_is_seen_in_b(a: &MboxMailbox, b: &MboxMailbox, uid: u32) {
    let before = b.snapshot(false).unwrap().cursor;
    let scans = b.scans();
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
    assert_eq!(b.scans(), scans, "the log, not a scan of the mbox, told b");
    // b reads the message where a's rewrite moved it.
    let body = b.read_message(Uid::new(uid).unwrap()).unwrap();
    assert!(String::from_utf8_lossy(&body).contains("From here"));
}

#[test]
fn a_change_reaches_the_other_process_with_its_modseq() {
    let (tmp, a, b) = two_processes_with_messages(0);
    for i in 0..5 {
        append(&a, i, if i % 2 == 0 { seen() } else { Flags::default() });
    }
    let cursor = ChangeCursor(b.snapshot(false).unwrap().cursor.0);
    let scans = b.scans();
    b.refresh().unwrap();
    assert_eq!(state(&b), state(&a), "appends arrive with their modseqs");
    assert_eq!(b.scans(), scans, "the log, not a scan, told b");
    assert!(b.log_stats().replayed > 0);

    // STORE in a: b reports the same modseq, as a change since its cursor.
    store_in_a_is_seen_in_b(&a, &b, 2);
    assert_eq!(state(&b), state(&a));
    let since_start = b.changes_since(cursor, false).unwrap();
    assert_eq!(since_start.appended.len(), 5);

    // Keywords travel too.
    let work = FlagChange::Add(Flags::new(
        SystemFlags::empty(),
        [Keyword::new("work").unwrap()],
    ));
    a.store_flags(&[Uid::new(4).unwrap()], &work).unwrap();
    b.refresh().unwrap();
    assert_eq!(state(&b), state(&a));

    // EXPUNGE in b: a learns it with b's modseq (QRESYNC's VANISHED comes from this).
    let at = a.snapshot(false).unwrap().cursor;
    b.store_flags(&[Uid::new(3).unwrap()], &deleted()).unwrap();
    assert_eq!(b.expunge(None).unwrap(), [Uid::new(3).unwrap()]);
    let scans = a.scans();
    a.refresh().unwrap();
    let changes = a.changes_since(at, false).unwrap();
    assert_eq!(changes.expunged.runs(), [(3, 3)]);
    assert_eq!(changes.flags.len(), 0, "{changes:?}");
    assert_eq!(state(&a), state(&b));
    assert_eq!(a.scans(), scans, "the expunge came through the log");

    // Appends from both sides interleave without a reused UID or modseq.
    let u1 = append(&b, 10, Flags::default());
    let u2 = append(&a, 11, Flags::default());
    assert!(u2 > u1);
    a.refresh().unwrap();
    b.refresh().unwrap();
    assert_eq!(state(&a), state(&b));
    assert_eq!(a.log_stats().recoveries + b.log_stats().recoveries, 0);

    // The file is what other mbox programs read: a fresh scan of it (no index files) finds
    // the same UIDs and flags.
    let expected = uids_and_flags(&a);
    std::fs::remove_dir_all(tmp.path().join("mail/.imap/INBOX")).unwrap();
    assert_eq!(uids_and_flags(&process(tmp.path())), expected);
}

#[test]
fn recent_goes_to_one_process_only() {
    let (_tmp, a, b) = two_processes_with_messages(1);
    let claimed_a = a.snapshot(true).unwrap().recent;
    let claimed_b = b.snapshot(true).unwrap().recent;
    assert_eq!(
        claimed_a.len() + claimed_b.len(),
        1,
        "{claimed_a:?} {claimed_b:?}"
    );
    // Also through changes_since, for a message appended afterwards.
    let at = a.snapshot(false).unwrap().cursor;
    append(&b, 7, Flags::default());
    let in_b = b.changes_since(at, true).unwrap().recent;
    a.refresh().unwrap();
    let in_a = a.changes_since(at, true).unwrap().recent;
    assert_eq!(in_b.len() + in_a.len(), 1, "{in_b:?} {in_a:?}");
}

/// A restarted process (the first one died without saving its index) replays the log and does
/// not read the mbox; with a torn record at the end, it cuts it off and still reads nothing.
#[test]
fn a_restart_replays_the_log_and_cuts_a_torn_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let a = process(tmp.path());
    for i in 0..4 {
        append(&a, i, Flags::default());
    }
    a.store_flags(&[Uid::new(1).unwrap()], &flagged()).unwrap();
    let expected = state(&a);
    // kill -9: nothing saved on the way out.
    std::mem::forget(a);
    let log = log_path(tmp.path());
    let whole = std::fs::metadata(&log).unwrap().len();
    let mut bytes = std::fs::read(&log).unwrap();
    // Half of a record, as a write cut short leaves it.
    bytes.extend_from_slice(&[40, 0, 0, 0, 1, 2, 3, 4, 1, 9, 9]);
    std::fs::write(&log, &bytes).unwrap();

    let b = process(tmp.path());
    assert_eq!(b.scans(), 0, "replayed, not rescanned");
    // The records are all there; HIGHESTMODSEQ moves to the saved ceiling, since a cut log may
    // have lost mod-sequences a client saw.
    let (messages, highest) = state(&b);
    assert_eq!(messages, expected.0);
    assert!(highest > expected.1);
    let stats = b.log_stats();
    assert_eq!(stats.recoveries, 0);
    assert!(stats.replayed >= 5, "{stats:?}");
    let now = std::fs::read(&log).unwrap();
    let whole = whole as usize;
    assert_eq!(now[..whole], bytes[..whole]);
    assert!(!now[whole..].starts_with(&bytes[whole..]), "torn tail cut");
    // The cut log takes new records.
    b.store_flags(&[Uid::new(2).unwrap()], &flagged()).unwrap();
    let expected = state(&b);
    std::mem::forget(b);
    let c = process(tmp.path());
    assert_eq!(state(&c), expected);
    assert_eq!(c.scans(), 0);
}

/// Builds a mailbox whose log holds changes the main index does not, then leaves it as a
/// crashed process would. Returns the state a client must see.
fn crashed_mailbox(dir: &Path) -> (Vec<(u32, String)>, u64) {
    let a = process(dir);
    for i in 0..6 {
        append(&a, i, if i % 3 == 0 { seen() } else { Flags::default() });
    }
    let kw = Flags::new(SystemFlags::FLAGGED, [Keyword::new("$Work").unwrap()]);
    a.store_flags(
        &[Uid::new(2).unwrap(), Uid::new(4).unwrap()],
        &FlagChange::Add(kw),
    )
    .unwrap();
    a.store_flags(&[Uid::new(5).unwrap()], &deleted()).unwrap();
    a.expunge(None).unwrap();
    let expected = (uids_and_flags(&a), state(&a).1);
    std::mem::forget(a);
    expected
}

#[test]
fn a_damaged_log_falls_back_to_the_mbox_file() {
    let other = tempfile::tempdir().unwrap();
    crashed_mailbox(other.path());
    let foreign = std::fs::read(log_path(other.path())).unwrap();

    let variants = common::log_damage(foreign);
    for (what, damage) in variants {
        let tmp = tempfile::tempdir().unwrap();
        let (expected, highest) = crashed_mailbox(tmp.path());
        let log = log_path(tmp.path());
        damage(&log, &std::fs::read(&log).unwrap_or_default());
        let b = process(tmp.path());
        assert_eq!(uids_and_flags(&b), expected, "{what}");
        assert!(state(&b).1 > highest, "{what}: no modseq comes round again");
        // A log cut short is a torn tail (cut off); anything else is a fallback to the file.
        let cut = what.starts_with("truncated before");
        assert_eq!(b.log_stats().recoveries, u64::from(!cut), "{what}");
        // A new generation was started, and it works.
        b.store_flags(&[Uid::new(1).unwrap()], &flagged()).unwrap();
        let after = state(&b);
        std::mem::forget(b);
        let c = process(tmp.path());
        assert_eq!(state(&c), after, "{what}: the new log replays");
        assert_eq!(c.log_stats().recoveries, 0, "{what}");
        assert_eq!(c.scans(), 0, "{what}: and the file needs no scan");
    }
}

/// A damaged log found while both processes have the mailbox open: the one that finds it
/// rescans and starts a new generation, the other follows the rotation, and both keep serving
/// the same data with the same modseqs.
#[test]
fn damage_while_open_is_survived_by_both_processes() {
    let (tmp, a, b) = two_processes_with_messages(4);
    let log = log_path(tmp.path());
    let len = std::fs::metadata(&log).unwrap().len() as usize;
    std::fs::write(&log, vec![0xA5u8; len]).unwrap();
    let stored = a.store_flags(&[Uid::new(1).unwrap()], &flagged()).unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(a.log_stats().recoveries, 1);
    b.refresh().unwrap();
    assert_eq!(uids_and_flags(&b), uids_and_flags(&a));
    store_in_a_is_seen_in_b(&a, &b, 2);
    assert_eq!(state(&a), state(&b));
}

/// A rotation (main index rewritten, new log generation) is followed by the other process
/// without a scan, and changes keep their modseqs across it.
#[test]
fn a_rotation_is_followed_by_the_other_process() {
    let (tmp, a, b) = two_processes_with_messages(4);
    let before_expunge = b.snapshot(false).unwrap().cursor;
    a.store_flags(&[Uid::new(3).unwrap()], &deleted()).unwrap();
    a.expunge(None).unwrap();
    let old = std::fs::metadata(log_path(tmp.path())).unwrap();
    a.rotate_log();
    let rotated = std::fs::metadata(log_path(tmp.path())).unwrap();
    assert_ne!(
        std::os::unix::fs::MetadataExt::ino(&old),
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
    let c = process(tmp.path());
    assert_eq!(state(&c), expected);
    assert_eq!(c.log_stats().recoveries, 0);
    assert_eq!(c.scans(), 0);
}

/// Another program (a delivery agent) appends to the file: the first process to notice reads
/// the new end and logs what it found, the other takes it from the log with the same UIDs and
/// modseqs instead of reading the file itself.
#[test]
fn a_delivery_by_another_program_is_read_once() {
    let (tmp, a, b) = two_processes_with_messages(2);
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(tmp.path().join("spool/inbox"))
        .unwrap();
    f.write_all(b"From x@y  Sun Nov 29 09:00:00 2026\nSubject: new\n\nhi\n\n")
        .unwrap();
    drop(f);
    let scans_b = b.scans();
    a.refresh().unwrap();
    b.refresh().unwrap();
    assert_eq!(b.scans(), scans_b, "b took a's reading from the log");
    assert_eq!(uids(&a).len(), 3);
    assert_eq!(state(&a), state(&b));
}

/// Two "processes" changing one mbox at the same time from two threads each: the log's lock
/// and the catch-up before each change keep them in step — at the end both hold the same
/// messages, flags and modseqs, no modseq or UID was handed out twice, and nobody had to fall
/// back to a rescan.
#[test]
fn concurrent_writers_stay_in_step() {
    let (tmp, a, b) = two_processes_with_messages(6);
    let handed_out = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = [a.clone(), a.clone(), b.clone(), b.clone()]
        .into_iter()
        .enumerate()
        .map(|(w, mb)| {
            let handed_out = handed_out.clone();
            std::thread::spawn(move || {
                for i in 0..20u32 {
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
                            for s in mb.store_flags(&uids, &flagged()).unwrap() {
                                handed_out.lock().unwrap().push(("modseq", s.modseq.get()));
                            }
                            let unflag = FlagChange::Remove(Flags::new(SystemFlags::FLAGGED, []));
                            for s in mb.store_flags(&uids, &unflag).unwrap() {
                                handed_out.lock().unwrap().push(("modseq", s.modseq.get()));
                            }
                        }
                        _ => {
                            if let Some(uid) = uids(&mb).last().copied() {
                                mb.store_flags(&[uid], &deleted()).unwrap();
                                mb.expunge(Some(&[uid])).unwrap();
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
    // And the file agrees with both.
    let expected = uids_and_flags(&a);
    std::fs::remove_dir_all(tmp.path().join("mail/.imap/INBOX")).unwrap();
    assert_eq!(uids_and_flags(&process(tmp.path())), expected);
}
