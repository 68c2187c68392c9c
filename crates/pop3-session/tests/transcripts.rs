//! Protocol-transcript tests: each file in `tests/transcripts/` is a conversation of client lines
//! and the exact server lines expected back, replayed against in-process POP3 sessions on a
//! fresh Maildir store (one directory per user under a temporary root). The users and the
//! matching rules are test-support's, shared with the IMAP transcripts.
//!
//! Format, one directive per line:
//! - `C: text` / `C2: text` — a line the client (connection 1 or 2...) sends; CRLF is added.
//!   `\r\n` inside the text sends a line end there too (pipelined commands in one write), and
//!   `{x*N}` is replaced by N copies of the character x (over-long lines).
//! - `S: text` / `S2: text` — the next line that connection must receive. `{*}` matches any run
//!   of characters; everything else must match exactly. `S: (none)` asserts that nothing
//!   arrives within a short time; `S: (closed)` that the server closed the connection.
//! - `X: deliver USER` followed by `D:` lines — drops a message into USER's Maildir `new/`
//!   directly, as a local delivery agent would (LF line ends, as Maildir files have).
//! - `X: write PATH` followed by `D:` lines — writes a file below the mail root (LF line ends),
//!   e.g. a `dovecot-uidlist` carrying stored UIDLs.
//! - `X: expunge USER UID` — another session (IMAP, say) expunges that message.
//! - `X: messages USER N` — asserts USER's INBOX holds N messages.
//! - `X: sleep MS` — pauses. `X: close` / `X: close2` — the client drops the connection.
//! - `#` comments; blank lines ignored. Header comments change the setup: `# remote: IP:PORT`
//!   sets the peer address (to test the non-loopback policy), `# set: KEY=VALUE` a setting
//!   (`uidl_format`, `lock_session`, `idle_timeout_ms`, `max_bad_commands`, `max_line`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use auth::LoginPenalty;
use mail_store::maildir::MaildirStore;
use mail_store::{FlagChange, MailStore};
use mail_types::{Flags, MailboxName, SystemFlags, Uid};
use pop3_session::{ConnectionInfo, MaildropLocks, Pop3Settings, SessionContext, UidlFormat};
use test_support::transcript::{Connections, TestBackend, directive, expand, run_all};

struct Runner {
    conns: Connections,
    root: PathBuf,
    delivered: u32,
}

impl Runner {
    /// Drops a message into `new/` as an MDA would. Names sort in delivery order, so UIDs
    /// follow it.
    fn deliver(&mut self, user: &str, data: &[u8]) {
        let dir = self.root.join(user).join("new");
        std::fs::create_dir_all(&dir).unwrap();
        self.delivered += 1;
        let name = format!("1700000000.M{:06}P1.transcript", self.delivered);
        std::fs::write(dir.join(name), data).unwrap();
    }

    fn store(&self, user: &str) -> MaildirStore {
        MaildirStore::new(self.root.join(user)).unwrap()
    }
}

fn settings_from(text: &str, name: &str) -> Pop3Settings {
    let mut settings = Pop3Settings::default();
    for line in text.lines() {
        let Some(kv) = line.strip_prefix("# set: ") else {
            continue;
        };
        let (key, value) = kv
            .split_once('=')
            .unwrap_or_else(|| panic!("{name}: bad setting {kv:?}"));
        match key.trim() {
            "uidl_format" => settings.uidl_format = UidlFormat::parse(value.trim()).unwrap(),
            "lock_session" => settings.lock_session = value.trim() == "yes",
            "idle_timeout_ms" => {
                settings.idle_timeout = Duration::from_millis(value.trim().parse().unwrap())
            }
            "max_bad_commands" => settings.max_bad_commands = value.trim().parse().unwrap(),
            "max_line" => settings.max_line = value.trim().parse().unwrap(),
            other => panic!("{name}: unknown setting {other}"),
        }
    }
    settings
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
    let ctx = Arc::new(SessionContext {
        settings: settings_from(&text, &name),
        backend: Arc::new(TestBackend {
            root: tmp.path().to_owned(),
        }),
        starttls: None,
        penalty: Arc::new(LoginPenalty::new(
            Duration::from_millis(10),
            Duration::from_millis(50),
        )),
        locks: Arc::new(MaildropLocks::new()),
    });
    let conns = Connections::new(name, move |n, stream| {
        let info = ConnectionInfo {
            remote,
            local: "127.0.0.1:110".parse().unwrap(),
            implicit_tls: false,
            session_id: format!("test{n}"),
        };
        tokio::spawn(pop3_session::serve(Box::new(stream), ctx.clone(), info));
    });
    let mut runner = Runner {
        conns,
        root: tmp.path().to_owned(),
        delivered: 0,
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
        while i < lines.len() && lines[i].starts_with("D:") {
            let d = &lines[i][2..];
            data.extend_from_slice(d.strip_prefix(' ').unwrap_or(d).as_bytes());
            data.push(b'\n');
            i += 1;
        }
        match kind {
            'C' => {
                let mut bytes = expand(body).into_bytes();
                bytes.extend_from_slice(b"\r\n");
                runner.conns.send(n, &bytes).await;
            }
            'S' => runner.conns.expect(n, body, line_no).await,
            'X' => {
                let words: Vec<&str> = body.split_whitespace().collect();
                match words.as_slice() {
                    ["deliver", user] => runner.deliver(user, &data),
                    ["write", path] => {
                        let path = runner.root.join(path);
                        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                        std::fs::write(path, &data).unwrap();
                    }
                    ["expunge", user, uid] => {
                        let uid = Uid::new(uid.parse().unwrap()).unwrap();
                        let inbox = runner.store(user).open(&MailboxName::inbox()).unwrap();
                        let deleted = FlagChange::Add(Flags::new(SystemFlags::DELETED, []));
                        inbox.store_flags(&[uid], &deleted).unwrap();
                        assert_eq!(inbox.expunge(Some(&[uid])).unwrap(), [uid]);
                    }
                    ["messages", user, count] => {
                        let inbox = runner.store(user).open(&MailboxName::inbox()).unwrap();
                        inbox.refresh().unwrap();
                        let have = inbox.snapshot(false).unwrap().messages.len();
                        assert_eq!(
                            have.to_string(),
                            *count,
                            "{}:{line_no}: messages in {user}'s INBOX",
                            runner.conns.name
                        );
                    }
                    ["sleep", ms] => {
                        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
                    }
                    ["close"] => {
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
