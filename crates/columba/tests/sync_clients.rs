//! Synchronisation clients written by others, against the built server on loopback: interimap
//! (a two-way sync that needs QRESYNC, LIST-EXTENDED, UIDPLUS and ENABLE on both sides — here
//! both sides are Columba), offlineimap3 (server ↔ local Maildir), and imapfilter (moving by
//! subject). Each is skipped when missing unless `COLUMBA_REQUIRE_EXTERNAL=1` (`.ci/run`
//! installs Debian's `interimap`, `offlineimap3` and `imapfilter`).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::{PASSWORD, RawClient, Server, USER, add_user, have, run};

fn login(server: &Server, user: &str, password: &str) -> RawClient {
    let mut c = RawClient::connect(server.imap);
    let reply = c.command("l", &format!("LOGIN {user} {password}"));
    assert!(reply.last().unwrap().starts_with("l OK"), "{reply:?}");
    c
}

fn append(c: &mut RawClient, mailbox: &str, subject: &str, flags: &str) {
    let message = format!(
        "From: sync@example.org\r\nTo: you@example.org\r\nSubject: {subject}\r\n\
         Message-ID: <{}@example.org>\r\n\r\nBody of {subject}.\r\n",
        subject.replace(' ', ".")
    );
    c.send(
        format!(
            "ap APPEND \"{mailbox}\" ({flags}) {{{}+}}\r\n",
            message.len()
        )
        .as_bytes(),
    );
    c.send(message.as_bytes());
    c.send(b"\r\n");
    let reply = c.until_tagged("ap");
    assert!(reply.last().unwrap().starts_with("ap OK"), "{reply:?}");
}

fn create(c: &mut RawClient, mailbox: &str) {
    let reply = c.command("cr", &format!("CREATE \"{mailbox}\""));
    assert!(reply.last().unwrap().starts_with("cr OK"), "{reply:?}");
}

