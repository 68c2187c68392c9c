//! Protocol-transcript tests: each file in `tests/transcripts/` is a conversation of client
//! lines and the exact server lines expected back, replayed against in-process LMTP sessions
//! delivering into fresh Maildirs (one per user under a temporary root). The matching rules and
//! the client-line escapes (`\r\n`, `\n`, `{x*N}`) are test-support's, shared with the IMAP and
//! POP3 transcripts; `C:` lines get a CRLF appended.
//!
//! Users: `alice` and `bob` without limits, `tiny` whose `quota_rule` allows one message, and
//! `broken` whose every delivery fails. Directives besides `C:`/`S:`:
//! - `X: messages USER N` — USER's INBOX holds N messages.
//! - `X: message USER N` followed by `D:` lines — the Nth message of USER's INBOX, line by
//!   line (CRLF), each line matched with `{*}` wildcards.
//! - `# set: KEY=VALUE` — a setting: `max_line`, `max_message_size`, `max_recipients`,
//!   `max_bad_commands`, `quota_full_tempfail`, `rcpt_check_quota` (`yes`/`no`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use auth::UserRecord;
use lmtp_session::{
    ConnectionInfo, DeliveryBackend, DeliveryFailure, LmtpSettings, SessionContext,
};
use mail_store::MailStore;
use mail_store::maildir::MaildirStore;
use mail_types::MailboxName;
use session_api::delivery::{DeliveryError, deliver};
use session_api::quota::QuotaLimits;
use test_support::transcript::{Connections, directive, expand, matches, run_all};

struct Backend {
    root: PathBuf,
}

impl Backend {
    fn store(&self, user: &UserRecord) -> Result<MaildirStore, String> {
        MaildirStore::new(self.root.join(&user.name)).map_err(|e| e.to_string())
    }
}

impl DeliveryBackend for Backend {
    /// Names are case-insensitive, as the authenticator's lookups are by default.
    fn lookup(&self, username: &str) -> Result<Option<UserRecord>, String> {
        let username = username.to_lowercase();
        let mut user = UserRecord::named(&username);
        match username.as_str() {
            "alice" | "bob" | "broken" => {}
            "tiny" => user.extra = vec![("quota_rule".into(), "*:messages=1".into())],
            "lookup-fails" => return Err("the userdb is down".into()),
            _ => return Ok(None),
        }
        Ok(Some(user))
    }

    fn over_quota(&self, user: &UserRecord) -> Result<bool, String> {
        let store = self.store(user)?;
        QuotaLimits::of(user)
            .would_exceed(&store, 0, 1)
            .map_err(|e| e.to_string())
    }

    fn deliver(&self, user: &UserRecord, message: &[u8]) -> Result<(), DeliveryFailure> {
        if user.name == "broken" {
            return Err(DeliveryFailure::Temporary("disk on fire".into()));
        }
        let store = self.store(user).map_err(DeliveryFailure::Temporary)?;
        match deliver(&store, user, None, message) {
            Ok(_) => Ok(()),
            Err(DeliveryError::OverQuota) => Err(DeliveryFailure::OverQuota),
            Err(e) => Err(DeliveryFailure::Temporary(e.to_string())),
        }
    }
}

fn settings_from(text: &str, name: &str) -> LmtpSettings {
    let mut settings = LmtpSettings {
        hostname: "mail.test".to_owned(),
        ..LmtpSettings::default()
    };
    for kv in text.lines().filter_map(|l| l.strip_prefix("# set: ")) {
        let (key, value) = kv
            .split_once('=')
            .unwrap_or_else(|| panic!("{name}: bad setting {kv:?}"));
        let value = value.trim();
        match key.trim() {
            "max_line" => settings.max_line = value.parse().unwrap(),
            "max_message_size" => settings.max_message_size = value.parse().unwrap(),
            "max_recipients" => settings.max_recipients = value.parse().unwrap(),
            "quota_full_tempfail" => settings.quota_full_tempfail = value == "yes",
            "rcpt_check_quota" => settings.rcpt_check_quota = value == "yes",
            "max_bad_commands" => settings.max_bad_commands = value.parse().unwrap(),
            other => panic!("{name}: unknown setting {other}"),
        }
    }
    settings
}

/// The messages of `user`'s INBOX, in UID order.
fn inbox(root: &Path, user: &str) -> Vec<Vec<u8>> {
    let store = MaildirStore::new(root.join(user)).unwrap();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    inbox.refresh().unwrap();
    let snapshot = inbox.snapshot(false).unwrap();
    snapshot
        .messages
        .iter()
        .map(|m| inbox.read_message(m.uid).unwrap())
        .collect()
}

async fn run_transcript(path: &Path) {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let text = std::fs::read_to_string(path).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_owned();
    let ctx = Arc::new(SessionContext {
        settings: settings_from(&text, &name),
        backend: Arc::new(Backend { root: root.clone() }),
    });
    let mut conns = Connections::new(name.clone(), move |n, stream| {
        let remote: SocketAddr = "127.0.0.1:50000".parse().unwrap();
        let info = ConnectionInfo {
            remote,
            local: "127.0.0.1:24".parse().unwrap(),
            implicit_tls: false,
            session_id: format!("test{n}"),
        };
        tokio::spawn(lmtp_session::serve(Box::new(stream), ctx.clone(), info));
    });
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line_no = i + 1;
        let line = lines[i];
        i += 1;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (kind, n, body) =
            directive(line).unwrap_or_else(|| panic!("{name}:{line_no}: bad directive {line:?}"));
        let mut expected = Vec::new();
        while i < lines.len() && lines[i].starts_with("D:") {
            let d = &lines[i][2..];
            expected.push(d.strip_prefix(' ').unwrap_or(d));
            i += 1;
        }
        match (kind, body.split_whitespace().collect::<Vec<_>>().as_slice()) {
            ('C', _) => {
                let mut bytes = expand(body).into_bytes();
                bytes.extend_from_slice(b"\r\n");
                conns.send(n, &bytes).await;
            }
            ('S', _) => conns.expect(n, body, line_no).await,
            ('X', ["messages", user, count]) => {
                let have = inbox(&root, user).len();
                assert_eq!(have.to_string(), *count, "{name}:{line_no}: {user}'s INBOX");
            }
            ('X', ["message", user, nth]) => {
                let messages = inbox(&root, user);
                let nth: usize = nth.parse().unwrap();
                let message = String::from_utf8_lossy(&messages[nth - 1]).into_owned();
                let got: Vec<&str> = message.split_terminator("\r\n").collect();
                assert_eq!(got.len(), expected.len(), "{name}:{line_no}: {message:?}");
                for (want, have) in expected.iter().zip(&got) {
                    assert!(
                        matches(want, have),
                        "{name}:{line_no}: {have:?} is not {want:?}"
                    );
                }
            }
            other => panic!("{name}:{line_no}: unknown directive {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcripts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/transcripts");
    run_all(&dir, |file| async move { run_transcript(&file).await }).await;
}
