//! The authenticator: one passdb and one userdb joined as Dovecot joins them, the uid guards,
//! and SASL exchanges that look up what their mechanism needs.
//!
//! A login goes: user name checked (and lower-cased, Dovecot's default `%Lu`) → passdb
//! (password or stored secret) → userdb (uid, gid, home; or the passdb's own record, Dovecot's
//! `prefetch`) → uid and gid inside the allowed range, never 0. Every step is a plain call that
//! may block (hashing, files, PAM, a child process): callers run it off their async threads.

use std::sync::Arc;

use crate::oauth2::{TokenStatus, TokenValidator};
use crate::passwd_file::validate_user_name;
use crate::sasl::oauth::TokenMessage;
use crate::sasl::{Mechanism, SaslError, SaslServer, SaslStep, TokenVerdict};
use crate::scram::{DEFAULT_ITERATIONS, ScramHash, ScramKeys};
use crate::{AuthError, AuthOutcome, CredentialLookup, PassDb, Secret, UserDb, UserRecord};

/// Which uids and gids may own mail (Dovecot's `first_valid_uid`, `last_valid_uid`,
/// `first_valid_gid`, `last_valid_gid`; 0 as a last value means no upper limit). Root (uid 0)
/// is refused whatever the range says. Only records that carry a uid or gid are checked:
/// virtual users of a passwd-file without one are served as the server's own user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UidRange {
    pub first_valid_uid: u32,
    pub last_valid_uid: u32,
    pub first_valid_gid: u32,
    pub last_valid_gid: u32,
}

impl Default for UidRange {
    /// Debian's first regular account (`FIRST_UID` of adduser, and what useradd hands out) is
    /// 1000, which keeps every system account (daemons, uid 1-999) out; Dovecot's own default
    /// is 500. Gid 0 (root's group) is refused.
    fn default() -> UidRange {
        UidRange {
            first_valid_uid: 1000,
            last_valid_uid: 0,
            first_valid_gid: 1,
            last_valid_gid: 0,
        }
    }
}

impl UidRange {
    /// Why `record` may not log in, if it may not.
    pub fn check(&self, record: &UserRecord) -> Result<(), String> {
        let outside = |id: u32, first: u32, last: u32| id < first || (last != 0 && id > last);
        if let Some(uid) = record.uid {
            if uid == 0 {
                return Err("uid 0 (root) never logs in".to_owned());
            }
            if outside(uid, self.first_valid_uid, self.last_valid_uid) {
                return Err(format!(
                    "uid {uid} is outside first_valid_uid..last_valid_uid ({}..{})",
                    self.first_valid_uid, self.last_valid_uid
                ));
            }
        }
        if let Some(gid) = record.gid
            && outside(gid, self.first_valid_gid.max(1), self.last_valid_gid)
        {
            return Err(format!(
                "gid {gid} is outside first_valid_gid..last_valid_gid ({}..{})",
                self.first_valid_gid.max(1),
                self.last_valid_gid
            ));
        }
        Ok(())
    }
}

/// `user` as the databases are asked about it (lower-cased when `lowercase`); `None` for names
/// no database could hold (empty, too long, `:`, `/`, control characters...).
fn normalized_user_name(user: &str, lowercase: bool) -> Option<String> {
    if let Err(e) = validate_user_name(user) {
        tracing::debug!("user name refused: {e}");
        return None;
    }
    Some(if lowercase {
        user.to_lowercase()
    } else {
        user.to_owned()
    })
}

/// A userdb on its own, for finding the users mail is delivered to (LMTP RCPT,
/// `columba deliver -d`): no password is checked, so no passdb is needed (and a delivery
/// agent that is not root never touches `/etc/shadow`).
pub struct UserLookup {
    userdb: Box<dyn UserDb>,
    uid_range: UidRange,
    lowercase_usernames: bool,
}

impl UserLookup {
    pub fn new(userdb: Box<dyn UserDb>, uid_range: UidRange, lowercase_usernames: bool) -> Self {
        UserLookup {
            userdb,
            uid_range,
            lowercase_usernames,
        }
    }

