//! What the mail-store tests share: finding another program (or skipping, unless
//! `COLUMBA_REQUIRE_EXTERNAL=1`), a store whose INBOX is a plain mbox file, and the kinds of
//! damage done to an index log.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use mail_store::mbox::{MboxSettings, MboxStore};
use mail_store::{MailStore, Mailbox};
use mail_types::MailboxName;

/// Whether `program` is installed; prints "skipping: ..." when not, and panics instead when
/// `COLUMBA_REQUIRE_EXTERNAL=1` (CI installs everything).
pub fn have(program: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        if std::env::var("COLUMBA_REQUIRE_EXTERNAL").is_ok_and(|v| v == "1") {
            panic!("{program} not installed, but COLUMBA_REQUIRE_EXTERNAL=1");
        }
        eprintln!("skipping: {program} not installed");
    }
    found
}

/// An mbox store in `dir` (folders in `dir/mail`) with its INBOX at `dir/inbox`, opened.
pub fn mbox_inbox(dir: &Path) -> (MboxStore, Arc<dyn Mailbox>, PathBuf) {
    let inbox_path = dir.join("inbox");
    let store = MboxStore::new(
        dir.join("mail"),
        inbox_path.clone(),
        MboxSettings::default(),
    )
    .unwrap();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    (store, inbox, inbox_path)
}

/// One way to damage a log: called with its path and its bytes as they were.
pub type Damage = Box<dyn Fn(&Path, &[u8])>;

/// The kinds of damage the log tests of every backend survive; `foreign` is a valid log of
/// another mailbox.
pub fn log_damage(foreign: Vec<u8>) -> Vec<(&'static str, Damage)> {
    vec![
        (
            "byte flipped in the first record",
            Box::new(|p, b| {
                let mut b = b.to_vec();
                b[40] ^= 0x20;
                std::fs::write(p, b).unwrap();
            }),
        ),
        (
            "zeroed",
            Box::new(|p, b| std::fs::write(p, vec![0u8; b.len()]).unwrap()),
        ),
        (
            "garbage",
            Box::new(|p, b| {
                let g: Vec<u8> = (0..b.len()).map(|i| (i * 131 % 251) as u8).collect();
                std::fs::write(p, g).unwrap();
            }),
        ),
        ("missing", Box::new(|p, _| std::fs::remove_file(p).unwrap())),
        (
            "truncated into the header",
            Box::new(|p, b| std::fs::write(p, &b[..10]).unwrap()),
        ),
        (
            "truncated before the index's position",
            Box::new(|p, b| std::fs::write(p, &b[..29]).unwrap()),
        ),
        (
            "another mailbox's valid log",
            Box::new(move |p, _| std::fs::write(p, &foreign).unwrap()),
        ),
    ]
}
