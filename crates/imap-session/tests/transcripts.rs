//! Protocol-transcript tests: each file in `tests/transcripts/` is a conversation of client lines
//! and the exact server lines expected back, replayed against an in-process session on a fresh
//! Maildir store.
//!
//! Format, one directive per line:
//! - `C: text` / `C2: text` — a line the client (connection 1 or 2...) sends; CRLF is added.
//!   `{#}` or `{#+}` in it is replaced by the size of the `D:` lines that follow, which are sent
//!   right after it (each with CRLF) — for literals.
//! - `S: text` / `S2: text` — the next line that connection must receive. `{*}` matches any run
//!   of characters; everything else must match exactly.
//! - `D: text` — a data line of the preceding `C:` literal, sent with CRLF; `T: text` — the
//!   same without CRLF (a literal that does not end a line, like a search string).
//! - `L: text` — the command line goes on after the preceding literal (a MULTIAPPEND's next
//!   message): no CRLF is sent after that literal's data, and `text` (with its own `{#}` and
//!   `D:` lines) follows it directly.
//! - `X: deliver USER` followed by `D:` lines — drops a message into USER's Maildir `new/`
//!   directly, as another program would.
//! - `X: rebuild-uidlist USER UIDVALIDITY` — replaces USER's INBOX `dovecot-uidlist` with an
//!   empty one under a new UIDVALIDITY, as another process that lost the file rebuilds it: every
//!   message gets a new UID at the next sync.
//! - `X: sleep MS` — pauses.
//! - `X: close` / `X: close2` — the client drops the connection.
//! - `S: (none)` — asserts that nothing arrives within a short time.
//! - `#` comments; blank lines ignored. Optional header `# remote: IP:PORT` sets the peer
//!   address (to test non-loopback policy).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use imap_session::{ConnectionInfo, ImapSettings, LoginPenalty, SessionContext};
use test_support::transcript::{Connections, TestBackend, directive, run_all};

struct Runner {
    conns: Connections,
    root: PathBuf,
}

impl Runner {
    fn deliver(&self, user: &str, data: &[u8]) {
        let dir = self.root.join(user).join("new");
        std::fs::create_dir_all(&dir).unwrap();
        let name = format!(
            "{}.M1P1.transcript",
            std::time::UNIX_EPOCH.elapsed().unwrap().as_micros()
        );
        std::fs::write(dir.join(name), data).unwrap();
    }

    fn rebuild_uidlist(&self, user: &str, uid_validity: u32) {
        let path = self.root.join(user).join("dovecot-uidlist");
        let header = format!("3 V{uid_validity} N1 G{uid_validity:032x}\n");
        std::fs::write(path, header).unwrap();
    }
}

async fn run_transcript(path: &Path) {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let text = std::fs::read_to_string(path).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut remote: SocketAddr = "127.0.0.1:50000".parse().unwrap();
    for line in text.lines() {
        if let Some(addr) = line.strip_prefix("# remote: ") {
            remote = addr.trim().parse().unwrap();
        }
    }
    let settings = ImapSettings {
        idle_poll_interval: Duration::from_millis(100),
        ..ImapSettings::default()
    };
    let ctx = Arc::new(SessionContext {
        settings,
        backend: Arc::new(TestBackend {
            root: tmp.path().to_owned(),
        }),
        starttls: None,
        penalty: Arc::new(LoginPenalty::new(
            Duration::from_millis(10),
            Duration::from_millis(50),
        )),
    });
    let conns = Connections::new(name, move |n, stream| {
        let info = ConnectionInfo {
            remote,
            local: "127.0.0.1:143".parse().unwrap(),
            implicit_tls: false,
            session_id: format!("test{n}"),
        };
        tokio::spawn(imap_session::serve(Box::new(stream), ctx.clone(), info));
    });
    let mut runner = Runner {
        conns,
        root: tmp.path().to_owned(),
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let line_no = i + 1;
        i += 1;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((kind, n, body)) = directive(line) else {
            panic!(
                "{}:{line_no}: cannot read directive {line:?}",
                runner.conns.name
            );
        };
        // Gather the D: lines that follow.
        let mut data = Vec::new();
        while i < lines.len() && (lines[i].starts_with("D:") || lines[i].starts_with("T:")) {
            let d = &lines[i][2..];
            data.extend_from_slice(d.strip_prefix(' ').unwrap_or(d).as_bytes());
            if lines[i].starts_with("D:") {
                data.extend_from_slice(b"\r\n");
            }
            i += 1;
        }
        // The command goes on after this literal: its data is not followed by CRLF.
        let line_end: &[u8] = if lines.get(i).is_some_and(|l| l.starts_with("L:")) {
            b""
        } else {
            b"\r\n"
        };
        match kind {
            'C' | 'L' => {
                let sent = body.replace("{#}", &format!("{{{}}}", data.len()));
                let sent = sent.replace("{#+}", &format!("{{{}+}}", data.len()));
                let mut bytes = sent.into_bytes();
                bytes.extend_from_slice(b"\r\n");
                if body.contains("{#}") {
                    // A synchronizing literal: the continuation must come before the data.
                    runner.conns.send(n, &bytes).await;
                    runner.conns.expect(n, "+ OK", line_no).await;
                    let mut tail = data.clone();
                    tail.extend_from_slice(line_end);
                    runner.conns.send(n, &tail).await;
                } else {
                    if !data.is_empty() {
                        bytes.extend_from_slice(&data);
                        bytes.extend_from_slice(line_end);
                    }
                    runner.conns.send(n, &bytes).await;
                }
            }
            'S' => runner.conns.expect(n, body, line_no).await,
            'X' => {
                let mut words = body.split_whitespace();
                match words.next() {
                    Some("deliver") => runner.deliver(words.next().unwrap_or("alice"), &data),
                    Some("rebuild-uidlist") => {
                        let user = words.next().unwrap_or("alice");
                        let uid_validity = words.next().and_then(|w| w.parse().ok());
                        let Some(uid_validity) = uid_validity else {
                            panic!(
                                "{}:{line_no}: rebuild-uidlist USER UIDVALIDITY",
                                runner.conns.name
                            )
                        };
                        runner.rebuild_uidlist(user, uid_validity);
                    }
                    Some("sleep") => {
                        let ms: u64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(100);
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                    }
                    Some("close") => {
                        runner.conns.close(n);
                    }
                    other => panic!("{}:{line_no}: unknown X: {other:?}", runner.conns.name),
                }
            }
            other => panic!(
                "{}:{line_no}: unknown directive {other:?}",
                runner.conns.name
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcripts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/transcripts");
    run_all(&dir, |file| async move { run_transcript(&file).await }).await;
}
