//! Saving new messages (`maildir-save.c`): stream into `tmp/`, then on commit move the file into
//! `new/` (no flags) or `cur/` (with flags) and record its UID in `dovecot-uidlist`.
//!
//! The order makes a committed message durable and its UID never reused, even after `kill -9`:
//! the file is written, its mtime set to the INTERNALDATE and fsynced; under the uidlist lock it
//! is renamed into place and the directory fsynced; then the new UID's record is appended to the
//! uidlist and fdatasynced (or, when the file must be rewritten, a new uidlist is written to a
//! temporary file, fsynced and renamed over the old one, and the directory fsynced again). Only
//! then does `commit` return the UID. A crash before that leaves at most a file without a UID,
//! which the next sync numbers like any delivery, and perhaps a torn last line in the uidlist,
//! whose UID is never used again.

use std::any::Any;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use mail_index::{NewRecord, Op};
use mail_types::{Flags, Uid};

use super::dotlock::DotLock;
use super::filename;
use super::io as mio;
use super::mailbox::{MaildirMailbox, OwnChange};
use super::state::{self, Dir, Exact, State};
use super::sync::{extras_of, index_error};
use super::uidlist::{self, Record as UidRecord, Uidlist};
use crate::index_log::Logged as _;
use crate::{AppendWriter, CacheField, Mailbox, PendingAppend, Result, StoreError};

/// A file in `tmp/` waiting to be committed.
#[derive(Debug, Clone)]
pub(super) struct Staged {
    pub tmp_name: String,
    /// The final base name (`<unique>,S=<size>,W=<vsize>`).
    pub base: String,
    pub flags: Flags,
    pub internal_date: i64,
    /// RFC822.SIZE (the `W=` value).
    pub size: u64,
}

/// The [`AppendWriter`] of a Maildir mailbox.
pub struct MaildirAppend {
    mailbox: Arc<MaildirMailbox>,
    file: Option<BufWriter<File>>,
    tmp_name: String,
    tmp_path: PathBuf,
    /// A CR at the end of the previous chunk, not yet known to start a CRLF.
    pending_cr: bool,
    last_written: u8,
    /// Bytes in the file (LF line endings).
    size: u64,
    /// Bytes with CRLF line endings (RFC822.SIZE).
    vsize: u64,
    scratch: Vec<u8>,
}

impl MaildirAppend {
    pub(super) fn new(mailbox: Arc<MaildirMailbox>) -> Result<MaildirAppend> {
        let tmp_dir = mailbox.path().join("tmp");
        // tmp/ may have been cleaned by someone; recreate it like Dovecot does.
        mio::create_dir(&tmp_dir)?;
        loop {
            let tmp_name = filename::generate();
            let tmp_path = tmp_dir.join(&tmp_name);
            match mio::create_new(&tmp_path) {
                Ok(f) => {
                    return Ok(MaildirAppend {
                        mailbox,
                        file: Some(BufWriter::with_capacity(64 * 1024, f)),
                        tmp_name,
                        tmp_path,
                        pending_cr: false,
                        last_written: 0,
                        size: 0,
                        vsize: 0,
                        scratch: Vec::new(),
                    });
                }
                // Only if the clock went backwards; a new name fixes it.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(mio::error(&tmp_path, e)),
            }
        }
    }

    fn emit(&mut self, b: u8) {
        self.scratch.push(b);
        self.vsize += if b == b'\n' && self.last_written != b'\r' {
            2
        } else {
            1
        };
        self.last_written = b;
        self.size += 1;
    }

    fn flush_scratch(&mut self) -> Result<()> {
        let Some(file) = self.file.as_mut() else {
            return Err(StoreError::Internal("append already finished".to_owned()));
        };
        file.write_all(&self.scratch)
            .map_err(|e| mio::error(&self.tmp_path, e))?;
        self.scratch.clear();
        Ok(())
    }

