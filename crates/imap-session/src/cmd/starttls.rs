use std::borrow::Cow;

use imap_proto::Tag;
use imap_proto::response::{Status, status_line};

use crate::session::{Flow, Reply, Session};

impl Session {
    /// STARTTLS (RFC 3501 6.2.1, RFC 2595 3.1). Anything the client pipelined after the command
    /// arrived in cleartext and is thrown away: acting on it would let an attacker inject commands
    /// into the protected session (CVE-2011-0411 class).
    pub(crate) async fn cmd_starttls(&mut self, tag: Tag) -> Flow {
        let Some(upgrader) = self.ctx.starttls.clone().filter(|_| !self.tls) else {
            let reply = if self.tls {
                "TLS is already active."
            } else {
                "TLS support isn't enabled."
            };
            self.finish(&tag, Reply::bad(reply), crate::session::UpdatePolicy::None);
            return Flow::Continue;
        };
        self.out.extend_from_slice(&status_line(
            Some(&tag),
            Status::Ok,
            None,
            "Begin TLS negotiation now.",
        ));
        if self.flush().await.is_err() {
            return Flow::Close;
        }
        self.rbuf.clear();
        self.decoder = imap_proto::Decoder::new(self.ctx.settings.limits.clone());
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
