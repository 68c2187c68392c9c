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
//! - `X: deliver USER` followed by `D:` lines — drops a message into USER's Maildir `new/`
//!   directly, as another program would.
//! - `X: sleep MS` — pauses.
//! - `X: close` / `X: close2` — the client drops the connection.
//! - `S: (none)` — asserts that nothing arrives within a short time.
//! - `#` comments; blank lines ignored. Optional header `# remote: IP:PORT` sets the peer
//!   address (to test non-loopback policy).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use auth::{AuthError, AuthOutcome, UserRecord};
use imap_session::{ConnectionInfo, ImapSettings, LoginPenalty, SessionContext, UserBackend};
use mail_store::maildir::MaildirStore;
use mail_store::{MailStore, StoreError};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, ReadHalf, WriteHalf};

/// Users every transcript can log in as.
const USERS: [(&str, &str); 2] = [("alice", "wonderland"), ("bob", "builder")];

struct TestBackend {
    root: PathBuf,
}

impl UserBackend for TestBackend {
    fn authenticate(&self, username: &str, password: &[u8]) -> Result<AuthOutcome, AuthError> {
        Ok(match USERS.iter().find(|(u, _)| *u == username) {
            None => AuthOutcome::UnknownUser,
            Some((_, p)) if p.as_bytes() != password => AuthOutcome::WrongPassword,
            Some((u, _)) => AuthOutcome::Success(UserRecord {
                name: (*u).to_owned(),
                uid: None,
                gid: None,
                home: None,
                extra: Vec::new(),
            }),
        })
    }

    fn open_store(&self, user: &UserRecord) -> Result<Arc<dyn MailStore>, StoreError> {
        Ok(Arc::new(MaildirStore::new(self.root.join(&user.name))?))
    }
}

struct Conn {
    reader: BufReader<ReadHalf<DuplexStream>>,
    writer: WriteHalf<DuplexStream>,
}

struct Runner {
    ctx: Arc<SessionContext>,
    root: PathBuf,
    remote: SocketAddr,
    conns: HashMap<usize, Conn>,
    name: String,
}

impl Runner {
    fn conn(&mut self, n: usize) -> &mut Conn {
        let ctx = self.ctx.clone();
        let remote = self.remote;
        self.conns.entry(n).or_insert_with(|| {
            let (client, server) = tokio::io::duplex(1 << 20);
            let info = ConnectionInfo {
                remote,
                local: "127.0.0.1:143".parse().unwrap(),
                implicit_tls: false,
                session_id: format!("test{n}"),
            };
            tokio::spawn(imap_session::serve(Box::new(server), ctx, info));
            let (r, w) = tokio::io::split(client);
            Conn {
                reader: BufReader::new(r),
                writer: w,
            }
        })
    }

    async fn send(&mut self, n: usize, bytes: &[u8]) {
        let conn = self.conn(n);
        conn.writer.write_all(bytes).await.unwrap();
        conn.writer.flush().await.unwrap();
    }

    async fn expect(&mut self, n: usize, expected: &str, line_no: usize) {
        let name = self.name.clone();
        let conn = self.conn(n);
        let mut line = Vec::new();
        if expected == "(none)" {
            let read = tokio::time::timeout(
                Duration::from_millis(300),
                conn.reader.read_until(b'\n', &mut line),
            )
            .await;
            assert!(
                read.is_err(),
                "{name}:{line_no}: expected nothing, got {:?}",
                String::from_utf8_lossy(&line)
            );
            return;
        }
        let read = tokio::time::timeout(
            Duration::from_secs(10),
            conn.reader.read_until(b'\n', &mut line),
        )
        .await;
        match read {
            Err(_) => panic!("{name}:{line_no}: timed out waiting for {expected:?}"),
            Ok(Err(e)) => panic!("{name}:{line_no}: read error {e}"),
            Ok(Ok(_)) => {}
        }
        let got = String::from_utf8_lossy(&line);
        let got = got
            .strip_suffix("\r\n")
            .unwrap_or_else(|| panic!("{name}:{line_no}: line without CRLF: {got:?}"));
        if !matches(expected, got) {
            // Show what followed too: it usually explains the mismatch.
            let got = got.to_owned();
            let mut after = String::new();
            loop {
                let mut more = Vec::new();
                let read = conn.reader.read_until(b'\n', &mut more);
                match tokio::time::timeout(Duration::from_millis(200), read).await {
                    Ok(Ok(n)) if n > 0 => after.push_str(&format!(
                        "\n           {}",
                        String::from_utf8_lossy(&more).trim_end()
                    )),
                    _ => break,
                }
            }
            panic!("{name}:{line_no}:\n expected: {expected}\n      got: {got}{after}");
        }
    }