    fn finish_file(&mut self, internal_date: i64) -> Result<()> {
        if self.pending_cr {
            self.pending_cr = false;
            self.emit(b'\r');
            self.flush_scratch()?;
        }
        let Some(writer) = self.file.take() else {
            return Err(StoreError::Internal("append already finished".to_owned()));
        };
        let file = writer
            .into_inner()
            .map_err(|e| mio::error(&self.tmp_path, e.into_error()))?;
        mio::set_times(&file, mio::from_unix_secs(internal_date))
            .map_err(|e| StoreError::io(&self.tmp_path, e))?;
        file.sync_all().map_err(|e| mio::error(&self.tmp_path, e))?;
        Ok(())
    }
}

impl AppendWriter for MaildirAppend {
    /// Stores the bytes with LF line endings, as Dovecot does by default: each CRLF becomes LF,
    /// a CR at the end of a chunk waits for the next one to know whether an LF follows.
    fn write(&mut self, chunk: &[u8]) -> Result<()> {
        self.scratch.reserve(chunk.len() + 1);
        for &b in chunk {
            if self.pending_cr {
                self.pending_cr = false;
                if b == b'\n' {
                    self.emit(b'\n');
                    continue;
                }
                self.emit(b'\r');
            }
            if b == b'\r' {
                self.pending_cr = true;
            } else {
                self.emit(b);
            }
        }
        self.flush_scratch()
    }

    fn commit(mut self: Box<Self>, flags: Flags, internal_date: Option<i64>) -> Result<Uid> {
        let staged = self.stage_file(flags, internal_date)?;
        let uids = self.mailbox.commit_files(vec![staged])?;
        // Moved out of tmp/: nothing left to clean up.
        self.tmp_path = PathBuf::new();
        uids.into_iter()
            .next()
            .ok_or_else(|| StoreError::Internal("no UID assigned".to_owned()))
    }

    fn as_any_mut(&mut self) -> Option<&mut dyn Any> {
        Some(self)
    }
}

/// The messages of one APPEND (MULTIAPPEND, RFC 3502 3: all or none), committed by one
/// [`MaildirMailbox::commit_files`]: every file is finished in `tmp/` first, then all are moved
/// in and numbered under one uidlist lock, and a failure at any step removes what was placed.
/// Writers of another mailbox or backend fall back to the one-by-one default.
pub(super) fn commit_batch(
    mailbox: &MaildirMailbox,
    mut batch: Vec<PendingAppend>,
) -> Result<Vec<Uid>> {
    fn ours(writer: &mut Box<dyn AppendWriter>) -> Option<&mut MaildirAppend> {
        writer.as_any_mut()?.downcast_mut::<MaildirAppend>()
    }
    let all_ours = batch.iter_mut().all(|p| {
        ours(&mut p.writer).is_some_and(|w| std::ptr::eq(Arc::as_ptr(&w.mailbox), mailbox))
    });
    if !all_ours {
        return crate::commit_appends_one_by_one(mailbox, batch);
    }
    let mut staged = Vec::with_capacity(batch.len());
    for p in &mut batch {
        let Some(w) = ours(&mut p.writer) else {
            return Err(StoreError::Internal(
                "append writer changed type".to_owned(),
            ));
        };
        // The writer keeps its tmp file until the batch is in, so dropping it cleans up.
        staged.push(w.stage_file(p.flags.clone(), p.internal_date)?);
    }
    let uids = mailbox.commit_files(staged)?;
    for p in &mut batch {
        if let Some(w) = ours(&mut p.writer) {
            // Moved out of tmp/: nothing left to clean up.
            w.tmp_path = PathBuf::new();
        }
    }
    Ok(uids)
}

impl MaildirAppend {
    /// Finishes the file in `tmp/` without committing it (the copy path commits several at
    /// once); the file stays until committed or until `self` is dropped.
    fn stage_file(&mut self, flags: Flags, internal_date: Option<i64>) -> Result<Staged> {
        let date = internal_date.unwrap_or_else(|| mio::unix_secs(SystemTime::now()));
        self.finish_file(date)?;
        Ok(Staged {
            tmp_name: self.tmp_name.clone(),
            base: format!("{},S={},W={}", self.tmp_name, self.size, self.vsize),
            flags,
            internal_date: date,
            size: self.vsize,
        })
    }

