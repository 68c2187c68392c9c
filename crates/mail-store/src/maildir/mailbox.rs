//! One Maildir mailbox: the [`Mailbox`] implementation over the shared index.
//!
//! Every session that opens the mailbox in this process holds the same `Arc<MaildirMailbox>`
//! (see the registry in `maildir/mod.rs`), so the index, the change history and `\Recent`
//! ownership are shared; the mutex around [`State`] orders all changes. Changes to files follow
//! Dovecot's rules so that both servers can work on the same Maildir: flag changes rename files in
//! `cur/`, expunges unlink them, and both happen under the `dovecot-uidlist` lock.

use std::any::Any;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::SystemTime;

use mail_index::{FsyncPolicy, MessageCache, Op};
use mail_types::{Flags, MailboxName, SystemFlags, Uid, UidValidity};

use super::dotlock::DotLock;
use super::filename;
use super::io as mio;
use super::state::{Dir, DirStamp, Location, State};
use super::sync::{dir_mtime, index_error};
use super::tmp_cleanup::TmpCleanup;
use super::txlog;
use super::uidlist;
use crate::index_log::{self, Logged as _};
use crate::indexed::{self, CacheSlot, Listeners};
use crate::{
    AppendWriter, CacheField, ChangeCursor, ChangeListener, Changes, FlagChange, Mailbox,
    MailboxStatus, MessageInfo, MessageState, Result, SharedSnapshot, Snapshot, StoreError,
};

/// The cache file in each mailbox directory, beside Dovecot's `dovecot.index.cache`.
pub const CACHE_FILE: &str = "columba.index.cache";

/// A Maildir mailbox shared by every session of this process that has it open.
pub struct MaildirMailbox {
    pub(super) name: MailboxName,
    /// The user's Maildir root (where the UIDVALIDITY counter lives).
    pub(super) root: PathBuf,
    /// The mailbox directory (holding `cur/`, `new/`, `tmp/`).
    pub(super) path: PathBuf,
    pub(super) me: Weak<MaildirMailbox>,
    pub(super) state: Mutex<State>,
    listeners: Listeners,
    deleted: AtomicBool,
    /// The cache file of derived values (`CACHE_FILE`).
    cache: CacheSlot,
    /// When `tmp/` was last checked for files writers left behind.
    pub(super) tmp_cleanup: TmpCleanup,
}

impl std::fmt::Debug for MaildirMailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaildirMailbox")
            .field("name", &self.name)
            .field("path", &self.path)
            .finish()
    }
}

impl MaildirMailbox {
    /// Opens the mailbox in `path`: from its saved index when there is a usable one (then only
    /// what changed since is scanned), otherwise by indexing its files, and saves the result.
    pub(super) fn open(name: MailboxName, root: PathBuf, path: PathBuf) -> Result<Arc<Self>> {
        let cache = CacheSlot::new(path.join(CACHE_FILE));
        let mailbox = Arc::new_cyclic(|me| MaildirMailbox {
            name,
            root,
            path,
            me: me.clone(),
            state: Mutex::new(State::new()),
            listeners: Listeners::default(),
            deleted: AtomicBool::new(false),
            cache,
            tmp_cleanup: TmpCleanup::default(),
        });
        {
            let mut st = mailbox.lock();
            let restored = mailbox.restore();
            let from_disk = restored.is_some();
            if let Some(saved) = restored {
                *st = saved;
            }
            if from_disk {
                let uid_validity = st.index.uid_validity();
                match index_log::open_saved_log(&mailbox.log_path(), uid_validity, &mut st.log) {
                    Ok(()) => {}
                    Err(e) => {
                        st.log.stats.recoveries += 1;
                        tracing::warn!(file = %mailbox.log_path().display(), "index log unusable, rescanning the mail files: {e}");
                    }
                }
            }
            if st.log.log.is_some() {
                // The index plus the whole log hold every mod-sequence handed out; only with
                // `fsync = never` may a power loss have lost some, so the ceiling applies then.
                mailbox.transaction(&mut st, |st| {
                    if txlog::fsync_policy() == FsyncPolicy::Never {
                        mailbox.apply_modseq_ceiling(st);
                    } else {
                        mailbox.read_modseq_ceiling(st);
                    }
                    // Anyone may have rewritten dovecot-uidlist meanwhile (or it got torn): then
                    // reconcile it with the files as a cold open would, keeping the UIDs we know.
                    let uidlist_moved = mio::stamp(&mailbox.uidlist_path())? != st.uidlist.stamp;
                    mailbox.sync(st, uidlist_moved)
                })?;
            } else {
                // Changes found by this sync must come after every mod-sequence ever handed out.
                mailbox.apply_modseq_ceiling(&mut st);
                mailbox.sync(&mut st, true)?;
                // A cold build started a new index; HIGHESTMODSEQ still must not go back.
                mailbox.apply_modseq_ceiling(&mut st);
                // Indexing was the expensive part: keep it, with a log that continues it.
                drop(mailbox.start_log(&mut st));
            }
            st.log.news = false;
        }
        Ok(mailbox)
    }

