//! Property tests: no input makes the parsers panic, and well-formed input round-trips.

use auth::passwd_file::{PasswdFile, list_users};
use auth::sasl::{Credentials, Mechanism, SaslServer, SaslStep};
use auth::scheme::{Scheme, hash, verify};
use auth::{AuthOutcome, PassDb};
use proptest::prelude::*;

/// Prefixes that steer random tails into every parser. The tails contain no digits, so no
/// random cost parameter (rounds, bcrypt cost, argon2 memory) can make a check take long.
const PREFIXES: &[&str] = &[
    "",
    "{",
    "{}",
    "{PLAIN}",
    "{PLAIN.HEX}",
    "{PLAIN.B64}",
    "{CRYPT}",
    "{MD5}",
    "{MD5-CRYPT}",
    "{SHA512-CRYPT}",
    "{SHA256-CRYPT}",
    "{BLF-CRYPT}",
    "{ARGON2I}",
    "{ARGON2ID}",
    "{SSHA}",
    "{SSHA256.HEX}",
    "{SSHA512}",
    "{SHA}",
    "{SHA.HEX}",
    "{SHA256}",
    "{SHA512.B64}",
    "{SMD5}",
    "{PLAIN-MD5}",
    "{LDAP-MD5}",
    "{PBKDF2}",
    "{PBKDF2}$1$",
    "{X.Y}",
    "$1$",
    "$5$",
    "$6$",
    "$6$rounds=",
    "$2y$",
    "$2a$",
    "$argon2id$",
    "$argon2i$v=",
    "$y$",
    "_",
    "*",
    "!",
];

fn tail() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            proptest::char::range('a', 'z'),
            proptest::char::range('A', 'Z'),
            Just('$'),
            Just('.'),
            Just('/'),
            Just('='),
            Just(','),
            Just('+'),
            Just('{'),
            Just('}'),
            Just(':'),
            Just('é'),
            Just('😀'),
            Just('\0'),
        ],
        0..70,
    )
    .prop_map(|v| v.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn verify_never_panics(
        prefix in proptest::sample::select(PREFIXES),
        tail in tail(),
        password in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let stored = format!("{prefix}{tail}");
        let _ = verify(&stored, &password);
    }

    #[test]
    fn sasl_never_panics(
        mech in proptest::sample::select(&Mechanism::KNOWN[..]),
        steps in proptest::collection::vec(
            proptest::option::of(proptest::collection::vec(
                prop_oneof![Just(0u8), any::<u8>()], 0..40)),
            1..5),
    ) {
        let mut s = SaslServer::new(mech);
        for step in &steps {
            let _ = s.step(step.as_deref());
        }
    }

    /// What a client or a certificate authority sends is never a reason to panic.
    #[test]
    fn token_certificate_and_template_parsers_never_panic(
        bytes in proptest::collection::vec(
            prop_oneof![Just(0x01u8), Just(b'='), Just(b','), Just(0x30), any::<u8>()], 0..120),
        text in tail(),
    ) {
        let _ = auth::sasl::oauth::parse_oauthbearer(&bytes);
        let _ = auth::sasl::oauth::parse_xoauth2(&bytes);
        for field in [auth::cert::CertUserField::CommonName, auth::cert::CertUserField::Email] {
            let _ = auth::cert::certificate_user(&bytes, field);
        }
        if let Ok(template) = auth::sql::query::QueryTemplate::parse(&text) {
            let prepared = template.render(|n| format!("?{n}"));
            let _ = prepared.params(&text);
        }
    }

    #[test]
    fn plain_round_trips(
        authcid in "[^\\x00-\\x1f\\x7f-\\u{9f}]{1,40}",
        password in proptest::collection::vec(1u8..=255, 1..60),
        with_authzid in any::<bool>(),
        initial in any::<bool>(),
    ) {
        let authzid = if with_authzid { authcid.as_str() } else { "" };
        let mut message = format!("{authzid}\0{authcid}\0").into_bytes();
        message.extend_from_slice(&password);
        let mut s = SaslServer::new(Mechanism::Plain);
        if !initial {
            prop_assert_eq!(s.step(None), SaslStep::Challenge(Vec::new()));
        }
        let expected = Credentials {
            authzid: with_authzid.then(|| authcid.clone()),
            authcid: authcid.clone(),
            password: password.clone().into(),
        };
        prop_assert_eq!(s.step(Some(&message)), SaslStep::Done(expected));
    }

    #[test]
    fn passwd_file_never_panics(lines in proptest::collection::vec(
        proptest::collection::vec(prop_oneof![
            Just(b':'), Just(b'#'), Just(b' '), Just(b'='), Just(b'\r'), Just(b'0'),
            Just(b'1'), Just(b'['), Just(b']'), any::<u8>()], 0..30), 0..12)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passwd");
        std::fs::write(&path, lines.join(&b'\n')).unwrap();
        let _ = list_users(&path).unwrap();
        let db = PasswdFile::open(&path).unwrap();
        for user in ["", "a", "root"] {
            let _ = db.verify_plain(user, b"pw");
        }
    }

    #[test]
    fn fast_schemes_round_trip(
        scheme in proptest::sample::select(&[
            Scheme::Plain, Scheme::Ssha, Scheme::Ssha256, Scheme::Ssha512, Scheme::Sha,
            Scheme::Sha256, Scheme::Sha512, Scheme::Smd5, Scheme::PlainMd5, Scheme::LdapMd5,
        ][..]),
        password in proptest::collection::vec(1u8..=255, 0..100),
    ) {
        let stored = hash(scheme, &password);
        prop_assert!(verify(&stored, &password).unwrap());
        let mut wrong = password.clone();
        wrong.push(b'x');
        prop_assert!(!verify(&stored, &wrong).unwrap());
    }
}

#[test]
fn passwd_file_users_from_sasl() {
    // The path a login takes: SASL PLAIN, then the passdb.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("passwd");
    std::fs::write(
        &path,
        format!("tim:{}\n", hash(Scheme::Sha512Crypt, b"tanstaaftanstaaf")),
    )
    .unwrap();
    let db = PasswdFile::open(&path).unwrap();
    let mut s = SaslServer::new(Mechanism::Plain);
    let SaslStep::Done(c) = s.step(Some(b"\0Tim\0tanstaaftanstaaf")) else {
        panic!("PLAIN failed");
    };
    assert!(matches!(
        db.verify_plain(&c.authcid, &c.password).unwrap(),
        AuthOutcome::Success(r) if r.name == "tim"
    ));
}
