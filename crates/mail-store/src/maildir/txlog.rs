//! The mailbox's transaction log (`columba.index.log`, see `mail_index::log`): how changes this
//! process makes reach other processes on the same Maildir, and how a restart avoids a rescan.
//!
//! Every change to the index happens inside [`MaildirMailbox::transaction`]: it takes the log's
//! writer lock (always before the `dovecot-uidlist` dot lock, never after, so two processes
//! cannot wait on each other), applies what other processes logged since we last looked — with
//! their mod-sequences —, runs the change, and appends the ops it made as one record together
//! with the Maildir state they leave (directory stamps, uidlist stamp), so readers also learn
//! that the directories changed only by Columba's hand and need no scan.
//!
//! Any inconsistency — a damaged or foreign log, a record that does not continue our state, a
//! log shorter than where we were — is logged as a warning naming the file, and the mailbox
//! falls back to its mail files: a forced scan (UIDs come from `dovecot-uidlist`, flags from
//! the file names), HIGHESTMODSEQ raised to the saved ceiling so that no mod-sequence comes
//! round again, then the main index rewritten and a new log generation started. A log that was
//! rotated by another process is followed by reloading the main index it wrote.

use std::path::PathBuf;

use mail_index::log::{self as ixlog, LogPosition, ReplayOutcome};
use mail_index::{FsyncPolicy, IndexLog, LogError, LogLock};

use super::mailbox::MaildirMailbox;
use super::persist::decode_state;
use super::state::State;
use crate::Result;
use crate::index_log::ROTATE_AT;

// The log's name, the `fsync` policy and the statistics are every backend's
// (`crate::index_log`); re-exported here where they were first defined.
pub use crate::index_log::{LOG_FILE, LogStats, fsync_policy, set_fsync_policy};

impl MaildirMailbox {
    pub(super) fn log_path(&self) -> PathBuf {
        self.path.join(LOG_FILE)
    }

    /// Runs `f` as one logged transaction (see the module documentation). The changes `f` makes
    /// are logged even when it fails halfway: they happened to the index.
    pub(super) fn transaction<T>(
        &self,
        st: &mut State,
        f: impl FnOnce(&mut State) -> Result<T>,
    ) -> Result<T> {
        let lock = self.lock_log(st);
        st.index.start_journal();
        if std::mem::take(&mut st.raise_to_ceiling) {
            // Journaled, so that every process raises HIGHESTMODSEQ alike.
            self.apply_modseq_ceiling(st);
        }
        let result = f(st);
        self.commit_journal(st, lock);
        result
    }

    /// Applies what other processes logged, without taking the lock (what was applied shows in
    /// `st.log_news`). Returns whether the log needs a writer's attention (a bad or torn record,
    /// a rotation, no log) before the state can be trusted.
    pub(super) fn read_log_tail(&self, st: &mut State) -> bool {
        let Some(log) = st.log.as_mut() else {
            return !st.log_unavailable;
        };
        if log.replaced() {
            return true;
        }
        match log.has_news() {
            Ok(false) => return false,
            Ok(true) => {}
            Err(_) => return true,
        }
        match log.catch_up(&mut st.index, None) {
            Ok(out) => {
                let torn = out.torn.is_some();
                self.adopt(st, out);
                torn
            }
            Err(_) => true,
        }
    }

    /// Takes the writers' lock and brings the state to the log's end, following rotations and
    /// recovering from damage. `None` when no log can be used (then changes stay in memory and
    /// the next transaction starts a new log).
    pub(super) fn lock_log(&self, st: &mut State) -> Option<LogLock> {
        for _ in 0..4 {
            if st.log_unavailable {
                // No log could be written here (a read-only directory, a full disk): work as
                // before the log existed, from the mail files, rather than rescan at every
                // change trying again.
                return None;
            }
            let Some(log) = st.log.as_mut() else {
                return self.recover(st, "no usable log");
            };
            let lock = match log.lock() {
                Ok(lock) => lock,
                Err(LogError::Replaced) => match self.reload(st) {
                    Ok(lock) => lock,
                    Err(e) => {
                        let why = format!("cannot follow the rotated log: {e}");
                        return self.recover(st, &why);
                    }
                },
                Err(e) => return self.recover(st, &format!("cannot lock the log: {e}")),
            };
            let Some(log) = st.log.as_mut() else {
                continue;
            };
            match log.catch_up(&mut st.index, Some(&lock)) {
                Ok(out) => {
                    if let Some((at, what)) = out.torn {
                        tracing::warn!(file = %self.log_path().display(), "index log: torn record at offset {at} cut off ({what})");
                        // A write cut short handed nothing out, but a damaged length looks the
                        // same and may have hidden records whose mod-sequences clients saw.
                        st.raise_to_ceiling = true;
                    }
                    self.adopt(st, out);
                    return Some(lock);
                }
                Err(e) => {
                    let why = e.to_string();
                    // Held until the new generation is in place, so nobody appends to the
                    // damaged file meanwhile.
                    let fresh = self.recover(st, &why);
                    drop(lock);
                    return fresh;
                }
            }
        }
        self.recover(st, "the log kept being replaced")
    }