/// Subject -> flags (sorted, without `\Recent`) of every message in `mailbox`.
fn contents(c: &mut RawClient, mailbox: &str) -> BTreeMap<String, String> {
    let reply = c.command("ex", &format!("EXAMINE \"{mailbox}\""));
    assert!(
        reply.last().unwrap().starts_with("ex OK"),
        "{mailbox}: {reply:?}"
    );
    let reply = c.command("f", "FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    let mut found = BTreeMap::new();
    let mut flags = None;
    for line in &reply {
        if let Some(rest) = line.split_once("FETCH (FLAGS (").map(|(_, r)| r) {
            let list = rest.split_once(')').map_or("", |(l, _)| l);
            let mut list: Vec<&str> = list
                .split_whitespace()
                .filter(|f| *f != "\\Recent")
                .collect();
            list.sort_unstable();
            flags = Some(list.join(" "));
        } else if let Some(subject) = line.strip_prefix("Subject: ") {
            found.insert(subject.to_owned(), flags.take().unwrap_or_default());
        }
    }
    c.command("cl", "CLOSE");
    found
}

#[test]
fn interimap_two_way_sync_of_three_folders() {
    if !have("interimap") {
        return;
    }
    let server = Server::start();
    add_user(server.data_dir.path(), "remote", "remote-pass");
    let mut local = login(&server, USER, PASSWORD);
    let mut remote = login(&server, "remote", "remote-pass");
    create(&mut local, "Work");
    create(&mut remote, "Lists");
    append(&mut local, "INBOX", "local one", "\\Seen");
    append(&mut local, "INBOX", "local two", "");
    append(&mut local, "Work", "work item", "\\Flagged");
    append(&mut remote, "INBOX", "remote one", "");
    append(&mut remote, "Lists", "list post", "\\Seen");

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    let side = |name: &str, user: &str, password: &str| {
        format!(
            "[{name}]\ntype = imap\nhost = 127.0.0.1\nport = {}\nSTARTTLS = NO\n\
             username = {user}\npassword = {password}\n",
            server.imap.port()
        )
    };
    std::fs::write(
        &config,
        format!(
            "database = {}\nlist-mailbox = *\n\n{}\n{}",
            dir.path().join("sync.db").display(),
            side("local", USER, PASSWORD),
            side("remote", "remote", "remote-pass")
        ),
    )
    .unwrap();
    let interimap = || {
        run(Command::new("interimap")
            .arg(format!("--config={}", config.display()))
            .env("HOME", dir.path()))
    };
    interimap();
    for mailbox in ["INBOX", "Work", "Lists"] {
        let (l, r) = (
            contents(&mut local, mailbox),
            contents(&mut remote, mailbox),
        );
        assert_eq!(l, r, "{mailbox} after the first sync");
    }
    assert_eq!(contents(&mut local, "INBOX").len(), 3);

    // Changes on both sides, some touching the same message.
    local.command("s1", "SELECT INBOX");
    local.command("s2", "UID STORE 1:* +FLAGS (\\Answered)");
    local.command("s3", "CLOSE");
    append(&mut local, "Lists", "late post", "");
    remote.command("t1", "SELECT Work");
    remote.command("t2", "STORE 1 +FLAGS (\\Deleted)");
    remote.command("t3", "EXPUNGE");
    remote.command("t4", "SELECT INBOX");
    remote.command("t5", "STORE 1:* +FLAGS (\\Flagged)");
    remote.command("t6", "CLOSE");
    interimap();
    for mailbox in ["INBOX", "Work", "Lists"] {
        let (l, r) = (
            contents(&mut local, mailbox),
            contents(&mut remote, mailbox),
        );
        assert_eq!(l, r, "{mailbox} after the second sync");
    }
    assert!(
        contents(&mut local, "Work").is_empty(),
        "the expunge crossed over"
    );
    assert_eq!(
        contents(&mut remote, "Lists")
            .keys()
            .cloned()
            .collect::<Vec<_>>(),
        ["late post", "list post"]
    );
    let inbox = contents(&mut remote, "INBOX");
    assert_eq!(
        inbox["local one"], "\\Answered \\Flagged \\Seen",
        "flags merged: {inbox:?}"
    );
}

#[test]
fn offlineimap_syncs_to_a_maildir_and_back() {
    if !have("offlineimap") {
        return;
    }
    let server = Server::start();
    let mut c = login(&server, USER, PASSWORD);
    create(&mut c, "Old");
    append(&mut c, "INBOX", "first", "\\Seen");
    append(&mut c, "INBOX", "second", "\\Flagged");
    append(&mut c, "Old", "old", "\\Seen");

    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("Mail");
    let rc = dir.path().join("offlineimaprc");
    std::fs::write(
        &rc,
        format!(
            "[general]\naccounts = test\nmetadata = {meta}\n\n\
             [Account test]\nlocalrepository = local\nremoterepository = remote\n\n\
             [Repository local]\ntype = Maildir\nlocalfolders = {local}\n\n\
             [Repository remote]\ntype = IMAP\nremotehost = 127.0.0.1\nremoteport = {port}\n\
             remoteuser = {USER}\nremotepass = {PASSWORD}\nssl = no\nstarttls = no\n",
            meta = dir.path().join("meta").display(),
            local = local.display(),
            port = server.imap.port()
        ),
    )
    .unwrap();
    let offlineimap = || {
        run(Command::new("offlineimap")
            .arg("-c")
            .arg(&rc)
            .args(["-o", "-u", "basic"])
            .env("HOME", dir.path()))
    };
    offlineimap();
    let files = |folder: &Path| -> Vec<String> {
        let mut names = Vec::new();
        for sub in ["cur", "new"] {
            if let Ok(entries) = std::fs::read_dir(folder.join(sub)) {
                for e in entries.flatten() {
                    names.push(std::fs::read_to_string(e.path()).unwrap());
                }
            }
        }
        names
    };
    let inbox = files(&local.join("INBOX"));
    assert_eq!(inbox.len(), 2, "{inbox:?}");
    assert!(inbox.iter().any(|m| m.contains("Subject: second")));
    assert_eq!(files(&local.join("Old")).len(), 1);

    // A message written into the local Maildir goes up on the next run.
    let new = local.join("INBOX/new/1700000000.local.host");
    std::fs::write(
        &new,
        "From: me@example.org\nSubject: written locally\n\nhi\n",
    )
    .unwrap();
    offlineimap();
    let server_inbox = contents(&mut c, "INBOX");
    assert!(
        server_inbox.contains_key("written locally"),
        "{server_inbox:?}"
    );
    assert_eq!(server_inbox["second"], "\\Flagged");
}

#[test]
fn imapfilter_moves_by_subject() {
    if !have("imapfilter") {
        return;
    }
    let server = Server::start();
    let mut c = login(&server, USER, PASSWORD);
    create(&mut c, "Receipts");
    append(&mut c, "INBOX", "Your receipt 1", "");
    append(&mut c, "INBOX", "hello", "");
    append(&mut c, "INBOX", "Your receipt 2", "\\Seen");

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.lua");
    std::fs::write(
        &config,
        format!(
            "options.timeout = 30\noptions.starttls = false\n\
             account = IMAP {{ server = '127.0.0.1', port = {port}, username = '{USER}',\n\
             password = '{PASSWORD}' }}\n\
             found = account.INBOX:contain_subject('receipt')\n\
             found:move_messages(account['Receipts'])\n",
            port = server.imap.port()
        ),
    )
    .unwrap();
    run(Command::new("imapfilter")
        .arg("-c")
        .arg(&config)
        .env("HOME", dir.path()));
    let inbox = contents(&mut c, "INBOX");
    assert_eq!(inbox.keys().cloned().collect::<Vec<_>>(), ["hello"]);
    let receipts = contents(&mut c, "Receipts");
    assert_eq!(
        receipts.keys().cloned().collect::<Vec<_>>(),
        ["Your receipt 1", "Your receipt 2"]
    );
    assert_eq!(receipts["Your receipt 2"], "\\Seen");
}
