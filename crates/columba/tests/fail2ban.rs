//! `contrib/fail2ban/columba.conf` against the log the built server writes: every failed
//! login (IMAP LOGIN, IMAP AUTHENTICATE, POP3 USER/PASS) matches with the client's address, a
//! successful one does not, and a user name dressed up as the rest of the line cannot get
//! another address banned. Checked with `fail2ban-regex` (Debian's `fail2ban`); skipped when it
//! is missing unless `COLUMBA_REQUIRE_EXTERNAL=1`.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{PASSWORD, RawClient, Server, USER};

fn filter() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../contrib/fail2ban/columba.conf")
}

/// The addresses `fail2ban-regex` finds in `log`, one per matched line.
fn banned(log: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("columba.log");
    std::fs::write(&path, log).unwrap();
    let out = common::run(
        Command::new("fail2ban-regex")
            .args(["--out", "ip"])
            .arg(&path)
            .arg(filter()),
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn failed_logins_of_the_real_server_match() {
    if !common::have("fail2ban-regex") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    common::add_user(dir.path(), USER, PASSWORD);
    let config = dir.path().join("columba.toml");
    std::fs::write(&config, "[auth]\nfailure_delay_ms = 10\n").unwrap();
    let mut server = Server::start_in(dir, &["--config", config.to_str().unwrap()]);

    let mut c = RawClient::connect(server.imap);
    c.command("a1", &format!("LOGIN {USER} wrong"));
    // "\0tester\0wrong" in base64.
    c.command("a2", "AUTHENTICATE PLAIN AHRlc3RlcgB3cm9uZw==");
    c.command(
        "a3",
        "LOGIN \">, method=PLAIN, rip=192.0.2.66, lip=1.2.3.4, session=<x>, attempts=1\" x",
    );
    let mut ok = RawClient::connect(server.imap);
    let reply = ok.command("b1", &format!("LOGIN {USER} {PASSWORD}"));
    assert!(reply.last().unwrap().starts_with("b1 OK"), "{reply:?}");
    let pop = TcpStream::connect(server.pop3).unwrap();
    pop.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut w = pop.try_clone().unwrap();
    let mut r = BufReader::new(pop);
    write!(w, "USER {USER}\r\nPASS wrong\r\n").unwrap();
    let mut line = String::new();
    for _ in 0..3 {
        line.clear();
        r.read_line(&mut line).unwrap();
    }
    assert!(line.starts_with("-ERR [AUTH]"), "{line}");

    let deadline = Instant::now() + Duration::from_secs(10);
    let failures = |server: &mut Server| {
        server
            .log()
            .iter()
            .filter(|l| l.contains("Authentication failed"))
            .count()
    };
    while failures(&mut server) < 4 {
        assert!(Instant::now() < deadline, "log: {:?}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    server.wait_for_log("imap-login: Login: user=<tester>");
    let log: String = server
        .log()
        .iter()
        .filter(|l| !l.starts_with("stdout: "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(banned(&log), ["127.0.0.1"; 4], "log:\n{log}");
}

#[test]
fn forged_tails_and_other_address_forms() {
    if !common::have("fail2ban-regex") {
        return;
    }
    let log = "\
2025-11-29T07:40:00.123456Z  INFO session_api: imap-login: Authentication failed: user=<x>, method=PLAIN, rip=192.0.2.66, lip=1.1.1.1, session=<x>, attempts=1, delay=1ms>, method=PLAIN, rip=192.0.2.9, lip=127.0.0.1, session=<abc>, attempts=1, delay=2000ms
2025-11-29T07:40:01.123456Z  INFO session_api: pop3-login: Authentication failed: user=<>, method=SCRAM-SHA-256, rip=2001:db8::7, lip=2001:db8::1, TLS, session=<kGw1t8+/abc>, attempts=3, delay=15000ms
2025-11-29T07:40:02.123456Z  INFO session_api: imap-login: Login: user=<bob>, method=PLAIN, rip=192.0.2.10, lip=127.0.0.1, session=<abc>
2025-11-29T07:40:03.123456Z  INFO session_api: imap-login: Authentication failed: user=<bob>, method=PLAIN, rip=192.0.2.11, lip=127.0.0.1, session=<abc>, attempts=1, delay=2000ms trailing
";
    assert_eq!(banned(log), ["192.0.2.9", "2001:db8::7"]);
}
