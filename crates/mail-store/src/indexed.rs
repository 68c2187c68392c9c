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

/// The list views share, with the cursor it was made at. The mailbox keeps it as long as it is
/// open itself, so a SELECT after a LOGOUT (a phone checking mail) takes it as it is, or brings
/// it up to date in place when no view holds it any more, rather than building a million-entry
/// list again.
#[derive(Debug, Default)]
pub struct SharedList {
    made_at: u64,
    /// The UIDVALIDITY it was made under: under another its UIDs name other messages.
    uid_validity: u32,
    list: Option<Arc<Vec<ViewMessage>>>,
    /// Where in `list` the first message without `\Seen` is, once a SELECT asked.
    first_unseen: Option<Option<usize>>,
}

/// Where in `list` the first message without `\Seen` is.
pub fn first_unseen(list: &[ViewMessage]) -> Option<usize> {
    list.iter()
        .position(|m| !m.flags.system.contains(SystemFlags::SEEN))
}

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
    let uid_validity = index.uid_validity().get();
    if shared.uid_validity != uid_validity {
        shared.list = None;
    }
    let messages = match shared.list.take() {
        Some(list) if shared.made_at == cursor => list,
        Some(mut list) => {
            shared.first_unseen = None;
            let made_at = shared.made_at;
            let caught_up =
                Arc::get_mut(&mut list).is_some_and(|own| catch_up(own, index, made_at));
            if caught_up {
                list
            } else {
                Arc::new(message_list(index))
            }
        }
        None => {
            shared.first_unseen = None;
            Arc::new(message_list(index))
        }
    };
    let first_unseen = *shared
        .first_unseen
        .get_or_insert_with(|| first_unseen(&messages));
    shared.made_at = cursor;
    shared.uid_validity = uid_validity;
    shared.list = Some(messages.clone());
    let header = index.header();
    SharedSnapshot {
        messages,
        first_unseen,
        recent,
        cursor: ChangeCursor(cursor),
        uid_next: header.uid_next,
        highest_modseq: header.highest_modseq,
    }
}

/// Every message of `index` as views list them.
fn message_list(index: &MailboxIndex) -> Vec<ViewMessage> {
    index
        .records()
        .map(|r| ViewMessage {
            uid: r.uid(),
            flags: r.flags(),
            modseq: r.modseq(),
            recent: false,
            expunged: false,
        })
        .collect()
}

/// Brings `list`, made at cursor `made_at`, to the state of `index`: what was expunged since
/// leaves, what changed takes its new flags, what arrived is added. `false` (and the list is
/// to be built again) if the result does not have exactly the index's UIDs at both ends and
/// its number of messages.
fn catch_up(list: &mut Vec<ViewMessage>, index: &MailboxIndex, made_at: u64) -> bool {
    let ch = index.changes_since(made_at);
    if !ch.expunged.is_empty() {
        list.retain(|m| !ch.expunged.contains(m.uid));
    }
    for m in ch.changed {
        let Ok(i) = list.binary_search_by_key(&m.uid, |v| v.uid) else {
            return false;
        };
        list[i].flags = m.flags;
        list[i].modseq = m.modseq;
    }
    for m in ch.appended {
        if ch.expunged.contains(m.uid) {
            continue;
        }
        if list.last().is_some_and(|last| last.uid >= m.uid) {
            return false;
        }
        list.push(ViewMessage {
            uid: m.uid,
            flags: m.flags,
            modseq: m.modseq,
            recent: false,
            expunged: false,
        });
    }
    list.len() == index.len()
        && list.first().map(|m| m.uid) == index.records().next().map(|r| r.uid())
        && list.last().map(|m| m.uid) == index.records().next_back().map(|r| r.uid())
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

#[cfg(test)]
mod tests {
    use mail_index::{NewRecord, Op};
    use mail_types::{Flags, Keyword, UidValidity};
    use proptest::prelude::*;

    use super::*;

    /// Appends a message at UIDNEXT.
    fn append(index: &mut MailboxIndex, flags: &Flags, recent: bool) {
        let uid = index.header().uid_next;
        let new = NewRecord {
            uid,
            flags,
            internal_date: None,
            size: None,
            recent,
            backend: b"",
        };
        index.apply(Op::Append(new)).unwrap();
    }

    fn index_of(validity: u32, flags: &Flags, count: u32) -> MailboxIndex {
        let mut index = MailboxIndex::new(UidValidity::new(validity).unwrap());
        for _ in 0..count {
            append(&mut index, flags, false);
        }
        index
    }

    /// An index rebuilt under a new UIDVALIDITY may reach the same cursor with other messages:
    /// the kept list is not taken for it.
    #[test]
    fn a_new_uidvalidity_gets_a_new_list() {
        let mut shared = SharedList::default();
        let before = index_of(1, &Flags::default(), 3);
        shared_snapshot(&before, &mut shared, Vec::new());
        let after = index_of(2, &Flags::new(SystemFlags::SEEN, []), 3);
        assert_eq!(after.cursor(), before.cursor());
        let snap = shared_snapshot(&after, &mut shared, Vec::new());
        assert_eq!(*snap.messages, message_list(&after));
        assert_eq!(snap.first_unseen, None);
    }

    proptest! {
        /// The shared list, kept by the mailbox and brought up to date in place between
        /// snapshots, is always exactly the list built afresh from the index; a list a view
        /// still holds is never changed.
        #[test]
        fn a_caught_up_list_is_the_fresh_one(
            ops in proptest::collection::vec((0u8..5, 0u32..40, any::<bool>()), 1..120),
        ) {
            let mut index = MailboxIndex::new(UidValidity::new(1).unwrap());
            let mut shared = SharedList::default();
            let mut held: Vec<(Arc<Vec<ViewMessage>>, Vec<ViewMessage>)> = Vec::new();
            for (op, n, hold) in ops {
                let uid = Uid::new(n + 1).unwrap();
                match op {
                    0 | 1 => append(&mut index, &Flags::default(), hold),
                    2 => {
                        index.apply(Op::Expunge(&[uid])).unwrap();
                    }
                    3 if index.get(uid).is_some() => {
                        let word = Keyword::new(if hold { "Work" } else { "Home" }).unwrap();
                        let flags = Flags::new(SystemFlags::from_bits_truncate(n as u8), [word]);
                        index.apply(Op::SetFlags { uid, flags: &flags }).unwrap();
                    }
                    _ => {
                        let snap = shared_snapshot(&index, &mut shared, Vec::new());
                        prop_assert_eq!(&*snap.messages, &message_list(&index));
                        prop_assert_eq!(snap.first_unseen, first_unseen(&snap.messages));
                        if hold {
                            held.push((snap.messages.clone(), (*snap.messages).clone()));
                        }
                    }
                }
            }
            let snap = shared_snapshot(&index, &mut shared, Vec::new());
            prop_assert_eq!(&*snap.messages, &message_list(&index));
            for (list, copy) in held {
                prop_assert_eq!(&*list, &copy);
            }
        }
    }
}
