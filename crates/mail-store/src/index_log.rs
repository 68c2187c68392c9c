//! What every backend needs to keep its index on the mailbox's transaction log
//! (`columba.index.log`, see `mail_index::log`), whatever its mail files are: the file's name,
//! the process-wide `fsync` policy, the counters tests read, and — as the [`Logged`] trait —
//! the transaction protocol itself.
//!
//! Every change to the index happens inside [`Logged::transaction`]: it takes the log's writer
//! lock (before any lock of the backend's own files, never after, so that two processes cannot
//! wait on each other), applies what other processes logged since we last looked — with their
//! mod-sequences —, runs the change, and appends the ops it made as one record together with
//! the backend's state after them (what its files look like to an index that holds those ops),
//! so readers also learn that the files changed only by Columba's hand and need no scan.
//!
//! Any inconsistency — a damaged or foreign log, a record that does not continue our state, a
//! log shorter than where we were — is logged as a warning naming the file, and the backend
//! falls back to its mail files ([`Logged::rescan`]) with HIGHESTMODSEQ raised to the saved
//! ceiling so that no mod-sequence comes round again, then the main index is rewritten and a
//! new log generation started. A log that was rotated by another process is followed by
//! reloading the main index it wrote.
//!
//! Both backends implement [`Logged`]: Maildir in `maildir/txlog.rs`, mbox in
//! `mbox/mailbox.rs`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};

use mail_index::log::{self as ixlog, LogPosition, ReplayOutcome};
use mail_index::{FsyncPolicy, IndexLog, LogError, LogLock, MailboxIndex};

use crate::Result;

/// The log beside (or, for mbox, in the control directory with) `columba.index`.
pub const LOG_FILE: &str = "columba.index.log";

/// A log longer than this is folded into a new main index and started afresh.
pub(crate) const ROTATE_AT: u64 = 1 << 20;

/// The process-wide `fsync` setting (0 optimized, 1 always, 2 never).
static FSYNC: AtomicU8 = AtomicU8::new(0);

/// Sets when log appends are fsynced ([`FsyncPolicy`]); the binary calls it from its
/// configuration before opening mail.
pub fn set_fsync_policy(policy: FsyncPolicy) {
    let v = match policy {
        FsyncPolicy::Optimized => 0,
        FsyncPolicy::Always => 1,
        FsyncPolicy::Never => 2,
    };
    FSYNC.store(v, Ordering::Relaxed);
}

pub fn fsync_policy() -> FsyncPolicy {
    match FSYNC.load(Ordering::Relaxed) {
        1 => FsyncPolicy::Always,
        2 => FsyncPolicy::Never,
        _ => FsyncPolicy::Optimized,
    }
}

/// What the log did for one mailbox of this process, for tests and diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Transactions of other processes applied.
    pub replayed: u64,
    /// Transactions this process appended.
    pub appended: u64,
    /// Times the log could not be used and the mail files were scanned instead.
    pub recoveries: u64,
    /// New log generations this process started (rotations and recoveries).
    pub rotations: u64,
}

/// The log's part of a mailbox's state.
#[derive(Debug, Default)]
pub(crate) struct LogState {
    /// The log, open at the offset the index has applied (`None`: no usable log; the next
    /// transaction starts one).
    pub log: Option<IndexLog>,
    /// Where in the log the saved main index ends (what `columba.index` was loaded with or
    /// is about to be written with).
    pub position: LogPosition,
    /// When `position` starts a generation this process is rotating to, where the generation
    /// it replaces ends (generation 0: none). The main index is written before the new log
    /// is renamed into place, so a crash between the two leaves an index whose log is still
    /// the old one: [`open_saved_log`] continues that one from here.
    pub previous: LogPosition,
    /// Changes of other processes were applied since the listeners were last woken.
    pub news: bool,
    /// The log lost records (a cut tail): the next transaction raises HIGHESTMODSEQ to the
    /// ceiling first.
    pub raise_to_ceiling: bool,
    /// Starting a log failed; this process works without one for this mailbox.
    pub unavailable: bool,
    pub stats: LogStats,
}

