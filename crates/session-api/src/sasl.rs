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
