//! The machinery shared by the protocol-transcript tests of `imap-session` and `pop3-session`:
//! reading `C:`/`S:` directives, matching expected lines with `{*}` wildcards, a client end of an
//! in-memory connection to a session, and a two-user backend over a temporary mail root.
//!
//! Each suite keeps its own directive set and runner (what `X:` lines do is protocol business);
//! this module holds what they would otherwise both spell out.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use auth::{AuthError, AuthOutcome, UserRecord};
use mail_store::maildir::MaildirStore;
use mail_store::{MailStore, StoreError};
use session_api::UserBackend;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, ReadHalf, WriteHalf};

/// Users every transcript can log in as: (name, password).
pub const USERS: [(&str, &str); 2] = [("alice", "wonderland"), ("bob", "builder")];

/// Checks passwords against [`USERS`]; each user's Maildir is `root/<name>`.
pub struct TestBackend {
    pub root: PathBuf,
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

/// The client end of an in-memory connection to a session.
pub struct Conn {
    reader: BufReader<ReadHalf<DuplexStream>>,
    writer: WriteHalf<DuplexStream>,
}

impl Conn {
    /// A connected pair: the client end, and the stream to hand to the session.
    pub fn pair() -> (Conn, DuplexStream) {
        let (client, server) = tokio::io::duplex(1 << 20);
        let (r, w) = tokio::io::split(client);
        (
            Conn {
                reader: BufReader::new(r),
                writer: w,
            },
            server,
        )
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.expect("send to session");
        self.writer.flush().await.expect("flush to session");
    }

    /// The next line, without its CRLF (for exchanges whose lines cannot be written down in
    /// advance, such as SASL with random nonces). Panics after 10 s or at the end of stream.
    pub async fn line(&mut self) -> String {
        let mut line = Vec::new();
        let read = tokio::time::timeout(
            Duration::from_secs(10),
            self.reader.read_until(b'\n', &mut line),
        )
        .await;
        match read {
            Ok(Ok(n)) if n > 0 => String::from_utf8_lossy(&line)
                .trim_end_matches(['\r', '\n'])
                .to_owned(),
            other => panic!("no line from the session: {other:?}"),
        }
    }

    /// Reads the next line and checks it against `expected` (see [`matches`]). Two special
    /// values: `(none)` — nothing may arrive within 300 ms; `(closed)` — the session must have
    /// closed the connection. `at` names the transcript line in failure messages.
    pub async fn expect(&mut self, expected: &str, at: &str) {
        let mut line = Vec::new();
        if expected == "(none)" {
            let read = tokio::time::timeout(
                Duration::from_millis(300),
                self.reader.read_until(b'\n', &mut line),
            )
            .await;
            assert!(
                read.is_err(),
                "{at}: expected nothing, got {:?}",
                String::from_utf8_lossy(&line)
            );
            return;
        }
        let read = tokio::time::timeout(
            Duration::from_secs(10),
            self.reader.read_until(b'\n', &mut line),
        )
        .await;
        match read {
            Err(_) => panic!("{at}: timed out waiting for {expected:?}"),
            Ok(Err(e)) => panic!("{at}: read error {e}"),
            Ok(Ok(0)) if expected == "(closed)" => return,
            Ok(Ok(0)) => panic!("{at}: connection closed, expected {expected:?}"),
            Ok(Ok(_)) if expected == "(closed)" => panic!(
                "{at}: expected the connection to close, got {:?}",
                String::from_utf8_lossy(&line)
            ),
            Ok(Ok(_)) => {}
        }
        let got = String::from_utf8_lossy(&line);
        let got = got
            .strip_suffix("\r\n")
            .unwrap_or_else(|| panic!("{at}: line without CRLF: {got:?}"));
        if !matches(expected, got) {
            // Show what followed too: it usually explains the mismatch.
            let got = got.to_owned();
            let mut after = String::new();
            loop {
                let mut more = Vec::new();
                let read = self.reader.read_until(b'\n', &mut more);
                match tokio::time::timeout(Duration::from_millis(200), read).await {
                    Ok(Ok(n)) if n > 0 => after.push_str(&format!(
                        "\n           {}",
                        String::from_utf8_lossy(&more).trim_end()
                    )),
                    _ => break,
                }
            }
            panic!("{at}:\n expected: {expected}\n      got: {got}{after}");
        }
    }
}

/// The numbered client connections of one transcript (`C:` is 1, `C2:` is 2...), each opened
/// on first use by starting a session on its server end.
pub struct Connections {
    /// The transcript's name, for failure messages.
    pub name: String,
    conns: HashMap<usize, Conn>,
    open: Box<dyn Fn(usize, DuplexStream) + Send>,
}

impl Connections {
    /// `open(n, stream)` must start a session task serving connection `n` on `stream`.
    pub fn new(name: String, open: impl Fn(usize, DuplexStream) + Send + 'static) -> Connections {
        Connections {
            name,
            conns: HashMap::new(),
            open: Box::new(open),
        }
    }

