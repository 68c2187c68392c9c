//! Columba and a real Dovecot 2.3 read each other's Maildirs.
//!
//! (a) Dovecot writes (APPEND with flags and keywords, CREATE, SUBSCRIBE, EXPUNGE), then
//!     Columba's `MaildirStore` opens the same tree and must see the same UIDVALIDITY, UIDs,
//!     flags, keywords, folder names, subscriptions, dates, sizes and bodies.
//! (b) Columba writes a tree, then Dovecot serves it and must report the same values through
//!     FETCH, LIST, LSUB and STATUS; Dovecot then changes it and Columba picks that up.
//!
//! Dovecot is test-support's throwaway server, configured with the `listescape` plugin and `/`
//! as separator (the layout Columba uses) and Dovecot's default `mail_fsync`. When the test runs
//! as root the tree belongs to the unprivileged mail user. Without a `dovecot` binary the tests
//! print "skipping: dovecot not installed" and pass, unless `COLUMBA_REQUIRE_EXTERNAL=1`.

use std::collections::BTreeMap;
use std::fs;
use std::process::{Command, Stdio};
use std::time::Duration;

use mail_store::maildir::MaildirStore;
use mail_store::{FlagChange, MailStore, Mailbox};
use mail_types::{Flag, Flags, Keyword, MailboxName, SystemFlags, Uid, utf7};
use test_support::{Dovecot, DovecotBuilder, ImapClient, Response};

/// Dovecot laid out as Columba lays out a Maildir.
fn dovecot() -> DovecotBuilder {
    Dovecot::builder()
        .mail_plugin("listescape")
        .inbox_separator('/')
        .mail_fsync("optimized")
}

/// Runs a command that must succeed and returns its untagged responses.
fn ok(c: &mut ImapClient, command: &str) -> Vec<Vec<u8>> {
    match c.command(command).and_then(Response::ok) {
        Ok(r) => r.untagged,
        Err(e) => panic!("{command}: {e}"),
    }
}

/// APPENDs a message that must be accepted and returns its UID.
fn imap_append(
    c: &mut ImapClient,
    mailbox: &str,
    flags: &str,
    date: Option<&str>,
    msg: &[u8],
) -> u32 {
    let r = c
        .append_with(mailbox, flags, date, msg)
        .and_then(Response::ok)
        .unwrap_or_else(|e| panic!("APPEND to {mailbox}: {e}"));
    r.append_uid()
        .unwrap_or_else(|| panic!("no APPENDUID in {}", r.text))
        .1
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Every message of the selected mailbox as Dovecot shows it.
fn fetch_all(c: &mut ImapClient) -> Vec<Fetched> {
    ok(
        c,
        "FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])",
    )
    .iter()
    .map(|l| parse_fetch(l))
    .collect()
}

/// One message as a FETCH response shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fetched {
    uid: u32,
    flags: Vec<String>,
    internal_date: String,
    size: u64,
    body: Vec<u8>,
}

fn parse_fetch(resp: &[u8]) -> Fetched {
    let text = String::from_utf8_lossy(resp);
    let after = |key: &str| -> &str {
        text.split(key)
            .nth(1)
            .unwrap_or_else(|| panic!("{key} in {text}"))
    };
    let number = |s: &str| -> u64 {
        s.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap()
    };
    let mut flags: Vec<String> = after("FLAGS (")
        .split(')')
        .next()
        .unwrap()
        .split(' ')
        .filter(|f| !f.is_empty() && *f != "\\Recent")
        .map(str::to_owned)
        .collect();
    flags.sort();
    let body_start = resp
        .windows(8)
        .position(|w| w == b"BODY[] {")
        .expect("BODY[]");
    let size_text = &resp[body_start + 8..];
    let close = size_text.iter().position(|&b| b == b'}').unwrap();
    let len: usize = std::str::from_utf8(&size_text[..close])
        .unwrap()
        .parse()
        .unwrap();
    let body = size_text[close + 3..close + 3 + len].to_vec();
    Fetched {
        uid: number(after("UID ")) as u32,
        flags,
        internal_date: after("INTERNALDATE \"")
            .split('"')
            .next()
            .unwrap()
            .to_owned(),
        size: number(after("RFC822.SIZE ")),
        body,
    }
}

