//! IMAP extensions (SEARCHRES, WITHIN, APPENDLIMIT, CREATE-SPECIAL-USE, SAVEDATE) through
//! Python's imaplib, an independently written client, against the built server on loopback;
//! and COMPRESS=DEFLATE after STARTTLS with Python's ssl and zlib.

mod common;

use common::{Server, have, run_imaplib_script};

#[test]
fn python_imaplib_extensions() {
    if !have("python3") {
        return;
    }
    let server = Server::start();
    let out = run_imaplib_script(&server, "imaplib_extensions.py", &[]);
    assert!(out.contains("imaplib extensions OK"), "{out}");
}

#[test]
fn python_compress_deflate_after_starttls() {
    if !have("python3") {
        return;
    }
    let server = Server::start();
    let out = run_imaplib_script(&server, "compress_starttls.py", &[]);
    assert!(out.contains("compress after STARTTLS OK"), "{out}");
}