    pub fn get(&mut self, n: usize) -> &mut Conn {
        let open = &self.open;
        self.conns.entry(n).or_insert_with(|| {
            let (client, server) = Conn::pair();
            open(n, server);
            client
        })
    }

    pub async fn send(&mut self, n: usize, bytes: &[u8]) {
        self.get(n).send(bytes).await;
    }

    /// [`Conn::expect`] on connection `n`; `line_no` is the transcript line.
    pub async fn expect(&mut self, n: usize, expected: &str, line_no: usize) {
        let at = format!("{}:{line_no}", self.name);
        self.get(n).expect(expected, &at).await;
    }

    /// The client drops connection `n`.
    pub fn close(&mut self, n: usize) {
        self.conns.remove(&n);
    }
}

/// Runs every `*.txt` transcript in `dir` with `run` — only those whose path contains the
/// `TRANSCRIPT` environment variable when it is set — each in its own task, so that one failure
/// does not hide the others, and panics naming the ones that failed.
pub async fn run_all<F, Fut>(dir: &Path, run: F)
where
    F: Fn(PathBuf) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no transcripts in {}", dir.display());
    let only = std::env::var("TRANSCRIPT").ok();
    let mut failed = Vec::new();
    for file in files {
        if only
            .as_deref()
            .is_some_and(|o| !file.to_string_lossy().contains(o))
        {
            continue;
        }
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if tokio::spawn(run(file)).await.is_err() {
            failed.push(name);
        }
    }
    assert!(failed.is_empty(), "failed transcripts: {failed:?}");
}

/// Expands a transcript's client line: `{x*N}` is N copies of the character x (over-long
/// lines), `\r\n` a line end (pipelined commands in one write), `\n` a bare LF.
pub fn expand(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let spec = rest[open + 1..]
            .split_once('}')
            .and_then(|(inner, _)| inner.split_once('*'))
            .and_then(|(c, n)| Some((c.chars().next()?, n.parse::<usize>().ok()?)));
        match spec {
            Some((c, n)) => {
                out.push_str(&rest[..open]);
                out.extend(std::iter::repeat_n(c, n));
                let close = rest[open..].find('}').unwrap() + open;
                rest = &rest[close + 1..];
            }
            None => {
                out.push_str(&rest[..=open]);
                rest = &rest[open + 1..];
            }
        }
    }
    out.push_str(rest);
    out.replace("\\r\\n", "\r\n").replace("\\n", "\n")
}

/// `{*}` matches any run of characters; the rest must be equal.
pub fn matches(pattern: &str, text: &str) -> bool {
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

/// Splits a directive line: `C2: text` is `('C', 2, "text")`, `S: text` is `('S', 1, "text")`.
pub fn directive(line: &str) -> Option<(char, usize, &str)> {
    let (head, text) = line.split_once(':')?;
    let mut chars = head.chars();
    let kind = chars.next()?;
    let num: String = chars.collect();
    let n = if num.is_empty() { 1 } else { num.parse().ok()? };
    Some((kind, n, text.strip_prefix(' ').unwrap_or(text)))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(matches("+OK {*} octets", "+OK 12 octets"));
    }

    #[test]
    fn client_line_expansion() {
        assert_eq!(expand("STAT\\r\\nLIST"), "STAT\r\nLIST");
        assert_eq!(expand("a\\nb"), "a\nb");
        assert_eq!(expand("NOOP {x*3}"), "NOOP xxx");
        assert_eq!(expand("{not a repeat}"), "{not a repeat}");
    }

    #[test]
    fn directives() {
        assert_eq!(directive("C: a1 NOOP"), Some(('C', 1, "a1 NOOP")));
        assert_eq!(directive("S2: + "), Some(('S', 2, "+ ")));
        assert_eq!(directive("no directive"), None);
    }
}
