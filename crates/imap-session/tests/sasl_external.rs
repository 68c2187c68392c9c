//! AUTHENTICATE EXTERNAL (RFC 4422 Appendix A) after STARTTLS: offered and run only when the
//! TLS upgrade reports a verified client certificate's user, with the authzid rules (the
//! upgrade is test-support's stand-in `CertificateUpgrade`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use auth::LoginPenalty;
use auth::sasl::Mechanism;
use imap_session::{ConnectionInfo, ImapSettings, SessionContext};
use test_support::sasl::{AuthBackend, CertificateUpgrade, b64};
use test_support::transcript::Conn;

struct Setup {
    _dir: tempfile::TempDir,
    ctx: Arc<SessionContext>,
}

fn setup(mechanisms: &[Mechanism], client_user: Option<&'static str>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let ctx = Arc::new(SessionContext {
        settings: ImapSettings::default(),
        backend: Arc::new(AuthBackend::new(dir.path(), mechanisms)),
        starttls: Some(Arc::new(CertificateUpgrade { client_user })),
        penalty: Arc::new(LoginPenalty::new(
            Duration::from_millis(1),
            Duration::from_millis(5),
        )),
    });
    Setup { _dir: dir, ctx }
}

/// A session from a non-loopback client, greeting read.
async fn connect(setup: &Setup) -> Conn {
    let (mut client, server) = Conn::pair();
    let info = ConnectionInfo {
        remote: "192.0.2.7:50000".parse::<SocketAddr>().unwrap(),
        local: "192.0.2.1:143".parse().unwrap(),
        implicit_tls: false,
        session_id: "external".into(),
    };
    tokio::spawn(imap_session::serve(
        Box::new(server),
        setup.ctx.clone(),
        info,
    ));
    let greeting = client.line().await;
    assert!(greeting.starts_with("* OK"), "{greeting}");
    client
}

/// Sends a command and returns every line up to its tagged answer.
async fn command(conn: &mut Conn, tag: &str, command: &str) -> Vec<String> {
    conn.send(format!("{tag} {command}\r\n").as_bytes()).await;
    let mut lines = Vec::new();
    loop {
        let line = conn.line().await;
        let done = line.starts_with(&format!("{tag} ")) || line.is_empty();
        lines.push(line);
        if done {
            return lines;
        }
    }
}

async fn starttls(conn: &mut Conn) {
    let reply = command(conn, "t", "STARTTLS").await;
    assert!(reply.last().unwrap().starts_with("t OK"), "{reply:?}");
}

const MECHANISMS: [Mechanism; 3] = [
    Mechanism::Plain,
    Mechanism::ScramSha256,
    Mechanism::External,
];

#[tokio::test]
async fn external_after_starttls_with_a_certificate() {
    let s = setup(&MECHANISMS, Some("alice"));
    let mut c = connect(&s).await;
    // Before TLS: no certificate, no EXTERNAL (and no PLAIN in the clear from afar).
    let caps = command(&mut c, "c", "CAPABILITY").await;
    assert!(caps[0].ends_with(" AUTH=SCRAM-SHA-256"), "{caps:?}");
    let reply = command(&mut c, "e", "AUTHENTICATE EXTERNAL =").await;
    assert!(reply[0].starts_with("e NO"), "{reply:?}");

    starttls(&mut c).await;
    let caps = command(&mut c, "c", "CAPABILITY").await;
    assert!(
        caps[0].ends_with(" AUTH=PLAIN AUTH=SCRAM-SHA-256 AUTH=EXTERNAL"),
        "{caps:?}"
    );
    // Naming someone else is refused; the empty authzid logs the certificate's user in.
    let reply = command(
        &mut c,
        "x",
        &format!("AUTHENTICATE EXTERNAL {}", b64("bob")),
    )
    .await;
    assert!(reply[0].starts_with("x NO"), "{reply:?}");
    let reply = command(&mut c, "e", "AUTHENTICATE EXTERNAL =").await;
    assert!(reply.last().unwrap().starts_with("e OK"), "{reply:?}");
    let reply = command(&mut c, "s", "SELECT INBOX").await;
    assert!(reply.last().unwrap().starts_with("s OK"), "{reply:?}");
}

#[tokio::test]
async fn external_without_initial_response_names_the_user_itself() {
    let s = setup(&MECHANISMS, Some("alice"));
    let mut c = connect(&s).await;
    starttls(&mut c).await;
    c.send(b"e AUTHENTICATE EXTERNAL\r\n").await;
    assert_eq!(c.line().await, "+ ");
    c.send(format!("{}\r\n", b64("ALICE")).as_bytes()).await;
    let reply = c.line().await;
    assert!(reply.starts_with("e OK"), "{reply}");
}

#[tokio::test]
async fn no_certificate_or_not_configured_means_no_external() {
    // TLS without a client certificate.
    let s = setup(&MECHANISMS, None);
    let mut c = connect(&s).await;
    starttls(&mut c).await;
    let caps = command(&mut c, "c", "CAPABILITY").await;
    assert!(!caps[0].contains("EXTERNAL"), "{caps:?}");
    let reply = command(&mut c, "e", "AUTHENTICATE EXTERNAL =").await;
    assert!(reply[0].starts_with("e NO"), "{reply:?}");

    // A certificate, but EXTERNAL is not among the mechanisms.
    let s = setup(&[Mechanism::Plain], Some("alice"));
    let mut c = connect(&s).await;
    starttls(&mut c).await;
    let caps = command(&mut c, "c", "CAPABILITY").await;
    assert!(!caps[0].contains("EXTERNAL"), "{caps:?}");
    let reply = command(&mut c, "e", "AUTHENTICATE EXTERNAL =").await;
    assert!(reply[0].starts_with("e NO"), "{reply:?}");

    // A certificate naming a user the databases do not know.
    let s = setup(&MECHANISMS, Some("mallory"));
    let mut c = connect(&s).await;
    starttls(&mut c).await;
    let reply = command(&mut c, "e", "AUTHENTICATE EXTERNAL =").await;
    assert!(
        reply
            .last()
            .unwrap()
            .starts_with("e NO [AUTHENTICATIONFAILED]"),
        "{reply:?}"
    );
}
