//! Damaged index files never cost a crash or a wrong answer. For each of Columba's own files in
//! a mailbox, each kind of damage (truncation at many offsets, flipped bytes, zeroes, garbage, a
//! valid file of another mailbox) is done while a client has the mailbox selected and again
//! between sessions and a restart; the server stays up, the client gets the same UIDs, flags,
//! ENVELOPE, BODYSTRUCTURE and bodies as before, and the repair is logged.

mod common;

use std::path::Path;

use common::{PASSWORD, RawClient, Server, USER};

/// The index files a mailbox directory holds, with what the warning about a repair says
/// (Dovecot's `dovecot-uidlist` is mail data, not a cache, and is covered by the Maildir tests).
const INDEX_FILES: [(&str, &str); 2] = [
    ("columba.index.cache", "cache file repaired"),
    ("columba.index.log", "index log unusable"),
];

fn login(addr: std::net::SocketAddr) -> RawClient {
    let mut c = RawClient::connect(addr);
    let lines = c.command("l", &format!("LOGIN {USER} {PASSWORD}"));
    assert!(lines.last().unwrap().starts_with("l OK"), "{lines:?}");
    c
}

fn ok(c: &mut RawClient, tag: &str, cmd: &str) -> Vec<String> {
    let lines = c.command(tag, cmd);
    assert!(
        lines.last().unwrap().starts_with(&format!("{tag} OK")),
        "{cmd}: {lines:?}"
    );
    lines
}

/// Everything a client can see of the mailbox, as one comparable list of lines.
fn everything(c: &mut RawClient, mailbox: &str) -> Vec<String> {
    ok(c, "e1", &format!("SELECT {mailbox}"));
    let mut lines = ok(
        c,
        "e2",
        "FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY.PEEK[])",
    );
    lines.pop();
    lines.extend(ok(c, "e3", "SEARCH FROM \"sender\" SUBJECT \"number\""));
    lines.pop();
    // \Recent belongs to the first session that saw the messages, not to the data.
    lines
        .into_iter()
        .map(|l| l.replace(" \\Recent", "").replace("\\Recent", ""))
        .collect()
}

/// Compares without printing megabytes: the first line that differs.
fn same(seen: &[String], expected: &[String], context: &str) {
    if let Some(i) = (0..seen.len().max(expected.len())).find(|&i| seen.get(i) != expected.get(i)) {
        panic!(
            "{context}: line {i}\n got: {:?}\nwant: {:?}",
            seen.get(i),
            expected.get(i)
        );
    }
}

fn fill(c: &mut RawClient, mailbox: &str, n: usize) {
    ok(c, "f0", &format!("CREATE {mailbox}"));
    for i in 0..n {
        let msg = format!(
            "From: Sender {i} <sender{i}@example.com>\r\nTo: someone@example.org\r\nSubject: number {i}\r\nMessage-ID: <{mailbox}-{i}@test>\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--b--\r\n"
        );
        let flags = if i % 3 == 0 { "(\\Seen $Label1)" } else { "()" };
        c.send(
            format!(
                "f{i} APPEND {mailbox} {flags} {{{}+}}\r\n{msg}\r\n",
                msg.len()
            )
            .as_bytes(),
        );
        let lines = c.until_tagged(&format!("f{i}"));
        assert!(lines.last().unwrap().contains("OK"), "{lines:?}");
    }
}

/// The ways a file gets damaged; each returns the new content given the old one and a valid
/// file of another mailbox.
fn damages(good: &[u8], foreign: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for cut in [
        0,
        1,
        7,
        19,
        20,
        21,
        33,
        good.len() / 3,
        good.len() / 2,
        good.len() - 1,
    ] {
        if cut < good.len() {
            out.push((format!("truncated at {cut}"), good[..cut].to_vec()));
        }
    }
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..6 {
        let mut bad = good.to_vec();
        for _ in 0..=round {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let at = (x % bad.len() as u64) as usize;
            bad[at] ^= 1 << (x % 8);
        }
        out.push((format!("{} flipped bytes", round + 1), bad));
    }
    out.push(("zeroed".to_owned(), vec![0; good.len()]));
    out.push((
        "garbage".to_owned(),
        (0..good.len()).map(|i| (i * 131 % 253) as u8).collect(),
    ));
    out.push(("another mailbox's file".to_owned(), foreign.to_vec()));
    out
}

#[test]
fn damaged_index_files_are_repaired_without_a_wrong_answer() {
    let mut server = Server::start();
    let mut c = login(server.imap);
    fill(&mut c, "Work", 12);
    fill(&mut c, "Other", 12);
    let expected = everything(&mut c, "Work");
    everything(&mut c, "Other");
    ok(&mut c, "x", "CLOSE");
    let maildir = server.maildir(USER);
    let work = maildir.join(".Work");
    let other = maildir.join(".Other");

    for (file, warning_text) in INDEX_FILES {
        let good = std::fs::read(work.join(file)).unwrap();
        let foreign = std::fs::read(other.join(file)).unwrap();
        assert!(good.len() > 100, "{file} was not filled");
        for (what, bytes) in damages(&good, &foreign) {
            // While selected.
            ok(&mut c, "s", "SELECT Work");
            std::fs::write(work.join(file), &bytes).unwrap();
            let seen = everything(&mut c, "Work");
            same(&seen, &expected, &format!("{file} {what}, while selected"));
            // Between sessions, the damage found by a new session of the running server.
            std::fs::write(work.join(file), &bytes).unwrap();
            let mut fresh = login(server.imap);
            let seen = everything(&mut fresh, "Work");
            same(&seen, &expected, &format!("{file} {what}, new session"));
            fresh.command("o", "LOGOUT");
        }
        // Between restarts: the file is read from scratch, and the repair is logged.
        let (_, bytes) = damages(&good, &foreign).swap_remove(3);
        c.command("o", "LOGOUT");
        let data_dir = server.into_data_dir();
        std::fs::write(
            data_dir
                .path()
                .join(format!("mail/{USER}/Maildir/.Work/{file}")),
            &bytes,
        )
        .unwrap();
        server = Server::start_in(data_dir, &[]);
        c = login(server.imap);
        let seen = everything(&mut c, "Work");
        same(&seen, &expected, &format!("{file} after restart"));
        let warning = server.wait_for_log(warning_text);
        assert!(warning.contains("WARN"), "{warning}");
        assert!(warning.contains(file), "{warning}");
        assert!(server.is_running());
    }
    assert!(Path::new(&server.maildir(USER)).exists());
}