/// The FETCH view of a Columba message, in the same shape.
fn columba_fetched(mb: &dyn Mailbox, uid: Uid, flags: &Flags) -> Fetched {
    let info = mb.message_info(uid).unwrap();
    let mut names: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
    names.sort();
    Fetched {
        uid: uid.get(),
        flags: names,
        internal_date: imap_date(info.internal_date),
        size: info.size,
        body: mb.read_message(uid).unwrap(),
    }
}

/// RFC 3501 `date-time` in UTC (Dovecot runs with TZ=UTC here).
fn imap_date(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{d:02}-{}-{y} {:02}:{:02}:{:02} +0000",
        MONTHS[(m - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The mailbox name at the end of a LIST/LSUB line, decoded from modified UTF-7.
fn listed_name(resp: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(resp).trim_end().to_owned();
    let attrs = text
        .split('(')
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap()
        .to_owned();
    // `* LIST (...) "/" name`
    let rest = text.split_once(") \"/\" ").unwrap().1;
    let raw = if let Some(q) = rest.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = q.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.extend(chars.next()),
                '"' => break,
                _ => out.push(c),
            }
        }
        out
    } else {
        rest.to_owned()
    };
    (utf7::decode(raw.as_bytes()).unwrap(), attrs)
}

fn list_names(c: &mut ImapClient, command: &str) -> BTreeMap<String, bool> {
    ok(c, command)
        .iter()
        .map(|l| {
            let (name, attrs) = listed_name(l);
            (name, !attrs.to_ascii_lowercase().contains("\\noselect"))
        })
        .collect()
}

/// The mailboxes Columba lists, as [`list_names`] gives Dovecot's.
fn columba_list(store: &MaildirStore) -> BTreeMap<String, bool> {
    store
        .list()
        .unwrap()
        .into_iter()
        .map(|e| (e.name.to_string(), e.selectable))
        .collect()
}

/// Columba's subscriptions, as [`list_names`] gives Dovecot's LSUB.
fn columba_subscriptions(store: &MaildirStore) -> BTreeMap<String, bool> {
    store
        .subscriptions()
        .unwrap()
        .into_iter()
        .map(|name| (name.to_string(), true))
        .collect()
}

fn uidvalidity_of(untagged: &[Vec<u8>]) -> u32 {
    for l in untagged {
        let t = String::from_utf8_lossy(l);
        if let Some(rest) = t.split("UIDVALIDITY ").nth(1) {
            return rest
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .unwrap();
        }
    }
    panic!("no UIDVALIDITY")
}

fn n(s: &str) -> MailboxName {
    MailboxName::new(s).unwrap()
}

fn kw(s: &str) -> Keyword {
    Keyword::new(s).unwrap()
}

const MSG1: &[u8] = b"From: a@example.org\r\nSubject: first\r\n\r\nHello\r\nWorld\r\n";
const MSG2: &[u8] = b"Subject: second\r\n\r\nto be expunged\r\n";
const MSG3: &[u8] = b"Subject: third\r\nX-Long: 0123456789\r\n\r\nflagged\r\n";
const MSG4: &[u8] = b"Subject: deep\r\n\r\nin a/b/c\r\n";

