//! SORT and THREAD (RFC 5256) through Python's imaplib, an independently written client,
//! against the built server on loopback.

mod common;

use common::{Server, have, run_imaplib_script};

#[test]
fn python_imaplib_sort_and_thread() {
    if !have("python3") {
        return;
    }
    let server = Server::start();
    let out = run_imaplib_script(&server, "imaplib_sort_thread.py", &[]);
    assert!(out.contains("imaplib sort/thread OK"), "{out}");
}
