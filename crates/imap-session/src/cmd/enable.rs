use crate::session::{Reply, Session};

impl Session {
    /// ENABLE (RFC 5161 3.1). CONDSTORE and QRESYNC (RFC 7162 3.1, 3.2.3; QRESYNC implies
    /// CONDSTORE), IMAP4rev2 (RFC 9051 6.3.1) and UTF8=ACCEPT (RFC 6855 3) can be enabled; `* ENABLED` lists those this command turned on, and nothing for
    /// names that are unknown or already enabled, as the RFC asks.
    pub(crate) fn cmd_enable(&mut self, requested: &[String]) -> Reply {
        let mut enabled = Vec::new();
        for name in requested {
            match name.to_ascii_uppercase().as_str() {
                "CONDSTORE" if !self.condstore => {
                    self.condstore = true;
                    enabled.push("CONDSTORE");
                }
                "QRESYNC" if !self.qresync => {
                    self.qresync = true;
                    self.condstore = true;
                    enabled.push("QRESYNC");
                }
                // RFC 9051: names in UTF-8, ESEARCH for SEARCH, no RECENT or \Recent.
                "IMAP4REV2" if !self.rev2 => {
                    self.rev2 = true;
                    self.utf8 = true;
                    enabled.push("IMAP4rev2");
                }
                // RFC 6855 3, 4: UTF-8 mailbox names and quoted strings, 8-bit headers in
                // APPEND; only where the operator offers it (see `ImapSettings::utf8_accept`).
                "UTF8=ACCEPT" if self.ctx.settings.utf8_accept && !self.utf8_accept => {
                    self.utf8_accept = true;
                    self.utf8 = true;
                    enabled.push("UTF8=ACCEPT");
                }
                _ => {}
            }
        }
        self.out.extend_from_slice(b"* ENABLED");
        for name in enabled {
            self.out.push(b' ');
            self.out.extend_from_slice(name.as_bytes());
        }
        self.out.extend_from_slice(b"\r\n");
        Reply::ok("Enabled.")
    }
}
