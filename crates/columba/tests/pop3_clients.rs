//! POP3 against the built server on loopback, by independently written clients — Python's
//! poplib, curl, fetchmail and getmail6 — each checking that what it downloads is, message for
//! message and byte for byte, what was appended over IMAP; and POP3 beside IMAP on the same
//! mailbox (deletions, appends, the maildrop lock) with the log lines an operator sees; and a
//! fetchmail that left its mail on a Courier server, moved to Columba.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{PASSWORD, RawClient, Server, USER, have, run};

/// Messages that exercise the byte-exactness of RETR: dot-stuffing (lines of dots, a lone dot),
/// 8-bit text, a body-less message, and one large enough to be sent in several writes.
fn corpus() -> Vec<Vec<u8>> {
    let mut large = b"From: big@example.com\r\nSubject: large\r\nMIME-Version: 1.0\r\n\
        Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        .to_vec();
    for i in 0..8000u32 {
        large.extend_from_slice(
            format!("{i:08}QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2\r\n")
                .as_bytes(),
        );
    }
    vec![
        b"From: alice@example.com\r\nTo: bob@example.com\r\nSubject: plain\r\n\
          Message-ID: <p1@example.com>\r\n\r\nHello Bob.\r\n"
            .to_vec(),
        b"From: alice@example.com\r\nSubject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\n\
          ...\r\nend\r\n"
            .to_vec(),
        "From: =?UTF-8?Q?J=C3=BCrgen?= <j@example.com>\r\nSubject: Grüße\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         Grüße aus Köln — ½ € ✓\r\n"
            .as_bytes()
            .to_vec(),
        b"From: empty@example.com\r\nSubject: no body\r\n\r\n".to_vec(),
        large,
    ]
}

fn imap_login(server: &Server) -> RawClient {
    let mut c = RawClient::connect(server.imap);
    let r = c.command("l", &format!("LOGIN {USER} {PASSWORD}"));
    assert!(r.last().unwrap().starts_with("l OK"), "{r:?}");
    c
}

fn append(c: &mut RawClient, message: &[u8]) {
    c.send(format!("ap APPEND INBOX {{{}+}}\r\n", message.len()).as_bytes());
    c.send(message);
    c.send(b"\r\n");
    let r = c.until_tagged("ap");
    assert!(r.last().unwrap().starts_with("ap OK"), "{r:?}");
}

/// Appends the corpus over IMAP and returns it.
fn seed(server: &Server) -> Vec<Vec<u8>> {
    let messages = corpus();
    let mut c = imap_login(server);
    for m in &messages {
        append(&mut c, m);
    }
    c.command("o", "LOGOUT");
    messages
}

fn imap_count(server: &Server) -> usize {
    let mut c = imap_login(server);
    let r = c.command("s", "STATUS INBOX (MESSAGES)");
    c.command("o", "LOGOUT");
    r[0].trim_start_matches("* STATUS \"INBOX\" (MESSAGES ")
        .trim_end_matches(')')
        .parse()
        .unwrap_or_else(|_| panic!("STATUS: {r:?}"))
}

/// Lines ending in LF, as programs that deliver to local files write them.
fn lf(message: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(message)
        .replace("\r\n", "\n")
        .into_bytes()
}

/// The files of a directory's delivered messages, sorted by content.
fn delivered(dir: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    files.sort();
    files
}

fn sorted(mut v: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    v.sort();
    v
}

/// A tiny blocking POP3 client for exact control over the bytes.
struct Pop3 {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Pop3 {
    fn connect(addr: SocketAddr) -> Pop3 {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        let mut c = Pop3 { stream, reader };
        let greeting = c.line();
        assert_eq!(greeting, "+OK Columba ready.");
        c
    }

    fn line(&mut self) -> String {
        let mut buf = Vec::new();
        let _ = self.reader.read_until(b'\n', &mut buf);
        String::from_utf8_lossy(&buf)
            .trim_end_matches(['\r', '\n'])
            .to_owned()
    }

