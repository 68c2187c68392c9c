//! One mbox mailbox: the [`Mailbox`] implementation over the shared index.
//!
//! The index holds, per message, its UID, flags and sizes and its place in the file (the
//! offsets of `parse::RawMessage`, as the record's backend reference), so SELECT, FETCH and
//! SEARCH never rescan the file. Before any use the file's stamp (inode, size, mtime) is
//! compared with the one the index matches; when another program changed the file it is
//! scanned again — only from the last known message on when it merely grew — and its messages
//! are matched to the index by `X-UID`, so UIDs survive whatever rewrote the file.
//!
//! Every change is written to the file under the write locks: new UIDs (`X-UID` and the
//! `X-IMAPbase` last UID, so that Dovecot and UW-IMAP keep the same UIDs), flags (`Status`,
//! `X-Status`, `X-Keywords`) and expunges rewrite the file in place from the first message that
//! changes, through the `journal`. Which messages no longer `\Recent` get `Status: O` is
//! written lazily with the next change, as Dovecot does.
//!
//! Every change to the index — a STORE, EXPUNGE or APPEND, a `\Recent` claim, a reading of
//! what another program changed in the file — is a transaction on the log
//! (`columba.index.log`, see `crate::index_log` and the [`Logged`] implementation below), so
//! other Columba processes take the same UIDs and mod-sequences from it.

use std::any::Any;
use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use mail_index::{FsyncPolicy, MailboxIndex, NewRecord, Op};
use mail_types::{Flags, Keyword, MailboxName, SystemFlags, Uid, UidValidity};

use super::lock::{Access, MboxLock};
use super::parse::{self, RawMessage};
use super::write::{self, BaseOut, MetaOut};
use super::{MboxSettings, from_line, journal, persist};
use crate::index_log::{self, LOG_FILE, LogState, LogStats, Logged};
use crate::indexed::{self, CacheSlot, Listeners};
use crate::maildir::io::{self as mio, FileStamp};
use crate::maildir::mailbox::{apply_change, crlf_size, to_crlf};
use crate::maildir::sync::index_error;
use crate::{
    AppendWriter, CacheField, ChangeCursor, ChangeListener, Changes, FlagChange, Mailbox,
    MailboxStatus, MessageInfo, MessageState, Result, SharedSnapshot, Snapshot, StoreError,
};

/// The journal's name in the mailbox's control directory.
pub const JOURNAL_FILE: &str = "columba.mbox-journal";
/// The cache of derived values (ENVELOPE, BODYSTRUCTURE...) in the control directory.
pub const CACHE_FILE: &str = "columba.index.cache";
/// The mod-sequence ceiling in the control directory (see `indexed::read_modseq_ceiling`).
pub const MODSEQ_FILE: &str = "columba.index.modseq";

/// An mbox mailbox shared by every session of this process that has it open.
pub struct MboxMailbox {
    name: MailboxName,
    /// The mbox file.
    path: PathBuf,
    /// Where the journal lives (Dovecot keeps its index files for the mailbox there too).
    control: PathBuf,
    /// Where the UIDVALIDITY counter lives (shared with Dovecot: `dovecot-uidvalidity`).
    uidvalidity_dir: PathBuf,
    settings: Arc<MboxSettings>,
    me: Weak<MboxMailbox>,
    state: Mutex<State>,
    listeners: Listeners,
    deleted: AtomicBool,
    cache: CacheSlot,
    /// How many times this mailbox read its file to index it (in full or its new end).
    scans: std::sync::atomic::AtomicU64,
}

/// A block of the index file's references did not decode (found when first read) and the
/// whole file was not read since.
fn unrepaired_references(st: &State) -> bool {
    !st.references_repaired && st.index.reference_damage().is_some()
}

/// Everything behind the mailbox's mutex.
pub(crate) struct State {
    index: MailboxIndex,
    initialized: bool,
    /// The file as the index last matched it.
    stamp: Option<FileStamp>,
    /// The end of the pseudo-message, when the file starts with one.
    pseudo_end: Option<u64>,
    /// What the file's `X-IMAPbase` / `X-IMAP` says, if it has one.
    base: Option<parse::Base>,
    /// The absolute offset of the base's ten last-UID digits, when an append may update them in
    /// place.
    base_digits: Option<u64>,
    /// Messages whose metadata in the file is behind the index (written with the next change).
    dirty: BTreeSet<Uid>,
    /// The file lacks something another reader needs (UIDs, the base): write at once.
    must_write: bool,
    shared: indexed::SharedList,
    /// Every mod-sequence a client has seen is at or below this value, which is on disk: the
    /// index this process builds from the file starts above it.
    modseq_ceiling: u64,
    /// What `columba.index` holds, when it matches this state: (cursor, records, stamp).
    saved: Option<(u64, usize, Option<FileStamp>)>,
    /// The transaction log shared with other processes.
    log: LogState,
    /// The index file's unreadable references were repaired by reading the whole file (see
    /// `mail_index::file_names`; once is enough).
    references_repaired: bool,
}

impl State {
    /// Nothing known yet: the first sync scans the file.
    fn empty() -> State {
        State {
            index: MailboxIndex::new(UidValidity::MIN),
            initialized: false,
            stamp: None,
            pseudo_end: None,
            base: None,
            base_digits: None,
            dirty: BTreeSet::new(),
            must_write: false,
            shared: Default::default(),
            modseq_ceiling: 0,
            saved: None,
            log: LogState::default(),
            references_repaired: false,
        }
    }

    /// What a saved index must match to spare rewriting it.
    fn mark(&self) -> (u64, usize, Option<FileStamp>) {
        (self.index.cursor(), self.index.len(), self.stamp)
    }

    /// The mbox state saved with the index and carried by log records.
    fn saved_state(
        &self,
        log_position: mail_index::LogPosition,
        log_previous: mail_index::LogPosition,
    ) -> persist::SavedState {
        persist::SavedState {
            // An index that matches no known state of the file says so with a stamp no file
            // has (inode 0): whoever takes it over reads the file again.
            stamp: self.stamp.unwrap_or(UNKNOWN_STAMP),
            pseudo_end: self.pseudo_end,
            base: self.base.clone(),
            base_digits: self.base_digits,
            log_position,
            log_previous,
        }
    }
}

