//! The AUTHORIZATION state's ways in: USER/PASS and APOP (RFC 1939 7) and AUTH (RFC 5034 4),
//! and what a successful check leads to: the maildrop lock and the listing of the INBOX.

use auth::sasl::Mechanism;
use auth::{AuthOutcome, ExchangeStep, FailureKind, UserRecord};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use pop3_proto::LineRead;
use pop3_proto::response::{self, Code};
use session_api::LoginPolicy;

use crate::maildrop::Maildrop;
use mail_store::{StoreError, StoreErrorKind};
use zeroize::Zeroizing;

use crate::session::{Session, State, Stats, blocking};

/// Longest client response line in a SASL exchange (RFC 5034 4 sets no limit of its own).
const MAX_SASL_LINE: usize = 16 * 1024;

const PLAINTEXT_DISALLOWED: &str =
    "Plaintext authentication disallowed on non-secure (SSL/TLS) connections.";

impl Session {
    /// USER (RFC 1939 7): remembers the name for PASS.
    pub(crate) fn cmd_user(&mut self, name: String) {
        if !self.plaintext_auth_allowed() {
            response::err(&mut self.out, Some(Code::Auth), PLAINTEXT_DISALLOWED);
            return;
        }
        self.state = State::Authorization { user: Some(name) };
        response::ok(&mut self.out, "");
    }

    /// PASS (RFC 1939 7): checks the password for the name USER gave. Either way the name is
    /// used up: after a failure the client starts again with USER (or AUTH).
    pub(crate) async fn cmd_pass(&mut self, password: Vec<u8>) {
        let user = match &mut self.state {
            State::Authorization { user } => user.take(),
            _ => None,
        };
        let Some(user) = user else {
            response::err(&mut self.out, None, "No username given.");
            return;
        };
        // Logged as method=PLAIN, as Dovecot does: USER/PASS is a plaintext password.
        self.password_login(&user, password, "PLAIN").await;
    }

    /// APOP (RFC 1939 7) needs the plaintext password on the server, which a hashed passdb does
    /// not have; it is not offered (the greeting carries no timestamp), and refused if tried.
    pub(crate) fn cmd_apop(&mut self) {
        response::err(&mut self.out, None, "APOP not enabled.");
    }

    /// AUTH (RFC 5034 4) with an optional initial response, for the mechanisms the backend
    /// offers; without a mechanism, the list of mechanisms (the form RFC 1734 clients send).
    /// `None`: the client went away mid-exchange.
    pub(crate) async fn cmd_auth(
        &mut self,
        mechanism: Option<&str>,
        initial: Option<Vec<u8>>,
    ) -> Option<()> {
        let Some(mechanism) = mechanism else {
            response::ok(&mut self.out, "");
            for mech in self.offered_mechanisms() {
                response::multiline_line(&mut self.out, mech.name());
            }
            response::end_multiline(&mut self.out);
            return Some(());
        };
        let exchange = Mechanism::from_name(mechanism).and_then(|m| {
            session_api::start_mechanism(&self.ctx.backend, m, self.tls_client_user.as_deref())
        });
        let Some(mut exchange) = exchange else {
            response::err(&mut self.out, None, "Unsupported authentication mechanism.");
            return Some(());
        };
        let mech = exchange.mechanism();
        if mech.is_plaintext() && !self.plaintext_auth_allowed() {
            response::err(&mut self.out, Some(Code::Auth), PLAINTEXT_DISALLOWED);
            return Some(());
        }
        // RFC 5034 4: `=` is an empty initial response.
        let mut input = match initial.as_deref() {
            None => None,
            Some(b"=") => Some(Zeroizing::new(Vec::new())),
            Some(encoded) => match BASE64.decode(encoded) {
                Ok(bytes) => Some(Zeroizing::new(bytes)),
                Err(_) => {
                    response::err(
                        &mut self.out,
                        None,
                        "Invalid base64 data in initial response.",
                    );
                    return Some(());
                }
            },
        };
        loop {
            let (back, step) = session_api::sasl_step(exchange, input.take()).await;
            match (step, back) {
                (ExchangeStep::Challenge(challenge), Some(back)) => {
                    exchange = back;
                    response::continuation(&mut self.out, &BASE64.encode(&challenge));
                    let line = match self.read_sasl_line().await? {
                        LineRead::Line(line) => Zeroizing::new(line),
                        LineRead::TooLong | LineRead::NeedMore => {
                            response::err(&mut self.out, None, "SASL response too long.");
                            return Some(());
                        }
                    };
                    // RFC 5034 4: `*` cancels the exchange.
                    if line.as_slice() == b"*" {
                        response::err(&mut self.out, None, "Authentication aborted by client.");
                        return Some(());
                    }
                    match BASE64.decode(line.as_slice()) {
                        Ok(bytes) => input = Some(Zeroizing::new(bytes)),
                        Err(_) => {
                            response::err(
                                &mut self.out,
                                None,
                                "Invalid base64 data in continued response.",
                            );
                            return Some(());
                        }
                    }
                }
                (ExchangeStep::Success(record), _) => {
                    self.finish_login(record, mech.name()).await;
                    return Some(());
                }
                (ExchangeStep::Failure(failure), _) => {
                    match failure.kind {
                        FailureKind::Internal(e) => {
                            tracing::error!(session = %self.info.session_id, "auth backend failure: {e}");
                            self.temporary_auth_failure();
                        }
                        kind => {
                            tracing::debug!(session = %self.info.session_id, "SASL {mech} failed: {kind:?}");
                            self.login_failed(&failure.user, mech.name()).await;
                        }
                    }
                    return Some(());
                }
                (ExchangeStep::Challenge(_), None) => {
                    self.temporary_auth_failure();
                    return Some(());
                }
            }
        }
    }

