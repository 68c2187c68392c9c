//! COPY (RFC 3501 6.4.7). Between two Maildir mailboxes a message is hard-linked into the
//! destination's `tmp/` and committed like a new message (Dovecot's
//! `maildir_copy_with_hardlinks`): no bytes are copied and the shared inode keeps the mtime, so
//! INTERNALDATE is preserved. Where a link is impossible (another file system, another backend)
//! the message is read and appended.

use std::fs;
use std::io;
use std::path::PathBuf;

use mail_types::{Flags, Uid};

use super::filename;
use super::io as mio;
use super::mailbox::MaildirMailbox;
use super::save::{MaildirAppend, Staged};
use super::state::Location;
use crate::{AppendWriter, Mailbox, Result, StoreError, StoreErrorKind};

pub(super) fn copy(
    src: &MaildirMailbox,
    uids: &[Uid],
    dest: &dyn Mailbox,
) -> Result<Vec<(Uid, Uid)>> {
    let mut uids = uids.to_vec();
    uids.sort_unstable();
    uids.dedup();
    match dest.as_any().downcast_ref::<MaildirMailbox>() {
        Some(maildir) => copy_to_maildir(src, &uids, maildir),
        None => copy_by_append(src, &uids, dest),
    }
}

/// What the copy needs to know of a source message, read under the source's lock.
struct Source {
    uid: Uid,
    path: PathBuf,
    fname: String,
    flags: Flags,
}

fn lookup(src: &MaildirMailbox, uid: Uid) -> Option<Source> {
    let st = src.lock();
    let rec = st.index.get(uid)?;
    let loc = Location::decode(rec.backend())?;
    Some(Source {
        uid,
        path: src.file_path(&loc),
        fname: loc.fname.to_owned(),
        flags: rec.flags(),
    })
}

fn copy_to_maildir(
    src: &MaildirMailbox,
    uids: &[Uid],
    dest: &MaildirMailbox,
) -> Result<Vec<(Uid, Uid)>> {
    let dest_arc = dest
        .me
        .upgrade()
        .ok_or_else(|| StoreError::Internal("mailbox is closing".to_owned()))?;
    let tmp_dir = dest.path().join("tmp");
    mio::create_dir(&tmp_dir)?;
    let mut staged: Vec<(Uid, Staged)> = Vec::with_capacity(uids.len());
    let cleanup = |staged: &[(Uid, Staged)]| {
        for (_, s) in staged {
            let _ = fs::remove_file(tmp_dir.join(&s.tmp_name));
        }
    };
    for &uid in uids {
        let result = stage_one(src, uid, dest, &dest_arc);
        match result {
            Ok(Some(s)) => staged.push((uid, s)),
            Ok(None) => {}
            Err(e) => {
                cleanup(&staged);
                return Err(e);
            }
        }
    }
    let files: Vec<Staged> = staged.iter().map(|(_, s)| s.clone()).collect();
    match dest.commit_files(files) {
        Ok(new_uids) => Ok(staged.iter().map(|(u, _)| *u).zip(new_uids).collect()),
        Err(e) => {
            cleanup(&staged);
            Err(e)
        }
    }
}

/// Puts one source message into the destination's `tmp/`: by hard link when possible, else by
/// reading it. `None` when the message no longer exists.
fn stage_one(
    src: &MaildirMailbox,
    uid: Uid,
    dest: &MaildirMailbox,
    dest_arc: &std::sync::Arc<MaildirMailbox>,
) -> Result<Option<Staged>> {
    for attempt in 0..2 {
        let Some(source) = lookup(src, uid) else {
            return Ok(None);
        };
        let info = match src.message_info(uid) {
            Ok(i) => i,
            Err(e) if e.kind() == StoreErrorKind::Expunged => return Ok(None),
            Err(e) => return Err(e),
        };
        let unique = filename::generate();
        let stored = match filename::size_field(&source.fname, b'S') {
            Some(s) => Some(s),
            None => fs::metadata(&source.path).ok().map(|m| m.len()),
        };
        let tmp_path = dest.path().join("tmp").join(&unique);
        match mio::hard_link(&source.path, &tmp_path) {
            Ok(()) => {
                let base = match stored {
                    Some(s) => format!("{unique},S={s},W={}", info.size),
                    None => format!("{unique},W={}", info.size),
                };
                return Ok(Some(Staged {
                    tmp_name: unique,
                    base,
                    flags: source.flags,
                    internal_date: info.internal_date,
                    size: info.size,
                }));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && attempt == 0 => {
                // Renamed under us (flags changed elsewhere): look it up again.
                src.refresh()?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                tracing::debug!(file = %source.path.display(), "no hard link ({e}); copying bytes");
                let bytes = match src.read_message(uid) {
                    Ok(b) => b,
                    Err(e) if e.kind() == StoreErrorKind::Expunged => return Ok(None),
                    Err(e) => return Err(e),
                };
                let mut w = MaildirAppend::new(dest_arc.clone())?;
                w.write(&bytes)?;
                return w
                    .into_staged(source.flags, Some(info.internal_date))
                    .map(Some);
            }
        }
    }
    Ok(None)
}

/// Copies into a mailbox of another backend through its `AppendWriter`.
fn copy_by_append(
    src: &MaildirMailbox,
    uids: &[Uid],
    dest: &dyn Mailbox,
) -> Result<Vec<(Uid, Uid)>> {
    let mut out = Vec::with_capacity(uids.len());
    for &uid in uids {
        let Some(source) = lookup(src, uid) else {
            continue;
        };
        let (bytes, info) = match (src.read_message(uid), src.message_info(uid)) {
            (Ok(b), Ok(i)) => (b, i),
            (Err(e), _) | (_, Err(e)) if e.kind() == StoreErrorKind::Expunged => continue,
            (Err(e), _) | (_, Err(e)) => return Err(e),
        };
        let mut w = dest.begin_append()?;
        w.write(&bytes)?;
        let new_uid = w.commit(source.flags, Some(info.internal_date))?;
        out.push((source.uid, new_uid));
    }
    Ok(out)
}
