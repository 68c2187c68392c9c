//! SASL mechanisms (RFC 4422) as step machines over decoded bytes.
//!
//! The protocol layer owns the framing: it base64-decodes each client response (RFC 9051
//! section 6.2.2, RFC 5034 section 4), handles the `*` cancellation and encodes the challenges
//! this module returns. A [`SaslServer`] only sees and produces raw bytes, which keeps it pure
//! and testable.
//!
//! ```
//! use auth::sasl::{Mechanism, SaslServer, SaslStep};
//! let mut sasl = SaslServer::new(Mechanism::Plain);
//! match sasl.step(Some(b"\0alice\0secret")) {
//!     SaslStep::Done(c) => assert_eq!((c.authcid.as_str(), &c.password[..]), ("alice", &b"secret"[..])),
//!     other => panic!("{other:?}"),
//! }
//! ```

use std::fmt;

/// The largest client response accepted, in decoded bytes. RFC 4616 section 2 requires at least
/// 255 octets per field; anything near this limit is abuse.
pub const MAX_RESPONSE: usize = 8 * 1024;

/// A supported SASL mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// PLAIN, RFC 4616.
    Plain,
    /// LOGIN, draft-murchison-sasl-login (obsolete but still used by some clients).
    Login,
}

impl Mechanism {
    /// Every supported mechanism, in the order servers usually advertise them.
    pub const ALL: [Mechanism; 2] = [Mechanism::Plain, Mechanism::Login];

    /// Looks a mechanism up by its registered name, case-insensitively (RFC 4422 section 3.1:
    /// mechanism names are upper-case, but matching is customarily case-insensitive, e.g.
    /// RFC 9051 section 6.2.2).
    pub fn from_name(name: &str) -> Option<Mechanism> {
        Mechanism::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }

    /// The registered mechanism name.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
        }
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a successful exchange yields: the identities and the password, still to be checked
/// against a password database. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The authorization identity when the client named one. Without proxy authorization it is
    /// always equal to `authcid` (RFC 4616 section 2: the server verifies that the credentials
    /// permit acting as it).
    pub authzid: Option<String>,
    /// The authentication identity (user name) as the client sent it.
    pub authcid: String,
    /// The password bytes (never empty, never containing NUL).
    pub password: Vec<u8>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("authzid", &self.authzid)
            .field("authcid", &self.authcid)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Why an exchange failed. The protocol layer answers all of these with a plain `NO`/`-ERR`
/// (RFC 4422 section 3.6 leaves the outcome message to the protocol).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    /// A response longer than [`MAX_RESPONSE`] bytes.
    #[error("SASL response longer than {MAX_RESPONSE} bytes")]
    TooLong,
    /// A response that does not follow the mechanism's syntax.
    #[error("malformed SASL response: {0}")]
    Malformed(&'static str),
    /// An authorization identity other than the authentication identity (no proxy
    /// authorization).
    #[error("authorization identity not permitted")]
    AuthzidNotPermitted,
    /// A step after the exchange had already ended.
    #[error("SASL exchange already finished")]
    Finished,
}

/// The outcome of one [`SaslServer::step`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslStep {
    /// Send this challenge (raw bytes; the protocol base64-encodes it) and await a response.
    Challenge(Vec<u8>),
    /// The exchange is complete; check the credentials.
    Done(Credentials),
    /// The exchange failed; further steps fail with [`SaslError::Finished`].
    Failed(SaslError),
}

#[derive(Debug, Clone)]
enum State {
    /// Nothing received yet.
    Start,
    /// PLAIN: sent the empty challenge, awaiting the message.
    PlainAwaitMessage,
    /// LOGIN: sent `Username:`.
    LoginAwaitUser,
    /// LOGIN: sent `Password:`, holding the user name.
    LoginAwaitPassword(String),
    /// Done or failed.
    Finished,
}

/// The server side of one SASL exchange.
#[derive(Clone)]
pub struct SaslServer {
    mechanism: Mechanism,
    state: State,
}

impl fmt::Debug for SaslServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslServer")
            .field("mechanism", &self.mechanism)
            .finish_non_exhaustive()
    }
}

/// LOGIN's challenges, as sent by Dovecot, Cyrus and most servers (draft-murchison-sasl-login
/// section 2 notes that clients ignore their content).
pub const LOGIN_USERNAME_CHALLENGE: &[u8] = b"Username:";
/// See [`LOGIN_USERNAME_CHALLENGE`].
pub const LOGIN_PASSWORD_CHALLENGE: &[u8] = b"Password:";

