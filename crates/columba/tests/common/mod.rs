//! Starts the built `columba` binary on loopback for a test: a fresh data directory, a user with
//! a known password, IMAP, IMAPS, POP3 and POP3S listeners on ports the OS picks (read back from
//! the server's log lines).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const USER: &str = "tester";
pub const PASSWORD: &str = "s3cret-pass";

pub struct Server {
    child: Child,
    pub data_dir: tempfile::TempDir,
    pub imap: SocketAddr,
    pub imaps: SocketAddr,
    pub pop3: SocketAddr,
    pub pop3s: SocketAddr,
    log: mpsc::Receiver<String>,
    pub log_lines: Vec<String>,
}

pub fn columba() -> Command {
    Command::new(env!("CARGO_BIN_EXE_columba"))
}

/// Adds a user to the data directory's passwd-file with `columba user add`.
pub fn add_user(data_dir: &Path, name: &str, password: &str) {
    let mut child = columba()
        .args(["--data-dir"])
        .arg(data_dir)
        .args(["user", "add", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn columba user add");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    assert!(
        child.wait().unwrap().success(),
        "columba user add {name} failed"
    );
}

impl Server {
    /// Starts a server with one user (`USER`/`PASSWORD`) and waits until it accepts connections.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    pub fn start_with(extra_args: &[&str]) -> Server {
        let data_dir = tempfile::tempdir().unwrap();
        add_user(data_dir.path(), USER, PASSWORD);
        Server::start_in(data_dir, extra_args)
    }

    /// Starts a server on `data_dir` as it is. Its standard output arrives in the log too, each
    /// line prefixed with `stdout: `.
    pub fn start_in(data_dir: tempfile::TempDir, extra_args: &[&str]) -> Server {
        let mut child = columba()
            .arg("--data-dir")
            .arg(data_dir.path())
            .args(["serve", "--imap", "127.0.0.1:0", "--imaps", "127.0.0.1:0"])
            .args(["--pop3", "127.0.0.1:0", "--pop3s", "127.0.0.1:0"])
            .args(extra_args)
            .env("COLUMBA_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn columba serve");
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx2.send(line).is_err() {
                    break;
                }
            }
        });
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(format!("stdout: {line}")).is_err() {
                    break;
                }
            }
        });
        let mut server = Server {
            child,
            data_dir,
            imap: "127.0.0.1:0".parse().unwrap(),
            imaps: "127.0.0.1:0".parse().unwrap(),
            pop3: "127.0.0.1:0".parse().unwrap(),
            pop3s: "127.0.0.1:0".parse().unwrap(),
            log: rx,
            log_lines: Vec::new(),
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let (mut imap, mut imaps, mut pop3, mut pop3s) = (None, None, None, None);
        while imap.is_none() || imaps.is_none() || pop3.is_none() || pop3s.is_none() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = server.log.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "server did not report its listeners; log so far:\n{}",
                    server.log_lines.join("\n")
                )
            });
            if let Some(addr) = listener_addr(&line, "imap: listening on ") {
                imap = Some(addr);
            } else if let Some(addr) = listener_addr(&line, "imaps: listening on ") {
                imaps = Some(addr);
            } else if let Some(addr) = listener_addr(&line, "pop3: listening on ") {
                pop3 = Some(addr);
            } else if let Some(addr) = listener_addr(&line, "pop3s: listening on ") {
                pop3s = Some(addr);
            }
            server.log_lines.push(line);
        }
        server.imap = imap.unwrap();
        server.imaps = imaps.unwrap();
        server.pop3 = pop3.unwrap();
        server.pop3s = pop3s.unwrap();
        server
    }

    /// Log lines so far (drains what the server printed since the last call).
    pub fn log(&mut self) -> &[String] {
        while let Ok(line) = self.log.try_recv() {
            self.log_lines.push(line);
        }
        &self.log_lines
    }

    /// Waits up to 10 s for a log line containing `needle` and returns it.
    pub fn wait_for_log(&mut self, needle: &str) -> String {
        if let Some(line) = self.log_lines.iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) => {
                    self.log_lines.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no log line containing {needle:?}; log:\n{}",
                    self.log_lines.join("\n")
                ),
            }
        }
    }

    /// The address of the LMTP listener the server reported (started with `--lmtp`, or a
    /// configured `[lmtp] listen`).
    pub fn lmtp_addr(&mut self) -> SocketAddr {
        let line = self.wait_for_log("lmtp: listening on ");
        listener_addr(&line, "lmtp: listening on ")
            .unwrap_or_else(|| panic!("no address in {line:?}"))
    }

    pub fn maildir(&self, user: &str) -> PathBuf {
        self.data_dir.path().join("mail").join(user).join("Maildir")
    }

    /// Stops the server and hands back its data directory, to start another on it.
    pub fn into_data_dir(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let empty = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.data_dir, empty)
    }

    /// The server's process id (the master's, when it separates itself).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn listener_addr(line: &str, marker: &str) -> Option<SocketAddr> {
    let at = line.find(marker)?;
    line[at + marker.len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Runs an external program (a client under test) and returns its output; panics with both its
/// outputs when it fails.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// Whether an external program is available. When it is not, the test prints why it skips —
/// unless `COLUMBA_REQUIRE_EXTERNAL=1` (set by `.ci/run`, which installs everything), in which case
/// a missing program is a failure.
pub fn have(program: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !found {
        if std::env::var("COLUMBA_REQUIRE_EXTERNAL").as_deref() == Ok("1") {
            panic!("{program} is required (COLUMBA_REQUIRE_EXTERNAL=1) but not installed");
        }
        eprintln!("skipping: {program} not installed");
    }
    found
}

/// Runs `tests/clients/<script>` (a Python imaplib client) against the server's cleartext
/// IMAP port as the test user, with `extra` arguments; its standard output, or a panic with
/// its output when it fails.
pub fn run_imaplib_script(server: &Server, script: &str, extra: &[&str]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(script);
    let out = run(Command::new("python3")
        .arg(path)
        .args(["--port", &server.imap.port().to_string()])
        .args(["--user", USER, "--password", PASSWORD])
        .args(extra));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A line-based LMTP client.
pub struct LmtpClient {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl LmtpClient {
    pub fn connect(addr: SocketAddr) -> LmtpClient {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        let mut c = LmtpClient { stream, reader };
        assert!(c.line().starts_with("220 "));
        c
    }

    pub fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        line.trim_end().to_owned()
    }

    /// Sends `text` (CRLF added) and reads one reply, all its lines.
    pub fn command(&mut self, text: &str) -> Vec<String> {
        self.stream
            .write_all(format!("{text}\r\n").as_bytes())
            .unwrap();
        let mut lines = vec![self.line()];
        while lines
            .last()
            .is_some_and(|l| l.as_bytes().get(3) == Some(&b'-'))
        {
            lines.push(self.line());
        }
        lines
    }

    /// LHLO and one transaction to `rcpts`; the replies after the final dot.
    pub fn transaction(&mut self, rcpts: &[&str], message: &str) -> Vec<String> {
        self.command("LHLO test.example");
        assert_eq!(self.command("MAIL FROM:<s@example.org>"), ["250 2.1.0 OK"]);
        for rcpt in rcpts {
            let reply = self.command(&format!("RCPT TO:<{rcpt}>"));
            assert!(reply[0].starts_with("250 "), "{reply:?}");
        }
        assert!(self.command("DATA")[0].starts_with("354 "));
        let replies = self.command(&format!("{message}\r\n."));
        let mut all = replies;
        for _ in 1..rcpts.len() {
            all.push(self.line());
        }
        all
    }
}

/// A minimal line-based IMAP client for tests that need exact control over the bytes sent.
pub struct RawClient {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl RawClient {
    pub fn connect(addr: SocketAddr) -> RawClient {
        RawClient::over(TcpStream::connect(addr).expect("connect"))
    }

    /// A client on a connection made elsewhere (e.g. from another loopback address); reads the
    /// greeting.
    pub fn over(stream: TcpStream) -> RawClient {
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        let mut c = RawClient { stream, reader };
        let greeting = c.line();
        assert!(greeting.starts_with("* OK"), "greeting: {greeting}");
        c
    }

    /// Connects and reads the greeting; `None` when the server is not there (being restarted).
    pub fn try_connect(addr: SocketAddr) -> Option<RawClient> {
        let stream = TcpStream::connect(addr).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .ok()?;
        let reader = BufReader::new(stream.try_clone().ok()?);
        let mut c = RawClient { stream, reader };
        c.line().starts_with("* OK").then_some(c)
    }

    /// Sends bytes; a connection the server dropped shows up as end of stream on the next read.
    pub fn send(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    /// One line without CRLF; empty string at end of stream.
    pub fn line(&mut self) -> String {
        self.next_line().unwrap_or_default()
    }

    /// One line without CRLF; `None` at end of stream (an empty line is `Some("")`).
    pub fn next_line(&mut self) -> Option<String> {
        let mut buf = Vec::new();
        match self.reader.read_until(b'\n', &mut buf) {
            Ok(n) if n > 0 => Some(
                String::from_utf8_lossy(&buf)
                    .trim_end_matches(['\r', '\n'])
                    .to_owned(),
            ),
            _ => None,
        }
    }

    /// Reads lines until the tagged response for `tag`; returns all lines read, ending with
    /// `<EOF>` if the server closed the connection first.
    pub fn until_tagged(&mut self, tag: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let Some(line) = self.next_line() else {
                lines.push("<EOF>".to_owned());
                return lines;
            };
            let done = line.starts_with(&format!("{tag} "));
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    pub fn command(&mut self, tag: &str, command: &str) -> Vec<String> {
        self.send(format!("{tag} {command}\r\n").as_bytes());
        self.until_tagged(tag)
    }

    /// Reads whatever remains until the server closes the connection.
    pub fn read_to_end(&mut self) -> String {
        let mut rest = String::new();
        let _ = self.reader.read_to_string(&mut rest);
        rest
    }
}

/// A minimal line-based POP3 client: the greeting is read on connect.
pub struct Pop3Client {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Pop3Client {
    pub fn connect(addr: SocketAddr) -> Pop3Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        let mut c = Pop3Client {
            writer: stream,
            reader,
        };
        let greeting = c.line();
        assert!(greeting.starts_with("+OK"), "greeting: {greeting}");
        c
    }

    /// Sends one line (CRLF added).
    pub fn send(&mut self, line: &str) {
        let _ = self.writer.write_all(format!("{line}\r\n").as_bytes());
    }

    /// One line without CRLF; empty at end of stream.
    pub fn line(&mut self) -> String {
        let mut l = String::new();
        let _ = self.reader.read_line(&mut l);
        l.trim_end_matches(['\r', '\n']).to_owned()
    }

    /// Sends `line` and returns the first line of the answer.
    pub fn command(&mut self, line: &str) -> String {
        self.send(line);
        self.line()
    }

    /// The CAPA list, without the status line and the final dot.
    pub fn capabilities(&mut self) -> Vec<String> {
        let status = self.command("CAPA");
        assert!(status.starts_with("+OK"), "CAPA: {status}");
        let mut caps = Vec::new();
        loop {
            let l = self.line();
            if l == "." || l.is_empty() {
                return caps;
            }
            caps.push(l);
        }
    }
}

/// AUTHENTICATE with SCRAM (tag `a1`) as `user`: the tagged reply, after checking the server's
/// signature when the exchange got that far.
pub fn imap_scram(
    addr: SocketAddr,
    mechanism: auth::sasl::Mechanism,
    user: &str,
    password: &str,
) -> String {
    use test_support::sasl::{ScramClient, b64, unb64};
    let mut c = RawClient::connect(addr);
    let mut client = ScramClient::new(mechanism, user, password);
    c.send(format!("a1 AUTHENTICATE {mechanism} {}\r\n", b64(client.first())).as_bytes());
    let first = String::from_utf8(unb64(&c.line())).unwrap();
    c.send(format!("{}\r\n", b64(client.answer(&first))).as_bytes());
    let next = c.line();
    if !next.starts_with("+ ") {
        return next;
    }
    assert!(client.server_final_ok(&String::from_utf8(unb64(&next)).unwrap()));
    c.send(b"\r\n");
    c.line()
}

/// A CA in `dir/ca.pem` and a client certificate for `cn` it signed, in `dir/client.pem` and
/// `dir/client.key`.
pub fn client_certificates(dir: &Path, cn: &str) {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "Columba test CA");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let mut client = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    client
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    client.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = rcgen::KeyPair::generate().unwrap();
    let client_cert = client.signed_by(&client_key, &ca_cert, &ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("client.pem"), client_cert.pem()).unwrap();
    std::fs::write(dir.join("client.key"), client_key.serialize_pem()).unwrap();
}

/// Python's imaplib with a client certificate: whether EXTERNAL is offered, then (unless
/// `nocert`) AUTHENTICATE EXTERNAL and SELECT INBOX.
pub const IMAPLIB_EXTERNAL: &str = r#"
import imaplib, ssl, sys
host, imaps, imap, certdir, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
if mode != "nocert":
    ctx.load_cert_chain(certdir + "/client.pem", certdir + "/client.key")
if mode == "starttls":
    c = imaplib.IMAP4(host, imap)
    c.starttls(ssl_context=ctx)
else:
    c = imaplib.IMAP4_SSL(host, imaps, ssl_context=ctx)
typ, caps = c.capability()
print("EXTERNAL offered:", b"AUTH=EXTERNAL" in caps[0])
if mode != "nocert":
    typ, data = c.authenticate("EXTERNAL", lambda challenge: b"")
    print("authenticate:", typ)
    typ, data = c.select("INBOX")
    print("select:", typ)
c.logout()
"#;

/// Runs [`IMAPLIB_EXTERNAL`] against `server` with the certificates of `certdir`; `mode` is
/// `implicit`, `starttls` or `nocert`. Its standard output.
pub fn imaplib_external(server: &Server, certdir: &Path, mode: &str) -> String {
    let out = run(Command::new("python3")
        .arg("-c")
        .arg(IMAPLIB_EXTERNAL)
        .arg("127.0.0.1")
        .arg(server.imaps.port().to_string())
        .arg(server.imap.port().to_string())
        .arg(certdir)
        .arg(mode));
    String::from_utf8_lossy(&out.stdout).into_owned()
}
