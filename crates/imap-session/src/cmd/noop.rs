use crate::session::{Reply, Session};

impl Session {
    /// NOOP (RFC 3501 6.1.2): does nothing but lets pending mailbox updates out, which the
    /// dispatcher sends before the tagged reply.
    pub(crate) fn cmd_noop(&mut self) -> Reply {
        Reply::ok("NOOP completed.")
    }
}
