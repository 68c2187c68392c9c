//! SASL EXTERNAL with TLS client certificates (RFC 4422 Appendix A) through the built server:
//! `[tls] client_ca` makes the listeners ask for a certificate; one that verifies names a user
//! (its CN here), who may then log in with EXTERNAL over implicit TLS or after STARTTLS. A
//! client without a certificate is not offered EXTERNAL. The client is Python's imaplib with an
//! `ssl` context holding the certificate.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Server, USER, have, run};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// A CA in `dir/ca.pem` and a client certificate for `cn` it signed, in `dir/client.pem` and
/// `dir/client.key`.
fn certificates(dir: &Path, cn: &str) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "Columba test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
    client.distinguished_name.push(DnType::CommonName, cn);
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = KeyPair::generate().unwrap();
    let client_cert = client.signed_by(&client_key, &ca_cert, &ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("client.pem"), client_cert.pem()).unwrap();
    std::fs::write(dir.join("client.key"), client_key.serialize_pem()).unwrap();
}

const CLIENT: &str = r#"
import imaplib, ssl, sys
host, imaps, imap, certdir, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
if mode != "nocert":
    ctx.load_cert_chain(certdir + "/client.pem", certdir + "/client.key")
if mode == "starttls":
    c = imaplib.IMAP4(host, imap)
    c.starttls(ssl_context=ctx)
else:
    c = imaplib.IMAP4_SSL(host, imaps, ssl_context=ctx)
typ, caps = c.capability()
print("EXTERNAL offered:", b"AUTH=EXTERNAL" in caps[0])
if mode != "nocert":
    typ, data = c.authenticate("EXTERNAL", lambda challenge: b"")
    print("authenticate:", typ)
    typ, data = c.select("INBOX")
    print("select:", typ)
c.logout()
"#;

fn client(server: &Server, certdir: &Path, mode: &str) -> String {
    let out = run(Command::new("python3")
        .arg("-c")
        .arg(CLIENT)
        .arg("127.0.0.1")
        .arg(server.imaps.port().to_string())
        .arg(server.imap.port().to_string())
        .arg(certdir)
        .arg(mode));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn client_certificates_log_in_with_external() {
    if !have("python3") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path(), USER);
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
            client(&server, dir.path(), mode),
            "EXTERNAL offered: True\nauthenticate: OK\nselect: OK\n",
            "{mode}"
        );
    }
    server.wait_for_log(&format!(
        "imap-login: Login: user=<{USER}>, method=EXTERNAL"
    ));
    // Without a certificate, nothing external happened: EXTERNAL is not offered.
    assert_eq!(
        client(&server, dir.path(), "nocert"),
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
