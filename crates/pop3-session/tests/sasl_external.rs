//! POP3 AUTH EXTERNAL (RFC 5034, RFC 4422 Appendix A) after STLS: listed in CAPA and AUTH and
//! run only when the TLS upgrade reports a verified client certificate's user (test-support's
//! stand-in `CertificateUpgrade`), with the authzid rules.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use auth::LoginPenalty;
use auth::sasl::Mechanism;
use pop3_session::{ConnectionInfo, MaildropLocks, Pop3Settings, SessionContext};
use test_support::sasl::{AuthBackend, CertificateUpgrade, b64};
use test_support::transcript::Conn;

struct Setup {
    _dir: tempfile::TempDir,
    ctx: Arc<SessionContext>,
}

fn setup(client_user: Option<&'static str>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let ctx = Arc::new(SessionContext {
        settings: Pop3Settings::default(),
        backend: Arc::new(AuthBackend::new(
            dir.path(),
            &[Mechanism::Plain, Mechanism::External],
        )),
        starttls: Some(Arc::new(CertificateUpgrade { client_user })),
        penalty: Arc::new(LoginPenalty::new(
            Duration::from_millis(1),
            Duration::from_millis(5),
        )),
        locks: Arc::new(MaildropLocks::new()),
    });
    Setup { _dir: dir, ctx }
}

/// A session from a non-loopback client after STLS.
async fn connect_tls(setup: &Setup) -> Conn {
    let (mut client, server) = Conn::pair();
    let info = ConnectionInfo {
        remote: "192.0.2.7:50000".parse::<SocketAddr>().unwrap(),
        local: "192.0.2.1:110".parse().unwrap(),
        implicit_tls: false,
        session_id: "external".into(),
    };
    tokio::spawn(pop3_session::serve(
        Box::new(server),
        setup.ctx.clone(),
        info,
    ));
    assert_eq!(client.line().await, "+OK Columba ready.");
    client.send(b"STLS\r\n").await;
    assert!(client.line().await.starts_with("+OK"));
    client
}

/// The SASL line of CAPA.
async fn sasl_capability(conn: &mut Conn) -> String {
    conn.send(b"CAPA\r\n").await;
    assert!(conn.line().await.starts_with("+OK"));
    let mut sasl = String::new();
    loop {
        let line = conn.line().await;
        if line == "." {
            return sasl;
        }
        if line.starts_with("SASL") {
            sasl = line;
        }
    }
}

async fn command(conn: &mut Conn, line: &str) -> String {
    conn.send(format!("{line}\r\n").as_bytes()).await;
    conn.line().await
}

#[tokio::test]
async fn auth_external_with_a_certificate() {
    let s = setup(Some("alice"));
    let mut c = connect_tls(&s).await;
    assert_eq!(sasl_capability(&mut c).await, "SASL PLAIN EXTERNAL");
    assert!(
        command(&mut c, &format!("AUTH EXTERNAL {}", b64("bob")))
            .await
            .starts_with("-ERR")
    );
    assert_eq!(command(&mut c, "AUTH EXTERNAL =").await, "+OK Logged in.");
    assert!(command(&mut c, "STAT").await.starts_with("+OK 0 "));
}

#[tokio::test]
async fn no_certificate_no_external() {
    let s = setup(None);
    let mut c = connect_tls(&s).await;
    assert_eq!(sasl_capability(&mut c).await, "SASL PLAIN");
    assert!(command(&mut c, "AUTH EXTERNAL =").await.starts_with("-ERR"));
    // A user no database knows, named by a certificate.
    let s = setup(Some("mallory"));
    let mut c = connect_tls(&s).await;
    assert!(
        command(&mut c, "AUTH EXTERNAL =")
            .await
            .starts_with("-ERR [AUTH]")
    );
}
