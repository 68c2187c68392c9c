//! Dovecot 2.3 in mbox mode and Columba's `MboxStore` serve the same mbox in turns and agree on
//! UIDVALIDITY, UIDs, flags, keywords and bodies: Dovecot writes first (APPEND with flags and
//! keywords, a body with `From ` lines), Columba reads, changes flags, appends and expunges,
//! Dovecot reads that and appends, and Columba picks Dovecot's message up with Dovecot's UID.
//!
//! Without a `dovecot` binary the test prints "skipping: dovecot not installed" and passes,
//! unless `COLUMBA_REQUIRE_EXTERNAL=1`.

use std::os::unix::fs::chown;
use std::path::Path;

use mail_store::mbox::{MboxSettings, MboxStore, release_idle_mailboxes};
use mail_store::{FlagChange, MailStore, Mailbox};
use mail_types::{Flags, Keyword, MailboxName, SystemFlags, Uid};
use test_support::{Dovecot, ImapClient, Response};

fn ok(c: &mut ImapClient, command: &str) -> Vec<String> {
    match c.command(command).and_then(Response::ok) {
        Ok(r) => r
            .untagged
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect(),
        Err(e) => panic!("{command}: {e}"),
    }
}

fn append(c: &mut ImapClient, flags: &str, msg: &[u8]) -> u32 {
    let r = c
        .append_with("INBOX", flags, None, msg)
        .and_then(Response::ok)
        .unwrap_or_else(|e| panic!("APPEND: {e}"));
    r.append_uid().expect("APPENDUID").1
}

/// `(uid, flags)` of every message, from `UID FETCH 1:* (FLAGS)` responses.
fn uid_flags(lines: &[String]) -> Vec<(u32, String)> {
    let mut out: Vec<(u32, String)> = lines
        .iter()
        .filter_map(|l| {
            let uid = l
                .split("UID ")
                .nth(1)?
                .split([' ', ')'])
                .next()?
                .parse()
                .ok()?;
            let flags = l.split("FLAGS (").nth(1)?.split(')').next()?.to_owned();
            let mut words: Vec<&str> = flags
                .split(' ')
                .filter(|w| !w.is_empty() && *w != "\\Recent")
                .collect();
            words.sort_unstable();
            Some((uid, words.join(" ")))
        })
        .collect();
    out.sort();
    out
}

fn give_to(path: &Path, owner: Option<(u32, u32)>) {
    let Some((uid, gid)) = owner else { return };
    let _ = chown(path, Some(uid), Some(gid));
    if let Ok(entries) = std::fs::read_dir(path) {
        for e in entries.flatten() {
            give_to(&e.path(), owner);
        }
    }
}

fn flags(system: SystemFlags, keywords: &[&str]) -> Flags {
    Flags::new(system, keywords.iter().map(|k| Keyword::new(k).unwrap()))
}

fn snapshot(mailbox: &dyn Mailbox) -> Vec<(u32, Flags)> {
    mailbox
        .snapshot(false)
        .unwrap()
        .messages
        .into_iter()
        .map(|m| (m.uid.get(), m.flags))
        .collect()
}

#[test]
fn dovecot_and_columba_take_turns_on_one_mbox() {
    let Some(home) = Dovecot::builder()
        .mail_location("mbox:~/mail:INBOX=~/mail/inbox")
        .prepare()
    else {
        return;
    };
    let mail = home.home().join("mail");
    std::fs::create_dir_all(&mail).unwrap();
    let owner = home.mail_owner();
    let dovecot = home.start();

    // 1. Dovecot writes.
    let body_with_from = b"Subject: one\r\n\r\nFrom the start\r\n>From quoted\r\nend\r\n";
    let mut c = dovecot.connect().unwrap();
    assert_eq!(append(&mut c, "\\Seen", body_with_from), 1);
    assert_eq!(
        append(&mut c, "\\Flagged work", b"Subject: two\r\n\r\ntwo\r\n"),
        2
    );
    assert_eq!(append(&mut c, "", b"Subject: three\r\n\r\nthree\r\n"), 3);
    let select = ok(&mut c, "SELECT INBOX");
    let uv: u32 = select
        .iter()
        .find_map(|l| {
            l.split("UIDVALIDITY ")
                .nth(1)?
                .split(']')
                .next()?
                .parse()
                .ok()
        })
        .expect("UIDVALIDITY");
    ok(&mut c, "LOGOUT");
    drop(c);

    // 2. Columba reads what Dovecot wrote, then changes it.
    let store = MboxStore::new(mail.clone(), mail.join("inbox"), MboxSettings::default()).unwrap();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    assert_eq!(inbox.uid_validity().get(), uv);
    assert_eq!(
        snapshot(&*inbox),
        vec![
            (1, flags(SystemFlags::SEEN, &[])),
            (2, flags(SystemFlags::FLAGGED, &["work"])),
            (3, flags(SystemFlags::empty(), &[])),
        ]
    );
    // Dovecot stores the body unquoted with a Content-Length, and that is what comes back.
    let one = Uid::new(1).unwrap();
    assert_eq!(inbox.read_message(one).unwrap(), body_with_from);
    assert_eq!(
        inbox.message_info(one).unwrap().size,
        body_with_from.len() as u64
    );
    let two = Uid::new(2).unwrap();
    inbox
        .store_flags(&[two], &FlagChange::Add(flags(SystemFlags::DELETED, &[])))
        .unwrap();
    assert_eq!(inbox.expunge(None).unwrap(), vec![two]);
    inbox
        .store_flags(
            &[Uid::new(3).unwrap()],
            &FlagChange::Add(flags(SystemFlags::ANSWERED, &["$Forwarded"])),
        )
        .unwrap();
    let mut w = inbox.begin_append().unwrap();
    w.write(b"Subject: four\r\n\r\nFrom Columba\r\n").unwrap();
    assert_eq!(
        w.commit(flags(SystemFlags::DRAFT, &[]), None)
            .unwrap()
            .get(),
        4
    );
    drop(inbox);
    release_idle_mailboxes(&mail);
    give_to(&mail, owner);

    // 3. Dovecot reads what Columba wrote, and appends.
    let mut c = dovecot.connect().unwrap();
    let select = ok(&mut c, "SELECT INBOX");
    assert!(
        select
            .iter()
            .any(|l| l.contains(&format!("UIDVALIDITY {uv}"))),
        "{select:?}"
    );
    let fetched = ok(&mut c, "UID FETCH 1:* (FLAGS)");
    assert_eq!(
        uid_flags(&fetched),
        vec![
            (1, "\\Seen".to_owned()),
            (3, "$Forwarded \\Answered".to_owned()),
            (4, "\\Draft".to_owned()),
        ],
        "{fetched:?}"
    );
    let body = ok(&mut c, "UID FETCH 4 (BODY.PEEK[TEXT])");
    assert!(body.iter().any(|l| l.contains("From Columba")), "{body:?}");
    assert_eq!(
        append(&mut c, "\\Seen", b"Subject: five\r\n\r\nfive\r\n"),
        5
    );
    ok(&mut c, "LOGOUT");
    drop(c);

    // 4. Columba sees Dovecot's message under Dovecot's UID.
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    inbox.refresh().unwrap();
    let uids: Vec<u32> = snapshot(&*inbox).into_iter().map(|(u, _)| u).collect();
    assert_eq!(uids, vec![1, 3, 4, 5]);
    assert_eq!(
        inbox.read_message(Uid::new(5).unwrap()).unwrap(),
        b"Subject: five\r\n\r\nfive\r\n"
    );
    let complaints = dovecot.complaints();
    assert!(complaints.is_empty(), "{complaints:?}");
}
