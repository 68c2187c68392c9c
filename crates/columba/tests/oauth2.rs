//! OAUTHBEARER (RFC 7628) and XOAUTH2 in the built server, with tokens checked by an RFC 7662
//! introspection endpoint: a stub HTTP server started by the test on 127.0.0.1 that knows a
//! few tokens. Valid tokens log in over IMAP AUTHENTICATE and POP3 AUTH (with and without an
//! initial response, with and without an authzid); an inactive token, a token of another user,
//! malformed messages and base64 get the RFC 7628 3.2.2 error status and then a failure; an
//! endpoint that is down is a temporary failure; a server without the mechanisms refuses them.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Pop3Client, RawClient, Server};
use test_support::sasl::{b64, unb64, write_passwd_file};

/// The client secret the server is configured with; the stub checks it.
const CLIENT_SECRET: &str = "stub-secret";

/// An RFC 7662 introspection endpoint that knows four tokens: alice's and bob's (bob's answer
/// is sent chunked), a stale one, and one that makes it fail with HTTP 500.
struct Introspector {
    addr: SocketAddr,
    /// Served over TLS with this server configuration (`https://`).
    tls: bool,
    /// Every request as received: head and body.
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Introspector {
    fn start() -> Introspector {
        Introspector::serve(None)
    }

    /// The endpoint over TLS, with a self-signed certificate for 127.0.0.1 whose PEM is
    /// written to `ca_file`, for the server to trust.
    fn start_tls(ca_file: &std::path::Path) -> Introspector {
        let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        std::fs::write(ca_file, generated.cert.pem()).unwrap();
        let key =
            rustls::pki_types::PrivateKeyDer::try_from(generated.key_pair.serialize_der()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![generated.cert.der().clone()], key)
            .unwrap();
        Introspector::serve(Some(Arc::new(config)))
    }

    fn serve(tls: Option<Arc<rustls::ServerConfig>>) -> Introspector {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let is_tls = tls.is_some();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, halt) = (Arc::clone(&requests), Arc::clone(&stop));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if halt.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                match &tls {
                    None => answer(stream, &log),
                    Some(config) => {
                        let Ok(connection) = rustls::ServerConnection::new(Arc::clone(config))
                        else {
                            continue;
                        };
                        answer(rustls::StreamOwned::new(connection, stream), &log);
                    }
                }
            }
        });
        Introspector {
            addr,
            tls: is_tls,
            requests,
            stop,
        }
    }

    fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}/oauth2/introspect", self.addr)
    }
}

