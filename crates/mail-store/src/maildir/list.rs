//! The mailbox hierarchy (`mailbox-list-maildir.c`): LIST, CREATE, DELETE and RENAME on
//! Maildir++ folders.

use std::collections::BTreeMap;
use std::fs;
use std::io as stdio;
use std::path::{Path, PathBuf};

use mail_types::MailboxName;

use super::dotlock::DotLock;
use super::io;
use super::keywords::KeywordMap;
use super::names;
use super::state::Dir;
use super::subscriptions;
use super::sync::{Entry, scan_dir};
use super::uidlist::{self, Uidlist};
use super::{MaildirStore, filename, registry_forget, registry_open, uidvalidity};
use crate::{MailboxEntry, Result, StoreError};

/// The empty file that marks a Maildir++ folder (Courier's and Dovecot's convention).
const FOLDER_MARKER: &str = "maildirfolder";

/// Every mailbox: INBOX, each `.folder` directory, and `\Noselect` parents implied by deeper
/// folders (`.a.b` without `.a`).
pub fn list(store: &MaildirStore) -> Result<Vec<MailboxEntry>> {
    let mut found: BTreeMap<MailboxName, bool> = BTreeMap::new();
    found.insert(MailboxName::inbox(), true);
    for (name, dir) in folder_dirs(store.root())? {
        let selectable = store.root().join(&dir).join("cur").is_dir();
        found.insert(name, selectable);
    }
    let names: Vec<MailboxName> = found.keys().cloned().collect();
    for name in names {
        for parent in name.ancestors() {
            found.entry(parent).or_insert(false);
        }
    }
    Ok(found
        .into_iter()
        .map(|(name, selectable)| MailboxEntry { name, selectable })
        .collect())
}

/// The folder directories of the root, with their names.
fn folder_dirs(root: &Path) -> Result<Vec<(MailboxName, String)>> {
    let mut out = Vec::new();
    let entries = fs::read_dir(root).map_err(|e| StoreError::io(root, e))?;
    for entry in entries.flatten() {
        let os_name = entry.file_name();
        let Some(dir) = os_name.to_str() else {
            continue;
        };
        if !dir.starts_with('.') || dir == "." || dir == ".." {
            continue;
        }
        // Symlinked folders count, as in Dovecot.
        if !entry.path().is_dir() {
            continue;
        }
        match names::mailbox_of_dir(dir) {
            Some(name) => out.push((name, dir.to_owned())),
            None => tracing::debug!(root = %root.display(), "not a mailbox directory: {dir}"),
        }
    }
    Ok(out)
}

fn has_children(root: &Path, dir: &str) -> Result<bool> {
    Ok(!child_dirs(root, dir)?.is_empty())
}

/// The directories of the mailboxes below `dir` (`.a` has `.a.b`, `.a.b.c`, ...).
fn child_dirs(root: &Path, dir: &str) -> Result<Vec<String>> {
    let prefix = format!("{dir}.");
    Ok(folder_dirs(root)?
        .into_iter()
        .map(|(_, d)| d)
        .filter(|d| d.starts_with(&prefix))
        .collect())
}

/// CREATE (RFC 3501 6.3.3), creating missing parents too.
pub fn create(store: &MaildirStore, name: &MailboxName) -> Result<()> {
    if name.is_inbox() {
        return Err(StoreError::AlreadyExists(name.to_string()));
    }
    let path = store.mailbox_path(name)?;
    for parent in name.ancestors() {
        if parent.is_inbox() {
            continue;
        }
        match create_maildir(store, &store.mailbox_path(&parent)?) {
            Ok(()) | Err(StoreError::AlreadyExists(_)) => {}
            Err(e) => return Err(e),
        }
    }
    create_maildir(store, &path).map_err(|e| match e {
        StoreError::AlreadyExists(_) => StoreError::AlreadyExists(name.to_string()),
        other => other,
    })
}

/// Makes `path` a Maildir folder. `cur/` is created last: a folder without it is not selectable,
/// so a half-created folder never looks like a mailbox.
pub(super) fn create_maildir(store: &MaildirStore, path: &Path) -> Result<()> {
    if path.join("cur").is_dir() {
        return Err(StoreError::AlreadyExists(path.display().to_string()));
    }
    io::create_dir(path)?;
    io::create_dir(&path.join("new"))?;
    io::create_dir(&path.join("tmp"))?;
    let marker = path.join(FOLDER_MARKER);
    match io::create_new(&marker) {
        Ok(_) => {}
        Err(e) if e.kind() == stdio::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io::error(&marker, e)),
    }
    // The UIDVALIDITY is fixed now, from the shared counter: a mailbox created again after a
    // DELETE never gets the old one back.
    {
        let _lock = DotLock::acquire(&path.join(uidlist::FILE_NAME), &uidlist::LOCK)?;
        if !path.join(uidlist::FILE_NAME).exists() {
            let list = Uidlist {
                uid_validity: uidvalidity::next(store.root()).get(),
                next_uid: 1,
                guid: Some(uidlist::new_guid()),
                header_ext: Vec::new(),
                records: Vec::new(),
            };
            uidlist::write(path, &list)?;
        }
    }
    if !io::create_dir(&path.join("cur"))? {
        return Err(StoreError::AlreadyExists(path.display().to_string()));
    }
    if let Some(parent) = path.parent() {
        io::fsync_dir(parent)?;
    }
    Ok(())
}