#[test]
fn columba_reads_what_dovecot_wrote() {
    let Some(dovecot) = dovecot().start() else {
        return;
    };
    let mut c = dovecot.connect().expect("login");
    let date = "14-Sep-2020 10:20:30 +0000";
    imap_append(&mut c, "INBOX", "\\Seen $Forwarded Junk", Some(date), MSG1);
    imap_append(&mut c, "INBOX", "", None, MSG2);
    imap_append(&mut c, "INBOX", "\\Flagged \\Answered Later", None, MSG3);
    for name in ["Entw&APw-rfe", "a/b/c", "dot.ted", "back\\slash"] {
        ok(&mut c, &format!("CREATE {}", quote(name)));
    }
    for name in ["Entw&APw-rfe", "a/b/c", "dot.ted", "INBOX"] {
        ok(&mut c, &format!("SUBSCRIBE {}", quote(name)));
    }
    imap_append(&mut c, "a/b/c", "\\Draft", Some(date), MSG4);
    let selected = ok(&mut c, "SELECT INBOX");
    let inbox_validity = uidvalidity_of(&selected);
    ok(&mut c, "STORE 2 +FLAGS (\\Deleted)");
    ok(&mut c, "EXPUNGE");
    let fetched = fetch_all(&mut c);
    let abc_validity = uidvalidity_of(&ok(&mut c, "STATUS \"a/b/c\" (UIDVALIDITY)"));
    let listed = list_names(&mut c, "LIST \"\" \"*\"");
    let subscribed = list_names(&mut c, "LSUB \"\" \"*\"");
    ok(&mut c, "LOGOUT");
    assert_eq!(fetched.len(), 2);

    // Columba opens the same tree while Dovecot still runs.
    let store = MaildirStore::new(dovecot.maildir()).unwrap();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    assert_eq!(inbox.uid_validity().get(), inbox_validity);
    let snap = inbox.snapshot(false).unwrap();
    let ours: Vec<Fetched> = snap
        .messages
        .iter()
        .map(|m| columba_fetched(inbox.as_ref(), m.uid, &m.flags))
        .collect();
    assert_eq!(ours, fetched);
    assert!(snap.messages[0].flags.has_keyword(&kw("$Forwarded")));
    assert_eq!(ours[0].internal_date, date);

    let abc = store.open(&n("a/b/c")).unwrap();
    assert_eq!(abc.uid_validity().get(), abc_validity);
    let snap = abc.snapshot(false).unwrap();
    assert_eq!(snap.messages.len(), 1);
    assert_eq!(snap.messages[0].uid.get(), 1);
    assert_eq!(snap.messages[0].flags, Flags::new(SystemFlags::DRAFT, []));
    assert_eq!(abc.read_message(snap.messages[0].uid).unwrap(), MSG4);

    let ours = columba_list(&store);
    assert_eq!(ours, listed);
    let ours = columba_subscriptions(&store);
    assert_eq!(ours, subscribed);
    let complaints = dovecot.complaints();
    assert!(complaints.is_empty(), "{complaints:#?}");
}