impl Drop for Introspector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn answer(stream: impl Read + Write, log: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let body = String::from_utf8(body).unwrap();
    log.lock().unwrap().push(format!("{head}{body}"));
    let form: HashMap<&str, &str> = body.split('&').filter_map(|p| p.split_once('=')).collect();
    let later = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let (status, json, chunked) = match form.get("token").copied() {
        Some("alice-token") => (
            "200 OK",
            format!(r#"{{"active":true,"username":"alice","scope":"mail","exp":{later}}}"#),
            false,
        ),
        Some("bob-token") => (
            "200 OK",
            format!(r#"{{"active":true,"username":"Bob","aud":["x"],"exp":{later}}}"#),
            true,
        ),
        Some("broken-token") => ("500 Internal Server Error", "oops".to_owned(), false),
        _ => ("200 OK", r#"{"active":false}"#.to_owned(), false),
    };
    let response = if chunked {
        let (a, b) = json.split_at(json.len() / 2);
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
             {:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
            a.len(),
            b.len()
        )
    } else {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{json}",
            json.len()
        )
    };
    let w = reader.get_mut();
    let _ = w.write_all(response.as_bytes());
    let _ = w.flush();
}

/// A server whose passwd-file holds alice, bob and carol, offering `mechanisms`, with tokens
/// checked at `url`.
fn server(mechanisms: &str, url: &str) -> Server {
    server_with(mechanisms, url, "")
}

/// [`server`] with more `[auth.oauth2]` lines.
fn server_with(mechanisms: &str, url: &str, oauth2_extra: &str) -> Server {
    server_configured("", mechanisms, url, oauth2_extra)
}

/// [`server_with`], with `head` (other sections) at the start of the configuration.
fn server_configured(head: &str, mechanisms: &str, url: &str, oauth2_extra: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    write_passwd_file(&dir.path().join("users"));
    let secret = dir.path().join("client-secret");
    std::fs::write(&secret, format!("{CLIENT_SECRET}\n")).unwrap();
    let config = dir.path().join("columba.toml");
    std::fs::write(
        &config,
        format!(
            "{head}[auth]\nmechanisms = [{mechanisms}]\nfailure_delay_ms = 20\n\
             [auth.oauth2]\nintrospection_url = \"{url}\"\nclient_id = \"columba\"\n\
             client_secret_file = \"{}\"\ntimeout_secs = 3\n{oauth2_extra}",
            secret.display()
        ),
    )
    .unwrap();
    Server::start_in(dir, &["--config", config.to_str().unwrap()])
}

const BOTH: &str = "\"PLAIN\", \"OAUTHBEARER\", \"XOAUTH2\"";

fn oauthbearer(authzid: Option<&str>, token: &str) -> String {
    let a = authzid.map(|a| format!("a={a}")).unwrap_or_default();
    b64(format!(
        "n,{a},\x01host=127.0.0.1\x01auth=Bearer {token}\x01\x01"
    ))
}

fn xoauth2(user: &str, token: &str) -> String {
    b64(format!("user={user}\x01auth=Bearer {token}\x01\x01"))
}

/// Runs AUTHENTICATE with an initial response; a JSON error challenge is answered as the
/// mechanism says (`ack`). Returns the challenge (decoded), if any, and the tagged reply.
fn imap_auth(addr: SocketAddr, mechanism: &str, initial: &str, ack: &str) -> (String, String) {
    let mut c = RawClient::connect(addr);
    c.send(format!("a AUTHENTICATE {mechanism} {initial}\r\n").as_bytes());
    let line = c.line();
    if !line.starts_with("+ ") {
        return (String::new(), line);
    }
    let challenge = String::from_utf8(unb64(&line)).unwrap();
    c.send(format!("{ack}\r\n").as_bytes());
    (challenge, c.line())
}

fn json(text: &str) -> HashMap<String, String> {
    // The status object is flat: "key":"value" pairs.
    text.trim_matches(['{', '}'])
        .split(',')
        .filter_map(|kv| kv.split_once(':'))
        .map(|(k, v)| {
            (
                k.trim_matches('"').to_owned(),
                v.trim_matches('"').to_owned(),
            )
        })
        .collect()
}

#[test]
fn imap_oauthbearer_and_xoauth2() {
    let endpoint = Introspector::start();
    let mut server = server(BOTH, &endpoint.url());
    let mut c = RawClient::connect(server.imap);
    let caps = c.command("c", "CAPABILITY");
    assert!(
        caps[0].contains("AUTH=PLAIN AUTH=OAUTHBEARER AUTH=XOAUTH2"),
        "{caps:?}"
    );

    // A valid token with the authzid of its owner.
    let (_, reply) = imap_auth(
        server.imap,
        "OAUTHBEARER",
        &oauthbearer(Some("alice"), "alice-token"),
        "",
    );
    assert!(reply.starts_with("a OK"), "{reply}");
    // The endpoint was asked as RFC 7662 says: a form POST, authenticated as this server.
    let request = endpoint.requests.lock().unwrap().last().unwrap().clone();
    assert!(
        request.starts_with("POST /oauth2/introspect HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(request.contains("Content-Type: application/x-www-form-urlencoded\r\n"));
    let basic = b64(format!("columba:{CLIENT_SECRET}"));
    assert!(
        request.contains(&format!("Authorization: Basic {basic}\r\n")),
        "{request}"
    );
    assert!(
        request.ends_with("token=alice-token&token_type_hint=access_token"),
        "{request}"
    );

    // Without an authzid the token names the user; bob's owner is spelled "Bob" by the
    // endpoint, and the answer comes chunked.
    let (_, reply) = imap_auth(
        server.imap,
        "OAUTHBEARER",
        &oauthbearer(None, "bob-token"),
        "",
    );
    assert!(reply.starts_with("a OK"), "{reply}");
    server.wait_for_log("Login: user=<bob>, method=OAUTHBEARER");
    // Without an initial response: an empty challenge first.
    let mut c = RawClient::connect(server.imap);
    c.send(b"a AUTHENTICATE XOAUTH2\r\n");
    assert_eq!(c.line(), "+ ");
    c.send(format!("{}\r\n", xoauth2("alice", "alice-token")).as_bytes());
    let reply = c.line();
    assert!(reply.starts_with("a OK"), "{reply}");
    server.wait_for_log("Login: user=<alice>, method=XOAUTH2");

    // Refused tokens: the error status, then NO after the client's dummy response.
    for (mechanism, initial, ack, status) in [
        (
            "OAUTHBEARER",
            oauthbearer(Some("alice"), "stale-token"),
            b64("\x01"),
            "invalid_token",
        ),
        (
            "OAUTHBEARER",
            oauthbearer(Some("alice"), "bob-token"),
            b64("\x01"),
            "invalid_token",
        ),
        (
            "XOAUTH2",
            xoauth2("carol", "alice-token"),
            String::new(),
            "401",
        ),
        (
            "XOAUTH2",
            xoauth2("alice", "stale-token"),
            String::new(),
            "401",
        ),
    ] {
        let (challenge, reply) = imap_auth(server.imap, mechanism, &initial, &ack);
        let fields = json(&challenge);
        assert_eq!(
            fields.get("status").map(String::as_str),
            Some(status),
            "{challenge}"
        );
        assert_eq!(fields.get("schemes").map(String::as_str), Some("bearer"));
        assert!(
            reply.starts_with("a NO [AUTHENTICATIONFAILED]"),
            "{mechanism}: {reply}"
        );
    }
    server.wait_for_log("Authentication failed: user=<carol>, method=XOAUTH2");

    // Malformed messages fail without asking the endpoint; bad base64 and over-long lines
    // are protocol errors.
    let asked = endpoint.requests.lock().unwrap().len();
    for initial in [
        b64("n,a=alice,\x01auth=Basic abc\x01\x01"),
        b64("p=tls-unique,,\x01auth=Bearer alice-token\x01\x01"),
        b64("n,,auth=Bearer alice-token"),
        "!!!not-base64".to_owned(),
        b64(format!("n,,\x01auth=Bearer {}\x01\x01", "a".repeat(70_000))),
    ] {
        let (_, reply) = imap_auth(server.imap, "OAUTHBEARER", &initial, "");
        assert!(
            reply.starts_with("a NO") || reply.starts_with("a BAD"),
            "{reply}"
        );
        assert!(!reply.starts_with("a OK"));
    }
    assert_eq!(endpoint.requests.lock().unwrap().len(), asked);

    // The endpoint failing is a temporary failure, not a wrong token.
    let (_, reply) = imap_auth(
        server.imap,
        "OAUTHBEARER",
        &oauthbearer(None, "broken-token"),
        "",
    );
    assert!(reply.starts_with("a NO [UNAVAILABLE]"), "{reply}");
}

#[test]
fn pop3_auth_oauthbearer_and_xoauth2() {
    let endpoint = Introspector::start();
    let server = server(BOTH, &endpoint.url());
    let mut c = Pop3Client::connect(server.pop3);
    let caps = c.capabilities();
    assert!(
        caps.contains(&"SASL PLAIN OAUTHBEARER XOAUTH2".to_owned()),
        "{caps:?}"
    );
    // Another user's token: the error status, then -ERR.
    let challenge = c.command(&format!("AUTH XOAUTH2 {}", xoauth2("carol", "bob-token")));
    let status = String::from_utf8(unb64(&challenge)).unwrap();
    assert_eq!(json(&status).get("status").map(String::as_str), Some("401"));
    assert!(c.command("").starts_with("-ERR [AUTH]"));
    // Alice's token.
    let reply = c.command(&format!(
        "AUTH OAUTHBEARER {}",
        oauthbearer(Some("alice"), "alice-token")
    ));
    assert_eq!(reply, "+OK Logged in.");
    assert_eq!(c.command("STAT"), "+OK 0 0");
}

#[test]
fn endpoint_down_and_mechanisms_not_offered() {
    // Nothing listens on a port that was just released.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let down = server(BOTH, &format!("http://{closed}/introspect"));
    let (_, reply) = imap_auth(
        down.imap,
        "OAUTHBEARER",
        &oauthbearer(None, "alice-token"),
        "",
    );
    assert!(reply.starts_with("a NO [UNAVAILABLE]"), "{reply}");
    drop(down);

    let endpoint = Introspector::start();
    let plain_only = server("\"PLAIN\"", &endpoint.url());
    let mut c = RawClient::connect(plain_only.imap);
    let caps = c.command("c", "CAPABILITY");
    assert!(
        !caps[0].contains("OAUTHBEARER") && !caps[0].contains("XOAUTH2"),
        "{caps:?}"
    );
    for mechanism in ["OAUTHBEARER", "XOAUTH2"] {
        let (_, reply) = imap_auth(
            plain_only.imap,
            mechanism,
            &oauthbearer(None, "alice-token"),
            "",
        );
        assert!(reply.starts_with("a NO"), "{reply}");
    }
    assert!(endpoint.requests.lock().unwrap().is_empty());

    // The mechanisms without an endpoint: the server refuses to start.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("columba.toml");
    std::fs::write(&config, format!("[auth]\nmechanisms = [{BOTH}]\n")).unwrap();
    let out = common::columba()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--config", config.to_str().unwrap(), "serve"])
        .args(["--imap", "127.0.0.1:0", "--imaps", "127.0.0.1:0"])
        .args(["--pop3", "127.0.0.1:0", "--pop3s", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("introspection"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn https_endpoint_trusted_through_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("idp.pem");
    let endpoint = Introspector::start_tls(&ca);
    let trusting = server_with(
        BOTH,
        &endpoint.url(),
        &format!("ca_file = \"{}\"\n", ca.display()),
    );
    let (_, reply) = imap_auth(
        trusting.imap,
        "OAUTHBEARER",
        &oauthbearer(Some("alice"), "alice-token"),
        "",
    );
    assert!(reply.starts_with("a OK"), "{reply}");
    assert_eq!(endpoint.requests.lock().unwrap().len(), 1);
    let (challenge, reply) = imap_auth(
        trusting.imap,
        "XOAUTH2",
        &xoauth2("alice", "stale-token"),
        "",
    );
    assert_eq!(
        json(&challenge).get("status").map(String::as_str),
        Some("401")
    );
    assert!(reply.starts_with("a NO [AUTHENTICATIONFAILED]"), "{reply}");

    // Trusting another authority: the endpoint's certificate is refused, a temporary failure.
    let other = dir.path().join("other.pem");
    let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    std::fs::write(&other, generated.cert.pem()).unwrap();
    let distrusting = server_with(
        BOTH,
        &endpoint.url(),
        &format!("ca_file = \"{}\"\n", other.display()),
    );
    let (_, reply) = imap_auth(
        distrusting.imap,
        "OAUTHBEARER",
        &oauthbearer(Some("alice"), "alice-token"),
        "",
    );
    assert!(reply.starts_with("a NO [UNAVAILABLE]"), "{reply}");
    assert_eq!(
        endpoint.requests.lock().unwrap().len(),
        2,
        "no request without trust"
    );
}

/// With privilege separation the exchange runs in the auth process, its challenges and the
/// client's answers relayed by the login process: the token still logs alice in (her mail
/// served by a mail process) and a refused token still gets the JSON status, then NO.
#[test]
fn separated_processes_relay_token_exchanges() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        if std::env::var("COLUMBA_REQUIRE_EXTERNAL").as_deref() == Ok("1") {
            panic!("the separated server needs root (COLUMBA_REQUIRE_EXTERNAL=1)");
        }
        eprintln!("skipping: the separated server needs root");
        return;
    }
    let endpoint = Introspector::start();
    let mut server = server_configured(
        "[server]\nprocess_model = \"separated\"\nmail_user = \"nobody\"\n",
        BOTH,
        &endpoint.url(),
        "",
    );
    server.wait_for_log("login process running as");
    // The mail process runs as nobody: let it reach its Maildir under the data directory.
    use std::os::unix::fs::PermissionsExt as _;
    let data_dir = server.data_dir.path();
    std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o711)).unwrap();
    let mail = data_dir.join("mail");
    std::fs::create_dir_all(&mail).unwrap();
    let nobody = |flag: &str| -> u32 {
        let out = std::process::Command::new("id")
            .args([flag, "nobody"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    std::os::unix::fs::chown(&mail, Some(nobody("-u")), Some(nobody("-g"))).unwrap();
    let mut c = RawClient::connect(server.imap);
    c.send(
        format!(
            "a AUTHENTICATE OAUTHBEARER {}\r\nb SELECT INBOX\r\n",
            oauthbearer(Some("alice"), "alice-token")
        )
        .as_bytes(),
    );
    let reply = c.until_tagged("a");
    assert!(reply.last().unwrap().starts_with("a OK"), "{reply:?}");
    let reply = c.until_tagged("b");
    assert!(reply.last().unwrap().starts_with("b OK"), "{reply:?}");
    server.wait_for_log("Login: user=<alice>, method=OAUTHBEARER");

    let (challenge, reply) = imap_auth(
        server.imap,
        "OAUTHBEARER",
        &oauthbearer(Some("alice"), "bob-token"),
        &b64("\x01"),
    );
    assert_eq!(
        json(&challenge).get("status").map(String::as_str),
        Some("invalid_token"),
        "{challenge}"
    );
    assert!(reply.starts_with("a NO [AUTHENTICATIONFAILED]"), "{reply}");
}