    /// Like `commit`, but hands the finished file over for a later `commit_files`: the caller
    /// owns the tmp file from now on.
    pub(super) fn into_staged(
        mut self,
        flags: Flags,
        internal_date: Option<i64>,
    ) -> Result<Staged> {
        let staged = self.stage_file(flags, internal_date)?;
        self.tmp_path = PathBuf::new();
        Ok(staged)
    }
}

impl Drop for MaildirAppend {
    fn drop(&mut self) {
        // Not committed (or the commit failed): leave no trace in tmp/.
        self.file = None;
        if !self.tmp_path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.tmp_path);
        }
    }
}

impl MaildirMailbox {
    /// Makes sure `st.uidlist.exact` describes the uidlist on disk and that the index holds
    /// every UID another process assigned, so that new UIDs come after theirs. The caller holds
    /// the lock.
    fn learn_uidlist(&self, st: &mut State, lock: &DotLock) -> Result<()> {
        let on_disk = mio::stamp(&self.uidlist_path())?;
        let known = st.uidlist.exact.is_some() && on_disk.is_some() && on_disk == st.uidlist.stamp;
        if !known {
            match uidlist::read(&self.path)? {
                Some((parsed, stamp))
                    if parsed.header_ok
                        && parsed.list.uid_validity == st.index.uid_validity().get() =>
                {
                    if parsed.list.guid.is_some() {
                        st.uidlist.guid = parsed.list.guid.clone();
                    }
                    st.uidlist.header_ext = parsed.list.header_ext.clone();
                    st.uidlist.stamp = Some(stamp);
                    st.uidlist.exact = Some(Exact {
                        next_uid: parsed.list.next_uid,
                        extras: extras_of(st, &parsed.list),
                        appendable: !parsed.needs_rewrite,
                    });
                }
                // Missing, damaged or renumbered: the full sync sorts it out and rewrites it.
                _ => {
                    self.full_sync(st, lock)?;
                }
            }
        }
        let uid_next = st.index.header().uid_next.get();
        let behind = st.uidlist.exact.as_ref().is_some_and(|ex| {
            ex.next_uid > uid_next || ex.extras.iter().any(|r| r.uid >= uid_next)
        });
        if behind {
            // Someone else assigned UIDs: take their messages into the index first.
            self.full_sync(st, lock)?;
        }
        Ok(())
    }

