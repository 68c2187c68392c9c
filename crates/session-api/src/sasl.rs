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
/// LOGIN over [`UserBackend::authenticate`].
pub fn start_sasl(
    backend: &Arc<dyn UserBackend>,
    mechanism: Mechanism,
) -> Option<Box<dyn SaslExchange>> {
    if !backend.mechanisms().contains(&mechanism) {
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
            // PLAIN and LOGIN never ask for a stored secret or a token check.
            SaslStep::NeedSecret { .. } | SaslStep::NeedToken(_) | SaslStep::Verified { .. } => fail(
                &self.user,
                FailureKind::Internal("password mechanism asked for a secret".to_owned()),
            ),
        }
    }
}
