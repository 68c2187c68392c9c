use std::borrow::Cow;

use pop3_proto::response;

use crate::session::{Flow, Session, State};

impl Session {
    /// STLS (RFC 2595 4). Anything the client pipelined after the command arrived in cleartext
    /// and is thrown away, and so is a user name given before it: acting on either would let an
    /// attacker inject into the protected session (CVE-2011-0411 class).
    pub(crate) async fn cmd_stls(&mut self) -> Flow {
        let Some(upgrader) = self.ctx.starttls.clone().filter(|_| !self.tls) else {
            let text = if self.tls {
                "TLS is already active."
            } else {
                "TLS support isn't enabled."
            };
            response::err(&mut self.out, None, text);
            return Flow::Continue;
        };
        response::ok(&mut self.out, "Begin TLS negotiation now.");
        if self.flush().await.is_err() {
            return Flow::Close;
        }
        self.decoder.clear();
        self.state = State::Authorization { user: None };
        match session_api::upgrade_in_place(&mut self.stream, upgrader.as_ref()).await {
            Ok(client_user) => {
                self.tls = true;
                self.tls_client_user = client_user;
                Flow::Continue
            }
            Err(e) => {
                self.disconnect_reason = Cow::Owned(format!("TLS handshake failed: {e}"));
                Flow::Close
            }
        }
    }
}
