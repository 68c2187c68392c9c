use imap_proto::MailboxArg;
use imap_proto::response::Code;
use mail_types::HIERARCHY_SEPARATOR;

use crate::cmd::list::SPECIAL_USE;
use crate::session::{Reply, Session};

/// The special uses a client may give a new mailbox (RFC 6154 3). `\All` and `\Flagged` name
/// virtual mailboxes that gather messages from elsewhere, which a Maildir folder cannot be, so
/// they are refused with USEATTR as the RFC allows.
const CREATABLE_USES: [&str; 5] = ["\\Archive", "\\Drafts", "\\Junk", "\\Sent", "\\Trash"];

impl Session {
    /// CREATE (RFC 3501 6.3.3). A trailing separator only declares the intent to create children
    /// below the name, so it is dropped; INBOX always exists.
    ///
    /// The tagged OK carries the new mailbox's MAILBOXID (RFC 8474 4.1).
    ///
    /// With `(USE (...))` (RFC 6154 3, CREATE-SPECIAL-USE) the mailbox is created with those
    /// special-use attributes, or not at all: an attribute that is unknown or cannot be given is
    /// refused with `NO [USEATTR]` before anything is created.
    pub(crate) fn cmd_create(&mut self, arg: &MailboxArg, uses: &[String]) -> Reply {
        let mut raw = arg.0.clone();
        if raw.len() > 1 && raw.last() == Some(&(HIERARCHY_SEPARATOR as u8)) {
            raw.pop();
        }
        let name = match self.mailbox_name(&MailboxArg(raw)) {
            Ok(n) => n,
            Err(reply) => return reply,
        };
        if name.is_inbox() {
            return Reply::no("Mailbox already exists.").with_code(Code::AlreadyExists);
        }
        let mut attrs: Vec<String> = Vec::with_capacity(uses.len());
        for asked in uses {
            let Some(known) = SPECIAL_USE.iter().find(|a| a.eq_ignore_ascii_case(asked)) else {
                return Reply::no(format!("Unknown special-use attribute: {asked}"))
                    .with_code(Code::UseAttr);
            };
            if !CREATABLE_USES.contains(known) {
                return Reply::no(format!("Cannot create a mailbox with {known}"))
                    .with_code(Code::UseAttr);
            }
            if !attrs.iter().any(|a| a == known) {
                attrs.push((*known).to_owned());
            }
        }
        let Some(user) = self.user() else {
            return Reply::bad("Please log in first.");
        };
        let created = if attrs.is_empty() {
            user.store.create(&name)
        } else {
            user.store.create_special_use(&name, &attrs)
        };
        match created {
            // RFC 8474 4.1: the new mailbox's MAILBOXID in the tagged OK.
            Ok(()) => {
                let id = user.store.open(&name).ok().and_then(|mb| mb.mailbox_id());
                let reply = Reply::ok("Create completed.");
                match id {
                    Some(id) => reply.with_code(Code::MailboxId(id)),
                    None => reply,
                }
            }
            Err(e) if !attrs.is_empty() && e.kind() == mail_store::StoreErrorKind::NotPossible => {
                Reply::no("Special-use attributes are not supported here.").with_code(Code::UseAttr)
            }
            Err(e) => self.store_error(e),
        }
    }
}
