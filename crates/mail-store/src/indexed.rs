//! What every backend over a [`MailboxIndex`] answers the same way: snapshots (plain and shared
//! by views), changes since a cursor, the STATUS figures, and the listeners IDLE sessions
//! register. A backend only decides when to sync with its files and who claims `\Recent`.

use std::sync::{Arc, Mutex, Weak};

use mail_index::{MailboxIndex, MessageSnapshot};
use mail_types::{SystemFlags, Uid};

use crate::{
    ChangeCursor, ChangeListener, Changes, MailboxStatus, MessageState, SharedSnapshot, Snapshot,
    ViewMessage,
};

/// The list views share, with the cursor it was made at; held weakly, so it goes away with the
/// last view using it.
pub type SharedList = Option<(u64, Weak<Vec<ViewMessage>>)>;

/// [`crate::Mailbox::snapshot`] of `index`, with `recent` as the caller's `\Recent` messages.
pub fn snapshot(index: &MailboxIndex, recent: Vec<Uid>) -> Snapshot {
    let messages = index
        .records()
        .map(|r| MessageState {
            uid: r.uid(),
            flags: r.flags(),
            modseq: r.modseq(),
        })
        .collect();
    let header = index.header();
    Snapshot {
        messages,
        recent,
        cursor: ChangeCursor(index.cursor()),
        uid_next: header.uid_next,
        highest_modseq: header.highest_modseq,
    }
}

/// [`crate::Mailbox::shared_snapshot`]: the list in `shared` when it was made at the index's
/// cursor, a new one (kept in `shared`) otherwise.
pub fn shared_snapshot(
    index: &MailboxIndex,
    shared: &mut SharedList,
    recent: Vec<Uid>,
) -> SharedSnapshot {
    let cursor = index.cursor();
    let existing = shared
        .as_ref()
        .filter(|(c, _)| *c == cursor)
        .and_then(|(_, list)| list.upgrade());
    let messages = match existing {
        Some(list) => list,
        None => {
            let list: Arc<Vec<ViewMessage>> = Arc::new(
                index
                    .records()
                    .map(|r| ViewMessage {
                        uid: r.uid(),
                        flags: r.flags(),
                        modseq: r.modseq(),
                        recent: false,
                        expunged: false,
                    })
                    .collect(),
            );
            *shared = Some((cursor, Arc::downgrade(&list)));
            list
        }
    };
    let header = index.header();
    SharedSnapshot {
        messages,
        recent,
        cursor: ChangeCursor(cursor),
        uid_next: header.uid_next,
        highest_modseq: header.highest_modseq,
    }
}

/// [`crate::Mailbox::changes_since`] from the index's change set `ch` (taken at `since`);
/// `recent` replaces the set's own `\Recent` list when the caller claimed messages.
pub fn changes(
    index: &MailboxIndex,
    ch: mail_index::ChangeSet,
    recent: Option<Vec<Uid>>,
) -> Changes {
    let convert = |m: MessageSnapshot| MessageState {
        uid: m.uid,
        flags: m.flags,
        modseq: m.modseq,
    };
    let header = index.header();
    Changes {
        expunged: ch.expunged,
        appended: ch.appended.into_iter().map(convert).collect(),
        flags: ch.changed.into_iter().map(convert).collect(),
        recent: recent.unwrap_or(ch.recent),
        cursor: ChangeCursor(index.cursor()),
        uid_next: Some(header.uid_next),
        highest_modseq: Some(header.highest_modseq),
    }
}

/// STATUS figures of `index`, and the messages whose size the index does not know yet (their
/// sizes are missing from `size`).
pub fn status(index: &MailboxIndex) -> (MailboxStatus, Vec<Uid>) {
    let header = index.header();
    let mut status = MailboxStatus {
        messages: index.len() as u32,
        recent: index.unclaimed_recent_count() as u32,
        uid_next: header.uid_next,
        uid_validity: header.uid_validity,
        unseen: 0,
        deleted: 0,
        highest_modseq: header.highest_modseq,
        size: 0,
    };
    let mut unknown = Vec::new();
    for r in index.records() {
        let system = r.system_flags();
        if !system.contains(SystemFlags::SEEN) {
            status.unseen += 1;
        }
        if system.contains(SystemFlags::DELETED) {
            status.deleted += 1;
        }
        match r.size() {
            Some(s) => status.size += s,
            None => unknown.push(r.uid()),
        }
    }
    (status, unknown)
}

