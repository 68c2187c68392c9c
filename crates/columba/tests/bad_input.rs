//! Hostile and broken input over a real socket: each case gets BAD/NO or a clean disconnect,
//! the server stays up, and nothing is written half-way.

mod common;

use common::{PASSWORD, RawClient, Server, USER};

fn login(c: &mut RawClient) {
    let r = c.command("l", &format!("LOGIN {USER} {PASSWORD}"));
    assert!(r.last().unwrap().starts_with("l OK"), "{r:?}");
}

/// The server still answers a normal session.
fn assert_alive(server: &mut Server) {
    assert!(server.is_running(), "server died");
    let mut c = RawClient::connect(server.imap);
    login(&mut c);
    let r = c.command("n", "NOOP");
    assert_eq!(r.last().unwrap(), "n OK NOOP completed.");
}

#[test]
fn garbage_and_malformed_commands_get_bad() {
    let mut server = Server::start();
    let mut c = RawClient::connect(server.imap);
    c.send(b"\x00\x01\x02\xff garbage\r\n");
    let reply = c.line();
    assert!(reply.starts_with("* BAD"), "{reply}");
    let r = c.command("a1", "FETCH");
    assert!(r.last().unwrap().starts_with("a1 BAD"), "{r:?}");
    login(&mut c);
    let r = c.command("a2", "SELECT \"unterminated");
    assert!(r.last().unwrap().starts_with("a2 BAD"), "{r:?}");
    assert_alive(&mut server);
}

#[test]
fn ten_megabyte_line_is_refused_without_buffering_it() {
    let mut server = Server::start();
    let mut c = RawClient::connect(server.imap);
    let mut line = b"a1 NOOP ".to_vec();
    line.resize(10 * 1024 * 1024, b'x');
    line.extend_from_slice(b"\r\n");
    c.send(&line);
    let r = c.until_tagged("a1");
    assert!(
        r.last().unwrap().starts_with("a1 BAD") || r.last().unwrap() == "<EOF>",
        "{r:?}"
    );
    assert_alive(&mut server);
}

#[test]
fn huge_literals_are_refused() {
    let mut server = Server::start();
    let mut c = RawClient::connect(server.imap);
    login(&mut c);
    // Synchronizing: refused without a continuation, so the client sends nothing more.
    c.send(b"a1 LOGIN {4294967295}\r\n");
    let reply = c.line();
    assert!(
        reply.starts_with("a1 BAD") || reply.starts_with("a1 NO"),
        "{reply}"
    );
    c.send(b"a2 APPEND INBOX {4294967295}\r\n");
    let reply = c.line();
    assert!(
        reply.starts_with("a2 NO") || reply.starts_with("a2 BAD"),
        "{reply}"
    );
    let r = c.command("a3", "NOOP");
    assert_eq!(r.last().unwrap(), "a3 OK NOOP completed.");
    // Non-synchronizing: the bytes are already coming, so the server says BYE and closes.
    c.send(b"a4 APPEND INBOX {4294967295+}\r\nxxxx");
    let rest = c.read_to_end();
    assert!(rest.starts_with("* BYE"), "{rest:?}");
    assert_alive(&mut server);
}

#[test]
fn deep_nesting_is_refused() {
    let mut server = Server::start();
    let mut c = RawClient::connect(server.imap);
    login(&mut c);
    c.command("s", "SELECT INBOX");
    let search = format!("a1 SEARCH {}ALL{}\r\n", "(".repeat(1000), ")".repeat(1000));
    c.send(search.as_bytes());
    let r = c.until_tagged("a1");
    assert!(r.last().unwrap().starts_with("a1 BAD"), "{r:?}");
    assert_alive(&mut server);
}

#[test]
fn invalid_mailbox_names_are_refused() {
    let mut server = Server::start();
    let mut c = RawClient::connect(server.imap);
    login(&mut c);
    for (i, name) in [
        "\"&Jjo\"",
        "\"&AGE-\"",
        "\"a&\"",
        "\"../../etc\"",
        "\"/tmp/x\"",
        "\"~root/x\"",
    ]
    .iter()
    .enumerate()
    {
        let tag = format!("c{i}");
        let r = c.command(&tag, &format!("CREATE {name}"));
        assert!(
            r.last().unwrap().starts_with(&format!("{tag} NO")),
            "{name}: {r:?}"
        );
    }
    assert!(!server.data_dir.path().join("etc").exists());
    assert!(!std::path::Path::new("/tmp/x").exists() || std::path::Path::new("/tmp/x").is_dir());
    assert_alive(&mut server);
}

#[test]
fn disconnect_mid_literal_leaves_nothing_behind() {
    let mut server = Server::start();
    let mut c = RawClient::connect(server.imap);
    login(&mut c);
    c.send(b"a1 APPEND INBOX {1000+}\r\nSubject: half\r\n\r\nonly part of it");
    drop(c);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut c = RawClient::connect(server.imap);
    login(&mut c);
    let r = c.command("a2", "STATUS INBOX (MESSAGES)");
    assert_eq!(r[0], "* STATUS \"INBOX\" (MESSAGES 0)", "{r:?}");
    let tmp = server.maildir(USER).join("tmp");
    let leftovers: Vec<_> = std::fs::read_dir(&tmp)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(
        leftovers.is_empty(),
        "temporary files left in {}: {leftovers:?}",
        tmp.display()
    );
    assert_alive(&mut server);
}
