use super::*;
use crate::{FlagChange, MailStore, Mailbox};
use mail_types::{Flags, Keyword, SystemFlags, Uid};
use proptest::prelude::*;

use super::parse::{scan, visible};
use super::write::{MetaOut, new_message};

/// What a client sees of every message of `file`, after the pseudo-message.
fn messages_of(file: &[u8]) -> Vec<(parse::Meta, Vec<u8>)> {
    scan(file, 0)
        .unwrap()
        .into_iter()
        .filter(|m| !m.meta.pseudo)
        .map(|m| {
            let bytes = &file[m.header as usize..m.end as usize];
            let shown = visible(bytes, (m.body - m.header) as usize, m.verbatim);
            (m.meta, shown)
        })
        .collect()
}

/// The file Dovecot 2.3 wrote for two saved messages and two flag changes (see
/// `scripts/regen-mbox-fixtures`): Content-Length, unquoted `From ` in a body, padded
/// X-Keywords, X-Status added after the other fields.
const DOVECOT_FILE: &[u8] = b"From nobody@vm  Sun Nov 29 08:42:00 2026
From: a@example.com
To: b@example.com
Subject: one
X-IMAPbase: 1795941720 0000000002 $Forwarded
X-UID: 1
Status: R
X-Keywords:                                                            
Content-Length: 27

body
From here
>From there

From nobody@vm  Sun Nov 29 08:42:00 2026
Subject: two
X-UID: 2
Status: 
X-Keywords: $Forwarded                                                 
Content-Length: 2
X-Status: AF

x

";

#[test]
fn dovecot_metadata_is_read_and_hidden() {
    let msgs = messages_of(DOVECOT_FILE);
    assert_eq!(msgs.len(), 2);
    let (m1, body1) = &msgs[0];
    assert_eq!(m1.uid, Some(1));
    assert_eq!(m1.flags, SystemFlags::SEEN);
    let base = m1.base.as_ref().unwrap();
    assert_eq!((base.uid_validity, base.last_uid), (1_795_941_720, 2));
    assert_eq!(base.keywords, vec![Keyword::new("$Forwarded").unwrap()]);
    // Content-Length checks out: the body is verbatim, `>From` stays quoted as Dovecot shows it.
    assert_eq!(
        body1.as_slice(),
        b"From: a@example.com\nTo: b@example.com\nSubject: one\n\nbody\nFrom here\n>From there\n"
    );
    let (m2, body2) = &msgs[1];
    assert_eq!(m2.uid, Some(2));
    assert_eq!(m2.flags, SystemFlags::ANSWERED.union(SystemFlags::FLAGGED));
    assert_eq!(m2.keywords, vec![Keyword::new("$Forwarded").unwrap()]);
    assert_eq!(body2.as_slice(), b"Subject: two\n\nx\n");
}

#[test]
fn a_wrong_content_length_is_ignored() {
    let file = b"From a  Sun Nov 29 08:42:00 2026\nContent-Length: 3\n\nabcdef\n>From x\n\nFrom b  Sun Nov 29 08:42:00 2026\n\ny\n";
    let msgs = messages_of(file);
    assert_eq!(msgs.len(), 2);
    // Not verbatim: read as mboxrd.
    assert_eq!(msgs[0].1.as_slice(), b"\nabcdef\nFrom x\n");
    assert_eq!(msgs[1].1.as_slice(), b"\ny\n");
}

#[test]
fn an_unquoted_from_without_a_date_stays_in_the_body() {
    let file = b"From a  Sun Nov 29 08:42:00 2026\nSubject: s\n\nline\n\nFrom the desk of\nend\n";
    let msgs = messages_of(file);
    assert_eq!(msgs.len(), 1);
    assert_eq!(
        msgs[0].1.as_slice(),
        b"Subject: s\n\nline\n\nFrom the desk of\nend\n"
    );
}

