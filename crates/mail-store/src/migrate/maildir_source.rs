//! Reading a Maildir++ tree (Dovecot's, Courier's, Columba's) for a migration, writing nothing:
//! UIDs from `dovecot-uidlist` (or Courier's `courierimapuiddb`), flags from the file names,
//! keywords through `dovecot-keywords`, UIDLs from the uidlist's `P` fields, INTERNALDATE from
//! the files' mtimes, as Dovecot takes them.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use mail_types::{MailboxName, Uid, UidValidity};

use super::{
    Listing, MailboxMeta, MessageMeta, PARTIAL_MARKER, SourceMailbox, SourceStore, all_keywords,
    chosen_uid_validity,
};
use crate::maildir::keywords::KeywordMap;
use crate::maildir::mailbox::{crlf_size, to_crlf};
use crate::maildir::{
    MaildirStore, courier_keywords, courier_uidl, filename, io as mio, keywords, names,
    special_use, subscriptions, uidlist,
};
use crate::{MailboxEntry, Result, StoreError};

/// A Maildir++ tree read without changing it.
#[derive(Debug, Clone)]
pub struct MaildirSource {
    store: MaildirStore,
}

impl MaildirSource {
    /// The tree at `root`; `NotFound` when `root` is no Maildir (has no `cur/`).
    pub fn new(root: PathBuf) -> Result<MaildirSource> {
        if !root.join("cur").is_dir() {
            return Err(StoreError::NotFound(format!(
                "{}: not a Maildir (no cur/)",
                root.display()
            )));
        }
        Ok(MaildirSource {
            store: MaildirStore::at(root),
        })
    }
}

impl SourceStore for MaildirSource {
    fn list(&self) -> Result<Listing> {
        let root = self.store.root();
        let mut found: BTreeMap<MailboxName, bool> = BTreeMap::new();
        let mut skipped = Vec::new();
        found.insert(MailboxName::inbox(), true);
        let entries = fs::read_dir(root).map_err(|e| StoreError::io(root, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io(root, e))?;
            let path = entry.path();
            let Some(dir) = entry.file_name().to_str().map(str::to_owned) else {
                skipped.push(format!("{}: the name is not UTF-8", path.display()));
                continue;
            };
            if !dir.starts_with('.') || dir == "." || dir == ".." {
                continue;
            }
            let meta = fs::symlink_metadata(&path).map_err(|e| StoreError::io(&path, e))?;
            if meta.file_type().is_symlink() {
                skipped.push(format!("{}: a symbolic link, not followed", path.display()));
                continue;
            }
            if !meta.is_dir() {
                continue;
            }
            match names::mailbox_of_dir(&dir) {
                Some(name) => {
                    found.insert(name, path.join("cur").is_dir());
                }
                None => skipped.push(format!(
                    "{}: not a mailbox name this tree can hold",
                    path.display()
                )),
            }
        }
        let names: Vec<MailboxName> = found.keys().cloned().collect();
        for name in names {
            for parent in name.ancestors() {
                found.entry(parent).or_insert(false);
            }
        }
        Ok(Listing {
            mailboxes: found
                .into_iter()
                .map(|(name, selectable)| MailboxEntry { name, selectable })
                .collect(),
            skipped,
        })
    }

    fn subscriptions(&self) -> Result<Vec<MailboxName>> {
        subscriptions::list(self.store.root())
    }

    fn special_use(&self, name: &MailboxName) -> Vec<String> {
        special_use::read(&self.store, name)
    }

    fn open(&self, name: &MailboxName) -> Result<Box<dyn SourceMailbox>> {
        let dir = self.store.mailbox_path(name)?;
        let cur = fs::symlink_metadata(dir.join("cur"));
        if !cur.is_ok_and(|m| m.is_dir()) {
            return Err(StoreError::NotFound(name.to_string()));
        }
        Ok(Box::new(read_mailbox(name, &dir)?))
    }
}

/// One mailbox's metadata and where each message's file is.
struct MaildirSourceMailbox {
    meta: MailboxMeta,
    /// Parallel to `meta.messages`.
    files: Vec<PathBuf>,
}

/// A message file found in `cur/` or `new/`.
struct Found {
    path: PathBuf,
    fname: String,
}

