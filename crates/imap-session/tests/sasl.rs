//! AUTHENTICATE with the challenge-response mechanisms (RFC 3501 6.2.2; CRAM-MD5 RFC 2195;
//! SCRAM RFC 5802 and RFC 7677) over the real authenticator: what CAPABILITY offers and where,
//! whole exchanges with random nonces (so not a transcript), wrong proofs, unknown users,
//! disabled mechanisms, malformed base64, cancellation and over-long responses.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use auth::LoginPenalty;
use auth::sasl::Mechanism;
use imap_session::{ConnectionInfo, ImapSettings, SessionContext};
use test_support::sasl::{AuthBackend, ScramClient, b64, cram_md5, unb64};
use test_support::transcript::Conn;

struct Setup {
    _dir: tempfile::TempDir,
    ctx: Arc<SessionContext>,
}

fn setup(mechanisms: &[Mechanism]) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let ctx = Arc::new(SessionContext {
        settings: ImapSettings::default(),
        backend: Arc::new(AuthBackend::new(dir.path(), mechanisms)),
        starttls: None,
        penalty: Arc::new(LoginPenalty::new(
            Duration::from_millis(1),
            Duration::from_millis(5),
        )),
    });
    Setup { _dir: dir, ctx }
}

/// A session for a client at `remote`, greeting read; returns the client end and the greeting.
async fn connect(setup: &Setup, remote: &str) -> (Conn, String) {
    let (mut client, server) = Conn::pair();
    let info = ConnectionInfo {
        remote: remote.parse::<SocketAddr>().unwrap(),
        local: "127.0.0.1:143".parse().unwrap(),
        implicit_tls: false,
        session_id: "sasl".into(),
    };
    tokio::spawn(imap_session::serve(
        Box::new(server),
        setup.ctx.clone(),
        info,
    ));
    let greeting = client.line().await;
    (client, greeting)
}

async fn scram(conn: &mut Conn, tag: &str, mechanism: Mechanism, user: &str, pw: &str) -> String {
    let mut client = ScramClient::new(mechanism, user, pw);
    conn.send(format!("{tag} AUTHENTICATE {mechanism} {}\r\n", b64(client.first())).as_bytes())
        .await;
    let first = String::from_utf8(unb64(&conn.line().await)).unwrap();
    conn.send(format!("{}\r\n", b64(client.answer(&first))).as_bytes())
        .await;
    let next = conn.line().await;
    if !next.starts_with('+') {
        return next;
    }
    let server_final = String::from_utf8(unb64(&next)).unwrap();
    assert!(client.server_final_ok(&server_final), "{server_final}");
    conn.send(b"\r\n").await;
    conn.line().await
}

#[tokio::test]
async fn capability_offers_what_the_backend_offers() {
    let all = setup(&Mechanism::ALL);
    let (_, greeting) = connect(&all, "127.0.0.1:5000").await;
    assert!(
        greeting
            .contains("AUTH=PLAIN AUTH=LOGIN AUTH=CRAM-MD5 AUTH=SCRAM-SHA-1 AUTH=SCRAM-SHA-256]"),
        "{greeting}"
    );
    // A cleartext connection from afar: no plaintext mechanisms, but the others stay.
    let (_, greeting) = connect(&all, "192.0.2.7:5000").await;
    assert!(
        greeting.contains("LOGINDISABLED AUTH=CRAM-MD5 AUTH=SCRAM-SHA-1 AUTH=SCRAM-SHA-256]"),
        "{greeting}"
    );
    assert!(!greeting.contains("AUTH=PLAIN"), "{greeting}");
    let some = setup(&[Mechanism::ScramSha256, Mechanism::Plain]);
    let (_, greeting) = connect(&some, "127.0.0.1:5000").await;
    assert!(
        greeting.contains("AUTH=SCRAM-SHA-256 AUTH=PLAIN]"),
        "{greeting}"
    );
}

#[tokio::test]
async fn scram_logins() {
    let s = setup(&Mechanism::ALL);
    for (mechanism, user, pw) in [
        (Mechanism::ScramSha256, "alice", "wonderland"),
        (Mechanism::ScramSha1, "alice", "wonderland"),
        (Mechanism::ScramSha256, "bob", "builder"),
    ] {
        let (mut conn, _) = connect(&s, "127.0.0.1:5000").await;
        let reply = scram(&mut conn, "a1", mechanism, user, pw).await;
        assert!(
            reply.starts_with("a1 OK [CAPABILITY "),
            "{mechanism} {user}: {reply}"
        );
        conn.send(b"a2 SELECT INBOX\r\n").await;
        let mut line = conn.line().await;
        while line.starts_with('*') {
            line = conn.line().await;
        }
        assert!(line.starts_with("a2 OK"), "{line}");
    }
    // Wrong passwords, keys that cannot serve the mechanism, unknown users: all the same NO.
    for (mechanism, user, pw) in [
        (Mechanism::ScramSha256, "alice", "wrong"),
        (Mechanism::ScramSha256, "bob", "wrong"),
        (Mechanism::ScramSha1, "bob", "builder"),
        (Mechanism::ScramSha256, "carol", "christmas"),
        (Mechanism::ScramSha256, "nobody", "x"),
    ] {
        let (mut conn, _) = connect(&s, "127.0.0.1:5000").await;
        let reply = scram(&mut conn, "a1", mechanism, user, pw).await;
        assert_eq!(
            reply, "a1 NO [AUTHENTICATIONFAILED] Authentication failed.",
            "{mechanism} {user}"
        );
    }
}

