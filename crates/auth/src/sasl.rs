//! SASL mechanisms (RFC 4422) as step machines over decoded bytes.
//!
//! The protocol layer owns the framing: it base64-decodes each client response (RFC 9051
//! section 6.2.2, RFC 5034 section 4), handles the `*` cancellation and encodes the challenges
//! this module returns. A [`SaslServer`] only sees and produces raw bytes, which keeps it pure
//! and testable.
//!
//! Two kinds of mechanism:
//! * PLAIN and LOGIN carry the password itself: the exchange ends with [`SaslStep::Done`] and
//!   the caller checks the password with a passdb;
//! * CRAM-MD5 (RFC 2195) and SCRAM-SHA-1/SCRAM-SHA-256 (RFC 5802, RFC 7677) carry a proof: the
//!   machine asks for the user's stored secret with [`SaslStep::NeedSecret`], the caller looks
//!   it up and hands it to [`SaslServer::secret`], and the machine checks the proof itself,
//!   ending with [`SaslStep::Verified`].
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

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use md5::Md5;
use zeroize::Zeroizing;

pub mod oauth;

use crate::Secret;
use crate::scheme::ct_eq;
use crate::scram::{DEFAULT_ITERATIONS, ScramHash, ScramKeys};
use oauth::TokenMessage;

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
    /// CRAM-MD5, RFC 2195: needs the plaintext password on the server.
    CramMd5,
    /// SCRAM-SHA-1, RFC 5802 (without channel binding).
    ScramSha1,
    /// SCRAM-SHA-256, RFC 7677 (without channel binding).
    ScramSha256,
    /// OAUTHBEARER, RFC 7628: an OAuth 2.0 bearer token, checked by a token validator.
    OAuthBearer,
    /// XOAUTH2, Google's older form of OAUTHBEARER, which many clients still send.
    XOAuth2,
    /// EXTERNAL, RFC 4422 Appendix A: the identity established outside SASL, here by a
    /// verified TLS client certificate.
    External,
}

impl Mechanism {
    /// Every mechanism a passdb serves on its own (the token mechanisms also need a token
    /// validator: see [`Mechanism::KNOWN`]).
    pub const ALL: [Mechanism; 5] = [
        Mechanism::Plain,
        Mechanism::Login,
        Mechanism::CramMd5,
        Mechanism::ScramSha1,
        Mechanism::ScramSha256,
    ];

    /// Every supported mechanism.
    pub const KNOWN: [Mechanism; 8] = [
        Mechanism::Plain,
        Mechanism::Login,
        Mechanism::CramMd5,
        Mechanism::ScramSha1,
        Mechanism::ScramSha256,
        Mechanism::OAuthBearer,
        Mechanism::XOAuth2,
        Mechanism::External,
    ];

    /// The mechanisms any passdb can serve, in the order servers usually advertise them.
    pub const PLAINTEXT: [Mechanism; 2] = [Mechanism::Plain, Mechanism::Login];

    /// Looks a mechanism up by its registered name, case-insensitively (RFC 4422 section 3.1:
    /// mechanism names are upper-case, but matching is customarily case-insensitive, e.g.
    /// RFC 9051 section 6.2.2).
    pub fn from_name(name: &str) -> Option<Mechanism> {
        Mechanism::KNOWN
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }

    /// The registered mechanism name.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::CramMd5 => "CRAM-MD5",
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::OAuthBearer => "OAUTHBEARER",
            Mechanism::XOAuth2 => "XOAUTH2",
            Mechanism::External => "EXTERNAL",
        }
    }

    /// Whether the client sends the password itself, or a bearer token that is as good as
    /// one (RFC 7628 section 5): such mechanisms are offered only where a plaintext password
    /// may travel (TLS, loopback, or configured so; RFC 3501 6.2.3).
    pub fn is_plaintext(self) -> bool {
        matches!(
            self,
            Mechanism::Plain | Mechanism::Login | Mechanism::OAuthBearer | Mechanism::XOAuth2
        )
    }

    /// Whether the server needs the user's stored secret (plaintext or SCRAM keys), which only
    /// some passdbs can provide.
    pub fn needs_secret(self) -> bool {
        matches!(
            self,
            Mechanism::CramMd5 | Mechanism::ScramSha1 | Mechanism::ScramSha256
        )
    }

    /// Whether the client sends an OAuth 2.0 bearer token, which a token validator checks.
    pub fn needs_token(self) -> bool {
        matches!(self, Mechanism::OAuthBearer | Mechanism::XOAuth2)
    }

    /// The hash of a SCRAM mechanism.
    pub fn scram_hash(self) -> Option<ScramHash> {
        match self {
            Mechanism::ScramSha1 => Some(ScramHash::Sha1),
            Mechanism::ScramSha256 => Some(ScramHash::Sha256),
            _ => None,
        }
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a successful PLAIN or LOGIN exchange yields: the identities and the password, still to
/// be checked against a password database. `Debug` never shows the password, and it is wiped
/// when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The authorization identity when the client named one. Without proxy authorization it is
    /// always equal to `authcid` (RFC 4616 section 2: the server verifies that the credentials
    /// permit acting as it).
    pub authzid: Option<String>,
    /// The authentication identity (user name) as the client sent it.
    pub authcid: String,
    /// The password bytes (never empty, never containing NUL).
    pub password: Zeroizing<Vec<u8>>,
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
    /// The client's proof does not match the stored secret: a wrong password.
    #[error("wrong password (the proof does not match)")]
    WrongProof,
    /// No secret this mechanism can use is stored for the user (unknown user, or a one-way
    /// hash).
    #[error("no usable secret stored for this user")]
    NoSecret,
    /// A response while the machine waited for [`SaslServer::secret`], or a secret it did not
    /// ask for: a bug in the caller.
    #[error("SASL step out of turn")]
    OutOfTurn,
}

