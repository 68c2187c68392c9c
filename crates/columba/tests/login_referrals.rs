//! LOGIN-REFERRALS (RFC 2221) and Dovecot's `nologin`: passwd-file extra fields that refuse a
//! login whose password is right, or send the client to another server, answered on the wire
//! as RFC 2221 3 shows — checked with exact lines and with Python's imaplib and poplib.

mod common;

use std::process::Command;

use common::{PASSWORD, Pop3Client, RawClient, Server, add_user, have, run};

/// A server whose users carry the fields after their passwd-file line's seventh colon.
fn server_with(users: &[(&str, &str)]) -> Server {
    let data_dir = tempfile::tempdir().unwrap();
    for (name, _) in users {
        add_user(data_dir.path(), name, PASSWORD);
    }
    let path = data_dir.path().join("users");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let name = line.split(':').next().unwrap();
        let fields = users.iter().find(|(n, _)| *n == name).unwrap().1;
        // Pad to seven colons (user:password:uid:gid:gecos:home:shell), then the extras.
        let colons = line.matches(':').count();
        out.push_str(line);
        out.push_str(&":".repeat(7usize.saturating_sub(colons)));
        out.push_str(fields);
        out.push('\n');
    }
    std::fs::write(&path, out).unwrap();
    Server::start_in(data_dir, &[])
}

fn login(server: &Server, user: &str) -> Vec<String> {
    let mut c = RawClient::connect(server.imap);
    c.command("a", &format!("LOGIN {user} {PASSWORD}"))
}

#[test]
fn referrals_and_nologin_on_the_wire() {
    let server = server_with(&[
        (
            "moved",
            "host=imap2.example.org port=1143 nologin reason=Mailbox_moved",
        ),
        ("suggested", "host=imap2.example.org destuser=s@example.org"),
        ("closed", "nologin reason=Down_for_maintenance"),
        ("plain", ""),
    ]);

    // RFC 2221 4.1: refused, go to the other server.
    assert_eq!(
        login(&server, "moved"),
        ["a NO [REFERRAL imap://moved;AUTH=*@imap2.example.org:1143/] Mailbox_moved"]
    );
    // RFC 2221 4.2: logged in here, but told to move; the session is usable.
    let mut c = RawClient::connect(server.imap);
    assert_eq!(
        c.command("a", &format!("LOGIN suggested {PASSWORD}")),
        [
            "a OK [REFERRAL imap://s%40example.org;AUTH=*@imap2.example.org/] Logged in, but you should use this server instead."
        ]
    );
    let select = c.command("b", "SELECT INBOX");
    assert!(select.last().unwrap().starts_with("b OK"), "{select:?}");
    // nologin without a host: refused, with the operator's reason.
    assert_eq!(
        login(&server, "closed"),
        ["a NO [AUTHENTICATIONFAILED] Down_for_maintenance"]
    );
    // The right password is still needed before any of this is said.
    let mut c = RawClient::connect(server.imap);
    assert_eq!(
        c.command("a", "LOGIN moved wrong"),
        ["a NO [AUTHENTICATIONFAILED] Authentication failed."]
    );
    // Nothing changes for a user without the fields.
    assert!(login(&server, "plain")[0].starts_with("a OK [CAPABILITY "));
    // AUTHENTICATE goes the same way as LOGIN.
    let mut c = RawClient::connect(server.imap);
    let plain = base64_plain("closed", PASSWORD);
    assert_eq!(
        c.command("a", &format!("AUTHENTICATE PLAIN {plain}")),
        ["a NO [AUTHENTICATIONFAILED] Down_for_maintenance"]
    );

    // POP3 has no referrals: both refusals are -ERR [AUTH], the suggestion is ignored.
    let mut p = Pop3Client::connect(server.pop3);
    p.command("USER moved");
    assert_eq!(
        p.command(&format!("PASS {PASSWORD}")),
        "-ERR [AUTH] Mailbox_moved"
    );
    p.command("USER closed");
    assert_eq!(
        p.command(&format!("PASS {PASSWORD}")),
        "-ERR [AUTH] Down_for_maintenance"
    );
    p.command("USER suggested");
    assert!(p.command(&format!("PASS {PASSWORD}")).starts_with("+OK"));

    // Independent clients see the refusals as errors carrying the server's text.
    if have("python3") {
        let script = format!(
            r#"
import imaplib, poplib
for user, want in (("moved", "[REFERRAL imap://moved;AUTH=*@imap2.example.org:1143/]"),
                   ("closed", "[AUTHENTICATIONFAILED] Down_for_maintenance")):
    c = imaplib.IMAP4("127.0.0.1", {imap})
    try:
        c.login(user, "{PASSWORD}")
        raise SystemExit("login of " + user + " succeeded")
    except imaplib.IMAP4.error as e:
        assert want in str(e), (user, str(e))
    c.logout()
c = imaplib.IMAP4("127.0.0.1", {imap})
typ, data = c.login("suggested", "{PASSWORD}")
assert typ == "OK" and b"[REFERRAL imap://" in data[0], data
assert c.select("INBOX")[0] == "OK"
c.logout()
p = poplib.POP3("127.0.0.1", {pop3})
p.user("closed")
try:
    p.pass_("{PASSWORD}")
    raise SystemExit("POP3 login of closed succeeded")
except poplib.error_proto as e:
    assert b"Down_for_maintenance" in e.args[0], e
print("referrals OK")
"#,
            imap = server.imap.port(),
            pop3 = server.pop3.port(),
        );
        let out = run(Command::new("python3").args(["-c", &script]));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("referrals OK"),
            "{out:?}"
        );
    }
}

fn base64_plain(user: &str, password: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"))
}