impl LogState {
    /// The position a main index written now continues.
    pub fn position_now(&self) -> LogPosition {
        self.log.as_ref().map_or(self.position, IndexLog::position)
    }
}

/// Opens the log a loaded main index continues (`ls.position`), into `ls.log`. When a rotation
/// was cut short after the index was written and before the new log replaced the old one, the
/// old log is continued from where it ended at the rotation (`ls.previous`): what anyone
/// appended to it afterwards is replayed from there, nothing is lost and nothing rescanned.
pub(crate) fn open_saved_log(
    path: &std::path::Path,
    uid_validity: mail_types::UidValidity,
    ls: &mut LogState,
) -> std::result::Result<(), LogError> {
    let log = match IndexLog::open_at(path, uid_validity, ls.position) {
        Err(LogError::Generation { found, .. })
            if ls.previous.generation != 0 && ls.previous.generation == found =>
        {
            tracing::warn!(file = %path.display(), "index log: the last rotation did not finish, continuing generation {found}");
            let log = IndexLog::open_at(path, uid_validity, ls.previous)?;
            ls.position = ls.previous;
            ls.previous = LogPosition::default();
            log
        }
        other => other?,
    };
    ls.log = Some(log);
    Ok(())
}

/// A mailbox whose index changes go through the transaction log. The backend says where its
/// log is, what of its files' state travels with each record, how to write and reload its main
/// index and how to rebuild from its mail files; the provided methods are the protocol.
pub(crate) trait Logged {
    /// Everything behind the mailbox's mutex.
    type State;

    fn log_path(&self) -> PathBuf;

    /// The index and the log's part of the state, borrowed together.
    fn parts(st: &mut Self::State) -> (&mut MailboxIndex, &mut LogState);

    /// The mailbox was deleted or renamed away: no new log is started for it.
    fn gone(&self) -> bool;

    /// Takes over the backend state a replayed record carried (its files as that index sees
    /// them).
    fn adopt_state(&self, st: &mut Self::State, backend_state: &[u8]);

    /// The backend state a record carries.
    fn encode_state(&self, st: &Self::State) -> Vec<u8>;

    /// Writes the main index, continuing the log at the state's `LogState::position` (and
    /// notes in the state, if the backend keeps such a mark, that it matches the file).
    fn write_index(&self, st: &mut Self::State) -> std::result::Result<(), String>;

    /// The state the main index on disk holds (to follow a rotation), with what only this
    /// process knows carried over from `old`; its `LogState::position` set from the file.
    fn reload_index(&self, old: &mut Self::State) -> Option<Self::State>;

    /// Brings the index in line with the mail files by reading them all (UIDs and flags come
    /// from the files), without a journal.
    fn rescan(&self, st: &mut Self::State) -> Result<()>;

    /// Raises HIGHESTMODSEQ to the ceiling saved on disk.
    fn apply_modseq_ceiling(&self, st: &mut Self::State);

    /// Runs `f` as one logged transaction (see the module documentation). The changes `f` makes
    /// are logged even when it fails halfway: they happened to the index.
    fn transaction<T>(
        &self,
        st: &mut Self::State,
        f: impl FnOnce(&mut Self::State) -> Result<T>,
    ) -> Result<T> {
        let lock = self.lock_log(st);
        let (index, ls) = Self::parts(st);
        index.start_journal();
        if std::mem::take(&mut ls.raise_to_ceiling) {
            // Journaled, so that every process raises HIGHESTMODSEQ alike.
            self.apply_modseq_ceiling(st);
        }
        let result = f(st);
        self.commit_journal(st, lock);
        result
    }

