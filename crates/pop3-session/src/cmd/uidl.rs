use pop3_proto::response;

use crate::session::{Session, State};

impl Session {
    /// UIDL [msg] (RFC 1939 7): the unique-id of one message, or a multi-line list for every
    /// message not marked deleted. A UIDL stored by a migration wins over the configured format.
    pub(crate) fn cmd_uidl(&mut self, msg: Option<u32>) {
        let State::Transaction(maildrop) = &self.state else {
            return;
        };
        let format = &self.ctx.settings.uidl_format;
        match msg {
            Some(n) => match maildrop.get(n) {
                Ok(entry) => {
                    let line = format!("{n} {}", maildrop.uidl(entry, format));
                    response::ok(&mut self.out, &line);
                }
                Err(e) => response::err(&mut self.out, None, &e.text()),
            },
            None => {
                let out = &mut self.out;
                response::ok(out, "");
                for (n, entry) in maildrop.live() {
                    let line = format!("{n} {}", maildrop.uidl(entry, format));
                    response::multiline_line(out, &line);
                }
                response::end_multiline(out);
            }
        }
    }
}