    /// The mechanisms to list in CAPA and AUTH: the backend's, the plaintext ones only where a
    /// password may be sent in the clear, EXTERNAL only with a verified client certificate.
    pub(crate) fn offered_mechanisms(&self) -> Vec<Mechanism> {
        session_api::offered_mechanisms(
            self.ctx.backend.as_ref(),
            self.tls_client_user.as_deref(),
            self.plaintext_auth_allowed(),
        )
    }

    fn temporary_auth_failure(&mut self) {
        response::err(
            &mut self.out,
            Some(Code::SysTemp),
            "Temporary authentication failure.",
        );
    }

    /// Reads one SASL response line. `None`: the client disconnected or timed out.
    async fn read_sasl_line(&mut self) -> Option<LineRead> {
        loop {
            match self.decoder.take_line(MAX_SASL_LINE) {
                LineRead::NeedMore => {
                    self.flush().await.ok()?;
                    let timeout = self.input_timeout();
                    match tokio::time::timeout(timeout, self.fill()).await {
                        Ok(Ok(true)) => {}
                        _ => return None,
                    }
                }
                other => return Some(other),
            }
        }
    }

    /// Checks a user name and password (from PASS or a SASL mechanism) and, on success, takes
    /// the maildrop lock, opens the INBOX and enters the TRANSACTION state (RFC 1939 4).
    /// Hashing and opening run off the async threads.
    pub(crate) async fn password_login(&mut self, username: &str, password: Vec<u8>, method: &str) {
        let backend = self.ctx.backend.clone();
        let name = username.to_owned();
        let outcome = match blocking(move || backend.authenticate(&name, &password)).await {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::error!(session = %self.info.session_id, "auth backend failure: {e}");
                return self.temporary_auth_failure();
            }
        };
        let record = match outcome {
            AuthOutcome::Success(record) => record,
            AuthOutcome::UnknownUser => {
                tracing::debug!(session = %self.info.session_id, "unknown user {username:?}");
                return self.login_failed(username, method).await;
            }
            AuthOutcome::WrongPassword => return self.login_failed(username, method).await,
        };
        self.finish_login(record, method).await;
    }

    /// Takes the maildrop lock and opens the INBOX of a user who proved who they are (by
    /// password or SASL mechanism), entering the TRANSACTION state.
    ///
    /// The password database may still refuse the login ([`LoginPolicy`]: Dovecot's `nologin`
    /// and `reason`). POP3 has no referrals: one that refuses names the other server in its
    /// text, one that only suggests moving is ignored.
    pub(crate) async fn finish_login(&mut self, record: UserRecord, method: &str) {
        let refusal = match LoginPolicy::of(&record) {
            LoginPolicy::Allow | LoginPolicy::AllowWithReferral { .. } => None,
            LoginPolicy::RefuseWithReferral { referral, reason } => {
                Some(reason.unwrap_or_else(|| format!("Try server {} instead.", referral.host)))
            }
            LoginPolicy::Refuse { reason } => {
                Some(reason.unwrap_or_else(|| "Authentication failed.".to_owned()))
            }
        };
        if let Some(text) = refusal {
            tracing::info!(session = %self.info.session_id, user = %record.name, "login refused: nologin");
            response::err(&mut self.out, Some(Code::Auth), &text);
            return;
        }
        self.ctx.penalty.record_success(self.info.remote.ip());
        if self.ctx.backend.login_hand_off().is_some() {
            // A login process: the mail is served elsewhere, which answers the command.
            self.hand_off = Some(session_api::LoggedIn {
                user: record,
                method: method.to_owned(),
                tag: None,
                pending_input: Vec::new(),
                tls: self.tls,
            });
            return;
        }
        let slot = match self
            .ctx
            .backend
            .claim_connection("pop3", &record.name, &self.info)
        {
            Ok(slot) => slot,
            Err(limit) => {
                tracing::info!("pop3({})<{}>: {limit}", record.name, self.info.session_id);
                response::err(&mut self.out, Some(Code::InUse), &limit.to_string());
                return;
            }
        };
        // RFC 1939 8 / RFC 2449 8.1.1: one POP3 session per maildrop.
        let lock = if self.ctx.settings.lock_session {
            match self.ctx.locks.try_lock(&record.name) {
                Some(guard) => Some(guard),
                None => {
                    tracing::info!(
                        "pop3-login: Mailbox in use: user=<{}>, rip={}, session=<{}>",
                        record.name,
                        self.info.remote.ip(),
                        self.info.session_id
                    );
                    response::err(
                        &mut self.out,
                        Some(Code::InUse),
                        "Mailbox is locked by another POP3 session.",
                    );
                    return;
                }
            }
        } else {
            None
        };
        let backend = self.ctx.backend.clone();
        let rec = record.clone();
        let opened = blocking(move || {
            let store = backend.open_store(&rec)?;
            Maildrop::open(store.as_ref(), lock)
        })
        .await;
        let maildrop = match opened.map_err(StoreError::from) {
            Ok(maildrop) => maildrop,
            Err(e) => {
                tracing::error!(session = %self.info.session_id, user = %record.name, "cannot open mail: {e}");
                let code = if e.kind() == StoreErrorKind::InUse {
                    Code::InUse
                } else {
                    Code::SysTemp
                };
                response::err(
                    &mut self.out,
                    Some(code),
                    "Temporary failure opening your mail.",
                );
                return;
            }
        };
        let (messages, size) = maildrop.totals();
        self.stats = Stats {
            messages: messages as u64,
            size,
            ..Stats::default()
        };
        session_api::log_login("pop3-login", &record.name, method, &self.info, self.tls);
        self.logged_in_as = Some(record.name);
        self.state = State::Transaction(Box::new(maildrop));
        self.connection_slot = slot;
        response::ok(&mut self.out, "Logged in.");
    }

    /// A failed login: wait out the per-address penalty, log in Dovecot's shape, answer
    /// `-ERR [AUTH]` (RFC 3206 5), the same for an unknown user as for a wrong password.
    pub(crate) async fn login_failed(&mut self, username: &str, method: &str) {
        self.auth_failures += 1;
        session_api::failed_login(
            &self.ctx.penalty,
            "pop3-login",
            username,
            method,
            &self.info,
            self.tls,
            self.auth_failures,
        )
        .await;
        response::err(&mut self.out, Some(Code::Auth), "Authentication failed.");
    }
}
