//! SASL EXTERNAL (RFC 4422 Appendix A) over a TLS client certificate: the user a certificate
//! names (common name, subjectAltName e-mail, subject emailAddress) for certificates made here
//! by rcgen, and the exchange through the authenticator (authzid rules, no identity, the userdb
//! and uid guards).

use std::sync::Arc;

use auth::cert::{CertError, CertUserField, certificate_user};
use auth::passwd_file::PasswdFile;
use auth::sasl::{Mechanism, SaslError};
use auth::{AuthSettings, Authenticator, ExchangeStep, FailureKind};
use rcgen::{CertificateParams, DnType, DnValue, KeyPair, SanType};

/// PKCS #9 emailAddress.
const EMAIL_ADDRESS: [u64; 7] = [1, 2, 840, 113549, 1, 9, 1];

fn certificate(edit: impl FnOnce(&mut CertificateParams)) -> Vec<u8> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Columba tests");
    edit(&mut params);
    let key = KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().der().to_vec()
}

#[test]
fn user_names_from_certificates() {
    let cn = certificate(|p| p.distinguished_name.push(DnType::CommonName, "alice"));
    assert_eq!(
        certificate_user(&cn, CertUserField::CommonName).unwrap(),
        Some("alice".into())
    );
    assert_eq!(certificate_user(&cn, CertUserField::Email).unwrap(), None);

    let san = certificate(|p| {
        p.distinguished_name.push(DnType::CommonName, "Bob Builder");
        p.subject_alt_names = vec![
            SanType::DnsName("bob.example.org".try_into().unwrap()),
            SanType::Rfc822Name("bob@example.org".try_into().unwrap()),
            SanType::Rfc822Name("other@example.org".try_into().unwrap()),
        ];
    });
    assert_eq!(
        certificate_user(&san, CertUserField::Email).unwrap(),
        Some("bob@example.org".into())
    );
    assert_eq!(
        certificate_user(&san, CertUserField::CommonName).unwrap(),
        Some("Bob Builder".into())
    );

    // The subject's emailAddress attribute when there is no subjectAltName e-mail.
    let attribute = certificate(|p| {
        p.distinguished_name.push(
            DnType::CustomDnType(EMAIL_ADDRESS.to_vec()),
            DnValue::Ia5String("carol@example.org".try_into().unwrap()),
        )
    });
    assert_eq!(
        certificate_user(&attribute, CertUserField::Email).unwrap(),
        Some("carol@example.org".into())
    );

    let none = certificate(|_| {});
    assert_eq!(
        certificate_user(&none, CertUserField::CommonName).unwrap(),
        None
    );
    // Two common names are ambiguous. (rcgen keeps one value per type, so the second goes
    // in by its OID.)
    let two = certificate(|p| {
        p.distinguished_name.push(DnType::CommonName, "alice");
        p.distinguished_name.push(
            DnType::CustomDnType(vec![2, 5, 4, 3]),
            DnValue::Utf8String("mallory".into()),
        );
    });
    assert_eq!(
        certificate_user(&two, CertUserField::CommonName),
        Err(CertError::AmbiguousName)
    );
    // Truncated or damaged DER is an error, never a name.
    for cut in [1, 10, cn.len() / 2, cn.len() - 1] {
        assert!(
            certificate_user(&cn[..cut], CertUserField::CommonName).is_err(),
            "{cut}"
        );
    }
}

fn authenticator(dir: &std::path::Path) -> Arc<Authenticator> {
    let users = dir.join("users");
    std::fs::write(
        &users,
        "alice:{PLAIN}pw:2000:2000\nlowuid:{PLAIN}pw:500:500\n",
    )
    .unwrap();
    Arc::new(
        Authenticator::new(
            Box::new(PasswdFile::new(&users)),
            Some(Box::new(PasswdFile::new(&users))),
            AuthSettings {
                mechanisms: vec![Mechanism::Plain, Mechanism::External],
                ..AuthSettings::default()
            },
        )
        .unwrap(),
    )
}

fn kind(step: ExchangeStep) -> FailureKind {
    match step {
        ExchangeStep::Failure(f) => f.kind,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn external_exchanges() {
    let dir = tempfile::tempdir().unwrap();
    let auth = authenticator(dir.path());
    // An empty authzid, or the certificate's own user (in any case): logged in.
    for response in [&b""[..], b"alice", b"ALICE"] {
        let mut e = auth.start_external("Alice").unwrap();
        match e.step(Some(response)) {
            ExchangeStep::Success(r) => assert_eq!((r.name.as_str(), r.uid), ("alice", Some(2000))),
            other => panic!("{response:?}: {other:?}"),
        }
    }
    // Without an initial response: an empty challenge, then the authzid.
    let mut e = auth.start_external("alice").unwrap();
    assert_eq!(e.step(None), ExchangeStep::Challenge(Vec::new()));
    assert!(matches!(e.step(Some(b"")), ExchangeStep::Success(_)));
    // Someone else: no proxy authorization.
    let mut e = auth.start_external("alice").unwrap();
    assert_eq!(
        kind(e.step(Some(b"bob"))),
        FailureKind::Malformed(SaslError::AuthzidNotPermitted)
    );
    // A certificate user the userdb does not know, one below first_valid_uid, one no
    // database could hold.
    let mut e = auth.start_external("ghost").unwrap();
    assert_eq!(kind(e.step(Some(b""))), FailureKind::UnknownUser);
    let mut e = auth.start_external("lowuid").unwrap();
    assert_eq!(kind(e.step(Some(b""))), FailureKind::WrongPassword);
    let mut e = auth.start_external("a/b").unwrap();
    assert_eq!(kind(e.step(Some(b""))), FailureKind::UnknownUser);
    // No verified certificate: EXTERNAL fails.
    let mut e = auth.start(Mechanism::External).unwrap();
    assert_eq!(kind(e.step(Some(b""))), FailureKind::WrongPassword);
    // Malformed authzid.
    let mut e = auth.start_external("alice").unwrap();
    assert!(matches!(
        kind(e.step(Some(b"\xff"))),
        FailureKind::Malformed(SaslError::Malformed(_))
    ));
    let mut e = auth.start_external("alice").unwrap();
    assert_eq!(
        kind(e.step(Some(&[b'a'; 9000]))),
        FailureKind::Malformed(SaslError::TooLong)
    );
    assert!(!Mechanism::External.is_plaintext() && !Mechanism::External.needs_secret());
    assert_eq!(Mechanism::from_name("external"), Some(Mechanism::External));
}

#[test]
fn external_not_offered_means_no_exchange() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    std::fs::write(&users, "alice:{PLAIN}pw\n").unwrap();
    let auth = Arc::new(
        Authenticator::new(
            Box::new(PasswdFile::new(&users)),
            None,
            AuthSettings::default(),
        )
        .unwrap(),
    );
    assert!(auth.start_external("alice").is_none());
    // With prefetch (no userdb), nothing could tell that a certificate's user exists.
    let e = Authenticator::new(
        Box::new(PasswdFile::new(&users)),
        None,
        AuthSettings {
            mechanisms: vec![Mechanism::External],
            ..AuthSettings::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("EXTERNAL needs a userdb"), "{e}");
}
