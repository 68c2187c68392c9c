//! Columba opens mbox files written by the real programs (`tests/fixtures/mbox/`, made by
//! `scripts/regen-mbox-fixtures`) and must see what those programs meant: UIDs, UIDVALIDITY,
//! flags, keywords, `\Recent`, INTERNALDATE, bodies and sizes with the metadata headers hidden.
//! Opening a file without UIDs writes them into it, and the result is still the same mailbox.

use std::path::Path;

use mail_store::mbox::{MboxSettings, MboxStore, release_idle_mailboxes};
use mail_store::{MailStore, Mailbox};
use mail_types::{Flags, Keyword, MailboxName, SystemFlags, Uid};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/mbox");

/// A store whose INBOX is a copy of fixture `name`.
fn open_fixture(dir: &Path, name: &str) -> (MboxStore, std::sync::Arc<dyn Mailbox>) {
    let inbox = dir.join("inbox");
    std::fs::copy(Path::new(FIXTURES).join(name), &inbox).unwrap();
    let store = MboxStore::new(dir.join("mail"), inbox, MboxSettings::default()).unwrap();
    let mailbox = store.open(&MailboxName::inbox()).unwrap();
    (store, mailbox)
}

fn flags(system: SystemFlags, keywords: &[&str]) -> Flags {
    Flags::new(system, keywords.iter().map(|k| Keyword::new(k).unwrap()))
}

/// `(uid, flags, body, size)` of every message.
fn contents(mailbox: &dyn Mailbox) -> Vec<(u32, Flags, String, u64)> {
    mailbox
        .snapshot(false)
        .unwrap()
        .messages
        .into_iter()
        .map(|m| {
            let body = mailbox.read_message(m.uid).unwrap();
            let size = mailbox.message_info(m.uid).unwrap().size;
            (m.uid.get(), m.flags, String::from_utf8(body).unwrap(), size)
        })
        .collect()
}

fn date_of(mailbox: &dyn Mailbox, uid: u32) -> i64 {
    mailbox
        .message_info(Uid::new(uid).unwrap())
        .unwrap()
        .internal_date
}

#[test]
fn dovecot_mbox() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, inbox) = open_fixture(dir.path(), "dovecot.mbox");
    let text = std::fs::read_to_string(Path::new(FIXTURES).join("dovecot.mbox")).unwrap();
    let uv: u32 = text
        .split("X-IMAPbase: ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert_eq!(inbox.uid_validity().get(), uv);
    let one = "From: a@example.com\r\nTo: b@example.com\r\nSubject: one\r\n\r\n\
               body\r\nFrom here on\r\n>From there\r\n";
    let two = "From: c@example.com\r\nSubject: two\r\n\r\ntwo\r\n";
    let three = "From: d@example.com\r\nSubject: three\r\n\r\nthree\r\n";
    assert_eq!(
        contents(&*inbox),
        vec![
            (
                1,
                flags(SystemFlags::SEEN, &[]),
                one.to_owned(),
                one.len() as u64
            ),
            (
                2,
                flags(
                    SystemFlags::ANSWERED.union(SystemFlags::FLAGGED),
                    &["$Forwarded"]
                ),
                two.to_owned(),
                two.len() as u64
            ),
            (
                3,
                flags(SystemFlags::DELETED, &["work"]),
                three.to_owned(),
                three.len() as u64
            ),
        ]
    );
    let keywords: Vec<String> = inbox
        .keywords()
        .unwrap()
        .iter()
        .map(|k| k.to_string())
        .collect();
    assert_eq!(keywords, vec!["$Forwarded", "work"]);
    assert_eq!(inbox.status().unwrap().uid_next.get(), 4);
    // Dovecot's file already had every UID: opening it changed nothing.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("inbox")).unwrap(),
        text
    );
}

#[test]
fn procmail_mbox() {
    let dir = tempfile::tempdir().unwrap();
    let (store, inbox) = open_fixture(dir.path(), "procmail.mbox");
    // procmail quotes mboxo-style; read as mboxrd, both quoted lines lose one `>`.
    let first = "From: alice@example.com\r\nSubject: first\r\n\r\n\
                 From the body\r\nFrom quoted\r\nend\r\n";
    let second = "From: bob@example.com\r\nSubject: second\r\n\r\nsecond\r\n";
    let third = "From: carol@example.com\r\nSubject: third\r\n\r\nthird\r\n";
    let none = Flags::default();
    let expected = vec![
        (1, none.clone(), first.to_owned(), first.len() as u64),
        (2, none.clone(), second.to_owned(), second.len() as u64),
        (3, none.clone(), third.to_owned(), third.len() as u64),
    ];
    assert_eq!(contents(&*inbox), expected);
    // Nobody has seen them (no `Status: O`).
    let recent: Vec<u32> = inbox
        .snapshot(false)
        .unwrap()
        .recent
        .iter()
        .map(|u| u.get())
        .collect();
    assert_eq!(recent, vec![1, 2, 3]);
    // INTERNALDATE from the `From ` lines (Sun Nov 29 08:42:00, 09:00:00, 10:30:15 2026 UTC).
    assert_eq!(date_of(&*inbox, 1), 1_795_941_720);
    assert_eq!(date_of(&*inbox, 2), 1_795_942_800);
    assert_eq!(date_of(&*inbox, 3), 1_795_948_215);

    // The UIDs went into the file, so that another reader (or a restart) sees the same ones.
    let uv = inbox.uid_validity();
    let text = std::fs::read_to_string(dir.path().join("inbox")).unwrap();
    assert!(
        text.contains(&format!("X-IMAPbase: {} 0000000003\n", uv.get())),
        "{text}"
    );
    for uid in 1..=3 {
        assert!(text.contains(&format!("X-UID: {uid}\n")), "{text}");
    }
    drop(inbox);
    release_idle_mailboxes(dir.path());
    let again = store.open(&MailboxName::inbox()).unwrap();
    assert_eq!(again.uid_validity(), uv);
    assert_eq!(contents(&*again), expected);
}

#[test]
fn mutt_mbox() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, inbox) = open_fixture(dir.path(), "mutt.mbox");
    // mutt wrote Content-Length: the bodies are verbatim, quoting and all, as mutt shows them.
    let first = "From: alice@example.com\r\nSubject: first\r\nLines: 3\r\n\r\n\
                 >From the body\r\n>From quoted\r\nend\r\n";
    let second = "From: bob@example.com\r\nSubject: second\r\nLines: 1\r\n\r\nsecond\r\n";
    let third = "From: carol@example.com\r\nSubject: third\r\nLines: 1\r\n\r\nthird\r\n";
    assert_eq!(
        contents(&*inbox),
        vec![
            (
                1,
                flags(SystemFlags::SEEN, &[]),
                first.to_owned(),
                first.len() as u64
            ),
            (2, Flags::default(), second.to_owned(), second.len() as u64),
            (
                3,
                flags(SystemFlags::FLAGGED, &[]),
                third.to_owned(),
                third.len() as u64
            ),
        ]
    );
    // `Status: O` on every message: none is `\Recent`.
    assert!(inbox.snapshot(false).unwrap().recent.is_empty());
}
