use crate::session::{Reply, Session};

impl Session {
    /// ENABLE (RFC 5161 3.1): no extension that needs enabling is implemented yet, so every
    /// request is acknowledged with an empty `* ENABLED` — which the RFC requires for capabilities
    /// the server does not support or that cannot be enabled.
    pub(crate) fn cmd_enable(&mut self, requested: &[String]) -> Reply {
        tracing::debug!(session = %self.info.session_id, "ENABLE {:?}: nothing to enable", requested);
        self.out.extend_from_slice(b"* ENABLED\r\n");
        Reply::ok("Enabled.")
    }
}