/// What the token validator said about the token of a [`SaslStep::NeedToken`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenVerdict {
    /// The token is active and belongs to `user` (who is the user the client named, if any).
    Valid { user: String },
    /// Inactive, expired, unknown, or another user's: the client gets the error status, with
    /// the scope it should ask for when one is configured.
    Rejected { scope: Option<String> },
}

/// The outcome of one [`SaslServer::step`] or [`SaslServer::secret`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslStep {
    /// Send this challenge (raw bytes; the protocol base64-encodes it) and await a response.
    Challenge(Vec<u8>),
    /// PLAIN or LOGIN is complete; check the credentials.
    Done(Credentials),
    /// Look up the stored secret of `authcid` and pass it to [`SaslServer::secret`] (`None`
    /// when there is none: the exchange then fails, for SCRAM only after the client's proof,
    /// so that it cannot tell unknown users from wrong passwords).
    NeedSecret { authcid: String },
    /// EXTERNAL is complete: the client asks to act as `authzid` (`None`: as whoever the
    /// external authentication established). The caller compares it with that identity.
    External { authzid: Option<String> },
    /// OAUTHBEARER or XOAUTH2: check this token (and that it belongs to the user the client
    /// named, if it named one) and pass the verdict to [`SaslServer::token_checked`].
    NeedToken(TokenMessage),
    /// CRAM-MD5, SCRAM or a token mechanism is complete and the proof matched the secret (the
    /// token was valid): `authcid` is authenticated (its user record is still to be looked up).
    Verified { authcid: String },
    /// The exchange failed; further steps fail with [`SaslError::Finished`].
    Failed(SaslError),
}

/// A SCRAM exchange once the client-first message is parsed (RFC 5802 section 7).
#[derive(Clone)]
struct ScramFirst {
    hash: ScramHash,
    /// `gs2-header`, which the client-final message's `c=` must repeat.
    gs2_header: String,
    client_first_bare: String,
    client_nonce: String,
    authcid: String,
}

/// A SCRAM exchange once the server-first message is sent.
#[derive(Clone)]
struct ScramSent {
    first: ScramFirst,
    server_first: String,
    /// Client and server nonce, which the client-final message's `r=` must repeat.
    nonce: String,
    keys: ScramKeys,
    /// The keys were made up (no usable secret): no proof can match.
    fake: bool,
}

#[derive(Clone)]
enum State {
    /// Nothing received yet.
    Start,
    /// PLAIN: sent the empty challenge, awaiting the message.
    PlainAwaitMessage,
    /// LOGIN: sent `Username:`.
    LoginAwaitUser,
    /// LOGIN: sent `Password:`, holding the user name.
    LoginAwaitPassword(String),
    /// CRAM-MD5: sent the challenge.
    CramAwaitResponse { challenge: Vec<u8> },
    /// CRAM-MD5: awaiting the secret to check the digest with.
    CramAwaitSecret {
        challenge: Vec<u8>,
        authcid: String,
        digest: Vec<u8>,
    },
    /// SCRAM: sent an empty challenge, awaiting the client-first message.
    ScramAwaitFirst,
    /// SCRAM: awaiting the secret.
    ScramAwaitSecret(Box<ScramFirst>),
    /// SCRAM: sent the server-first message, awaiting the client-final one.
    ScramAwaitFinal(Box<ScramSent>),
    /// SCRAM: sent the server-final message (`v=`), awaiting the client's empty response.
    ScramAwaitAck { authcid: String },
    /// EXTERNAL: sent an empty challenge, awaiting the authzid.
    ExternalAwaitAuthzid,
    /// OAUTHBEARER/XOAUTH2: sent an empty challenge, awaiting the client's message.
    TokenAwaitMessage,
    /// OAUTHBEARER/XOAUTH2: awaiting the verdict on the token.
    TokenAwaitVerdict,
    /// OAUTHBEARER/XOAUTH2: sent the error status, awaiting the client's dummy response
    /// (RFC 7628 section 3.2.3), after which the exchange fails.
    TokenAwaitErrorAck,
    /// Done or failed.
    Finished,
}