    /// The userdb's record of `user`; `Ok(None)` for a name no database could hold or the
    /// userdb does not know. A user the uid guards refuse (a uid outside the range) is an
    /// error, not an unknown user: the mail is for someone real who must not get it this
    /// way, and the MTA should keep it rather than bounce it.
    pub fn lookup(&self, user: &str) -> Result<Option<UserRecord>, AuthError> {
        let Some(name) = normalized_user_name(user, self.lowercase_usernames) else {
            return Ok(None);
        };
        let Some(record) = self.userdb.lookup(&name)? else {
            return Ok(None);
        };
        if let Err(reason) = self.uid_range.check(&record) {
            return Err(AuthError::Backend {
                backend: "userdb",
                reason: format!("{}: {reason}", record.name),
            });
        }
        Ok(Some(record))
    }
}

/// What an [`Authenticator`] is configured with besides its databases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    /// The SASL mechanisms to offer, in the order they are advertised.
    pub mechanisms: Vec<Mechanism>,
    pub uid_range: UidRange,
    /// Lower-case user names before any lookup (Dovecot's default `auth_username_format = %Lu`).
    pub lowercase_usernames: bool,
}

impl Default for AuthSettings {
    fn default() -> AuthSettings {
        AuthSettings {
            mechanisms: Mechanism::PLAINTEXT.to_vec(),
            uid_range: UidRange::default(),
            lowercase_usernames: true,
        }
    }
}

/// A passdb and a userdb joined.
pub struct Authenticator {
    passdb: Box<dyn PassDb>,
    /// `None`: the passdb's record is the user's record (Dovecot's `prefetch` userdb).
    userdb: Option<Box<dyn UserDb>>,
    settings: AuthSettings,
    /// Checks the bearer tokens of OAUTHBEARER and XOAUTH2.
    token_validator: Option<Box<dyn TokenValidator>>,
    /// Keys the made-up SCRAM salts of unknown users, so that they are the same each time,
    /// as a real user's are.
    fake_salt_key: [u8; 32],
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Joins `passdb` and `userdb`. Fails when a configured mechanism needs stored secrets the
    /// passdb cannot give (CRAM-MD5 and SCRAM need a passwd-file or SQL passdb), or needs a
    /// token validator (see [`Authenticator::with_token_validator`]), or none is configured.
    pub fn new(
        passdb: Box<dyn PassDb>,
        userdb: Option<Box<dyn UserDb>>,
        settings: AuthSettings,
    ) -> Result<Authenticator, AuthError> {
        Authenticator::build(passdb, userdb, settings, None)
    }

    /// [`Authenticator::new`] with a validator for the bearer tokens of OAUTHBEARER and
    /// XOAUTH2. A user a valid token names needs no passdb entry: the userdb (or, with
    /// `prefetch`, nothing) says who they are.
    pub fn with_token_validator(
        passdb: Box<dyn PassDb>,
        userdb: Option<Box<dyn UserDb>>,
        settings: AuthSettings,
        validator: Box<dyn TokenValidator>,
    ) -> Result<Authenticator, AuthError> {
        Authenticator::build(passdb, userdb, settings, Some(validator))
    }

    fn build(
        passdb: Box<dyn PassDb>,
        userdb: Option<Box<dyn UserDb>>,
        mut settings: AuthSettings,
        token_validator: Option<Box<dyn TokenValidator>>,
    ) -> Result<Authenticator, AuthError> {
        let mut seen = Vec::new();
        settings.mechanisms.retain(|m| {
            let new = !seen.contains(m);
            seen.push(*m);
            new
        });
        if settings.mechanisms.is_empty() {
            return Err(AuthError::Config("no SASL mechanism is enabled".to_owned()));
        }
        if let Some(m) = settings
            .mechanisms
            .iter()
            .find(|m| m.needs_secret() && !passdb.supports_credentials())
        {
            return Err(AuthError::Config(format!(
                "mechanism {m} needs stored plaintext passwords or SCRAM keys, which this passdb \
                 cannot provide (use passdb passwd-file or sql, or offer PLAIN and LOGIN only)"
            )));
        }
        // A certificate names a user; only a userdb can say that the user exists (with
        // prefetch, any name a trusted authority put in a certificate would log in).
        if userdb.is_none() && settings.mechanisms.contains(&Mechanism::External) {
            return Err(AuthError::Config(
                "mechanism EXTERNAL needs a userdb that knows the users (not prefetch)".to_owned(),
            ));
        }
        if token_validator.is_none()
            && let Some(m) = settings.mechanisms.iter().find(|m| m.needs_token())
        {
            return Err(AuthError::Config(format!(
                "mechanism {m} needs a token introspection endpoint ([auth.oauth2])"
            )));
        }
        let mut fake_salt_key = [0u8; 32];
        getrandom::getrandom(&mut fake_salt_key)
            .map_err(|e| AuthError::Config(format!("no random numbers: {e}")))?;
        Ok(Authenticator {
            passdb,
            userdb,
            settings,
            token_validator,
            fake_salt_key,
        })
    }