    /// Takes over what a replayed transaction says of the Maildir (see the module
    /// documentation).
    fn adopt(&self, st: &mut State, out: ReplayOutcome) {
        if out.applied == 0 {
            return;
        }
        st.log_stats.replayed += out.applied as u64;
        st.log_news = true;
        if let Some(saved) = out.backend_state.as_deref().and_then(decode_state) {
            st.new_dir = saved.new_dir;
            st.cur_dir = saved.cur_dir;
            st.uidlist.stamp = saved.uidlist;
            st.uidlist.guid = saved.guid;
            st.uidlist.header_ext = saved.header_ext;
            // The other writer's view of the uidlist is not ours to reuse.
            st.uidlist.exact = None;
        }
    }

    /// Another process rotated the log: load the main index it wrote and continue from there.
    /// Returns holding the lock of the new log.
    fn reload(&self, st: &mut State) -> std::result::Result<LogLock, LogError> {
        if let Some(old) = st.log.as_mut() {
            // Whatever was appended before the rotation is in the new index anyway; reading it
            // first only keeps our own view current if the reload fails.
            let _ = old.catch_up(&mut st.index, None);
        }
        let log = IndexLog::open(&self.log_path())?;
        let lock = log.lock()?;
        let Some(mut fresh) = self.restore() else {
            return Err(LogError::Corrupt {
                offset: 0,
                what: "the index written with the new log is unusable",
            });
        };
        let pos = fresh.log_position;
        let log = IndexLog::open_at(&self.log_path(), fresh.index.uid_validity(), pos)?;
        fresh.log = Some(log);
        fresh.modseq_ceiling = st.modseq_ceiling;
        fresh.log_stats = st.log_stats;
        fresh.log_news = true;
        *st = fresh;
        Ok(lock)
    }

    /// Falls back to the mail files (see the module documentation) and starts a new log
    /// generation; returns holding its lock.
    pub(super) fn recover(&self, st: &mut State, why: &str) -> Option<LogLock> {
        tracing::warn!(file = %self.log_path().display(), "index log unusable, rescanning the mail files: {why}");
        st.log_stats.recoveries += 1;
        st.log_news = true;
        // A partly read journal must not be written anywhere.
        let _ = st.index.take_journal();
        self.apply_modseq_ceiling(st);
        if let Err(e) = self.sync(st, true) {
            tracing::warn!(mailbox = %self.path.display(), "rescan after a log failure: {e}");
        }
        self.apply_modseq_ceiling(st);
        self.start_log(st)
    }

    /// Writes the main index and a new log generation that continues it, and returns holding
    /// the new log's lock. Other processes find the old log replaced and reload.
    pub(super) fn start_log(&self, st: &mut State) -> Option<LogLock> {
        if self.is_deleted() {
            return None;
        }
        let generation = st
            .log
            .as_ref()
            .map(|l| l.generation().wrapping_add(1).max(1))
            .unwrap_or_else(ixlog::fresh_generation);
        let uid_validity = st.index.uid_validity();
        let created = IndexLog::create_with(&self.log_path(), uid_validity, generation, |pos| {
            st.log_position = pos;
            self.write_index(st)
        });
        match created {
            Ok((log, lock)) => {
                st.log = Some(log);
                st.log_stats.rotations += 1;
                Some(lock)
            }
            Err(e) => {
                tracing::warn!(file = %self.log_path().display(), "cannot start a new index log, changes are not shared through it until the mailbox is reopened: {e}");
                st.log = None;
                st.log_unavailable = true;
                None
            }
        }
    }

    /// Appends the journal of the transaction that just ran, fsynced as the policy says, and
    /// rotates the log when it has grown long.
    fn commit_journal(&self, st: &mut State, lock: Option<LogLock>) {
        let journal = st.index.take_journal();
        let Some(lock) = lock else {
            // No log to write to: the next transaction starts one from the whole state.
            st.log = None;
            return;
        };
        let Some(journal) = journal else {
            // The index was replaced (a cold build): only a new generation describes it.
            self.rotate_holding(st, lock);
            return;
        };
        if journal.is_empty() {
            return;
        }
        let hands_out = st.index.cursor() != journal.modseq_before();
        let sync = match fsync_policy() {
            FsyncPolicy::Always => true,
            FsyncPolicy::Optimized => hands_out,
            FsyncPolicy::Never => false,
        };
        let record = ixlog::transaction_record(&journal, &st.index, &self.encode_backend_state(st));
        let Some(log) = st.log.as_mut() else {
            return;
        };
        match log.append(&lock, &record, sync) {
            Ok(()) => st.log_stats.appended += 1,
            Err(e) => {
                tracing::warn!(file = %self.log_path().display(), "cannot append to the index log, starting a new one: {e}");
                self.rotate_holding(st, lock);
                return;
            }
        }
        let long = log.position().offset > ROTATE_AT;
        let renumbered = log.uid_validity() != st.index.uid_validity();
        if long || renumbered {
            self.rotate_holding(st, lock);
        }
    }

    /// Starts a new generation while still holding the old log's lock: nobody may append to
    /// the old file between our last look at it and the rename, or their record would be
    /// lost with it.
    pub(super) fn rotate_holding(&self, st: &mut State, old: LogLock) {
        let new = self.start_log(st);
        drop(old);
        drop(new);
    }
}

/// The position the main index continues, for the saved state.
pub(super) fn position_of(st: &State) -> LogPosition {
    st.log.as_ref().map_or(st.log_position, IndexLog::position)
}
