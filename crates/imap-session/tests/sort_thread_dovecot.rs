//! SORT and THREAD answers compared with Dovecot 2.3's on a generated corpus.
//!
//! `../shared/bench/gen-mail.py` writes a realistic corpus (threads by Message-ID, In-Reply-To
//! and References, `Re:` subjects, encoded-word and raw UTF-8 headers, dates in many zones);
//! the same messages are APPENDed with the same INTERNALDATEs to a real Dovecot and to an
//! in-process Columba session on loopback, and every SORT key and THREAD algorithm must give the
//! same answer from both (ESORT's `* ESEARCH` too, tags aside). Skipped (with a message)
//! without Dovecot, python3 or the generator, unless `COLUMBA_REQUIRE_EXTERNAL=1`.
//!
//! Known, deliberate differences are normalized before comparing: Dovecot writes an empty
//! THREAD result as `* THREAD ` with a trailing space, Columba as `* THREAD` (RFC 5256's
//! `thread-data = "THREAD" [SP 1*thread-list]`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use imap_session::{ConnectionInfo, ImapSettings, LoginPenalty, SessionContext};
use test_support::transcript::TestBackend;
use test_support::{Dovecot, ImapClient};

/// Messages in the corpus: enough for many threads, few enough for a quick test.
const COUNT: usize = 600;

const COMMANDS: &[&str] = &[
    "SORT (ARRIVAL) UTF-8 ALL",
    "SORT (DATE) UTF-8 ALL",
    "SORT (REVERSE DATE) UTF-8 ALL",
    "SORT (SIZE) UTF-8 ALL",
    "SORT (SUBJECT) UTF-8 ALL",
    "SORT (SUBJECT REVERSE DATE) UTF-8 ALL",
    "SORT (FROM) UTF-8 ALL",
    "SORT (TO) UTF-8 ALL",
    "SORT (CC DATE) UTF-8 ALL",
    "SORT (DISPLAYFROM) UTF-8 ALL",
    "SORT (DISPLAYTO) UTF-8 ALL",
    "UID SORT (REVERSE SUBJECT) UTF-8 SEEN",
    "SORT RETURN (MIN MAX ALL COUNT) (REVERSE ARRIVAL) UTF-8 ALL",
    "UID SORT RETURN () (SUBJECT SIZE) UTF-8 UNSEEN",
    "THREAD REFERENCES UTF-8 ALL",
    "THREAD REFS UTF-8 ALL",
    "THREAD ORDEREDSUBJECT UTF-8 ALL",
    "UID THREAD REFERENCES UTF-8 UNSEEN",
    "THREAD REFERENCES UTF-8 NOT SUBJECT re",
];

fn generator() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/bench/gen-mail.py")
}

fn skip(why: &str) {
    if std::env::var("COLUMBA_REQUIRE_EXTERNAL").as_deref() == Ok("1") {
        panic!("{why}, but COLUMBA_REQUIRE_EXTERNAL=1");
    }
    eprintln!("skipping: {why}");
}

/// The corpus as (message, INTERNALDATE as IMAP writes it), in delivery order.
fn corpus(dir: &Path) -> Vec<(Vec<u8>, String)> {
    let out = dir.join("Maildir");
    let status = std::process::Command::new("python3")
        .arg(generator())
        .args([
            "--count",
            &COUNT.to_string(),
            "--seed",
            "11",
            "--eol",
            "crlf",
        ])
        .args(["--big-fraction", "0", "--quiet", "--out"])
        .arg(&out)
        .status()
        .expect("run gen-mail.py");
    assert!(status.success(), "gen-mail.py failed");
    let mut files: Vec<PathBuf> = std::fs::read_dir(out.join("cur"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| {
            let mtime = std::fs::metadata(p).unwrap().modified().unwrap();
            let secs = mtime.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
            (std::fs::read(p).unwrap(), imap_date(secs))
        })
        .collect()
}

/// `dd-Mon-yyyy hh:mm:ss +0000`.
fn imap_date(unix: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, m, d) = imap_proto::response::civil_from_days(unix.div_euclid(86_400));
    let s = unix.rem_euclid(86_400);
    format!(
        "{d:02}-{}-{y:04} {:02}:{:02}:{:02} +0000",
        MONTHS[(m - 1) as usize],
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// A Columba session server on loopback over a fresh Maildir root, on its own runtime.
fn start_columba(root: &Path) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let root = root.to_owned();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let ctx = Arc::new(SessionContext {
                settings: ImapSettings::default(),
                backend: Arc::new(TestBackend { root }),
                starttls: None,
                penalty: Arc::new(LoginPenalty::new(
                    Duration::from_millis(1),
                    Duration::from_millis(1),
                )),
            });
            let mut n = 0;
            loop {
                let Ok((stream, remote)) = listener.accept().await else {
                    return;
                };
                n += 1;
                let info = ConnectionInfo {
                    remote,
                    local: addr,
                    implicit_tls: false,
                    session_id: format!("cmp{n}"),
                };
                tokio::spawn(imap_session::serve(Box::new(stream), ctx.clone(), info));
            }
        });
    });
    addr
}

