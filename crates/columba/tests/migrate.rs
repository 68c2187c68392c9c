//! `columba migrate` run as a program: mbox written by Dovecot, mutt and procmail to Maildir and
//! back, a Dovecot Maildir with keywords and `P` UIDLs to mbox, Dovecot serving what it wrote,
//! the dry run, hostile sources, and a run killed with SIGKILL then run again. What a client
//! sees is taken from Columba's own stores opening the result (and a copy of the source, which
//! they may write to): UIDVALIDITY, UIDNEXT, UIDs, flags, INTERNALDATE, RFC822.SIZE, BODY[],
//! UIDLs.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::columba;
use mail_store::MailStore;
use mail_store::maildir::MaildirStore;
use mail_store::mbox::{MboxSettings, MboxStore};
use mail_types::MailboxName;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../mail-store/tests/fixtures/mbox"
);

/// Runs `columba migrate ARGS` with a scratch data directory.
fn migrate(scratch: &Path, args: &[&str]) -> Output {
    columba()
        .arg("--data-dir")
        .arg(scratch.join("data"))
        .arg("migrate")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run columba migrate")
}

/// Runs `columba migrate --from FROM --to TO EXTRA`.
fn migrate_between(scratch: &Path, from: &str, to: &str, extra: &[&str]) -> Output {
    let mut args = vec!["--from", from, "--to", to];
    args.extend_from_slice(extra);
    migrate(scratch, &args)
}

/// [`migrate_between`], which must succeed; its report (standard output, then error).
fn migrated(scratch: &Path, from: &str, to: &str, extra: &[&str]) -> String {
    let out = migrate_between(scratch, from, to, extra);
    assert!(out.status.success(), "{}", text(&out));
    text(&out)
}

/// [`migrate_between`], which must fail; its report.
fn refused(scratch: &Path, from: &str, to: &str, extra: &[&str]) -> String {
    let out = migrate_between(scratch, from, to, extra);
    assert!(!out.status.success(), "{}", text(&out));
    text(&out)
}

/// mbox tree `mail` to Maildir `maildir`, which must succeed; its report.
fn mbox_to_maildir(scratch: &Path, mail: &Path, maildir: &Path) -> String {
    migrated(
        scratch,
        &mbox_location(mail),
        &maildir_location(maildir),
        &[],
    )
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn mbox_location(root: &Path) -> String {
    format!(
        "mbox:{}:INBOX={}",
        root.display(),
        root.join("inbox").display()
    )
}

fn maildir_location(root: &Path) -> String {
    format!("maildir:{}", root.display())
}

/// Every file under `dir` with its content and mtime, to show that nothing changed.
fn tree(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, i64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                out.insert(path.clone(), (fs::read(&path).unwrap(), meta.mtime()));
            }
        }
    }
    out
}

/// One message as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    uid: u32,
    flags: Vec<String>,
    internal_date: i64,
    size: u64,
    body: Vec<u8>,
    uidl: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct SeenMailbox {
    uid_validity: u32,
    uid_next: u32,
    messages: Vec<Seen>,
}

/// What a client of `store` sees in every selectable mailbox.
fn seen(store: &dyn MailStore) -> BTreeMap<String, SeenMailbox> {
    let mut out = BTreeMap::new();
    for entry in store.list().unwrap() {
        if !entry.selectable {
            continue;
        }
        let mb = store.open(&entry.name).unwrap();
        let status = mb.status().unwrap();
        let snap = mb.snapshot(false).unwrap();
        let messages = snap
            .messages
            .iter()
            .map(|m| {
                let info = mb.message_info(m.uid).unwrap();
                let mut flags: Vec<String> = m.flags.iter().map(|f| f.to_string()).collect();
                flags.sort();
                Seen {
                    uid: m.uid.get(),
                    flags,
                    internal_date: info.internal_date,
                    size: info.size,
                    body: mb.read_message(m.uid).unwrap(),
                    uidl: mb.stored_uidl(m.uid),
                }
            })
            .collect();
        out.insert(
            entry.name.to_string(),
            SeenMailbox {
                uid_validity: mb.uid_validity().get(),
                uid_next: status.uid_next.get(),
                messages,
            },
        );
    }
    out
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap().flatten() {
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            fs::copy(e.path(), &dest).unwrap();
            // A Maildir's INTERNALDATE is the file's mtime.
            let mtime = fs::metadata(e.path()).unwrap().modified().unwrap();
            fs::File::options()
                .write(true)
                .open(&dest)
                .unwrap()
                .set_modified(mtime)
                .unwrap();
        }
    }
}

