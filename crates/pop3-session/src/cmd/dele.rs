use pop3_proto::response;

use crate::session::{Session, State};

impl Session {
    /// DELE msg (RFC 1939 5): marks the message; nothing is removed before QUIT.
    pub(crate) fn cmd_dele(&mut self, msg: u32) {
        let State::Transaction(maildrop) = &mut self.state else {
            return;
        };
        match maildrop.get_mut(msg) {
            Ok(entry) => {
                entry.deleted = true;
                response::ok(&mut self.out, "Marked to be deleted.");
            }
            Err(e) => response::err(&mut self.out, None, &e.text()),
        }
    }

    /// RSET (RFC 1939 5): unmarks every message marked deleted.
    pub(crate) fn cmd_rset(&mut self) {
        let State::Transaction(maildrop) = &mut self.state else {
            return;
        };
        for entry in &mut maildrop.entries {
            entry.deleted = false;
        }
        let (count, size) = maildrop.totals();
        response::ok(
            &mut self.out,
            &format!("maildrop has {count} messages ({size} octets)"),
        );
    }
}
