//! A QRESYNC client reconnecting (RFC 7162 3.2.5): it remembers UIDVALIDITY and HIGHESTMODSEQ,
//! and its next SELECT (QRESYNC ...) must tell it exactly what it missed — the UIDs expunged
//! since, and the messages whose flags changed — also across a server restart.

mod common;

use common::{PASSWORD, RawClient, Server, USER};

fn login(addr: std::net::SocketAddr) -> RawClient {
    let mut c = RawClient::connect(addr);
    let lines = c.command("l", &format!("LOGIN {USER} {PASSWORD}"));
    assert!(lines.last().unwrap().starts_with("l OK"), "{lines:?}");
    let lines = c.command("e", "ENABLE QRESYNC");
    assert!(lines.contains(&"* ENABLED QRESYNC".to_owned()), "{lines:?}");
    c
}

fn ok(c: &mut RawClient, tag: &str, cmd: &str) -> Vec<String> {
    let lines = c.command(tag, cmd);
    assert!(
        lines.last().unwrap().starts_with(&format!("{tag} OK")),
        "{cmd}: {lines:?}"
    );
    lines
}

fn code(lines: &[String], name: &str) -> u64 {
    lines
        .iter()
        .find_map(|l| l.split(&format!("[{name} ")).nth(1))
        .and_then(|r| r.split(']').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {lines:?}"))
}

/// The untagged lines a QRESYNC SELECT adds to a plain one.
fn resync_lines(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.starts_with("* VANISHED") || l.contains(" FETCH ("))
        .cloned()
        .collect()
}

#[test]
fn qresync_select_reports_exactly_what_was_missed() {
    let server = Server::start();
    let mut c = login(server.imap);
    for i in 1..=5 {
        let msg = format!("Subject: {i}\r\n\r\nbody\r\n");
        c.send(format!("a{i} APPEND INBOX {{{}+}}\r\n{msg}\r\n", msg.len()).as_bytes());
        let lines = c.until_tagged(&format!("a{i}"));
        assert!(lines.last().unwrap().contains("OK"), "{lines:?}");
    }
    let selected = ok(&mut c, "s1", "SELECT INBOX");
    let uid_validity = code(&selected, "UIDVALIDITY");
    let known = code(&selected, "HIGHESTMODSEQ");
    ok(&mut c, "l1", "LOGOUT");

    // Meanwhile, another client reads message 2 and deletes message 4.
    let mut other = login(server.imap);
    ok(&mut other, "o1", "SELECT INBOX");
    ok(&mut other, "o2", "UID STORE 2 +FLAGS.SILENT (\\Seen)");
    ok(&mut other, "o3", "UID STORE 4 +FLAGS.SILENT (\\Deleted)");
    ok(&mut other, "o4", "UID EXPUNGE 4");
    ok(&mut other, "o5", "LOGOUT");

    let mut c = login(server.imap);
    let lines = ok(
        &mut c,
        "s2",
        &format!("SELECT INBOX (QRESYNC ({uid_validity} {known}))"),
    );
    let resync = resync_lines(&lines);
    assert_eq!(resync.len(), 2, "{lines:?}");
    assert_eq!(resync[0], "* VANISHED (EARLIER) 4");
    assert!(
        resync[1].starts_with("* 2 FETCH (UID 2 FLAGS (\\Seen) MODSEQ ("),
        "{resync:?}"
    );
    let now = code(&lines, "HIGHESTMODSEQ");
    assert!(now > known);
    // Told about UIDs 1:3 only, the client hears nothing of 4.
    let lines = ok(
        &mut c,
        "s3",
        &format!("SELECT INBOX (QRESYNC ({uid_validity} {known} 1:3))"),
    );
    assert_eq!(resync_lines(&lines).len(), 1, "{lines:?}");
    // Up to date: nothing to say.
    let lines = ok(
        &mut c,
        "s4",
        &format!("SELECT INBOX (QRESYNC ({uid_validity} {now}))"),
    );
    assert!(resync_lines(&lines).is_empty(), "{lines:?}");
    ok(&mut c, "l2", "LOGOUT");

    // After a restart, the saved index still knows the mod-sequences and the expunge.
    let data_dir = server.into_data_dir();
    let server = Server::start_in(data_dir, &[]);
    let mut c = login(server.imap);
    let lines = ok(
        &mut c,
        "s5",
        &format!("SELECT INBOX (QRESYNC ({uid_validity} {known}))"),
    );
    assert_eq!(code(&lines, "UIDVALIDITY"), uid_validity);
    assert!(code(&lines, "HIGHESTMODSEQ") >= now, "{lines:?}");
    let resync = resync_lines(&lines);
    assert!(
        resync.contains(&"* VANISHED (EARLIER) 4".to_owned()),
        "{lines:?}"
    );
    assert!(
        resync
            .iter()
            .any(|l| l.starts_with("* 2 FETCH (UID 2 FLAGS (\\Seen)")),
        "{lines:?}"
    );
}