/// An mbox tree of the real programs' files: INBOX by Dovecot, `mutt` and `lists/procmail`,
/// and `uw` as UW-IMAP leaves it for POP3 users (pseudo-message, `X-UIDL`), subscribed.
fn real_mbox_tree(root: &Path) {
    fs::create_dir_all(root.join("lists")).unwrap();
    fs::copy(Path::new(FIXTURES).join("dovecot.mbox"), root.join("inbox")).unwrap();
    fs::copy(Path::new(FIXTURES).join("mutt.mbox"), root.join("mutt")).unwrap();
    fs::copy(
        Path::new(FIXTURES).join("procmail.mbox"),
        root.join("lists/procmail"),
    )
    .unwrap();
    fs::write(
        root.join("uw"),
        "From MAILER-DAEMON Sun Nov 29 08:00:00 2026\n\
Date: 29 Nov 2026 08:00:00 +0000\n\
From: Mail System Internal Data <MAILER-DAEMON@localhost>\n\
Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA\n\
X-IMAP: 1700000000 0000000041 Work\n\
Status: RO\n\
\n\
This text is part of the internal format of your mail folder, and is not\n\
a real message.\n\
\n\
From pop@example.com Sun Nov 29 08:10:00 2026\n\
Subject: popped\n\
X-UIDL: 4a8c3b2e00000001\n\
X-UID: 17\n\
Status: RO\n\
X-Keywords: Work\n\
\n\
body one\n\
\n\
From pop@example.com Sun Nov 29 08:20:00 2026\n\
Subject: not popped\n\
X-UIDL: 4a8c3b2e00000002\n\
X-UID: 40\n\
Status: O\n\
X-Status: AT\n\
\n\
body two\n\
>From quoted\n\
\n",
    )
    .unwrap();
    fs::write(root.join(".subscriptions"), "INBOX\nuw\nlists/procmail\n").unwrap();
}

/// The mailboxes of `want` with their counterparts in `got`, which must have the same names.
fn same_mailboxes<'a>(
    what: &str,
    got: &'a BTreeMap<String, SeenMailbox>,
    want: &'a BTreeMap<String, SeenMailbox>,
) -> Vec<(&'a String, &'a SeenMailbox, &'a SeenMailbox)> {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}: mailboxes"
    );
    want.iter().map(|(name, w)| (name, &got[name], w)).collect()
}

fn assert_same_messages(
    what: &str,
    got: &BTreeMap<String, SeenMailbox>,
    want: &BTreeMap<String, SeenMailbox>,
) {
    for (name, g, w) in same_mailboxes(what, got, want) {
        assert_eq!(g.uid_next, w.uid_next, "{what}: {name} UIDNEXT");
        assert_eq!(g.messages, w.messages, "{what}: {name} messages");
    }
}

