//! IMAP extensions (SEARCHRES, WITHIN, APPENDLIMIT, CREATE-SPECIAL-USE, SAVEDATE) through
//! Python's imaplib, an independently written client, against the built server on loopback;
//! and COMPRESS=DEFLATE after STARTTLS with Python's ssl and zlib; QUOTA for a user whose
//! passwd-file entry carries limits; CATENATE with URL-PARTIAL, its TEXT literals sent through
//! imaplib's own continuation handling.

mod common;

use common::{PASSWORD, Server, USER, add_user, have, run_imaplib_script};

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
fn python_imaplib_catenate() {
    if !have("python3") {
        return;
    }
    let server = Server::start();
    let out = run_imaplib_script(&server, "imaplib_catenate.py", &[]);
    assert!(out.contains("imaplib catenate OK"), "{out}");
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

#[test]
fn python_imaplib_quota() {
    if !have("python3") {
        return;
    }
    // The user's limits as Dovecot's passwd-file gives them: 1 KiB and two messages.
    let data_dir = tempfile::tempdir().unwrap();
    add_user(data_dir.path(), USER, PASSWORD);
    let users = data_dir.path().join("users");
    let line = std::fs::read_to_string(&users).unwrap();
    let limited = format!(
        "{}::::::userdb_quota_rule=*:storage=1k userdb_quota_rule2=*:messages=2\n",
        line.trim_end()
    );
    std::fs::write(&users, limited).unwrap();
    let server = Server::start_in(data_dir, &[]);
    let out = run_imaplib_script(&server, "imaplib_quota.py", &[]);
    assert!(out.contains("imaplib quota OK"), "{out}");
}
