//! `columba index dump|check|rebuild`: an operator looks at a mailbox's index, finds damage,
//! and rebuilds it without losing a UID or a flag.

mod common;

use std::process::Stdio;

use common::{PASSWORD, RawClient, Server, USER, columba};

fn index(data_dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = columba()
        .arg("--data-dir")
        .arg(data_dir)
        .arg("index")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run columba index");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn records(dump: &str) -> Vec<String> {
    // uid, modseq and flags of each record line (after the header line).
    dump.lines()
        .skip_while(|l| !l.starts_with("uid\t"))
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            format!("{} {}", f[0], f[4])
        })
        .collect()
}

#[test]
fn dump_check_and_rebuild() {
    let server = Server::start();
    let mut c = RawClient::connect(server.imap);
    c.command("l", &format!("LOGIN {USER} {PASSWORD}"));
    for (i, flags) in ["()", "(\\Seen)", "(\\Flagged $Label1)"].iter().enumerate() {
        let msg = format!("From: a@example.com\r\nSubject: {i}\r\n\r\nbody {i}\r\n");
        c.send(format!("a{i} APPEND INBOX {flags} {{{}+}}\r\n{msg}\r\n", msg.len()).as_bytes());
        let lines = c.until_tagged(&format!("a{i}"));
        assert!(lines.last().unwrap().contains("OK"), "{lines:?}");
    }
    c.command("s", "SELECT INBOX");
    c.command("f", "FETCH 1:* (ENVELOPE BODYSTRUCTURE)");
    c.command("o", "LOGOUT");
    let data_dir = server.into_data_dir();
    let dir = data_dir.path();

    let (ok, dump) = index(dir, &["dump", USER, "INBOX", "--records"]);
    assert!(ok, "{dump}");
    assert!(dump.contains("3 messages"), "{dump}");
    assert!(dump.contains("keywords: $Label1"), "{dump}");
    assert!(dump.contains("columba.index.cache:"), "{dump}");
    assert!(dump.contains("columba.index.log: "), "{dump}");
    assert!(dump.contains(", generation "), "{dump}");
    let before = records(&dump);
    assert_eq!(before.len(), 3, "{dump}");
    assert!(before[1].starts_with("2 (\\Seen"), "{before:?}");

    let (ok, report) = index(dir, &["check", USER, "INBOX"]);
    assert!(ok, "{report}");
    assert!(
        report.contains("columba.index: valid, 3 messages"),
        "{report}"
    );
    assert!(report.contains("matches the mail files"), "{report}");
    assert!(
        report.contains("columba.index.log: valid, generation "),
        "{report}"
    );

    // A damaged log record (not at the tail): check names the log and fails (its reading of the
    // mailbox afterwards repairs it, as any open does).
    let log_file = server_maildir(dir).join("columba.index.log");
    let good_log = std::fs::read(&log_file).unwrap();
    assert!(
        good_log.len() > 28 + 64,
        "the appends were logged: {}",
        good_log.len()
    );
    let mut bad = good_log.clone();
    bad[28 + 12] ^= 0x40;
    std::fs::write(&log_file, &bad).unwrap();
    let (ok, report) = index(dir, &["check", USER, "INBOX"]);
    assert!(!ok, "{report}");
    assert!(report.contains("columba.index.log: DAMAGED"), "{report}");

    // Damage: check says so, changes nothing, and fails.
    let index_file = server_maildir(dir).join("columba.index");
    let mut bytes = std::fs::read(&index_file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&index_file, &bytes).unwrap();
    let (ok, report) = index(dir, &["check", USER, "INBOX"]);
    assert!(!ok, "{report}");
    assert!(report.contains("columba.index: DAMAGED"), "{report}");

    let (ok, report) = index(dir, &["rebuild", USER, "INBOX"]);
    assert!(ok, "{report}");
    assert!(report.contains("indexed 3 messages"), "{report}");
    let (ok, report) = index(dir, &["check", USER, "INBOX"]);
    assert!(ok, "{report}");
    let (_, dump) = index(dir, &["dump", USER, "INBOX", "--records"]);
    let after: Vec<String> = records(&dump);
    // Same UIDs and flags; mod-sequences are new but never smaller.
    let strip = |v: &[String]| -> Vec<String> {
        v.iter()
            .map(|r| {
                r.split_once(' ')
                    .map(|(u, f)| format!("{u} {f}"))
                    .unwrap_or_default()
            })
            .collect()
    };
    assert_eq!(strip(&after), strip(&before), "{dump}");

    // No index file at all: rebuild indexes the files (once: there is nothing to save first),
    // keeps UIDs and flags, and HIGHESTMODSEQ does not go back.
    let highest = |dump: &str| -> u64 {
        let (_, rest) = dump.split_once("HIGHESTMODSEQ ").expect("a HIGHESTMODSEQ");
        rest.split(',').next().unwrap().parse().unwrap()
    };
    let modseq_before = highest(&dump);
    std::fs::remove_file(server_maildir(dir).join("columba.index")).unwrap();
    let (ok, report) = index(dir, &["rebuild", USER, "INBOX"]);
    assert!(ok, "{report}");
    assert!(report.contains("indexed 3 messages"), "{report}");
    let (_, dump) = index(dir, &["dump", USER, "INBOX", "--records"]);
    assert_eq!(strip(&records(&dump)), strip(&before), "{dump}");
    assert!(highest(&dump) >= modseq_before, "{dump}");

    // Unknown users and mailboxes are clear errors.
    let (ok, report) = index(dir, &["dump", "nobody", "INBOX"]);
    assert!(!ok && report.contains("no user"), "{report}");
    let (ok, report) = index(dir, &["dump", USER, "Nowhere"]);
    assert!(!ok && report.contains("Nowhere"), "{report}");
}