#[test]
fn mbox_to_maildir_and_back_keeps_what_clients_see() {
    let dir = tempfile::tempdir().unwrap();
    let mail = dir.path().join("mail");
    real_mbox_tree(&mail);
    let source_before = tree(&mail);

    // What Columba's mbox store shows, from a copy it may write to.
    let oracle_dir = dir.path().join("oracle");
    copy_tree(&mail, &oracle_dir);
    let oracle_store = MboxStore::new(
        oracle_dir.clone(),
        oracle_dir.join("inbox"),
        MboxSettings::default(),
    )
    .unwrap();
    let want = seen(&oracle_store);
    assert_eq!(want["uw"].uid_validity, 1700000000);
    assert_eq!(want["uw"].uid_next, 42);
    assert_eq!(
        want["uw"].messages[0].uidl.as_deref(),
        Some("4a8c3b2e00000001")
    );

    let maildir = dir.path().join("Maildir");
    let report = mbox_to_maildir(dir.path(), &mail, &maildir);
    assert!(
        report.contains("migrated 4 mailboxes, 11 messages"),
        "{report}"
    );
    assert!(report.contains("uw: 2 messages"), "{report}");
    assert_eq!(tree(&mail), source_before, "the source changed");
    // Dovecot's uidlist keeps the UIDL as the record's P field.
    let uidlist = fs::read_to_string(maildir.join(".uw/dovecot-uidlist")).unwrap();
    assert!(uidlist.starts_with("3 V1700000000 N42 "), "{uidlist}");
    assert!(uidlist.contains("\n17 P4a8c3b2e00000001 :"), "{uidlist}");
    let maildir_files = tree(&maildir);

    // And back to mbox, from the Maildir, which must not change either.
    let mail2 = dir.path().join("mail2");
    migrated(
        dir.path(),
        &maildir_location(&maildir),
        &mbox_location(&mail2),
        &[],
    );
    assert_eq!(tree(&maildir), maildir_files, "the Maildir source changed");
    let uw = fs::read_to_string(mail2.join("uw")).unwrap();
    assert!(
        uw.contains("X-IMAPbase: 1700000000 0000000041 Work\n"),
        "{uw}"
    );
    assert_eq!(
        fs::read_to_string(mail2.join(".subscriptions")).unwrap(),
        "INBOX\nuw\nlists/procmail\n"
    );

    let maildir_store = MaildirStore::new(maildir.clone()).unwrap();
    let in_maildir = seen(&maildir_store);
    let mbox_store =
        MboxStore::new(mail2.clone(), mail2.join("inbox"), MboxSettings::default()).unwrap();
    let in_mbox = seen(&mbox_store);
    assert_same_messages("mbox -> Maildir", &in_maildir, &want);
    assert_same_messages("Maildir -> mbox", &in_mbox, &want);
    for (name, w) in &want {
        // Files that never had an X-IMAPbase got a UIDVALIDITY from the first migration, and
        // the second kept it.
        if name != "mutt" && name != "lists/procmail" {
            assert_eq!(in_maildir[name].uid_validity, w.uid_validity, "{name}");
        }
        assert_eq!(
            in_mbox[name].uid_validity, in_maildir[name].uid_validity,
            "{name}"
        );
    }
    let mut subs = maildir_store.subscriptions().unwrap();
    subs.sort();
    assert_eq!(
        subs.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        ["INBOX", "lists/procmail", "uw"]
    );

    // Running it again finds everything done and writes nothing.
    let before = tree(&mail2);
    let report = migrated(
        dir.path(),
        &maildir_location(&maildir),
        &mbox_location(&mail2),
        &[],
    );
    assert!(report.contains("uw: already migrated"), "{report}");
    assert!(report.contains("migrated 0 mailboxes"), "{report}");
    let after = tree(&mail2);
    // Opening the mbox store above wrote its index files in .imap; the mail files are as
    // they were.
    let mail_files = |t: &BTreeMap<PathBuf, (Vec<u8>, i64)>| {
        t.iter()
            .filter(|(p, _)| !p.to_string_lossy().contains("/.imap/"))
            .map(|(p, v)| (p.clone(), v.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(mail_files(&after), mail_files(&before));
}

/// A Maildir as Dovecot leaves it: UIDs with gaps, NEXTUID beyond the last message, keywords
/// in `dovecot-keywords`, POP3 UIDLs of a migration in the uidlist's `P` fields, a `\Sent`
/// folder.
fn dovecot_maildir(root: &Path) {
    for d in ["cur", "new", "tmp", ".Sent/cur", ".Sent/new", ".Sent/tmp"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::write(root.join(".Sent/maildirfolder"), "").unwrap();
    fs::write(root.join(".Sent/columba-special-use"), "\\Sent\n").unwrap();
    fs::write(root.join("subscriptions"), "V\t2\n\nINBOX\nSent\n").unwrap();
    fs::write(root.join("dovecot-keywords"), "0 $Forwarded\n1 Project\n").unwrap();
    // (directory, unique part, flags, content, uidlist fields, UID)
    let files = [
        (
            "cur",
            "1700000001.M1P1.mx",
            ":2,S",
            "Subject: a\n\nseen and popped\n",
            "PUIDL-three",
            3,
        ),
        (
            "cur",
            "1700000002.M1P1.mx",
            ":2,FRab",
            "Subject: b\n\nflagged answered\n",
            "",
            5,
        ),
        (
            "cur",
            "1700000003.M1P1.mx",
            ":2,DT",
            "Subject: c\n\ndraft\r\ngone\n",
            "PUIDL-eight",
            8,
        ),
        (
            "new",
            "1700000004.M1P1.mx",
            "",
            "Subject: d\n\nnew\n",
            "",
            9,
        ),
    ];
    let mut uidlist = "3 V1234567 N20 G0123456789abcdef0123456789abcdef\n".to_owned();
    for (i, (sub, unique, info, body, ext, uid)) in files.iter().enumerate() {
        let crlf = body.len() + body.matches('\n').count() - body.matches("\r\n").count();
        let base = format!("{unique},S={},W={crlf}", body.len());
        let path = root.join(sub).join(format!("{base}{info}"));
        fs::write(&path, body).unwrap();
        let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + i as u64 * 60);
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let ext = if ext.is_empty() {
            String::new()
        } else {
            format!("{ext} ")
        };
        uidlist.push_str(&format!("{uid} {ext}:{base}\n"));
    }
    fs::write(root.join("dovecot-uidlist"), uidlist).unwrap();
    fs::write(
        root.join(".Sent/dovecot-uidlist"),
        "3 V1234568 N3 G0123456789abcdef0123456789abcdee\n\
         2 :1700000005.M1P1.mx,S=14,W=17\n",
    )
    .unwrap();
    fs::write(
        root.join(".Sent/cur/1700000005.M1P1.mx,S=14,W=17:2,S"),
        "Subject: s\n\nx\n",
    )
    .unwrap();
}

/// What a client sees in an mbox a migration wrote from a Maildir: the same, but for the
/// `X-UIDL` line a message with a stored UIDL gets (where UW-IMAP's POP3 kept it).
fn assert_same_in_mbox(got: &BTreeMap<String, SeenMailbox>, want: &BTreeMap<String, SeenMailbox>) {
    for (name, g, w) in same_mailboxes("in mbox", got, want) {
        assert_eq!(g.uid_validity, w.uid_validity, "{name}");
        assert_eq!(g.uid_next, w.uid_next, "{name}");
        assert_eq!(g.messages.len(), w.messages.len(), "{name}");
        for (gm, wm) in g.messages.iter().zip(&w.messages) {
            assert_eq!(
                (gm.uid, &gm.flags, gm.internal_date, &gm.uidl),
                (wm.uid, &wm.flags, wm.internal_date, &wm.uidl),
                "{name}"
            );
            match &wm.uidl {
                None => assert_eq!(gm.body, wm.body, "{name} UID {}", wm.uid),
                Some(u) => {
                    let line = format!("X-UIDL: {u}\r\n");
                    assert_eq!(
                        gm.size,
                        wm.size + line.len() as u64,
                        "{name} UID {}",
                        wm.uid
                    );
                }
            }
        }
    }
}

#[test]
fn dovecot_maildir_to_mbox_writes_uw_and_dovecot_headers() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("Maildir");
    dovecot_maildir(&maildir);
    let source_before = tree(&maildir);
    let oracle_dir = dir.path().join("oracle");
    copy_tree(&maildir, &oracle_dir);
    let want = seen(&MaildirStore::new(oracle_dir).unwrap());
    assert_eq!(want["INBOX"].uid_next, 20);

    let mail = dir.path().join("mail");
    let report = migrated(
        dir.path(),
        &maildir_location(&maildir),
        &mbox_location(&mail),
        &[],
    );
    // mbox keeps no special-use attributes: said, not an error.
    assert!(
        report.contains("Sent: mbox keeps no special-use attributes"),
        "{report}"
    );
    assert_eq!(tree(&maildir), source_before, "the source changed");

    let inbox = fs::read_to_string(mail.join("inbox")).unwrap();
    let messages: Vec<&str> = inbox.split("\n\nFrom MAILER-DAEMON").collect();
    assert_eq!(messages.len(), 4, "{inbox}");
    assert!(
        messages[0].contains(
            "Subject: a\nX-UIDL: UIDL-three\nX-IMAPbase: 1234567 0000000019 $Forwarded Project\nX-UID: 3\nStatus: RO\n\nseen and popped"
        ),
        "{inbox}"
    );
    assert!(
        messages[1].contains("X-UID: 5\nStatus: O\nX-Status: AF\nX-Keywords: $Forwarded Project\n"),
        "{inbox}"
    );
    assert!(
        messages[2].contains("X-UIDL: UIDL-eight\nX-UID: 8\nStatus: O\nX-Status: TD\n"),
        "{inbox}"
    );
    // \Draft and \Deleted are T and D in X-Status.
    assert!(messages[2].contains("\n\ndraft\ngone"), "{inbox}");
    assert!(
        messages[3].contains("X-UID: 9\nStatus: O\n\nnew"),
        "{inbox}"
    );
    assert!(
        messages[0].starts_with("From MAILER-DAEMON  Tue Nov 14 22:13:20 2023\n"),
        "{inbox}"
    );

    let got =
        seen(&MboxStore::new(mail.clone(), mail.join("inbox"), MboxSettings::default()).unwrap());
    assert_same_in_mbox(&got, &want);

    // Maildir to Maildir keeps the special use and the P fields.
    let maildir2 = dir.path().join("Maildir2");
    migrated(
        dir.path(),
        &maildir_location(&maildir),
        &maildir_location(&maildir2),
        &[],
    );
    assert_eq!(
        fs::read_to_string(maildir2.join(".Sent/columba-special-use")).unwrap(),
        "\\Sent\n"
    );
    let store2 = MaildirStore::new(maildir2).unwrap();
    assert_eq!(
        store2.special_use(&MailboxName::new("Sent").unwrap()),
        ["\\Sent"]
    );
    assert_same_messages("Maildir -> Maildir", &seen(&store2), &want);
}

#[test]
fn dry_run_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mail = dir.path().join("mail");
    real_mbox_tree(&mail);
    let source_before = tree(&mail);
    let maildir = dir.path().join("Maildir");
    let dry_run = || {
        migrated(
            dir.path(),
            &mbox_location(&mail),
            &maildir_location(&maildir),
            &["--dry-run"],
        )
    };
    let report = dry_run();
    assert!(report.contains("would create uw: 2 messages, "), "{report}");
    assert!(
        report.contains("UIDVALIDITY 1700000000, UIDNEXT 42"),
        "{report}"
    );
    assert!(report.contains("would create mutt: 3 messages"), "{report}");
    assert!(
        report.contains("would subscribe lists/procmail"),
        "{report}"
    );
    assert!(
        report.contains("dry run: 4 mailboxes, 11 messages, "),
        "{report}"
    );
    assert!(!maildir.exists(), "the dry run created the destination");
    assert_eq!(tree(&mail), source_before);

    // Against a destination that exists, it changes nothing there either.
    mbox_to_maildir(dir.path(), &mail, &maildir);
    let dest_before = tree(&maildir);
    fs::write(
        mail.join("later"),
        "From x@example.com Sun Nov 29 08:42:00 2026\nSubject: later\n\nx\n",
    )
    .unwrap();
    let report = dry_run();
    assert!(report.contains("already migrated: uw"), "{report}");
    assert!(
        report.contains("would create later: 1 messages"),
        "{report}"
    );
    assert_eq!(tree(&maildir), dest_before);
}

#[test]
fn a_destination_with_other_mail_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mail = dir.path().join("mail");
    real_mbox_tree(&mail);
    let maildir = dir.path().join("Maildir");
    let store = MaildirStore::new(maildir.clone()).unwrap();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    let mut w = inbox.begin_append().unwrap();
    w.write(b"Subject: already here\r\n\r\nx\r\n").unwrap();
    w.commit(Default::default(), None).unwrap();
    drop(inbox);
    mail_store::maildir::release_idle_mailboxes(&maildir);
    let before = tree(&maildir);

    let report = refused(
        dir.path(),
        &mbox_location(&mail),
        &maildir_location(&maildir),
        &[],
    );
    assert!(
        report.contains("mailbox INBOX: the destination already holds 1 messages"),
        "{report}"
    );
    assert!(report.contains("not merging"), "{report}");
    // The others were migrated; INBOX is as it was.
    assert!(maildir.join(".uw/cur").is_dir(), "{report}");
    for (path, content) in &before {
        if path.parent() == Some(&maildir.join("cur"))
            || path.parent() == Some(&maildir.join("new"))
        {
            assert_eq!(fs::read(path).unwrap(), content.0);
        }
    }
    assert_eq!(
        fs::read(maildir.join("dovecot-uidlist")).unwrap(),
        before[&maildir.join("dovecot-uidlist")].0
    );
}

