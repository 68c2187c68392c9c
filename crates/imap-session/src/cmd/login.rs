use std::borrow::Cow;

use auth::{AuthOutcome, UserRecord};
use imap_proto::response::Code;
use session_api::{LoginPolicy, Referral};

use crate::capability;
use crate::session::{Reply, Session, State, User};

impl Session {
    /// LOGIN (RFC 3501 6.2.3). Refused on cleartext connections where plaintext passwords are not
    /// allowed (RFC 3501 6.2.3 / LOGINDISABLED; RFC 5530 PRIVACYREQUIRED).
    pub(crate) async fn cmd_login(&mut self, username: &[u8], password: &[u8]) -> Reply {
        if !self.plaintext_auth_allowed() {
            return Reply::no(
                "Plaintext authentication disallowed on non-secure (SSL/TLS) connections.",
            )
            .with_code(Code::PrivacyRequired);
        }
        // Logged as method=PLAIN, as Dovecot does: LOGIN is a plaintext password like SASL PLAIN.
        let Ok(username) = std::str::from_utf8(username) else {
            return self.login_failed("<invalid UTF-8>", "PLAIN").await;
        };
        self.password_login(username, password.to_vec(), "PLAIN")
            .await
    }

    /// Checks a username and password (from LOGIN or a SASL mechanism) and, on success, opens the
    /// user's mail and enters the authenticated state. Hashing runs off the async threads.
    pub(crate) async fn password_login(
        &mut self,
        username: &str,
        password: Vec<u8>,
        method: &str,
    ) -> Reply {
        let backend = self.ctx.backend.clone();
        let name = username.to_owned();
        let checked =
            tokio::task::spawn_blocking(move || backend.authenticate(&name, &password)).await;
        let outcome = match checked {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => {
                tracing::error!(session = %self.info.session_id, "auth backend failure: {e}");
                return Reply::no("Temporary authentication failure.").with_code(Code::Unavailable);
            }
            Err(e) => {
                tracing::error!(session = %self.info.session_id, "auth task failed: {e}");
                return Reply::no("Temporary authentication failure.").with_code(Code::Unavailable);
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
        self.finish_login(record, method).await
    }

    /// Opens the mail of a user who proved who they are (by password or SASL mechanism) and
    /// enters the authenticated state.
    ///
    /// The password database may still refuse the login or point the client elsewhere
    /// ([`LoginPolicy`]: Dovecot's `nologin`, `host`, `reason`), answered as RFC 2221 3 shows:
    /// `NO [REFERRAL url]` when the client must go elsewhere, `OK [REFERRAL url]` when it is
    /// logged in here but should move.
    pub(crate) async fn finish_login(&mut self, record: UserRecord, method: &str) -> Reply {
        let referral = match LoginPolicy::of(&record) {
            LoginPolicy::Allow => None,
            LoginPolicy::AllowWithReferral { referral, reason } => Some(
                Reply::ok(reason.unwrap_or_else(|| {
                    "Logged in, but you should use this server instead.".to_owned()
                }))
                .with_code(Code::Referral(referral_url(&referral, &record.name))),
            ),
            LoginPolicy::RefuseWithReferral { referral, reason } => {
                tracing::info!(session = %self.info.session_id, user = %record.name, "login refused with a referral to {}", referral.host);
                return Reply::no(reason.unwrap_or_else(|| "Try this server instead.".to_owned()))
                    .with_code(Code::Referral(referral_url(&referral, &record.name)));
            }
            LoginPolicy::Refuse { reason } => {
                tracing::info!(session = %self.info.session_id, user = %record.name, "login refused: nologin");
                return Reply::no(reason.unwrap_or_else(|| "Authentication failed.".to_owned()))
                    .with_code(Code::AuthenticationFailed);
            }
        };
        if self.ctx.backend.login_hand_off().is_some() {
            // A login process: the mail is served elsewhere, which answers the command.
            self.ctx.penalty.record_success(self.info.remote.ip());
            self.hand_off = Some(session_api::LoggedIn {
                user: record,
                method: method.to_owned(),
                tag: None,
                pending_input: Vec::new(),
                tls: self.tls,
            });
            return Reply::ok("Logged in");
        }
        let slot = match self
            .ctx
            .backend
            .claim_connection("imap", &record.name, &self.info)
        {
            Ok(slot) => slot,
            Err(limit) => {
                tracing::info!("imap({})<{}>: {limit}", record.name, self.info.session_id);
                return Reply::no(limit.to_string()).with_code(Code::Limit);
            }
        };
        let backend = self.ctx.backend.clone();
        let rec = record.clone();
        let auto_create = self.ctx.settings.auto_create.clone();
        let open = move || -> Result<_, mail_store::StoreError> {
            let store = backend.open_store(&rec)?;
            create_missing(store.as_ref(), &auto_create);
            Ok(store)
        };
        let store = match tokio::task::spawn_blocking(open).await {
            Ok(Ok(store)) => store,
            Ok(Err(e)) => {
                tracing::error!(session = %self.info.session_id, user = %record.name, "cannot open mail: {e}");
                return Reply::no("Temporary failure opening your mail.")
                    .with_code(Code::Unavailable);
            }
            Err(e) => {
                tracing::error!(session = %self.info.session_id, "mail open task failed: {e}");
                return Reply::no("Temporary failure opening your mail.")
                    .with_code(Code::Unavailable);
            }
        };
        self.ctx.penalty.record_success(self.info.remote.ip());
        session_api::log_login("imap-login", &record.name, method, &self.info, self.tls);
        self.logged_in_as = Some(record.name.clone());
        self.state = State::Authenticated(User {
            record,
            store,
            _slot: slot,
        });
        referral.unwrap_or_else(|| {
            Reply::ok("Logged in").with_code(Code::Capability(capability::list(self)))
        })
    }

    /// A failed login: wait out the per-address penalty, log in Dovecot's shape, answer NO.
    pub(crate) async fn login_failed(&mut self, username: &str, method: &str) -> Reply {
        self.auth_failures += 1;
        session_api::failed_login(
            &self.ctx.penalty,
            "imap-login",
            username,
            method,
            &self.info,
            self.tls,
            self.auth_failures,
        )
        .await;
        if self.auth_failures >= self.ctx.settings.max_auth_attempts {
            self.disconnect_reason = Cow::Borrowed("auth failed");
        }
        Reply::no("Authentication failed.").with_code(Code::AuthenticationFailed)
    }
}

/// The IMAP URL of a login referral (RFC 2221 3, RFC 5092): `imap://user;AUTH=*@host:port/`,
/// naming the user to log in as there and leaving the mechanism to the client, as RFC 2221's
/// examples do.
fn referral_url(referral: &Referral, login_name: &str) -> String {
    let user = referral.user.as_deref().unwrap_or(login_name);
    let mut url = String::from("imap://");
    for b in user.bytes() {
        // RFC 5092 `enc-user`: unreserved characters as they are, everything else encoded.
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            url.push(char::from(b));
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url.push_str(";AUTH=*@");
    url.push_str(&referral.host);
    if let Some(port) = referral.port {
        url.push_str(&format!(":{port}"));
    }
    url.push('/');
    url
}

/// Creates and subscribes the configured mailboxes a user does not have yet (RFC 6154's
/// folders, Dovecot's `auto = subscribe`). A failure only costs the folder: it is logged.
fn create_missing(store: &dyn mail_store::MailStore, names: &[String]) {
    for name in names {
        let Ok(name) = mail_types::MailboxName::new(name) else {
            tracing::warn!("auto_create: {name:?} is not a valid mailbox name");
            continue;
        };
        match store.create(&name) {
            Ok(()) => {
                if let Err(e) = store.set_subscribed(&name, true) {
                    tracing::warn!("cannot subscribe {name}: {e}");
                }
            }
            Err(e) if e.kind() == mail_store::StoreErrorKind::AlreadyExists => {}
            Err(e) => tracing::warn!("cannot create {name}: {e}"),
        }
    }
}