    fn deliver(&self, user: &str, data: &[u8]) {
        let dir = self.root.join(user).join("new");
        std::fs::create_dir_all(&dir).unwrap();
        let name = format!(
            "{}.M1P1.transcript",
            std::time::UNIX_EPOCH.elapsed().unwrap().as_micros()
        );
        std::fs::write(dir.join(name), data).unwrap();
    }
}

/// `{*}` matches any run of characters; the rest must be equal.
fn matches(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split("{*}").collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

/// Splits `C2:` into (2, text).
fn directive(line: &str) -> Option<(char, usize, &str)> {
    let (head, text) = line.split_once(':')?;
    let mut chars = head.chars();
    let kind = chars.next()?;
    let num: String = chars.collect();
    let n = if num.is_empty() { 1 } else { num.parse().ok()? };
    Some((kind, n, text.strip_prefix(' ').unwrap_or(text)))
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
    let mut runner = Runner {
        ctx,
        root: tmp.path().to_owned(),
        remote,
        conns: HashMap::new(),
        name,
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
            panic!("{}:{line_no}: cannot read directive {line:?}", runner.name);
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
        match kind {
            'C' => {
                let sent = body.replace("{#}", &format!("{{{}}}", data.len()));
                let sent = sent.replace("{#+}", &format!("{{{}+}}", data.len()));
                let mut bytes = sent.into_bytes();
                bytes.extend_from_slice(b"\r\n");
                if body.contains("{#}") {
                    // A synchronizing literal: the continuation must come before the data.
                    runner.send(n, &bytes).await;
                    runner.expect(n, "+ OK", line_no).await;
                    let mut tail = data.clone();
                    tail.extend_from_slice(b"\r\n");
                    runner.send(n, &tail).await;
                } else {
                    if !data.is_empty() {
                        bytes.extend_from_slice(&data);
                        bytes.extend_from_slice(b"\r\n");
                    }
                    runner.send(n, &bytes).await;
                }
            }
            'S' => runner.expect(n, body, line_no).await,
            'X' => {
                let mut words = body.split_whitespace();
                match words.next() {
                    Some("deliver") => runner.deliver(words.next().unwrap_or("alice"), &data),
                    Some("sleep") => {
                        let ms: u64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(100);
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                    }
                    Some("close") => {
                        runner.conns.remove(&n);
                    }
                    other => panic!("{}:{line_no}: unknown X: {other:?}", runner.name),
                }
            }
            other => panic!("{}:{line_no}: unknown directive {other:?}", runner.name),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcripts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/transcripts");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no transcripts in {}", dir.display());
    let only = std::env::var("TRANSCRIPT").ok();
    // Each transcript runs in its own task so one failure does not hide the others.
    let mut failed = Vec::new();
    for file in files {
        if only
            .as_deref()
            .is_some_and(|o| !file.to_string_lossy().contains(o))
        {
            continue;
        }
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        if tokio::spawn(async move { run_transcript(&file).await })
            .await
            .is_err()
        {
            failed.push(name);
        }
    }
    assert!(failed.is_empty(), "failed transcripts: {failed:?}");
}

#[test]
fn wildcard_matching() {
    assert!(matches(
        "* OK [UIDVALIDITY {*}] UIDs valid",
        "* OK [UIDVALIDITY 123] UIDs valid"
    ));
    assert!(!matches(
        "* OK [UIDVALIDITY {*}] UIDs valid",
        "* OK [UIDNEXT 1] UIDs valid"
    ));
    assert!(matches("a{*}", "abc"));
    assert!(!matches("abc", "abcd"));
}