/// The server side of one SASL exchange.
#[derive(Clone)]
pub struct SaslServer {
    mechanism: Mechanism,
    state: State,
    /// The server's nonce (SCRAM) or whole challenge (CRAM-MD5), fixed for test vectors.
    fixed_nonce: Option<String>,
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
            fixed_nonce: None,
        }
    }

    /// A server whose random part is fixed: the SCRAM server nonce, or the whole CRAM-MD5
    /// challenge. For test vectors only: a predictable nonce makes replays possible.
    pub fn with_fixed_nonce(mechanism: Mechanism, nonce: &str) -> SaslServer {
        SaslServer {
            fixed_nonce: Some(nonce.to_owned()),
            ..SaslServer::new(mechanism)
        }
    }

    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Whether the exchange has ended (with [`SaslStep::Done`], [`SaslStep::Verified`] or
    /// [`SaslStep::Failed`]).
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
            (
                State::CramAwaitSecret { .. }
                | State::ScramAwaitSecret(_)
                | State::TokenAwaitVerdict,
                _,
            ) => self.fail(SaslError::OutOfTurn),
            (State::TokenAwaitMessage, Some(message)) => self.token_message(message),
            (State::ExternalAwaitAuthzid, Some(authzid)) => self.external(authzid),
            // RFC 7628 section 3.2.3: the client answers the error status with a kvsep (XOAUTH2
            // clients with an empty response); whatever it sends, the exchange has failed.
            (State::TokenAwaitErrorAck, Some(_)) => self.fail(SaslError::WrongProof),
            (State::Start, response) => self.start(response),
            (State::PlainAwaitMessage, Some(message)) => self.finish(parse_plain(message)),
            // An initial response to LOGIN is the user name (as Dovecot accepts it).
            (State::LoginAwaitUser, Some(user)) => self.login_user(user),
            (State::LoginAwaitPassword(user), Some(password)) => {
                self.finish(check_password(password).map(|()| Credentials {
                    authzid: None,
                    authcid: user,
                    password: Zeroizing::new(password.to_vec()),
                }))
            }
            (State::CramAwaitResponse { challenge }, Some(response)) => {
                match parse_cram(response) {
                    Ok((authcid, digest)) => {
                        self.state = State::CramAwaitSecret {
                            challenge,
                            authcid: authcid.clone(),
                            digest,
                        };
                        SaslStep::NeedSecret { authcid }
                    }
                    Err(e) => self.fail(e),
                }
            }
            (State::ScramAwaitFirst, Some(message)) => self.scram_first(message),
            (State::ScramAwaitFinal(sent), Some(message)) => self.scram_final(*sent, message),
            (State::ScramAwaitAck { authcid }, Some(b"")) => SaslStep::Verified { authcid },
            (State::ScramAwaitAck { .. }, Some(_)) => {
                self.fail(SaslError::Malformed("expected an empty response"))
            }
            (_, None) => self.fail(SaslError::Malformed("missing response")),
        }
    }

    /// Hands the machine the stored secret it asked for with [`SaslStep::NeedSecret`]: `None`
    /// when the user is unknown or has no usable secret.
    pub fn secret(&mut self, secret: Option<Secret>) -> SaslStep {
        let state = std::mem::replace(&mut self.state, State::Finished);
        match (state, secret) {
            (
                State::CramAwaitSecret {
                    challenge,
                    authcid,
                    digest,
                },
                Some(Secret::Plaintext(password)),
            ) => {
                let expected = hmac_md5(&password, &challenge);
                if ct_eq(&expected, &digest) {
                    SaslStep::Verified { authcid }
                } else {
                    SaslStep::Failed(SaslError::WrongProof)
                }
            }
            (State::CramAwaitSecret { .. }, _) => SaslStep::Failed(SaslError::NoSecret),
            (State::ScramAwaitSecret(first), secret) => self.scram_server_first(*first, secret),
            (State::Finished, _) => SaslStep::Failed(SaslError::Finished),
            _ => SaslStep::Failed(SaslError::OutOfTurn),
        }
    }

    /// The first step, with or without an initial response.
    fn start(&mut self, response: Option<&[u8]>) -> SaslStep {
        match (self.mechanism, response) {
            // RFC 4422 section 5, item 2a / RFC 4616 section 2: PLAIN is client-first; without
            // an initial response the server sends an empty challenge. SCRAM likewise.
            (Mechanism::Plain, None) => {
                self.state = State::PlainAwaitMessage;
                SaslStep::Challenge(Vec::new())
            }
            (Mechanism::Plain, Some(message)) => self.finish(parse_plain(message)),
            (Mechanism::Login, None) => {
                self.state = State::LoginAwaitUser;
                SaslStep::Challenge(LOGIN_USERNAME_CHALLENGE.to_vec())
            }
            (Mechanism::Login, Some(user)) => self.login_user(user),
            // RFC 2195 section 2: the server speaks first; an initial response has no place.
            (Mechanism::CramMd5, None) => {
                let challenge = match &self.fixed_nonce {
                    Some(fixed) => fixed.clone().into_bytes(),
                    None => cram_challenge(),
                };
                self.state = State::CramAwaitResponse {
                    challenge: challenge.clone(),
                };
                SaslStep::Challenge(challenge)
            }
            (Mechanism::CramMd5, Some(_)) => {
                self.fail(SaslError::Malformed("CRAM-MD5 takes no initial response"))
            }
            (Mechanism::ScramSha1 | Mechanism::ScramSha256, None) => {
                self.state = State::ScramAwaitFirst;
                SaslStep::Challenge(Vec::new())
            }
            (Mechanism::ScramSha1 | Mechanism::ScramSha256, Some(message)) => {
                self.scram_first(message)
            }
            // RFC 7628 section 3: client-first, as PLAIN.
            (Mechanism::OAuthBearer | Mechanism::XOAuth2, None) => {
                self.state = State::TokenAwaitMessage;
                SaslStep::Challenge(Vec::new())
            }
            (Mechanism::OAuthBearer | Mechanism::XOAuth2, Some(message)) => {
                self.token_message(message)
            }
            // RFC 4422 Appendix A.1: client-first; without an initial response the server
            // sends an empty challenge, and the response is the authzid (maybe empty).
            (Mechanism::External, None) => {
                self.state = State::ExternalAwaitAuthzid;
                SaslStep::Challenge(Vec::new())
            }
            (Mechanism::External, Some(authzid)) => self.external(authzid),
        }
    }

    /// Hands the machine the verdict on the token it asked about with [`SaslStep::NeedToken`].
    pub fn token_checked(&mut self, verdict: TokenVerdict) -> SaslStep {
        let state = std::mem::replace(&mut self.state, State::Finished);
        match (state, verdict) {
            (State::TokenAwaitVerdict, TokenVerdict::Valid { user }) => {
                SaslStep::Verified { authcid: user }
            }
            (State::TokenAwaitVerdict, TokenVerdict::Rejected { scope }) => {
                self.state = State::TokenAwaitErrorAck;
                SaslStep::Challenge(oauth::error_challenge(
                    self.mechanism == Mechanism::XOAuth2,
                    scope.as_deref(),
                ))
            }
            (State::Finished, _) => SaslStep::Failed(SaslError::Finished),
            _ => SaslStep::Failed(SaslError::OutOfTurn),
        }
    }

    /// `authzid` as RFC 4422 Appendix A.1 has it: UTF-8, possibly empty.
    fn external(&mut self, authzid: &[u8]) -> SaslStep {
        match identity(authzid, "authzid") {
            Ok(authzid) => SaslStep::External {
                authzid: Some(authzid).filter(|a| !a.is_empty()),
            },
            Err(e) => self.fail(e),
        }
    }

    fn token_message(&mut self, message: &[u8]) -> SaslStep {
        let parsed = match self.mechanism {
            Mechanism::XOAuth2 => oauth::parse_xoauth2(message),
            _ => oauth::parse_oauthbearer(message),
        };
        match parsed {
            Ok(message) => {
                self.state = State::TokenAwaitVerdict;
                SaslStep::NeedToken(message)
            }
            Err(e) => self.fail(e),
        }
    }

    fn login_user(&mut self, user: &[u8]) -> SaslStep {
        match login_user(user) {
            Ok(user) => {
                self.state = State::LoginAwaitPassword(user);
                SaslStep::Challenge(LOGIN_PASSWORD_CHALLENGE.to_vec())
            }
            Err(e) => self.fail(e),
        }
    }

    fn scram_first(&mut self, message: &[u8]) -> SaslStep {
        let Some(hash) = self.mechanism.scram_hash() else {
            return self.fail(SaslError::OutOfTurn);
        };
        match parse_scram_first(hash, message) {
            Ok(first) => {
                let authcid = first.authcid.clone();
                self.state = State::ScramAwaitSecret(Box::new(first));
                SaslStep::NeedSecret { authcid }
            }
            Err(e) => self.fail(e),
        }
    }

    /// Sends `r=<client nonce><server nonce>,s=<salt>,i=<iterations>` (RFC 5802 section 5.1).
    /// Without a usable secret the exchange goes on with made-up keys and fails at the proof.
    fn scram_server_first(&mut self, first: ScramFirst, secret: Option<Secret>) -> SaslStep {
        let (keys, fake) = match secret {
            Some(Secret::Scram(keys)) if keys.hash == first.hash => (keys, false),
            Some(Secret::Plaintext(password)) => (
                ScramKeys::derive(
                    first.hash,
                    &password,
                    &crate::scheme::random_salt(),
                    DEFAULT_ITERATIONS,
                ),
                false,
            ),
            _ => {
                let junk = crate::scheme::random_salt();
                (ScramKeys::derive(first.hash, &junk, &junk, 1), true)
            }
        };
        let keys = if fake {
            // The iteration count a real entry would show.
            ScramKeys {
                iterations: DEFAULT_ITERATIONS,
                ..keys
            }
        } else {
            keys
        };
        let server_nonce = match &self.fixed_nonce {
            Some(fixed) => fixed.clone(),
            None => STANDARD.encode(random_bytes::<18>()),
        };
        let nonce = format!("{}{}", first.client_nonce, server_nonce);
        let server_first = format!("r={nonce},s={},i={}", keys.salt_b64, keys.iterations);
        let challenge = server_first.clone().into_bytes();
        self.state = State::ScramAwaitFinal(Box::new(ScramSent {
            first,
            server_first,
            nonce,
            keys,
            fake,
        }));
        SaslStep::Challenge(challenge)
    }

    /// Checks `c=...,r=...,p=...` (RFC 5802 section 7) and answers `v=<ServerSignature>`.
    fn scram_final(&mut self, sent: ScramSent, message: &[u8]) -> SaslStep {
        let parsed = parse_scram_final(&sent, message);
        let (without_proof, proof) = match parsed {
            Ok(parts) => parts,
            Err(e) => return self.fail(e),
        };
        let hash = sent.keys.hash;
        let auth_message = format!(
            "{},{},{}",
            sent.first.client_first_bare, sent.server_first, without_proof
        );
        let client_signature = hash.hmac(&sent.keys.stored_key, auth_message.as_bytes());
        let client_key: Zeroizing<Vec<u8>> = Zeroizing::new(
            proof
                .iter()
                .zip(client_signature.iter())
                .map(|(p, s)| p ^ s)
                .collect(),
        );
        let matched = ct_eq(&hash.hash(&client_key), &sent.keys.stored_key);
        if sent.fake {
            return self.fail(SaslError::NoSecret);
        }
        if !matched {
            return self.fail(SaslError::WrongProof);
        }
        let server_signature = hash.hmac(&sent.keys.server_key, auth_message.as_bytes());
        self.state = State::ScramAwaitAck {
            authcid: sent.first.authcid,
        };
        SaslStep::Challenge(format!("v={}", STANDARD.encode(&*server_signature)).into_bytes())
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
        password: Zeroizing::new(password.to_vec()),
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

// ---------------------------------------------------------------------------------------------
// CRAM-MD5 (RFC 2195)

/// `<random.timestamp@hostname>`, the msg-id form RFC 2195 section 2 describes.
fn cram_challenge() -> Vec<u8> {
    let random = u64::from_le_bytes(random_bytes::<8>());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("<{random}.{now}@{}>", hostname()).into_bytes()
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let name = if rc == 0 {
        std::ffi::CStr::from_bytes_until_nul(&buf)
            .ok()
            .and_then(|c| c.to_str().ok())
            .unwrap_or("")
    } else {
        ""
    };
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b'>') {
        "localhost".to_owned()
    } else {
        name.to_owned()
    }
}