#[test]
fn dovecot_serves_what_columba_wrote() {
    let Some(home) = dovecot().prepare() else {
        return;
    };
    let store = MaildirStore::new(home.maildir()).unwrap();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    let date = 1_600_000_000;
    let append = |mb: &dyn Mailbox, msg: &[u8], f: Flags, date: Option<i64>| -> Uid {
        let mut w = mb.begin_append().unwrap();
        // In two chunks, split inside a CRLF.
        let cut = msg.iter().position(|&b| b == b'\r').unwrap() + 1;
        w.write(&msg[..cut]).unwrap();
        w.write(&msg[cut..]).unwrap();
        w.commit(f, date).unwrap()
    };
    let u1 = append(
        inbox.as_ref(),
        MSG1,
        Flags::new(SystemFlags::SEEN, [kw("$Forwarded"), kw("Junk")]),
        Some(date),
    );
    let u2 = append(inbox.as_ref(), MSG2, Flags::default(), Some(date + 60));
    let u3 = append(
        inbox.as_ref(),
        MSG3,
        Flags::new(
            SystemFlags::FLAGGED.union(SystemFlags::ANSWERED),
            [kw("Later")],
        ),
        Some(date + 120),
    );
    inbox
        .store_flags(
            &[u2],
            &FlagChange::Add(Flags::new(SystemFlags::DELETED, [])),
        )
        .unwrap();
    assert_eq!(inbox.expunge(None).unwrap(), vec![u2]);
    // A session claims \Recent: u4 moves from new/ to cur/ (with the empty `:2,` info), as a
    // Dovecot session would move it. u5 comes later and stays in new/.
    let u4 = append(inbox.as_ref(), MSG4, Flags::default(), Some(date + 180));
    let view = mail_store::MailboxView::open(inbox.clone(), false).unwrap();
    assert_eq!(view.recent_count(), 3);
    let u5 = append(inbox.as_ref(), MSG2, Flags::default(), Some(date + 240));
    assert!(fs::read_dir(home.maildir().join("new")).unwrap().count() == 1);
    for name in ["Entw\u{fc}rfe", "a/b/c", "dot.ted", "back\\slash", "x/~t"] {
        store.create(&n(name)).unwrap();
    }
    let abc = store.open(&n("a/b/c")).unwrap();
    let d1 = append(
        abc.as_ref(),
        MSG4,
        Flags::new(SystemFlags::DRAFT, []),
        Some(date),
    );
    // Copy by hard link, keeping flags and date.
    let copied = inbox.copy_to(&[u1], abc.as_ref()).unwrap();
    for name in ["Entw\u{fc}rfe", "a/b/c", "dot.ted", "INBOX", "x/~t"] {
        store.set_subscribed(&n(name), true).unwrap();
    }
    let expected_inbox: Vec<Fetched> = inbox
        .snapshot(false)
        .unwrap()
        .messages
        .iter()
        .map(|m| columba_fetched(inbox.as_ref(), m.uid, &m.flags))
        .collect();
    let expected_abc: Vec<Fetched> = abc
        .snapshot(false)
        .unwrap()
        .messages
        .iter()
        .map(|m| columba_fetched(abc.as_ref(), m.uid, &m.flags))
        .collect();
    assert_eq!(
        expected_inbox.iter().map(|f| f.uid).collect::<Vec<_>>(),
        [u1.get(), u3.get(), u4.get(), u5.get()]
    );
    assert_eq!(copied, vec![(u1, Uid::new(d1.get() + 1).unwrap())]);

    let dovecot = home.start();
    let mut c = dovecot.connect().expect("login");
    let selected = ok(&mut c, "SELECT INBOX");
    assert_eq!(uidvalidity_of(&selected), inbox.uid_validity().get());
    let fetched = fetch_all(&mut c);
    assert_eq!(fetched, expected_inbox);
    let status =
        String::from_utf8_lossy(&ok(&mut c, "STATUS \"a/b/c\" (UIDVALIDITY UIDNEXT MESSAGES)")[0])
            .into_owned();
    let item = |key: &str| -> u32 {
        status
            .split(&format!("{key} "))
            .nth(1)
            .and_then(|r| r.split([' ', ')']).next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{key} in {status}"))
    };
    assert_eq!(item("UIDVALIDITY"), abc.uid_validity().get());
    assert_eq!((item("UIDNEXT"), item("MESSAGES")), (3, 2));
    ok(&mut c, "EXAMINE \"a/b/c\"");
    let fetched = fetch_all(&mut c);
    assert_eq!(fetched, expected_abc);

    let listed = list_names(&mut c, "LIST \"\" \"*\"");
    let ours = columba_list(&store);
    assert_eq!(listed, ours);
    let subscribed = list_names(&mut c, "LSUB \"\" \"*\"");
    let ours = columba_subscriptions(&store);
    assert_eq!(subscribed, ours);

    // Dovecot changes the tree; Columba (still holding the mailbox) picks it up.
    ok(&mut c, "SELECT INBOX");
    ok(
        &mut c,
        &format!("UID STORE {} +FLAGS (\\Deleted NewFromDovecot)", u3),
    );
    let dove_uid = imap_append(&mut c, "INBOX", "\\Seen", None, MSG2);
    assert_eq!(dove_uid, u5.get() + 1);
    ok(&mut c, "LOGOUT");
    let cursor = inbox.snapshot(false).unwrap().cursor;
    // Dovecot's changes may fall in the same mtime tick as our last scan; wait out the slack.
    std::thread::sleep(Duration::from_millis(1100));
    inbox.refresh().unwrap();
    let changes = inbox.changes_since(cursor, false).unwrap();
    assert_eq!(changes.appended.len(), 1);
    assert_eq!(changes.appended[0].uid.get(), dove_uid);
    assert!(changes.appended[0].flags.contains(&Flag::Seen));
    let changed = changes
        .flags
        .iter()
        .find(|m| m.uid == u3)
        .expect("u3 changed");
    assert!(changed.flags.contains(&Flag::Deleted));
    assert!(changed.flags.has_keyword(&kw("NewFromDovecot")));
    assert_eq!(
        inbox.read_message(Uid::new(dove_uid).unwrap()).unwrap(),
        MSG2
    );

    let complaints = dovecot.complaints();
    assert!(complaints.is_empty(), "{complaints:#?}");
}

#[test]
fn dates_format_like_imap() {
    assert_eq!(imap_date(1_600_000_000), "13-Sep-2020 12:26:40 +0000");
    assert_eq!(imap_date(0), "01-Jan-1970 00:00:00 +0000");
}

/// Columba adds records to the end of `dovecot-uidlist` (the header's NEXTUID lagging, records
/// of expunged messages left in place) as Dovecot does; Dovecot must read such a file, add its
/// own record after them, and Columba must read Dovecot's addition.
#[test]
fn dovecot_reads_a_uidlist_columba_appended_to() {
    let Some(home) = dovecot().prepare() else {
        return;
    };
    let store = MaildirStore::new(home.maildir()).unwrap();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    let append = |i: u32| -> u32 {
        let mut w = inbox.begin_append().unwrap();
        w.write(format!("Subject: columba {i}\r\n\r\nbody\r\n").as_bytes())
            .unwrap();
        w.commit(Flags::default(), None).unwrap().get()
    };
    for i in 1..=10 {
        assert_eq!(append(i), i);
    }
    let first = Uid::new(1).unwrap();
    inbox
        .store_flags(
            &[first],
            &FlagChange::Add(Flags::new(SystemFlags::DELETED, [])),
        )
        .unwrap();
    assert_eq!(inbox.expunge(None).unwrap(), vec![first]);
    assert_eq!(append(11), 11);
    let uidlist = home.maildir().join("dovecot-uidlist");
    let text = fs::read_to_string(&uidlist).unwrap();
    let header = text.lines().next().unwrap().to_owned();
    assert!(header.contains(" N1 "), "appended, not rewritten: {text}");
    assert_eq!(text.lines().count(), 12, "{text}");

    let dovecot = home.start();
    let mut c = dovecot.connect().expect("login");
    let selected = ok(&mut c, "SELECT INBOX");
    assert_eq!(uidvalidity_of(&selected), inbox.uid_validity().get());
    let uids: Vec<u32> = fetch_all(&mut c).iter().map(|f| f.uid).collect();
    assert_eq!(uids, (2..=11).collect::<Vec<_>>());
    let dove_uid = imap_append(&mut c, "INBOX", "", None, b"Subject: dovecot\r\n\r\nx\r\n");
    assert_eq!(dove_uid, 12);
    ok(&mut c, "LOGOUT");

    // Dovecot's record is read (the file may have been appended to or rewritten) and the next
    // UID comes after it.
    std::thread::sleep(Duration::from_millis(1100));
    inbox.refresh().unwrap();
    assert_eq!(append(13), 13);
    let snap = inbox.snapshot(false).unwrap();
    let ours: Vec<u32> = snap.messages.iter().map(|m| m.uid.get()).collect();
    assert_eq!(ours, (2..=13).collect::<Vec<_>>());
    let dove = Uid::new(dove_uid).unwrap();
    assert_eq!(
        inbox.read_message(dove).unwrap(),
        b"Subject: dovecot\r\n\r\nx\r\n"
    );
    let complaints = dovecot.complaints();
    assert!(complaints.is_empty(), "{complaints:#?}");
}

const CHILD_ENV: &str = "COLUMBA_INTEROP_CHILD";

/// The Columba side of the concurrent test: runs in a child process as the mail user (files it
/// creates must stay usable by Dovecot), appends and prints each UID.
fn columba_appender(maildir: &str) {
    let store = MaildirStore::new(maildir.into()).unwrap();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    for i in 0..30 {
        let mut w = inbox.begin_append().unwrap();
        w.write(format!("Subject: columba {i}\r\n\r\nbody\r\n").as_bytes())
            .unwrap();
        let flags = if i % 2 == 0 {
            Flags::default()
        } else {
            Flags::new(SystemFlags::SEEN, [kw("FromColumba")])
        };
        let uid = w.commit(flags, None).unwrap();
        println!("UID {} {i}", uid.get());
        if i % 5 == 0 {
            inbox.refresh().unwrap();
        }
    }
}

#[test]
fn columba_and_dovecot_append_at_the_same_time() {
    if let Ok(maildir) = std::env::var(CHILD_ENV) {
        columba_appender(&maildir);
        return;
    }
    let Some(dovecot) = dovecot().start() else {
        return;
    };
    let mut c = dovecot.connect().expect("login");
    ok(&mut c, "SELECT INBOX");

    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "columba_and_dovecot_append_at_the_same_time",
        "--nocapture",
    ])
    .env(CHILD_ENV, dovecot.maildir())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    if let Some((uid, gid)) = dovecot.mail_owner() {
        use std::os::unix::process::CommandExt;
        cmd.uid(uid).gid(gid);
    }
    let child = cmd.spawn().unwrap();

    let mut dovecot_uids = BTreeMap::new();
    for i in 0..30 {
        let msg = format!("Subject: dovecot {i}\r\n\r\nbody\r\n");
        let uid = imap_append(
            &mut c,
            "INBOX",
            if i % 3 == 0 { "\\Flagged" } else { "" },
            None,
            msg.as_bytes(),
        );
        dovecot_uids.insert(uid, format!("dovecot {i}"));
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut columba_uids = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        if let Some(rest) = line.strip_prefix("UID ") {
            let (uid, i) = rest.split_once(' ').unwrap();
            columba_uids.insert(uid.parse::<u32>().unwrap(), format!("columba {i}"));
        }
    }
    assert_eq!(columba_uids.len(), 30);
    let mut all = dovecot_uids.clone();
    all.extend(columba_uids.clone());
    assert_eq!(all.len(), 60, "a UID was handed out twice");

    // Dovecot sees every message under the UID its writer was told.
    ok(&mut c, "NOOP");
    let fetched = ok(
        &mut c,
        "UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
    );
    let mut seen = BTreeMap::new();
    for l in &fetched {
        let text = String::from_utf8_lossy(l);
        // EXISTS/RECENT for the messages the other writer added come along too.
        if !text.contains("BODY[HEADER.FIELDS") {
            continue;
        }
        let uid: u32 = text
            .split("UID ")
            .nth(1)
            .unwrap()
            .split([' ', ')'])
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let subject = text
            .split("Subject: ")
            .nth(1)
            .unwrap()
            .split('\r')
            .next()
            .unwrap()
            .to_owned();
        seen.insert(uid, subject);
        if columba_uids
            .get(&uid)
            .is_some_and(|s| s.ends_with(['1', '3', '5', '7', '9']))
        {
            assert!(
                text.contains("FromColumba") && text.contains("\\Seen"),
                "{text}"
            );
        }
    }
    assert_eq!(seen, all);
    ok(&mut c, "LOGOUT");

    // And so does Columba.
    let store = MaildirStore::new(dovecot.maildir()).unwrap();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    let ours: BTreeMap<u32, String> = inbox
        .snapshot(false)
        .unwrap()
        .messages
        .iter()
        .map(|m| {
            let text = String::from_utf8(inbox.read_message(m.uid).unwrap()).unwrap();
            let subject = text["Subject: ".len()..]
                .split('\r')
                .next()
                .unwrap()
                .to_owned();
            (m.uid.get(), subject)
        })
        .collect();
    assert_eq!(ours, all);
    let complaints = dovecot.complaints();
    assert!(complaints.is_empty(), "{complaints:#?}");
}
