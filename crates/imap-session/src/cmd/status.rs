use imap_proto::response::write_mailbox;
use imap_proto::{MailboxArg, StatusItem};

use crate::names::mailbox_name;
use crate::session::{Reply, Session};

impl Session {
    /// STATUS (RFC 3501 6.3.10): the requested figures, in the order asked, without selecting.
    pub(crate) fn cmd_status(&mut self, arg: &MailboxArg, items: &[StatusItem]) -> Reply {
        let name = match mailbox_name(arg) {
            Ok(n) => n,
            Err(reply) => return reply,
        };
        let Some(user) = self.user() else {
            return Reply::bad("Please log in first.");
        };
        let status = match user.store.open(&name).and_then(|mb| {
            mb.refresh()?;
            mb.status()
        }) {
            Ok(s) => s,
            Err(e) => return self.store_error(e),
        };
        let mut figures = Vec::with_capacity(items.len());
        for item in items {
            figures.push(match item {
                StatusItem::Messages => format!("MESSAGES {}", status.messages),
                StatusItem::Recent => format!("RECENT {}", status.recent),
                StatusItem::UidNext => format!("UIDNEXT {}", status.uid_next),
                StatusItem::UidValidity => format!("UIDVALIDITY {}", status.uid_validity),
                StatusItem::Unseen => format!("UNSEEN {}", status.unseen),
                StatusItem::HighestModSeq => format!("HIGHESTMODSEQ {}", status.highest_modseq),
                StatusItem::Size => format!("SIZE {}", status.size),
                StatusItem::Deleted => format!("DELETED {}", status.deleted),
            });
        }
        self.out.extend_from_slice(b"* STATUS ");
        write_mailbox(&mut self.out, name.as_str(), false);
        self.out
            .extend_from_slice(format!(" ({})\r\n", figures.join(" ")).as_bytes());
        Reply::ok("Status completed.")
    }
}
