use imap_proto::response::write_mailbox;
use imap_proto::{MailboxArg, StatusItem};

use mail_types::MailboxName;

use crate::session::{Reply, Session};

impl Session {
    /// STATUS (RFC 3501 6.3.10): the requested figures, in the order asked, without selecting.
    pub(crate) fn cmd_status(&mut self, arg: &MailboxArg, items: &[StatusItem]) -> Reply {
        let name = match self.mailbox_name(arg) {
            Ok(n) => n,
            Err(reply) => return reply,
        };
        match self.write_status(&name, items) {
            Ok(()) => Reply::ok("Status completed."),
            Err(reply) => reply,
        }
    }

    /// Writes `* STATUS name (...)` with the figures asked for, in the order asked; for STATUS
    /// and for LIST's `RETURN (STATUS ...)` (RFC 5819).
    pub(crate) fn write_status(
        &mut self,
        name: &MailboxName,
        items: &[StatusItem],
    ) -> Result<(), Reply> {
        let Some(user) = self.user() else {
            return Err(Reply::bad("Please log in first."));
        };
        let wants_deleted_storage = items.contains(&StatusItem::DeletedStorage);
        let (status, mailbox_id, deleted_storage) = match user.store.open(name).and_then(|mb| {
            mb.refresh()?;
            let deleted_storage = if wants_deleted_storage {
                crate::cmd::quota::deleted_storage(mb.as_ref())?
            } else {
                0
            };
            Ok((mb.status()?, mb.mailbox_id(), deleted_storage))
        }) {
            Ok(s) => s,
            Err(e) => return Err(self.store_error(e)),
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
                // RFC 8474 4.3; a backend without identifiers has nothing to say.
                StatusItem::MailboxId => match &mailbox_id {
                    Some(id) => format!("MAILBOXID ({id})"),
                    None => continue,
                },
                // RFC 9208 4.2: the octets an EXPUNGE would free.
                StatusItem::DeletedStorage => format!("DELETED-STORAGE {deleted_storage}"),
                // RFC 7889 3.1: one limit for every mailbox, the one CAPABILITY announces.
                StatusItem::AppendLimit => {
                    format!("APPENDLIMIT {}", self.ctx.settings.limits.max_append)
                }
            });
        }
        self.out.extend_from_slice(b"* STATUS ");
        write_mailbox(&mut self.out, name.as_str(), self.utf8);
        self.out
            .extend_from_slice(format!(" ({})\r\n", figures.join(" ")).as_bytes());
        Ok(())
    }
}
