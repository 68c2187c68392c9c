use imap_proto::response::{Code, write_flag_list, write_number};
use imap_proto::{MessageSet, StoreAction};
use mail_store::FlagChange;
use mail_types::{Flag, Flags, SeqSet, Uid};

use crate::cmd::searchres;
use crate::session::{Reply, Session, State};

impl Session {
    /// STORE and UID STORE (RFC 3501 6.4.6, 6.4.8). Without `.SILENT`, the new flags of every
    /// message in the set are returned (also unchanged ones, as the RFC's examples show); UID
    /// STORE responses include the UID.
    ///
    /// `UNCHANGEDSINCE n` (RFC 7162 3.1.3) leaves alone every message whose mod-sequence is above
    /// n and names them in `[MODIFIED ...]` (sequence numbers, or UIDs for UID STORE); the
    /// messages it did change are reported with their MODSEQ even with `.SILENT`. With CONDSTORE
    /// enabled every FETCH response here carries MODSEQ.
    pub(crate) fn cmd_store(
        &mut self,
        uid_command: bool,
        set: &MessageSet,
        action: StoreAction,
        silent: bool,
        flags: &[Flag],
        unchanged_since: Option<u64>,
    ) -> Reply {
        let condstore = self.condstore;
        let State::Selected(_, selected) = &mut self.state else {
            return Reply::bad("No mailbox selected.");
        };
        if selected.view.read_only() {
            return Reply::no("Mailbox is read-only.").with_code(Code::ReadOnly);
        }
        let resolved = searchres::resolve(&selected.view, &self.saved_result, set, uid_command);
        let targets = match resolved {
            Ok(t) => t,
            Err(e) => return Reply::bad(format!("Error in IMAP command STORE: {e}.")),
        };
        let mut expunged = false;
        let mut uids = Vec::with_capacity(targets.len());
        // Per target: whether the STORE was attempted on it (it exists and passed UNCHANGEDSINCE).
        let mut attempted = Vec::with_capacity(targets.len());
        let mut modified = Vec::new();
        for (seq, uid) in &targets {
            let mut attempt = false;
            match selected.view.get(*seq) {
                Some(m) if !m.expunged => {
                    if unchanged_since.is_some_and(|n| m.modseq.get() > n) {
                        modified.push(if uid_command { uid.get() } else { seq.get() });
                    } else {
                        uids.push(*uid);
                        attempt = true;
                    }
                }
                _ => expunged = true,
            }
            attempted.push(attempt);
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
        let mut changed: Vec<Uid> = Vec::new();
        if unchanged_since.is_some() {
            changed = states.iter().map(|s| s.uid).collect();
            changed.sort_unstable();
        }
        if silent && unchanged_since.is_none() {
            return store_reply(expunged, modified);
        }
        for ((seq, uid), attempt) in targets.into_iter().zip(attempted) {
            let Some(m) = selected.view.get(seq) else {
                continue;
            };
            if m.expunged || !attempt {
                continue;
            }
            // RFC 7162 3.1.3: a conditional STORE reports what it changed even when silent.
            let report_modseq = unchanged_since.is_some() && changed.binary_search(&uid).is_ok();
            if silent && !report_modseq {
                continue;
            }
            let out = &mut self.out;
            out.extend_from_slice(b"* ");
            write_number(out, seq.get().into());
            out.extend_from_slice(b" FETCH (");
            let mut sep = "";
            if uid_command {
                out.extend_from_slice(b"UID ");
                write_number(out, uid.get().into());
                sep = " ";
            }
            if !silent {
                out.extend_from_slice(sep.as_bytes());
                out.extend_from_slice(b"FLAGS ");
                write_flag_list(out, m.flags.iter(), m.recent && !self.rev2);
                sep = " ";
            }
            if condstore || report_modseq {
                out.extend_from_slice(sep.as_bytes());
                out.extend_from_slice(b"MODSEQ (");
                write_number(out, m.modseq.get());
                out.push(b')');
            }
            out.extend_from_slice(b")\r\n");
        }
        store_reply(expunged, modified)
    }
}

/// STORE's tagged reply: NO when some messages were gone (RFC 5530 3's EXPUNGEISSUED),
/// `[MODIFIED]` for UNCHANGEDSINCE failures (RFC 7162 3.1.3).
fn store_reply(expunged: bool, modified: Vec<u32>) -> Reply {
    if expunged {
        return Reply::no("Some of the messages no longer exist.").with_code(Code::ExpungeIssued);
    }
    match SeqSet::from_values(modified) {
        Some(set) => Reply::ok("Conditional STORE failed.").with_code(Code::Modified(set)),
        None => Reply::ok("Store completed."),
    }
}