    /// The mechanisms to advertise, in order.
    pub fn mechanisms(&self) -> &[Mechanism] {
        &self.settings.mechanisms
    }

    /// Checks a plaintext password and, when it is right, finds the user's record.
    pub fn verify_plain(&self, user: &str, password: &[u8]) -> Result<AuthOutcome, AuthError> {
        let Some(name) = self.user_name(user) else {
            return Ok(AuthOutcome::UnknownUser);
        };
        match self.passdb.verify_plain(&name, password)? {
            AuthOutcome::Success(record) => self.complete(record),
            other => Ok(other),
        }
    }

    /// The user's record for a user the passdb accepted: the userdb's, then the uid guards.
    pub fn complete(&self, passdb_record: UserRecord) -> Result<AuthOutcome, AuthError> {
        let record = match &self.userdb {
            None => passdb_record,
            Some(userdb) => match userdb.lookup(&passdb_record.name)? {
                Some(record) => record,
                None => {
                    tracing::warn!(
                        user = %passdb_record.name,
                        "the passdb accepted a user the userdb does not know"
                    );
                    return Ok(AuthOutcome::UnknownUser);
                }
            },
        };
        if let Err(reason) = self.settings.uid_range.check(&record) {
            tracing::warn!(user = %record.name, reason, "login refused");
            return Ok(AuthOutcome::WrongPassword);
        }
        Ok(AuthOutcome::Success(record))
    }

    /// Starts a SASL exchange; `None` when `mechanism` is not offered. EXTERNAL started here
    /// has no external identity and fails: see [`Authenticator::start_external`].
    pub fn start(self: &Arc<Self>, mechanism: Mechanism) -> Option<Exchange> {
        self.mechanisms().contains(&mechanism).then(|| Exchange {
            auth: Arc::clone(self),
            sasl: SaslServer::new(mechanism),
            user: String::new(),
            found: Found::Unknown,
            external: None,
        })
    }

    /// Starts an EXTERNAL exchange (RFC 4422 Appendix A) for a connection whose TLS client
    /// certificate was verified and names `identity`; `None` when EXTERNAL is not offered.
    pub fn start_external(self: &Arc<Self>, identity: &str) -> Option<Exchange> {
        let mut exchange = self.start(Mechanism::External)?;
        exchange.external = Some(identity.to_owned());
        Some(exchange)
    }

    /// A valid user name, lower-cased if so configured; `None` for names no database could
    /// hold (empty, too long, `:`, `/`, control characters...).
    fn user_name(&self, user: &str) -> Option<String> {
        normalized_user_name(user, self.settings.lowercase_usernames)
    }

    /// The secret `mechanism` can check `user`'s proof with. Unknown users and users without
    /// a usable secret get made-up SCRAM keys, so that the exchange goes on as for anyone and
    /// fails only at the proof.
    fn secret_for(
        &self,
        user: &str,
        mechanism: Mechanism,
    ) -> Result<(Option<Secret>, Found), AuthError> {
        let scram = mechanism.scram_hash();
        let fake = |name: &str| scram.map(|hash| Secret::Scram(self.fake_keys(hash, name)));
        let Some(name) = self.user_name(user) else {
            return Ok((fake(user), Found::Unknown));
        };
        match self.passdb.lookup_credentials(&name)? {
            CredentialLookup::Found { secret, record } => {
                let usable = match (&secret, scram) {
                    (Secret::Plaintext(_), _) => true,
                    (Secret::Scram(keys), Some(hash)) => keys.hash == hash,
                    (Secret::Scram(_), None) => false,
                };
                if usable {
                    Ok((Some(secret), Found::User(record)))
                } else {
                    tracing::info!(user = %name, "the stored password cannot serve {mechanism}");
                    Ok((fake(&name), Found::Unusable))
                }
            }
            CredentialLookup::NotAvailable => {
                tracing::info!(user = %name, "the stored password cannot serve {mechanism}");
                Ok((fake(&name), Found::Unusable))
            }
            CredentialLookup::UnknownUser => Ok((fake(&name), Found::Unknown)),
        }
    }

