use imap_proto::response::write_string;

use crate::session::{Reply, Session};

/// Fields a client's ID may carry that are worth a log line; the rest is ignored.
const LOGGED_FIELDS: [&str; 4] = ["name", "version", "os", "vendor"];

impl Session {
    /// ID (RFC 2971 3.1): logs what the client says about itself and names the server. Values are
    /// length-limited in the log so a client cannot flood it.
    pub(crate) fn cmd_id(&mut self, params: Option<Vec<(String, Option<String>)>>) -> Reply {
        if let Some(params) = params {
            let summary: Vec<String> = params
                .iter()
                .filter(|(k, _)| LOGGED_FIELDS.iter().any(|f| k.eq_ignore_ascii_case(f)))
                .take(LOGGED_FIELDS.len())
                .map(|(k, v)| {
                    let v: String = v.as_deref().unwrap_or("NIL").chars().take(64).collect();
                    format!("{k}={v:?}")
                })
                .collect();
            tracing::info!(session = %self.info.session_id, "client ID: {}", summary.join(", "));
        }
        self.out.extend_from_slice(b"* ID (");
        write_string(&mut self.out, b"name");
        self.out.push(b' ');
        write_string(&mut self.out, b"Columba");
        self.out.push(b' ');
        write_string(&mut self.out, b"version");
        self.out.push(b' ');
        write_string(&mut self.out, env!("CARGO_PKG_VERSION").as_bytes());
        self.out.extend_from_slice(b")\r\n");
        Reply::ok("ID completed.")
    }
}
