use crate::session::{Reply, Session};

impl Session {
    /// CHECK (RFC 3501 6.4.1): every change is already durable when it is acknowledged, so a
    /// checkpoint has nothing left to do beyond the update sync the dispatcher performs.
    pub(crate) fn cmd_check(&mut self) -> Reply {
        Reply::ok("Check completed.")
    }
}