    /// SCRAM keys no password matches, with a salt that depends only on the user name.
    fn fake_keys(&self, hash: ScramHash, user: &str) -> ScramKeys {
        let salt = ScramHash::Sha256.hmac(&self.fake_salt_key, user.as_bytes());
        let mut junk = [0u8; 32];
        // Failing randomness leaves zeros: the keys still match no password's derivation.
        let _ = getrandom::getrandom(&mut junk);
        let derived = ScramKeys::derive(hash, &junk, &salt[..16], DEFAULT_ITERATIONS);
        ScramKeys {
            stored_key: hash.hash(&junk),
            ..derived
        }
    }
}

/// What the passdb said about the user of an exchange.
#[derive(Debug, Clone)]
enum Found {
    Unknown,
    /// Known, but nothing stored can serve the mechanism (or the token was refused).
    Unusable,
    User(UserRecord),
    /// A backend (the token validator) could not answer: a temporary failure.
    Failed(String),
}

/// One SASL exchange against an [`Authenticator`]: the mechanism's step machine plus the
/// lookups it asks for. [`Exchange::step`] may block (password hashing, lookups).
pub struct Exchange {
    auth: Arc<Authenticator>,
    sasl: SaslServer,
    /// The user name the client gave, once known (for the log).
    user: String,
    found: Found,
    /// EXTERNAL: the user the verified TLS client certificate names.
    external: Option<String>,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchange")
            .field("mechanism", &self.sasl.mechanism())
            .finish_non_exhaustive()
    }
}

/// What the protocol does next in an [`Exchange`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExchangeStep {
    /// Send this challenge (raw bytes) and pass the client's response to the next step.
    Challenge(Vec<u8>),
    /// Logged in as this user.
    Success(UserRecord),
    /// The exchange is over without a login.
    Failure(Failure),
}

/// Why an exchange failed, with the user name the client gave (empty if it gave none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub user: String,
    pub kind: FailureKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureKind {
    /// The client broke the mechanism's syntax (or sent an over-long response).
    Malformed(SaslError),
    UnknownUser,
    /// A wrong password or proof, or a user who may not log in.
    WrongPassword,
    /// A backend failed; answer with a temporary failure.
    Internal(String),
}

impl Exchange {
    pub fn mechanism(&self) -> Mechanism {
        self.sasl.mechanism()
    }

    /// Advances the exchange with the client's response (`None`: no initial response).
    pub fn step(&mut self, response: Option<&[u8]>) -> ExchangeStep {
        let mut step = self.sasl.step(response);
        loop {
            step = match step {
                SaslStep::Challenge(challenge) => return ExchangeStep::Challenge(challenge),
                SaslStep::Done(credentials) => {
                    self.user = credentials.authcid.clone();
                    let outcome = self
                        .auth
                        .verify_plain(&credentials.authcid, &credentials.password);
                    return self.outcome(outcome);
                }
                SaslStep::NeedSecret { authcid } => {
                    self.user = authcid;
                    match self.auth.secret_for(&self.user, self.sasl.mechanism()) {
                        Ok((secret, found)) => {
                            self.found = found;
                            self.sasl.secret(secret)
                        }
                        Err(e) => return self.fail(FailureKind::Internal(e.to_string())),
                    }
                }
                SaslStep::NeedToken(message) => self.check_token(message),
                SaslStep::External { authzid } => return self.external(authzid),
                SaslStep::Verified { .. } => {
                    return match std::mem::replace(&mut self.found, Found::Unknown) {
                        Found::User(record) => {
                            let outcome = self.auth.complete(record);
                            self.outcome(outcome)
                        }
                        // Made-up keys match no proof; should one ever, it is no login.
                        Found::Unknown => self.fail(FailureKind::UnknownUser),
                        Found::Unusable => self.fail(FailureKind::WrongPassword),
                        Found::Failed(e) => self.fail(FailureKind::Internal(e)),
                    };
                }
                SaslStep::Failed(SaslError::WrongProof | SaslError::NoSecret) => {
                    let kind = match &self.found {
                        Found::Unknown => FailureKind::UnknownUser,
                        Found::Unusable | Found::User(_) => FailureKind::WrongPassword,
                        Found::Failed(e) => FailureKind::Internal(e.clone()),
                    };
                    return self.fail(kind);
                }
                SaslStep::Failed(e) => return self.fail(FailureKind::Malformed(e)),
            }
        }
    }