#[tokio::test]
async fn scram_on_a_cleartext_connection_from_afar() {
    // SCRAM sends no password: it is allowed where PLAIN is not.
    let s = setup(&Mechanism::ALL);
    let (mut conn, _) = connect(&s, "192.0.2.7:5000").await;
    conn.send(b"a0 AUTHENTICATE PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=\r\n")
        .await;
    assert!(conn.line().await.starts_with("a0 NO [PRIVACYREQUIRED]"));
    let reply = scram(
        &mut conn,
        "a1",
        Mechanism::ScramSha256,
        "alice",
        "wonderland",
    )
    .await;
    assert!(reply.starts_with("a1 OK"), "{reply}");
}

#[tokio::test]
async fn cram_md5_logins() {
    let s = setup(&Mechanism::ALL);
    for (user, pw, ok) in [
        ("alice", "wonderland", true),
        ("alice", "wrong", false),
        ("bob", "builder", false),
        ("nobody", "x", false),
    ] {
        let (mut conn, _) = connect(&s, "127.0.0.1:5000").await;
        conn.send(b"a1 AUTHENTICATE CRAM-MD5\r\n").await;
        let challenge = unb64(&conn.line().await);
        conn.send(format!("{}\r\n", b64(cram_md5(user, pw, &challenge))).as_bytes())
            .await;
        let reply = conn.line().await;
        assert_eq!(reply.starts_with("a1 OK"), ok, "{user}: {reply}");
    }
}

#[tokio::test]
async fn disabled_mechanisms_are_unsupported() {
    let s = setup(&Mechanism::PLAINTEXT);
    let (mut conn, greeting) = connect(&s, "127.0.0.1:5000").await;
    assert!(
        !greeting.contains("SCRAM") && !greeting.contains("CRAM"),
        "{greeting}"
    );
    for mech in [
        "CRAM-MD5",
        "SCRAM-SHA-1",
        "SCRAM-SHA-256",
        "SCRAM-SHA-256-PLUS",
        "GSSAPI",
    ] {
        conn.send(format!("a1 AUTHENTICATE {mech}\r\n").as_bytes())
            .await;
        assert_eq!(
            conn.line().await,
            "a1 NO Unsupported authentication mechanism.",
            "{mech}"
        );
    }
}

#[tokio::test]
async fn malformed_exchanges() {
    let s = setup(&Mechanism::ALL);
    let (mut conn, _) = connect(&s, "127.0.0.1:5000").await;
    // Not base64 in a continuation.
    conn.send(b"a1 AUTHENTICATE SCRAM-SHA-256\r\n").await;
    assert_eq!(conn.line().await, "+ ");
    conn.send(b"not base64!\r\n").await;
    assert_eq!(
        conn.line().await,
        "a1 BAD Invalid base64 data in continued response."
    );
    // Cancelled after the server-first message.
    let client = ScramClient::new(Mechanism::ScramSha256, "alice", "wonderland");
    conn.send(format!("a2 AUTHENTICATE SCRAM-SHA-256 {}\r\n", b64(client.first())).as_bytes())
        .await;
    assert!(conn.line().await.starts_with("+ "));
    conn.send(b"*\r\n").await;
    assert_eq!(
        conn.line().await,
        "a2 BAD Authentication aborted by client."
    );
    // Valid base64 of a message that is not SCRAM: a failed login.
    conn.send(format!("a3 AUTHENTICATE SCRAM-SHA-1 {}\r\n", b64("hello")).as_bytes())
        .await;
    assert_eq!(
        conn.line().await,
        "a3 NO [AUTHENTICATIONFAILED] Authentication failed."
    );
    // A decoded response beyond the SASL limit, and a line beyond the line limit.
    let (mut conn, _) = connect(&s, "127.0.0.1:5000").await;
    conn.send(b"b1 AUTHENTICATE CRAM-MD5\r\n").await;
    assert!(conn.line().await.starts_with("+ "));
    conn.send(format!("{}\r\n", b64(vec![b'a'; 9000])).as_bytes())
        .await;
    assert_eq!(
        conn.line().await,
        "b1 NO [AUTHENTICATIONFAILED] Authentication failed."
    );
    conn.send(b"b2 AUTHENTICATE SCRAM-SHA-256\r\n").await;
    assert_eq!(conn.line().await, "+ ");
    conn.send(format!("{}\r\n", "A".repeat(20_000)).as_bytes())
        .await;
    assert_eq!(conn.line().await, "b2 BAD SASL response too long.");
}