#[test]
fn uw_pseudo_message_is_not_a_message() {
    let file = b"From MAILER-DAEMON Sun Nov 29 08:42:00 2026
Date: 29 Nov 2026 08:42:00 +0000
From: Mail System Internal Data <MAILER-DAEMON@host>
Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA
X-IMAP: 1234567890 0000000007 work
Status: RO

This text is part of the internal format of your mail folder.

From x@y Sun Nov 29 08:43:00 2026
Subject: real
X-UID: 7
Status: O
X-Status: D
X-Keywords: work

hi
";
    let all = scan(file, 0).unwrap();
    assert!(all[0].meta.pseudo);
    let base = all[0].meta.base.as_ref().unwrap();
    assert_eq!((base.uid_validity, base.last_uid), (1_234_567_890, 7));
    let msgs = messages_of(file);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].0.uid, Some(7));
    assert!(msgs[0].0.old);
    assert_eq!(msgs[0].0.flags, SystemFlags::DELETED);
    assert_eq!(msgs[0].1.as_slice(), b"Subject: real\n\nhi\n");
}

#[test]
fn uw_pop3_uidls_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("spool/inbox");
    std::fs::create_dir_all(inbox.parent().unwrap()).unwrap();
    std::fs::write(
        &inbox,
        "From a  Sun Nov 29 08:42:00 2026\nX-UIDL: 4a8c3b2e00000001\nSubject: a\n\nx\n\n\
         From b  Sun Nov 29 08:42:00 2026\nSubject: b\n\ny\n",
    )
    .unwrap();
    let store = MboxStore::new(dir.path().join("mail"), inbox, MboxSettings::default()).unwrap();
    let mailbox = store.open(&MailboxName::inbox()).unwrap();
    let uid = |n| Uid::new(n).unwrap();
    assert_eq!(
        mailbox.stored_uidl(uid(1)).as_deref(),
        Some("4a8c3b2e00000001")
    );
    assert_eq!(mailbox.stored_uidl(uid(2)), None);
    // Still there after the file was rewritten with UIDs and flags.
    mailbox
        .store_flags(
            &[uid(1)],
            &FlagChange::Add(Flags::new(SystemFlags::SEEN, [])),
        )
        .unwrap();
    assert_eq!(
        mailbox.stored_uidl(uid(1)).as_deref(),
        Some("4a8c3b2e00000001")
    );
}

#[test]
fn not_an_mbox() {
    assert!(scan(b"Subject: x\n\nbody\n", 0).is_err());
    assert!(scan(b"", 0).unwrap().is_empty());
}

fn written(message: &[u8], quoting: Quoting, flags: &Flags) -> Vec<u8> {
    let mut out = Vec::new();
    new_message(
        &mut out,
        &from_line::format("MAILER-DAEMON", 1_795_941_720),
        message,
        quoting,
        &MetaOut {
            uid: 9,
            flags,
            old: true,
            base: None,
        },
    );
    out
}

#[test]
fn metadata_headers_round_trip() {
    let flags = Flags::new(
        SystemFlags::SEEN
            .union(SystemFlags::DRAFT)
            .union(SystemFlags::DELETED),
        [
            Keyword::new("work").unwrap(),
            Keyword::new("$Junk").unwrap(),
        ],
    );
    // The message brings its own Status and X-UID: they are dropped, not believed.
    let file = written(
        b"Subject: s\nStatus: RO\nX-UID: 99\n\nbody\n",
        Quoting::Mboxrd,
        &flags,
    );
    let text = String::from_utf8_lossy(&file);
    assert!(text.contains("X-UID: 9\n"), "{text}");
    assert!(!text.contains("99"), "{text}");
    let msgs = messages_of(&file);
    assert_eq!(msgs.len(), 1);
    let (meta, shown) = &msgs[0];
    assert_eq!(meta.uid, Some(9));
    assert!(meta.old);
    assert_eq!(meta.flags, flags.system);
    assert_eq!(meta.keywords, flags.keywords());
    assert_eq!(shown.as_slice(), b"Subject: s\n\nbody\n");
}

