//! The authenticator end to end over a passwd-file: plaintext logins, every SASL mechanism with
//! a client computed here, unknown users, wrong passwords, secrets that cannot serve a
//! mechanism, the uid guards and the userdbs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use auth::passwd_file::PasswdFile;
use auth::sasl::{Mechanism, SaslError, cram_md5_response};
use auth::scheme::{Scheme, hash};
use auth::scram::client_proof;
use auth::system::PasswdUserDb;
use auth::userdb::StaticUserDb;
use auth::{
    AuthError, AuthOutcome, AuthSettings, Authenticator, ExchangeStep, Failure, FailureKind,
    UidRange, UserLookup,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

const ALL: [Mechanism; 5] = Mechanism::ALL;

/// A passwd-file with users whose passwords are stored as plaintext, as SCRAM-SHA-256 keys, as
/// SCRAM-SHA-1 keys and as a one-way hash; all of them have the password "pencil".
fn passwd_file(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("users");
    let lines = format!(
        "plain:{}:2000:2000::/home/plain\n\
         scram256:{}:2000:2000\n\
         scram1:{}:2000:2000\n\
         hashed:{}:2000:2000\n\
         {extra}",
        hash(Scheme::Plain, b"pencil"),
        hash(Scheme::ScramSha256, b"pencil"),
        hash(Scheme::ScramSha1, b"pencil"),
        hash(Scheme::Sha512Crypt, b"pencil"),
    );
    std::fs::write(&path, lines).unwrap();
    path
}

fn authenticator(dir: &Path, extra: &str, settings: AuthSettings) -> Arc<Authenticator> {
    let path = passwd_file(dir, extra);
    Arc::new(
        Authenticator::new(
            Box::new(PasswdFile::new(&path)),
            Some(Box::new(PasswdFile::new(&path))),
            settings,
        )
        .unwrap(),
    )
}

fn all_mechanisms() -> AuthSettings {
    AuthSettings {
        mechanisms: ALL.to_vec(),
        ..AuthSettings::default()
    }
}

fn challenge(step: ExchangeStep) -> Vec<u8> {
    match step {
        ExchangeStep::Challenge(c) => c,
        other => panic!("expected a challenge, got {other:?}"),
    }
}

fn failure(step: ExchangeStep) -> Failure {
    match step {
        ExchangeStep::Failure(f) => f,
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// A SCRAM client (RFC 5802 section 7) logging in as `user` with `password`; returns the final
/// step, after checking the server's signature when there is one.
fn scram_login(
    auth: &Arc<Authenticator>,
    mechanism: Mechanism,
    user: &str,
    password: &[u8],
) -> ExchangeStep {
    let hash = mechanism.scram_hash().unwrap();
    let mut exchange = auth.start(mechanism).unwrap();
    let bare = format!("n={user},r=clientnonce123");
    let first = String::from_utf8(challenge(
        exchange.step(Some(format!("n,,{bare}").as_bytes())),
    ))
    .unwrap();
    let rest = first.strip_prefix("r=clientnonce123").unwrap();
    let (server_nonce, rest) = rest.split_once(",s=").unwrap();
    let (salt, iterations) = rest.split_once(",i=").unwrap();
    let without_proof = format!("c=biws,r=clientnonce123{server_nonce}");
    let auth_message = format!("{bare},{first},{without_proof}");
    let (proof, server_signature) = client_proof(
        hash,
        password,
        &STANDARD.decode(salt).unwrap(),
        iterations.parse().unwrap(),
        auth_message.as_bytes(),
    );
    let last = format!("{without_proof},p={}", STANDARD.encode(proof));
    match exchange.step(Some(last.as_bytes())) {
        ExchangeStep::Challenge(v) => {
            assert_eq!(
                v,
                format!("v={}", STANDARD.encode(server_signature)).into_bytes()
            );
            exchange.step(Some(b""))
        }
        other => other,
    }
}

fn cram_login(auth: &Arc<Authenticator>, user: &str, password: &[u8]) -> ExchangeStep {
    let mut exchange = auth.start(Mechanism::CramMd5).unwrap();
    let c = challenge(exchange.step(None));
    exchange.step(Some(&cram_md5_response(user, password, &c)))
}

fn logged_in_as(step: ExchangeStep) -> String {
    match step {
        ExchangeStep::Success(record) => record.name,
        other => panic!("expected a login, got {other:?}"),
    }
}

#[test]
fn scram_with_stored_keys_and_from_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let auth = authenticator(dir.path(), "", all_mechanisms());
    for (mechanism, user) in [
        (Mechanism::ScramSha256, "scram256"),
        (Mechanism::ScramSha256, "plain"),
        (Mechanism::ScramSha1, "scram1"),
        (Mechanism::ScramSha1, "plain"),
    ] {
        assert_eq!(
            logged_in_as(scram_login(&auth, mechanism, user, b"pencil")),
            user
        );
        let f = failure(scram_login(&auth, mechanism, user, b"pencil2"));
        assert_eq!(
            (f.user.as_str(), f.kind),
            (user, FailureKind::WrongPassword)
        );
    }
    // User names are lower-cased (the default), as for PLAIN.
    assert_eq!(
        logged_in_as(scram_login(
            &auth,
            Mechanism::ScramSha256,
            "SCRAM256",
            b"pencil"
        )),
        "scram256"
    );
}

#[test]
fn scram_refuses_what_cannot_serve_it() {
    let dir = tempfile::tempdir().unwrap();
    let auth = authenticator(dir.path(), "", all_mechanisms());
    // Keys of the other hash, and a one-way hash: the exchange runs, the login fails.
    for (mechanism, user) in [
        (Mechanism::ScramSha1, "scram256"),
        (Mechanism::ScramSha256, "scram1"),
        (Mechanism::ScramSha256, "hashed"),
    ] {
        let f = failure(scram_login(&auth, mechanism, user, b"pencil"));
        assert_eq!(f.kind, FailureKind::WrongPassword, "{mechanism} {user}");
    }
    let f = failure(scram_login(
        &auth,
        Mechanism::ScramSha256,
        "nobody",
        b"pencil",
    ));
    assert_eq!(f.kind, FailureKind::UnknownUser);
}

#[test]
fn scram_unknown_users_look_like_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let auth = authenticator(dir.path(), "", all_mechanisms());
    let server_first = |user: &str| {
        let mut exchange = auth.start(Mechanism::ScramSha256).unwrap();
        let first = challenge(exchange.step(Some(format!("n,,n={user},r=abc").as_bytes())));
        let first = String::from_utf8(first).unwrap();
        first[first.find(",s=").unwrap()..].to_owned()
    };
    // The same salt each time, as for a user with stored keys, and the default count.
    assert_eq!(server_first("nobody"), server_first("nobody"));
    assert_ne!(server_first("nobody"), server_first("someone-else"));
    assert!(server_first("nobody").ends_with(",i=4096"));
    assert_eq!(server_first("scram256"), server_first("scram256"));
}

#[test]
fn cram_md5_needs_a_plaintext_password() {
    let dir = tempfile::tempdir().unwrap();
    let auth = authenticator(dir.path(), "", all_mechanisms());
    assert_eq!(logged_in_as(cram_login(&auth, "plain", b"pencil")), "plain");
    assert_eq!(
        failure(cram_login(&auth, "plain", b"pencil2")).kind,
        FailureKind::WrongPassword
    );
    for user in ["scram256", "hashed"] {
        assert_eq!(
            failure(cram_login(&auth, user, b"pencil")).kind,
            FailureKind::WrongPassword
        );
    }
    assert_eq!(
        failure(cram_login(&auth, "nobody", b"pencil")).kind,
        FailureKind::UnknownUser
    );
}

#[test]
fn plain_and_login_exchanges() {
    let dir = tempfile::tempdir().unwrap();
    let auth = authenticator(dir.path(), "", all_mechanisms());
    for user in ["plain", "scram256", "scram1", "hashed"] {
        let mut exchange = auth.start(Mechanism::Plain).unwrap();
        let message = format!("\0{user}\0pencil");
        assert_eq!(logged_in_as(exchange.step(Some(message.as_bytes()))), user);
        assert_eq!(
            auth.verify_plain(user, b"pencil2").unwrap(),
            AuthOutcome::WrongPassword
        );
    }
    let mut exchange = auth.start(Mechanism::Login).unwrap();
    assert_eq!(challenge(exchange.step(None)), b"Username:");
    assert_eq!(challenge(exchange.step(Some(b"plain"))), b"Password:");
    assert_eq!(logged_in_as(exchange.step(Some(b"pencil"))), "plain");
    let mut exchange = auth.start(Mechanism::Plain).unwrap();
    let f = failure(exchange.step(Some(b"\0nobody\0pencil")));
    assert_eq!(
        (f.user.as_str(), f.kind),
        ("nobody", FailureKind::UnknownUser)
    );
}

#[test]
fn malformed_and_over_long_responses() {
    let dir = tempfile::tempdir().unwrap();
    let auth = authenticator(dir.path(), "", all_mechanisms());
    for mechanism in ALL {
        let mut exchange = auth.start(mechanism).unwrap();
        let long = vec![b'a'; auth::sasl::MAX_RESPONSE + 1];
        let first = exchange.step(None);
        assert!(matches!(first, ExchangeStep::Challenge(_)), "{mechanism}");
        assert_eq!(
            failure(exchange.step(Some(&long))).kind,
            FailureKind::Malformed(SaslError::TooLong),
            "{mechanism}"
        );
    }
    let mut exchange = auth.start(Mechanism::ScramSha256).unwrap();
    assert!(matches!(
        failure(exchange.step(Some(b"p=tls-server-end-point,,n=plain,r=x"))).kind,
        FailureKind::Malformed(_)
    ));
}

#[test]
fn disabled_mechanisms_do_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let auth = authenticator(dir.path(), "", AuthSettings::default());
    assert_eq!(auth.mechanisms(), Mechanism::PLAINTEXT);
    assert!(auth.start(Mechanism::Plain).is_some());
    for m in [
        Mechanism::CramMd5,
        Mechanism::ScramSha1,
        Mechanism::ScramSha256,
    ] {
        assert!(auth.start(m).is_none(), "{m}");
    }
}