#[test]
fn hostile_sources_are_reported_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let mail = dir.path().join("mail");
    real_mbox_tree(&mail);
    // Not an mbox: the first line is no From line.
    fs::write(
        mail.join("broken"),
        "Subject: no From line\n\nFrom nobody\nFrom  Mon Jan 99 99:99:99 2026\n",
    )
    .unwrap();
    // A folder that is a link out of the tree, and one to a file outside it.
    let outside = dir.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(
        outside.join("secret"),
        "From a@example.com Sun Nov 29 08:42:00 2026\nSubject: secret\n\nsecret\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(&outside, mail.join("linkdir")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret"), mail.join("linkfile")).unwrap();
    // Subscriptions that name places outside the tree.
    fs::write(
        mail.join(".subscriptions"),
        "INBOX\n../x\n/etc/passwd\nuw\n",
    )
    .unwrap();

    let maildir = dir.path().join("Maildir");
    let report = refused(
        dir.path(),
        &mbox_location(&mail),
        &maildir_location(&maildir),
        &[],
    );
    assert!(report.contains("mailbox broken: "), "{report}");
    assert!(report.contains("not an mbox file"), "{report}");
    assert!(
        report.contains("linkdir: a symbolic link, not followed"),
        "{report}"
    );
    assert!(
        report.contains("linkfile: a symbolic link, not followed"),
        "{report}"
    );
    assert!(
        !tree(&maildir)
            .values()
            .any(|(content, _)| content.windows(6).any(|w| w == b"secret"))
    );
    // Everything else was migrated.
    assert!(maildir.join(".uw/cur").is_dir());
    let store = MaildirStore::new(maildir.clone()).unwrap();
    let subs: Vec<String> = store
        .subscriptions()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert!(
        !subs.iter().any(|s| s.contains("..") || s.starts_with('/')),
        "{subs:?}"
    );
    // A name that leaves the tree is refused before anything is read.
    let report = refused(
        dir.path(),
        &mbox_location(&mail),
        &maildir_location(&dir.path().join("M2")),
        &["--mailbox", "../x"],
    );
    assert!(report.contains("--mailbox \"../x\""), "{report}");
    assert!(!dir.path().join("M2").exists());

    // A Maildir folder that is a link, and one whose name is not a mailbox name.
    let md = dir.path().join("Hostile");
    for d in ["cur", "new", "tmp", "..x/cur", ".ok/cur"] {
        fs::create_dir_all(md.join(d)).unwrap();
    }
    std::os::unix::fs::symlink(maildir.join(".uw"), md.join(".linked")).unwrap();
    let report = refused(
        dir.path(),
        &maildir_location(&md),
        &mbox_location(&dir.path().join("m3")),
        &[],
    );
    assert!(
        report.contains(".linked: a symbolic link, not followed"),
        "{report}"
    );
    assert!(report.contains("..x: not a mailbox name"), "{report}");
    assert!(dir.path().join("m3/ok").is_file(), "{report}");
    assert!(!report.contains("mailbox ok"), "{report}");
}