/// Message texts as the store keeps them: LF line endings, ending with a newline, with lines
/// that look like separators and quoted separators.
fn message_text() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        Just(b"From a@b Sun Nov 29 08:42:00 2026".to_vec()),
        Just(b"From here".to_vec()),
        Just(b">From there".to_vec()),
        Just(b">>From x  Sun Nov 29 08:42:00 2026".to_vec()),
        Just(b"".to_vec()),
        Just(b"Status: RO".to_vec()),
        "[ -~]{0,20}".prop_map(String::into_bytes),
    ];
    proptest::collection::vec(line, 0..12).prop_map(|lines| {
        let mut out = b"Subject: t\n\n".to_vec();
        for l in lines {
            out.extend_from_slice(&l);
            out.push(b'\n');
        }
        out
    })
}

proptest! {
    #[test]
    fn bodies_round_trip(messages in proptest::collection::vec(message_text(), 1..5),
                         dovecot_style in any::<bool>()) {
        let quoting = if dovecot_style { Quoting::ContentLength } else { Quoting::Mboxrd };
        let flags = Flags::default();
        let mut file = Vec::new();
        for m in &messages {
            file.extend(written(m, quoting, &flags));
        }
        let read = messages_of(&file);
        prop_assert_eq!(read.len(), messages.len());
        for (m, (_, shown)) in messages.iter().zip(&read) {
            prop_assert_eq!(shown, m);
        }
    }

    #[test]
    fn scanning_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut file = b"From a  Sun Nov 29 08:42:00 2026\n".to_vec();
        file.extend(bytes);
        if let Ok(msgs) = scan(&file, 0) {
            for m in msgs {
                prop_assert!(m.from <= m.header && m.header <= m.body && m.body <= m.end);
                prop_assert!(m.end <= m.next && m.next as usize <= file.len());
            }
        }
    }
}

// --- the store ---

fn store(dir: &std::path::Path) -> MboxStore {
    MboxStore::new(
        dir.join("mail"),
        dir.join("spool/inbox"),
        MboxSettings::default(),
    )
    .unwrap()
}

fn append(mailbox: &dyn Mailbox, message: &[u8], flags: Flags) -> Uid {
    let mut w = mailbox.begin_append().unwrap();
    w.write(message).unwrap();
    w.commit(flags, Some(1_795_941_720)).unwrap()
}

fn uids(mailbox: &dyn Mailbox) -> Vec<u32> {
    mailbox
        .snapshot(false)
        .unwrap()
        .messages
        .iter()
        .map(|m| m.uid.get())
        .collect()
}

