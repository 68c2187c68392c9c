//! What the mail-store tests that run other programs share: finding the program (or skipping,
//! unless `COLUMBA_REQUIRE_EXTERNAL=1`) and a store whose INBOX is a plain mbox file.

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