/// A big mbox of numbered messages: From lines dated a minute apart, X-UIDL on every third.
fn big_mbox(path: &Path, count: u32) {
    use std::io::Write as _;
    let mut f = std::io::BufWriter::new(fs::File::create(path).unwrap());
    write!(
        f,
        "From MAILER-DAEMON Sun Nov 29 08:00:00 2026\nSubject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA\nX-IMAP: 1600000000 {:010}\nStatus: RO\n\ninternal\n\n",
        count + 5
    )
    .unwrap();
    let filler = "All work and no play makes a dull mail server. ".repeat(40);
    for i in 1..=count {
        let (h, m) = (i / 60 % 24, i % 60);
        write!(
            f,
            "From a@example.com Sun Nov 29 {h:02}:{m:02}:00 2026\nSubject: {i}\n"
        )
        .unwrap();
        if i % 3 == 0 {
            writeln!(f, "X-UIDL: uidl-{i}").unwrap();
        }
        write!(
            f,
            "X-UID: {}\nStatus: {}\n\n{filler}\n{i}\n\n",
            i * 2,
            if i % 2 == 0 { "RO" } else { "O" }
        )
        .unwrap();
    }
}

/// Starts a migration and kills it (SIGKILL) once `started` says it has committed something.
fn kill_midway(scratch: &Path, args: &[&str], started: impl Fn() -> bool) {
    let mut child = columba()
        .arg("--data-dir")
        .arg(scratch.join("data"))
        .arg("migrate")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !started() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the migration ended ({status}) before it could be killed");
        }
        assert!(Instant::now() < deadline, "the migration never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_killed_run_is_resumed() {
    const COUNT: u32 = 2500;
    let dir = tempfile::tempdir().unwrap();
    let mail = dir.path().join("mail");
    fs::create_dir_all(&mail).unwrap();
    big_mbox(&mail.join("inbox"), COUNT);
    let source_before = tree(&mail);
    let maildir = dir.path().join("Maildir");
    let to_maildir = [
        "--from",
        &mbox_location(&mail),
        "--to",
        &maildir_location(&maildir),
    ]
    .map(str::to_owned);
    let args: Vec<&str> = to_maildir.iter().map(String::as_str).collect();
    let uidlist = maildir.join("dovecot-uidlist");
    kill_midway(dir.path(), &args, || {
        fs::read_to_string(&uidlist).is_ok_and(|t| t.lines().count() > 501)
    });
    assert!(
        maildir.join("columba-migrate.partial").exists(),
        "not interrupted"
    );
    assert_eq!(
        tree(&mail),
        source_before,
        "the killed run changed the source"
    );

    let out = migrate(dir.path(), &args);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!maildir.join("columba-migrate.partial").exists());
    let files = fs::read_dir(maildir.join("cur")).unwrap().count();
    assert_eq!(files, COUNT as usize, "one file per message, none twice");
    let store = MaildirStore::new(maildir.clone()).unwrap();
    let got = seen(&store);
    let inbox = &got["INBOX"];
    assert_eq!(inbox.uid_validity, 1600000000);
    assert_eq!(inbox.uid_next, 2 * COUNT + 1);
    let uids: Vec<u32> = inbox.messages.iter().map(|m| m.uid).collect();
    assert_eq!(uids, (1..=COUNT).map(|i| i * 2).collect::<Vec<_>>());
    for m in &inbox.messages {
        let i = m.uid / 2;
        assert!(
            m.body.ends_with(format!("\r\n{i}\r\n").as_bytes()),
            "UID {}",
            m.uid
        );
        assert_eq!(
            m.uidl,
            (i % 3 == 0).then(|| format!("uidl-{i}")),
            "UID {}",
            m.uid
        );
        assert_eq!(m.flags.contains(&"\\Seen".to_owned()), i % 2 == 0);
    }
    drop(store);
    mail_store::maildir::release_idle_mailboxes(&maildir);

    // The same into mbox: the file is cut back to what was committed.
    let mail2 = dir.path().join("mail2");
    let to_mbox = [
        "--from",
        &maildir_location(&maildir),
        "--to",
        &mbox_location(&mail2),
    ]
    .map(str::to_owned);
    let args: Vec<&str> = to_mbox.iter().map(String::as_str).collect();
    let marker = mail2.join(".imap/INBOX/columba-migrate.partial");
    kill_midway(dir.path(), &args, || {
        fs::read_to_string(&marker).is_ok_and(|t| t.trim().parse::<u64>().is_ok_and(|n| n > 0))
    });
    assert!(marker.exists(), "not interrupted");
    let out = migrate(dir.path(), &args);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!marker.exists());
    let got2 =
        seen(&MboxStore::new(mail2.clone(), mail2.join("inbox"), MboxSettings::default()).unwrap());
    assert_eq!(got2["INBOX"].uid_validity, 1600000000);
    assert_eq!(got2["INBOX"].uid_next, 2 * COUNT + 1);
    let uids2: Vec<u32> = got2["INBOX"].messages.iter().map(|m| m.uid).collect();
    assert_eq!(uids2, uids);
}