/// A passdb that cannot give stored secrets.
struct PasswordsOnly;

impl auth::PassDb for PasswordsOnly {
    fn verify_plain(&self, _: &str, _: &[u8]) -> Result<AuthOutcome, AuthError> {
        Ok(AuthOutcome::UnknownUser)
    }
}

#[test]
fn mechanisms_the_passdb_cannot_serve_are_a_configuration_error() {
    for m in [Mechanism::CramMd5, Mechanism::ScramSha256] {
        let settings = AuthSettings {
            mechanisms: vec![Mechanism::Plain, m],
            ..AuthSettings::default()
        };
        let err = Authenticator::new(Box::new(PasswordsOnly), None, settings).unwrap_err();
        assert!(matches!(err, AuthError::Config(_)), "{err}");
    }
    let none = AuthSettings {
        mechanisms: Vec::new(),
        ..AuthSettings::default()
    };
    assert!(Authenticator::new(Box::new(PasswordsOnly), None, none).is_err());
    let doubled = AuthSettings {
        mechanisms: vec![Mechanism::Login, Mechanism::Plain, Mechanism::Login],
        ..AuthSettings::default()
    };
    let auth = Authenticator::new(Box::new(PasswordsOnly), None, doubled).unwrap();
    assert_eq!(auth.mechanisms(), [Mechanism::Login, Mechanism::Plain]);
}

