//! Reading an mbox tree (UW-IMAP's, Dovecot's, or one only mutt and procmail ever wrote) for a
//! migration, writing nothing: UIDVALIDITY and the last UID from `X-IMAPbase` / UW-IMAP's
//! pseudo-message, UIDs from `X-UID`, flags from `Status`/`X-Status`/`X-Keywords`, UIDLs from
//! `X-UIDL`, INTERNALDATE from the `From ` line. Messages without a usable `X-UID` are numbered
//! as the mbox backend numbers them when it first opens the file, in memory only.
//!
//! Each mailbox's file stays open under its read locks from `open` until the reader is
//! dropped, so that a cooperating writer (a delivery agent, a server) cannot rewrite it while
//! it is being copied.

use std::fs;
use std::io;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use mail_types::{Flags, Keyword, MailboxName, Uid, UidValidity};

use super::{
    Listing, MailboxMeta, MessageMeta, PARTIAL_MARKER, SourceMailbox, SourceStore, all_keywords,
    chosen_uid_validity, read_committed,
};
use crate::maildir::mailbox::{crlf_size, to_crlf};
use crate::mbox::lock::{Access, MboxLock};
use crate::mbox::{MboxSettings, MboxStore, parse};
use crate::{MailStore as _, MailboxEntry, Result, StoreError};

/// An mbox tree read without changing it.
#[derive(Debug, Clone)]
pub struct MboxSource {
    store: MboxStore,
}

impl MboxSource {
    /// Folders under `root`, INBOX in the file `inbox`; neither has to exist.
    pub fn new(root: PathBuf, inbox: PathBuf, settings: MboxSettings) -> MboxSource {
        let root = root.canonicalize().unwrap_or(root);
        MboxSource {
            store: MboxStore::at(root, inbox, settings),
        }
    }

    fn walk(&self, dir: &Path, prefix: &str, listing: &mut Listing) -> Result<()> {
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StoreError::io(dir, e)),
        };
        let mut entries: Vec<fs::DirEntry> = entries
            .collect::<io::Result<_>>()
            .map_err(|e| StoreError::io(dir, e))?;
        entries.sort_by_key(fs::DirEntry::file_name);
        for entry in entries {
            let path = entry.path();
            let Some(file_name) = entry.file_name().to_str().map(str::to_owned) else {
                listing
                    .skipped
                    .push(format!("{}: the name is not UTF-8", path.display()));
                continue;
            };
            // The control directory, subscriptions, lock and temporary files.
            if file_name.starts_with('.') {
                continue;
            }
            let meta = fs::symlink_metadata(&path).map_err(|e| StoreError::io(&path, e))?;
            if meta.file_type().is_symlink() {
                listing
                    .skipped
                    .push(format!("{}: a symbolic link, not followed", path.display()));
                continue;
            }
            let name = match MailboxName::new(&format!("{prefix}{file_name}")) {
                // `inbox` in the root is INBOX's file in Dovecot's default layout.
                Ok(n) if n.is_inbox() => continue,
                Ok(n) => n,
                Err(_) => {
                    listing
                        .skipped
                        .push(format!("{}: not a usable mailbox name", path.display()));
                    continue;
                }
            };
            if meta.is_dir() {
                listing.mailboxes.push(MailboxEntry {
                    name: name.clone(),
                    selectable: false,
                });
                self.walk(&path, &format!("{name}/"), listing)?;
            } else if meta.is_file() {
                listing.mailboxes.push(MailboxEntry {
                    name,
                    selectable: true,
                });
            }
        }
        Ok(())
    }
}

impl SourceStore for MboxSource {
    fn list(&self) -> Result<Listing> {
        let mut listing = Listing::default();
        let inbox = self.store.mailbox_path(&MailboxName::inbox())?;
        if inbox.is_file() {
            listing.mailboxes.push(MailboxEntry {
                name: MailboxName::inbox(),
                selectable: true,
            });
        }
        self.walk(self.store.root(), "", &mut listing)?;
        listing.mailboxes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(listing)
    }

    fn subscriptions(&self) -> Result<Vec<MailboxName>> {
        self.store.subscriptions()
    }

    fn special_use(&self, _name: &MailboxName) -> Vec<String> {
        Vec::new()
    }

    fn open(&self, name: &MailboxName) -> Result<Box<dyn SourceMailbox>> {
        let path = self.store.mailbox_path(name)?;
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() && !name.is_inbox() => {
                return Err(StoreError::NotPossible(format!(
                    "{name}: {} is a symbolic link, not followed",
                    path.display()
                )));
            }
            Ok(_) if path.is_file() => {}
            Ok(_) => return Err(StoreError::NotFound(name.to_string())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound(name.to_string()));
            }
            Err(e) => return Err(StoreError::io(&path, e)),
        }
        let control = self.store.control_path(name);
        let committed = read_committed(&control.join(PARTIAL_MARKER))?;
        let modseq_floor = crate::indexed::read_modseq_ceiling(&control.join(super::MODSEQ_FILE));
        let lock = MboxLock::acquire(&path, Access::Read, &self.store.settings().locks)?;
        Ok(Box::new(read_mailbox(name, lock, committed, modseq_floor)?))
    }
}

