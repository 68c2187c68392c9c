use imap_proto::MailboxArg;

use crate::session::{Reply, Session};

impl Session {
    /// SUBSCRIBE and UNSUBSCRIBE (RFC 3501 6.3.6, 6.3.7). Subscribing to a name that does not
    /// exist is allowed: the RFC says a server MUST NOT remove a subscription because the mailbox
    /// went away, and some clients subscribe before they create.
    pub(crate) fn cmd_subscribe(&mut self, arg: &MailboxArg, subscribe: bool) -> Reply {
        let name = match self.mailbox_name(arg) {
            Ok(n) => n,
            Err(reply) => return reply,
        };
        let Some(user) = self.user() else {
            return Reply::bad("Please log in first.");
        };
        match user.store.set_subscribed(&name, subscribe) {
            Ok(()) if subscribe => Reply::ok("Subscribe completed."),
            Ok(()) => Reply::ok("Unsubscribe completed."),
            Err(e) => self.store_error(e),
        }
    }
}
