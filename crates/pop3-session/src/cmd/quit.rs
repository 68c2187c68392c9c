use std::borrow::Cow;

use mail_store::FlagChange;
use mail_types::{Flags, SystemFlags, Uid};
use pop3_proto::response::{self, Code};

use crate::session::{Flow, Session, State, blocking};

impl Session {
    /// QUIT (RFC 1939 5 and 6). In AUTHORIZATION it only ends the connection. In TRANSACTION
    /// the session enters UPDATE: retrieved messages get `\Seen` (as Dovecot does unless
    /// `pop3_no_flag_updates`), the messages marked deleted are expunged — only those, so a
    /// `\Deleted` flag an IMAP client set is left to that client — and the lock is released.
    /// A connection that ends any other way changes nothing.
    pub(crate) async fn cmd_quit(&mut self) -> Flow {
        let state = std::mem::replace(&mut self.state, State::Closed);
        self.disconnect_reason = Cow::Borrowed("Logged out");
        let State::Transaction(maildrop) = state else {
            response::ok(&mut self.out, "Logging out.");
            return Flow::Close;
        };
        let deleted: Vec<Uid> = maildrop
            .entries
            .iter()
            .filter(|e| e.deleted)
            .map(|e| e.uid)
            .collect();
        let seen: Vec<Uid> = maildrop
            .entries
            .iter()
            .filter(|e| e.retrieved && !e.deleted)
            .map(|e| e.uid)
            .collect();
        let mailbox = maildrop.mailbox.clone();
        let session_id = self.info.session_id.clone();
        let update = blocking(move || {
            if !seen.is_empty() {
                let change = FlagChange::Add(Flags::new(SystemFlags::SEEN, []));
                if let Err(e) = mailbox.store_flags(&seen, &change) {
                    // Not worth failing QUIT over: the messages were delivered.
                    tracing::warn!(session = %session_id, "setting \\Seen at QUIT failed: {e}");
                }
            }
            if deleted.is_empty() {
                return Ok(0);
            }
            let change = FlagChange::Add(Flags::new(SystemFlags::DELETED, []));
            mailbox.store_flags(&deleted, &change)?;
            mailbox.expunge(Some(&deleted)).map(|gone| gone.len())
        })
        .await;
        // The lock goes with the maildrop, after the expunge.
        drop(maildrop);
        match update {
            Ok(0) => response::ok(&mut self.out, "Logging out."),
            Ok(n) => {
                self.stats.deleted = n as u64;
                response::ok(&mut self.out, "Logging out, messages deleted.");
            }
            Err(e) => {
                tracing::error!(session = %self.info.session_id, "expunge at QUIT failed: {e}");
                // RFC 1939 6: the -ERR says some deleted messages were not removed.
                response::err(
                    &mut self.out,
                    Some(Code::SysTemp),
                    "Some deleted messages were not removed.",
                );
            }
        }
        Flow::Close
    }
}