fn read_mailbox(name: &MailboxName, dir: &Path) -> Result<MaildirSourceMailbox> {
    let partial = dir.join(PARTIAL_MARKER).exists();
    let file = uidlist::read(dir)?;
    // A folder only Courier served: its UIDs, POP3 UIDLs and keywords, as the backend takes
    // them over (without writing anything here).
    let courier = file.is_none();
    let list = match file {
        Some((parsed, _)) if parsed.header_ok => Some(parsed.list),
        _ => uidlist::read_courier(dir)?
            .filter(|p| p.header_ok)
            .map(|p| p.list),
    };
    let courier_uidls = match courier {
        true => courier_uidl::read(dir)?,
        false => HashMap::new(),
    };
    let courier_keywords = match dir.join(keywords::FILE_NAME).exists() {
        true => None,
        false => courier_keywords::read(dir)?,
    };
    let mut keywords = KeywordMap::default();
    keywords.refresh(dir)?;

    let mut files: HashMap<String, Found> = HashMap::new();
    for sub in ["new", "cur"] {
        let path = dir.join(sub);
        let entries = match fs::read_dir(&path) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StoreError::io(&path, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io(&path, e))?;
            let Some(fname) = entry.file_name().to_str().map(str::to_owned) else {
                tracing::warn!(dir = %path.display(), "skipping a file whose name is not UTF-8");
                continue;
            };
            if fname.starts_with('.') || !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            // The same message in new/ and cur/ (a rename seen half-way): keep one.
            files
                .entry(filename::base(&fname).to_owned())
                .or_insert(Found {
                    path: entry.path(),
                    fname,
                });
        }
    }

    let (uid_validity, mut next_uid, records) = match &list {
        Some(l) => (
            UidValidity::new(l.uid_validity),
            l.next_uid.max(1),
            &l.records[..],
        ),
        None => (None, 1, &[][..]),
    };
    let chosen = uid_validity.is_none();
    let uid_validity = uid_validity.unwrap_or_else(chosen_uid_validity);

    let mut numbered: Vec<(u32, Option<String>, Found)> = Vec::with_capacity(files.len());
    for rec in records {
        if let Some(found) = files.remove(&rec.base) {
            let uidl = uidlist::ext_value(&rec.ext, b'P')
                .filter(|v| !v.is_empty())
                .or_else(|| courier_uidls.get(&rec.base).map(String::as_str))
                .map(str::to_owned);
            numbered.push((rec.uid, uidl, found));
        }
    }
    // What is left has no UID yet: numbered as the server would, in file name order. In a
    // mailbox an import left partial, these are the files it had not recorded: not messages.
    let mut fresh: Vec<Found> = if partial {
        Vec::new()
    } else {
        files.into_values().collect()
    };
    fresh.sort_by(|a, b| filename::sort_cmp(filename::base(&a.fname), filename::base(&b.fname)));
    let numbered_here = fresh.len();
    for found in fresh {
        numbered.push((next_uid, None, found));
        next_uid = next_uid.saturating_add(1);
    }

    let mut messages = Vec::with_capacity(numbered.len());
    let mut paths = Vec::with_capacity(numbered.len());
    for (uid, uidl, found) in numbered {
        let uid =
            Uid::new(uid).ok_or_else(|| StoreError::Internal(format!("{name}: UIDs exhausted")))?;
        let file_meta = fs::metadata(&found.path).map_err(|e| StoreError::io(&found.path, e))?;
        let size = match filename::size_field(&found.fname, b'W') {
            Some(w) => w,
            None => crlf_size(&fs::read(&found.path).map_err(|e| StoreError::io(&found.path, e))?),
        };
        let (system, letters) = filename::flags(&found.fname);
        let mut flags = keywords.flags(system, letters);
        let base = filename::base(&found.fname);
        for k in courier_keywords
            .as_ref()
            .and_then(|c| c.get(base))
            .into_iter()
            .flatten()
        {
            flags.insert(&mail_types::Flag::Keyword(k.clone()));
        }
        messages.push(MessageMeta {
            uid,
            flags,
            internal_date: mio::unix_secs(mio::mtime(&file_meta)),
            size,
            uidl,
        });
        paths.push(found.path);
    }
    let uid_next = messages
        .last()
        .map_or(1, |m| m.uid.get().saturating_add(1))
        .max(next_uid);
    let uid_next = Uid::new(uid_next)
        .ok_or_else(|| StoreError::Internal(format!("{name}: UIDs exhausted")))?;
    Ok(MaildirSourceMailbox {
        meta: MailboxMeta {
            name: name.clone(),
            uid_validity,
            uid_next,
            keywords: all_keywords(&keywords.names(), &messages),
            messages,
            numbered_here,
            uid_validity_chosen: chosen,
            partial,
            modseq_floor: crate::indexed::read_modseq_ceiling(&dir.join(super::MODSEQ_FILE)),
        },
        files: paths,
    })
}

impl SourceMailbox for MaildirSourceMailbox {
    fn meta(&self) -> &MailboxMeta {
        &self.meta
    }

    fn read(&self, uid: Uid) -> Result<Vec<u8>> {
        let at = self.meta.position(uid)?;
        let path = self.files.get(at).ok_or(StoreError::Expunged)?;
        let raw = fs::read(path).map_err(|e| match e.kind() {
            // Renamed or removed since the listing: the source is not quiet.
            io::ErrorKind::NotFound => StoreError::Internal(format!(
                "{} UID {uid}: {} vanished while migrating (is a server still using the source?)",
                self.meta.name,
                path.display()
            )),
            _ => StoreError::io(path, e),
        })?;
        Ok(to_crlf(&raw))
    }
}