    /// Applies what other processes logged, without taking the lock (what was applied shows in
    /// `LogState::news`). Returns whether the log needs a writer's attention (a bad or torn
    /// record, a rotation, no log) before the state can be trusted.
    fn read_log_tail(&self, st: &mut Self::State) -> bool {
        let (index, ls) = Self::parts(st);
        let Some(log) = ls.log.as_mut() else {
            return !ls.unavailable;
        };
        if log.replaced() {
            return true;
        }
        match log.has_news() {
            Ok(false) => return false,
            Ok(true) => {}
            Err(_) => return true,
        }
        match log.catch_up(index, None) {
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
    fn lock_log(&self, st: &mut Self::State) -> Option<LogLock> {
        for _ in 0..4 {
            let (_, ls) = Self::parts(st);
            if ls.unavailable {
                // No log could be written here (a read-only directory, a full disk): work as
                // before the log existed, from the mail files, rather than rescan at every
                // change trying again.
                return None;
            }
            let Some(log) = ls.log.as_mut() else {
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
            let (index, ls) = Self::parts(st);
            let Some(log) = ls.log.as_mut() else {
                continue;
            };
            match log.catch_up(index, Some(&lock)) {
                Ok(out) => {
                    if let Some((at, what)) = out.torn {
                        tracing::warn!(file = %self.log_path().display(), "index log: torn record at offset {at} cut off ({what})");
                        // A write cut short handed nothing out, but a damaged length looks the
                        // same and may have hidden records whose mod-sequences clients saw.
                        ls.raise_to_ceiling = true;
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

    /// Takes over what replayed transactions say of the backend's files.
    fn adopt(&self, st: &mut Self::State, out: ReplayOutcome) {
        if out.applied == 0 {
            return;
        }
        let (_, ls) = Self::parts(st);
        ls.stats.replayed += out.applied as u64;
        ls.news = true;
        if let Some(saved) = out.backend_state.as_deref() {
            self.adopt_state(st, saved);
        }
    }

    /// Another process rotated the log: load the main index it wrote and continue from there.
    /// Returns holding the lock of the new log.
    fn reload(&self, st: &mut Self::State) -> std::result::Result<LogLock, LogError> {
        let (index, ls) = Self::parts(st);
        if let Some(old) = ls.log.as_mut() {
            // Whatever was appended before the rotation is in the new index anyway; reading it
            // first only keeps our own view current if the reload fails.
            let _ = old.catch_up(index, None);
        }
        let log = IndexLog::open(&self.log_path())?;
        let lock = log.lock()?;
        let Some(mut fresh) = self.reload_index(st) else {
            return Err(LogError::Corrupt {
                offset: 0,
                what: "the index written with the new log is unusable",
            });
        };
        let stats = Self::parts(st).1.stats;
        let (fresh_index, fresh_ls) = Self::parts(&mut fresh);
        open_saved_log(&self.log_path(), fresh_index.uid_validity(), fresh_ls)?;
        fresh_ls.stats = stats;
        fresh_ls.news = true;
        *st = fresh;
        Ok(lock)
    }

    /// Falls back to the mail files (see the module documentation) and starts a new log
    /// generation; returns holding its lock.
    fn recover(&self, st: &mut Self::State, why: &str) -> Option<LogLock> {
        tracing::warn!(file = %self.log_path().display(), "index log unusable, rescanning the mail files: {why}");
        let (index, ls) = Self::parts(st);
        ls.stats.recoveries += 1;
        ls.news = true;
        // A partly read journal must not be written anywhere.
        let _ = index.take_journal();
        self.apply_modseq_ceiling(st);
        if let Err(e) = self.rescan(st) {
            tracing::warn!(file = %self.log_path().display(), "rescan after a log failure: {e}");
        }
        self.apply_modseq_ceiling(st);
        self.start_log(st)
    }

    /// Writes the main index and a new log generation that continues it, and returns holding
    /// the new log's lock. Other processes find the old log replaced and reload.
    fn start_log(&self, st: &mut Self::State) -> Option<LogLock> {
        if self.gone() {
            return None;
        }
        let (index, ls) = Self::parts(st);
        let generation = ls
            .log
            .as_ref()
            .map(|l| l.generation().wrapping_add(1).max(1))
            .unwrap_or_else(ixlog::fresh_generation);
        let uid_validity = index.uid_validity();
        // Where the old generation ends: the index written below also names it, for the
        // moment between its rename and the new log's (see `LogState::previous`).
        let previous = ls.log.as_ref().map(IndexLog::position).unwrap_or_default();
        let path = self.log_path();
        let created = IndexLog::create_with(&path, uid_validity, generation, |pos| {
            let ls = Self::parts(st).1;
            ls.position = pos;
            ls.previous = previous;
            self.write_index(st)
        });
        let (_, ls) = Self::parts(st);
        match created {
            Ok((log, lock)) => {
                ls.log = Some(log);
                ls.stats.rotations += 1;
                Some(lock)
            }
            Err(e) => {
                tracing::warn!(file = %path.display(), "cannot start a new index log, changes are not shared through it until the mailbox is reopened: {e}");
                ls.log = None;
                ls.unavailable = true;
                None
            }
        }
    }

    /// Appends the journal of the transaction that just ran, fsynced as the policy says, and
    /// rotates the log when it has grown long.
    fn commit_journal(&self, st: &mut Self::State, lock: Option<LogLock>) {
        let (index, ls) = Self::parts(st);
        let journal = index.take_journal();
        let Some(lock) = lock else {
            // No log to write to: the next transaction starts one from the whole state.
            ls.log = None;
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
        let hands_out = index.cursor() != journal.modseq_before();
        let sync = match fsync_policy() {
            FsyncPolicy::Always => true,
            FsyncPolicy::Optimized => hands_out,
            FsyncPolicy::Never => false,
        };
        let state = self.encode_state(st);
        let (index, ls) = Self::parts(st);
        let record = ixlog::transaction_record(&journal, index, &state);
        let Some(log) = ls.log.as_mut() else {
            return;
        };
        match log.append(&lock, &record, sync) {
            Ok(()) => ls.stats.appended += 1,
            Err(e) => {
                tracing::warn!(file = %self.log_path().display(), "cannot append to the index log, starting a new one: {e}");
                self.rotate_holding(st, lock);
                return;
            }
        }
        let long = log.position().offset > ROTATE_AT;
        let renumbered = log.uid_validity() != index.uid_validity();
        if long || renumbered {
            self.rotate_holding(st, lock);
        }
    }

    /// Starts a new generation while still holding the old log's lock: nobody may append to
    /// the old file between our last look at it and the rename, or their record would be
    /// lost with it.
    fn rotate_holding(&self, st: &mut Self::State, old: LogLock) {
        let new = self.start_log(st);
        drop(old);
        drop(new);
    }

    /// Saves the main index as of the log's end (under its lock, after reading its tail, so a
    /// rotation by another process is never overwritten with an older index) when `changed`
    /// says the state differs from what was saved. Returns whether it wrote the index.
    fn save_at_log_end(
        &self,
        st: &mut Self::State,
        changed: impl FnOnce(&Self::State) -> bool,
    ) -> bool {
        let (index, ls) = Self::parts(st);
        let Some(log) = ls.log.as_mut() else {
            return false;
        };
        let Ok(lock) = log.lock() else {
            // Rotated by another process, which wrote a newer index.
            return false;
        };
        match log.catch_up(index, Some(&lock)) {
            Ok(out) => self.adopt(st, out),
            Err(_) => return false,
        }
        if !changed(st) {
            return false;
        }
        // A process starting a new log replaces index and log under this lock; holding it, the
        // log must still be ours, or our index would go beside its log.
        let _pair = ixlog::PairLock::acquire(&self.log_path());
        let (_, ls) = Self::parts(st);
        if ls.log.as_ref().is_none_or(|l| l.replaced()) {
            return false;
        }
        ls.position = ls.position_now();
        ls.previous = LogPosition::default();
        let written = self.write_index(st);
        drop(lock);
        match written {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(file = %self.log_path().display(), "cannot save the index beside this log: {e}");
                false
            }
        }
    }
}
