//! `[auth] mechanisms` in the built server: CRAM-MD5 and SCRAM-SHA-1/-256 offered and working
//! over IMAP and POP3 against a passwd-file holding plaintext passwords and SCRAM keys, CRAM-MD5
//! from a real client (Python's imaplib), and `columba config` showing the auth settings.

mod common;

use std::io::Write;
use std::process::Command;

use auth::sasl::Mechanism;
use common::{Pop3Client, RawClient, Server, imap_scram};
use test_support::sasl::{ScramClient, b64, unb64, write_passwd_file};

const CONFIG: &str = "[auth]\n\
    mechanisms = [\"PLAIN\", \"LOGIN\", \"CRAM-MD5\", \"SCRAM-SHA-1\", \"SCRAM-SHA-256\"]\n\
    failure_delay_ms = 20\n";

fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    write_passwd_file(&dir.path().join("users"));
    let config = dir.path().join("columba.toml");
    std::fs::write(&config, CONFIG).unwrap();
    Server::start_in(dir, &["--config", config.to_str().unwrap()])
}

#[test]
fn imap_offers_and_runs_every_mechanism() {
    let server = server();
    let mut c = RawClient::connect(server.imap);
    let caps = c.command("a0", "CAPABILITY");
    assert!(
        caps[0]
            .ends_with("AUTH=PLAIN AUTH=LOGIN AUTH=CRAM-MD5 AUTH=SCRAM-SHA-1 AUTH=SCRAM-SHA-256"),
        "{caps:?}"
    );
    for (mechanism, user, pw, ok) in [
        (Mechanism::ScramSha256, "bob", "builder", true),
        (Mechanism::ScramSha256, "alice", "wonderland", true),
        (Mechanism::ScramSha1, "alice", "wonderland", true),
        (Mechanism::ScramSha256, "bob", "wrong", false),
        (Mechanism::ScramSha256, "carol", "christmas", false),
    ] {
        let reply = imap_scram(server.imap, mechanism, user, pw);
        assert_eq!(
            reply.starts_with("a1 OK"),
            ok,
            "{mechanism} {user}: {reply}"
        );
    }
}

#[test]
fn cram_md5_from_python_imaplib() {
    if !common::have("python3") {
        return;
    }
    let server = server();
    let script = "import imaplib, sys\n\
        c = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))\n\
        typ, data = c.login_cram_md5(sys.argv[2], sys.argv[3])\n\
        print(typ)\n\
        typ, data = c.select('INBOX')\n\
        print(typ, data)\n\
        c.logout()\n";
    let port = server.imap.port().to_string();
    let out =
        common::run(Command::new("python3").args(["-c", script, &port, "alice", "wonderland"]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("OK\nOK [b'0']"), "{text}");
    let out = Command::new("python3")
        .args(["-c", script, &port, "alice", "wrong"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("AUTHENTICATIONFAILED"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn pop3_offers_and_runs_scram() {
    let server = server();
    let mut c = Pop3Client::connect(server.pop3);
    let caps = c.capabilities();
    assert!(
        caps.contains(&"SASL PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256".to_owned()),
        "{caps:?}"
    );
    let mut client = ScramClient::new(Mechanism::ScramSha256, "bob", "builder");
    let first = c.command(&format!("AUTH SCRAM-SHA-256 {}", b64(client.first())));
    let first = String::from_utf8(unb64(&first)).unwrap();
    let last = c.command(&b64(client.answer(&first)));
    let last = String::from_utf8(unb64(&last)).unwrap();
    assert!(client.server_final_ok(&last), "{last}");
    assert_eq!(c.command(""), "+OK Logged in.");
}

#[test]
fn config_shows_the_auth_settings() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("columba.toml");
    std::fs::write(
        &config,
        "[auth]\npassdb = \"shadow\"\nuserdb = \"passwd\"\nfirst_valid_uid = 500\n",
    )
    .unwrap();
    let out = common::run(common::columba().arg("--data-dir").arg(dir.path()).args([
        "--config",
        config.to_str().unwrap(),
        "config",
    ]));
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "passdb = \"shadow\"",
        "userdb = \"passwd\"",
        "mechanisms = [",
        "first_valid_uid = 500",
        "[auth.shadow]\nfile = \"/etc/shadow\"",
        "[auth.pam]\nservice = \"columba\"",
        "location = \"%h/Maildir\"",
    ] {
        assert!(text.contains(needle), "{needle} missing in:\n{text}");
    }
}

#[test]
fn user_add_writes_scram_keys() {
    let dir = tempfile::tempdir().unwrap();
    write_passwd_file(&dir.path().join("users"));
    for (name, scheme) in [("dora", "SCRAM-SHA-256"), ("eve", "scram-sha-1")] {
        let mut child = common::columba()
            .arg("--data-dir")
            .arg(dir.path())
            .args(["user", "add", name, "--scheme", scheme])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"explorer\n")
            .unwrap();
        assert!(child.wait().unwrap().success());
    }
    let users = std::fs::read_to_string(dir.path().join("users")).unwrap();
    assert!(users.contains("dora:{SCRAM-SHA-256}4096,"), "{users}");
    assert!(users.contains("eve:{SCRAM-SHA-1}4096,"), "{users}");
    let out = common::columba()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["user", "add", "x", "--scheme", "ROT13"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("known schemes are"));
    let config = dir.path().join("columba.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let server = Server::start_in(dir, &["--config", config.to_str().unwrap()]);
    let reply = imap_scram(server.imap, Mechanism::ScramSha256, "dora", "explorer");
    assert!(reply.starts_with("a1 OK"), "{reply}");
    let reply = imap_scram(server.imap, Mechanism::ScramSha1, "eve", "explorer");
    assert!(reply.starts_with("a1 OK"), "{reply}");
}