/// DELETE (RFC 3501 6.3.4): the mailbox's directory and messages go; its children are separate
/// directories in Maildir++ and stay, which leaves the name as a `\Noselect` parent.
pub fn delete(store: &MaildirStore, name: &MailboxName) -> Result<()> {
    if name.is_inbox() {
        return Err(StoreError::NotPossible("INBOX can't be deleted".to_owned()));
    }
    let dir = names::dir_name(name)?;
    let path = store.root().join(&dir);
    // A name that only exists because of its children has no directory to delete; Dovecot
    // answers NONEXISTENT there too.
    if !path.is_dir() {
        return Err(StoreError::NotFound(name.to_string()));
    }
    // A directory without cur/ is a \Noselect placeholder: RFC 3501 6.3.4 forbids deleting it
    // while it has children.
    if !path.join("cur").is_dir() && has_children(store.root(), &dir)? {
        return Err(StoreError::NotPossible(format!(
            "{name} has children, delete them first"
        )));
    }
    registry_forget(std::slice::from_ref(&path));
    // Out of the hierarchy in one step, then removed at leisure (Dovecot's DOVECOT-TRASHED).
    let trash = store
        .root()
        .join(format!("DOVECOT-TRASHED.{}", filename::generate()));
    fs::rename(&path, &trash).map_err(|e| StoreError::io(&path, e))?;
    io::fsync_dir(store.root())?;
    if let Err(e) = fs::remove_dir_all(&trash) {
        tracing::warn!(dir = %trash.display(), "cannot remove a deleted mailbox: {e}");
    }
    Ok(())
}

/// RENAME (RFC 3501 6.3.5) with all children; missing parents of the new name are created.
/// Renaming INBOX moves its messages into a new mailbox and leaves INBOX empty.
pub fn rename(store: &MaildirStore, from: &MailboxName, to: &MailboxName) -> Result<()> {
    if to.is_inbox() || from == to {
        return Err(StoreError::AlreadyExists(to.to_string()));
    }
    if to.is_descendant_of(from) {
        return Err(StoreError::NotPossible(format!(
            "can't rename {from} into itself"
        )));
    }
    if from.is_inbox() {
        return rename_inbox(store, to);
    }
    let root = store.root();
    let from_dir = names::dir_name(from)?;
    let to_dir = names::dir_name(to)?;
    let children = child_dirs(root, &from_dir)?;
    let from_exists = root.join(&from_dir).is_dir();
    if !from_exists && children.is_empty() {
        return Err(StoreError::NotFound(from.to_string()));
    }
    if root.join(&to_dir).exists() || has_children(root, &to_dir)? {
        return Err(StoreError::AlreadyExists(to.to_string()));
    }
    // Every new name must fit before anything moves.
    let mut moves: Vec<(String, String)> = Vec::new();
    if from_exists {
        moves.push((from_dir.clone(), to_dir.clone()));
    }
    for child in children {
        let new = format!("{to_dir}{}", &child[from_dir.len()..]);
        if new.len() > 255 {
            return Err(StoreError::InvalidName(format!(
                "{to}: a child's name gets too long"
            )));
        }
        moves.push((child, new));
    }
    for parent in to.ancestors() {
        if parent.is_inbox() || parent == *from || parent.is_descendant_of(from) {
            continue;
        }
        match create_maildir(store, &store.mailbox_path(&parent)?) {
            Ok(()) | Err(StoreError::AlreadyExists(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let old_paths: Vec<PathBuf> = moves.iter().map(|(o, _)| root.join(o)).collect();
    registry_forget(&old_paths);
    for (old, new) in &moves {
        fs::rename(root.join(old), root.join(new))
            .map_err(|e| StoreError::io(root.join(old), e))?;
    }
    io::fsync_dir(root)?;
    rename_subscriptions(store, from, to);
    Ok(())
}

/// Subscriptions follow a renamed subtree (the names no longer exist otherwise).
fn rename_subscriptions(store: &MaildirStore, from: &MailboxName, to: &MailboxName) {
    let Ok(subscribed) = subscriptions::list(store.root()) else {
        return;
    };
    let mut changes = Vec::new();
    for name in subscribed {
        if let Some(new) = name.rebase(from, to) {
            changes.push((name, false));
            changes.push((new, true));
        }
    }
    if !changes.is_empty()
        && let Err(e) = subscriptions::set_many(store.root(), &changes)
    {
        tracing::warn!(root = %store.root().display(), "cannot rename subscriptions: {e}");
    }
}

/// RFC 3501 6.3.5: "Renaming INBOX is permitted ... all messages in INBOX are moved to a new
/// mailbox with the given name, leaving INBOX empty." The new mailbox numbers them afresh under
/// its own UIDVALIDITY; their files (names, flags, dates) move unchanged.
fn rename_inbox(store: &MaildirStore, to: &MailboxName) -> Result<()> {
    create(store, to)?;
    let target = store.mailbox_path(to)?;
    let inbox = registry_open(&MailboxName::inbox(), store.root(), store.root())?;
    KeywordMap::copy_file(store.root(), &target)?;
    {
        let mut st = inbox.lock();
        let lock = DotLock::acquire(&inbox.uidlist_path(), &uidlist::LOCK)?;
        let mut entries: Vec<Entry<'static>> = Vec::new();
        scan_dir(&store.root().join("new"), Dir::New, &mut entries)?;
        scan_dir(&store.root().join("cur"), Dir::Cur, &mut entries)?;
        for e in entries {
            let from = store.root().join(e.dir.name()).join(&*e.fname);
            let to_path = target.join(e.dir.name()).join(&*e.fname);
            match fs::rename(&from, &to_path) {
                Ok(()) => {}
                Err(err) if err.kind() == stdio::ErrorKind::NotFound => {}
                Err(err) => return Err(StoreError::io(&from, err)),
            }
        }
        io::fsync_dir(&target.join("new"))?;
        io::fsync_dir(&target.join("cur"))?;
        inbox.full_sync(&mut st, &lock)?;
    }
    inbox.notify();
    Ok(())
}