    /// EXTERNAL: the certificate's user, if the client asks for nothing else. No proxy
    /// authorization: an authzid other than that user fails (RFC 4422 Appendix A.1 leaves
    /// the policy to the server).
    fn external(&mut self, authzid: Option<String>) -> ExchangeStep {
        self.user = authzid.clone().unwrap_or_default();
        let Some(identity) = self.external.as_deref() else {
            tracing::info!("EXTERNAL without a verified client certificate");
            return self.fail(FailureKind::WrongPassword);
        };
        let Some(owner) = self.auth.user_name(identity) else {
            tracing::info!(identity, "client certificate names an unusable user name");
            return self.fail(FailureKind::UnknownUser);
        };
        self.user = owner.clone();
        if let Some(authzid) = authzid
            && self.auth.user_name(&authzid).as_deref() != Some(owner.as_str())
        {
            tracing::info!(user = %owner, authzid, "EXTERNAL: authzid is not the certificate's user");
            self.user = authzid;
            return self.fail(FailureKind::Malformed(SaslError::AuthzidNotPermitted));
        }
        let outcome = self.auth.complete(UserRecord::named(owner));
        self.outcome(outcome)
    }

    /// Asks the validator about the token and hands the machine its verdict. A token is good
    /// only for the user it names; a client that names someone else gets the error status.
    fn check_token(&mut self, message: TokenMessage) -> SaslStep {
        self.user = message.user.clone().unwrap_or_default();
        self.found = Found::Unusable;
        let Some(validator) = &self.auth.token_validator else {
            return SaslStep::Failed(SaslError::NoSecret);
        };
        let rejected = || TokenVerdict::Rejected {
            scope: validator.scope().map(str::to_owned),
        };
        let verdict = match validator.validate(&message.token) {
            Err(e) => {
                self.found = Found::Failed(e.to_string());
                return SaslStep::Failed(SaslError::NoSecret);
            }
            Ok(TokenStatus::Inactive { reason }) => {
                tracing::info!(user = %self.user, "bearer token refused: {reason}");
                rejected()
            }
            Ok(TokenStatus::Active { username }) => {
                let owner = self.auth.user_name(&username);
                let claimed = message.user.as_deref().map(|u| self.auth.user_name(u));
                let accepted = match (owner, claimed) {
                    (Some(owner), None) => Some(owner),
                    (Some(owner), Some(Some(claimed))) if owner == claimed => Some(owner),
                    _ => None,
                };
                match accepted {
                    Some(owner) => {
                        self.user = owner.clone();
                        self.found = Found::User(UserRecord::named(owner.clone()));
                        TokenVerdict::Valid { user: owner }
                    }
                    None => {
                        tracing::info!(
                            user = %self.user,
                            token_user = %username,
                            "bearer token of another user, or of an unusable user name"
                        );
                        rejected()
                    }
                }
            }
        };
        self.sasl.token_checked(verdict)
    }

    fn outcome(&self, outcome: Result<AuthOutcome, AuthError>) -> ExchangeStep {
        match outcome {
            Ok(AuthOutcome::Success(record)) => ExchangeStep::Success(record),
            Ok(AuthOutcome::UnknownUser) => self.fail(FailureKind::UnknownUser),
            Ok(AuthOutcome::WrongPassword) => self.fail(FailureKind::WrongPassword),
            Err(e) => self.fail(FailureKind::Internal(e.to_string())),
        }
    }

    fn fail(&self, kind: FailureKind) -> ExchangeStep {
        ExchangeStep::Failure(Failure {
            user: self.user.clone(),
            kind,
        })
    }
}