#[test]
fn append_flags_expunge_and_reopen_keep_uids() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    let uv = inbox.uid_validity();
    let a = append(&*inbox, b"Subject: a\r\n\r\nFrom me\r\n", Flags::default());
    let b = append(&*inbox, b"Subject: b\r\n\r\nbody b\r\n", Flags::default());
    let c = append(&*inbox, b"Subject: c\r\n\r\nbody c\r\n", Flags::default());
    assert_eq!((a.get(), b.get(), c.get()), (1, 2, 3));
    assert_eq!(
        inbox.read_message(a).unwrap(),
        b"Subject: a\r\n\r\nFrom me\r\n"
    );
    assert_eq!(inbox.message_info(a).unwrap().size, 23);
    assert_eq!(inbox.message_info(a).unwrap().internal_date, 1_795_941_720);

    let seen = Flags::new(SystemFlags::SEEN, [Keyword::new("work").unwrap()]);
    let changed = inbox
        .store_flags(&[b], &FlagChange::Add(seen.clone()))
        .unwrap();
    assert_eq!(changed.len(), 1);
    let deleted = Flags::new(SystemFlags::DELETED, []);
    inbox.store_flags(&[a], &FlagChange::Add(deleted)).unwrap();
    assert_eq!(inbox.expunge(None).unwrap(), vec![a]);
    assert_eq!(uids(&*inbox), vec![2, 3]);

    let file = std::fs::read(dir.path().join("spool/inbox")).unwrap();
    let text = String::from_utf8_lossy(&file);
    // The base moved to the new first message and covers UID 3.
    assert!(
        text.contains(&format!("X-IMAPbase: {} 0000000003 work", uv.get())),
        "{text}"
    );
    assert!(text.contains("X-UID: 2\nStatus: R"), "{text}");
    assert!(text.contains("X-Keywords: work"), "{text}");
    assert!(!text.contains("Subject: a"), "{text}");

    // Another process (simulated by dropping our index) sees the same mailbox.
    drop(inbox);
    release_idle_mailboxes(dir.path());
    let again = store.open(&MailboxName::inbox()).unwrap();
    assert_eq!(again.uid_validity(), uv);
    assert_eq!(uids(&*again), vec![2, 3]);
    let snap = again.snapshot(false).unwrap();
    assert_eq!(snap.messages[0].flags, seen);
    assert_eq!(snap.uid_next.get(), 4);
    assert_eq!(
        again.read_message(c).unwrap(),
        b"Subject: c\r\n\r\nbody c\r\n"
    );
    // UIDs are not reused after the last one is expunged and the file is read afresh.
    again
        .store_flags(&[c], &FlagChange::Add(Flags::new(SystemFlags::DELETED, [])))
        .unwrap();
    again.expunge(None).unwrap();
    drop(again);
    release_idle_mailboxes(dir.path());
    let third = store.open(&MailboxName::inbox()).unwrap();
    assert_eq!(
        append(&*third, b"Subject: d\r\n\r\nd\r\n", Flags::default()).get(),
        4
    );
}

#[test]
fn expunging_everything_keeps_the_base_in_a_pseudo_message() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    let uid = append(
        &*inbox,
        b"Subject: a\r\n\r\nx\r\n",
        Flags::new(SystemFlags::DELETED, []),
    );
    assert_eq!(inbox.expunge(None).unwrap(), vec![uid]);
    let file = std::fs::read(dir.path().join("spool/inbox")).unwrap();
    let all = scan(&file, 0).unwrap();
    assert_eq!(all.len(), 1);
    assert!(all[0].meta.pseudo);
    assert_eq!(all[0].meta.base.as_ref().unwrap().last_uid, 1);
    drop(inbox);
    release_idle_mailboxes(dir.path());
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    assert!(uids(&*inbox).is_empty());
    assert_eq!(
        append(&*inbox, b"Subject: b\r\n\r\ny\r\n", Flags::default()).get(),
        2
    );
    assert_eq!(uids(&*inbox), vec![2]);
}

#[test]
fn mail_delivered_by_another_program_gets_uids_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    append(&*inbox, b"Subject: a\r\n\r\nx\r\n", Flags::default());
    // A delivery agent appends two messages without any metadata.
    let path = dir.path().join("spool/inbox");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    use std::io::Write;
    file.write_all(b"From x@y  Sun Nov 29 09:00:00 2026\nSubject: new1\n\nFrom the start\n\nFrom x@y  Sun Nov 29 09:01:00 2026\nSubject: new2\n\nhi\n\n").unwrap();
    drop(file);
    inbox.refresh().unwrap();
    assert_eq!(uids(&*inbox), vec![1, 2, 3]);
    assert_eq!(
        inbox.read_message(Uid::new(2).unwrap()).unwrap(),
        b"Subject: new1\r\n\r\nFrom the start\r\n"
    );
    let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
    assert!(text.contains("Subject: new2\nX-UID: 3\n"), "{text}");
    assert!(text.contains("0000000003"), "{text}");
}

