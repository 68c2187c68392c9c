use imap_proto::MessageSet;
use imap_proto::response::Code;

use crate::cmd::searchres;
use crate::session::{Reply, Session, State};

impl Session {
    /// EXPUNGE (RFC 3501 6.4.3) and UID EXPUNGE (RFC 4315 2.1). The `* n EXPUNGE` responses come
    /// from the view sync the dispatcher runs after this, which also reports other sessions'
    /// expunges in the same pass.
    pub(crate) fn cmd_expunge(&mut self, only: Option<&MessageSet>) -> Reply {
        let State::Selected(_, selected) = &mut self.state else {
            return Reply::bad("No mailbox selected.");
        };
        if selected.view.read_only() {
            return Reply::no("Mailbox is read-only.").with_code(Code::ReadOnly);
        }
        let uids = match only {
            Some(set) => {
                match searchres::resolve(&selected.view, &self.saved_result, set, true) {
                    // An empty `$` expunges nothing (RFC 5182 2.1).
                    Ok(list) if list.is_empty() => return Reply::ok("Expunge completed."),
                    Ok(list) => Some(list.into_iter().map(|(_, uid)| uid).collect::<Vec<_>>()),
                    Err(e) => {
                        return Reply::bad(format!("Error in IMAP command UID EXPUNGE: {e}."));
                    }
                }
            }
            None => None,
        };
        let result = selected.view.mailbox().expunge(uids.as_deref());
        match result {
            Ok(_) => Reply::ok("Expunge completed."),
            Err(e) => self.store_error(e),
        }
    }
}
