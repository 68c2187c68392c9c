//! The built server with its mail in mbox files (`[mail] location = "mbox:...:INBOX=..."`):
//! Python's imaplib and poplib work on an INBOX procmail delivered (the fixture
//! `procmail.mbox`) and on folders under the mbox root, and the files end up as mbox readers
//! expect them (flags in `Status`/`X-Status`/`X-Keywords`, UIDs in `X-UID`).

mod common;

use std::path::Path;

use common::{PASSWORD, Server, USER, have, run};

#[test]
fn imaplib_and_poplib_on_mbox() {
    if !have("python3") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    common::add_user(dir.path(), USER, PASSWORD);
    let spool = dir.path().join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../mail-store/tests/fixtures/mbox/procmail.mbox");
    std::fs::copy(&fixture, spool.join(USER)).unwrap();
    let config = dir.path().join("columba.toml");
    std::fs::write(
        &config,
        format!(
            "[mail]\nlocation = \"mbox:{root}/mbox/%u:INBOX={spool}/%u\"\n",
            root = dir.path().display(),
            spool = spool.display()
        ),
    )
    .unwrap();
    let server = Server::start_in(dir, &["--config", config.to_str().unwrap()]);

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/imaplib_mbox.py");
    let out = run(std::process::Command::new("python3")
        .arg(script)
        .args(["--port", &server.imap.port().to_string()])
        .args(["--pop3-port", &server.pop3.port().to_string()])
        .args(["--user", USER, "--password", PASSWORD]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("mbox session OK"), "{stdout}");

    let inbox = std::fs::read_to_string(server.data_dir.path().join("spool").join(USER)).unwrap();
    assert!(!inbox.contains("Subject: second"), "{inbox}");
    let first = inbox.split("\n\nFrom ").next().unwrap();
    assert!(first.contains("X-UID: 1\n"), "{first}");
    assert!(first.contains("Status: RO\n"), "{first}");
    assert!(first.contains("X-Status: F\n"), "{first}");
    assert!(first.contains("X-Keywords: work\n"), "{first}");
    assert!(inbox.contains("Subject: appended\nX-UID: 4\n"), "{inbox}");
    let folder = server
        .data_dir
        .path()
        .join("mbox")
        .join(USER)
        .join("work/2026");
    let folder = std::fs::read_to_string(folder).unwrap();
    assert!(folder.contains("Subject: filed\n"), "{folder}");
}
