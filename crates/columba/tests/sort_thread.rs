//! SORT and THREAD (RFC 5256) through Python's imaplib, an independently written client,
//! against the built server on loopback.

mod common;

use std::path::Path;
use std::process::Command;

use common::{PASSWORD, Server, USER, have, run};

#[test]
fn python_imaplib_sort_and_thread() {
    if !have("python3") {
        return;
    }
    let server = Server::start();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/imaplib_sort_thread.py");
    let out = run(Command::new("python3")
        .arg(script)
        .args(["--port", &server.imap.port().to_string()])
        .args(["--user", USER, "--password", PASSWORD]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("imaplib sort/thread OK"));
}