    pub(super) fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not take the mailbox down with it; the state stays consistent
        // because every change is a single index op.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(super) fn check_not_deleted(&self) -> Result<()> {
        if self.deleted.load(Ordering::Acquire) {
            return Err(StoreError::NotFound(self.name.to_string()));
        }
        Ok(())
    }

    /// The mailbox was deleted or renamed away: every further operation fails.
    pub(super) fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::Release);
        self.notify();
    }

    /// Wakes the listeners (IDLE sessions). Called after the state lock is released.
    pub(super) fn notify(&self) {
        self.listeners.notify();
    }

    /// Runs `f` on the cache file (see [`CacheSlot::with`]).
    fn with_cache<T>(&self, f: impl FnOnce(&mut MessageCache) -> T) -> T {
        let uid_validity = self.lock().index.uid_validity();
        let live = || self.lock().index.records().map(|r| r.uid()).collect();
        self.cache.with(uid_validity, live, f)
    }

    pub(super) fn forget_cached(&self, uids: &[Uid]) {
        self.cache.forget(uids);
    }

    pub(super) fn file_path(&self, loc: &Location<'_>) -> PathBuf {
        self.path.join(loc.dir.name()).join(loc.fname)
    }

    /// The path of a message's file, or `Expunged`.
    fn locate(&self, st: &State, uid: Uid) -> Result<PathBuf> {
        let rec = st.index.get(uid).ok_or(StoreError::Expunged)?;
        let loc = Location::decode(rec.backend())
            .ok_or_else(|| StoreError::Internal(format!("UID {uid}: bad backend reference")))?;
        Ok(self.file_path(&loc))
    }

    /// [`Self::locate`] for a caller not holding the state. A reference found unreadable (an
    /// index file whose coding was wrong, see `mail_index::file_names`) is repaired by a rescan
    /// first, which takes the file from `dovecot-uidlist`.
    fn locate_now(&self, uid: Uid) -> Result<PathBuf> {
        {
            let st = self.lock();
            match self.locate(&st, uid) {
                Err(_) if st.index.reference_damage().is_some() && !st.references_repaired => {}
                found => return found,
            }
        }
        self.resync_after_miss()?;
        let st = self.lock();
        self.locate(&st, uid)
    }

    /// Claims the unclaimed `\Recent` messages for the caller and moves the files still in
    /// `new/` to `cur/` (adding the empty `:2,` info), as a Dovecot session does on its first
    /// sync, so other processes see them as seen-by-someone too.
    fn claim(&self, st: &mut State) -> Vec<Uid> {
        let uids = st.index.claim_recent();
        let moves: Vec<(Uid, String, String)> = uids
            .iter()
            .filter_map(|&uid| {
                let rec = st.index.get(uid)?;
                let loc = Location::decode(rec.backend())?;
                (loc.dir == Dir::New).then(|| (uid, loc.fname.to_owned(), loc.ext.to_owned()))
            })
            .collect();
        if moves.is_empty() {
            return uids;
        }
        let lock = match DotLock::acquire(&self.uidlist_path(), &uidlist::LOCK) {
            Ok(l) => l,
            Err(e) => {
                // The claim stands; the files move at the next chance.
                tracing::warn!(mailbox = %self.path.display(), "cannot move new mail to cur/: {e}");
                return uids;
            }
        };
        let own = OwnChange::begin(self, st);
        for (uid, fname, ext) in moves {
            let dest = if filename::has_info(&fname) {
                fname.clone()
            } else {
                format!("{fname}{}", filename::FLAGS_PREFIX)
            };
            let from = self.path.join("new").join(&fname);
            let to = self.path.join("cur").join(&dest);
            match fs::rename(&from, &to) {
                Ok(()) => {
                    let backend = super::state::encode(Dir::Cur, &dest, &ext);
                    let _ = st.index.apply(Op::SetBackend {
                        uid,
                        backend: &backend,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(file = %from.display(), "cannot move to cur/: {e}"),
            }
        }
        own.finish(self, st);
        drop(lock);
        uids
    }

    /// Fills in INTERNALDATE and RFC822.SIZE that the file name did not give.
    fn complete_info(&self, uid: Uid) -> Result<MessageInfo> {
        for attempt in 0..2 {
            let (path, date, size) = {
                let st = self.lock();
                let rec = st.index.get(uid).ok_or(StoreError::Expunged)?;
                if let (Some(d), Some(s)) = (rec.internal_date(), rec.size()) {
                    return Ok(MessageInfo {
                        internal_date: d,
                        size: s,
                    });
                }
                (self.locate(&st, uid)?, rec.internal_date(), rec.size())
            };
            let result = (|| -> io::Result<(i64, u64)> {
                let date = match date {
                    Some(d) => d,
                    None => mio::unix_secs(mio::mtime(&fs::metadata(&path)?)),
                };
                let size = match size {
                    Some(s) => s,
                    None => crlf_size(&fs::read(&path)?),
                };
                Ok((date, size))
            })();
            match result {
                Ok((internal_date, size)) => {
                    let mut st = self.lock();
                    let _ = st.index.apply(Op::SetInfo {
                        uid,
                        internal_date: Some(internal_date),
                        size: Some(size),
                    });
                    return Ok(MessageInfo {
                        internal_date,
                        size,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempt == 0 => {
                    self.resync_after_miss()?;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StoreError::Expunged),
                Err(e) => return Err(StoreError::io(&path, e)),
            }
        }
        Err(StoreError::Expunged)
    }

    /// A file the index names is gone: rescan (someone renamed or removed it).
    fn resync_after_miss(&self) -> Result<()> {
        self.sync_and_notify(true)
    }

    /// Syncs with the log and the disk and, when clients can see a change, wakes the listeners
    /// (after the state lock is released). The log's tail is read first, without its lock;
    /// the directories are scanned (under the lock, as a logged transaction) only when their
    /// stamps say someone changed them outside Columba, or when `force`.
    fn sync_and_notify(&self, force: bool) -> Result<()> {
        let changed = {
            let mut st = self.lock();
            self.check_not_deleted()?;
            let needs_writer = self.read_log_tail(&mut st);
            let mut changed = false;
            if force || needs_writer || self.needs_sync(&st)? {
                changed = self.transaction(&mut st, |st| self.sync(st, force))?;
            }
            changed | std::mem::take(&mut st.log.news)
        };
        if changed {
            self.notify();
        }
        Ok(())
    }

    /// Claims `\Recent` messages as a logged transaction, so that other processes learn that
    /// they are taken (RFC 3501 2.3.2: one session gets each).
    fn claim_logged(&self, st: &mut State) -> Vec<Uid> {
        if st.index.unclaimed_recent_count() == 0 {
            return Vec::new();
        }
        self.transaction(st, |st| Ok(self.claim(st)))
            .unwrap_or_default()
    }

    /// Folds the log into a new main index and starts a new log generation now, as a long
    /// log does by itself; other processes follow. For tests and maintenance.
    pub fn rotate_log(&self) {
        let mut st = self.lock();
        // Without a usable log there is nothing to rotate (and recovery just started one).
        if let Some(old) = self.lock_log(&mut st) {
            self.rotate_holding(&mut st, old);
        }
    }

    /// What the transaction log did for this mailbox in this process.
    pub fn log_stats(&self) -> txlog::LogStats {
        self.lock().log.stats
    }

    /// Drops messages whose files were removed from the index. Their records stay in
    /// `dovecot-uidlist` until it is next rewritten, so the description of the file learns of
    /// them (they count towards its rewrite).
    fn expunge_from_index(&self, st: &mut State, uids: &[Uid]) -> Result<()> {
        let State { index, uidlist, .. } = st;
        if let Some(exact) = uidlist.exact.as_mut() {
            let gone = uids.iter().filter_map(|&uid| {
                let loc = Location::decode(index.get(uid)?.backend())?;
                Some(super::uidlist::Record {
                    uid: uid.get(),
                    ext: loc.ext.to_owned(),
                    base: loc.base().to_owned(),
                })
            });
            exact.extras.extend(gone);
            exact.extras.sort_by_key(|r| r.uid);
            exact.extras.dedup_by_key(|r| r.uid);
        }
        index.apply(Op::Expunge(uids)).map_err(index_error)?;
        Ok(())
    }

    /// EXPUNGE's work, inside a logged transaction.
    fn expunge_locked(&self, st: &mut State, only: Option<&[Uid]>) -> Result<Vec<Uid>> {
        let mut done = Vec::new();
        let only: Option<Vec<Uid>> = only.map(|o| {
            let mut v = o.to_vec();
            v.sort_unstable();
            v
        });
        let wanted = |st: &State| -> Vec<Uid> {
            st.index
                .records()
                .filter(|r| r.system_flags().contains(SystemFlags::DELETED))
                .map(|r| r.uid())
                .filter(|u| only.as_ref().is_none_or(|o| o.binary_search(u).is_ok()))
                .collect()
        };
        let candidates = wanted(st);
        if candidates.is_empty() {
            return Ok(done);
        }
        let lock = DotLock::acquire(&self.uidlist_path(), &uidlist::LOCK)?;
        let own = OwnChange::begin(self, st);
        let mut missing = false;
        for uid in candidates {
            let path = self.locate(st, uid)?;
            match fs::remove_file(&path) {
                Ok(()) => done.push(uid),
                Err(e) if e.kind() == io::ErrorKind::NotFound => missing = true,
                Err(e) => {
                    self.expunge_from_index(st, &done)?;
                    return Err(StoreError::io(&path, e));
                }
            }
        }
        self.expunge_from_index(st, &done)?;
        own.finish(self, st);
        if missing {
            self.full_sync(st, &lock)?;
            for uid in wanted(st) {
                let path = self.locate(st, uid)?;
                if fs::remove_file(&path).is_ok() {
                    self.expunge_from_index(st, &[uid])?;
                    done.push(uid);
                }
            }
        }
        mio::fsync_dir(&self.path.join("cur"))?;
        drop(lock);
        Ok(done)
    }
}

/// The flags after a STORE (RFC 3501 6.4.6).
pub(crate) fn apply_change(old: &Flags, change: &FlagChange) -> Flags {
    match change {
        FlagChange::Replace(f) => f.clone(),
        FlagChange::Add(f) => {
            let mut out = old.clone();
            for flag in f.iter() {
                out.insert(&flag);
            }
            out
        }
        FlagChange::Remove(f) => {
            let mut out = old.clone();
            for flag in f.iter() {
                out.remove(&flag);
            }
            out
        }
    }
}

/// Keeps the directory stamps current across our own changes, so that our own renames do not
/// look like someone else's and force a rescan of `cur/` after every command. A directory that
/// had already changed before our change keeps its old stamp (the next sync must scan it); one
/// that had not gets the new mtime, marked as scanned just before the change so that one
/// rescan still happens after the slack (a change by someone else in the same clock tick).
pub(super) struct OwnChange {
    started: SystemTime,
    new_clean: bool,
    cur_clean: bool,
}

impl OwnChange {
    pub(super) fn begin(mb: &MaildirMailbox, st: &State) -> OwnChange {
        let started = SystemTime::now();
        let clean = |dir: Dir, stamp: &DirStamp| {
            let Ok(m) = dir_mtime(&mb.path.join(dir.name()), mb.name.as_str()) else {
                return false;
            };
            stamp.mtime == Some(m) && !stamp.needs_scan(m, started)
        };
        OwnChange {
            started,
            new_clean: clean(Dir::New, &st.new_dir),
            cur_clean: clean(Dir::Cur, &st.cur_dir),
        }
    }

    pub(super) fn finish(self, mb: &MaildirMailbox, st: &mut State) {
        for (dir, clean) in [(Dir::New, self.new_clean), (Dir::Cur, self.cur_clean)] {
            if !clean {
                continue;
            }
            if let Ok(m) = dir_mtime(&mb.path.join(dir.name()), mb.name.as_str()) {
                let stamp = st.dir_stamp_mut(dir);
                if stamp.mtime != Some(m) {
                    *stamp = DirStamp::scanned(m, self.started.min(m));
                }
            }
        }
    }
}

/// The size of `bytes` once every LF not preceded by CR is written as CRLF.
pub(crate) fn crlf_size(bytes: &[u8]) -> u64 {
    let mut size = bytes.len() as u64;
    let mut prev = 0u8;
    let mut start = 0;
    for i in memchr::memchr_iter(b'\n', bytes) {
        let before = if i > start { bytes[i - 1] } else { prev };
        if i == 0 || before != b'\r' {
            size += 1;
        }
        start = i + 1;
        prev = b'\n';
    }
    size
}

/// The message as IMAP sends it: every LF not preceded by CR becomes CRLF (Dovecot stores LF).
pub(crate) fn to_crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 30 + 2);
    let mut start = 0;
    for i in memchr::memchr_iter(b'\n', bytes) {
        out.extend_from_slice(&bytes[start..i]);
        if i == 0 || bytes[i - 1] != b'\r' {
            out.push(b'\r');
        }
        out.push(b'\n');
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out
}

impl Drop for MaildirMailbox {
    /// The last user is gone (or the process is shutting down): save what changed.
    fn drop(&mut self) {
        let mut st = std::mem::replace(
            self.state.get_mut().unwrap_or_else(|e| e.into_inner()),
            State::new(),
        );
        self.save(&mut st);
    }
}

impl Mailbox for MaildirMailbox {
    fn name(&self) -> MailboxName {
        self.name.clone()
    }

    fn uid_validity(&self) -> UidValidity {
        self.lock().index.uid_validity()
    }

    fn refresh(&self) -> Result<()> {
        self.sync_and_notify(false)
    }

    fn snapshot(&self, claim_recent: bool) -> Result<Snapshot> {
        self.check_not_deleted()?;
        let mut st = self.lock();
        let recent = if claim_recent {
            self.claim_logged(&mut st)
        } else {
            st.index.unclaimed_recent()
        };
        self.reserve_modseqs(&mut st);
        Ok(indexed::snapshot(&st.index, recent))
    }

    fn shared_snapshot(&self, claim_recent: bool) -> Result<SharedSnapshot> {
        self.check_not_deleted()?;
        let mut st = self.lock();
        let recent = if claim_recent {
            self.claim_logged(&mut st)
        } else {
            st.index.unclaimed_recent()
        };
        self.reserve_modseqs(&mut st);
        let State { index, shared, .. } = &mut *st;
        Ok(indexed::shared_snapshot(index, shared, recent))
    }

    fn changes_since(&self, cursor: ChangeCursor, claim_recent: bool) -> Result<Changes> {
        self.check_not_deleted()?;
        let mut st = self.lock();
        // Claiming may apply other processes' changes first: the change set comes after it.
        let recent = claim_recent.then(|| self.claim_logged(&mut st));
        let ch = st.index.changes_since(cursor.0);
        self.reserve_modseqs(&mut st);
        Ok(indexed::changes(&st.index, ch, recent))
    }

    fn status(&self) -> Result<MailboxStatus> {
        self.refresh()?;
        let (mut status, unknown) = {
            let mut st = self.lock();
            self.reserve_modseqs(&mut st);
            indexed::status(&st.index)
        };
        for uid in unknown {
            match self.complete_info(uid) {
                Ok(info) => status.size += info.size,
                Err(e) if e.kind() == crate::StoreErrorKind::Expunged => {}
                Err(e) => return Err(e),
            }
        }
        Ok(status)
    }

    fn message_info(&self, uid: Uid) -> Result<MessageInfo> {
        self.check_not_deleted()?;
        self.complete_info(uid)
    }

    fn read_message(&self, uid: Uid) -> Result<Vec<u8>> {
        self.check_not_deleted()?;
        for attempt in 0..2 {
            let path = self.locate_now(uid)?;
            match fs::read(&path) {
                Ok(raw) => {
                    let message = to_crlf(&raw);
                    let mut st = self.lock();
                    if let Some(rec) = st.index.get(uid)
                        && rec.size() != Some(message.len() as u64)
                    {
                        if let Some(known) = rec.size() {
                            tracing::warn!(
                                file = %path.display(),
                                "size in the file name ({known}) is wrong, the message has {}",
                                message.len()
                            );
                        }
                        let _ = st.index.apply(Op::SetInfo {
                            uid,
                            internal_date: None,
                            size: Some(message.len() as u64),
                        });
                    }
                    return Ok(message);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempt == 0 => {
                    self.resync_after_miss()?;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StoreError::Expunged),
                Err(e) => return Err(StoreError::io(&path, e)),
            }
        }
        Err(StoreError::Expunged)
    }

    fn store_flags(&self, uids: &[Uid], change: &FlagChange) -> Result<Vec<MessageState>> {
        self.check_not_deleted()?;
        let out = {
            let mut st = self.lock();
            self.transaction(&mut st, |st| self.store_flags_locked(st, uids, change))?
        };
        if !out.is_empty() {
            self.notify();
        }
        Ok(out)
    }

    fn expunge(&self, only: Option<&[Uid]>) -> Result<Vec<Uid>> {
        self.check_not_deleted()?;
        let mut done = {
            let mut st = self.lock();
            self.transaction(&mut st, |st| self.expunge_locked(st, only))?
        };
        done.sort_unstable();
        self.forget_cached(&done);
        if !done.is_empty() {
            self.notify();
        }
        Ok(done)
    }

    fn begin_append(&self) -> Result<Box<dyn AppendWriter>> {
        self.check_not_deleted()?;
        let me = self
            .me
            .upgrade()
            .ok_or_else(|| StoreError::Internal("mailbox is closing".to_owned()))?;
        Ok(Box::new(super::save::MaildirAppend::new(me)?))
    }

    fn commit_appends(&self, batch: Vec<crate::PendingAppend>) -> Result<Vec<Uid>> {
        super::save::commit_batch(self, batch)
    }

    fn copy_to(&self, uids: &[Uid], dest: &dyn Mailbox) -> Result<Vec<(Uid, Uid)>> {
        self.check_not_deleted()?;
        super::copy::copy(self, uids, dest)
    }

    fn watch(&self, listener: Weak<dyn ChangeListener>) {
        self.listeners.watch(listener);
    }

    fn cached(&self, uid: Uid, field: CacheField) -> Option<Arc<[u8]>> {
        self.with_cache(|c| c.get(uid, field.id())).map(Arc::from)
    }

    fn cached_many(&self, uids: &[Uid], field: CacheField) -> Vec<Option<Arc<[u8]>>> {
        self.with_cache(|c| c.get_many(uids, field.id()))
            .into_iter()
            .map(|v| v.map(Arc::from))
            .collect()
    }

    fn cache(&self, uid: Uid, field: CacheField, value: &[u8]) {
        self.with_cache(|c| c.put(uid, field.id(), value));
    }

    /// The save date recorded when the message was committed here; for a message that came in
    /// otherwise (another program's delivery, or saved before save dates were kept) the ctime
    /// of its file when first asked, recorded then so that it never changes afterwards, as
    /// Dovecot takes it from the file and caches it. A flag change renames the file and moves
    /// its ctime, hence the recording.
    fn save_date(&self, uid: Uid) -> Option<i64> {
        if let Some(value) = self.cached(uid, CacheField::SaveDate)
            && let Ok(bytes) = <[u8; 8]>::try_from(&value[..])
        {
            return Some(i64::from_be_bytes(bytes));
        }
        // The file may be renamed between locating and reading it: look again once.
        for _ in 0..2 {
            let path = {
                let st = self.lock();
                self.locate(&st, uid).ok()?
            };
            if let Ok(meta) = fs::metadata(&path) {
                let ctime = std::os::unix::fs::MetadataExt::ctime(&meta);
                self.cache(uid, CacheField::SaveDate, &ctime.to_be_bytes());
                return Some(ctime);
            }
        }
        None
    }

    fn has_save_dates(&self) -> bool {
        true
    }

    /// The mailbox GUID kept in `dovecot-uidlist` (what Dovecot reports as MAILBOXID): random
    /// at creation, and it moves with the directory on RENAME.
    fn mailbox_id(&self) -> Option<String> {
        self.lock().uidlist.guid.clone()
    }

    fn stored_uidl(&self, uid: Uid) -> Option<String> {
        self.uidlist_pop3_uidl(uid)
    }

    fn keywords(&self) -> Option<Vec<mail_types::Keyword>> {
        Some(self.lock().index.keywords().to_vec())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_conversion_and_size_agree() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"a\nb\n", b"a\r\nb\r\n"),
            (b"a\r\nb", b"a\r\nb"),
            (b"\n\n", b"\r\n\r\n"),
            (b"a\rb\r", b"a\rb\r"),
            (b"x\r\r\n", b"x\r\r\n"),
        ];
        for (stored, wire) in cases {
            assert_eq!(to_crlf(stored), *wire);
            assert_eq!(crlf_size(stored), wire.len() as u64);
        }
    }

    #[test]
    fn flag_changes() {
        use mail_types::Keyword;
        let k = |s: &str| Keyword::new(s).unwrap();
        let old = Flags::new(SystemFlags::SEEN, [k("a")]);
        let add = Flags::new(SystemFlags::FLAGGED, [k("b")]);
        let both = apply_change(&old, &FlagChange::Add(add.clone()));
        assert_eq!(
            both,
            Flags::new(
                SystemFlags::SEEN.union(SystemFlags::FLAGGED),
                [k("a"), k("b")]
            )
        );
        assert_eq!(apply_change(&both, &FlagChange::Remove(add.clone())), old);
        assert_eq!(apply_change(&old, &FlagChange::Replace(add.clone())), add);
    }
}
