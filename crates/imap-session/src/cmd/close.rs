use crate::session::{Reply, Session, State};

impl Session {
    /// CLOSE (RFC 3501 6.4.2) expunges `\Deleted` messages silently (unless the mailbox is
    /// read-only) and returns to the authenticated state; UNSELECT (RFC 3691 2) does the same
    /// without expunging.
    pub(crate) fn cmd_close(&mut self, expunge: bool) -> Reply {
        let State::Selected(user, selected) = std::mem::replace(&mut self.state, State::Logout)
        else {
            return Reply::bad("No mailbox selected.");
        };
        self.state = State::Authenticated(user);
        // RFC 5267 4.3: updates cease when the mailbox is no longer selected.
        self.search_contexts.clear();
        if expunge
            && !selected.view.read_only()
            && let Err(e) = selected.view.mailbox().expunge(None)
        {
            return self.store_error(e);
        }
        if expunge {
            Reply::ok("Close completed.")
        } else {
            Reply::ok("Unselect completed.")
        }
    }
}
