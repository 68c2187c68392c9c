use imap_proto::MailboxArg;
use imap_proto::response::Code;

use crate::session::{Reply, Session};

impl Session {
    /// RENAME (RFC 3501 6.3.5): children move along; renaming INBOX moves its messages into a
    /// new mailbox and leaves INBOX empty (the store implements both).
    pub(crate) fn cmd_rename(&mut self, from: &MailboxArg, to: &MailboxArg) -> Reply {
        let (from, to) = match (self.mailbox_name(from), self.mailbox_name(to)) {
            (Ok(f), Ok(t)) => (f, t),
            (Err(reply), _) | (_, Err(reply)) => return reply,
        };
        if to.is_inbox() {
            return Reply::no("Mailbox already exists.").with_code(Code::AlreadyExists);
        }
        if to == from || to.is_descendant_of(&from) {
            return Reply::no("Can't rename a mailbox to itself or below itself.")
                .with_code(Code::CanNot);
        }
        let Some(user) = self.user() else {
            return Reply::bad("Please log in first.");
        };
        match user.store.rename(&from, &to) {
            Ok(()) => Reply::ok("Rename completed."),
            Err(e) => self.store_error(e),
        }
    }
}