#[test]
fn a_crashed_rewrite_is_finished_and_a_crashed_append_undone() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    append(&*inbox, b"Subject: a\r\n\r\nx\r\n", Flags::default());
    let path = dir.path().join("spool/inbox");
    let good = std::fs::read(&path).unwrap();
    let control = dir.path().join("mail/.imap/INBOX");
    drop(inbox);
    release_idle_mailboxes(dir.path());

    // A rewrite whose journal was written but not applied: half the file was overwritten.
    let mut torn = good.clone();
    torn.truncate(good.len() / 2);
    std::fs::write(&path, &torn).unwrap();
    let mut journal = format!("columba-mbox-journal 1 rewrite 0 {}\n", good.len()).into_bytes();
    journal.extend_from_slice(&good);
    std::fs::write(control.join(JOURNAL_FILE), journal).unwrap();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    assert_eq!(uids(&*inbox), vec![1]);
    assert_eq!(std::fs::read(&path).unwrap(), good);
    assert!(!control.join(JOURNAL_FILE).exists());
    drop(inbox);
    release_idle_mailboxes(dir.path());

    // An append that never finished: its partial message goes.
    let mut partial = good.clone();
    partial.extend_from_slice(b"From MAILER-DAEMON  Sun Nov 29 08:42:00 2026\nSubject: half");
    std::fs::write(&path, &partial).unwrap();
    let journal = format!("columba-mbox-journal 1 append {} 500\n", good.len());
    std::fs::write(control.join(JOURNAL_FILE), journal).unwrap();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    assert_eq!(uids(&*inbox), vec![1]);
    assert_eq!(std::fs::read(&path).unwrap(), good);
}

#[test]
fn hierarchy_and_subscriptions() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let name = |s: &str| MailboxName::new(s).unwrap();
    store.create(&name("work/2026")).unwrap();
    store.create(&name("lists")).unwrap();
    let mut listed: Vec<(String, bool)> = store
        .list()
        .unwrap()
        .into_iter()
        .map(|e| (e.name.to_string(), e.selectable))
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        vec![
            ("INBOX".to_owned(), true),
            ("lists".to_owned(), true),
            ("work".to_owned(), false),
            ("work/2026".to_owned(), true),
        ]
    );
    assert!(store.create(&name(".imap")).is_err());
    let m = store.open(&name("work/2026")).unwrap();
    append(&*m, b"Subject: w\r\n\r\nw\r\n", Flags::default());
    drop(m);
    store.rename(&name("work/2026"), &name("archive")).unwrap();
    let m = store.open(&name("archive")).unwrap();
    assert_eq!(uids(&*m), vec![1]);
    store.set_subscribed(&name("archive"), true).unwrap();
    store.set_subscribed(&name("lists"), true).unwrap();
    store.set_subscribed(&name("lists"), false).unwrap();
    assert_eq!(store.subscriptions().unwrap(), vec![name("archive")]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("mail/.subscriptions")).unwrap(),
        "archive\n"
    );
    store.delete(&name("lists")).unwrap();
    assert!(store.open(&name("lists")).is_err());
}

#[test]
fn uw_mailboxlist_is_read_and_kept_in_step() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    std::fs::write(
        home.join(".mailboxlist"),
        "mail/lists\nINBOX\nelsewhere/x\n",
    )
    .unwrap();
    let store = MboxStore::new(
        home.join("mail"),
        home.join("inbox"),
        MboxSettings::default(),
    )
    .unwrap();
    let name = |s: &str| MailboxName::new(s).unwrap();
    store.create(&name("lists")).unwrap();
    assert_eq!(
        store.subscriptions().unwrap(),
        vec![name("lists"), name("INBOX")]
    );
    store.set_subscribed(&name("lists"), false).unwrap();
    store.set_subscribed(&name("work"), true).unwrap();
    assert_eq!(
        store.subscriptions().unwrap(),
        vec![name("work"), name("INBOX")]
    );
    assert_eq!(
        std::fs::read_to_string(home.join(".mailboxlist")).unwrap(),
        "INBOX\nelsewhere/x\nmail/work\n"
    );
}

