//! Writing a mailbox for a migration (`crate::migrate`): messages under the source's UIDs, the
//! source's UIDVALIDITY and UIDNEXT in `dovecot-uidlist`, UIDLs as the records' `P` fields.
//!
//! The order per batch is the one appends use (`save`): each file is written to `tmp/`, its
//! mtime set to the INTERNALDATE and fsynced; the batch is renamed into `cur/` (migrated mail
//! is not new), the directory fsynced, and then the records are appended to the uidlist and
//! fdatasynced. A crash leaves at most files in `cur/` without records: the partial marker,
//! written before anything else, tells the next run (`resume`) that they are the killed run's
//! and may go.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use mail_types::MailboxName;

use super::dotlock::DotLock;
use super::keywords::KeywordMap;
use super::mailbox::crlf_size;
use super::uidlist::{self, Record, Uidlist};
use super::{CACHE_FILE, INDEX_FILE, MaildirStore, filename, io as mio, list, special_use};
use crate::migrate::{
    BATCH_BYTES, BATCH_MESSAGES, ImportPlan, MailboxImport, MessageMeta, PARTIAL_MARKER,
    check_uidl, wire_to_stored,
};
use crate::{Result, StoreError};

/// A file written to `tmp/`, waiting for its batch.
struct Pending {
    tmp: PathBuf,
    fname: String,
    record: Record,
    bytes: usize,
}

/// The import of one Maildir mailbox.
pub(super) struct MaildirImport {
    name: MailboxName,
    dir: PathBuf,
    keywords: KeywordMap,
    last_uid: u32,
    pending: Vec<Pending>,
    pending_bytes: usize,
}

/// The files directly in `dir` (none when it does not exist).
fn file_names(dir: &Path) -> Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io(dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io(dir, e))?;
        if entry.file_type().is_ok_and(|t| t.is_file())
            && let Some(name) = entry.file_name().to_str()
        {
            out.push(name.to_owned());
        }
    }
    Ok(out)
}

