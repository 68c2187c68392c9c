//! POP3 AUTH (RFC 5034) with the challenge-response mechanisms over the real authenticator:
//! CAPA's SASL line and AUTH's list, CRAM-MD5 and SCRAM exchanges with random nonces, wrong
//! proofs, disabled mechanisms, malformed base64 and over-long responses.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use auth::LoginPenalty;
use auth::sasl::Mechanism;
use pop3_session::{ConnectionInfo, MaildropLocks, Pop3Settings, SessionContext};
use test_support::sasl::{AuthBackend, ScramClient, b64, cram_md5, unb64};
use test_support::transcript::Conn;

struct Setup {
    _dir: tempfile::TempDir,
    ctx: Arc<SessionContext>,
}

fn setup(mechanisms: &[Mechanism]) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let ctx = Arc::new(SessionContext {
        settings: Pop3Settings::default(),
        backend: Arc::new(AuthBackend::new(dir.path(), mechanisms)),
        starttls: None,
        penalty: Arc::new(LoginPenalty::new(
            Duration::from_millis(1),
            Duration::from_millis(5),
        )),
        locks: Arc::new(MaildropLocks::new()),
    });
    Setup { _dir: dir, ctx }
}

async fn connect(setup: &Setup, remote: &str) -> Conn {
    let (mut client, server) = Conn::pair();
    let info = ConnectionInfo {
        remote: remote.parse::<SocketAddr>().unwrap(),
        local: "127.0.0.1:110".parse().unwrap(),
        implicit_tls: false,
        session_id: "sasl".into(),
    };
    tokio::spawn(pop3_session::serve(
        Box::new(server),
        setup.ctx.clone(),
        info,
    ));
    assert_eq!(client.line().await, "+OK Columba ready.");
    client
}

/// The lines of a multi-line answer, after its `+OK` line, up to the `.`.
async fn multiline(conn: &mut Conn) -> Vec<String> {
    assert!(conn.line().await.starts_with("+OK"));
    let mut lines = Vec::new();
    loop {
        let line = conn.line().await;
        if line == "." {
            return lines;
        }
        lines.push(line);
    }
}

#[tokio::test]
async fn capa_and_auth_list_the_backends_mechanisms() {
    let s = setup(&Mechanism::ALL);
    let mut conn = connect(&s, "127.0.0.1:5000").await;
    conn.send(b"CAPA\r\n").await;
    let caps = multiline(&mut conn).await;
    assert!(
        caps.contains(&"SASL PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256".to_owned()),
        "{caps:?}"
    );
    conn.send(b"AUTH\r\n").await;
    assert_eq!(
        multiline(&mut conn).await,
        ["PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256"]
    );
    // From afar without TLS: USER and the plaintext mechanisms go, the others stay.
    let mut conn = connect(&s, "192.0.2.7:5000").await;
    conn.send(b"CAPA\r\n").await;
    let caps = multiline(&mut conn).await;
    assert!(!caps.contains(&"USER".to_owned()), "{caps:?}");
    assert!(
        caps.contains(&"SASL CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256".to_owned()),
        "{caps:?}"
    );
    // Only plaintext mechanisms, from afar: no SASL line at all.
    let plain = setup(&Mechanism::PLAINTEXT);
    let mut conn = connect(&plain, "192.0.2.7:5000").await;
    conn.send(b"CAPA\r\n").await;
    let caps = multiline(&mut conn).await;
    assert!(!caps.iter().any(|c| c.starts_with("SASL")), "{caps:?}");
}

async fn scram(conn: &mut Conn, mechanism: Mechanism, user: &str, pw: &str) -> String {
    let mut client = ScramClient::new(mechanism, user, pw);
    conn.send(format!("AUTH {mechanism} {}\r\n", b64(client.first())).as_bytes())
        .await;
    let first = String::from_utf8(unb64(&conn.line().await)).unwrap();
    conn.send(format!("{}\r\n", b64(client.answer(&first))).as_bytes())
        .await;
    let next = conn.line().await;
    if !next.starts_with('+') || next.starts_with("+OK") {
        return next;
    }
    let server_final = String::from_utf8(unb64(&next)).unwrap();
    assert!(client.server_final_ok(&server_final), "{server_final}");
    conn.send(b"\r\n").await;
    conn.line().await
}