    fn command(&mut self, line: &str) -> String {
        self.stream
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
        self.line()
    }

    fn login(&mut self) {
        assert_eq!(self.command(&format!("USER {USER}")), "+OK");
        assert_eq!(self.command(&format!("PASS {PASSWORD}")), "+OK Logged in.");
    }
}

#[test]
fn python_poplib_retrieves_deletes_and_reconnects() {
    if !have("python3") {
        return;
    }
    let server = Server::start();
    let messages = seed(&server);
    let expect = server.data_dir.path().join("expect");
    std::fs::create_dir(&expect).unwrap();
    for (i, m) in messages.iter().enumerate() {
        std::fs::write(expect.join(format!("{}.eml", i + 1)), m).unwrap();
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/poplib_session.py");
    let out = run(Command::new("python3")
        .arg(script)
        .args(["--port", &server.pop3.port().to_string()])
        .args(["--tls-port", &server.pop3s.port().to_string()])
        .args(["--user", USER, "--password", PASSWORD])
        .arg("--expect")
        .arg(&expect));
    assert!(String::from_utf8_lossy(&out.stdout).contains("poplib session OK"));
    assert_eq!(
        imap_count(&server),
        messages.len() - 2,
        "two deleted over POP3"
    );
}

#[test]
fn curl_lists_retrieves_and_deletes_over_pop3_stls_and_pop3s() {
    if !have("curl") {
        return;
    }
    let server = Server::start();
    let messages = seed(&server);
    let user = format!("{USER}:{PASSWORD}");

    // LIST over cleartext pop3:// (loopback allows plaintext).
    let url = format!("pop3://{}/", server.pop3);
    let out = run(Command::new("curl").args(["-sS", "--user", &user, &url]));
    let want: String = messages
        .iter()
        .enumerate()
        .map(|(i, m)| format!("{} {}\r\n", i + 1, m.len()))
        .collect();
    assert_eq!(String::from_utf8_lossy(&out.stdout), want, "LIST output");

    // RETR of every message over STLS (--ssl-reqd) and over implicit TLS: exactly the bytes.
    for (i, m) in messages.iter().enumerate() {
        let stls = format!("pop3://{}/{}", server.pop3, i + 1);
        let out =
            run(Command::new("curl").args(["-sS", "-k", "--ssl-reqd", "--user", &user, &stls]));
        assert_eq!(&out.stdout, m, "message {} over STLS", i + 1);
        let pop3s = format!("pop3s://{}/{}", server.pop3s, i + 1);
        let out = run(Command::new("curl").args(["-sS", "-k", "--user", &user, &pop3s]));
        assert_eq!(&out.stdout, m, "message {} over POP3S", i + 1);
    }

    // DELE as a custom command, then the listing and IMAP agree.
    let one = format!("pop3s://{}/1", server.pop3s);
    run(Command::new("curl").args(["-sS", "-k", "--user", &user, "-X", "DELE", "-I", &one]));
    let root = format!("pop3s://{}/", server.pop3s);
    let out = run(Command::new("curl").args(["-sS", "-k", "--user", &user, "-X", "UIDL", &root]));
    let uidls = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(uidls.lines().count(), messages.len() - 1, "UIDL: {uidls}");
    assert!(
        uidls.starts_with("1 00000002"),
        "renumbered, UIDL kept: {uidls}"
    );
    assert_eq!(imap_count(&server), messages.len() - 1);

    // A wrong password: curl reports a login failure (exit code 67).
    let status = Command::new("curl")
        .args(["-sS", "--user", &format!("{USER}:wrong"), &url])
        .output()
        .unwrap()
        .status;
    assert_eq!(status.code(), Some(67), "curl exit code for a denied login");
}

/// Writes a fetchmail rc file (fetchmail insists on mode 0600) polling `port`.
fn fetchmail_rc(dir: &Path, port: u16, options: &str, mda: &Path) -> std::path::PathBuf {
    let rc = dir.join("fetchmailrc");
    std::fs::write(
        &rc,
        format!(
            "set no bouncemail\nset no syslog\n\
             poll 127.0.0.1 with proto POP3 port {port} and options no dns\n  \
             user \"{USER}\" there with password \"{PASSWORD}\" is \"root\" here\n  \
             options {options} no rewrite mda \"{}\"\n",
            mda.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&rc, std::fs::Permissions::from_mode(0o600)).unwrap();
    rc
}

/// An MDA script for fetchmail that files each message it is given in `<dir>/out/`; returns
/// that directory and the script.
fn file_mda(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    let mda = dir.join("mda.sh");
    std::fs::write(
        &mda,
        format!(
            "#!/bin/sh\nexec cat > \"{}/$(date +%s%N)-$$.eml\"\n",
            out.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&mda, std::fs::Permissions::from_mode(0o755)).unwrap();
    (out, mda)
}

fn fetchmail(home: &Path, rc: &Path) -> Output {
    run(Command::new("fetchmail")
        .env("HOME", home)
        .env("FETCHMAILHOME", home)
        .arg("-f")
        .arg(rc)
        // No Received: header of its own, so the delivered bytes can be compared.
        .arg("--invisible"))
}

#[test]
fn fetchmail_keeps_then_deletes_into_an_mda() {
    if !have("fetchmail") {
        return;
    }
    let server = Server::start();
    let messages = seed(&server);
    let dir = tempfile::tempdir().unwrap();
    let (out, mda) = file_mda(dir.path());
    let want = sorted(messages.iter().map(|m| lf(m)).collect());

    // --keep over cleartext POP3 (no TLS): everything delivered, nothing removed.
    let rc = fetchmail_rc(dir.path(), server.pop3.port(), "keep sslproto ''", &mda);
    fetchmail(dir.path(), &rc);
    assert_eq!(delivered(&out), want, "delivered with keep");
    assert_eq!(imap_count(&server), messages.len(), "keep leaves the mail");

    // Delete mode over POP3S (fetchall: the first run remembered the UIDLs).
    for f in std::fs::read_dir(&out).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    let rc = fetchmail_rc(
        dir.path(),
        server.pop3s.port(),
        "fetchall no keep ssl no sslcertck",
        &mda,
    );
    fetchmail(dir.path(), &rc);
    assert_eq!(delivered(&out), want, "delivered in delete mode");
    assert_eq!(imap_count(&server), 0, "delete mode empties the maildrop");
}

#[test]
fn getmail6_downloads_into_a_local_maildir() {
    if !have("getmail") {
        return;
    }
    let server = Server::start();
    let messages = seed(&server);
    let dir = tempfile::tempdir().unwrap();
    // getmail refuses to deliver as root; then it switches to `nobody`, who needs a way in.
    let as_root = std::fs::metadata(dir.path()).unwrap().uid() == 0;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let maildir = dir.path().join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    if as_root {
        run(Command::new("chown").args(["-R", "nobody"]).arg(&maildir));
    }
    let rc = |retriever: &str, port: u16, delete: bool| {
        let path = dir.path().join("getmailrc");
        std::fs::write(
            &path,
            format!(
                "[retriever]\ntype = {retriever}\nserver = 127.0.0.1\nport = {port}\n\
                 username = {USER}\npassword = {PASSWORD}\n\n\
                 [destination]\ntype = Maildir\npath = {}/\n{}\n\
                 [options]\nread_all = true\ndelete = {delete}\nreceived = false\n\
                 delivered_to = false\nmessage_log_syslog = false\nverbose = 0\n",
                maildir.display(),
                if as_root { "user = nobody\n" } else { "" }
            ),
        )
        .unwrap();
        path
    };
    let getmail = |rc: &Path| {
        run(Command::new("getmail")
            .arg("--getmaildir")
            .arg(dir.path())
            .arg("--rcfile")
            .arg(rc));
    };
    // getmail adds a Return-Path line of its own; everything after it must be the message.
    let fetched = || -> Vec<Vec<u8>> {
        sorted(
            delivered(&maildir.join("new"))
                .into_iter()
                .map(|m| {
                    let text = String::from_utf8_lossy(&m).into_owned();
                    let rest = text
                        .strip_prefix("Return-Path: <unknown>\n")
                        .unwrap_or(&text);
                    rest.as_bytes().to_vec()
                })
                .collect(),
        )
    };
    let want = sorted(messages.iter().map(|m| lf(m)).collect());

    getmail(&rc("SimplePOP3Retriever", server.pop3.port(), false));
    assert_eq!(fetched(), want, "downloaded over POP3, kept on the server");
    assert_eq!(imap_count(&server), messages.len());

    for f in std::fs::read_dir(maildir.join("new")).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    getmail(&rc("SimplePOP3SSLRetriever", server.pop3s.port(), true));
    assert_eq!(fetched(), want, "downloaded over POP3S and deleted");
    assert_eq!(imap_count(&server), 0);
}

#[test]
fn pop3_and_imap_stay_consistent_on_one_mailbox() {
    let mut server = Server::start();
    let messages = seed(&server);
    let mut imap = imap_login(&server);
    let r = imap.command("s", "SELECT INBOX");
    assert!(
        r.iter()
            .any(|l| l == &format!("* {} EXISTS", messages.len())),
        "{r:?}"
    );

    // A POP3 session holds the maildrop: a second one is refused, IMAP keeps working.
    let mut pop = Pop3::connect(server.pop3);
    pop.login();
    let mut second = Pop3::connect(server.pop3);
    assert_eq!(second.command(&format!("USER {USER}")), "+OK");
    assert_eq!(
        second.command(&format!("PASS {PASSWORD}")),
        "-ERR [IN-USE] Mailbox is locked by another POP3 session."
    );
    let r = imap.command("n", "NOOP");
    assert_eq!(r.last().unwrap(), "n OK NOOP completed.", "{r:?}");

    // Delete over POP3: nothing happens before QUIT; after it, IMAP sees EXPUNGE.
    assert_eq!(pop.command("DELE 2"), "+OK Marked to be deleted.");
    let r = imap.command("n2", "NOOP");
    assert_eq!(r.len(), 1, "no expunge before QUIT: {r:?}");
    assert_eq!(
        pop.command("RETR 1").as_str(),
        format!("+OK {} octets", messages[0].len())
    );
    while pop.line() != "." {}
    assert_eq!(pop.command("QUIT"), "+OK Logging out, messages deleted.");
    let r = imap.command("n3", "NOOP");
    assert!(r.contains(&"* 2 EXPUNGE".to_owned()), "{r:?}");
    // RETR'd messages are marked \Seen, as Dovecot does.
    let r = imap.command("f", "FETCH 1 (FLAGS)");
    assert!(r[0].contains("\\Seen"), "{r:?}");

    // Append over IMAP: the next POP3 session sees it, with the size IMAP reports.
    let late = b"From: late@example.com\r\nSubject: late\r\n\r\nappended over IMAP\r\n";
    append(&mut imap, late);
    let mut pop = Pop3::connect(server.pop3);
    pop.login();
    let left: u64 = messages
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, m)| m.len() as u64)
        .sum::<u64>()
        + late.len() as u64;
    assert_eq!(
        pop.command("STAT"),
        format!("+OK {} {left}", messages.len())
    );
    assert_eq!(
        pop.command(&format!("LIST {}", messages.len())),
        format!("+OK {} {}", messages.len(), late.len())
    );
    assert_eq!(pop.command("QUIT"), "+OK Logging out.");

    // The log lines, in Dovecot's pop3 shapes.
    let login = server.wait_for_log("pop3-login: Login: user=<tester>, method=PLAIN");
    assert!(
        login.contains("rip=127.0.0.1, lip=127.0.0.1, session=<"),
        "{login}"
    );
    let retr_bytes = messages[0].len() + format!("+OK {} octets\r\n.\r\n", messages[0].len()).len();
    let logout = server.wait_for_log(&format!("pop3({USER})<"));
    assert!(
        logout.contains(">: Disconnected: Logged out top=0/0, retr=1/"),
        "{logout}"
    );
    let full = format!(
        "Disconnected: Logged out top=0/0, retr=1/{retr_bytes}, del=1/{}, size={}",
        messages.len(),
        messages.iter().map(|m| m.len()).sum::<usize>()
    );
    server.wait_for_log(&full);
}

#[test]
fn pop3_listeners_are_set_from_the_command_line() {
    let server = Server::start();
    for line in ["pop3: listening on ", "pop3s: listening on "] {
        assert!(
            server.log_lines.iter().any(|l| l.contains(line)),
            "{line} missing from {:?}",
            server.log_lines
        );
    }
    // POP3S: TLS from the first byte (a plain greeting read must fail or be garbage).
    let mut raw = TcpStream::connect(server.pop3s).unwrap();
    raw.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    raw.write_all(b"CAPA\r\n").unwrap();
    let mut buf = [0u8; 64];
    let n = std::io::Read::read(&mut raw, &mut buf).unwrap_or(0);
    assert!(!buf[..n].starts_with(b"+OK"), "POP3S answered in cleartext");
}

/// The Maildir the real Courier-IMAP and POP3 servers left (mail-store's fixture; see
/// `scripts/regen-courier-fixtures`), copied into `to` with the empty directories git drops.
fn copy_courier_maildir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(to.join(sub)).unwrap();
    }
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_courier_maildir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A fetchmail that left mail on a Courier server moves to Columba without downloading it
/// again: its id file holds the UIDLs Courier's POP3 gave, and Columba answers with the same
/// ones, so only the message that arrived after the move is fetched.
#[test]
fn fetchmail_leaving_mail_on_the_server_survives_a_move_from_courier() {
    if !have("fetchmail") {
        return;
    }
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../mail-store/tests/fixtures/courier");
    let server = Server::start();
    let maildir = server.maildir(USER);
    copy_courier_maildir(&fixture.join("Maildir"), &maildir);
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(maildir.join(".Lists").join(sub)).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let (out, mda) = file_mda(dir.path());
    // What fetchmail remembered after its last poll of Courier: the UIDLs Courier listed.
    let courier = std::fs::read_to_string(fixture.join("expected/pop3")).unwrap();
    let uidls: Vec<&str> = courier
        .split("\n.\n")
        .next()
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('+'))
        .filter_map(|l| l.split_once(' ').map(|(_, uidl)| uidl))
        .collect();
    assert_eq!(uidls.len(), 3, "{courier}");
    let ids: String = uidls
        .iter()
        .map(|u| format!("{USER}@127.0.0.1 {u}\n"))
        .collect();
    let idfile = dir.path().join(".fetchids");
    std::fs::write(&idfile, ids).unwrap();
    std::fs::set_permissions(&idfile, std::fs::Permissions::from_mode(0o600)).unwrap();

    let rc = fetchmail_rc(dir.path(), server.pop3.port(), "keep sslproto ''", &mda);
    fetchmail(dir.path(), &rc);
    let got = delivered(&out);
    let subjects: Vec<String> = got
        .iter()
        .map(|m| {
            String::from_utf8_lossy(m)
                .lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .unwrap_or("?")
                .to_owned()
        })
        .collect();
    assert_eq!(subjects, ["five"], "only the mail that came after Courier");
    assert_eq!(imap_count(&server), 4, "keep leaves the mail");
}