#[test]
fn uid_and_gid_guards() {
    let dir = tempfile::tempdir().unwrap();
    let pw = hash(Scheme::Plain, b"pencil");
    let extra = format!("low:{pw}:999:2000\nhigh:{pw}:70000:2000\nlowgid:{pw}:2000:1\nnoid:{pw}\n");
    let settings = AuthSettings {
        uid_range: UidRange {
            first_valid_uid: 1000,
            last_valid_uid: 60000,
            first_valid_gid: 100,
            last_valid_gid: 0,
        },
        ..AuthSettings::default()
    };
    let auth = authenticator(dir.path(), &extra, settings);
    for user in ["low", "high", "lowgid"] {
        assert_eq!(
            auth.verify_plain(user, b"pencil").unwrap(),
            AuthOutcome::WrongPassword,
            "{user}"
        );
    }
    // Without a uid there is nothing to check (virtual users served as the server's user).
    assert!(matches!(
        auth.verify_plain("noid", b"pencil").unwrap(),
        AuthOutcome::Success(_)
    ));
    assert!(matches!(
        auth.verify_plain("plain", b"pencil").unwrap(),
        AuthOutcome::Success(_)
    ));
    // Root never, whatever the range.
    let open = UidRange {
        first_valid_uid: 0,
        last_valid_uid: 0,
        first_valid_gid: 0,
        last_valid_gid: 0,
    };
    let mut root = auth::UserRecord::named("root");
    root.uid = Some(0);
    assert!(open.check(&root).is_err());
    root.uid = Some(5);
    root.gid = Some(0);
    assert!(open.check(&root).is_err(), "gid 0 is refused too");
    root.gid = Some(5);
    assert!(open.check(&root).is_ok());
}