    /// Moves staged files from `tmp/` into the mailbox and gives them UIDs (in order), durably.
    /// On failure nothing is committed: files already moved are removed again.
    pub(super) fn commit_files(&self, files: Vec<Staged>) -> Result<Vec<Uid>> {
        self.check_not_deleted()?;
        if files.is_empty() {
            return Ok(Vec::new());
        }
        let uids = {
            let mut st = self.lock();
            self.transaction(&mut st, |st| -> Result<Vec<Uid>> {
                let lock = DotLock::acquire(&self.uidlist_path(), &uidlist::LOCK)?;
                self.learn_uidlist(st, &lock)?;
                let Some(exact) = st.uidlist.exact.clone() else {
                    return Err(StoreError::Internal(format!(
                        "{}: dovecot-uidlist is unusable",
                        self.path.display()
                    )));
                };
                let header = Uidlist {
                    uid_validity: st.index.uid_validity().get(),
                    next_uid: exact.next_uid,
                    guid: st.uidlist.guid.clone(),
                    header_ext: st.uidlist.header_ext.clone(),
                    records: Vec::new(),
                };

                let mut all_keywords = Flags::default();
                for f in &files {
                    for k in f.flags.keywords() {
                        all_keywords.insert(&mail_types::Flag::Keyword(k.clone()));
                    }
                }
                st.keywords.letters_creating(&all_keywords, &self.path)?;

                let own = OwnChange::begin(self, st);
                let mut placed: Vec<(Dir, String, PathBuf)> = Vec::with_capacity(files.len());
                let rollback = |placed: &[(Dir, String, PathBuf)]| {
                    for (_, _, p) in placed {
                        let _ = fs::remove_file(p);
                    }
                };
                for f in &files {
                    let letters = st.keywords.letters(&f.flags).unwrap_or(0);
                    // Files in new/ carry no flags (Dovecot moves flagged mail straight to cur/).
                    let (dir, fname) = if f.flags.system.is_empty() && letters == 0 {
                        (Dir::New, f.base.clone())
                    } else {
                        (
                            Dir::Cur,
                            filename::with_flags(&f.base, f.flags.system, letters),
                        )
                    };
                    let from = self.path.join("tmp").join(&f.tmp_name);
                    let to = self.path.join(dir.name()).join(&fname);
                    if let Err(e) = mio::rename_noreplace(&from, &to) {
                        rollback(&placed);
                        return Err(mio::error(&to, e));
                    }
                    placed.push((dir, fname, to));
                }
                for dir in [Dir::New, Dir::Cur] {
                    if placed.iter().any(|(d, _, _)| *d == dir)
                        && let Err(e) = mio::fsync_dir(&self.path.join(dir.name()))
                    {
                        rollback(&placed);
                        return Err(e);
                    }
                }

                let mut next = header.next_uid.max(st.index.header().uid_next.get()).max(1);
                let mut uids = Vec::with_capacity(files.len());
                let mut records = Vec::with_capacity(files.len());
                for (_, fname, _) in &placed {
                    let Some(uid) = Uid::new(next) else {
                        rollback(&placed);
                        return Err(StoreError::Internal("UIDs exhausted".to_owned()));
                    };
                    records.push(UidRecord {
                        uid: next,
                        ext: String::new(),
                        base: filename::base(fname).to_owned(),
                    });
                    uids.push(uid);
                    next = next.saturating_add(1);
                }
                // New records go at the end of the file when it allows that, as Dovecot adds them.
                let file_records = st.index.len() + exact.extras.len();
                let append_at = st.uidlist.stamp.filter(|_| {
                    exact.appendable
                        && !uidlist::wants_rewrite(file_records, exact.extras.len(), records.len())
                });
                let written = match append_at {
                    Some(stamp) => uidlist::append(&self.path, &stamp, &records).map(|stamp| {
                        st.uidlist.stamp = Some(stamp);
                        st.uidlist.exact = Some(Exact {
                            next_uid: next.max(exact.next_uid),
                            extras: exact.extras,
                            appendable: true,
                        });
                    }),
                    None => self.write_uidlist_from_index(st, &header, &records),
                };
                if let Err(e) = written {
                    rollback(&placed);
                    st.uidlist.exact = None;
                    return Err(e);
                }
                drop(lock);

                // Durable from here on; the index follows.
                for ((f, (dir, fname, _)), uid) in files.iter().zip(&placed).zip(&uids) {
                    let backend = state::encode(*dir, fname, "");
                    let appended = st.index.apply(Op::Append(NewRecord {
                        uid: *uid,
                        flags: &f.flags,
                        internal_date: Some(f.internal_date),
                        size: Some(f.size),
                        recent: true,
                        backend: &backend,
                    }));
                    if let Err(e) = appended {
                        // The message is committed on disk; the next full sync will index it.
                        st.uidlist.exact = None;
                        st.cur_dir = Default::default();
                        return Err(index_error(e));
                    }
                }
                own.finish(self, st);
                Ok(uids)
            })?
        };
        // RFC 8514 3: the save date is the moment of entering this mailbox, also for copies.
        let saved_at = mio::unix_secs(SystemTime::now()).to_be_bytes();
        for &uid in &uids {
            self.cache(uid, CacheField::SaveDate, &saved_at);
        }
        self.notify();
        Ok(uids)
    }
}