/// `(uid, sorted flags without \Recent, RFC822.SIZE)` of every message in a `UID FETCH` answer.
fn fetched(
    c: &mut test_support::ImapClient,
    mailbox: &str,
) -> (String, Vec<(u32, Vec<String>, u64)>) {
    let select = c
        .command(&format!("SELECT \"{mailbox}\""))
        .and_then(test_support::Response::ok)
        .unwrap_or_else(|e| panic!("SELECT {mailbox}: {e}"));
    let select: Vec<String> = select
        .untagged
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    let r = c
        .command("UID FETCH 1:* (UID FLAGS RFC822.SIZE)")
        .and_then(test_support::Response::ok)
        .unwrap_or_else(|e| panic!("FETCH in {mailbox}: {e}"));
    let mut out = Vec::new();
    for line in &r.untagged {
        let line = String::from_utf8_lossy(line);
        let field = |key: &str| {
            line.split(key)
                .nth(1)
                .map(|r| r.split([' ', ')']).next().unwrap_or("").to_owned())
        };
        let (Some(uid), Some(size)) = (field("UID "), field("RFC822.SIZE ")) else {
            continue;
        };
        let flags = line
            .split("FLAGS (")
            .nth(1)
            .unwrap_or("")
            .split(')')
            .next()
            .unwrap_or("");
        let mut flags: Vec<String> = flags
            .split(' ')
            .filter(|f| !f.is_empty() && *f != "\\Recent")
            .map(str::to_owned)
            .collect();
        flags.sort();
        out.push((uid.parse().unwrap(), flags, size.parse().unwrap()));
    }
    out.sort();
    (select.join("\n"), out)
}

