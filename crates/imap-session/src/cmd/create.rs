use imap_proto::MailboxArg;
use imap_proto::response::Code;
use mail_types::HIERARCHY_SEPARATOR;

use crate::names::mailbox_name;
use crate::session::{Reply, Session};

impl Session {
    /// CREATE (RFC 3501 6.3.3). A trailing separator only declares the intent to create children
    /// below the name, so it is dropped; INBOX always exists.
    pub(crate) fn cmd_create(&mut self, arg: &MailboxArg) -> Reply {
        let mut raw = arg.0.clone();
        if raw.len() > 1 && raw.last() == Some(&(HIERARCHY_SEPARATOR as u8)) {
            raw.pop();
        }
        let name = match mailbox_name(&MailboxArg(raw)) {
            Ok(n) => n,
            Err(reply) => return reply,
        };
        if name.is_inbox() {
            return Reply::no("Mailbox already exists.").with_code(Code::AlreadyExists);
        }
        let Some(user) = self.user() else {
            return Reply::bad("Please log in first.");
        };
        match user.store.create(&name) {
            Ok(()) => Reply::ok("Create completed."),
            Err(e) => self.store_error(e),
        }
    }
}