/// The stamp of "no known state of the file".
const UNKNOWN_STAMP: FileStamp = FileStamp {
    dev: 0,
    ino: 0,
    size: 0,
    mtime: std::time::UNIX_EPOCH,
};

/// Where a message is in the file: `parse::RawMessage`'s offsets, as the index keeps them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Place {
    from: u64,
    header: u64,
    body: u64,
    end: u64,
    next: u64,
    verbatim: bool,
}

impl Place {
    const LEN: usize = 41;

    fn of(m: &RawMessage) -> Place {
        Place {
            from: m.from,
            header: m.header,
            body: m.body,
            end: m.end,
            next: m.next,
            verbatim: m.verbatim,
        }
    }

    fn encode(&self) -> [u8; Place::LEN] {
        let mut out = [0u8; Place::LEN];
        for (i, v) in [self.from, self.header, self.body, self.end, self.next]
            .iter()
            .enumerate()
        {
            out[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        out[40] = u8::from(self.verbatim);
        out
    }

    /// The backend reference of a message: its place, then its `X-UIDL` if it has one.
    fn reference(m: &RawMessage) -> Vec<u8> {
        let mut out = Place::of(m).encode().to_vec();
        if let Some(uidl) = &m.meta.uidl {
            out.extend_from_slice(uidl.as_bytes());
        }
        out
    }

    /// The `X-UIDL` kept in a backend reference.
    fn uidl(raw: &[u8]) -> Option<&str> {
        std::str::from_utf8(raw.get(Place::LEN..)?)
            .ok()
            .filter(|u| !u.is_empty())
    }

    fn decode(raw: &[u8]) -> Option<Place> {
        if raw.len() < Place::LEN {
            return None;
        }
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&raw[i * 8..i * 8 + 8]);
            u64::from_le_bytes(b)
        };
        Some(Place {
            from: word(0),
            header: word(1),
            body: word(2),
            end: word(3),
            next: word(4),
            verbatim: raw[40] != 0,
        })
    }
}

impl std::fmt::Debug for MboxMailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MboxMailbox")
            .field("name", &self.name)
            .field("path", &self.path)
            .finish()
    }
}

impl MboxMailbox {
    /// Opens and indexes the mbox at `path`.
    pub(super) fn open(
        name: MailboxName,
        path: PathBuf,
        control: PathBuf,
        uidvalidity_dir: PathBuf,
        settings: Arc<MboxSettings>,
    ) -> Result<Arc<Self>> {
        let cache = CacheSlot::new(control.join(CACHE_FILE));
        let mailbox = Arc::new_cyclic(|me| MboxMailbox {
            name,
            path,
            control,
            uidvalidity_dir,
            settings,
            me: me.clone(),
            state: Mutex::new(State::empty()),
            listeners: Listeners::default(),
            deleted: AtomicBool::new(false),
            cache,
            scans: std::sync::atomic::AtomicU64::new(0),
        });
        {
            let mut st = mailbox.lock();
            let ceiling = indexed::read_modseq_ceiling(&mailbox.control.join(MODSEQ_FILE));
            let mut whole_file = false;
            if let Some(saved) = mailbox.restore_state() {
                *st = saved;
                // Generation 0: an index saved before the log existed, which continues none.
                if st.log.position.generation != 0 {
                    let uid_validity = st.index.uid_validity();
                    match index_log::open_saved_log(&mailbox.log_path(), uid_validity, &mut st.log)
                    {
                        Ok(()) => {}
                        Err(e) => {
                            st.log.stats.recoveries += 1;
                            tracing::warn!(file = %mailbox.log_path().display(), "index log unusable, rescanning the mbox: {e}");
                            // The log may have held changes the saved index lacks.
                            whole_file = true;
                        }
                    }
                }
            }
            st.modseq_ceiling = ceiling;
            if st.log.log.is_some() {
                // The index plus the whole log hold every mod-sequence handed out; only with
                // `fsync = never` may a power loss have lost some, so the ceiling applies then.
                mailbox.transaction(&mut st, |st| {
                    if index_log::fsync_policy() == FsyncPolicy::Never {
                        mailbox.apply_modseq_ceiling(st);
                    }
                    mailbox.sync_in_transaction(st)
                })?;
            } else {
                // What this sync finds comes after every mod-sequence ever handed out.
                mailbox.apply_modseq_ceiling(&mut st);
                if whole_file {
                    st.stamp = None;
                }
                mailbox.sync_files(&mut st)?;
                mailbox.apply_modseq_ceiling(&mut st);
                // Scanning was the expensive part: keep it, with a log that continues it.
                drop(mailbox.start_log(&mut st));
            }
            st.log.news = false;
        }
        Ok(mailbox)
    }

    /// Opens the mbox at `path` as a process of its own would: sharing nothing in memory with
    /// the mailboxes the registry hands out, only the files (for tests of several processes).
    pub(super) fn open_unshared(
        name: MailboxName,
        path: PathBuf,
        control: PathBuf,
        uidvalidity_dir: PathBuf,
        settings: Arc<MboxSettings>,
    ) -> Result<Arc<Self>> {
        Self::open(name, path, control, uidvalidity_dir, settings)
    }

    /// What the transaction log did for this mailbox in this process.
    pub fn log_stats(&self) -> LogStats {
        self.lock().log.stats
    }

