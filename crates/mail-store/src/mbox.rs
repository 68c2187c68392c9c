//! The mbox backend, compatible in place with UW-IMAP, Dovecot, mutt, procmail and Postfix.
//!
//! Layout (Dovecot's `mail_location = mbox:~/mail:INBOX=/var/mail/%u`): INBOX is one file,
//! usually the system spool; every other mailbox is a file under the root directory, and
//! directories there are the hierarchy (`\Noselect` parents). Dovecot's control directory
//! `<root>/.imap/` holds the UIDVALIDITY counter both servers share (`dovecot-uidvalidity`)
//! and, per mailbox, `.imap/<name>/`, where Columba keeps the journal that makes rewrites crash
//! safe and its index files (Dovecot keeps its own there too): the main index `columba.index`,
//! the transaction log `columba.index.log`, the cache and the mod-sequence ceiling. Subscriptions are Dovecot's `<root>/.subscriptions`,
//! one name per line, merged with UW-IMAP's `~/.mailboxlist` (names relative to the home
//! directory, `mail/work`) when the user has one, and both are kept up to date.
//!
//! The code is split by concern: the `From ` line (`from_line`), reading (`parse`) and writing
//! (`write`) messages with their metadata headers, locking (`lock`), crash safety (`journal`)
//! and the mailbox over the shared index (`mailbox`).
//!
//! One process-wide registry maps each mbox file to the one `Arc<MboxMailbox>` every `open`
//! returns, so sessions of one process share the index and exclude each other through its
//! mutex; other processes are excluded by the file locks. Columba processes also share the
//! index through the transaction log (`crate::index_log`, as the Maildir backend does): every
//! change is a transaction under the log's lock — taken before the mbox locks, never while
//! holding one — whose record carries the mbox file's stamp after it, so another process
//! replays it with the same UIDs and mod-sequences instead of reading the file, and a restart
//! loads the main index and replays the log.

pub mod from_line;
mod import;
mod journal;
pub mod lock;
mod mailbox;
pub mod parse;
mod persist;
pub mod write;

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use mail_types::{Flags, MailboxName, SystemFlags, Uid, UidValidity};

pub use crate::index_log::{LOG_FILE, LogStats};
pub use lock::{LockConfig, LockMethod};
pub use mailbox::{JOURNAL_FILE, MboxMailbox};
pub use persist::INDEX_FILE;
pub use write::Quoting;

use crate::maildir::io as mio;
use crate::{FlagChange, MailStore, Mailbox, MailboxEntry, Result, StoreError};

/// The control directory under the root (Dovecot's name).
pub const CONTROL_DIR: &str = ".imap";
/// Dovecot's subscriptions file for mbox, in the root.
pub const SUBSCRIPTIONS_FILE: &str = ".subscriptions";
/// UW-IMAP's subscriptions file, in the home directory, with names relative to it.
pub const UW_SUBSCRIPTIONS_FILE: &str = ".mailboxlist";

/// How mbox files are written and locked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MboxSettings {
    pub quoting: Quoting,
    pub locks: LockConfig,
}

/// A user's mbox tree: a root directory of folders and an INBOX file.
#[derive(Debug, Clone)]
pub struct MboxStore {
    root: PathBuf,
    inbox: PathBuf,
    settings: Arc<MboxSettings>,
}

