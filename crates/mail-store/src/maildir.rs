//! The Maildir backend, compatible in place with Dovecot's Maildir++.
//!
//! Layout (Dovecot 2.3 `mail_location = maildir:~/Maildir` with the `listescape` plugin and a
//! namespace separator of `/`): INBOX is the root directory (`cur/`, `new/`, `tmp/`); every other
//! mailbox is a `.Name.Sub` directory in the root holding an empty `maildirfolder` file (see
//! `names` for the encoding of names). Each mailbox directory has Dovecot's `dovecot-uidlist`
//! (UIDs, `uidlist`) and `dovecot-keywords` (keyword letters, `keywords`); the root has
//! `subscriptions` and the UIDVALIDITY counter. Dovecot's own index files (`dovecot.index*`) are
//! left alone: Dovecot rebuilds them from these files when they disagree.
//!
//! A tree Courier-IMAP served is taken over in place, as Dovecot's migration does: its UIDs
//! (`courierimapuiddb`, `uidlist`), subscriptions, keywords (`courier_keywords`) and POP3
//! UIDLs (`courier_uidl`) are read once and kept in Dovecot's files from then on; Courier's own
//! files are never written, so a rollback to Courier finds them as they were.
//!
//! The code is split by concern the way Dovecot's `lib-storage/index/maildir` is: file names
//! (`filename`), the uidlist, keywords, scanning (`sync`), saving (`save`), copying (`copy`),
//! the mailbox hierarchy (`list`) and subscriptions, with locking in `dotlock`.
//!
//! One process-wide registry maps each mailbox directory to the one `Arc<MaildirMailbox>` every
//! `open` returns, whichever [`MaildirStore`] asks, so sessions of one process share the index,
//! its change history and `\Recent` ownership.

mod copy;
pub(crate) mod courier_keywords;
pub(crate) mod courier_uidl;
pub(crate) mod dotlock;
pub(crate) mod filename;
mod flag_store;
mod import;
pub(crate) mod io;
pub(crate) mod keywords;
pub(crate) mod list;
pub(crate) mod mailbox;
pub(crate) mod names;
mod persist;
mod save;
pub(crate) mod special_use;
mod state;
pub(crate) mod subscriptions;
pub(crate) mod sync;
mod tmp_cleanup;
mod txlog;
mod uidl;
pub(crate) mod uidlist;
pub(crate) mod uidvalidity;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use mail_types::MailboxName;

pub use mailbox::{CACHE_FILE, MaildirMailbox};
pub use persist::{INDEX_FILE, MODSEQ_FILE};
pub use txlog::{LOG_FILE, LogStats, fsync_policy, set_fsync_policy};

use crate::{MailStore, Mailbox, MailboxEntry, Result, StoreError};

/// A user's Maildir++ tree.
#[derive(Debug, Clone)]
pub struct MaildirStore {
    root: PathBuf,
}

impl MaildirStore {
    /// Opens the Maildir at `root`, creating it (with `cur/`, `new/`, `tmp/`, mode 0700) if it is
    /// missing.
    pub fn new(root: PathBuf) -> Result<Self> {
        create_dir_all(&root)?;
        for sub in ["cur", "new", "tmp"] {
            io::create_dir(&root.join(sub))?;
        }
        // One spelling per directory, so the registry finds a mailbox however the root was named.
        let root = root.canonicalize().map_err(|e| StoreError::io(&root, e))?;
        Ok(MaildirStore { root })
    }

    /// The tree at `root` as it is, creating nothing (for readers that must not write).
    pub(crate) fn at(root: PathBuf) -> Self {
        MaildirStore { root }
    }

    /// The Maildir root (INBOX).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory holding mailbox `name`.
    pub fn mailbox_path(&self, name: &MailboxName) -> Result<PathBuf> {
        let dir = names::dir_name(name)?;
        Ok(if dir.is_empty() {
            self.root.clone()
        } else {
            self.root.join(dir)
        })
    }

    /// Opens mailbox `name` as a process of its own would: a [`MaildirMailbox`] that shares
    /// nothing in memory with the ones `open` hands out. For tests of several processes on one
    /// Maildir.
    pub fn open_unshared(&self, name: &MailboxName) -> Result<Arc<MaildirMailbox>> {
        let path = self.mailbox_path(name)?;
        if !path.join("cur").is_dir() {
            return Err(StoreError::NotFound(name.to_string()));
        }
        MaildirMailbox::open(name.clone(), self.root.clone(), path)
    }

    /// Opens a mailbox as a concrete [`MaildirMailbox`] (the trait's `open` returns it as
    /// `Arc<dyn Mailbox>`).
    pub fn open_maildir(&self, name: &MailboxName) -> Result<Arc<MaildirMailbox>> {
        let path = self.mailbox_path(name)?;
        if !path.join("cur").is_dir() {
            return Err(StoreError::NotFound(name.to_string()));
        }
        registry_open(name, &self.root, &path)
    }
}

fn create_dir_all(path: &Path) -> Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        create_dir_all(parent)?;
    }
    io::create_dir(path).map(|_| ())
}