    /// Folds the log into a new main index and starts a new log generation now, as a long
    /// log does by itself; other processes follow. For tests and maintenance.
    pub fn rotate_log(&self) {
        let mut st = self.lock();
        if let Some(old) = self.lock_log(&mut st) {
            self.rotate_holding(&mut st, old);
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many times this mailbox read its file to index it, in full or its new end (for
    /// tests: a saved index spares the first scan).
    pub fn scans(&self) -> u64 {
        self.scans.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change is a single index op or a sync that starts over from the file.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn journal_path(&self) -> PathBuf {
        self.control.join(JOURNAL_FILE)
    }

    fn check_not_deleted(&self) -> Result<()> {
        if self.deleted.load(Ordering::Acquire) {
            return Err(StoreError::NotFound(self.name.to_string()));
        }
        Ok(())
    }

    pub(super) fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::Release);
        self.notify();
    }

    fn notify(&self) {
        self.listeners.notify();
    }

    /// The state an earlier process saved (index, mbox state, log position), if usable.
    fn restore_state(&self) -> Option<State> {
        let path = self.control.join(persist::INDEX_FILE);
        let loaded = match MailboxIndex::read_file(&path) {
            Ok(Some(l)) => l,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(file = %path.display(), "index file ignored, scanning the mbox: {e}");
                return None;
            }
        };
        let Some((index, saved)) = persist::decode(loaded) else {
            tracing::warn!(file = %path.display(), "index file ignored, scanning the mbox: unreadable mbox state");
            return None;
        };
        let mut st = State::empty();
        st.index = index;
        st.initialized = true;
        st.stamp = Some(saved.stamp);
        st.pseudo_end = saved.pseudo_end;
        st.base = saved.base;
        st.base_digits = saved.base_digits;
        st.log.position = saved.log_position;
        st.log.previous = saved.log_previous;
        st.saved = Some(st.mark());
        Some(st)
    }

    /// Saves the index if it changed since it was loaded or last saved, as of the log's end
    /// (see [`Logged::save_at_log_end`]); failures are logged (the next process replays more
    /// of the log, or scans the file).
    fn save(&self, st: &mut State) {
        if !st.initialized || self.gone() {
            return;
        }
        if self.save_at_log_end(st, |st| st.saved != Some(st.mark())) {
            st.saved = Some(st.mark());
        }
    }

    /// Moves the mod-sequence ceiling on disk above what is about to leave the store.
    fn reserve_modseqs(&self, st: &mut State) {
        let highest = st.index.cursor();
        indexed::reserve_modseqs(&self.control, MODSEQ_FILE, highest, &mut st.modseq_ceiling);
    }

    /// Runs `f` on the cache file (see [`CacheSlot::with`]); its directory is made first.
    fn with_cache<T>(&self, f: impl FnOnce(&mut mail_index::MessageCache) -> T) -> T {
        let _ = fs::create_dir_all(&self.control);
        let uid_validity = self.lock().index.uid_validity();
        let live = || self.lock().index.records().map(|r| r.uid()).collect();
        self.cache.with(uid_validity, live, f)
    }

    /// Takes the write locks and finishes whatever a crashed writer left in the journal.
    fn write_lock(&self) -> Result<MboxLock> {
        mio::create_dir(&self.control).or_else(|_| create_dir_all(&self.control))?;
        let lock = MboxLock::acquire(&self.path, Access::Write, &self.settings.locks)?;
        journal::recover(&self.journal_path(), &lock)?;
        Ok(lock)
    }

    /// Brings the index up to date with the log (other Columba processes' changes, read
    /// without a lock) and then with the file, if it changed otherwise; cheap (one `stat` of
    /// each) when nothing did. Returns whether clients can see a change.
    fn sync_locked(&self, st: &mut State) -> Result<bool> {
        let before = st.index.cursor();
        let needs_writer = self.read_log_tail(st);
        if needs_writer || self.file_changed(st)? {
            self.transaction(st, |st| self.sync_in_transaction(st))?;
        }
        Ok((st.index.cursor() != before) | std::mem::take(&mut st.log.news))
    }

    /// Whether the file is not in the state the index matches (or a crashed writer left its
    /// journal, or the file lacks metadata it must get).
    fn file_changed(&self, st: &State) -> Result<bool> {
        let now = mio::stamp(&self.path)?;
        if now.is_none() {
            return Err(StoreError::NotFound(self.name.to_string()));
        }
        Ok(!st.initialized
            || now != st.stamp
            || st.must_write
            || unrepaired_references(st)
            || self.journal_path().exists())
    }

    /// Inside a transaction (the log caught up): reads what changed in the file, if anything
    /// did, under the write locks.
    fn sync_in_transaction(&self, st: &mut State) -> Result<()> {
        if !self.file_changed(st)? {
            return Ok(());
        }
        self.sync_files(st)
    }

    /// Reads what changed in the file under the write locks, and writes what it lacks.
    fn sync_files(&self, st: &mut State) -> Result<()> {
        self.changing_file(st, |st| {
            let lock = self.write_lock()?;
            self.sync_with(st, &lock)?;
            if st.must_write {
                self.rewrite(st, &lock, &[])?;
            }
            Ok(())
        })
    }

    /// Runs `f`, which changes the file or reads it into the index. When it fails halfway the
    /// index may no longer describe a known state of the file: the stamp is forgotten, so the
    /// record of the transaction tells other processes to read the file again, and so will we.
    fn changing_file<T>(
        &self,
        st: &mut State,
        f: impl FnOnce(&mut State) -> Result<T>,
    ) -> Result<T> {
        let result = f(st);
        if result.is_err() {
            st.stamp = None;
        }
        result
    }

    /// Reads what changed in the file into the index (under `lock`).
    fn sync_with(&self, st: &mut State, lock: &MboxLock) -> Result<()> {
        let meta = lock
            .file()
            .metadata()
            .map_err(|e| StoreError::io(&self.path, e))?;
        let stamp = FileStamp::of(&meta);
        if unrepaired_references(st) {
            // Every record's place comes again from the file, found by its X-UID.
            let what = st.index.reference_damage().unwrap_or_default();
            tracing::warn!(file = %self.path.display(), "index file's message places unreadable, reading the whole mbox: {what}");
            st.references_repaired = true;
            st.stamp = None;
        }
        if st.initialized && Some(stamp) == st.stamp {
            return Ok(());
        }
        // Grown in place: rescan from the last known message, if it is still where it was.
        if st.initialized
            && let Some(old) = st.stamp
            && old.ino == stamp.ino
            && old.dev == stamp.dev
            && stamp.size > old.size
        {
            let start = match st.index.records().last() {
                Some(r) => Place::decode(r.backend()).map(|p| p.from),
                None => Some(st.pseudo_end.unwrap_or(0)),
            };
            if let Some(start) = start
                && start <= stamp.size
            {
                self.scans.fetch_add(1, Ordering::Relaxed);
                let buf = read_range(lock, start, stamp.size)?;
                if let Ok(parsed) = parse::scan(&buf, start) {
                    let keep = st.index.len().saturating_sub(1);
                    // The last message must be the same one, where it was: a file rewritten
                    // in place (an expunge by another process) and then grown can have a
                    // message boundary at the same offset, but not with the same X-UID.
                    let last_matches = match (st.index.records().last(), parsed.first()) {
                        (Some(r), Some(p)) => {
                            p.meta.uid == Some(r.uid().get())
                                && Place::decode(r.backend()).is_some_and(|old| {
                                    old.from == p.from
                                        && old.header == p.header
                                        && old.body == p.body
                                })
                        }
                        _ => false,
                    };
                    if last_matches {
                        self.reconcile(st, keep, &parsed, &buf, start)?;
                        st.stamp = Some(stamp);
                        return Ok(());
                    }
                }
            }
        }
        self.scans.fetch_add(1, Ordering::Relaxed);
        let buf = read_range(lock, 0, stamp.size)?;
        let mut parsed = parse::scan(&buf, 0)
            .map_err(|e| StoreError::Internal(format!("{}: {e}", self.path.display())))?;
        let base = parsed.first().and_then(|m| m.meta.base.clone());
        st.base_digits = parsed.first().and_then(|m| {
            let digits = m.meta.base.as_ref()?.last_uid_digits?;
            Some(m.header + digits)
        });
        st.pseudo_end = None;
        if parsed.first().is_some_and(|m| m.meta.pseudo) {
            st.pseudo_end = Some(parsed.remove(0).next);
        }
        match &base {
            Some(b) if !st.initialized || b.uid_validity != st.index.uid_validity().get() => {
                let uv = UidValidity::new(b.uid_validity).unwrap_or(UidValidity::MIN);
                if st.initialized {
                    st.index.reset(uv);
                } else {
                    st.index = MailboxIndex::new(uv);
                    // What this process finds comes after everything an earlier one showed.
                    st.index.raise_modseq(st.modseq_ceiling);
                }
            }
            Some(_) => {}
            None if !st.initialized => {
                st.index = MailboxIndex::new(super::next_uid_validity(&self.uidvalidity_dir));
                st.index.raise_modseq(st.modseq_ceiling);
                st.must_write = !parsed.is_empty();
            }
            None => st.must_write = !parsed.is_empty() || st.index.header().uid_next.get() > 1,
        }
        st.base = base;
        st.initialized = true;
        self.reconcile(st, 0, &parsed, &buf, 0)?;
        st.stamp = Some(stamp);
        Ok(())
    }

    /// Matches the messages `parsed` (the file's messages from the index's record `keep` on;
    /// `buf` holds the file from offset `buf_start`) with the index by `X-UID`: known ones get
    /// their new place and the flags the file gives them, new ones are appended (with their
    /// `X-UID` when it is usable, with a new UID otherwise), and records no message matched
    /// are expunged.
    fn reconcile(
        &self,
        st: &mut State,
        keep: usize,
        parsed: &[RawMessage],
        buf: &[u8],
        buf_start: u64,
    ) -> Result<()> {
        let known: Vec<Uid> = st.index.records().skip(keep).map(|r| r.uid()).collect();
        let mut matched: BTreeSet<Uid> = BTreeSet::new();
        let mut last = st
            .index
            .records()
            .take(keep)
            .next_back()
            .map_or(0, |r| r.uid().get());
        let floor = st
            .base
            .as_ref()
            .filter(|b| b.uid_validity == st.index.uid_validity().get())
            .map_or(0, |b| b.last_uid.saturating_add(1));
        for m in parsed {
            let offset = |o: u64| (o - buf_start) as usize;
            let visible = parse::visible(
                &buf[offset(m.header)..offset(m.end)],
                (m.body - m.header) as usize,
                m.verbatim,
            );
            let size = crlf_size(&visible);
            let flags = Flags::new(m.meta.flags, m.meta.keywords.iter().cloned());
            let place = Place::reference(m);
            let uid_next = st.index.header().uid_next.get();
            let existing = m
                .meta
                .uid
                .filter(|&u| u > last && known.binary_search_by_key(&u, |k| k.get()).is_ok())
                .and_then(Uid::new);
            if let Some(uid) = existing {
                st.index
                    .apply(Op::SetBackend {
                        uid,
                        backend: &place,
                    })
                    .map_err(index_error)?;
                st.index
                    .apply(Op::SetInfo {
                        uid,
                        internal_date: Some(m.date),
                        size: Some(size),
                    })
                    .map_err(index_error)?;
                // Flags another program wrote win over ours, unless ours are not written yet.
                if !st.dirty.contains(&uid) {
                    st.index
                        .apply(Op::SetFlags { uid, flags: &flags })
                        .map_err(index_error)?;
                }
                if m.meta.old {
                    st.index.apply(Op::DropRecent(uid)).map_err(index_error)?;
                }
                matched.insert(uid);
                last = uid.get();
                continue;
            }
            let from_file = m.meta.uid.filter(|&u| u > last && u >= uid_next);
            // A new UID also stays above every UID the base says was handed out.
            let uid_value = from_file.unwrap_or(uid_next.max(last + 1).max(floor));
            let uid = Uid::new(uid_value)
                .ok_or_else(|| StoreError::Internal("UIDs exhausted".to_owned()))?;
            if from_file.is_none() {
                st.dirty.insert(uid);
                st.must_write = true;
            }
            st.index
                .apply(Op::Append(NewRecord {
                    uid,
                    flags: &flags,
                    internal_date: Some(m.date),
                    size: Some(size),
                    recent: !m.meta.old,
                    backend: &place,
                }))
                .map_err(index_error)?;
            last = uid.get();
        }
        let gone: Vec<Uid> = known.into_iter().filter(|u| !matched.contains(u)).collect();
        if !gone.is_empty() {
            st.index.apply(Op::Expunge(&gone)).map_err(index_error)?;
            for u in &gone {
                st.dirty.remove(u);
            }
        }
        if let Some(next) = Uid::new(floor) {
            st.index
                .apply(Op::RaiseUidNext(next))
                .map_err(index_error)?;
        }
        // The base must cover every UID handed out, or a restart could reuse one.
        let last_uid = st.index.header().uid_next.get().saturating_sub(1);
        let base_behind = match &st.base {
            Some(b) => {
                b.last_uid < last_uid
                    || b.uid_validity != st.index.uid_validity().get()
                    || st
                        .index
                        .keywords()
                        .iter()
                        .any(|k| !b.keywords.iter().any(|bk| bk.eq_ignore_case(k)))
            }
            None => !st.index.is_empty(),
        };
        if base_behind && !st.index.is_empty() {
            st.must_write = true;
        }
        Ok(())
    }

    /// Writes the index's state into the file: drops the messages in `expunge`, rewrites the
    /// metadata of the dirty ones and the base, from the first message that changes on.
    fn rewrite(&self, st: &mut State, lock: &MboxLock, expunge: &[Uid]) -> Result<()> {
        let size = lock
            .file()
            .metadata()
            .map_err(|e| StoreError::io(&self.path, e))?
            .len();
        let records: Vec<(Uid, Place)> = st
            .index
            .records()
            .filter_map(|r| Some((r.uid(), Place::decode(r.backend())?)))
            .collect();
        let gone = |u: &Uid| expunge.binary_search(u).is_ok();
        let survivors = records.iter().filter(|(u, _)| !gone(u)).count();
        let last_uid = st.index.header().uid_next.get().saturating_sub(1);
        let keywords: Vec<Keyword> = st.index.keywords().to_vec();
        let base_ok = st.base.as_ref().is_some_and(|b| {
            b.uid_validity == st.index.uid_validity().get()
                && b.last_uid >= last_uid
                && keywords
                    .iter()
                    .all(|k| b.keywords.iter().any(|bk| bk.eq_ignore_case(k)))
        });
        // Where the base goes: the pseudo-message if there is one (or nothing else is left to
        // carry it), otherwise the first message.
        let use_pseudo = st.pseudo_end.is_some() || survivors == 0;
        let first_survivor = records.iter().position(|(u, _)| !gone(u));
        let first_changed = records
            .iter()
            .enumerate()
            .find(|(i, (u, _))| {
                gone(u)
                    || st.dirty.contains(u)
                    || (!use_pseudo && Some(*i) == first_survivor && (!base_ok || *i != 0))
            })
            .map(|(_, (_, p))| p.from);
        let mut start = first_changed.unwrap_or(size);
        if !base_ok {
            start = 0;
        }
        if use_pseudo && (!base_ok || st.pseudo_end.is_none()) {
            start = 0;
        }
        if start >= size && first_changed.is_none() && base_ok {
            st.must_write = false;
            return Ok(());
        }
        let buf = read_range(lock, start, size)?;
        let rel = |o: u64| (o - start) as usize;
        let mut tail = Vec::with_capacity(buf.len() + 256);
        let base = BaseOut {
            uid_validity: st.index.uid_validity().get(),
            last_uid,
            keywords: &keywords,
        };
        if use_pseudo && start == 0 {
            pseudo_message(&mut tail, &base);
        }
        // The messages written from `start` on, in file order.
        let mut rewritten: Vec<Uid> = Vec::with_capacity(survivors);
        for (i, (uid, place)) in records.iter().enumerate() {
            if place.from < start || gone(uid) {
                continue;
            }
            // Places come from a scan of this very file (the sync above); one that does not
            // fit it means the index is wrong: start over from the file next time.
            let consistent = place.from <= place.header
                && place.header <= place.body
                && place.body <= place.end
                && place.end <= place.next
                && place.next <= size;
            let Some(raw) = buf
                .get(rel(place.from)..rel(place.next))
                .filter(|_| consistent)
            else {
                st.stamp = None;
                return Err(StoreError::Internal(format!(
                    "{}: the index does not match the file at UID {uid}",
                    self.path.display()
                )));
            };
            let carries_base = !use_pseudo && Some(i) == first_survivor;
            if st.dirty.contains(uid) || carries_base {
                let Some(rec) = st.index.get(*uid) else {
                    continue;
                };
                let flags = rec.flags();
                let meta = MetaOut {
                    uid: uid.get(),
                    flags: &flags,
                    old: !rec.recent_unclaimed(),
                    base: carries_base.then_some(base),
                };
                let at = |o: u64| (o - place.from) as usize;
                write::rewrite(
                    &mut tail,
                    raw,
                    at(place.header),
                    at(place.body),
                    at(place.end),
                    &meta,
                );
            } else {
                tail.extend_from_slice(raw);
            }
            rewritten.push(*uid);
        }
        journal::rewrite(&self.journal_path(), lock, start, &tail)?;
        // The new places, from what was just written.
        let mut parsed = parse::scan(&tail, start)
            .map_err(|e| StoreError::Internal(format!("rewritten mbox does not parse: {e}")))?;
        if start == 0 {
            // The base was written at the start: the pseudo-message's or the first message's.
            let first = parsed.first();
            st.base = first.and_then(|m| m.meta.base.clone());
            st.base_digits = first.and_then(|m| {
                let digits = m.meta.base.as_ref()?.last_uid_digits?;
                Some(m.header + digits)
            });
            st.pseudo_end = None;
            if use_pseudo && !parsed.is_empty() {
                st.pseudo_end = Some(parsed.remove(0).next);
            }
        }
        if rewritten.len() != parsed.len() {
            return Err(StoreError::Internal(format!(
                "rewritten mbox has {} messages where {} were written",
                parsed.len(),
                rewritten.len()
            )));
        }
        if !expunge.is_empty() {
            st.index.apply(Op::Expunge(expunge)).map_err(index_error)?;
        }
        for (uid, m) in rewritten.iter().zip(&parsed) {
            let place = Place::reference(m);
            st.index
                .apply(Op::SetBackend {
                    uid: *uid,
                    backend: &place,
                })
                .map_err(index_error)?;
        }
        let meta_now = lock
            .file()
            .metadata()
            .map_err(|e| StoreError::io(&self.path, e))?;
        st.dirty.clear();
        st.must_write = false;
        st.stamp = Some(FileStamp::of(&meta_now));
        Ok(())
    }

    /// The message bytes as stored (LF), with the metadata headers hidden.
    fn read_visible(&self, st: &State, lock: &MboxLock, uid: Uid) -> Result<Vec<u8>> {
        let rec = st.index.get(uid).ok_or(StoreError::Expunged)?;
        let place = Place::decode(rec.backend())
            .ok_or_else(|| StoreError::Internal(format!("UID {uid}: bad backend reference")))?;
        let bytes = read_range(lock, place.header, place.end)?;
        Ok(parse::visible(
            &bytes,
            place.body.saturating_sub(place.header) as usize,
            place.verbatim,
        ))
    }

    /// Syncs under the mutex and wakes the listeners when clients can see a change.
    fn sync_and_notify(&self) -> Result<()> {
        let changed = {
            let mut st = self.lock();
            self.sync_locked(&mut st)?
        };
        if changed {
            self.notify();
        }
        Ok(())
    }

    /// Appends one message (LF line endings) and returns its UID.
    fn append_message(&self, message: &[u8], flags: &Flags, internal_date: i64) -> Result<Uid> {
        let uid = {
            let mut st = self.lock();
            self.check_not_deleted()?;
            self.transaction(&mut st, |st| {
                self.changing_file(st, |st| {
                    self.append_locked(st, message, flags, internal_date)
                })
            })?
        };
        self.notify();
        Ok(uid)
    }

    /// APPEND's work, inside a logged transaction: the UID is the next one after catching up
    /// with the log, so two processes never hand out the same one.
    fn append_locked(
        &self,
        st: &mut State,
        message: &[u8],
        flags: &Flags,
        internal_date: i64,
    ) -> Result<Uid> {
        {
            let lock = self.write_lock()?;
            self.sync_with(st, &lock)?;
            if st.must_write {
                self.rewrite(st, &lock, &[])?;
            }
            let uid = st.index.header().uid_next;
            let size = lock
                .file()
                .metadata()
                .map_err(|e| StoreError::io(&self.path, e))?
                .len();
            let mut bytes = Vec::with_capacity(message.len() + 256);
            // The message before needs its newline and the empty separator line.
            if size > 0 {
                let tail = read_range(&lock, size.saturating_sub(2), size)?;
                if !tail.ends_with(b"\n") {
                    bytes.extend_from_slice(b"\n\n");
                } else if !tail.ends_with(b"\n\n") && size >= 2 {
                    bytes.push(b'\n');
                }
            }
            let first = st.index.is_empty() && st.pseudo_end.is_none();
            let keywords: Vec<Keyword> = {
                let mut k = st.index.keywords().to_vec();
                for kw in flags.keywords() {
                    if !k.iter().any(|o| o.eq_ignore_case(kw)) {
                        k.push(kw.clone());
                    }
                }
                k
            };
            let base = BaseOut {
                uid_validity: st.index.uid_validity().get(),
                last_uid: uid.get(),
                keywords: &keywords,
            };
            let new_keyword = keywords.len() != st.index.keywords().len();
            write::new_message(
                &mut bytes,
                &from_line::format("MAILER-DAEMON", internal_date),
                message,
                self.settings.quoting,
                &MetaOut {
                    uid: uid.get(),
                    flags,
                    old: false,
                    base: first.then_some(base),
                },
            );
            let digits = st.base_digits.filter(|_| !first && !new_keyword);
            journal::append(&self.journal_path(), &lock, &bytes, |file| {
                if let Some(at) = digits {
                    file.write_all_at(format!("{:010}", uid.get()).as_bytes(), at)
                        .and_then(|()| file.sync_data())
                        .map_err(|e| mio::error(&self.path, e))?;
                }
                Ok(())
            })?;
            if let (Some(_), Some(b)) = (digits, st.base.as_mut()) {
                b.last_uid = uid.get();
            }
            self.sync_with(st, &lock)?;
            if st.index.get(uid).is_none() {
                return Err(StoreError::Internal(format!(
                    "{}: the appended message did not read back",
                    self.path.display()
                )));
            }
            // A base that could not be updated in place is rewritten now (a new keyword, or
            // a base written by a program that does not pad the last UID).
            if st.must_write {
                self.rewrite(st, &lock, &[])?;
            }
            Ok(uid)
        }
    }

    /// STORE's work, inside a logged transaction.
    fn store_locked(
        &self,
        st: &mut State,
        uids: &[Uid],
        change: &FlagChange,
    ) -> Result<Vec<MessageState>> {
        let mut out = Vec::new();
        let lock = self.write_lock()?;
        self.sync_with(st, &lock)?;
        for &uid in uids {
            let Some(rec) = st.index.get(uid) else {
                continue;
            };
            let new = apply_change(&rec.flags(), change);
            if let Some(modseq) = st
                .index
                .apply(Op::SetFlags { uid, flags: &new })
                .map_err(index_error)?
            {
                st.dirty.insert(uid);
                out.push(MessageState {
                    uid,
                    flags: new,
                    modseq,
                });
            }
        }
        if !out.is_empty() || st.must_write {
            self.rewrite(st, &lock, &[])?;
        }
        Ok(out)
    }

    /// EXPUNGE's work, inside a logged transaction.
    fn expunge_locked(&self, st: &mut State, only: Option<&[Uid]>) -> Result<Vec<Uid>> {
        let lock = self.write_lock()?;
        self.sync_with(st, &lock)?;
        let mut only: Option<Vec<Uid>> = only.map(<[Uid]>::to_vec);
        if let Some(o) = only.as_mut() {
            o.sort_unstable();
        }
        let done: Vec<Uid> = st
            .index
            .records()
            .filter(|r| r.system_flags().contains(SystemFlags::DELETED))
            .map(|r| r.uid())
            .filter(|u| only.as_ref().is_none_or(|o| o.binary_search(u).is_ok()))
            .collect();
        if !done.is_empty() || st.must_write {
            self.rewrite(st, &lock, &done)?;
        }
        Ok(done)
    }

    /// The caller's `\Recent` messages: those it claims now, or those nobody claimed yet.
    fn recent_for(&self, st: &mut State, claim_recent: bool) -> Vec<Uid> {
        if claim_recent {
            self.claim_logged(st)
        } else {
            st.index.unclaimed_recent()
        }
    }

    /// Claims `\Recent` messages as a logged transaction, so that other processes learn that
    /// they are taken (RFC 3501 2.3.2: one session gets each). Only the log is locked: the
    /// file learns of the claims (`Status: O`) with the next change.
    fn claim_logged(&self, st: &mut State) -> Vec<Uid> {
        if st.index.unclaimed_recent_count() == 0 {
            return Vec::new();
        }
        self.transaction(st, |st| Ok(claim(st))).unwrap_or_default()
    }
}

impl Drop for MboxMailbox {
    /// The last user is gone (or the process is shutting down): save what changed.
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        let mut st = std::mem::replace(st, State::empty());
        self.save(&mut st);
    }
}

