use imap_proto::response::{Status, status_line};

use crate::session::{Reply, Session, State};

impl Session {
    /// LOGOUT (RFC 3501 6.1.3): an untagged BYE, then the tagged OK, then the connection closes.
    pub(crate) fn cmd_logout(&mut self) -> Reply {
        self.out
            .extend_from_slice(&status_line(None, Status::Bye, None, "Logging out"));
        if let State::Authenticated(user) | State::Selected(user, _) =
            std::mem::replace(&mut self.state, State::Logout)
        {
            tracing::debug!(user = %user.record.name, "logout");
        }
        Reply::ok("Logout completed.")
    }
}
