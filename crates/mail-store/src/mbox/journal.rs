//! Crash safety for changes to an mbox file, kept in place rather than by writing a new file
//! and renaming it.
//!
//! Why in place: delivery agents open the mbox before they lock it (Postfix's `local` does) and
//! mutt, procmail and UW-IMAP all keep the file's inode, so a rename under them would send a
//! delivery into the unlinked old file. Rewriting in place is what Dovecot and UW-IMAP do; this
//! module adds what makes it safe against a crash at any point:
//!
//! - A rewrite (expunge, flag change, new UIDs) first writes the new end of the file, from the
//!   first byte that changes, to the journal file (`<journal>.tmp`, fsynced, renamed to
//!   `<journal>`, directory fsynced): from then on the change is decided. Only then is the mbox
//!   overwritten from that offset and truncated, and fsynced; then the journal is removed. After
//!   a crash, [`recover`] (run under the write lock before anything else reads the file) finds
//!   the journal and writes its tail again. Before the journal exists the mbox is untouched.
//! - An append records the file's size in the journal before writing the message. If the
//!   journal is still there after a crash, the append was never acknowledged (the journal goes
//!   before the client hears OK), so [`recover`] cuts the file back and the client's retry does
//!   not produce a second copy.
//!
//! The dot lock of a crashed writer stays behind with a dead pid; the next Columba process
//! breaks it after two seconds and recovers. Other programs wait for it to go stale meanwhile.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::lock::MboxLock;
use crate::maildir::io as mio;
use crate::{Result, StoreError};

const MAGIC: &str = "columba-mbox-journal 1";

/// Recovers from a crashed append or rewrite, if `journal` says one happened. Returns whether
/// the mbox was changed.
pub fn recover(journal: &Path, lock: &MboxLock) -> Result<bool> {
    let _ = fs::remove_file(tmp_path(journal));
    let mut raw = Vec::new();
    match File::open(journal) {
        Ok(mut f) => f
            .read_to_end(&mut raw)
            .map_err(|e| StoreError::io(journal, e))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(StoreError::io(journal, e)),
    };
    let changed = match parse(&raw) {
        Some(Entry::Append { old_size, len }) => cut_append(lock, old_size, len)?,
        Some(Entry::Rewrite { offset, tail }) => {
            tracing::warn!(file = %lock.path().display(), "finishing a rewrite a crash interrupted");
            write_tail(lock, offset, tail)?;
            true
        }
        None => {
            // The rename makes a journal whole or absent; this one was not written by us.
            tracing::warn!(file = %journal.display(), "ignoring an unreadable mbox journal");
            false
        }
    };
    remove(journal)?;
    Ok(changed)
}

/// Appends `message` at the end of the file, durably; `before_commit` runs after the message
/// is written and fsynced, before the journal goes (an append's in-place header update).
/// Returns the offset the message starts at.
pub fn append(
    journal: &Path,
    lock: &MboxLock,
    message: &[u8],
    before_commit: impl FnOnce(&File) -> Result<()>,
) -> Result<u64> {
    let file = lock.file();
    let old_size = file
        .metadata()
        .map_err(|e| StoreError::io(lock.path(), e))?
        .len();
    write_journal(
        journal,
        format!("{MAGIC} append {old_size} {}\n", message.len()).as_bytes(),
        &[],
    )?;
    let result = (|| {
        file.write_all_at(message, old_size)
            .map_err(|e| mio::error(lock.path(), e))?;
        file.sync_data().map_err(|e| mio::error(lock.path(), e))?;
        before_commit(file)
    })();
    if let Err(e) = result {
        // Nothing was acknowledged: take the partial message back out.
        let _ = file.set_len(old_size);
        let _ = file.sync_data();
        let _ = remove(journal);
        return Err(e);
    }
    remove(journal)?;
    Ok(old_size)
}

/// Replaces the file from `offset` on with `tail`, durably.
pub fn rewrite(journal: &Path, lock: &MboxLock, offset: u64, tail: &[u8]) -> Result<()> {
    write_journal(
        journal,
        format!("{MAGIC} rewrite {offset} {}\n", tail.len()).as_bytes(),
        tail,
    )?;
    write_tail(lock, offset, tail)?;
    remove(journal)
}

enum Entry<'a> {
    Append { old_size: u64, len: u64 },
    Rewrite { offset: u64, tail: &'a [u8] },
}

fn parse(raw: &[u8]) -> Option<Entry<'_>> {
    let nl = memchr::memchr(b'\n', raw)?;
    let line = std::str::from_utf8(&raw[..nl]).ok()?;
    let rest = line.strip_prefix(MAGIC)?.trim_start();
    let mut words = rest.split(' ');
    let kind = words.next()?;
    let a: u64 = words.next()?.parse().ok()?;
    let b: u64 = words.next()?.parse().ok()?;
    if words.next().is_some() {
        return None;
    }
    match kind {
        "append" => Some(Entry::Append {
            old_size: a,
            len: b,
        }),
        "rewrite" => {
            let tail = &raw[nl + 1..];
            (tail.len() as u64 == b).then_some(Entry::Rewrite { offset: a, tail })
        }
        _ => None,
    }
}

fn cut_append(lock: &MboxLock, old_size: u64, len: u64) -> Result<bool> {
    let file = lock.file();
    let size = file
        .metadata()
        .map_err(|e| StoreError::io(lock.path(), e))?
        .len();
    if size <= old_size {
        return Ok(false);
    }
    if size > old_size.saturating_add(len) {
        // Someone wrote after our unfinished message; cutting would take their mail too.
        tracing::error!(
            file = %lock.path().display(),
            "an interrupted append at offset {old_size} is followed by other data; left in place"
        );
        return Ok(false);
    }
    tracing::warn!(file = %lock.path().display(), "removing a message whose append a crash interrupted");
    file.set_len(old_size)
        .map_err(|e| StoreError::io(lock.path(), e))?;
    file.sync_data()
        .map_err(|e| StoreError::io(lock.path(), e))?;
    Ok(true)
}

fn write_tail(lock: &MboxLock, offset: u64, tail: &[u8]) -> Result<()> {
    let file = lock.file();
    file.write_all_at(tail, offset)
        .map_err(|e| mio::error(lock.path(), e))?;
    file.set_len(offset + tail.len() as u64)
        .map_err(|e| mio::error(lock.path(), e))?;
    file.sync_data().map_err(|e| mio::error(lock.path(), e))
}

fn write_journal(journal: &Path, head: &[u8], tail: &[u8]) -> Result<()> {
    let tmp = tmp_path(journal);
    let mut f = mio::create_truncate(&tmp).map_err(|e| mio::error(&tmp, e))?;
    f.write_all(head)
        .and_then(|()| f.write_all(tail))
        .and_then(|()| f.sync_data())
        .map_err(|e| mio::error(&tmp, e))?;
    fs::rename(&tmp, journal).map_err(|e| mio::error(journal, e))?;
    sync_parent(journal)
}

fn remove(journal: &Path) -> Result<()> {
    match fs::remove_file(journal) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::io(journal, e)),
    }
    // The removal is made durable before the caller acknowledges anything: a journal that
    // came back after a power failure would be applied again, and an append's would cut a
    // message the client was told is saved.
    sync_parent(journal)
}

fn sync_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => mio::fsync_dir(dir),
        _ => Ok(()),
    }
}

fn tmp_path(journal: &Path) -> PathBuf {
    let mut s = journal.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}
