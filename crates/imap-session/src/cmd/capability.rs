use imap_proto::response::write_astring;

use crate::capability;
use crate::session::{Reply, Session};

impl Session {
    /// CAPABILITY (RFC 3501 6.1.1): `* CAPABILITY ...` for the current state.
    pub(crate) fn cmd_capability(&mut self) -> Reply {
        self.out.extend_from_slice(b"* CAPABILITY");
        for cap in capability::list(self) {
            self.out.push(b' ');
            write_astring(&mut self.out, cap.as_bytes());
        }
        self.out.extend_from_slice(b"\r\n");
        if self.is_authenticated() {
            Reply::ok("Capability completed.")
        } else {
            Reply::ok("Pre-login capabilities listed, post-login capabilities have more.")
        }
    }
}
