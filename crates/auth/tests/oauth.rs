//! OAUTHBEARER and XOAUTH2 through the authenticator, with a token validator that knows a few
//! tokens (the HTTP introspection client is tested against a stub endpoint in
//! crates/columba/tests/oauth2.rs): whose token it is, the error status and the client's dummy
//! response, the userdb and uid guards after a valid token, backend failures, configuration.

use std::path::Path;
use std::sync::Arc;

use auth::oauth2::{TokenStatus, TokenValidator};
use auth::passwd_file::PasswdFile;
use auth::sasl::oauth::BearerToken;
use auth::sasl::{Mechanism, SaslError};
use auth::{AuthError, AuthSettings, Authenticator, ExchangeStep, FailureKind};

struct Tokens;

impl TokenValidator for Tokens {
    fn validate(&self, token: &BearerToken) -> Result<TokenStatus, AuthError> {
        match token.expose() {
            "alice-token" => Ok(TokenStatus::Active {
                username: "Alice".into(),
            }),
            "lowuid-token" => Ok(TokenStatus::Active {
                username: "lowuid".into(),
            }),
            "ghost-token" => Ok(TokenStatus::Active {
                username: "ghost".into(),
            }),
            "badname-token" => Ok(TokenStatus::Active {
                username: "bad:name".into(),
            }),
            "down-token" => Err(AuthError::Backend {
                backend: "test",
                reason: "endpoint down".into(),
            }),
            _ => Ok(TokenStatus::Inactive {
                reason: "unknown".into(),
            }),
        }
    }

    fn scope(&self) -> Option<&str> {
        Some("mail")
    }
}

fn authenticator(dir: &Path) -> Arc<Authenticator> {
    let users = dir.join("users");
    std::fs::write(
        &users,
        "alice:{PLAIN}pw:2000:2000\nlowuid:{PLAIN}pw:500:500\n",
    )
    .unwrap();
    let settings = AuthSettings {
        mechanisms: vec![Mechanism::OAuthBearer, Mechanism::XOAuth2],
        ..AuthSettings::default()
    };
    Arc::new(
        Authenticator::with_token_validator(
            Box::new(PasswdFile::new(&users)),
            Some(Box::new(PasswdFile::new(&users))),
            settings,
            Box::new(Tokens),
        )
        .unwrap(),
    )
}

fn bearer(authzid: &str, token: &str) -> Vec<u8> {
    format!("n,{authzid},\x01auth=Bearer {token}\x01\x01").into_bytes()
}

fn failure(step: ExchangeStep) -> FailureKind {
    match step {
        ExchangeStep::Failure(f) => f.kind,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn valid_tokens_log_their_owner_in() {
    let dir = tempfile::tempdir().unwrap();
    let auth = authenticator(dir.path());
    for message in [
        bearer("", "alice-token"),
        bearer("a=alice", "alice-token"),
        bearer("a=ALICE", "alice-token"),
    ] {
        let mut e = auth.start(Mechanism::OAuthBearer).unwrap();
        match e.step(Some(&message)) {
            ExchangeStep::Success(r) => {
                assert_eq!(r.name, "alice");
                assert_eq!(r.uid, Some(2000), "the userdb's record");
            }
            other => panic!("{other:?}"),
        }
    }
    // XOAUTH2, without an initial response first.
    let mut e = auth.start(Mechanism::XOAuth2).unwrap();
    assert_eq!(e.step(None), ExchangeStep::Challenge(Vec::new()));
    assert!(matches!(
        e.step(Some(b"user=alice\x01auth=Bearer alice-token\x01\x01")),
        ExchangeStep::Success(r) if r.name == "alice"
    ));
}

#[test]
fn refused_tokens_get_the_error_status_then_fail() {
    let dir = tempfile::tempdir().unwrap();
    let auth = authenticator(dir.path());
    for (mechanism, message, status) in [
        (
            Mechanism::OAuthBearer,
            bearer("a=alice", "stale-token"),
            &br#"{"status":"invalid_token","schemes":"bearer","scope":"mail"}"#[..],
        ),
        // Another user's token.
        (
            Mechanism::OAuthBearer,
            bearer("a=bob", "alice-token"),
            br#"{"status":"invalid_token","schemes":"bearer","scope":"mail"}"#,
        ),
        (
            Mechanism::XOAuth2,
            b"user=bob\x01auth=Bearer alice-token\x01\x01".to_vec(),
            br#"{"status":"401","schemes":"bearer","scope":"mail"}"#,
        ),
        // A token naming a user no database could hold.
        (
            Mechanism::OAuthBearer,
            bearer("", "badname-token"),
            br#"{"status":"invalid_token","schemes":"bearer","scope":"mail"}"#,
        ),
    ] {
        let mut e = auth.start(mechanism).unwrap();
        assert_eq!(
            e.step(Some(&message)),
            ExchangeStep::Challenge(status.to_vec())
        );
        assert_eq!(failure(e.step(Some(b"\x01"))), FailureKind::WrongPassword);
    }
}

#[test]
fn after_a_valid_token_the_userdb_and_uid_guards_decide() {
    let dir = tempfile::tempdir().unwrap();
    let auth = authenticator(dir.path());
    // The userdb does not know the token's user.
    let mut e = auth.start(Mechanism::OAuthBearer).unwrap();
    assert_eq!(
        failure(e.step(Some(&bearer("", "ghost-token")))),
        FailureKind::UnknownUser
    );
    // A uid below first_valid_uid never logs in, whatever the token says.
    let mut e = auth.start(Mechanism::OAuthBearer).unwrap();
    assert_eq!(
        failure(e.step(Some(&bearer("", "lowuid-token")))),
        FailureKind::WrongPassword
    );
}

#[test]
fn backend_failures_and_malformed_messages() {
    let dir = tempfile::tempdir().unwrap();
    let auth = authenticator(dir.path());
    let mut e = auth.start(Mechanism::OAuthBearer).unwrap();
    assert!(matches!(
        failure(e.step(Some(&bearer("", "down-token")))),
        FailureKind::Internal(_)
    ));
    for message in [
        &b"n,,\x01auth=Bearer\x01\x01"[..],
        b"n,,\x01\x01",
        b"user=alice\x01auth=Bearer x\x01\x01",
    ] {
        let mut e = auth.start(Mechanism::OAuthBearer).unwrap();
        assert!(
            matches!(
                failure(e.step(Some(message))),
                FailureKind::Malformed(SaslError::Malformed(_))
            ),
            "{message:?}"
        );
    }
    let mut e = auth.start(Mechanism::XOAuth2).unwrap();
    let long = format!("user=alice\x01auth=Bearer {}\x01\x01", "a".repeat(10_000));
    assert_eq!(
        failure(e.step(Some(long.as_bytes()))),
        FailureKind::Malformed(SaslError::TooLong)
    );
    // Not offered: no exchange.
    assert!(auth.start(Mechanism::Plain).is_none());
}

#[test]
fn token_mechanisms_need_a_validator() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    std::fs::write(&users, "").unwrap();
    let e = Authenticator::new(
        Box::new(PasswdFile::new(&users)),
        None,
        AuthSettings {
            mechanisms: vec![Mechanism::Plain, Mechanism::XOAuth2],
            ..AuthSettings::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("XOAUTH2"), "{e}");
    assert_eq!(
        Mechanism::from_name("oauthbearer"),
        Some(Mechanism::OAuthBearer)
    );
    assert!(Mechanism::OAuthBearer.is_plaintext() && !Mechanism::XOAuth2.needs_secret());
    assert!(!format!("{:?}", BearerToken::new("alice-token")).contains("alice"));
}
