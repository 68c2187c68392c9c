use crate::session::{Reply, Session};

impl Session {
    /// NAMESPACE (RFC 2342 5): one personal namespace with an empty prefix and `/` as the
    /// hierarchy separator; no other users' or shared namespaces yet.
    pub(crate) fn cmd_namespace(&mut self) -> Reply {
        self.out
            .extend_from_slice(b"* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n");
        Reply::ok("Namespace completed.")
    }
}
