//! A SASL exchange as a protocol session drives it: the session sends the challenges and reads
//! the responses in its own framing (IMAP `+ ` lines, POP3 `+ ` lines, base64, `*` to cancel);
//! the exchange decides what to send next and, at the end, who logged in.
//!
//! The exchange lives behind [`SaslExchange`] so that where it runs can change: today it is an
//! [`auth::Exchange`] in this process; with privilege separation it becomes a proxy to the auth
//! process, and the session code stays as it is.

use std::sync::Arc;

use auth::sasl::{Mechanism, SaslServer, SaslStep};
use auth::{AuthOutcome, ExchangeStep, Failure, FailureKind};
use zeroize::Zeroizing;

use crate::UserBackend;

/// One SASL exchange. [`SaslExchange::step`] may block.
pub trait SaslExchange: Send {
    fn mechanism(&self) -> Mechanism;
    /// Advances the exchange with the client's decoded response (`None`: no initial response).
    fn step(&mut self, response: Option<&[u8]>) -> ExchangeStep;
}

impl SaslExchange for auth::Exchange {
    fn mechanism(&self) -> Mechanism {
        auth::Exchange::mechanism(self)
    }

    fn step(&mut self, response: Option<&[u8]>) -> ExchangeStep {
        auth::Exchange::step(self, response)
    }
}

/// The exchange for `mechanism` if the backend offers it: the backend's own, or PLAIN and
/// LOGIN over [`UserBackend::authenticate`]. EXTERNAL is started by
/// [`start_external_sasl`], which knows the connection's certificate.
pub fn start_sasl(
    backend: &Arc<dyn UserBackend>,
    mechanism: Mechanism,
) -> Option<Box<dyn SaslExchange>> {
    if !backend.mechanisms().contains(&mechanism) || mechanism == Mechanism::External {
        return None;
    }
    if let Some(exchange) = backend.sasl_exchange(mechanism) {
        return Some(exchange);
    }
    mechanism.is_plaintext().then(|| {
        Box::new(PasswordExchange {
            sasl: SaslServer::new(mechanism),
            backend: Arc::clone(backend),
            user: String::new(),
        }) as Box<dyn SaslExchange>
    })
}

/// The exchange a session starts for `mechanism`: EXTERNAL with the connection's certificate
/// identity ([`start_external_sasl`]), any other through [`start_sasl`].
pub fn start_mechanism(
    backend: &Arc<dyn UserBackend>,
    mechanism: Mechanism,
    tls_identity: Option<&str>,
) -> Option<Box<dyn SaslExchange>> {
    match mechanism {
        Mechanism::External => start_external_sasl(backend, tls_identity),
        other => start_sasl(backend, other),
    }
}

/// SASL EXTERNAL for a connection whose TLS client certificate verified and names
/// `tls_identity`: `None` when there is no such identity or the backend does not offer
/// EXTERNAL, so that a session answers it as an unsupported mechanism.
pub fn start_external_sasl(
    backend: &Arc<dyn UserBackend>,
    tls_identity: Option<&str>,
) -> Option<Box<dyn SaslExchange>> {
    let identity = tls_identity?;
    if !backend.mechanisms().contains(&Mechanism::External) {
        return None;
    }
    backend.sasl_external(identity)
}

/// The mechanisms a session advertises: the backend's, less EXTERNAL where no verified
/// client certificate names a user (RFC 4422 Appendix A: the external authentication must
/// have happened), less the plaintext ones where `plaintext_allowed` is false.
pub fn offered_mechanisms(
    backend: &dyn UserBackend,
    tls_identity: Option<&str>,
    plaintext_allowed: bool,
) -> Vec<Mechanism> {
    let mut mechanisms = backend.mechanisms();
    mechanisms.retain(|m| {
        (*m != Mechanism::External || tls_identity.is_some())
            && (!m.is_plaintext() || plaintext_allowed)
    });
    mechanisms
}

/// Runs one step off the async threads. The exchange comes back unless the step panicked (then
/// the step is an internal failure).
pub async fn sasl_step(
    mut exchange: Box<dyn SaslExchange>,
    response: Option<Zeroizing<Vec<u8>>>,
) -> (Option<Box<dyn SaslExchange>>, ExchangeStep) {
    let ran = tokio::task::spawn_blocking(move || {
        let step = exchange.step(response.as_deref().map(Vec::as_slice));
        (exchange, step)
    })
    .await;
    match ran {
        Ok((exchange, step)) => (Some(exchange), step),
        Err(e) => (
            None,
            ExchangeStep::Failure(Failure {
                user: String::new(),
                kind: FailureKind::Internal(format!("SASL step failed: {e}")),
            }),
        ),
    }
}