/// Where one message's bytes are in the file.
#[derive(Debug, Clone, Copy)]
struct Place {
    header: u64,
    body: u64,
    end: u64,
    verbatim: bool,
}

struct MboxSourceMailbox {
    meta: MailboxMeta,
    /// Parallel to `meta.messages`.
    places: Vec<Place>,
    lock: MboxLock,
}

fn read_at(lock: &MboxLock, start: u64, end: u64) -> Result<Vec<u8>> {
    let len = usize::try_from(end.saturating_sub(start))
        .map_err(|_| StoreError::Internal("mbox too large".to_owned()))?;
    let mut buf = vec![0u8; len];
    lock.file()
        .read_exact_at(&mut buf, start)
        .map_err(|e| StoreError::io(lock.path(), e))?;
    Ok(buf)
}

fn read_mailbox(
    name: &MailboxName,
    lock: MboxLock,
    committed: Option<u64>,
    modseq_floor: u64,
) -> Result<MboxSourceMailbox> {
    let len = lock
        .file()
        .metadata()
        .map_err(|e| StoreError::io(lock.path(), e))?
        .len();
    // A partial import's file is trusted only up to what it committed.
    let len = committed.map_or(len, |c| c.min(len));
    let buf = read_at(&lock, 0, len)?;
    let mut parsed = parse::scan(&buf, 0).map_err(|e| {
        StoreError::NotPossible(format!(
            "{name}: {} is not an mbox file as far as it can be trusted ({e}); nothing of it was read",
            lock.path().display()
        ))
    })?;
    let base = parsed.first().and_then(|m| m.meta.base.clone());
    if parsed.first().is_some_and(|m| m.meta.pseudo) {
        parsed.remove(0);
    }
    let known_validity = base.as_ref().and_then(|b| UidValidity::new(b.uid_validity));
    // New UIDs stay above every UID the base says was handed out (as the backend numbers).
    let floor = match (&base, known_validity) {
        (Some(b), Some(_)) => b.last_uid.saturating_add(1),
        _ => 1,
    };
    let mut messages = Vec::with_capacity(parsed.len());
    let mut places = Vec::with_capacity(parsed.len());
    let mut last = 0u32;
    let mut numbered_here = 0;
    for m in &parsed {
        let uid = match m.meta.uid.filter(|&u| u > last) {
            Some(u) => u,
            None => {
                numbered_here += 1;
                last.saturating_add(1).max(floor)
            }
        };
        let uid =
            Uid::new(uid).ok_or_else(|| StoreError::Internal(format!("{name}: UIDs exhausted")))?;
        last = uid.get();
        let bytes = buf
            .get(m.header as usize..m.end as usize)
            .ok_or_else(|| StoreError::Internal(format!("{name}: message outside the file")))?;
        let visible = parse::visible(bytes, (m.body - m.header) as usize, m.verbatim);
        messages.push(MessageMeta {
            uid,
            flags: Flags::new(m.meta.flags, m.meta.keywords.iter().cloned()),
            internal_date: m.date,
            size: crlf_size(&visible),
            uidl: m.meta.uidl.clone(),
        });
        places.push(Place {
            header: m.header,
            body: m.body,
            end: m.end,
            verbatim: m.verbatim,
        });
    }
    let uid_next = last.saturating_add(1).max(floor);
    let uid_next = Uid::new(uid_next)
        .ok_or_else(|| StoreError::Internal(format!("{name}: UIDs exhausted")))?;
    let defined: Vec<Keyword> = base.map(|b| b.keywords).unwrap_or_default();
    Ok(MboxSourceMailbox {
        meta: MailboxMeta {
            name: name.clone(),
            uid_validity: known_validity.unwrap_or_else(chosen_uid_validity),
            uid_next,
            keywords: all_keywords(&defined, &messages),
            messages,
            numbered_here,
            uid_validity_chosen: known_validity.is_none(),
            partial: committed.is_some(),
            modseq_floor,
        },
        places,
        lock,
    })
}

impl SourceMailbox for MboxSourceMailbox {
    fn meta(&self) -> &MailboxMeta {
        &self.meta
    }

    fn read(&self, uid: Uid) -> Result<Vec<u8>> {
        let at = self.meta.position(uid)?;
        let place = *self.places.get(at).ok_or(StoreError::Expunged)?;
        let bytes = read_at(&self.lock, place.header, place.end)?;
        let visible = parse::visible(
            &bytes,
            place.body.saturating_sub(place.header) as usize,
            place.verbatim,
        );
        Ok(to_crlf(&visible))
    }
}