fn fill(client: &mut ImapClient, messages: &[(Vec<u8>, String)]) {
    for (i, (raw, date)) in messages.iter().enumerate() {
        let r = client.append_with("INBOX", "", Some(date), raw).unwrap();
        assert!(r.is_ok(), "APPEND {i}: {} {}", r.status, r.text);
    }
    // Some messages seen, the same on both sides, for the searches.
    client.command("SELECT INBOX").unwrap().ok().unwrap();
    client
        .command("STORE 3,9,27,81,243,5:40,100:160 +FLAGS.SILENT (\\Seen)")
        .unwrap()
        .ok()
        .unwrap();
}

fn answer(client: &mut ImapClient, command: &str) -> String {
    let r = client.command(command).unwrap();
    assert!(r.is_ok(), "{command}: {} {}", r.status, r.text);
    let lines: Vec<String> = r
        .untagged
        .iter()
        .map(|l| String::from_utf8_lossy(l).trim_end().to_owned())
        .filter(|l| {
            l.starts_with("* SORT") || l.starts_with("* THREAD") || l.starts_with("* ESEARCH")
        })
        // The tags of the two connections need not agree.
        .map(|l| match (l.find("(TAG "), l.find(')')) {
            (Some(start), Some(end)) if start < end => format!("{}{}", &l[..start], &l[end + 1..]),
            _ => l,
        })
        .collect();
    lines.join("\n")
}

#[test]
fn sort_and_thread_answers_match_dovecot() {
    if !generator().exists() {
        return skip("../shared/bench/gen-mail.py not found");
    }
    let Some(dovecot) = Dovecot::start() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let messages = corpus(tmp.path());
    assert_eq!(messages.len(), COUNT);

    let mut theirs = dovecot.connect().unwrap();
    fill(&mut theirs, &messages);
    let root = tmp.path().join("columba");
    let addr = start_columba(&root);
    let mut ours = ImapClient::connect(addr).unwrap();
    ours.login("alice", "wonderland").unwrap().ok().unwrap();
    fill(&mut ours, &messages);

    let mut differences = Vec::new();
    for command in COMMANDS {
        let a = answer(&mut theirs, command);
        let b = answer(&mut ours, command);
        if a != b {
            differences.push(format!(
                "{command}\n  dovecot: {}\n  columba: {}",
                first_difference(&a, &b).0,
                first_difference(&a, &b).1
            ));
        }
    }
    // A second pass answers from the cache; it must say the same.
    for command in COMMANDS {
        let a = answer(&mut theirs, command);
        let b = answer(&mut ours, command);
        if a != b && !differences.iter().any(|d| d.starts_with(command)) {
            differences.push(format!("{command} (warm): differs"));
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {} answers differ from Dovecot's:\n{}",
        differences.len(),
        COMMANDS.len(),
        differences.join("\n")
    );
}

/// The two answers from a little before their first differing byte.
fn first_difference(a: &str, b: &str) -> (String, String) {
    let at = a
        .bytes()
        .zip(b.bytes())
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let from = a[..at].rfind(' ').map_or(0, |p| p.saturating_sub(60));
    let cut = |s: &str| {
        let start = (0..=from.min(s.len()))
            .rev()
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(0);
        s[start..].chars().take(160).collect::<String>()
    };
    (cut(a), cut(b))
}