#[test]
fn user_names_no_database_could_hold() {
    let dir = tempfile::tempdir().unwrap();
    let auth = authenticator(dir.path(), "", all_mechanisms());
    for user in ["", "a/b", "a:b", "a\nb", " plain", &"x".repeat(300)] {
        assert_eq!(
            auth.verify_plain(user, b"pencil").unwrap(),
            AuthOutcome::UnknownUser,
            "{user:?}"
        );
    }
    let case_sensitive = AuthSettings {
        lowercase_usernames: false,
        ..AuthSettings::default()
    };
    let dir2 = tempfile::tempdir().unwrap();
    let path = passwd_file(dir2.path(), "");
    let system = Authenticator::new(
        Box::new(PasswdFile::new(&path)),
        Some(Box::new(PasswdUserDb)),
        case_sensitive,
    )
    .unwrap();
    // The passwd-file accepts "plain", but no system account has that name.
    assert_eq!(
        system.verify_plain("plain", b"pencil").unwrap(),
        AuthOutcome::UnknownUser
    );
}

#[test]
fn static_and_prefetch_userdbs() {
    let dir = tempfile::tempdir().unwrap();
    let path = passwd_file(dir.path(), "");
    let static_db = StaticUserDb::new("5000", "5000", Some("/var/vmail/%n".into())).unwrap();
    let auth = Authenticator::new(
        Box::new(PasswdFile::new(&path)),
        Some(Box::new(static_db)),
        AuthSettings::default(),
    )
    .unwrap();
    let AuthOutcome::Success(record) = auth.verify_plain("plain", b"pencil").unwrap() else {
        panic!()
    };
    assert_eq!((record.uid, record.gid), (Some(5000), Some(5000)));
    assert_eq!(record.home, Some(PathBuf::from("/var/vmail/plain")));
    // Prefetch: the passdb's own record.
    let auth = Authenticator::new(
        Box::new(PasswdFile::new(&path)),
        None,
        AuthSettings::default(),
    )
    .unwrap();
    let AuthOutcome::Success(record) = auth.verify_plain("plain", b"pencil").unwrap() else {
        panic!()
    };
    assert_eq!(
        (record.uid, record.home),
        (Some(2000), Some(PathBuf::from("/home/plain")))
    );
}

#[test]
fn delivery_lookups_use_the_userdb_and_the_uid_guards() {
    let dir = tempfile::tempdir().unwrap();
    let path = passwd_file(dir.path(), "root:{PLAIN}x:0:0\nlow:{PLAIN}x:10:10\n");
    let users = UserLookup::new(Box::new(PasswdFile::new(&path)), UidRange::default(), true);
    // No password is needed; names are lower-cased as at login.
    let record = users.lookup("Plain").unwrap().unwrap();
    assert_eq!(record.name, "plain");
    assert_eq!(record.uid, Some(2000));
    assert_eq!(users.lookup("nobody-here").unwrap(), None);
    assert_eq!(users.lookup("a/b").unwrap(), None);
    assert_eq!(users.lookup("").unwrap(), None);
    // A passwd-file drops uid 0 entries itself; a uid below the range is an error, so the MTA
    // keeps the message rather than bouncing it.
    assert_eq!(users.lookup("root").unwrap(), None);
    let refused = users.lookup("low");
    assert!(
        matches!(refused, Err(AuthError::Backend { .. })),
        "{refused:?}"
    );
}