/// Dovecot serving the Maildir and the mbox tree migrate wrote sees the UIDVALIDITY, UIDNEXT,
/// UIDs, flags, keywords and sizes Columba sees: other programs keep working after a migration.
#[test]
fn dovecot_serves_what_migrate_wrote() {
    let Some(maildir_home) = test_support::Dovecot::builder()
        .inbox_separator('/')
        .prepare()
    else {
        return;
    };
    let Some(mbox_home) = test_support::Dovecot::builder()
        .inbox_separator('/')
        .mail_location("mbox:~/mail:INBOX=~/mail/inbox")
        .prepare()
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mail = dir.path().join("mail");
    real_mbox_tree(&mail);
    let oracle_dir = dir.path().join("oracle");
    copy_tree(&mail, &oracle_dir);
    let want = seen(
        &MboxStore::new(
            oracle_dir.clone(),
            oracle_dir.join("inbox"),
            MboxSettings::default(),
        )
        .unwrap(),
    );

    let maildir = maildir_home.maildir();
    mbox_to_maildir(dir.path(), &mail, &maildir);
    let mbox_root = mbox_home.home().join("mail");
    // Dovecot does not undo mboxrd's `>From` quoting: it reads Content-Length.
    let dovecot_mbox = format!("{}:QUOTING=content-length", mbox_location(&mbox_root));
    migrated(dir.path(), &maildir_location(&maildir), &dovecot_mbox, &[]);
    let in_maildir = seen(&MaildirStore::new(maildir.clone()).unwrap());
    mail_store::maildir::release_idle_mailboxes(&maildir);
    // Columba's stores opened the Maildir above; Dovecot must read migrate's files, not ours.
    for (path, _) in tree(&maildir) {
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("columba.index"))
        {
            fs::remove_file(path).unwrap();
        }
    }

    for home in [maildir_home, mbox_home] {
        let dovecot = home.start();
        let mut c = dovecot.connect().unwrap();
        for (name, w) in &want {
            let (select, got) = fetched(&mut c, name);
            let uid_validity = in_maildir[name].uid_validity;
            assert!(
                select.contains(&format!("[UIDVALIDITY {uid_validity}]")),
                "{name}: {select}"
            );
            assert!(
                select.contains(&format!("[UIDNEXT {}]", w.uid_next)),
                "{name}: {select}"
            );
            let expected: Vec<(u32, Vec<String>, u64)> = w
                .messages
                .iter()
                .map(|m| (m.uid, m.flags.clone(), m.size))
                .collect();
            assert_eq!(got, expected, "{name} in Dovecot");
        }
        c.command("LOGOUT").unwrap();
        let complaints = dovecot.complaints();
        assert!(complaints.is_empty(), "{complaints:?}");
    }
}

/// `--user NAME --to LOCATION`: the source is where the server keeps the user's mail, and `%u`
/// in the destination is the user's name.
#[test]
fn a_users_configured_mail_is_the_default_source() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    common::add_user(&data, common::USER, common::PASSWORD);
    let maildir = data.join("mail").join(common::USER).join("Maildir");
    let store = MaildirStore::new(maildir.clone()).unwrap();
    store.create(&MailboxName::new("Archive").unwrap()).unwrap();
    let archive = store.open(&MailboxName::new("Archive").unwrap()).unwrap();
    let mut w = archive.begin_append().unwrap();
    w.write(b"Subject: kept\r\n\r\nfrom the server's Maildir\r\n")
        .unwrap();
    let uid = w.commit(Default::default(), Some(1_700_000_000)).unwrap();
    drop(archive);
    mail_store::maildir::release_idle_mailboxes(&maildir);

    let to = format!(
        "mbox:{0}/%u/mail:INBOX={0}/%u/inbox",
        dir.path().join("spool").display()
    );
    let out = migrate(dir.path(), &["--user", common::USER, "--to", &to]);
    assert!(out.status.success(), "{}", text(&out));
    let archive = fs::read_to_string(dir.path().join("spool/tester/mail/Archive")).unwrap();
    assert!(archive.contains(&format!("X-UID: {uid}\n")), "{archive}");
    assert!(archive.contains("from the server's Maildir"), "{archive}");
    assert!(dir.path().join("spool/tester/inbox").is_file());

    let out = migrate(dir.path(), &["--user", "nobody-here", "--to", &to]);
    assert!(!out.status.success());
    assert!(text(&out).contains("no user"), "{}", text(&out));
    let out = migrate(dir.path(), &["--to", &to]);
    assert!(!out.status.success());
    assert!(text(&out).contains("--from is needed"), "{}", text(&out));
}