fn server_maildir(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("mail").join(USER).join("Maildir")
}

/// The same verbs on a user whose mail is in mbox files: the index files are in the control
/// directory (`<root>/.imap/INBOX/`), the log is checked the same way, and a rebuild keeps the
/// UIDs and flags the mbox headers hold.
#[test]
fn mbox_check_dump_and_rebuild() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    common::add_user(dir, USER, PASSWORD);
    let spool = dir.join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../mail-store/tests/fixtures/mbox/procmail.mbox");
    std::fs::copy(&fixture, spool.join(USER)).unwrap();
    let config = dir.join("columba.toml");
    std::fs::write(
        &config,
        format!(
            "[mail]\nlocation = \"mbox:{root}/mbox/%u:INBOX={spool}/%u\"\n",
            root = dir.display(),
            spool = spool.display()
        ),
    )
    .unwrap();
    let mbox_index = |args: &[&str]| {
        let mut all = vec!["--config", config.to_str().unwrap()];
        all.extend_from_slice(args);
        index(dir, &all)
    };
    // The first dump indexes the file (and starts the log).
    let (ok, dump) = mbox_index(&["dump", USER, "INBOX", "--records"]);
    assert!(ok, "{dump}");
    assert!(dump.contains("columba.index.log: "), "{dump}");
    assert!(
        dump.contains("uid\tmodseq\tsize\tinternaldate\tflags\toffset"),
        "{dump}"
    );
    let before = records(&dump);
    assert!(!before.is_empty(), "{dump}");
    let control = dir.join("mbox").join(USER).join(".imap/INBOX");
    assert!(control.join("columba.index.log").is_file());

    let (ok, report) = mbox_index(&["check", USER, "INBOX"]);
    assert!(ok, "{report}");
    assert!(
        report.contains("columba.index.log: valid, generation "),
        "{report}"
    );
    assert!(report.contains("matches the mail files"), "{report}");

    let log = control.join("columba.index.log");
    std::fs::write(&log, b"garbage that is no log").unwrap();
    let (ok, report) = mbox_index(&["check", USER, "INBOX"]);
    assert!(!ok, "{report}");
    assert!(report.contains("columba.index.log: DAMAGED"), "{report}");

    let (ok, report) = mbox_index(&["rebuild", USER, "INBOX"]);
    assert!(ok, "{report}");
    assert!(report.contains("readings of the mbox file"), "{report}");
    let (ok, report) = mbox_index(&["check", USER, "INBOX"]);
    assert!(ok, "{report}");
    let (_, dump) = mbox_index(&["dump", USER, "INBOX", "--records"]);
    assert_eq!(records(&dump), before, "{dump}");
}