impl MboxStore {
    /// Opens the tree at `root` with INBOX at `inbox`, creating the root (mode 0700) and an
    /// empty INBOX if they are missing.
    pub fn new(root: PathBuf, inbox: PathBuf, settings: MboxSettings) -> Result<Self> {
        fs::create_dir_all(&root).map_err(|e| StoreError::io(&root, e))?;
        let root = root.canonicalize().map_err(|e| StoreError::io(&root, e))?;
        if let Some(dir) = inbox.parent() {
            fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        }
        create_empty(&inbox)?;
        let inbox = inbox
            .canonicalize()
            .map_err(|e| StoreError::io(&inbox, e))?;
        Ok(MboxStore {
            root,
            inbox,
            settings: Arc::new(settings),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The tree as it is, creating nothing (for readers that must not write).
    pub(crate) fn at(root: PathBuf, inbox: PathBuf, settings: MboxSettings) -> Self {
        MboxStore {
            root,
            inbox,
            settings: Arc::new(settings),
        }
    }

    pub(crate) fn settings(&self) -> &MboxSettings {
        &self.settings
    }

    /// The file holding mailbox `name`.
    pub fn mailbox_path(&self, name: &MailboxName) -> Result<PathBuf> {
        if name.is_inbox() {
            return Ok(self.inbox.clone());
        }
        let mut path = self.root.clone();
        for part in name.components() {
            // Dot names are the control directory's and other programs' files.
            if part.is_empty() || part.starts_with('.') || part.contains('/') {
                return Err(StoreError::InvalidName(name.to_string()));
            }
            path.push(part);
        }
        Ok(path)
    }

    pub(crate) fn control_path(&self, name: &MailboxName) -> PathBuf {
        let mut path = self.root.join(CONTROL_DIR);
        if name.is_inbox() {
            path.push("INBOX");
        } else {
            for part in name.components() {
                path.push(part);
            }
        }
        path
    }

    /// Opens a mailbox as a concrete [`MboxMailbox`].
    pub fn open_mbox(&self, name: &MailboxName) -> Result<Arc<MboxMailbox>> {
        let path = self.mailbox_path(name)?;
        if !path.is_file() {
            return Err(StoreError::NotFound(name.to_string()));
        }
        let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = reg.open.get(&path).and_then(Weak::upgrade) {
            reg.touch(&existing);
            return Ok(existing);
        }
        // Indexed under the registry lock: two sessions opening the same big mbox at once
        // would otherwise both scan it.
        let fresh = MboxMailbox::open(
            name.clone(),
            path.clone(),
            self.control_path(name),
            self.root.join(CONTROL_DIR),
            self.settings.clone(),
        )?;
        reg.open.insert(path, Arc::downgrade(&fresh));
        reg.touch(&fresh);
        Ok(fresh)
    }

    /// Opens mailbox `name` as a process of its own would: an [`MboxMailbox`] that shares
    /// nothing in memory with the ones `open` hands out, only the files. For tests of several
    /// processes on one mbox.
    pub fn open_unshared(&self, name: &MailboxName) -> Result<Arc<MboxMailbox>> {
        let path = self.mailbox_path(name)?;
        if !path.is_file() {
            return Err(StoreError::NotFound(name.to_string()));
        }
        MboxMailbox::open_unshared(
            name.clone(),
            path,
            self.control_path(name),
            self.root.join(CONTROL_DIR),
            self.settings.clone(),
        )
    }

    /// The mailbox's control directory (`<root>/.imap/<name>`), where its index files are.
    pub fn control_dir(&self, name: &MailboxName) -> Result<PathBuf> {
        self.mailbox_path(name)?;
        Ok(self.control_path(name))
    }

    fn forget(&self, path: &Path) {
        let gone = {
            let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
            reg.keep_alive.retain(|m| m.path() != path);
            reg.open.remove(path).and_then(|w| w.upgrade())
        };
        if let Some(m) = gone {
            m.mark_deleted();
        }
    }

    /// RFC 3501 6.3.5: "Renaming INBOX is permitted ... all messages in INBOX are moved to a
    /// new mailbox with the given name, leaving INBOX empty." The spool file itself stays where
    /// the MTA delivers: the messages are copied into the new mbox (flags, keywords and dates
    /// kept, UIDs afresh under its own UIDVALIDITY), then expunged from INBOX. A crash between
    /// the two leaves them in both mailboxes, never in neither; a message delivered meanwhile
    /// stays in INBOX.
    fn rename_inbox(&self, to: &MailboxName) -> Result<()> {
        self.create(to)?;
        let inbox = self.open_mbox(&MailboxName::inbox())?;
        let target = self.open_mbox(to)?;
        let uids: Vec<Uid> = inbox
            .snapshot(false)?
            .messages
            .iter()
            .map(|m| m.uid)
            .collect();
        if uids.is_empty() {
            return Ok(());
        }
        inbox.copy_to(&uids, target.as_ref())?;
        inbox.store_flags(
            &uids,
            &FlagChange::Add(Flags::new(SystemFlags::DELETED, [])),
        )?;
        inbox.expunge(Some(&uids))?;
        Ok(())
    }

    fn walk(&self, dir: &Path, prefix: &str, out: &mut Vec<MailboxEntry>) -> Result<()> {
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StoreError::io(dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io(dir, e))?;
            let Ok(file_name) = entry.file_name().into_string() else {
                continue;
            };
            if file_name.starts_with('.') {
                continue;
            }
            let full = format!("{prefix}{file_name}");
            let Ok(name) = MailboxName::new(&full) else {
                continue;
            };
            if name.is_inbox() {
                continue;
            }
            let path = entry.path();
            if path.is_dir() {
                out.push(MailboxEntry {
                    name,
                    selectable: false,
                });
                self.walk(&path, &format!("{full}/"), out)?;
            } else if path.is_file() {
                out.push(MailboxEntry {
                    name,
                    selectable: true,
                });
            }
        }
        Ok(())
    }
}

impl MboxStore {
    /// UW-IMAP's subscription list, `~/.mailboxlist`, when it exists beside the root (the
    /// root being `~/mail` or the like), and the prefix its names carry (`mail/`).
    fn uw_mailboxlist(&self) -> Option<(PathBuf, String)> {
        let home = self.root.parent()?;
        let list = home.join(UW_SUBSCRIPTIONS_FILE);
        let prefix = format!("{}/", self.root.file_name()?.to_str()?);
        list.is_file().then_some((list, prefix))
    }
}

/// The lines of a subscription file; none when it does not exist.
fn read_lines(path: &Path) -> Result<Vec<String>> {
    match fs::read(path) {
        Ok(t) => Ok(String::from_utf8_lossy(&t)
            .lines()
            .map(|l| l.trim_end_matches('\r').to_owned())
            .filter(|l| !l.is_empty())
            .collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

fn read_names(path: &Path) -> Result<Vec<MailboxName>> {
    Ok(read_lines(path)?
        .iter()
        .filter_map(|l| MailboxName::new(l).ok())
        .collect())
}

/// Replaces a subscription file atomically.
fn write_lines(path: &Path, lines: impl Iterator<Item = String>) -> Result<()> {
    let mut text = String::new();
    for l in lines {
        text.push_str(&l);
        text.push('\n');
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    fs::write(&tmp, text).map_err(|e| mio::error(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| StoreError::io(path, e))
}

/// Creates an empty mbox (mode 0600, as Dovecot and local delivery agents create spool files)
/// unless the file exists.
pub(crate) fn create_empty(path: &Path) -> Result<()> {
    match mio::create_new(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(mio::error(path, e)),
    }
}

impl MailStore for MboxStore {
    fn list(&self) -> Result<Vec<MailboxEntry>> {
        let mut out = vec![MailboxEntry {
            name: MailboxName::inbox(),
            selectable: true,
        }];
        self.walk(&self.root.clone(), "", &mut out)?;
        Ok(out)
    }

    fn create(&self, name: &MailboxName) -> Result<()> {
        let path = self.mailbox_path(name)?;
        if name.is_inbox() || path.exists() {
            return Err(StoreError::AlreadyExists(name.to_string()));
        }
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        }
        mio::create_new(&path).map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => StoreError::AlreadyExists(name.to_string()),
            _ => mio::error(&path, e),
        })?;
        Ok(())
    }

    fn delete(&self, name: &MailboxName) -> Result<()> {
        if name.is_inbox() {
            return Err(StoreError::NotPossible(
                "INBOX cannot be deleted".to_owned(),
            ));
        }
        let path = self.mailbox_path(name)?;
        if path.is_dir() {
            // A folder directory: only an empty one goes (its mailboxes are deleted one by one).
            return fs::remove_dir(&path).map_err(|e| match e.raw_os_error() {
                Some(libc::ENOTEMPTY) => StoreError::NotPossible(format!("{name} has children")),
                _ => StoreError::io(&path, e),
            });
        }
        fs::remove_file(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::NotFound(name.to_string()),
            _ => StoreError::io(&path, e),
        })?;
        self.forget(&path);
        let _ = fs::remove_dir_all(self.control_path(name));
        Ok(())
    }

    fn rename(&self, from: &MailboxName, to: &MailboxName) -> Result<()> {
        let old = self.mailbox_path(from)?;
        let new = self.mailbox_path(to)?;
        if to.is_inbox() || new.exists() {
            return Err(StoreError::AlreadyExists(to.to_string()));
        }
        if from.is_inbox() {
            return self.rename_inbox(to);
        }
        if !old.exists() {
            return Err(StoreError::NotFound(from.to_string()));
        }
        if let Some(dir) = new.parent() {
            fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        }
        fs::rename(&old, &new).map_err(|e| StoreError::io(&old, e))?;
        self.forget(&old);
        let control = self.control_path(to);
        if let Some(dir) = control.parent() {
            let _ = fs::create_dir_all(dir);
        }
        let _ = fs::rename(self.control_path(from), control);
        Ok(())
    }

    fn subscriptions(&self) -> Result<Vec<MailboxName>> {
        let mut names = read_names(&self.root.join(SUBSCRIPTIONS_FILE))?;
        if let Some((list, prefix)) = self.uw_mailboxlist() {
            for line in read_lines(&list)? {
                let name = if line.eq_ignore_ascii_case("INBOX") {
                    Some(line.as_str())
                } else {
                    line.strip_prefix(&prefix)
                };
                if let Some(name) = name.and_then(|n| MailboxName::new(n).ok())
                    && !names.contains(&name)
                {
                    names.push(name);
                }
            }
        }
        Ok(names)
    }

    fn set_subscribed(&self, name: &MailboxName, subscribed: bool) -> Result<()> {
        let mut names = read_names(&self.root.join(SUBSCRIPTIONS_FILE))?;
        names.retain(|n| n != name);
        if subscribed {
            names.push(name.clone());
        }
        write_lines(
            &self.root.join(SUBSCRIPTIONS_FILE),
            names.iter().map(|n| n.as_str().to_owned()),
        )?;
        // UW-IMAP's list is kept in step when the user has one, so both servers agree.
        if let Some((list, prefix)) = self.uw_mailboxlist() {
            let entry = if name.is_inbox() {
                "INBOX".to_owned()
            } else {
                format!("{prefix}{name}")
            };
            let mut lines = read_lines(&list)?;
            lines.retain(|l| *l != entry);
            if subscribed {
                lines.push(entry);
            }
            write_lines(&list, lines.into_iter())?;
        }
        Ok(())
    }

    fn open(&self, name: &MailboxName) -> Result<Arc<dyn Mailbox>> {
        let mailbox: Arc<dyn Mailbox> = self.open_mbox(name)?;
        Ok(mailbox)
    }

    fn import(
        &self,
        name: &MailboxName,
        plan: &crate::migrate::ImportPlan,
    ) -> Result<Box<dyn crate::migrate::MailboxImport>> {
        Ok(Box::new(import::MboxImport::begin(self, name, plan)?))
    }
}

/// A new UIDVALIDITY from the counter in `dir`, which Dovecot shares.
fn next_uid_validity(dir: &Path) -> UidValidity {
    let _ = fs::create_dir_all(dir);
    crate::maildir::uidvalidity::next(dir)
}

/// How many mailboxes nobody holds stay indexed in memory, so that a SELECT after a LOGOUT
/// does not scan the file again.
const KEEP_ALIVE: usize = 8;

#[derive(Default)]
struct Registry {
    open: HashMap<PathBuf, Weak<MboxMailbox>>,
    keep_alive: VecDeque<Arc<MboxMailbox>>,
}

impl Registry {
    fn touch(&mut self, mailbox: &Arc<MboxMailbox>) {
        self.keep_alive.retain(|m| !Arc::ptr_eq(m, mailbox));
        self.keep_alive.push_back(mailbox.clone());
        while self.keep_alive.len() > KEEP_ALIVE {
            self.keep_alive.pop_front();
        }
        self.open.retain(|_, w| w.strong_count() > 0);
    }
}

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(Registry::default()))
}

/// Lets go of the mailboxes kept in memory for reuse whose file is under `dir`, so that the
/// next `open` reads the file as a new process would. For tests.
pub fn release_idle_mailboxes(dir: &Path) {
    let idle: VecDeque<Arc<MboxMailbox>> = {
        let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
        let (gone, kept) = std::mem::take(&mut reg.keep_alive)
            .into_iter()
            .partition(|m| m.path().starts_with(dir));
        reg.keep_alive = kept;
        gone
    };
    drop(idle);
}

#[cfg(test)]
mod tests;