/// The mbox's side of the transaction log (see `crate::index_log`). Lock order, the same in
/// every Columba process: the mailbox's mutex, then the log's `flock`, then the mbox file's own
/// locks (`lock`: dot lock, `fcntl`, `flock` as configured) — never a log lock while holding
/// an mbox lock. Other programs (Dovecot, mutt, the MTA) take only the mbox locks, so no cycle
/// can form with them either; a reader holding the mbox read lock lets go of it before it
/// joins a transaction (`read_message`).
impl Logged for MboxMailbox {
    type State = State;

    fn log_path(&self) -> PathBuf {
        self.control.join(LOG_FILE)
    }

    fn parts(st: &mut State) -> (&mut MailboxIndex, &mut LogState) {
        (&mut st.index, &mut st.log)
    }

    fn gone(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    /// The writer's stamp of the file after its change: when the file still has it, the
    /// replayed index matches the file and nothing needs reading.
    fn adopt_state(&self, st: &mut State, backend_state: &[u8]) {
        match persist::decode_state(backend_state) {
            Some(saved) => {
                st.stamp = Some(saved.stamp);
                st.pseudo_end = saved.pseudo_end;
                st.base = saved.base;
                st.base_digits = saved.base_digits;
            }
            // Not ours to understand: read the file again.
            None => st.stamp = None,
        }
    }

    fn encode_state(&self, st: &State) -> Vec<u8> {
        persist::encode_state(&st.saved_state(Default::default(), Default::default()))
    }

    fn write_index(&self, st: &mut State) -> std::result::Result<(), String> {
        let state = persist::encode_state(&st.saved_state(st.log.position, st.log.previous));
        let path = self.control.join(persist::INDEX_FILE);
        fs::create_dir_all(&self.control)
            .map_err(|e| format!("{}: {e}", self.control.display()))?;
        st.index
            .write_file(&path, &state)
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    fn reload_index(&self, old: &mut State) -> Option<State> {
        let mut fresh = self.restore_state()?;
        fresh.modseq_ceiling = old.modseq_ceiling;
        // Metadata only this process still has to write into the file.
        fresh.dirty = std::mem::take(&mut old.dirty)
            .into_iter()
            .filter(|u| fresh.index.get(*u).is_some())
            .collect();
        fresh.must_write = old.must_write;
        Some(fresh)
    }

    /// Reads the whole file again (UIDs from `X-UID`, flags from `Status`, `X-Status` and
    /// `X-Keywords`), keeping the records it still has.
    fn rescan(&self, st: &mut State) -> Result<()> {
        st.stamp = None;
        self.sync_files(st)
    }

    fn apply_modseq_ceiling(&self, st: &mut State) {
        let ceiling = indexed::read_modseq_ceiling(&self.control.join(MODSEQ_FILE));
        st.index.raise_modseq(ceiling);
        st.modseq_ceiling = st.modseq_ceiling.max(ceiling);
    }
}

/// UW-IMAP's pseudo-message, which holds the base when no message can.
pub(super) fn pseudo_message(out: &mut Vec<u8>, base: &BaseOut<'_>) {
    let now = mio::unix_secs(std::time::SystemTime::now());
    out.extend_from_slice(from_line::format("MAILER-DAEMON", now).as_bytes());
    out.extend_from_slice(b"\nDate: ");
    out.extend_from_slice(mail_types::date::utc_timestamp(now).as_bytes());
    out.extend_from_slice(
        b"\nFrom: Mail System Internal Data <MAILER-DAEMON@localhost>\n\
Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA\n",
    );
    out.extend_from_slice(
        format!("X-IMAP: {} {:010}", base.uid_validity, base.last_uid).as_bytes(),
    );
    for k in base.keywords {
        out.push(b' ');
        out.extend_from_slice(k.as_str().as_bytes());
    }
    out.extend_from_slice(
        b"\nStatus: RO\n\n\
This text is part of the internal format of your mail folder, and is not\n\
a real message.  It is created automatically by the mail system software.\n\
If deleted, important folder data will be lost, and it will be re-created\n\
with the data reset to initial values.\n\n",
    );
}

fn create_dir_all(path: &Path) -> Result<bool> {
    fs::create_dir_all(path).map_err(|e| StoreError::io(path, e))?;
    Ok(true)
}

/// The bytes `start..end` of the locked file.
fn read_range(lock: &MboxLock, start: u64, end: u64) -> Result<Vec<u8>> {
    let len = usize::try_from(end.saturating_sub(start))
        .map_err(|_| StoreError::Internal("mbox too large".to_owned()))?;
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        match lock.file().read_at(&mut buf[done..], start + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(StoreError::io(lock.path(), e)),
        }
    }
    buf.truncate(done);
    Ok(buf)
}

impl Mailbox for MboxMailbox {
    fn name(&self) -> MailboxName {
        self.name.clone()
    }