/// The listeners of one mailbox (IDLE sessions).
#[derive(Default)]
pub struct Listeners(Mutex<Vec<Weak<dyn ChangeListener>>>);

impl Listeners {
    pub fn watch(&self, listener: Weak<dyn ChangeListener>) {
        let mut list = self.0.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|w| w.strong_count() > 0);
        list.push(listener);
    }

    /// Wakes every live listener. Called without the mailbox's state lock held.
    pub fn notify(&self) {
        let alive: Vec<Arc<dyn ChangeListener>> = {
            let mut list = self.0.lock().unwrap_or_else(|e| e.into_inner());
            list.retain(|w| w.strong_count() > 0);
            list.iter().filter_map(Weak::upgrade).collect()
        };
        for l in alive {
            l.mailbox_changed();
        }
    }
}

/// A mailbox's cache file of derived values (`mail_index::MessageCache`), opened on first use
/// and again under a new UIDVALIDITY. Locked on its own, never while waiting for the mailbox's
/// state, so FETCH and SEARCH do not hold up the mailbox's writers.
pub struct CacheSlot {
    path: std::path::PathBuf,
    cache: Mutex<Option<mail_index::MessageCache>>,
}

impl CacheSlot {
    pub fn new(path: std::path::PathBuf) -> CacheSlot {
        CacheSlot {
            path,
            cache: Mutex::new(None),
        }
    }

    /// Runs `f` on the cache of a mailbox now at `uid_validity`. When the file is (re)opened,
    /// values of messages `live` does not list any more are dropped; `live` runs without the
    /// cache's lock held, so it may take the mailbox's state lock. Repairs are logged; a
    /// cache that cannot be used does nothing.
    pub fn with<T>(
        &self,
        uid_validity: mail_types::UidValidity,
        live: impl FnOnce() -> Vec<Uid>,
        f: impl FnOnce(&mut mail_index::MessageCache) -> T,
    ) -> T {
        let mut guard = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let stale = guard
            .as_ref()
            .is_some_and(|c| c.uid_validity() != uid_validity);
        if guard.is_none() || stale {
            let (mut cache, repairs) = mail_index::MessageCache::open(&self.path, uid_validity);
            for r in repairs {
                tracing::warn!(file = %r.path.display(), "cache file repaired: {}", r.what);
            }
            // Values of messages expunged while the file was closed are dropped.
            drop(guard);
            let live = live();
            cache.retain(|u| live.binary_search(&u).is_ok());
            guard = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            *guard = Some(cache);
        }
        match guard.as_mut() {
            Some(cache) => f(cache),
            None => f(&mut mail_index::MessageCache::disabled()),
        }
    }

    /// Drops the values of expunged messages, if the file is open.
    pub fn forget(&self, uids: &[Uid]) {
        if uids.is_empty() {
            return;
        }
        let mut guard = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(cache) = guard.as_mut() {
            cache.forget(uids);
        }
    }
}

/// How far ahead a mod-sequence ceiling is moved, so that it is written once per this many
/// changes.
const MODSEQ_RESERVE: u64 = 4096;

/// The mod-sequence ceiling stored in `path` (0 when there is none or it is unreadable): no
/// mod-sequence above it has left the process, and none at or below it may be handed out again
/// (RFC 7162 3.1.1), even by an index rebuilt after a crash or a restart.
pub fn read_modseq_ceiling(path: &std::path::Path) -> u64 {
    match std::fs::read_to_string(path) {
        Ok(text) => text.trim().parse::<u64>().unwrap_or_else(|_| {
            tracing::warn!(file = %path.display(), "unreadable mod-sequence ceiling ignored");
            0
        }),
        Err(_) => 0,
    }
}

/// Moves the ceiling in `dir`/`file` above `highest` (fsynced, with the directory) when
/// `*ceiling` is below it, before mod-sequences up to `highest` leave the store. Failures are
/// logged and leave `*ceiling` as it was.
pub fn reserve_modseqs(dir: &std::path::Path, file: &str, highest: u64, ceiling: &mut u64) {
    if highest <= *ceiling {
        return;
    }
    let new = highest.saturating_add(MODSEQ_RESERVE);
    let path = dir.join(file);
    let tmp = dir.join(format!(".{file}.tmp.{}", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        use std::io::Write as _;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(format!("{new}\n").as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    match written {
        Ok(()) => *ceiling = new,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!(file = %path.display(), "cannot save the mod-sequence ceiling: {e}");
        }
    }
}