/// A source without a UIDVALIDITY of its own (an mbox only mutt wrote) gets one from the first
/// run, and an interrupted run is resumed under that one, not under a new one.
#[test]
fn a_resumed_run_keeps_the_uidvalidity_it_chose() {
    let dir = tempfile::tempdir().unwrap();
    let mail = dir.path().join("mail");
    fs::create_dir_all(&mail).unwrap();
    fs::copy(Path::new(FIXTURES).join("mutt.mbox"), mail.join("mutt")).unwrap();
    let maildir = dir.path().join("Maildir");
    let (from, to) = (mbox_location(&mail), maildir_location(&maildir));
    migrated(dir.path(), &from, &to, &[]);
    let folder = maildir.join(".mutt");
    let complete = fs::read_to_string(folder.join("dovecot-uidlist")).unwrap();
    let lines: Vec<&str> = complete.lines().collect();
    assert_eq!(lines.len(), 4, "{complete}");
    // As a kill right after the third file was renamed into cur/ leaves it.
    fs::write(
        folder.join("dovecot-uidlist"),
        format!("{}\n", lines[..3].join("\n")),
    )
    .unwrap();
    fs::write(folder.join("columba-migrate.partial"), "").unwrap();
    // Seconds pass: a new read of the source would choose another UIDVALIDITY.
    std::thread::sleep(Duration::from_millis(1100));

    let report = migrated(dir.path(), &from, &to, &["--dry-run"]);
    assert!(
        report.contains("would resume after 2 messages in mutt"),
        "{report}"
    );
    let report = migrated(dir.path(), &from, &to, &[]);
    assert!(
        report.contains("migrated 1 mailboxes, 1 messages"),
        "{report}"
    );
    let resumed = fs::read_to_string(folder.join("dovecot-uidlist")).unwrap();
    let resumed: Vec<&str> = resumed.lines().collect();
    assert_eq!(resumed[..3], lines[..3]);
    assert!(resumed[3].starts_with("3 :"), "{resumed:?}");
    assert_eq!(fs::read_dir(folder.join("cur")).unwrap().count(), 3);
    assert!(!folder.join("columba-migrate.partial").exists());
}

/// A Maildir the real Courier-IMAP and Courier POP3 wrote (the committed fixture): its UIDs
/// from `courierimapuiddb`, keywords from `courierimapkeywords/` and POP3 UIDLs from
/// `courierpop3dsizelist` go into the new format, as Columba itself takes such a tree over.
#[test]
fn a_courier_maildir_keeps_uids_keywords_and_uidls() {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../mail-store/tests/fixtures/courier/Maildir");
    let dir = tempfile::tempdir().unwrap();
    let courier = dir.path().join("Courier");
    copy_tree(&fixture, &courier);
    // The empty directories git does not keep.
    for dir in ["", ".Lists"] {
        for sub in ["cur", "new", "tmp"] {
            fs::create_dir_all(courier.join(dir).join(sub)).unwrap();
        }
    }
    let source_before = tree(&courier);
    let oracle = dir.path().join("oracle");
    copy_tree(&courier, &oracle);
    let want = seen(&MaildirStore::new(oracle).unwrap());
    assert!(
        want["INBOX"].messages.iter().any(|m| m.uidl.is_some()),
        "{want:?}"
    );
    assert!(
        want.values()
            .flat_map(|m| &m.messages)
            .any(|m| m.flags.iter().any(|f| !f.starts_with('\\'))),
        "no keywords in {want:?}"
    );

    let mail = dir.path().join("mail");
    migrated(
        dir.path(),
        &maildir_location(&courier),
        &mbox_location(&mail),
        &[],
    );
    let maildir = dir.path().join("Maildir");
    migrated(
        dir.path(),
        &maildir_location(&courier),
        &maildir_location(&maildir),
        &[],
    );
    assert_eq!(tree(&courier), source_before, "the Courier tree changed");
    assert_same_in_mbox(
        &seen(&MboxStore::new(mail.clone(), mail.join("inbox"), MboxSettings::default()).unwrap()),
        &want,
    );
    let in_maildir = seen(&MaildirStore::new(maildir).unwrap());
    assert_same_messages("Courier -> Maildir", &in_maildir, &want);
    for (name, w) in &want {
        assert_eq!(in_maildir[name].uid_validity, w.uid_validity, "{name}");
    }
}

/// A CONDSTORE client that remembered Columba's HIGHESTMODSEQ before the migration never sees
/// a lower one after it: the destination hands out mod-sequences above the source's ceiling.
#[test]
fn highestmodseq_never_goes_back() {
    use mail_store::FlagChange;
    use mail_types::{Flags, SystemFlags};
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("Maildir");
    let store = MaildirStore::new(maildir.clone()).unwrap();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    let mut w = inbox.begin_append().unwrap();
    w.write(b"Subject: busy\r\n\r\nx\r\n").unwrap();
    let uid = w.commit(Default::default(), None).unwrap();
    let flagged = Flags::new(SystemFlags::FLAGGED, []);
    for _ in 0..20 {
        inbox
            .store_flags(&[uid], &FlagChange::Add(flagged.clone()))
            .unwrap();
        inbox
            .store_flags(&[uid], &FlagChange::Remove(flagged.clone()))
            .unwrap();
    }
    let before = inbox.status().unwrap().highest_modseq.get();
    assert!(before > 40, "{before}");
    drop(inbox);
    mail_store::maildir::release_idle_mailboxes(&maildir);

    let mail = dir.path().join("mail");
    migrated(
        dir.path(),
        &maildir_location(&maildir),
        &mbox_location(&mail),
        &[],
    );
    let mbox = MboxStore::new(mail.clone(), mail.join("inbox"), MboxSettings::default()).unwrap();
    let after = mbox
        .open(&MailboxName::inbox())
        .unwrap()
        .status()
        .unwrap()
        .highest_modseq
        .get();
    assert!(
        after >= before,
        "HIGHESTMODSEQ {before} before, {after} after"
    );
}