    fn uid_validity(&self) -> UidValidity {
        self.lock().index.uid_validity()
    }

    fn refresh(&self) -> Result<()> {
        self.check_not_deleted()?;
        self.sync_and_notify()
    }

    fn snapshot(&self, claim_recent: bool) -> Result<Snapshot> {
        self.check_not_deleted()?;
        let mut st = self.lock();
        let recent = self.recent_for(&mut st, claim_recent);
        self.reserve_modseqs(&mut st);
        Ok(indexed::snapshot(&st.index, recent))
    }

    fn shared_snapshot(&self, claim_recent: bool) -> Result<SharedSnapshot> {
        self.check_not_deleted()?;
        let mut st = self.lock();
        let recent = self.recent_for(&mut st, claim_recent);
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
        let mut st = self.lock();
        self.reserve_modseqs(&mut st);
        // Every size is known: the scan measures each message.
        Ok(indexed::status(&st.index).0)
    }

    fn message_info(&self, uid: Uid) -> Result<MessageInfo> {
        self.check_not_deleted()?;
        let st = self.lock();
        let rec = st.index.get(uid).ok_or(StoreError::Expunged)?;
        Ok(MessageInfo {
            internal_date: rec.internal_date().unwrap_or(0),
            size: rec.size().unwrap_or(0),
        })
    }

