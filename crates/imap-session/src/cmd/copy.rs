use imap_proto::response::{Code, Status, status_line};
use imap_proto::{MailboxArg, MessageSet};
use mail_store::{FlagChange, StoreErrorKind};
use mail_types::{Flags, SeqSet, SystemFlags};

use crate::cmd::searchres;
use crate::session::{Reply, Session, State};

impl Session {
    /// COPY and UID COPY (RFC 3501 6.4.7, 6.4.8) with COPYUID (RFC 4315 3); MOVE and UID MOVE
    /// (RFC 6851 3.1-3.3): copy, then expunge the originals, reporting COPYUID in an untagged OK
    /// before the EXPUNGE responses.
    pub(crate) fn cmd_copy(
        &mut self,
        uid_command: bool,
        set: &MessageSet,
        dest: &MailboxArg,
        is_move: bool,
    ) -> Reply {
        let verb = if is_move { "MOVE" } else { "COPY" };
        let dest_name = match self.mailbox_name(dest) {
            Ok(n) => n,
            Err(reply) => return reply,
        };
        let State::Selected(user, selected) = &mut self.state else {
            return Reply::bad("No mailbox selected.");
        };
        if is_move && selected.view.read_only() {
            return Reply::no("Mailbox is read-only.").with_code(Code::ReadOnly);
        }
        let resolved = searchres::resolve(&selected.view, &self.saved_result, set, uid_command);
        let targets = match resolved {
            Ok(t) => t,
            Err(e) => return Reply::bad(format!("Error in IMAP command {verb}: {e}.")),
        };
        if targets
            .iter()
            .any(|(seq, _)| selected.view.get(*seq).is_none_or(|m| m.expunged))
        {
            // RFC 2180 4.4.1: refuse rather than copy part of what was asked for.
            return Reply::no("Some of the requested messages no longer exist.")
                .with_code(Code::ExpungeIssued);
        }
        let dest_mailbox = match user.store.open(&dest_name) {
            Ok(mb) => mb,
            Err(e) if e.kind() == StoreErrorKind::NotFound => {
                return Reply::no(format!("Mailbox doesn't exist: {dest_name}"))
                    .with_code(Code::TryCreate);
            }
            Err(e) => return self.store_error(e),
        };
        let source = selected.view.mailbox().clone();
        let uids: Vec<_> = targets.iter().map(|(_, uid)| *uid).collect();
        if !is_move {
            // RFC 9208 4.3; a MOVE between the user's own mailboxes adds nothing.
            let bytes = uids
                .iter()
                .filter_map(|&uid| source.message_info(uid).ok())
                .map(|info| info.size)
                .sum();
            if let Some(reply) = self.quota_refusal(bytes, uids.len() as u64) {
                return reply;
            }
        }
        let pairs = match source.copy_to(&uids, dest_mailbox.as_ref()) {
            Ok(p) => p,
            Err(e) => return self.store_error(e),
        };
        let code = match (
            SeqSet::from_values(pairs.iter().map(|(s, _)| s.get())),
            SeqSet::from_values(pairs.iter().map(|(_, d)| d.get())),
        ) {
            (Some(source), Some(destination)) => Some(Code::CopyUid {
                uid_validity: dest_mailbox.uid_validity().get(),
                source,
                destination,
            }),
            _ => None,
        };
        if !is_move {
            let reply = Reply::ok("Copy completed.");
            return match code {
                Some(c) => reply.with_code(c),
                None => reply,
            };
        }
        if let Some(c) = &code {
            self.out
                .extend_from_slice(&status_line(None, Status::Ok, Some(c), "Moved UIDs."));
        }
        let moved: Vec<_> = pairs.iter().map(|(s, _)| *s).collect();
        if !moved.is_empty() {
            let deleted = Flags::new(SystemFlags::DELETED, []);
            let expunged = source
                .store_flags(&moved, &FlagChange::Add(deleted))
                .and_then(|_| source.expunge(Some(&moved)));
            if let Err(e) = expunged {
                return self.store_error(e);
            }
        }
        // The EXPUNGE responses for the moved messages are sent right away (RFC 6851 3.3), even
        // for MOVE by sequence number.
        self.send_updates(true);
        Reply::ok("Move completed.")
    }
}