impl MailStore for MaildirStore {
    fn list(&self) -> Result<Vec<MailboxEntry>> {
        list::list(self)
    }

    fn create(&self, name: &MailboxName) -> Result<()> {
        list::create(self, name)
    }

    fn delete(&self, name: &MailboxName) -> Result<()> {
        list::delete(self, name)
    }

    fn rename(&self, from: &MailboxName, to: &MailboxName) -> Result<()> {
        list::rename(self, from, to)
    }

    fn subscriptions(&self) -> Result<Vec<MailboxName>> {
        subscriptions::list(&self.root)
    }

    fn set_subscribed(&self, name: &MailboxName, subscribed: bool) -> Result<()> {
        subscriptions::set(&self.root, name, subscribed)
    }

    fn open(&self, name: &MailboxName) -> Result<Arc<dyn Mailbox>> {
        let mailbox: Arc<dyn Mailbox> = self.open_maildir(name)?;
        Ok(mailbox)
    }

    fn create_special_use(&self, name: &MailboxName, uses: &[String]) -> Result<()> {
        special_use::create(self, name, uses)
    }

    fn special_use(&self, name: &MailboxName) -> Vec<String> {
        special_use::read(self, name)
    }

    fn import(
        &self,
        name: &MailboxName,
        plan: &crate::migrate::ImportPlan,
    ) -> Result<Box<dyn crate::migrate::MailboxImport>> {
        Ok(Box::new(import::MaildirImport::begin(self, name, plan)?))
    }
}

/// How many recently opened mailboxes stay in memory with nobody holding them, so that STATUS
/// or a SELECT after a LOGOUT does not rebuild the index from the directory each time.
const KEEP_ALIVE: usize = 8;

#[derive(Default)]
struct Registry {
    open: HashMap<PathBuf, Weak<MaildirMailbox>>,
    keep_alive: VecDeque<Arc<MaildirMailbox>>,
}

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(Registry::default()))
}

fn lock_registry() -> std::sync::MutexGuard<'static, Registry> {
    registry().lock().unwrap_or_else(|e| e.into_inner())
}

impl Registry {
    fn touch(&mut self, mailbox: &Arc<MaildirMailbox>) {
        self.keep_alive.retain(|m| !Arc::ptr_eq(m, mailbox));
        self.keep_alive.push_back(mailbox.clone());
        while self.keep_alive.len() > KEEP_ALIVE {
            self.keep_alive.pop_front();
        }
        self.open.retain(|_, w| w.strong_count() > 0);
    }
}

/// The shared mailbox for `path`, opening (and indexing) it if nobody has it open.
fn registry_open(name: &MailboxName, root: &Path, path: &Path) -> Result<Arc<MaildirMailbox>> {
    {
        let mut reg = lock_registry();
        if let Some(existing) = reg.open.get(path).and_then(Weak::upgrade) {
            reg.touch(&existing);
            return Ok(existing);
        }
    }
    // Indexing a big mailbox takes a while: not under the registry lock. Two racing openers
    // both index it; the first to register wins and the other's copy is dropped.
    let fresh = MaildirMailbox::open(name.clone(), root.to_owned(), path.to_owned())?;
    let mut reg = lock_registry();
    if let Some(existing) = reg.open.get(path).and_then(Weak::upgrade) {
        reg.touch(&existing);
        return Ok(existing);
    }
    reg.open.insert(path.to_owned(), Arc::downgrade(&fresh));
    reg.touch(&fresh);
    Ok(fresh)
}

/// How many times this process has listed a `new/` or `cur/` directory.
pub fn directory_scans() -> u64 {
    sync::DIRECTORY_SCANS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Lets go of the mailboxes under `root` that are kept open for reuse, so that the next `open`
/// of one nobody holds reads it from disk as a restarted process would. For tests and memory
/// pressure; closing saves each mailbox's index.
pub fn release_idle_mailboxes(root: &Path) {
    let idle: VecDeque<Arc<MaildirMailbox>> = {
        let mut reg = lock_registry();
        let (gone, kept) = std::mem::take(&mut reg.keep_alive)
            .into_iter()
            .partition(|m| m.path().starts_with(root));
        reg.keep_alive = kept;
        gone
    };
    // Dropped outside the registry lock: a mailbox's drop writes its index.
    drop(idle);
}

/// Forgets the mailboxes in `paths` (deleted or renamed): sessions holding them get `NotFound`
/// from now on, and the next `open` starts afresh.
fn registry_forget(paths: &[PathBuf]) {
    let gone: Vec<Arc<MaildirMailbox>> = {
        let mut reg = lock_registry();
        let gone = paths
            .iter()
            .filter_map(|p| reg.open.remove(p).and_then(|w| w.upgrade()))
            .collect();
        reg.keep_alive
            .retain(|m| !paths.iter().any(|p| p == m.path()));
        gone
    };
    for m in gone {
        m.mark_deleted();
    }
}

#[cfg(test)]
mod tests;