impl SaslServer {
    pub fn new(mechanism: Mechanism) -> SaslServer {
        SaslServer {
            mechanism,
            state: State::Start,
        }
    }

    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Whether the exchange has ended (with [`SaslStep::Done`] or [`SaslStep::Failed`]).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished)
    }

    /// Advances the exchange. The first call carries the initial response (RFC 4422 section 4,
    /// item 3, SASL-IR): `None` when the client gave none, `Some(b"")` when it gave an empty one.
    /// Later calls carry the client's response to the previous challenge.
    pub fn step(&mut self, response: Option<&[u8]>) -> SaslStep {
        if self.is_finished() {
            return SaslStep::Failed(SaslError::Finished);
        }
        if response.is_some_and(|r| r.len() > MAX_RESPONSE) {
            return self.fail(SaslError::TooLong);
        }
        let state = std::mem::replace(&mut self.state, State::Finished);
        match (state, response) {
            (State::Finished, _) => SaslStep::Failed(SaslError::Finished),
            // RFC 4422 section 5, item 2a / RFC 4616 section 2: PLAIN is client-first; without
            // an initial response the server sends an empty challenge.
            (State::Start, None) if self.mechanism == Mechanism::Plain => {
                self.state = State::PlainAwaitMessage;
                SaslStep::Challenge(Vec::new())
            }
            (State::Start, Some(message)) if self.mechanism == Mechanism::Plain => {
                self.finish(parse_plain(message))
            }
            (State::PlainAwaitMessage, Some(message)) => self.finish(parse_plain(message)),
            (State::Start, None) => {
                self.state = State::LoginAwaitUser;
                SaslStep::Challenge(LOGIN_USERNAME_CHALLENGE.to_vec())
            }
            // An initial response to LOGIN is the user name (as Dovecot accepts it).
            (State::Start | State::LoginAwaitUser, Some(user)) => match login_user(user) {
                Ok(user) => {
                    self.state = State::LoginAwaitPassword(user);
                    SaslStep::Challenge(LOGIN_PASSWORD_CHALLENGE.to_vec())
                }
                Err(e) => self.fail(e),
            },
            (State::LoginAwaitPassword(user), Some(password)) => {
                self.finish(check_password(password).map(|()| Credentials {
                    authzid: None,
                    authcid: user,
                    password: password.to_vec(),
                }))
            }
            (_, None) => self.fail(SaslError::Malformed("missing response")),
        }
    }

    fn finish(&mut self, result: Result<Credentials, SaslError>) -> SaslStep {
        self.state = State::Finished;
        match result {
            Ok(credentials) => SaslStep::Done(credentials),
            Err(e) => SaslStep::Failed(e),
        }
    }

    fn fail(&mut self, error: SaslError) -> SaslStep {
        self.state = State::Finished;
        SaslStep::Failed(error)
    }
}

/// `message = [authzid] UTF8NUL authcid UTF8NUL passwd` (RFC 4616 section 2).
fn parse_plain(message: &[u8]) -> Result<Credentials, SaslError> {
    let mut parts = message.splitn(3, |&b| b == 0);
    let (Some(authzid), Some(authcid), Some(password)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed(
            "PLAIN message needs two NUL separators",
        ));
    };
    // splitn leaves any further NUL inside the password, which SAFE forbids.
    check_password(password)?;
    let authcid = identity(authcid, "authcid")?;
    if authcid.is_empty() {
        return Err(SaslError::Malformed("empty authcid"));
    }
    let authzid = identity(authzid, "authzid")?;
    let authzid = if authzid.is_empty() {
        None
    } else if authzid == authcid {
        Some(authzid)
    } else {
        return Err(SaslError::AuthzidNotPermitted);
    };
    Ok(Credentials {
        authzid,
        authcid,
        password: password.to_vec(),
    })
}

/// An identity: UTF-8 (RFC 4616 section 2, `SAFE`), and — our preparation step, which section
/// 2 leaves to the server — free of control characters, so names stay safe to log and to store.
fn identity(bytes: &[u8], what: &'static str) -> Result<String, SaslError> {
    let text = std::str::from_utf8(bytes).map_err(|_| {
        SaslError::Malformed(match what {
            "authzid" => "authzid is not UTF-8",
            _ => "authcid is not UTF-8",
        })
    })?;
    if text.chars().any(char::is_control) {
        return Err(SaslError::Malformed(match what {
            "authzid" => "control character in authzid",
            _ => "control character in authcid",
        }));
    }
    Ok(text.to_owned())
}

fn login_user(bytes: &[u8]) -> Result<String, SaslError> {
    let user = identity(bytes, "authcid")?;
    if user.is_empty() {
        return Err(SaslError::Malformed("empty user name"));
    }
    Ok(user)
}

