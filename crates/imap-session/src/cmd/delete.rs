use imap_proto::MailboxArg;
use imap_proto::response::Code;

use crate::session::{Reply, Session};

impl Session {
    /// DELETE (RFC 3501 6.3.4). INBOX cannot be deleted; a mailbox with children loses its
    /// messages and stays as a `\Noselect` level (the store decides).
    pub(crate) fn cmd_delete(&mut self, arg: &MailboxArg) -> Reply {
        let name = match self.mailbox_name(arg) {
            Ok(n) => n,
            Err(reply) => return reply,
        };
        if name.is_inbox() {
            return Reply::no("INBOX can't be deleted.").with_code(Code::CanNot);
        }
        let Some(user) = self.user() else {
            return Reply::bad("Please log in first.");
        };
        match user.store.delete(&name) {
            Ok(()) => Reply::ok("Delete completed."),
            Err(e) => self.store_error(e),
        }
    }
}
