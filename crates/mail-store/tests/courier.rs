//! A Maildir that Courier-IMAP served (`courierimapuiddb`, no `dovecot-uidlist`) opens with
//! Courier's UIDVALIDITY and UIDs, as Dovecot takes such a tree over, and from then on has a
//! `dovecot-uidlist` that says the same; its `courierimapsubscribed` names stay subscribed, its
//! `courierimapkeywords/` keywords become file-name letters, and the UIDLs of Courier's POP3
//! server (`courierpop3dsizelist`) are kept as the records' `P` fields.
//!
//! `fixtures/courier/` is a Maildir that the real Courier servers (courier-imap 5.0.13,
//! Debian bookworm) wrote, with what they reported (`expected/`);
//! `scripts/regen-courier-fixtures` remakes it.
//! Once Columba has taken it over, a real Dovecot (test-support's) must show the same: the
//! keywords and UIDs are then in Dovecot's own files. Without a `dovecot` binary that part
//! prints "skipping: dovecot not installed", unless `COLUMBA_REQUIRE_EXTERNAL=1`.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use mail_store::maildir::{MaildirStore, release_idle_mailboxes};
use mail_store::{MailStore, Mailbox};
use mail_types::{MailboxName, SystemFlags, Uid};
use proptest::prelude::*;
use test_support::{Dovecot, Response};

#[test]
fn courier_uids_and_uidvalidity_carry_over() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    let message = |subject: &str| format!("Subject: {subject}\n\nbody\n");
    std::fs::write(root.join("cur/1600000001.M1P1.host:2,S"), message("one")).unwrap();
    std::fs::write(root.join("cur/1600000002.M2P1.host:2,F"), message("two")).unwrap();
    std::fs::write(root.join("new/1600000003.M3P1.host"), message("three")).unwrap();
    // Courier's file: version 1, UIDVALIDITY 1234567, next UID 40; the third message arrived
    // after Courier last looked.
    std::fs::write(
        root.join("courierimapuiddb"),
        "1 1234567 40\n7 1600000001.M1P1.host\n31 1600000002.M2P1.host\n",
    )
    .unwrap();

    let store = MaildirStore::new(root.clone()).unwrap();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    assert_eq!(inbox.uid_validity().get(), 1_234_567);
    let snapshot = inbox.snapshot(false).unwrap();
    let found: Vec<(u32, bool, bool)> = snapshot
        .messages
        .iter()
        .map(|m| {
            let sys = m.flags.system;
            (
                m.uid.get(),
                sys.contains(SystemFlags::SEEN),
                sys.contains(SystemFlags::FLAGGED),
            )
        })
        .collect();
    assert_eq!(
        found,
        [(7, true, false), (31, false, true), (40, false, false)]
    );

    let uidlist = std::fs::read_to_string(root.join("dovecot-uidlist")).unwrap();
    let header = uidlist.lines().next().unwrap();
    assert!(header.starts_with("3 V1234567 N41"), "{uidlist}");
    let uid_of = |base: &str| {
        uidlist
            .lines()
            .find(|l| l.ends_with(&format!(":{base}")))
            .and_then(|l| l.split(' ').next())
            .map(str::to_owned)
    };
    assert_eq!(
        uid_of("1600000001.M1P1.host").as_deref(),
        Some("7"),
        "{uidlist}"
    );
    assert_eq!(
        uid_of("1600000003.M3P1.host").as_deref(),
        Some("40"),
        "{uidlist}"
    );
    // Courier's own file is left for Courier.
    assert!(root.join("courierimapuiddb").exists());
}

#[test]
fn courier_subscriptions_carry_over() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("Maildir");
    for dir in ["", ".Sent", ".Lists.rust"] {
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(root.join(dir).join(sub)).unwrap();
        }
    }
    std::fs::write(
        root.join("courierimapsubscribed"),
        "INBOX\nINBOX.Sent\nINBOX.Lists.rust\n",
    )
    .unwrap();
    let store = MaildirStore::new(root.clone()).unwrap();
    let names = |store: &MaildirStore| -> Vec<String> {
        store
            .subscriptions()
            .unwrap()
            .iter()
            .map(|n| n.as_str().to_owned())
            .collect()
    };
    assert_eq!(names(&store), ["INBOX", "Sent", "Lists/rust"]);
    // A change writes them into Columba's (Dovecot's) own file, with the change.
    store
        .set_subscribed(&MailboxName::new("Sent").unwrap(), false)
        .unwrap();
    assert_eq!(names(&store), ["INBOX", "Lists/rust"]);
    let ours = std::fs::read_to_string(root.join("subscriptions")).unwrap();
    assert!(ours.contains("Lists\trust"), "{ours:?}");
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/courier")
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The fixture's Maildir in a scratch directory, with the empty directories git does not keep.
fn courier_maildir(tmp: &Path) -> PathBuf {
    let root = tmp.join("Maildir");
    copy_tree(&fixture().join("Maildir"), &root);
    for dir in ["", ".Lists"] {
        for sub in ["cur", "new", "tmp"] {
            fs::create_dir_all(root.join(dir).join(sub)).unwrap();
        }
    }
    root
}

