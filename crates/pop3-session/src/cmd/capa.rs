use pop3_proto::response;

use crate::session::Session;

impl Session {
    /// CAPA (RFC 2449 5). What is offered depends on the state and on the connection: STLS only
    /// before login on a cleartext connection that can be upgraded, USER and the plaintext SASL
    /// mechanisms only where a plaintext password may be sent (RFC 2595 6; as Dovecot's
    /// `disable_plaintext_auth`); CRAM-MD5 and SCRAM wherever the backend offers them.
    pub(crate) fn cmd_capa(&mut self) {
        let mut caps: Vec<&str> = vec![
            "CAPA",
            "TOP",
            "UIDL",
            "RESP-CODES",
            "PIPELINING",
            "AUTH-RESP-CODE",
        ];
        if self.is_authorization() {
            if self.ctx.starttls.is_some() && !self.tls {
                caps.push("STLS");
            }
            if self.plaintext_auth_allowed() {
                caps.push("USER");
            }
        }
        let mut caps: Vec<String> = caps.into_iter().map(str::to_owned).collect();
        if self.is_authorization() {
            let mechs = self.offered_mechanisms();
            if !mechs.is_empty() {
                let names: Vec<&str> = mechs.iter().map(|m| m.name()).collect();
                caps.push(format!("SASL {}", names.join(" ")));
            }
        }
        caps.push("IMPLEMENTATION Columba".to_owned());
        response::ok(&mut self.out, "Capability list follows");
        for cap in caps {
            response::multiline_line(&mut self.out, &cap);
        }
        response::end_multiline(&mut self.out);
    }

    /// Plaintext passwords are accepted over TLS, from loopback peers, or everywhere when the
    /// configuration says so: the policy IMAP applies too.
    pub(crate) fn plaintext_auth_allowed(&self) -> bool {
        self.tls
            || self.info.remote.ip().is_loopback()
            || self.ctx.settings.allow_plaintext_auth_without_tls
    }
}
