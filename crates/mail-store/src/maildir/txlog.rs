//! The mailbox's transaction log (`columba.index.log`, see `mail_index::log`): how changes this
//! process makes reach other processes on the same Maildir, and how a restart avoids a rescan.
//!
//! The protocol is every backend's ([`Logged`], `crate::index_log`): each change to the index is
//! a transaction that takes the log's writer lock (always before the `dovecot-uidlist` dot lock,
//! never after, so two processes cannot wait on each other), applies what other processes
//! logged since we last looked — with their mod-sequences —, runs the change, and appends the
//! ops it made as one record. What this module adds is the Maildir's part: each record carries
//! the Maildir state the change leaves (directory stamps, uidlist stamp), so readers also learn
//! that the directories changed only by Columba's hand and need no scan; the fallback when the
//! log is unusable is a forced scan (UIDs from `dovecot-uidlist`, flags from the file names);
//! and following another process's rotation reloads the `columba.index` it wrote.

use std::path::PathBuf;

use mail_index::MailboxIndex;

use super::mailbox::MaildirMailbox;
use super::persist::{SavedMark, decode_state};
use super::state::State;
use crate::Result;
use crate::index_log::{LogState, Logged};

// The log's name, the `fsync` policy and the statistics are every backend's
// (`crate::index_log`); re-exported here where they were first defined.
pub use crate::index_log::{LOG_FILE, LogStats, fsync_policy, set_fsync_policy};

impl Logged for MaildirMailbox {
    type State = State;

    fn log_path(&self) -> PathBuf {
        self.path.join(LOG_FILE)
    }

    fn parts(st: &mut State) -> (&mut MailboxIndex, &mut LogState) {
        (&mut st.index, &mut st.log)
    }

    fn gone(&self) -> bool {
        self.is_deleted()
    }

    /// The directories and the uidlist as the writer left them: when they still look so, the
    /// replayed index matches them and nothing needs a scan.
    fn adopt_state(&self, st: &mut State, backend_state: &[u8]) {
        // A state we cannot read leaves our stamps older than the directories, which the next
        // sync then scans.
        if let Some(saved) = decode_state(backend_state) {
            st.new_dir = saved.new_dir;
            st.cur_dir = saved.cur_dir;
            st.uidlist.stamp = saved.uidlist;
            st.uidlist.guid = saved.guid;
            st.uidlist.header_ext = saved.header_ext;
            // The other writer's view of the uidlist is not ours to reuse.
            st.uidlist.exact = None;
        }
    }

    fn encode_state(&self, st: &State) -> Vec<u8> {
        self.encode_backend_state(st)
    }

    /// Writes `columba.index` with the state's log position, and remembers that it matches the
    /// state (closing the mailbox then need not write it again: 12 MB at a million messages).
    fn write_index(&self, st: &mut State) -> std::result::Result<(), String> {
        self.write_index_file(st)?;
        st.saved = Some(SavedMark::of(st));
        Ok(())
    }

    fn reload_index(&self, old: &mut State) -> Option<State> {
        let mut fresh = self.restore()?;
        fresh.modseq_ceiling = old.modseq_ceiling;
        Some(fresh)
    }

    /// A forced scan: UIDs come from `dovecot-uidlist`, flags from the file names.
    fn rescan(&self, st: &mut State) -> Result<()> {
        self.sync(st, true).map(|_| ())
    }

    fn apply_modseq_ceiling(&self, st: &mut State) {
        MaildirMailbox::apply_modseq_ceiling(self, st)
    }
}