/// `passwd = 1*SAFE` (RFC 4616 section 2): not empty, no NUL. Its bytes need not be UTF-8:
/// legacy clients send Latin-1, and the hash comparison works on bytes (as Dovecot's does).
fn check_password(password: &[u8]) -> Result<(), SaslError> {
    if password.is_empty() {
        return Err(SaslError::Malformed("empty password"));
    }
    if password.contains(&0) {
        return Err(SaslError::Malformed("NUL in password"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(step: SaslStep) -> Credentials {
        match step {
            SaslStep::Done(c) => c,
            other => panic!("expected Done, got {other:?}"),
        }
    }

    fn failed(step: SaslStep) -> SaslError {
        match step {
            SaslStep::Failed(e) => e,
            other => panic!("expected Failed, got {other:?}"),
        }
    }

    fn creds(authzid: Option<&str>, authcid: &str, password: &[u8]) -> Credentials {
        Credentials {
            authzid: authzid.map(str::to_owned),
            authcid: authcid.to_owned(),
            password: password.to_vec(),
        }
    }

    #[test]
    fn mechanism_names() {
        assert_eq!(Mechanism::from_name("plain"), Some(Mechanism::Plain));
        assert_eq!(Mechanism::from_name("PLAIN"), Some(Mechanism::Plain));
        assert_eq!(Mechanism::from_name("LoGiN"), Some(Mechanism::Login));
        assert_eq!(Mechanism::from_name("CRAM-MD5"), None);
        assert_eq!(Mechanism::from_name(""), None);
        assert_eq!(Mechanism::Plain.name(), "PLAIN");
        assert_eq!(Mechanism::Login.to_string(), "LOGIN");
    }

    #[test]
    fn plain_initial_response() {
        let mut s = SaslServer::new(Mechanism::Plain);
        assert_eq!(
            done(s.step(Some(b"\0tim\0tanstaaftanstaaf"))),
            creds(None, "tim", b"tanstaaftanstaaf")
        );
        assert!(s.is_finished());
        assert_eq!(failed(s.step(Some(b"\0tim\0x"))), SaslError::Finished);
        assert_eq!(failed(s.step(None)), SaslError::Finished);
    }

    #[test]
    fn plain_without_initial_response_sends_empty_challenge() {
        let mut s = SaslServer::new(Mechanism::Plain);
        assert_eq!(s.step(None), SaslStep::Challenge(Vec::new()));
        assert!(!s.is_finished());
        assert_eq!(
            done(s.step(Some("\0Kurt\0xipj3plmq".as_bytes()))).authcid,
            "Kurt"
        );
    }

    #[test]
    fn plain_missing_response_after_challenge_fails() {
        let mut s = SaslServer::new(Mechanism::Plain);
        assert_eq!(s.step(None), SaslStep::Challenge(Vec::new()));
        assert!(matches!(failed(s.step(None)), SaslError::Malformed(_)));
        assert_eq!(failed(s.step(Some(b"\0a\0b"))), SaslError::Finished);
    }

    #[test]
    fn plain_authzid() {
        let mut s = SaslServer::new(Mechanism::Plain);
        assert_eq!(
            done(s.step(Some(b"tim\0tim\0pw"))),
            creds(Some("tim"), "tim", b"pw")
        );
        // RFC 4616 section 4 example: Ursel acting as Kurt is proxy authorization, refused.
        let mut s = SaslServer::new(Mechanism::Plain);
        assert_eq!(
            failed(s.step(Some(b"Ursel\0Kurt\0xipj3plmq"))),
            SaslError::AuthzidNotPermitted
        );
        let mut s = SaslServer::new(Mechanism::Plain);
        assert_eq!(
            failed(s.step(Some(b"Tim\0tim\0pw"))),
            SaslError::AuthzidNotPermitted
        );
    }

    #[test]
    fn plain_utf8() {
        let mut s = SaslServer::new(Mechanism::Plain);
        let msg = "\0Jürgen\0pässwörd€😀".as_bytes();
        assert_eq!(
            done(s.step(Some(msg))),
            creds(None, "Jürgen", "pässwörd€😀".as_bytes())
        );
        // A Latin-1 password is accepted as bytes.
        let mut s = SaslServer::new(Mechanism::Plain);
        assert_eq!(done(s.step(Some(b"\0j\0p\xe4ss"))).password, b"p\xe4ss");
    }

    #[test]
    fn plain_malformed() {
        let cases: &[&[u8]] = &[
            b"",
            b"\0",
            b"tim",
            b"\0tim",
            b"\0tim\0",
            b"\0\0pw",
            b"tim\0\0pw",
            b"\0tim\0pw\0extra",
            b"\0t\xffm\0pw",
            b"\xff\0tim\0pw",
            b"\0ti\nm\0pw",
            b"\0tim\x7f\0pw",
            b"a\x01\0a\x01\0pw",
        ];
        for case in cases {
            let mut s = SaslServer::new(Mechanism::Plain);
            let e = failed(s.step(Some(case)));
            assert!(matches!(e, SaslError::Malformed(_)), "{case:?}: {e:?}");
            assert!(s.is_finished());
        }
    }

    #[test]
    fn plain_accepts_255_octet_fields_and_rejects_oversize() {
        let name = "n".repeat(255);
        let pw = "p".repeat(255);
        let msg = format!("{name}\0{name}\0{pw}");
        let mut s = SaslServer::new(Mechanism::Plain);
        assert_eq!(done(s.step(Some(msg.as_bytes()))).authcid, name);

        let mut big = b"\0user\0".to_vec();
        big.resize(MAX_RESPONSE, b'x');
        let mut s = SaslServer::new(Mechanism::Plain);
        assert_eq!(done(s.step(Some(&big))).password.len(), MAX_RESPONSE - 6);
        big.push(b'x');
        let mut s = SaslServer::new(Mechanism::Plain);
        assert_eq!(failed(s.step(Some(&big))), SaslError::TooLong);
        assert_eq!(failed(s.step(Some(b"\0a\0b"))), SaslError::Finished);

        let mut s = SaslServer::new(Mechanism::Plain);
        assert_eq!(s.step(None), SaslStep::Challenge(Vec::new()));
        assert_eq!(failed(s.step(Some(&big))), SaslError::TooLong);
    }

    #[test]
    fn login_full_exchange() {
        let mut s = SaslServer::new(Mechanism::Login);
        assert_eq!(s.step(None), SaslStep::Challenge(b"Username:".to_vec()));
        assert_eq!(
            s.step(Some(b"tim")),
            SaslStep::Challenge(b"Password:".to_vec())
        );
        assert_eq!(
            done(s.step(Some("pässwörd".as_bytes()))),
            creds(None, "tim", "pässwörd".as_bytes())
        );
        assert_eq!(failed(s.step(Some(b"x"))), SaslError::Finished);
    }

    #[test]
    fn login_initial_response_is_user_name() {
        let mut s = SaslServer::new(Mechanism::Login);
        assert_eq!(
            s.step(Some("Jürgen".as_bytes())),
            SaslStep::Challenge(b"Password:".to_vec())
        );
        assert_eq!(done(s.step(Some(b"pw"))), creds(None, "Jürgen", b"pw"));
    }

    #[test]
    fn login_malformed() {
        for user in [&b""[..], b"t\xffm", b"ti\0m", b"tim\r\n"] {
            let mut s = SaslServer::new(Mechanism::Login);
            assert!(matches!(s.step(None), SaslStep::Challenge(_)));
            assert!(
                matches!(failed(s.step(Some(user))), SaslError::Malformed(_)),
                "{user:?}"
            );
            assert_eq!(failed(s.step(Some(b"pw"))), SaslError::Finished);
        }
        // An empty initial response is an empty user name.
        let mut s = SaslServer::new(Mechanism::Login);
        assert!(matches!(failed(s.step(Some(b""))), SaslError::Malformed(_)));
        for pw in [&b""[..], b"p\0w"] {
            let mut s = SaslServer::new(Mechanism::Login);
            assert!(matches!(s.step(Some(b"tim")), SaslStep::Challenge(_)));
            assert!(
                matches!(failed(s.step(Some(pw))), SaslError::Malformed(_)),
                "{pw:?}"
            );
        }
        let mut s = SaslServer::new(Mechanism::Login);
        assert!(matches!(s.step(None), SaslStep::Challenge(_)));
        assert!(matches!(failed(s.step(None)), SaslError::Malformed(_)));
        let mut s = SaslServer::new(Mechanism::Login);
        assert!(matches!(s.step(Some(b"tim")), SaslStep::Challenge(_)));
        assert!(matches!(failed(s.step(None)), SaslError::Malformed(_)));
    }

    #[test]
    fn login_too_long() {
        let long = vec![b'a'; MAX_RESPONSE + 1];
        let mut s = SaslServer::new(Mechanism::Login);
        assert_eq!(failed(s.step(Some(&long))), SaslError::TooLong);
        let mut s = SaslServer::new(Mechanism::Login);
        assert!(matches!(s.step(Some(b"tim")), SaslStep::Challenge(_)));
        assert_eq!(failed(s.step(Some(&long))), SaslError::TooLong);
        assert_eq!(failed(s.step(Some(b"pw"))), SaslError::Finished);
    }

    #[test]
    fn debug_redacts_password() {
        let c = creds(None, "tim", b"hunter2");
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        let mut s = SaslServer::new(Mechanism::Login);
        let _ = s.step(Some(b"tim"));
        assert!(!format!("{s:?}").contains("tim"));
    }
}
