//! STORE on a Maildir (RFC 3501 6.4.6). Flags live in the file names (the `:2,` info that
//! Dovecot, Courier and every Maildir MUA read), so each changed message is one `rename(2)`,
//! always into `cur/`, then two index operations (the new name, the new flags).
//!
//! In a directory of a million files the kernel's rename costs some 20–30 µs (three lookups in
//! the directory's hash tree) and is most of a big STORE's time; naming the file and recording
//! it take a few. Renaming on a second thread while this one names and records was tried and
//! measured no faster (STORE 1:* on a million messages, BENCHMARKS.md), so it is one loop.

use std::fs;
use std::io;
use std::path::Path;

use mail_index::Op;
use mail_types::{Flags, Uid};

use super::dotlock::DotLock;
use super::filename;
use super::io as mio;
use super::mailbox::{MaildirMailbox, OwnChange, apply_change};
use super::state::{self, Dir, Location, State};
use super::sync::index_error;
use super::uidlist;
use crate::{FlagChange, MessageState, Result};

/// One message's file to rename, and what to record once it is.
struct Rename {
    uid: Uid,
    dir: Dir,
    from: String,
    to: String,
    ext: String,
    flags: Flags,
}

/// What a STORE did so far.
#[derive(Default)]
struct Done {
    changed: Vec<MessageState>,
    /// Files not found under the name the index has: renamed or removed by another process.
    missing: Vec<Uid>,
}

impl MaildirMailbox {
    /// STORE's work, inside a logged transaction, under the `dovecot-uidlist` lock as Dovecot
    /// renames. Returns the new state of every message whose flags changed.
    pub(super) fn store_flags_locked(
        &self,
        st: &mut State,
        uids: &[Uid],
        change: &FlagChange,
    ) -> Result<Vec<MessageState>> {
        let lock = DotLock::acquire(&self.uidlist_path(), &uidlist::LOCK)?;
        // New keywords get their letters before any file is renamed, so a full table fails
        // the command without changing anything.
        if let FlagChange::Replace(f) | FlagChange::Add(f) = change {
            st.keywords.letters_creating(f, &self.path)?;
        }
        let own = OwnChange::begin(self, st);
        let mut done = Done::default();
        let mut dirs = RenameDirs::open(&self.path);
        let renamed = self.rename_each(st, &mut dirs, uids, change, &mut done);
        own.finish(self, st);
        renamed?;
        if !done.missing.is_empty() {
            // Renamed or removed by another process: find the files again, then retry once;
            // messages that are gone are skipped.
            self.full_sync(st, &lock)?;
            let missing = std::mem::take(&mut done.missing);
            self.rename_each(st, &mut dirs, &missing, change, &mut done)?;
        }
        self.reserve_modseqs(st);
        drop(lock);
        Ok(done.changed)
    }

    /// Names, renames and records one message after the other.
    fn rename_each(
        &self,
        st: &mut State,
        dirs: &mut RenameDirs,
        uids: &[Uid],
        change: &FlagChange,
        done: &mut Done,
    ) -> Result<()> {
        for &uid in uids {
            if let Some(r) = self.plan_rename(st, uid, change)? {
                let renamed = dirs.rename(&self.path, r.dir, &r.from, &r.to);
                self.record_rename(st, r, renamed, done)?;
            }
        }
        Ok(())
    }

    /// The rename a message needs for `change`: `None` when its flags stay as they are or it
    /// is gone from the index.
    fn plan_rename(&self, st: &mut State, uid: Uid, change: &FlagChange) -> Result<Option<Rename>> {
        let Some(rec) = st.index.get(uid) else {
            return Ok(None);
        };
        let old = rec.flags();
        let flags = apply_change(&old, change);
        if flags == old {
            return Ok(None);
        }
        let Some(loc) = Location::decode(rec.backend()) else {
            return Ok(None);
        };
        let (dir, from, ext) = (loc.dir, loc.fname.to_owned(), loc.ext.to_owned());
        let letters = match st.keywords.letters(&flags) {
            Some(l) => l,
            None => st.keywords.letters_creating(&flags, &self.path)?,
        };
        let to = filename::with_flags(&from, flags.system, letters);
        Ok(Some(Rename {
            uid,
            dir,
            from,
            to,
            ext,
            flags,
        }))
    }

    /// Records one rename's outcome in the index: the file's new name and the new flags.
    fn record_rename(
        &self,
        st: &mut State,
        r: Rename,
        renamed: io::Result<()>,
        done: &mut Done,
    ) -> Result<()> {
        match renamed {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                done.missing.push(r.uid);
                return Ok(());
            }
            Err(e) => return Err(mio::error(&self.path.join(r.dir.name()).join(&r.from), e)),
        }
        let backend = state::encode(Dir::Cur, &r.to, &r.ext);
        st.index
            .apply(Op::SetBackend {
                uid: r.uid,
                backend: &backend,
            })
            .map_err(index_error)?;
        let modseq = st
            .index
            .apply(Op::SetFlags {
                uid: r.uid,
                flags: &r.flags,
            })
            .map_err(index_error)?;
        let modseq = modseq.unwrap_or_else(|| st.index.header().highest_modseq);
        done.changed.push(MessageState {
            uid: r.uid,
            flags: r.flags,
            modseq,
        });
        Ok(())
    }
}

/// `new/` and `cur/` opened once for a batch of flag renames: `renameat(2)` relative to them
/// spares the kernel walking the mailbox's whole path twice for each of a million messages.
/// Where a directory cannot be opened, the rename goes by path as before.
struct RenameDirs {
    new: Option<fs::File>,
    cur: Option<fs::File>,
    from: Vec<u8>,
    to: Vec<u8>,
}

impl RenameDirs {
    fn open(mailbox: &Path) -> RenameDirs {
        let dir = |d: Dir| fs::File::open(mailbox.join(d.name())).ok();
        RenameDirs {
            new: dir(Dir::New),
            cur: dir(Dir::Cur),
            from: Vec::new(),
            to: Vec::new(),
        }
    }

    /// Renames `from` in `dir` to `to` in `cur/`.
    fn rename(&mut self, mailbox: &Path, dir: Dir, from: &str, to: &str) -> io::Result<()> {
        use std::os::fd::AsRawFd as _;
        let src = match dir {
            Dir::New => self.new.as_ref(),
            Dir::Cur => self.cur.as_ref(),
        };
        let (Some(src), Some(dst)) = (src, self.cur.as_ref()) else {
            return fs::rename(
                mailbox.join(dir.name()).join(from),
                mailbox.join("cur").join(to),
            );
        };
        // Names from a directory listing hold no NUL; one that did would name another file.
        for (buf, name) in [(&mut self.from, from), (&mut self.to, to)] {
            if name.as_bytes().contains(&0) {
                return Err(io::Error::from(io::ErrorKind::InvalidInput));
            }
            buf.clear();
            buf.extend_from_slice(name.as_bytes());
            buf.push(0);
        }
        // SAFETY: both names are NUL-terminated buffers that live across the call, and both
        // descriptors are open directories owned by `self`.
        let rc = unsafe {
            libc::renameat(
                src.as_raw_fd(),
                self.from.as_ptr().cast(),
                dst.as_raw_fd(),
                self.to.as_ptr().cast(),
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}