/// `user SP digest`: the digest is 32 hex digits after the last space (user names may hold
/// spaces, as Dovecot's parser allows).
fn parse_cram(response: &[u8]) -> Result<(String, Vec<u8>), SaslError> {
    let space = response
        .iter()
        .rposition(|&b| b == b' ')
        .ok_or(SaslError::Malformed(
            "CRAM-MD5 response is not 'user digest'",
        ))?;
    let (user, digest) = (&response[..space], &response[space + 1..]);
    let user = login_user(user)?;
    let digest = std::str::from_utf8(digest)
        .ok()
        .filter(|d| d.len() == 32)
        .and_then(crate::scheme::hex_decode)
        .ok_or(SaslError::Malformed("CRAM-MD5 digest is not 32 hex digits"))?;
    Ok((user, digest))
}

/// The client's CRAM-MD5 response, `user SP hex(HMAC-MD5(password, challenge))`: for tests
/// and diagnostic tools.
pub fn cram_md5_response(user: &str, password: &[u8], challenge: &[u8]) -> Vec<u8> {
    let digest = crate::scheme::hex_encode(&hmac_md5(password, challenge));
    format!("{user} {digest}").into_bytes()
}

fn hmac_md5(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length.
    match <Hmac<Md5> as Mac>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// SCRAM (RFC 5802 section 7)

/// The two fields of a `gs2-header = gs2-cbind-flag "," [authzid] ","` (RFC 5801 section 4),
/// as SCRAM and OAUTHBEARER begin: the authzid, if any. Channel binding is refused: no
/// `-PLUS` mechanism is offered.
fn gs2_header(cbind: &str, authzid: &str) -> Result<Option<String>, SaslError> {
    match cbind {
        // "y": the client could bind but thinks the server cannot, which is true here.
        "n" | "y" => {}
        c if c.starts_with("p=") => {
            return Err(SaslError::Malformed("channel binding is not supported"));
        }
        _ => return Err(SaslError::Malformed("invalid channel binding flag")),
    }
    match authzid {
        "" => Ok(None),
        a => match a.strip_prefix("a=") {
            Some(name) if !name.is_empty() => Ok(Some(saslname(name)?)),
            _ => Err(SaslError::Malformed("invalid authzid in the GS2 header")),
        },
    }
}

/// `client-first-message = gs2-header client-first-message-bare`, where
/// `gs2-header = gs2-cbind-flag "," [authzid] ","` and
/// `client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]`.
fn parse_scram_first(hash: ScramHash, message: &[u8]) -> Result<ScramFirst, SaslError> {
    let text = std::str::from_utf8(message)
        .map_err(|_| SaslError::Malformed("SCRAM message is not UTF-8"))?;
    let mut parts = text.splitn(3, ',');
    let (Some(cbind), Some(authzid), Some(bare)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed(
            "SCRAM client-first message lacks its GS2 header",
        ));
    };
    let authzid = gs2_header(cbind, authzid)?;
    if bare.starts_with("m=") {
        return Err(SaslError::Malformed(
            "SCRAM mandatory extensions are not supported",
        ));
    }
    let mut fields = bare.split(',');
    let user = fields
        .next()
        .and_then(|f| f.strip_prefix("n="))
        .ok_or(SaslError::Malformed("SCRAM username missing"))?;
    let nonce = fields
        .next()
        .and_then(|f| f.strip_prefix("r="))
        .ok_or(SaslError::Malformed("SCRAM nonce missing"))?;
    let authcid = saslname(user)?;
    if authcid.is_empty() {
        return Err(SaslError::Malformed("empty SCRAM username"));
    }
    if nonce.is_empty()
        || !nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
    {
        return Err(SaslError::Malformed("invalid SCRAM nonce"));
    }
    if let Some(a) = &authzid
        && *a != authcid
    {
        return Err(SaslError::AuthzidNotPermitted);
    }
    Ok(ScramFirst {
        hash,
        gs2_header: text[..text.len() - bare.len()].to_owned(),
        client_first_bare: bare.to_owned(),
        client_nonce: nonce.to_owned(),
        authcid,
    })
}

