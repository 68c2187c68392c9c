use pop3_proto::response;

use crate::session::{Session, State};

impl Session {
    /// STAT (RFC 1939 5): `+OK count octets` of the messages not marked deleted.
    pub(crate) fn cmd_stat(&mut self) {
        let State::Transaction(maildrop) = &self.state else {
            return;
        };
        let (count, size) = maildrop.totals();
        response::ok(&mut self.out, &format!("{count} {size}"));
    }

    /// LIST [msg] (RFC 1939 5): `msg octets` for one message, or a multi-line list of every
    /// message not marked deleted.
    pub(crate) fn cmd_list(&mut self, msg: Option<u32>) {
        let State::Transaction(maildrop) = &self.state else {
            return;
        };
        match msg {
            Some(n) => match maildrop.get(n) {
                Ok(entry) => {
                    let line = format!("{n} {}", entry.size);
                    response::ok(&mut self.out, &line);
                }
                Err(e) => response::err(&mut self.out, None, &e.text()),
            },
            None => {
                let (count, _) = maildrop.totals();
                let out = &mut self.out;
                response::ok(out, &format!("{count} messages:"));
                for (n, entry) in maildrop.live() {
                    response::multiline_line(out, &format!("{n} {}", entry.size));
                }
                response::end_multiline(out);
            }
        }
    }
}
