//! Two server processes on the same mail, and a third program dropping files into `new/`: each
//! session sees the others' changes as the untagged responses RFC 3501 7.4.1 asks for, and an
//! IDLE session is woken by a change made in the other process.

mod common;

use std::time::{Duration, Instant};

use common::{PASSWORD, RawClient, Server, USER};

fn login_select(addr: std::net::SocketAddr) -> RawClient {
    let mut c = RawClient::connect(addr);
    let lines = c.command("l", &format!("LOGIN {USER} {PASSWORD}"));
    assert!(lines.last().unwrap().starts_with("l OK"), "{lines:?}");
    let lines = c.command("s", "SELECT INBOX");
    assert!(lines.last().unwrap().starts_with("s OK"), "{lines:?}");
    c
}

fn append(c: &mut RawClient, tag: &str, subject: &str) {
    let msg = format!("Subject: {subject}\r\n\r\nbody\r\n");
    c.send(format!("{tag} APPEND INBOX {{{}+}}\r\n{msg}\r\n", msg.len()).as_bytes());
    let lines = c.until_tagged(tag);
    assert!(
        lines.last().unwrap().starts_with(&format!("{tag} OK")),
        "{lines:?}"
    );
}

/// Reads untagged lines until one equals `want`, or panics after `limit`.
fn wait_for(c: &mut RawClient, want: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    c.stream.set_read_timeout(Some(limit)).unwrap();
    loop {
        let line = c
            .next_line()
            .unwrap_or_else(|| panic!("no {want:?} within {limit:?}"));
        if line == want {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "no {want:?} within {limit:?}");
    }
}

#[test]
fn two_servers_and_a_delivery_agent_see_each_other() {
    let a = Server::start();
    // The second server reads the same users and mail through its configuration file.
    let b_dir = tempfile::tempdir().unwrap();
    let config = b_dir.path().join("columba.toml");
    std::fs::write(
        &config,
        format!(
            "[auth]\npasswd_file = \"{}\"\n[mail]\nlocation = \"{}/mail/%u/Maildir\"\n",
            a.data_dir.path().join("users").display(),
            a.data_dir.path().display()
        ),
    )
    .unwrap();
    let mut b = Server::start_in(b_dir, &["--config", config.to_str().unwrap()]);

    let mut on_a = login_select(a.imap);
    let mut on_b = login_select(b.imap);

    // IDLE on A, APPEND on B: A is woken.
    on_a.send(b"i1 IDLE\r\n");
    assert!(on_a.line().starts_with("+ "));
    append(&mut on_b, "b1", "from B");
    let woke = wait_for(&mut on_a, "* 1 EXISTS", Duration::from_secs(5));
    eprintln!("IDLE on A woken {woke:?} after B's APPEND was acknowledged");

    // A file dropped into new/ by a delivery agent: A (still idling) and B both see it.
    let new = a.maildir(USER).join("new");
    std::fs::write(
        new.join("1700000000.M1P1.mda"),
        b"Subject: dropped\r\n\r\nhi\r\n",
    )
    .unwrap();
    wait_for(&mut on_a, "* 2 EXISTS", Duration::from_secs(5));
    on_a.send(b"DONE\r\n");
    let lines = on_a.until_tagged("i1");
    assert!(lines.last().unwrap().starts_with("i1 OK"), "{lines:?}");
    let lines = on_b.command("b2", "NOOP");
    assert!(lines.contains(&"* 2 EXISTS".to_owned()), "{lines:?}");

    // Flags changed on A reach B as FETCH; an expunge on B reaches A as EXPUNGE.
    let lines = on_a.command("a2", "STORE 1 +FLAGS.SILENT (\\Flagged \\Deleted)");
    assert!(lines.last().unwrap().starts_with("a2 OK"), "{lines:?}");
    let lines = on_b.command("b3", "NOOP");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("* 1 FETCH (") && l.contains("FLAGS (\\Flagged \\Deleted")),
        "{lines:?}"
    );
    let lines = on_b.command("b4", "EXPUNGE");
    assert!(lines.contains(&"* 1 EXPUNGE".to_owned()), "{lines:?}");
    let lines = on_a.command("a3", "NOOP");
    assert!(lines.contains(&"* 1 EXPUNGE".to_owned()), "{lines:?}");
    // Both agree on what is left, UIDs included.
    let on_a_left = on_a.command("a4", "UID FETCH 1:* (UID)");
    let on_b_left = on_b.command("b5", "UID FETCH 1:* (UID)");
    assert_eq!(
        on_a_left[..on_a_left.len() - 1],
        on_b_left[..on_b_left.len() - 1]
    );
    assert_eq!(on_a_left.len(), 2, "{on_a_left:?}");

    // CONDSTORE across processes: B learns A's flag change through the index log, with the
    // mod-sequence A handed out, and CHANGEDSINCE in B finds it.
    let before = modseq(&on_b.command("b6", "FETCH 1 (MODSEQ)"));
    let lines = on_a.command("a5", "STORE 1 +FLAGS (\\Answered)");
    assert!(lines.last().unwrap().starts_with("a5 OK"), "{lines:?}");
    let on_a_fetch = on_a.command("a6", "FETCH 1 (FLAGS MODSEQ)");
    let stored = modseq(&on_a_fetch);
    assert!(stored > before, "{on_a_fetch:?}");
    let on_b_fetch = on_b.command("b7", "FETCH 1 (FLAGS MODSEQ)");
    assert_eq!(modseq(&on_b_fetch), stored, "{on_b_fetch:?}");
    assert!(
        on_b_fetch.iter().any(|l| l.contains("\\Answered")),
        "{on_b_fetch:?}"
    );
    let changed = on_b.command(
        "b8",
        &format!("UID FETCH 1:* (FLAGS) (CHANGEDSINCE {before})"),
    );
    assert!(
        changed
            .iter()
            .any(|l| l.contains("\\Answered") && l.contains(&format!("MODSEQ ({stored})"))),
        "{changed:?}"
    );
    // Both servers' logs show no fallback to a rescan.
    let b_log = b.log().join("\n");
    assert!(!b_log.contains("index log unusable"), "{b_log}");
}

/// The mod-sequence in the last `* n FETCH (... MODSEQ (m) ...)` of a command's lines.
fn modseq(lines: &[String]) -> u64 {
    lines
        .iter()
        .rev()
        .find_map(|l| l.split("MODSEQ (").nth(1)?.split(')').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no MODSEQ in {lines:?}"))
}