#[tokio::test]
async fn scram_and_cram_md5_logins() {
    let s = setup(&Mechanism::ALL);
    for (mechanism, user, pw) in [
        (Mechanism::ScramSha256, "alice", "wonderland"),
        (Mechanism::ScramSha1, "alice", "wonderland"),
        (Mechanism::ScramSha256, "bob", "builder"),
    ] {
        let mut conn = connect(&s, "192.0.2.7:5000").await;
        assert_eq!(
            scram(&mut conn, mechanism, user, pw).await,
            "+OK Logged in."
        );
        conn.send(b"STAT\r\nQUIT\r\n").await;
        assert_eq!(conn.line().await, "+OK 0 0");
        assert_eq!(conn.line().await, "+OK Logging out.");
    }
    for (mechanism, user, pw) in [
        (Mechanism::ScramSha256, "bob", "wrong"),
        (Mechanism::ScramSha256, "carol", "christmas"),
        (Mechanism::ScramSha1, "nobody", "x"),
    ] {
        let mut conn = connect(&s, "127.0.0.1:5000").await;
        assert_eq!(
            scram(&mut conn, mechanism, user, pw).await,
            "-ERR [AUTH] Authentication failed."
        );
    }
    for (user, pw, expected) in [
        ("alice", "wonderland", "+OK Logged in."),
        ("alice", "wrong", "-ERR [AUTH] Authentication failed."),
        ("carol", "christmas", "-ERR [AUTH] Authentication failed."),
    ] {
        let mut conn = connect(&s, "127.0.0.1:5000").await;
        conn.send(b"AUTH CRAM-MD5\r\n").await;
        let challenge = unb64(&conn.line().await);
        conn.send(format!("{}\r\n", b64(cram_md5(user, pw, &challenge))).as_bytes())
            .await;
        assert_eq!(conn.line().await, expected, "{user}");
    }
}

#[tokio::test]
async fn disabled_and_malformed() {
    let s = setup(&[Mechanism::Plain, Mechanism::ScramSha256]);
    let mut conn = connect(&s, "127.0.0.1:5000").await;
    for mech in ["CRAM-MD5", "SCRAM-SHA-1", "LOGIN", "X-UNKNOWN"] {
        conn.send(format!("AUTH {mech}\r\n").as_bytes()).await;
        assert_eq!(
            conn.line().await,
            "-ERR Unsupported authentication mechanism.",
            "{mech}"
        );
    }
    conn.send(b"AUTH SCRAM-SHA-256\r\n").await;
    assert_eq!(conn.line().await, "+ ");
    conn.send(b"%%%\r\n").await;
    assert_eq!(
        conn.line().await,
        "-ERR Invalid base64 data in continued response."
    );
    conn.send(b"AUTH SCRAM-SHA-256 !!\r\n").await;
    assert_eq!(
        conn.line().await,
        "-ERR Invalid base64 data in initial response."
    );
    conn.send(format!("AUTH SCRAM-SHA-256 {}\r\n", b64("n,,n=alice")).as_bytes())
        .await;
    assert_eq!(conn.line().await, "-ERR [AUTH] Authentication failed.");
    let mut conn = connect(&s, "127.0.0.1:5000").await;
    conn.send(b"AUTH SCRAM-SHA-256\r\n").await;
    assert_eq!(conn.line().await, "+ ");
    conn.send(format!("{}\r\n", b64(vec![b'n'; 9000])).as_bytes())
        .await;
    assert_eq!(conn.line().await, "-ERR [AUTH] Authentication failed.");
    conn.send(b"AUTH SCRAM-SHA-256\r\n").await;
    assert_eq!(conn.line().await, "+ ");
    conn.send(format!("{}\r\n", "A".repeat(20_000)).as_bytes())
        .await;
    assert_eq!(conn.line().await, "-ERR SASL response too long.");
}