fn remove(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

impl MaildirImport {
    pub(super) fn begin(
        store: &MaildirStore,
        name: &MailboxName,
        plan: &ImportPlan,
    ) -> Result<MaildirImport> {
        let dir = store.mailbox_path(name)?;
        let marker = dir.join(PARTIAL_MARKER);
        let last_uid = if plan.resume {
            Self::clean_up_after_a_kill(name, &dir, plan)?
        } else {
            if !name.is_inbox() && !dir.join("cur").is_dir() {
                // Only this folder: parents the source does not have stay `\Noselect`.
                list::create_maildir(store, &dir)?;
            }
            let holds = file_names(&dir.join("cur"))?.len() + file_names(&dir.join("new"))?.len();
            if holds > 0 {
                return Err(StoreError::AlreadyExists(format!(
                    "{name} already holds {holds} messages"
                )));
            }
            File::create(&marker)
                .and_then(|f| f.sync_all())
                .map_err(|e| mio::error(&marker, e))?;
            mio::fsync_dir(&dir)?;
            // Indexes of what was there before describe another UIDVALIDITY.
            for stale in [INDEX_FILE, CACHE_FILE] {
                remove(&dir.join(stale))?;
            }
            let _lock = DotLock::acquire(&dir.join(uidlist::FILE_NAME), &uidlist::LOCK)?;
            uidlist::write(
                &dir,
                &Uidlist {
                    uid_validity: plan.uid_validity.get(),
                    next_uid: plan.uid_next.get(),
                    guid: Some(uidlist::new_guid()),
                    header_ext: Vec::new(),
                    records: Vec::new(),
                },
            )?;
            if !plan.special_use.is_empty() {
                special_use::write(&dir, &plan.special_use)?;
            }
            0
        };
        if plan.modseq_floor > 0 {
            crate::migrate::keep_modseqs_above(&dir, plan.modseq_floor);
        }
        let mut keywords = KeywordMap::default();
        keywords.refresh(&dir)?;
        Ok(MaildirImport {
            name: name.clone(),
            dir,
            keywords,
            last_uid,
            pending: Vec::new(),
            pending_bytes: 0,
        })
    }

    /// Removes what a killed import wrote after its last commit (files without a uidlist
    /// record, files left in `tmp/`) and returns the highest UID it committed.
    fn clean_up_after_a_kill(name: &MailboxName, dir: &Path, plan: &ImportPlan) -> Result<u32> {
        if !dir.join(PARTIAL_MARKER).exists() {
            return Err(StoreError::NotPossible(format!(
                "{name}: no interrupted migration to resume here"
            )));
        }
        let _lock = DotLock::acquire(&dir.join(uidlist::FILE_NAME), &uidlist::LOCK)?;
        let list = match uidlist::read(dir)? {
            Some((parsed, _)) if parsed.header_ok => parsed.list,
            _ => {
                return Err(StoreError::Internal(format!(
                    "{name}: the interrupted migration left no readable dovecot-uidlist"
                )));
            }
        };
        if list.uid_validity != plan.uid_validity.get() {
            return Err(StoreError::NotPossible(format!(
                "{name}: the interrupted migration was for UIDVALIDITY {}, the source has {}",
                list.uid_validity, plan.uid_validity
            )));
        }
        let recorded: HashSet<&str> = list.records.iter().map(|r| r.base.as_str()).collect();
        for sub in ["cur", "new"] {
            let path = dir.join(sub);
            for fname in file_names(&path)? {
                if !recorded.contains(filename::base(&fname)) {
                    remove(&path.join(&fname))?;
                }
            }
            mio::fsync_dir(&path)?;
        }
        for fname in file_names(&dir.join("tmp"))? {
            remove(&dir.join("tmp").join(fname))?;
        }
        Ok(list.records.last().map_or(0, |r| r.uid))
    }

    /// Writes one message to `tmp/`, durably, and returns its file.
    fn stage(&mut self, meta: &MessageMeta, body: &[u8]) -> Result<Pending> {
        let stored = wire_to_stored(body);
        let unique = filename::generate();
        let base = format!("{unique},S={},W={}", stored.len(), crlf_size(&stored));
        let letters = match self.keywords.letters(&meta.flags) {
            Some(l) => l,
            None => {
                // Dovecot changes dovecot-keywords only under the uidlist lock.
                let _lock = DotLock::acquire(&self.dir.join(uidlist::FILE_NAME), &uidlist::LOCK)?;
                self.keywords.letters_creating(&meta.flags, &self.dir)?
            }
        };
        let fname = filename::with_flags(&base, meta.flags.system, letters);
        let tmp = self.dir.join("tmp").join(&unique);
        let mut file = mio::create_new(&tmp).map_err(|e| mio::error(&tmp, e))?;
        let written = file
            .write_all(&stored)
            .and_then(|()| mio::set_times(&file, mio::from_unix_secs(meta.internal_date)))
            .and_then(|()| file.sync_all());
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(mio::error(&tmp, e));
        }
        let ext = match &meta.uidl {
            Some(uidl) => {
                check_uidl(&self.name, meta.uid, uidl)?;
                format!("P{uidl}")
            }
            None => String::new(),
        };
        Ok(Pending {
            tmp,
            fname,
            record: Record {
                uid: meta.uid.get(),
                ext,
                base,
            },
            bytes: stored.len(),
        })
    }
}

impl MailboxImport for MaildirImport {
    fn add(&mut self, meta: &MessageMeta, body: &[u8]) -> Result<()> {
        if meta.uid.get() <= self.last_uid {
            return Err(StoreError::NotPossible(format!(
                "{} UID {}: not above UID {} already in the mailbox",
                self.name, meta.uid, self.last_uid
            )));
        }
        let pending = self.stage(meta, body)?;
        self.last_uid = meta.uid.get();
        self.pending_bytes += pending.bytes;
        self.pending.push(pending);
        if self.pending.len() >= BATCH_MESSAGES || self.pending_bytes >= BATCH_BYTES {
            self.commit()?;
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let cur = self.dir.join("cur");
        for p in &self.pending {
            let to = cur.join(&p.fname);
            mio::rename_noreplace(&p.tmp, &to).map_err(|e| mio::error(&to, e))?;
        }
        mio::fsync_dir(&cur)?;
        let records: Vec<Record> = self.pending.drain(..).map(|p| p.record).collect();
        self.pending_bytes = 0;
        let _lock = DotLock::acquire(&self.dir.join(uidlist::FILE_NAME), &uidlist::LOCK)?;
        let path = self.dir.join(uidlist::FILE_NAME);
        let stamp = mio::stamp(&path)?.ok_or_else(|| {
            StoreError::Internal(format!("{}: {} vanished", self.name, path.display()))
        })?;
        uidlist::append(&self.dir, &stamp, &records)?;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        self.commit()?;
        remove(&self.dir.join(PARTIAL_MARKER))?;
        mio::fsync_dir(&self.dir)
    }
}

impl Drop for MaildirImport {
    fn drop(&mut self) {
        // Not committed: the files in tmp/ are not part of the mailbox.
        for p in &self.pending {
            let _ = fs::remove_file(&p.tmp);
        }
    }
}
