//! SASL EXTERNAL with TLS client certificates (RFC 4422 Appendix A) through the built server:
//! `[tls] client_ca` makes the listeners ask for a certificate; one that verifies names a user
//! (its CN here), who may then log in with EXTERNAL over implicit TLS or after STARTTLS. A
//! client without a certificate is not offered EXTERNAL. The client is Python's imaplib with an
//! `ssl` context holding the certificate.

mod common;

use common::{Server, USER, client_certificates, have, imaplib_external};

#[test]
fn client_certificates_log_in_with_external() {
    if !have("python3") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    client_certificates(dir.path(), USER);
    let config = dir.path().join("columba.toml");
    std::fs::write(
        &config,
        format!(
            "[tls]\nclient_ca = \"{}\"\n[auth]\nmechanisms = [\"PLAIN\", \"LOGIN\", \"EXTERNAL\"]\n",
            dir.path().join("ca.pem").display()
        ),
    )
    .unwrap();
    let mut server = Server::start_with(&["--config", config.to_str().unwrap()]);
    for mode in ["implicit", "starttls"] {
        assert_eq!(
            imaplib_external(&server, dir.path(), mode),
            "EXTERNAL offered: True\nauthenticate: OK\nselect: OK\n",
            "{mode}"
        );
    }
    server.wait_for_log(&format!(
        "imap-login: Login: user=<{USER}>, method=EXTERNAL"
    ));
    // Without a certificate, nothing external happened: EXTERNAL is not offered.
    assert_eq!(
        imaplib_external(&server, dir.path(), "nocert"),
        "EXTERNAL offered: False\n"
    );
}

#[test]
fn external_without_a_client_ca_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("columba.toml");
    std::fs::write(&config, "[auth]\nmechanisms = [\"PLAIN\", \"EXTERNAL\"]\n").unwrap();
    let out = common::columba()
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--config", config.to_str().unwrap()])
        .args(["serve", "--imap", "127.0.0.1:0", "--imaps", "127.0.0.1:0"])
        .args(["--pop3", "127.0.0.1:0", "--pop3s", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("EXTERNAL needs [tls] client_ca"), "{err}");
}