#[test]
fn mod_sequences_never_go_back_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    let uid = append(&*inbox, b"Subject: a\r\n\r\nx\r\n", Flags::default());
    for _ in 0..5 {
        inbox
            .store_flags(&[uid], &FlagChange::Add(Flags::new(SystemFlags::SEEN, [])))
            .unwrap();
        inbox
            .store_flags(
                &[uid],
                &FlagChange::Remove(Flags::new(SystemFlags::SEEN, [])),
            )
            .unwrap();
    }
    let before = inbox.snapshot(false).unwrap().highest_modseq;
    drop(inbox);
    release_idle_mailboxes(dir.path());
    // A new process that lost the saved index (a crash before it was written) builds its
    // index from the file: its mod-sequences start above every one shown before, so
    // CHANGEDSINCE from an old value reports the message again.
    std::fs::remove_file(dir.path().join("mail/.imap/INBOX").join(INDEX_FILE)).unwrap();
    let again = store.open(&MailboxName::inbox()).unwrap();
    let snap = again.snapshot(false).unwrap();
    assert!(
        snap.highest_modseq > before,
        "{:?} <= {before:?}",
        snap.highest_modseq
    );
    assert!(snap.messages[0].modseq > before);
}

#[test]
fn a_saved_index_spares_the_next_process_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    let seen = Flags::new(SystemFlags::SEEN, []);
    let a = append(&*inbox, b"Subject: a\r\n\r\nx\r\n", seen.clone());
    let b = append(&*inbox, b"Subject: b\r\n\r\ny\r\n", Flags::default());
    let uv = inbox.uid_validity();
    drop(inbox);
    release_idle_mailboxes(dir.path());
    assert!(
        dir.path()
            .join("mail/.imap/INBOX")
            .join(INDEX_FILE)
            .exists()
    );

    // Unchanged file: the saved index is used as it is.
    let inbox = store.open_mbox(&MailboxName::inbox()).unwrap();
    assert_eq!(
        inbox.scans(),
        0,
        "the file was scanned although nothing changed"
    );
    assert_eq!(inbox.uid_validity(), uv);
    assert_eq!(uids(&*inbox), vec![a.get(), b.get()]);
    assert_eq!(inbox.snapshot(false).unwrap().messages[0].flags, seen);
    assert_eq!(inbox.read_message(b).unwrap(), b"Subject: b\r\n\r\ny\r\n");
    drop(inbox);
    release_idle_mailboxes(dir.path());

    // Someone delivered meanwhile: the new end is scanned, the UIDs stay.
    use std::io::Write;
    let path = dir.path().join("spool/inbox");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    file.write_all(b"From x@y  Sun Nov 29 09:00:00 2026\nSubject: c\n\nz\n\n")
        .unwrap();
    drop(file);
    let inbox = store.open_mbox(&MailboxName::inbox()).unwrap();
    assert_eq!(uids(&*inbox), vec![a.get(), b.get(), b.get() + 1]);
    assert_eq!(inbox.scans(), 1, "only the new end is read");
    assert_eq!(
        inbox.read_message(Uid::new(b.get() + 1).unwrap()).unwrap(),
        b"Subject: c\r\n\r\nz\r\n"
    );

    // A damaged index file is ignored: the file is scanned, nothing is lost.
    drop(inbox);
    release_idle_mailboxes(dir.path());
    std::fs::write(
        dir.path().join("mail/.imap/INBOX").join(INDEX_FILE),
        b"garbage",
    )
    .unwrap();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    assert_eq!(uids(&*inbox), vec![a.get(), b.get(), b.get() + 1]);
}

