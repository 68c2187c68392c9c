//! Delivery into the built binary: the LMTP server (RFC 2033) driven by Python's smtplib.LMTP
//! and by hand, and `columba deliver` (dovecot-lda's exit codes), with the delivered mail read
//! back over IMAP — including by a session sitting in IDLE — and QUOTA enforced at delivery.
//!
//! Started as root (CI), the data directory is given to `nobody` first, so that the server and
//! the delivery agent write mail as a user rather than refusing to write it as root.

mod common;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{LmtpClient, PASSWORD, RawClient, Server, USER, add_user, columba, have, run};

/// A data directory with `USER` and the extra users; as root, owned by nobody.
fn data_dir(extra: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), USER, PASSWORD);
    for (name, password) in extra {
        add_user(dir.path(), name, password);
    }
    dir
}

/// As root, gives the data directory to `nobody`: the server then serves mail as nobody, and
/// `columba deliver` writes it as nobody.
fn hand_to_nobody(dir: &Path) {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        run(Command::new("chown").args(["-R", "65534:65534"]).arg(dir));
    }
}

/// Gives `name` Dovecot's `quota_rule` extra field in the passwd-file.
fn set_quota(dir: &Path, name: &str, rule: &str) {
    let users = dir.join("users");
    let text = std::fs::read_to_string(&users).unwrap();
    let text: String = text
        .lines()
        .map(|line| {
            if line.starts_with(&format!("{name}:")) {
                format!("{line}::::::userdb_quota_rule={rule}\n")
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    std::fs::write(&users, text).unwrap();
}

fn start(dir: tempfile::TempDir) -> (Server, SocketAddr) {
    start_with(dir, &[])
}

fn start_with(dir: tempfile::TempDir, extra: &[&str]) -> (Server, SocketAddr) {
    hand_to_nobody(dir.path());
    let mut args = vec!["--lmtp", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut server = Server::start_in(dir, &args);
    let addr = server.lmtp_addr();
    (server, addr)
}

/// Logs in over IMAP as `user` and selects INBOX.
fn imap_inbox(server: &Server, user: &str, password: &str) -> (RawClient, Vec<String>) {
    let mut c = RawClient::connect(server.imap);
    let login = c.command("a", &format!("LOGIN {user} {password}"));
    assert!(login.last().unwrap().starts_with("a OK"), "{login:?}");
    let select = c.command("b", "SELECT INBOX");
    (c, select)
}

/// Waits in IDLE for `* N EXISTS` after `deliver` ran; returns how long it took from the end
/// of the delivery (its success reported) to the untagged response.
fn idle_sees(c: &mut RawClient, exists: &str, deliver: impl FnOnce()) -> Duration {
    c.send(b"i IDLE\r\n");
    assert!(c.line().starts_with("+ "));
    deliver();
    let started = Instant::now();
    loop {
        let line = c.line();
        assert!(!line.is_empty(), "connection closed in IDLE");
        if line == exists {
            let took = started.elapsed();
            c.send(b"DONE\r\n");
            c.until_tagged("i");
            return took;
        }
    }
}

fn deliver_cmd(server: &Server, args: &[&str], message: &[u8]) -> Output {
    let mut child = columba()
        .arg("--data-dir")
        .arg(server.data_dir.path())
        .arg("deliver")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(message).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn python_smtplib_lmtp_delivers_to_two_users() {
    if !have("python3") {
        return;
    }
    let (server, lmtp) = start(data_dir(&[
        ("alice", "wonder-land"),
        ("bob", "the-builder"),
    ]));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/lmtp_smtplib.py");
    let out = run(Command::new("python3")
        .arg(script)
        .args(["--lmtp-port", &lmtp.port().to_string()])
        .args(["--imap-port", &server.imap.port().to_string()])
        .args(["--users", "alice:wonder-land", "bob:the-builder"]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("lmtp smtplib OK"), "{stdout}");
}

#[test]
fn lmtp_delivery_wakes_idle_and_quota_refuses_the_third_message() {
    let dir = data_dir(&[("bob", "the-builder")]);
    set_quota(dir.path(), USER, "*:messages=2");
    let (server, lmtp) = start(dir);
    let (mut imap, select) = imap_inbox(&server, USER, PASSWORD);
    assert!(select.contains(&"* 0 EXISTS".to_owned()), "{select:?}");
    let mut client = LmtpClient::connect(lmtp);
    let took = idle_sees(&mut imap, "* 1 EXISTS", || {
        let replies =
            client.transaction(&[&format!("{USER}@example.com")], "Subject: one\r\n\r\n1");
        assert!(replies[0].starts_with("250 2.0.0 "), "{replies:?}");
    });
    assert!(took < Duration::from_secs(1), "IDLE woke after {took:?}");
    let replies = client.transaction(&[USER], "Subject: two\r\n\r\n2");
    assert!(replies[0].starts_with("250 2.0.0 "), "{replies:?}");
    // The third message is over the quota of two; bob, in the same transaction, gets it.
    let replies = client.transaction(&[USER, "bob"], "Subject: three\r\n\r\n3");
    assert_eq!(
        replies,
        [
            format!("552 5.2.2 <{USER}> Quota exceeded (mailbox for user is full)"),
            replies[1].clone()
        ]
    );
    assert!(replies[1].starts_with("250 2.0.0 <bob> "), "{replies:?}");
    let quit = client.command("QUIT");
    assert!(
        quit[0].starts_with("221 2.0.0 ") && quit[0].ends_with(" Bye"),
        "{quit:?}"
    );
    let status = imap.command("s", "STATUS INBOX (MESSAGES)");
    assert!(status[0].contains("(MESSAGES 2)"), "{status:?}");
}

#[test]
fn deliver_exit_codes_mailboxes_and_idle() {
    let dir = data_dir(&[("full", "pass-word"), ("broken", "pass-word")]);
    set_quota(dir.path(), "full", "*:messages=2");
    let (server, _lmtp) = start(dir);

    // Delivered into a named mailbox that exists; a missing one means INBOX.
    let (mut imap, _) = imap_inbox(&server, USER, PASSWORD);
    assert!(
        imap.command("c", "CREATE Lists")
            .last()
            .unwrap()
            .starts_with("c OK")
    );
    let message = b"From s@example.org Sun Nov 29 11:09:19 2026\nSubject: lda\n\nbody\n";
    let out = deliver_cmd(
        &server,
        &["-d", USER, "-m", "Lists", "-f", "s@example.org"],
        message,
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = deliver_cmd(
        &server,
        &["-d", USER, "-m", "Nowhere", "-e"],
        b"Subject: x\n\nx\n",
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let lists = imap.command("e", "EXAMINE Lists");
    assert!(lists.contains(&"* 1 EXISTS".to_owned()), "{lists:?}");
    let fetched = imap.command("f", "FETCH 1 BODY.PEEK[]");
    // As dovecot-lda: the mbox From_ line is dropped and no header is added.
    assert_eq!(
        fetched[0],
        format!(
            "* 1 FETCH (BODY[] {{{}}}",
            "Subject: lda\r\n\r\nbody\r\n".len()
        )
    );
    assert_eq!(fetched[1..3], ["Subject: lda", ""]);

    // A message delivered by another process wakes an IDLE session within a second.
    imap.command("g", "SELECT INBOX");
    let took = idle_sees(&mut imap, "* 2 EXISTS", || {
        let out = deliver_cmd(&server, &["-d", USER], b"Subject: idle\r\n\r\nhi\r\n");
        assert_eq!(out.status.code(), Some(0), "{out:?}");
    });
    assert!(took < Duration::from_secs(1), "IDLE woke after {took:?}");
    // Started as root, the agent wrote as the mail's owner, never as root; files are 0600.
    for sub in ["new", "cur"] {
        for entry in std::fs::read_dir(server.maildir(USER).join(sub)).unwrap() {
            use std::os::unix::fs::MetadataExt as _;
            let meta = entry.unwrap().metadata().unwrap();
            assert_ne!(meta.uid(), 0, "a delivered file belongs to root");
            assert_eq!(meta.mode() & 0o077, 0, "mode {:o}", meta.mode());
        }
    }

    // Unknown user: 67. Over quota (the third message for two allowed): 77 with Dovecot's
    // message. A store that cannot be written: 75, so the MTA keeps the message.
    let out = deliver_cmd(&server, &["-d", "nobody-here"], b"Subject: x\n\nx\n");
    assert_eq!(out.status.code(), Some(67), "{out:?}");
    for _ in 0..2 {
        let out = deliver_cmd(&server, &["-d", "full"], b"Subject: x\n\nx\n");
        assert_eq!(out.status.code(), Some(0), "{out:?}");
    }
    let out = deliver_cmd(&server, &["-d", "full", "-e"], b"Subject: x\n\nx\n");
    assert_eq!(out.status.code(), Some(77), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "Quota exceeded (mailbox for user is full)"
    );
    let broken = server.maildir("broken");
    std::fs::create_dir_all(broken.parent().unwrap()).unwrap();
    std::fs::write(&broken, b"not a directory").unwrap();
    let out = deliver_cmd(&server, &["-d", "broken"], b"Subject: x\n\nx\n");
    assert_eq!(out.status.code(), Some(75), "{out:?}");
}

#[test]
fn deliver_quota_full_tempfail_and_usage() {
    let dir = data_dir(&[("roomy", "pass-word")]);
    set_quota(dir.path(), USER, "*:messages=0");
    hand_to_nobody(dir.path());
    let config = dir.path().join("columba.toml");
    std::fs::write(&config, "[delivery]\nquota_full_tempfail = true\n").unwrap();
    let deliver = |args: &[&str]| {
        let mut child = columba()
            .arg("--data-dir")
            .arg(dir.path())
            .arg("-c")
            .arg(&config)
            .arg("deliver")
            .args(args)
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"Subject: x\n\nx\n")
            .unwrap();
        child.wait_with_output().unwrap()
    };
    assert_eq!(deliver(&["-d", USER]).status.code(), Some(75));
    // The lmtp process's check at RCPT (separated model): `internal deliver --check-quota`,
    // its configuration on descriptor 3, answers 77 for a full mailbox and 0 otherwise.
    let internal = dir.path().join("internal.toml");
    std::fs::write(
        &internal,
        format!("data_dir = \"{}\"\n", dir.path().display()),
    )
    .unwrap();
    let check = |user: &str| {
        Command::new("sh")
            .arg("-c")
            .arg("exec \"$0\" internal deliver --user \"$1\" --check-quota 3<\"$2\" </dev/null")
            .arg(env!("CARGO_BIN_EXE_columba"))
            .arg(user)
            .arg(&internal)
            .output()
            .unwrap()
    };
    let full = check(USER);
    assert_eq!(full.status.code(), Some(77), "{full:?}");
    let roomy = check("roomy");
    assert_eq!(roomy.status.code(), Some(0), "{roomy:?}");
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        // Root must name the user: dovecot-lda's EX_USAGE.
        assert_eq!(deliver(&[]).status.code(), Some(64));
    }
}

#[test]
fn lmtp_connections_are_limited() {
    let dir = data_dir(&[]);
    let config = dir.path().join("columba.toml");
    std::fs::write(&config, "[lmtp]\nmax_connections = 1\n").unwrap();
    let config = config.to_str().unwrap().to_owned();
    let (_server, lmtp) = start_with(dir, &["--config", &config]);
    let mut first = LmtpClient::connect(lmtp);
    let mut second = std::io::BufReader::new(std::net::TcpStream::connect(lmtp).unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut second, &mut line).unwrap();
    assert!(line.starts_with("421 4.3.2 "), "{line:?}");
    assert_eq!(first.command("NOOP"), ["250 2.0.0 OK"]);
    drop(first);
    // The slot comes back when the first connection ends.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut again = std::io::BufReader::new(std::net::TcpStream::connect(lmtp).unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut again, &mut line).unwrap();
        if line.starts_with("220 ") {
            break;
        }
        assert!(Instant::now() < deadline, "still refused: {line:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn lmtp_over_a_unix_socket() {
    use std::io::Read as _;
    let dir = data_dir(&[]);
    let socket = dir.path().join("lmtp.sock");
    // A stale socket from an earlier run is replaced.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let config = dir.path().join("columba.toml");
    std::fs::write(
        &config,
        format!("[lmtp]\nlisten_unix = [\"{}\"]\n", socket.display()),
    )
    .unwrap();
    let config = config.to_str().unwrap().to_owned();
    let (server, _tcp) = start_with(dir, &["--config", &config]);
    let mut stream = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
        .write_all(
            format!(
                "LHLO local\r\nMAIL FROM:<s@example.org>\r\nRCPT TO:<{USER}>\r\nDATA\r\n\
                 Subject: unix\r\n\r\nover a socket\r\n.\r\nQUIT\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
    let mut replies = String::new();
    std::io::BufReader::new(&mut stream)
        .read_to_string(&mut replies)
        .unwrap();
    let last: Vec<&str> = replies.lines().rev().take(2).collect();
    assert!(
        last[1].starts_with(&format!("250 2.0.0 <{USER}> ")),
        "{replies}"
    );
    assert!(last[0].starts_with("221 "), "{replies}");
    // No peer address over a Unix socket: the Received line names none.
    let (mut imap, _) = imap_inbox(&server, USER, PASSWORD);
    let fetched = imap.command("f", "FETCH 1 BODY.PEEK[HEADER.FIELDS (RECEIVED)]");
    assert_eq!(fetched[1], "Received: from local", "{fetched:?}");
}