/// `saslname`: `,` and `=` escaped as `=2C` and `=3D`; any other `=` fails (RFC 5802 section
/// 5.1). The result is an identity like PLAIN's.
fn saslname(escaped: &str) -> Result<String, SaslError> {
    let mut out = Vec::with_capacity(escaped.len());
    let bytes = escaped.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'=' => {
                match bytes.get(i + 1..i + 3) {
                    Some(b"2C") => out.push(b','),
                    Some(b"3D") => out.push(b'='),
                    _ => return Err(SaslError::Malformed("invalid escape in SCRAM username")),
                }
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    identity(&out, "authcid")
}

/// `client-final-message = channel-binding "," nonce ["," extensions] "," proof`: returns the
/// message without its proof (part of AuthMessage) and the decoded proof.
fn parse_scram_final<'m>(
    sent: &ScramSent,
    message: &'m [u8],
) -> Result<(&'m str, Vec<u8>), SaslError> {
    let text = std::str::from_utf8(message)
        .map_err(|_| SaslError::Malformed("SCRAM message is not UTF-8"))?;
    let (without_proof, proof) = text
        .rsplit_once(",p=")
        .ok_or(SaslError::Malformed("SCRAM proof missing"))?;
    let mut fields = without_proof.split(',');
    let binding = fields
        .next()
        .and_then(|f| f.strip_prefix("c="))
        .ok_or(SaslError::Malformed("SCRAM channel binding missing"))?;
    let nonce = fields
        .next()
        .and_then(|f| f.strip_prefix("r="))
        .ok_or(SaslError::Malformed("SCRAM nonce missing"))?;
    if STANDARD.decode(binding).ok().as_deref() != Some(sent.first.gs2_header.as_bytes()) {
        return Err(SaslError::Malformed("SCRAM channel binding does not match"));
    }
    if nonce != sent.nonce {
        return Err(SaslError::Malformed("SCRAM nonce does not match"));
    }
    // Extensions are ignored, as RFC 5802 section 7 asks; each must still look like one.
    if !fields
        .all(|f| f.len() >= 2 && f.as_bytes()[0].is_ascii_alphabetic() && f.as_bytes()[1] == b'=')
    {
        return Err(SaslError::Malformed("invalid SCRAM extension"));
    }
    let proof = STANDARD
        .decode(proof)
        .ok()
        .filter(|p| p.len() == sent.keys.hash.digest_len())
        .ok_or(SaslError::Malformed("SCRAM proof is not a base64 digest"))?;
    Ok((without_proof, proof))
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    if getrandom::getrandom(&mut buf).is_err() {
        // Without the OS generator, fall back to the clock: a nonce must be unique, and this
        // one still is per exchange; it only becomes guessable.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        for (b, n) in buf.iter_mut().zip(nanos.to_le_bytes().iter().cycle()) {
            *b = *n;
        }
    }
    buf
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
            password: password.to_vec().into(),
        }
    }

    #[test]
    fn mechanism_names() {
        assert_eq!(Mechanism::from_name("plain"), Some(Mechanism::Plain));
        assert_eq!(Mechanism::from_name("PLAIN"), Some(Mechanism::Plain));
        assert_eq!(Mechanism::from_name("LoGiN"), Some(Mechanism::Login));
        assert_eq!(Mechanism::from_name("cram-md5"), Some(Mechanism::CramMd5));
        assert_eq!(
            Mechanism::from_name("SCRAM-SHA-256"),
            Some(Mechanism::ScramSha256)
        );
        assert_eq!(
            Mechanism::from_name("scram-sha-1"),
            Some(Mechanism::ScramSha1)
        );
        assert_eq!(Mechanism::from_name("SCRAM-SHA-256-PLUS"), None);
        assert_eq!(Mechanism::from_name("DIGEST-MD5"), None);
        assert_eq!(Mechanism::from_name(""), None);
        for m in Mechanism::ALL {
            assert_eq!(Mechanism::from_name(m.name()), Some(m));
            assert_eq!(m.is_plaintext(), !m.needs_secret());
        }
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
        assert_eq!(
            done(s.step(Some(b"\0j\0p\xe4ss"))).password[..],
            b"p\xe4ss"[..]
        );
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

    // -----------------------------------------------------------------------------------------
    // CRAM-MD5

    fn plaintext(pw: &[u8]) -> Option<Secret> {
        Some(Secret::Plaintext(Zeroizing::new(pw.to_vec())))
    }

    #[test]
    fn cram_md5_rfc_2195_example() {
        let challenge = "<1896.697170952@postoffice.reston.mci.net>";
        let mut s = SaslServer::with_fixed_nonce(Mechanism::CramMd5, challenge);
        assert_eq!(
            s.step(None),
            SaslStep::Challenge(challenge.as_bytes().to_vec())
        );
        assert_eq!(
            s.step(Some(b"tim b913a602c7eda7a495b4e6e7334d3890")),
            SaslStep::NeedSecret {
                authcid: "tim".into()
            }
        );
        assert_eq!(
            s.secret(plaintext(b"tanstaaftanstaaf")),
            SaslStep::Verified {
                authcid: "tim".into()
            }
        );
        assert!(s.is_finished());
        assert_eq!(
            cram_md5_response("tim", b"tanstaaftanstaaf", challenge.as_bytes()),
            b"tim b913a602c7eda7a495b4e6e7334d3890"
        );
        // Upper-case hex is the same digest.
        let mut s = SaslServer::with_fixed_nonce(Mechanism::CramMd5, challenge);
        let _ = s.step(None);
        let _ = s.step(Some(b"tim B913A602C7EDA7A495B4E6E7334D3890"));
        assert!(matches!(
            s.secret(plaintext(b"tanstaaftanstaaf")),
            SaslStep::Verified { .. }
        ));
    }

    #[test]
    fn cram_md5_failures() {
        let challenge = "<1896.697170952@postoffice.reston.mci.net>";
        let start = || {
            let mut s = SaslServer::with_fixed_nonce(Mechanism::CramMd5, challenge);
            assert!(matches!(s.step(None), SaslStep::Challenge(_)));
            s
        };
        let mut s = start();
        let _ = s.step(Some(b"tim b913a602c7eda7a495b4e6e7334d3890"));
        assert_eq!(
            s.secret(plaintext(b"wrong")),
            SaslStep::Failed(SaslError::WrongProof)
        );
        let mut s = start();
        let _ = s.step(Some(b"tim b913a602c7eda7a495b4e6e7334d3890"));
        assert_eq!(s.secret(None), SaslStep::Failed(SaslError::NoSecret));
        let mut s = start();
        let _ = s.step(Some(b"tim b913a602c7eda7a495b4e6e7334d3890"));
        let keys = ScramKeys::generate(ScramHash::Sha256, b"tanstaaftanstaaf", None);
        assert_eq!(
            s.secret(Some(Secret::Scram(keys))),
            SaslStep::Failed(SaslError::NoSecret)
        );
        for bad in [
            &b"timb913a602c7eda7a495b4e6e7334d3890"[..],
            b"tim b913a602c7eda7a495b4e6e7334d389",
            b"tim b913a602c7eda7a495b4e6e7334d38900",
            b"tim z913a602c7eda7a495b4e6e7334d3890",
            b" b913a602c7eda7a495b4e6e7334d3890",
            b"t\x01m b913a602c7eda7a495b4e6e7334d3890",
            b"",
        ] {
            let mut s = start();
            assert!(
                matches!(s.step(Some(bad)), SaslStep::Failed(SaslError::Malformed(_))),
                "{bad:?}"
            );
        }
        // Server-first: no initial response.
        let mut s = SaslServer::new(Mechanism::CramMd5);
        assert!(matches!(
            s.step(Some(b"tim x")),
            SaslStep::Failed(SaslError::Malformed(_))
        ));
        // A response while the secret is awaited, a secret nobody asked for.
        let mut s = start();
        let _ = s.step(Some(b"tim b913a602c7eda7a495b4e6e7334d3890"));
        assert_eq!(s.step(Some(b"x")), SaslStep::Failed(SaslError::OutOfTurn));
        let mut s = start();
        assert_eq!(
            s.secret(plaintext(b"x")),
            SaslStep::Failed(SaslError::OutOfTurn)
        );
    }

    #[test]
    fn cram_md5_random_challenge_is_a_msg_id() {
        let mut s = SaslServer::new(Mechanism::CramMd5);
        let SaslStep::Challenge(c) = s.step(None) else {
            panic!()
        };
        let c = String::from_utf8(c).unwrap();
        assert!(
            c.starts_with('<') && c.ends_with('>') && c.contains('@'),
            "{c}"
        );
        let mut t = SaslServer::new(Mechanism::CramMd5);
        assert_ne!(t.step(None), SaslStep::Challenge(c.into_bytes()));
    }

    // -----------------------------------------------------------------------------------------
    // SCRAM

    struct Vector {
        mechanism: Mechanism,
        server_nonce: &'static str,
        salt: &'static str,
        client_first: &'static str,
        server_first: &'static str,
        client_final: &'static str,
        server_final: &'static str,
    }

    /// RFC 5802 section 5 and RFC 7677 section 3: user "user", password "pencil".
    const VECTORS: [Vector; 2] = [
        Vector {
            mechanism: Mechanism::ScramSha1,
            server_nonce: "3rfcNHYJY1ZVvWVs7j",
            salt: "QSXCR+Q6sek8bf92",
            client_first: "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
            server_first: "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
            client_final: "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
            server_final: "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
        },
        Vector {
            mechanism: Mechanism::ScramSha256,
            server_nonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            salt: "W22ZaJ0SNY7soEsUEjb6gQ==",
            client_first: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            server_first: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            client_final: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            server_final: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
        },
    ];

    fn vector_keys(v: &Vector) -> ScramKeys {
        let salt = STANDARD.decode(v.salt).unwrap();
        ScramKeys::derive(v.mechanism.scram_hash().unwrap(), b"pencil", &salt, 4096)
    }

    /// Runs a vector up to the server-first message, with `secret`.
    fn scram_to_server_first(v: &Vector, secret: Option<Secret>) -> SaslServer {
        let mut s = SaslServer::with_fixed_nonce(v.mechanism, v.server_nonce);
        assert_eq!(
            s.step(Some(v.client_first.as_bytes())),
            SaslStep::NeedSecret {
                authcid: "user".into()
            }
        );
        assert_eq!(
            s.secret(secret),
            SaslStep::Challenge(v.server_first.as_bytes().to_vec())
        );
        s
    }

    #[test]
    fn scram_rfc_vectors() {
        for v in &VECTORS {
            let mut s = scram_to_server_first(v, Some(Secret::Scram(vector_keys(v))));
            assert_eq!(
                s.step(Some(v.client_final.as_bytes())),
                SaslStep::Challenge(v.server_final.as_bytes().to_vec()),
                "{}",
                v.mechanism
            );
            assert!(!s.is_finished());
            assert_eq!(
                s.step(Some(b"")),
                SaslStep::Verified {
                    authcid: "user".into()
                }
            );
            assert!(s.is_finished());
            // Without the initial response: an empty challenge first.
            let mut s = SaslServer::with_fixed_nonce(v.mechanism, v.server_nonce);
            assert_eq!(s.step(None), SaslStep::Challenge(Vec::new()));
            assert!(matches!(
                s.step(Some(v.client_first.as_bytes())),
                SaslStep::NeedSecret { .. }
            ));
        }
    }

    #[test]
    fn scram_wrong_proofs() {
        for v in &VECTORS {
            // Keys of another password: the RFC's proof does not match.
            let salt = STANDARD.decode(v.salt).unwrap();
            let other =
                ScramKeys::derive(v.mechanism.scram_hash().unwrap(), b"pencil2", &salt, 4096);
            let mut s = scram_to_server_first(v, Some(Secret::Scram(other)));
            assert_eq!(
                s.step(Some(v.client_final.as_bytes())),
                SaslStep::Failed(SaslError::WrongProof)
            );
            // A flipped proof bit.
            let mut s = scram_to_server_first(v, Some(Secret::Scram(vector_keys(v))));
            let (head, proof) = v.client_final.rsplit_once(",p=").unwrap();
            let mut raw = STANDARD.decode(proof).unwrap();
            raw[0] ^= 1;
            let bad = format!("{head},p={}", STANDARD.encode(raw));
            assert_eq!(
                s.step(Some(bad.as_bytes())),
                SaslStep::Failed(SaslError::WrongProof)
            );
            // A non-empty answer to the server-final message.
            let mut s = scram_to_server_first(v, Some(Secret::Scram(vector_keys(v))));
            let _ = s.step(Some(v.client_final.as_bytes()));
            assert!(matches!(
                s.step(Some(b"x")),
                SaslStep::Failed(SaslError::Malformed(_))
            ));
        }
    }

    #[test]
    fn scram_without_a_secret_fails_only_at_the_proof() {
        for v in &VECTORS {
            let mut s = SaslServer::with_fixed_nonce(v.mechanism, v.server_nonce);
            let _ = s.step(Some(v.client_first.as_bytes()));
            let SaslStep::Challenge(first) = s.secret(None) else {
                panic!()
            };
            let first = String::from_utf8(first).unwrap();
            assert!(first.starts_with(&v.server_first[..v.server_first.find(",s=").unwrap()]));
            assert!(first.ends_with(",i=4096"), "{first}");
            let nonce = &first[2..first.find(",s=").unwrap()];
            let final_ = format!(
                "c=biws,r={nonce},p={}",
                STANDARD.encode(vec![0u8; v.mechanism.scram_hash().unwrap().digest_len()])
            );
            assert_eq!(
                s.step(Some(final_.as_bytes())),
                SaslStep::Failed(SaslError::NoSecret)
            );
        }
    }

    #[test]
    fn scram_from_plaintext() {
        // A plaintext secret: the server derives keys with a salt of its own; a client that
        // knows the password follows.
        let v = &VECTORS[1];
        let mut s = SaslServer::with_fixed_nonce(v.mechanism, v.server_nonce);
        let _ = s.step(Some(v.client_first.as_bytes()));
        let SaslStep::Challenge(first) = s.secret(plaintext(b"pencil")) else {
            panic!()
        };
        let first = String::from_utf8(first).unwrap();
        let (nonce, rest) = first[2..].split_once(",s=").unwrap();
        let (salt, iterations) = rest.split_once(",i=").unwrap();
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("n=user,r=rOprNGfwEbeRWgbNEkqO,{first},{without_proof}");
        let (proof, expected) = crate::scram::client_proof(
            ScramHash::Sha256,
            b"pencil",
            &STANDARD.decode(salt).unwrap(),
            iterations.parse().unwrap(),
            auth_message.as_bytes(),
        );
        let final_ = format!("{without_proof},p={}", STANDARD.encode(proof));
        let SaslStep::Challenge(server_final) = s.step(Some(final_.as_bytes())) else {
            panic!()
        };
        assert_eq!(
            server_final,
            format!("v={}", STANDARD.encode(expected)).into_bytes()
        );
    }

    #[test]
    fn scram_malformed_client_first() {
        for bad in [
            "",
            "n,,",
            "n,",
            "x,,n=user,r=abc",
            "p=tls-unique,,n=user,r=abc",
            "n,,m=ext,n=user,r=abc",
            "n,,n=user",
            "n,,r=abc,n=user",
            "n,,n=,r=abc",
            "n,,n=user,r=",
            "n,,n=us=2Xer,r=abc",
            "n,,n=user=,r=abc",
            "n,,n=us\u{1}er,r=abc",
            "n,,n=user,r=a b",
            "n,b=x,n=user,r=abc",
        ] {
            let mut s = SaslServer::new(Mechanism::ScramSha256);
            assert!(
                matches!(
                    s.step(Some(bad.as_bytes())),
                    SaslStep::Failed(SaslError::Malformed(_))
                ),
                "{bad:?}"
            );
        }
        let mut s = SaslServer::new(Mechanism::ScramSha1);
        assert!(matches!(
            s.step(Some(b"n,,n=\xff,r=abc")),
            SaslStep::Failed(SaslError::Malformed(_))
        ));
        // Proxy authorization is refused; naming oneself is fine; escapes are decoded.
        let mut s = SaslServer::new(Mechanism::ScramSha1);
        assert_eq!(
            s.step(Some(b"n,a=other,n=user,r=abc")),
            SaslStep::Failed(SaslError::AuthzidNotPermitted)
        );
        let mut s = SaslServer::new(Mechanism::ScramSha1);
        assert_eq!(
            s.step(Some(b"y,a=a=2Cb=3D,n=a=2Cb=3D,r=abc,x=ext")),
            SaslStep::NeedSecret {
                authcid: "a,b=".into()
            }
        );
        let mut s = SaslServer::new(Mechanism::ScramSha1);
        let long = format!("n,,n=user,r={}", "a".repeat(MAX_RESPONSE));
        assert_eq!(
            s.step(Some(long.as_bytes())),
            SaslStep::Failed(SaslError::TooLong)
        );
    }

    #[test]
    fn scram_malformed_client_final() {
        let v = &VECTORS[0];
        let good = v.client_final;
        let proof = &good[good.rfind(",p=").unwrap()..];
        for bad in [
            String::new(),
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j".to_owned(),
            format!("r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,c=biws{proof}"),
            format!("c=eSws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j{proof}"),
            format!("c=!!!,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j{proof}"),
            format!("c=biws,r=fyko+d2lbbFgONRv9qkxdawL{proof}"),
            format!("c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7jX{proof}"),
            format!("c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,bad{proof}"),
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=!!!!".to_owned(),
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=AAAA".to_owned(),
        ] {
            let mut s = scram_to_server_first(v, Some(Secret::Scram(vector_keys(v))));
            assert!(
                matches!(
                    s.step(Some(bad.as_bytes())),
                    SaslStep::Failed(SaslError::Malformed(_))
                ),
                "{bad:?}"
            );
            assert_eq!(s.step(Some(b"")), SaslStep::Failed(SaslError::Finished));
        }
        // An extension before the proof is ignored.
        let mut s = scram_to_server_first(v, Some(Secret::Scram(vector_keys(v))));
        let with_ext = good.replace(",p=", ",x=1,p=");
        assert!(matches!(
            s.step(Some(with_ext.as_bytes())),
            SaslStep::Failed(SaslError::WrongProof)
        ));
    }
}