/// PLAIN or LOGIN whose password is checked by [`UserBackend::authenticate`].
struct PasswordExchange {
    sasl: SaslServer,
    backend: Arc<dyn UserBackend>,
    user: String,
}

impl SaslExchange for PasswordExchange {
    fn mechanism(&self) -> Mechanism {
        self.sasl.mechanism()
    }

    fn step(&mut self, response: Option<&[u8]>) -> ExchangeStep {
        let fail = |user: &str, kind| {
            ExchangeStep::Failure(Failure {
                user: user.to_owned(),
                kind,
            })
        };
        match self.sasl.step(response) {
            SaslStep::Challenge(challenge) => ExchangeStep::Challenge(challenge),
            SaslStep::Done(credentials) => {
                self.user = credentials.authcid.clone();
                match self
                    .backend
                    .authenticate(&credentials.authcid, &credentials.password)
                {
                    Ok(AuthOutcome::Success(record)) => ExchangeStep::Success(record),
                    Ok(AuthOutcome::UnknownUser) => fail(&self.user, FailureKind::UnknownUser),
                    Ok(AuthOutcome::WrongPassword) => fail(&self.user, FailureKind::WrongPassword),
                    Err(e) => fail(&self.user, FailureKind::Internal(e.to_string())),
                }
            }
            SaslStep::Failed(e) => fail(&self.user, FailureKind::Malformed(e)),
            // PLAIN and LOGIN never ask for a stored secret, a token check or an external identity.
            SaslStep::NeedSecret { .. }
            | SaslStep::NeedToken(_)
            | SaslStep::External { .. }
            | SaslStep::Verified { .. } => fail(
                &self.user,
                FailureKind::Internal("password mechanism asked for a secret".to_owned()),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth::{AuthError, UserRecord};
    use mail_store::{MailStore, StoreError};

    /// A backend offering `mechanisms`, whose EXTERNAL logs in the certificate's user.
    struct Backend {
        mechanisms: Vec<Mechanism>,
    }

    impl UserBackend for Backend {
        fn authenticate(&self, _user: &str, _password: &[u8]) -> Result<AuthOutcome, AuthError> {
            Ok(AuthOutcome::UnknownUser)
        }

        fn open_store(&self, _user: &UserRecord) -> Result<Arc<dyn MailStore>, StoreError> {
            Err(StoreError::Internal("no mail in this test".to_owned()))
        }

        fn mechanisms(&self) -> Vec<Mechanism> {
            self.mechanisms.clone()
        }

        fn sasl_external(&self, identity: &str) -> Option<Box<dyn SaslExchange>> {
            Some(Box::new(CertificateUser(identity.to_owned())))
        }
    }

    struct CertificateUser(String);

    impl SaslExchange for CertificateUser {
        fn mechanism(&self) -> Mechanism {
            Mechanism::External
        }

        fn step(&mut self, _response: Option<&[u8]>) -> ExchangeStep {
            ExchangeStep::Success(UserRecord::named(self.0.clone()))
        }
    }

    fn backend(mechanisms: &[Mechanism]) -> Arc<dyn UserBackend> {
        Arc::new(Backend {
            mechanisms: mechanisms.to_vec(),
        })
    }

    #[test]
    fn external_needs_an_identity_and_the_mechanism() {
        let with = backend(&[Mechanism::Plain, Mechanism::External]);
        let mut exchange = start_external_sasl(&with, Some("alice")).unwrap();
        assert_eq!(
            exchange.step(Some(b"")),
            ExchangeStep::Success(UserRecord::named("alice"))
        );
        assert!(start_external_sasl(&with, None).is_none());
        // Never through start_sasl, which knows no certificate.
        assert!(start_sasl(&with, Mechanism::External).is_none());
        let without = backend(&[Mechanism::Plain]);
        assert!(start_external_sasl(&without, Some("alice")).is_none());
    }

    #[test]
    fn offered_mechanisms_follow_tls_and_certificates() {
        let b = backend(&[
            Mechanism::Plain,
            Mechanism::ScramSha256,
            Mechanism::OAuthBearer,
            Mechanism::External,
        ]);
        assert_eq!(
            offered_mechanisms(b.as_ref(), Some("alice"), true),
            [
                Mechanism::Plain,
                Mechanism::ScramSha256,
                Mechanism::OAuthBearer,
                Mechanism::External
            ]
        );
        assert_eq!(
            offered_mechanisms(b.as_ref(), None, true),
            [
                Mechanism::Plain,
                Mechanism::ScramSha256,
                Mechanism::OAuthBearer
            ]
        );
        // Bearer tokens are as good as passwords: not in the clear.
        assert_eq!(
            offered_mechanisms(b.as_ref(), None, false),
            [Mechanism::ScramSha256]
        );
    }
}