/// Every file below `dir` with its content, to prove a tree was left alone.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else {
                out.push((entry.path(), fs::read(entry.path()).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// One message as Courier's `FETCH (UID FLAGS RFC822.SIZE)` showed it.
#[derive(Debug, PartialEq, Eq)]
struct Shown {
    uid: u32,
    flags: BTreeSet<String>,
    size: u64,
}

/// The FETCH lines of an `expected/*.imap` file, and the STATUS UIDVALIDITY if there is one.
fn courier_imap(name: &str) -> (Vec<Shown>, Option<u32>) {
    let text = fs::read_to_string(fixture().join("expected").join(name)).unwrap();
    let mut shown = Vec::new();
    let mut uid_validity = None;
    for line in text.lines() {
        if let Some(rest) = line.split_once("UIDVALIDITY ").map(|(_, r)| r) {
            uid_validity = Some(rest.trim_end_matches(')').parse().unwrap());
            continue;
        }
        shown.push(shown_of(line));
    }
    (shown, uid_validity)
}

/// A `FETCH (UID FLAGS RFC822.SIZE)` response line, in any order of its items, without the
/// session-dependent `\Recent`.
fn shown_of(line: &str) -> Shown {
    let field = |name: &str| line.split_once(name).map(|(_, r)| r).unwrap();
    let number = |name: &str| {
        field(name)
            .split([' ', ')'])
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    Shown {
        uid: number("UID ") as u32,
        flags: field("FLAGS (")
            .split(')')
            .next()
            .unwrap()
            .split_whitespace()
            .filter(|f| *f != "\\Recent")
            .map(str::to_ascii_lowercase)
            .collect(),
        size: number("RFC822.SIZE "),
    }
}

/// Courier POP3's UIDL and LIST answers: (UIDL, size) by message number.
fn courier_pop3() -> Vec<(String, u64)> {
    let text = fs::read_to_string(fixture().join("expected/pop3")).unwrap();
    let mut blocks = text.split("\n.\n");
    let block = |b: &str| -> Vec<(String, String)> {
        b.lines()
            .filter(|l| !l.starts_with('+'))
            .map(|l| {
                let (n, v) = l.split_once(' ').unwrap();
                (n.to_owned(), v.to_owned())
            })
            .collect()
    };
    let uidls = block(blocks.next().unwrap());
    let sizes = block(blocks.next().unwrap());
    uidls
        .into_iter()
        .zip(sizes)
        .map(|((n, uidl), (m, size))| {
            assert_eq!(n, m);
            (uidl, size.parse().unwrap())
        })
        .collect()
}

/// What Columba shows of a mailbox, as Courier's FETCH would.
fn columba_shows(mailbox: &dyn Mailbox) -> Vec<Shown> {
    mailbox
        .snapshot(false)
        .unwrap()
        .messages
        .iter()
        .map(|m| Shown {
            uid: m.uid.get(),
            flags: m
                .flags
                .iter()
                .map(|f| f.to_string().to_ascii_lowercase())
                .collect(),
            size: mailbox.message_info(m.uid).unwrap().size,
        })
        .collect()
}

#[test]
fn real_courier_maildir_opens_with_its_uids_keywords_and_pop3_uidls() {
    let tmp = tempfile::tempdir().unwrap();
    let root = courier_maildir(tmp.path());
    let courier_kw = tree(&root.join("courierimapkeywords"));
    let courier_lists_kw = tree(&root.join(".Lists/courierimapkeywords"));
    let courier_sizelist = fs::read(root.join("courierpop3dsizelist")).unwrap();
    let (inbox_shown, uid_validity) = courier_imap("INBOX.imap");
    let (lists_shown, _) = courier_imap("Lists.imap");
    let pop3 = courier_pop3();
    assert_eq!(inbox_shown.len(), 3, "fixture");
    assert_eq!(pop3.len(), 3, "fixture");

    let check = |store: &MaildirStore| {
        let inbox = store.open(&MailboxName::inbox()).unwrap();
        assert_eq!(Some(inbox.uid_validity().get()), uid_validity);
        let shown = columba_shows(&*inbox);
        // Courier's three messages as Courier showed them; the one delivered after Courier's
        // last session gets the next UID, no flags and (being new) \Recent.
        assert_eq!(shown[..3], inbox_shown[..]);
        assert_eq!(shown.len(), 4);
        assert_eq!(shown[3].uid, 5);
        for (m, (uidl, size)) in shown.iter().zip(&pop3) {
            let uid = Uid::new(m.uid).unwrap();
            assert_eq!(inbox.stored_uidl(uid).as_deref(), Some(uidl.as_str()));
            assert_eq!(m.size, *size);
        }
        assert_eq!(inbox.stored_uidl(Uid::new(5).unwrap()), None);
        // Bodies intact, with CRLF line ends as IMAP and POP3 send them.
        for m in &shown {
            let body = inbox.read_message(Uid::new(m.uid).unwrap()).unwrap();
            assert_eq!(body.len() as u64, m.size);
            assert!(body.ends_with(b"Second line.\r\n"));
        }
        let lists = store.open(&MailboxName::new("Lists").unwrap()).unwrap();
        assert_eq!(columba_shows(&*lists), lists_shown);
    };

    let store = MaildirStore::new(root.clone()).unwrap();
    check(&store);
    // Kept in Dovecot's form: letters in file names named by dovecot-keywords, UIDLs in the
    // uidlist records.
    let keywords = fs::read_to_string(root.join("dovecot-keywords")).unwrap();
    for k in ["Work", "$Forwarded", "$Label1", "Later"] {
        assert!(
            keywords.lines().any(|l| l.ends_with(&format!(" {k}"))),
            "{keywords}"
        );
    }
    let uidlist = fs::read_to_string(root.join("dovecot-uidlist")).unwrap();
    for (uidl, _) in &pop3 {
        assert!(uidlist.contains(&format!(" P{uidl} ")), "{uidlist}");
    }
    let cur: Vec<String> = fs::read_dir(root.join("cur"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let work = keywords
        .lines()
        .find_map(|l| l.strip_suffix(" Work"))
        .and_then(|i| i.parse::<u8>().ok())
        .map(|i| char::from(b'a' + i))
        .unwrap();
    assert!(
        cur.iter()
            .any(|n| n.starts_with("1600000002.") && n.ends_with(&format!(":2,F{work}"))),
        "{cur:?}"
    );
    // Courier's files are as Courier left them, for a rollback.
    assert_eq!(tree(&root.join("courierimapkeywords")), courier_kw);
    assert_eq!(
        tree(&root.join(".Lists/courierimapkeywords")),
        courier_lists_kw
    );
    assert_eq!(
        fs::read(root.join("courierpop3dsizelist")).unwrap(),
        courier_sizelist
    );

    // A restarted server, even with Courier's files gone, shows the same.
    drop(store);
    release_idle_mailboxes(&root);
    fs::remove_dir_all(root.join("courierimapkeywords")).unwrap();
    fs::remove_dir_all(root.join(".Lists/courierimapkeywords")).unwrap();
    fs::remove_file(root.join("courierpop3dsizelist")).unwrap();
    for f in ["columba.index", ".Lists/columba.index"] {
        let _ = fs::remove_file(root.join(f));
    }
    check(&MaildirStore::new(root.clone()).unwrap());
}

/// A tree like Courier's, with `:list` and `courierpop3dsizelist` as given.
fn open_with(list: &[u8], sizelist: &[u8]) -> (tempfile::TempDir, std::sync::Arc<dyn Mailbox>) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("Maildir");
    for sub in ["cur", "new", "tmp", "courierimapkeywords"] {
        fs::create_dir_all(root.join(sub)).unwrap();
    }
    for (i, name) in [
        "1600000001.M1P1.h:2,S",
        "1600000002.M2P1.h:2,",
        "1600000003.M3P1.h",
    ]
    .iter()
    .enumerate()
    {
        let dir = if name.contains(':') { "cur" } else { "new" };
        fs::write(
            root.join(dir).join(name),
            format!("Subject: {i}\n\nbody {i}\n"),
        )
        .unwrap();
    }
    fs::write(
        root.join("courierimapuiddb"),
        "1 77 10\n3 1600000001.M1P1.h\n4 1600000002.M2P1.h\n",
    )
    .unwrap();
    fs::write(root.join("courierimapkeywords/:list"), list).unwrap();
    fs::write(root.join("courierpop3dsizelist"), sizelist).unwrap();
    let store = MaildirStore::new(root).unwrap();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    (tmp, inbox)
}

/// Whatever Courier's files hold, every message opens with its UID and body.
fn assert_mail_intact(inbox: &dyn Mailbox) {
    let snap = inbox.snapshot(false).unwrap();
    let uids: Vec<u32> = snap.messages.iter().map(|m| m.uid.get()).collect();
    assert_eq!(uids, [3, 4, 10]);
    assert!(snap.messages[0].flags.system.contains(SystemFlags::SEEN));
    for (i, m) in snap.messages.iter().enumerate() {
        let body = inbox.read_message(m.uid).unwrap();
        assert_eq!(body, format!("Subject: {i}\r\n\r\nbody {i}\r\n").as_bytes());
        if let Some(uidl) = inbox.stored_uidl(m.uid) {
            assert!(!uidl.is_empty() && uidl.bytes().all(|b| (0x21..=0x7e).contains(&b)));
        }
    }
}

#[test]
fn hostile_courier_files_give_warnings_and_fallbacks() {
    // (`:list`, `courierpop3dsizelist`, keywords of UIDs 3, 4 and 10, UIDLs of UIDs 3, 4, 10)
    type Case<'a> = (&'a [u8], &'a [u8], [&'a [&'a str]; 3], [Option<&'a str>; 3]);
    let cases: &[Case] = &[
        (
            b"a\nb\n\n1600000001.M1P1.h:0 1\n1600000003.M3P1.h:1\n",
            b"/3 4 99\n1600000001.M1P1.h:2,S 20 1:99:0\n1600000003.M3P1.h 20 3:99:0\n",
            [&["a", "b"], &[], &["b"]],
            [Some("UID1-99"), None, Some("UID3-99")],
        ),
        // Garbage everywhere: nothing imported, nothing lost.
        (
            b"\xff\0\x01",
            b"\0\0\0garbage",
            [&[], &[], &[]],
            [None, None, None],
        ),
        // Names with '/', control characters or a backslash, indexes out of range, huge counts.
        (
            b"ok\n../../etc\nc\x01d\n\\Seen\n\n1600000001.M1P1.h:0 1 2 3 4 18446744073709551616\n",
            b"/3 1 1\n1600000001.M1P1.h 20 99999999999999999999999:1\n1600000002.M2P1.h 5 2:3\n",
            // `../../etc` is a valid IMAP keyword; it is never used as a path.
            [&["../../etc", "ok"], &[], &[]],
            [None, Some("UID2-3"), None],
        ),
        // An unknown sizelist version is ignored as Courier ignores it.
        (
            b"",
            b"/7 5 5\n1600000001.M1P1.h 20 1:5\n",
            [&[], &[], &[]],
            [None, None, None],
        ),
    ];
    for (list, sizelist, keywords, uidls) in cases {
        let (_tmp, inbox) = open_with(list, sizelist);
        assert_mail_intact(&*inbox);
        let snap = inbox.snapshot(false).unwrap();
        for (i, m) in snap.messages.iter().enumerate() {
            let mut have: Vec<String> = m.flags.keywords().iter().map(|k| k.to_string()).collect();
            have.sort();
            assert_eq!(have, keywords[i], "{:?}", String::from_utf8_lossy(list));
            assert_eq!(inbox.stored_uidl(m.uid).as_deref(), uidls[i]);
        }
    }
}

#[test]
fn more_courier_keywords_than_maildir_letters() {
    let mut list = String::new();
    for i in 0..40 {
        list.push_str(&format!("kw{i}\n"));
    }
    list.push_str("\n1600000001.M1P1.h:");
    for i in 0..40 {
        list.push_str(&format!(" {i}"));
    }
    list.push('\n');
    let (_tmp, inbox) = open_with(list.as_bytes(), b"");
    assert_mail_intact(&*inbox);
    let snap = inbox.snapshot(false).unwrap();
    // The first 26 fit the letters a..z; the others stay in Courier's directory only.
    assert_eq!(snap.messages[0].flags.keywords().len(), 26);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn any_courier_files_leave_the_mail_intact(
        list in proptest::collection::vec(any::<u8>(), 0..300),
        sizelist in proptest::collection::vec(any::<u8>(), 0..300),
        prefix in prop::sample::select(vec![&b""[..], b"a\nb\n\n1600000001.M1P1.h:", b"/3 2 7\n1600000002.M2P1.h "]),
    ) {
        let mut list_bytes = prefix.to_vec();
        list_bytes.extend_from_slice(&list);
        let mut sizelist_bytes = prefix.to_vec();
        sizelist_bytes.extend_from_slice(&sizelist);
        let (_tmp, inbox) = open_with(&list_bytes, &sizelist_bytes);
        assert_mail_intact(&*inbox);
    }
}

#[test]
fn pop3_only_courier_maildir_keeps_its_uidls() {
    // Courier's POP3 server alone served this INBOX: no courierimapuiddb, so the UIDs are new,
    // but the UIDLs (version 2 and version 0 lines) are Courier's.
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(root.join(sub)).unwrap();
    }
    for name in [
        "1500000001.M1P1.h:2,S",
        "1500000002.M2P1.h:2,",
        "1500000003.M3P1.h:2,",
    ] {
        fs::write(root.join("cur").join(name), "Subject: x\n\nbody\n").unwrap();
    }
    fs::write(
        root.join("courierpop3dsizelist"),
        "/2 8 424242\n1500000001.M1P1.h:2,S 20 6:424242\n1500000002.M2P1.h 20 0:424242\n",
    )
    .unwrap();
    let store = MaildirStore::new(root).unwrap();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    let snapshot = inbox.snapshot(false).unwrap();
    let uidls: Vec<Option<String>> = snapshot
        .messages
        .iter()
        .map(|m| inbox.stored_uidl(m.uid))
        .collect();
    assert_eq!(
        uidls,
        [
            Some("UID6-424242".to_owned()),
            Some("1500000002.M2P1.h".to_owned()),
            None
        ]
    );
}

/// The keywords Columba wrote in Dovecot's form are Dovecot's keywords: Dovecot, serving the tree
/// Columba took over from Courier, shows Courier's UIDVALIDITY, UIDs, flags and sizes.
#[test]
fn dovecot_serves_the_courier_tree_columba_took_over() {
    let Some(home) = Dovecot::builder()
        .mail_plugin("listescape")
        .inbox_separator('/')
        .prepare()
    else {
        return;
    };
    let root = home.maildir();
    copy_tree(&fixture().join("Maildir"), &root);
    for dir in ["", ".Lists"] {
        for sub in ["cur", "new", "tmp"] {
            fs::create_dir_all(root.join(dir).join(sub)).unwrap();
        }
    }
    {
        let store = MaildirStore::new(root.clone()).unwrap();
        for name in ["INBOX", "Lists"] {
            store.open(&MailboxName::new(name).unwrap()).unwrap();
        }
    }
    release_idle_mailboxes(&root);
    let dovecot = home.start();
    let mut c = dovecot.connect().expect("login");
    let mut untagged = |command: &str| -> Vec<String> {
        let r = c.command(command).and_then(Response::ok);
        let r = r.unwrap_or_else(|e| panic!("{command}: {e}"));
        r.untagged
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect()
    };
    let fetch = |lines: Vec<String>| -> Vec<Shown> {
        lines
            .iter()
            .filter(|l| l.contains(" FETCH "))
            .map(|l| shown_of(l))
            .collect()
    };
    let (inbox_shown, uid_validity) = courier_imap("INBOX.imap");
    let (lists_shown, _) = courier_imap("Lists.imap");
    let status = untagged("STATUS INBOX (UIDVALIDITY)").concat();
    assert!(
        status.contains(&format!("UIDVALIDITY {})", uid_validity.unwrap())),
        "{status}"
    );
    untagged("EXAMINE INBOX");
    let shown = fetch(untagged("FETCH 1:* (UID FLAGS RFC822.SIZE)"));
    assert_eq!(shown[..3], inbox_shown[..]);
    assert_eq!(shown.len(), 4);
    untagged("EXAMINE Lists");
    assert_eq!(
        fetch(untagged("FETCH 1:* (UID FLAGS RFC822.SIZE)")),
        lists_shown
    );
}