    fn read_message(&self, uid: Uid) -> Result<Vec<u8>> {
        self.check_not_deleted()?;
        let mut st = self.lock();
        // Nobody may rewrite the file between the check of its stamp and the read.
        let lock = MboxLock::acquire(&self.path, Access::Read, &self.settings.locks)?;
        let stamp = lock
            .file()
            .metadata()
            .map(|m| FileStamp::of(&m))
            .map_err(|e| StoreError::io(&self.path, e))?;
        if Some(stamp) != st.stamp || self.journal_path().exists() {
            drop(lock);
            self.sync_locked(&mut st)?;
            let lock = MboxLock::acquire(&self.path, Access::Read, &self.settings.locks)?;
            return Ok(to_crlf(&self.read_visible(&st, &lock, uid)?));
        }
        match self.read_visible(&st, &lock, uid) {
            // Its place was in a block of the index file that does not decode: read the
            // whole file for the places, then the message.
            Err(_) if unrepaired_references(&st) => {
                drop(lock);
                self.sync_locked(&mut st)?;
                let lock = MboxLock::acquire(&self.path, Access::Read, &self.settings.locks)?;
                Ok(to_crlf(&self.read_visible(&st, &lock, uid)?))
            }
            read => Ok(to_crlf(&read?)),
        }
    }

