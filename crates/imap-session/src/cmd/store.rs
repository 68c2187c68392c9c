use imap_proto::StoreAction;
use imap_proto::response::{Code, write_flag_list};
use mail_store::FlagChange;
use mail_types::{Flag, Flags, SeqSet};

use crate::session::{Reply, Session, State};

impl Session {
    /// STORE and UID STORE (RFC 3501 6.4.6, 6.4.8). Without `.SILENT`, the new flags of every
    /// message in the set are returned (also unchanged ones, as the RFC's examples show); UID
    /// STORE responses include the UID.
    pub(crate) fn cmd_store(
        &mut self,
        uid_command: bool,
        set: &SeqSet,
        action: StoreAction,
        silent: bool,
        flags: &[Flag],
    ) -> Reply {
        let State::Selected(_, selected) = &mut self.state else {
            return Reply::bad("No mailbox selected.");
        };
        if selected.view.read_only() {
            return Reply::no("Mailbox is read-only.").with_code(Code::ReadOnly);
        }
        let targets = match selected.view.resolve(set, uid_command) {
            Ok(t) => t,
            Err(e) => return Reply::bad(format!("Error in IMAP command STORE: {e}.")),
        };
        let mut expunged = false;
        let mut uids = Vec::with_capacity(targets.len());
        for (seq, uid) in &targets {
            match selected.view.get(*seq) {
                Some(m) if !m.expunged => uids.push(*uid),
                _ => expunged = true,
            }
        }
        let flags = Flags::from_flags(flags.iter());
        let change = match action {
            StoreAction::Replace => FlagChange::Replace(flags),
            StoreAction::Add => FlagChange::Add(flags),
            StoreAction::Remove => FlagChange::Remove(flags),
        };
        let result = selected.view.mailbox().store_flags(&uids, &change);
        let states = match result {
            Ok(states) => states,
            Err(e) => return self.store_error(e),
        };
        let State::Selected(_, selected) = &mut self.state else {
            return Reply::bad("No mailbox selected.");
        };
        selected.view.note_own_changes(&states);
        if !silent {
            for (seq, uid) in targets {
                let Some(m) = selected.view.get(seq) else {
                    continue;
                };
                if m.expunged {
                    continue;
                }
                self.out
                    .extend_from_slice(format!("* {seq} FETCH (").as_bytes());
                if uid_command {
                    self.out.extend_from_slice(format!("UID {uid} ").as_bytes());
                }
                self.out.extend_from_slice(b"FLAGS ");
                write_flag_list(&mut self.out, m.flags.iter(), m.recent);
                self.out.extend_from_slice(b")\r\n");
            }
        }
        if expunged {
            Reply::no("Some of the messages no longer exist.").with_code(Code::ExpungeIssued)
        } else {
            Reply::ok("Store completed.")
        }
    }
}
