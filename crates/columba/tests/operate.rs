//! What an operator does with the binary: the first start on the embedded defaults, the user
//! commands, `columba config`, and the log lines of logins and disconnects.

mod common;

use std::io::Write;
use std::process::Stdio;

use common::{RawClient, Server, columba};

fn run(args: &[&str], data_dir: &std::path::Path, stdin: &str) -> (bool, String, String) {
    let mut child = columba()
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn columba");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn login_ok(addr: std::net::SocketAddr, user: &str, password: &str) -> bool {
    let mut c = RawClient::connect(addr);
    let lines = c.command("a1", &format!("LOGIN {user} \"{password}\""));
    let ok = lines.last().is_some_and(|l| l.starts_with("a1 OK"));
    c.command("a2", "LOGOUT");
    ok
}

#[test]
fn first_start_creates_certificate_and_demo_user_and_prints_password_once() {
    let data_dir = tempfile::tempdir().unwrap();
    let path = data_dir.path().to_owned();
    let mut server = Server::start_in(data_dir, &[]);
    let line = server.wait_for_log("stdout: Created demo user 'demo' with password '");
    let password = line
        .split('\'')
        .nth(3)
        .expect("password between quotes")
        .to_owned();
    assert!(password.len() >= 12, "password {password:?} too short");
    assert!(path.join("tls/cert.pem").is_file());
    assert!(path.join("tls/key.pem").is_file());
    let users = std::fs::read_to_string(path.join("users")).unwrap();
    assert!(users.starts_with("demo:{"), "passwd-file: {users}");
    assert!(!users.contains(&password), "the password is stored hashed");
    assert!(login_ok(server.imap, "demo", &password));
    assert!(!login_ok(server.imap, "demo", "wrong"));
    // The mail lives under the data directory too.
    assert!(path.join("mail/demo/Maildir/cur").is_dir());
    let data_dir = server.into_data_dir();

    // A second start keeps the user and prints no password.
    let mut again = Server::start_in(data_dir, &[]);
    assert!(login_ok(again.imap, "demo", &password));
    again.wait_for_log("Disconnected");
    assert!(
        !again.log().iter().any(|l| l.contains("Created demo user")),
        "{:?}",
        again.log()
    );
}

#[test]
fn user_add_list_passwd_del() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = run(&["user", "add", "carol"], dir.path(), "first-pass\n");
    assert!(ok, "{err}");
    let (ok, _, err) = run(&["user", "add", "dave"], dir.path(), "dave-pass\n");
    assert!(ok, "{err}");
    let (ok, _, _) = run(&["user", "add", "carol"], dir.path(), "again\n");
    assert!(!ok, "adding an existing user fails");
    let (ok, _, _) = run(&["user", "add", "eve"], dir.path(), "\n");
    assert!(!ok, "an empty password is refused");
    let (ok, _, _) = run(&["user", "add", "bad:name"], dir.path(), "x\n");
    assert!(!ok, "a name that would break the passwd-file is refused");
    let (ok, out, _) = run(&["user", "list"], dir.path(), "");
    assert!(ok);
    let mut names: Vec<&str> = out.lines().collect();
    names.sort();
    assert_eq!(names, ["carol", "dave"]);
    let (ok, _, err) = run(&["user", "passwd", "carol"], dir.path(), "second-pass\n");
    assert!(ok, "{err}");
    let (ok, _, err) = run(&["user", "del", "dave"], dir.path(), "");
    assert!(ok, "{err}");
    let (ok, out, _) = run(&["user", "list"], dir.path(), "");
    assert!(ok);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["carol"]);

    // The server sees the changes.
    let server = Server::start_in(dir, &[]);
    assert!(login_ok(server.imap, "carol", "second-pass"));
    assert!(!login_ok(server.imap, "carol", "first-pass"));
    assert!(!login_ok(server.imap, "dave", "dave-pass"));
}

#[test]
fn config_prints_the_effective_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = run(&["config"], dir.path(), "");
    assert!(ok, "{err}");
    let value: toml::Value = toml::from_str(&out).expect("columba config prints TOML");
    assert_eq!(
        value["imap"]["listen"].as_array().unwrap()[0].as_str(),
        Some("127.0.0.1:1143")
    );
    assert_eq!(
        value["imap"]["listen_tls"].as_array().unwrap()[0].as_str(),
        Some("127.0.0.1:1993")
    );
    assert_eq!(
        value["data_dir"].as_str(),
        Some(dir.path().to_str().unwrap())
    );

    // A file changes what it names and nothing else; its output reads back as the same config.
    let file = dir.path().join("columba.toml");
    std::fs::write(&file, "[imap]\nlisten = [\"127.0.0.1:10143\"]\n").unwrap();
    let (ok, out, err) = run(
        &["--config", file.to_str().unwrap(), "config"],
        dir.path(),
        "",
    );
    assert!(ok, "{err}");
    let value: toml::Value = toml::from_str(&out).unwrap();
    assert_eq!(
        value["imap"]["listen"].as_array().unwrap()[0].as_str(),
        Some("127.0.0.1:10143")
    );
    assert_eq!(
        value["imap"]["listen_tls"].as_array().unwrap()[0].as_str(),
        Some("127.0.0.1:1993")
    );
    std::fs::write(&file, &out).unwrap();
    let (ok, again, err) = run(
        &["--config", file.to_str().unwrap(), "config"],
        dir.path(),
        "",
    );
    assert!(ok, "{err}");
    assert_eq!(again, out);

    // Unknown settings are an error, not silently ignored.
    std::fs::write(&file, "[imap]\nlisten_typo = []\n").unwrap();
    let (ok, _, err) = run(
        &["--config", file.to_str().unwrap(), "config"],
        dir.path(),
        "",
    );
    assert!(!ok);
    assert!(err.contains("listen_typo"), "{err}");
}

#[test]
fn logins_failures_and_disconnects_are_logged_like_dovecot() {
    let mut server = Server::start();
    let mut c = RawClient::connect(server.imap);
    let lines = c.command("a1", "LOGIN tester wrong-password");
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with("a1 NO [AUTHENTICATIONFAILED]")
    );
    let failed = server.wait_for_log("imap-login: Authentication failed: user=<tester>");
    assert!(failed.contains("method=PLAIN"), "{failed}");
    assert!(failed.contains("rip=127.0.0.1, lip=127.0.0.1"), "{failed}");
    assert!(failed.contains("delay="), "{failed}");
    let lines = c.command("a2", &format!("LOGIN tester {}", common::PASSWORD));
    assert!(lines.last().unwrap().starts_with("a2 OK"));
    let login = server.wait_for_log("imap-login: Login: user=<tester>");
    assert!(
        login.contains("method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, session=<"),
        "{login}"
    );
    c.command("a3", "LOGOUT");
    let bye = server.wait_for_log("imap(tester)<");
    assert!(bye.contains("Disconnected: Logged out in="), "{bye}");
    assert!(bye.contains(" out="), "{bye}");

    // A client that never logs in is logged too, with its failed attempts.
    let mut c = RawClient::connect(server.imap);
    c.command("b1", "LOGIN nobody nothing");
    drop(c);
    let gone = server.wait_for_log("imap-login: Disconnected: ");
    assert!(gone.contains("(1 attempts in "), "{gone}");
    assert!(gone.contains("rip=127.0.0.1"), "{gone}");
}