    fn store_flags(&self, uids: &[Uid], change: &FlagChange) -> Result<Vec<MessageState>> {
        self.check_not_deleted()?;
        let out = {
            let mut st = self.lock();
            let out = self.transaction(&mut st, |st| {
                self.changing_file(st, |st| self.store_locked(st, uids, change))
            })?;
            self.reserve_modseqs(&mut st);
            out
        };
        if !out.is_empty() {
            self.notify();
        }
        Ok(out)
    }

    fn expunge(&self, only: Option<&[Uid]>) -> Result<Vec<Uid>> {
        self.check_not_deleted()?;
        let done = {
            let mut st = self.lock();
            self.transaction(&mut st, |st| {
                self.changing_file(st, |st| self.expunge_locked(st, only))
            })?
        };
        self.cache.forget(&done);
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
        Ok(Box::new(MboxAppend {
            mailbox: me,
            message: Vec::new(),
        }))
    }

    fn copy_to(&self, uids: &[Uid], dest: &dyn Mailbox) -> Result<Vec<(Uid, Uid)>> {
        self.check_not_deleted()?;
        let mut out = Vec::with_capacity(uids.len());
        for &uid in uids {
            let (message, flags, date) = {
                let message = match self.read_message(uid) {
                    Ok(m) => m,
                    Err(e) if e.kind() == crate::StoreErrorKind::Expunged => continue,
                    Err(e) => return Err(e),
                };
                let st = self.lock();
                let Some(rec) = st.index.get(uid) else {
                    continue;
                };
                (message, rec.flags(), rec.internal_date())
            };
            let mut writer = dest.begin_append()?;
            writer.write(&message)?;
            out.push((uid, writer.commit(flags, date)?));
        }
        Ok(out)
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

    fn stored_uidl(&self, uid: Uid) -> Option<String> {
        let st = self.lock();
        Place::uidl(st.index.get(uid)?.backend()).map(str::to_owned)
    }

    fn keywords(&self) -> Option<Vec<Keyword>> {
        Some(self.lock().index.keywords().to_vec())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Claims the unclaimed `\Recent` messages; their `Status: O` is written with the next change.
fn claim(st: &mut State) -> Vec<Uid> {
    let uids = st.index.claim_recent();
    st.dirty.extend(uids.iter().copied());
    uids
}

/// An APPEND in progress: the message is kept in memory until `commit`, which writes it
/// under the mailbox's locks in one piece.
struct MboxAppend {
    mailbox: Arc<MboxMailbox>,
    message: Vec<u8>,
}

impl AppendWriter for MboxAppend {
    fn write(&mut self, chunk: &[u8]) -> Result<()> {
        self.message.extend_from_slice(chunk);
        Ok(())
    }

    fn commit(self: Box<Self>, flags: Flags, internal_date: Option<i64>) -> Result<Uid> {
        let date = internal_date.unwrap_or_else(|| mio::unix_secs(std::time::SystemTime::now()));
        // Stored with LF line endings, as every mbox program expects.
        let mut lf = Vec::with_capacity(self.message.len());
        let mut start = 0;
        for i in memchr::memmem::find_iter(&self.message, b"\r\n") {
            lf.extend_from_slice(&self.message[start..i]);
            lf.push(b'\n');
            start = i + 2;
        }
        lf.extend_from_slice(&self.message[start..]);
        self.mailbox.append_message(&lf, &flags, date)
    }
}
