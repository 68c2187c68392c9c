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
