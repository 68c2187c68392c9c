use auth::sasl::{Mechanism, SaslServer, SaslStep};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use imap_proto::response::{Code, continuation};
use imap_proto::{LineRead, Tag, take_line};

use crate::session::{Reply, Session};

/// Longest client response line in a SASL exchange.
const MAX_SASL_LINE: usize = 16 * 1024;

impl Session {
    /// AUTHENTICATE (RFC 3501 6.2.2) with SASL-IR (RFC 4959). `None` means the connection must
    /// close (the client went away mid-exchange).
    pub(crate) async fn cmd_authenticate(
        &mut self,
        tag: &Tag,
        mechanism: &str,
        initial: Option<Vec<u8>>,
    ) -> Option<Reply> {
        let _ = tag;
        let Some(mech) = Mechanism::from_name(mechanism) else {
            return Some(Reply::no("Unsupported authentication mechanism."));
        };
        if !self.plaintext_auth_allowed() {
            return Some(
                Reply::no(
                    "Plaintext authentication disallowed on non-secure (SSL/TLS) connections.",
                )
                .with_code(Code::PrivacyRequired),
            );
        }
        let mut input = match initial {
            None => None,
            Some(encoded) if encoded.is_empty() => Some(Vec::new()),
            Some(encoded) => match BASE64.decode(&encoded) {
                Ok(bytes) => Some(bytes),
                Err(_) => return Some(Reply::bad("Invalid base64 data in initial response.")),
            },
        };
        let mut sasl = SaslServer::new(mech);
        loop {
            match sasl.step(input.as_deref()) {
                SaslStep::Challenge(challenge) => {
                    self.out
                        .extend_from_slice(&continuation(&BASE64.encode(&challenge)));
                    let line = self.read_sasl_line().await?;
                    let line = match line {
                        Ok(line) => line,
                        Err(reply) => return Some(reply),
                    };
                    if line == b"*" {
                        // RFC 3501 6.2.2: a cancelled exchange gets a tagged BAD.
                        return Some(Reply::bad("Authentication aborted by client."));
                    }
                    match BASE64.decode(&line) {
                        Ok(bytes) => input = Some(bytes),
                        Err(_) => {
                            return Some(Reply::bad("Invalid base64 data in continued response."));
                        }
                    }
                }
                SaslStep::Done(creds) => {
                    return Some(
                        self.password_login(&creds.authcid, creds.password, mech.name())
                            .await,
                    );
                }
                SaslStep::Failed(e) => {
                    tracing::debug!(session = %self.info.session_id, "SASL {} failed: {e}", mech.name());
                    return Some(self.login_failed("", mech.name()).await);
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
