//! Independently written clients against the built server on loopback: Python's imaplib, curl
//! and mbsync (isync). Each test starts its own server with a fresh data directory.

mod common;

use std::path::Path;
use std::process::Command;

use common::{PASSWORD, RawClient, Server, USER, have, run, run_imaplib_script};

fn login(c: &mut RawClient) {
    let r = c.command("l", &format!("LOGIN {USER} {PASSWORD}"));
    assert!(r.last().unwrap().starts_with("l OK"), "{r:?}");
}

fn append(c: &mut RawClient, mailbox: &str, message: &[u8]) {
    c.send(format!("ap APPEND {mailbox} {{{}+}}\r\n", message.len()).as_bytes());
    c.send(message);
    c.send(b"\r\n");
    let r = c.until_tagged("ap");
    assert!(r.last().unwrap().starts_with("ap OK"), "{r:?}");
}

#[test]
fn python_imaplib_full_session() {
    if !have("python3") {
        return;
    }
    let server = Server::start();
    let tls_port = server.imaps.port().to_string();
    let out = run_imaplib_script(&server, "imaplib_session.py", &["--tls-port", &tls_port]);
    assert!(out.contains("imaplib session OK"), "{out}");
}

#[test]
fn curl_list_fetch_append_over_imap_starttls_and_imaps() {
    if !have("curl") {
        return;
    }
    let server = Server::start();
    let user = format!("{USER}:{PASSWORD}");
    let message = b"From: curl@example.com\r\nSubject: via curl\r\n\r\nuploaded by curl\r\n";
    let file = server.data_dir.path().join("upload.eml");
    std::fs::write(&file, message).unwrap();

    // APPEND over cleartext imap:// (loopback allows it).
    let url = format!("imap://{}/INBOX", server.imap);
    run(Command::new("curl")
        .args(["-sS", "--user", &user, "-T"])
        .arg(&file)
        .arg(&url));

    // LIST over STARTTLS.
    let root = format!("imap://{}/", server.imap);
    let out = run(Command::new("curl").args(["-sS", "-k", "--ssl-reqd", "--user", &user, &root]));
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains("INBOX"), "LIST output: {listing}");

    // FETCH by UID over implicit TLS: exactly the uploaded bytes.
    let fetch = format!("imaps://{}/INBOX/;UID=1", server.imaps);
    let out = run(Command::new("curl").args(["-sS", "-k", "--user", &user, &fetch]));
    assert_eq!(out.stdout, message, "fetched body");

    // A custom command.
    let out = run(Command::new("curl").args([
        "-sS",
        "-k",
        "--user",
        &user,
        "-X",
        "STATUS INBOX (MESSAGES)",
        &root,
    ]));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("MESSAGES 1"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Wrong password: curl reports a login failure (exit code 67).
    let status = Command::new("curl")
        .args(["-sS", "--user", &format!("{USER}:wrong"), &root])
        .output()
        .unwrap()
        .status;
    assert_eq!(status.code(), Some(67), "curl exit code for a denied login");
}

#[test]
fn mbsync_syncs_twenty_messages_both_ways() {
    if !have("mbsync") {
        return;
    }
    let server = Server::start();
    // Ten messages on the server...
    let mut c = RawClient::connect(server.imap);
    login(&mut c);
    for i in 0..10 {
        let msg = format!(
            "From: server@example.com\r\nSubject: server message {i}\r\nMessage-ID: <s{i}@example.com>\r\n\r\nbody {i}\r\n"
        );
        append(&mut c, "INBOX", msg.as_bytes());
    }
    // ...and ten in the local Maildir.
    let local = server.data_dir.path().join("local");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(local.join("INBOX").join(sub)).unwrap();
    }
    for i in 0..10 {
        let msg = format!(
            "From: local@example.com\r\nSubject: local message {i}\r\nMessage-ID: <l{i}@example.com>\r\n\r\nlocal body {i}\r\n"
        );
        std::fs::write(
            local
                .join("INBOX/new")
                .join(format!("17000000{i:02}.local{i}.host")),
            msg,
        )
        .unwrap();
    }
    let config = server.data_dir.path().join("mbsyncrc");
    std::fs::write(
        &config,
        format!(
            "IMAPAccount columba\nHost 127.0.0.1\nPort {port}\nUser {USER}\nPass {PASSWORD}\nSSLType None\nAuthMechs LOGIN\n\n\
             IMAPStore remote\nAccount columba\n\n\
             MaildirStore local\nPath {path}/\nInbox {path}/INBOX\n\n\
             Channel sync\nFar :remote:\nNear :local:\nPatterns *\nCreate Both\nExpunge Both\nSyncState *\nSync All\n",
            port = server.imap.port(),
            path = local.display()
        ),
    )
    .unwrap();
    run(Command::new("mbsync").arg("-c").arg(&config).arg("-a"));

    let r = c.command("s1", "STATUS INBOX (MESSAGES)");
    assert_eq!(r[0], "* STATUS \"INBOX\" (MESSAGES 20)", "{r:?}");
    let count_local = |dir: &Path| -> usize {
        ["cur", "new"]
            .iter()
            .map(|s| {
                std::fs::read_dir(dir.join(s))
                    .map(|d| d.count())
                    .unwrap_or(0)
            })
            .sum()
    };
    assert_eq!(count_local(&local.join("INBOX")), 20);

    // Changes on both sides: flag and delete on the server, a new local message.
    c.command("s2", "SELECT INBOX");
    let r = c.command("s3", "UID SEARCH SUBJECT \"server message 3\"");
    let uid = r[0].trim_start_matches("* SEARCH ").to_owned();
    let r = c.command("s4", &format!("UID STORE {uid} +FLAGS (\\Deleted)"));
    assert!(r.last().unwrap().starts_with("s4 OK"), "{r:?}");
    c.command("s5", "EXPUNGE");
    c.command("s6", "STORE 1 +FLAGS (\\Flagged)");
    std::fs::write(
        local.join("INBOX/new/1700000099.local99.host"),
        "From: local@example.com\r\nSubject: late local\r\n\r\nlate\r\n",
    )
    .unwrap();
    run(Command::new("mbsync").arg("-c").arg(&config).arg("-a"));

    let r = c.command("s7", "STATUS INBOX (MESSAGES)");
    assert_eq!(r[0], "* STATUS \"INBOX\" (MESSAGES 20)", "{r:?}");
    assert_eq!(
        count_local(&local.join("INBOX")),
        20,
        "deleted on the server, so gone locally too"
    );
    let r = c.command("s8", "SEARCH SUBJECT \"late local\"");
    assert_ne!(
        r[0], "* SEARCH",
        "the late local message reached the server: {r:?}"
    );
    let flagged_locally = std::fs::read_dir(local.join("INBOX/cur"))
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .rsplit(":2,")
                .next()
                .is_some_and(|f| f.contains('F'))
        })
        .count();
    assert_eq!(
        flagged_locally, 1,
        "the flag set on the server reached the local Maildir"
    );
}
