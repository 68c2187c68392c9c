use auth::sasl::Mechanism;
use auth::{ExchangeStep, FailureKind};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use imap_proto::response::{Code, continuation};
use imap_proto::{LineRead, Tag, take_line};
use zeroize::Zeroizing;

use crate::session::{Reply, Session};

/// Longest client response line in a SASL exchange.
const MAX_SASL_LINE: usize = 16 * 1024;

impl Session {
    /// AUTHENTICATE (RFC 3501 6.2.2) with SASL-IR (RFC 4959), for the mechanisms the backend
    /// offers. `None` means the connection must close (the client went away mid-exchange).
    pub(crate) async fn cmd_authenticate(
        &mut self,
        tag: &Tag,
        mechanism: &str,
        initial: Option<Vec<u8>>,
    ) -> Option<Reply> {
        let _ = tag;
        let exchange = Mechanism::from_name(mechanism).and_then(|m| {
            session_api::start_mechanism(&self.ctx.backend, m, self.tls_client_user.as_deref())
        });
        let Some(mut exchange) = exchange else {
            return Some(Reply::no("Unsupported authentication mechanism."));
        };
        let mech = exchange.mechanism();
        if mech.is_plaintext() && !self.plaintext_auth_allowed() {
            return Some(
                Reply::no(
                    "Plaintext authentication disallowed on non-secure (SSL/TLS) connections.",
                )
                .with_code(Code::PrivacyRequired),
            );
        }
        let mut input = match initial {
            None => None,
            Some(encoded) if encoded.is_empty() => Some(Zeroizing::new(Vec::new())),
            Some(encoded) => match BASE64.decode(&encoded) {
                Ok(bytes) => Some(Zeroizing::new(bytes)),
                Err(_) => return Some(Reply::bad("Invalid base64 data in initial response.")),
            },
        };
        loop {
            let (back, step) = session_api::sasl_step(exchange, input.take()).await;
            match (step, back) {
                (ExchangeStep::Challenge(challenge), Some(back)) => {
                    exchange = back;
                    self.out
                        .extend_from_slice(&continuation(&BASE64.encode(&challenge)));
                    let line = match self.read_sasl_line().await? {
                        Ok(line) => Zeroizing::new(line),
                        Err(reply) => return Some(reply),
                    };
                    if line.as_slice() == b"*" {
                        // RFC 3501 6.2.2: a cancelled exchange gets a tagged BAD.
                        return Some(Reply::bad("Authentication aborted by client."));
                    }
                    match BASE64.decode(line.as_slice()) {
                        Ok(bytes) => input = Some(Zeroizing::new(bytes)),
                        Err(_) => {
                            return Some(Reply::bad("Invalid base64 data in continued response."));
                        }
                    }
                }
                (ExchangeStep::Success(record), _) => {
                    return Some(self.finish_login(record, mech.name()).await);
                }
                (ExchangeStep::Failure(failure), _) => {
                    let reply = match failure.kind {
                        FailureKind::Internal(e) => {
                            tracing::error!(session = %self.info.session_id, "auth backend failure: {e}");
                            Reply::no("Temporary authentication failure.")
                                .with_code(Code::Unavailable)
                        }
                        kind => {
                            tracing::debug!(session = %self.info.session_id, "SASL {mech} failed: {kind:?}");
                            self.login_failed(&failure.user, mech.name()).await
                        }
                    };
                    return Some(reply);
                }
                (ExchangeStep::Challenge(_), None) => {
                    return Some(
                        Reply::no("Temporary authentication failure.").with_code(Code::Unavailable),
                    );
                }
            }
        }
    }

    /// Reads one SASL response line. `None`: the client disconnected; `Some(Err)`: a reply to
    /// send (line too long).
    async fn read_sasl_line(&mut self) -> Option<Result<Vec<u8>, Reply>> {
        loop {
            match take_line(&mut self.rbuf, MAX_SASL_LINE) {
                LineRead::Line(line) => return Some(Ok(line)),
                LineRead::TooLong => return Some(Err(Reply::bad("SASL response too long."))),
                LineRead::NeedMore => {
                    if self.flush().await.is_err() {
                        return None;
                    }
                    let timeout = self.input_timeout();
                    match tokio::time::timeout(timeout, self.fill()).await {
                        Ok(Ok(true)) => {}
                        _ => return None,
                    }
                }
            }
        }
    }
}