#[test]
fn the_index_stays_loadable_across_restarts_after_expunges() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    let a = append(
        &*inbox,
        b"Subject: a\r\n\r\nx\r\n",
        Flags::new(SystemFlags::DELETED, []),
    );
    let b = append(&*inbox, b"Subject: b\r\n\r\ny\r\n", Flags::default());
    assert_eq!(inbox.expunge(None).unwrap(), vec![a]);
    drop(inbox);
    // Three processes in a row: each loads what the one before saved (with its expunge
    // history and the mod-sequence ceiling applied), and none has to scan the file.
    for _ in 0..3 {
        release_idle_mailboxes(dir.path());
        let inbox = store.open_mbox(&MailboxName::inbox()).unwrap();
        assert_eq!(inbox.scans(), 0, "the saved index was not usable");
        assert_eq!(uids(&*inbox), vec![b.get()]);
    }
}

/// RFC 3501 6.3.5: renaming INBOX moves its messages (flags, keywords, dates, bodies) into a
/// new mailbox and leaves INBOX empty but present.
#[test]
fn renaming_inbox_moves_its_messages() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let name = |s: &str| MailboxName::new(s).unwrap();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    let flagged = Flags::new(
        SystemFlags::FLAGGED.union(SystemFlags::SEEN),
        [Keyword::new("$Work").unwrap()],
    );
    append(&*inbox, b"Subject: one\r\n\r\n1\r\n", flagged.clone());
    append(&*inbox, b"Subject: two\r\n\r\n2\r\n", Flags::default());
    drop(inbox);
    assert!(matches!(
        store.rename(&MailboxName::inbox(), &name("INBOX")),
        Err(StoreError::AlreadyExists(_))
    ));
    store
        .rename(&MailboxName::inbox(), &name("old-inbox"))
        .unwrap();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    assert_eq!(uids(&*inbox), Vec::<u32>::new());
    let moved = store.open(&name("old-inbox")).unwrap();
    let snap = moved.snapshot(false).unwrap();
    assert_eq!(snap.messages.len(), 2);
    assert_eq!(snap.messages[0].flags, flagged);
    assert_eq!(snap.messages[1].flags, Flags::default());
    let first = moved.read_message(snap.messages[0].uid).unwrap();
    assert_eq!(first, b"Subject: one\r\n\r\n1\r\n");
    assert_eq!(
        moved
            .message_info(snap.messages[0].uid)
            .unwrap()
            .internal_date,
        1_795_941_720
    );
    // A name already taken is refused before anything moves.
    let inbox_again = store.open(&MailboxName::inbox()).unwrap();
    append(
        &*inbox_again,
        b"Subject: three\r\n\r\n3\r\n",
        Flags::default(),
    );
    assert!(
        store
            .rename(&MailboxName::inbox(), &name("old-inbox"))
            .is_err()
    );
    assert_eq!(uids(&*inbox_again).len(), 1);
}

/// An index file whose checksums are right but one block of its message places does not
/// decode (a writer's bug; bit rot fails the checksums): reading a message of that block reads
/// the whole mbox for the places, and every message keeps its UID, flags and body.
#[test]
fn unreadable_places_in_the_index_are_read_again_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    let seen = Flags::new(SystemFlags::SEEN, []);
    let mut want = Vec::new();
    for n in 0..150u32 {
        let f = if n % 2 == 0 {
            seen.clone()
        } else {
            Flags::default()
        };
        let body = format!("Subject: {n}\r\n\r\nbody {n}\r\n");
        let u = append(&*inbox, body.as_bytes(), f.clone());
        want.push((u, f, body));
    }
    drop(inbox);
    release_idle_mailboxes(dir.path());
    let index = dir.path().join("mail/.imap/INBOX").join(INDEX_FILE);
    let mut bytes = std::fs::read(&index).unwrap();
    assert!(mail_index::damage_reference_block(&mut bytes, 1));
    std::fs::write(&index, &bytes).unwrap();

    let inbox = store.open_mbox(&MailboxName::inbox()).unwrap();
    assert_eq!(inbox.scans(), 0, "the saved index is used");
    let (u, _, body) = &want[99];
    assert_eq!(inbox.read_message(*u).unwrap(), body.as_bytes());
    assert_eq!(inbox.scans(), 1, "the file is read once for the places");
    crate::testing::assert_holds(&*inbox, &want);
}
