//! Special-use attributes a client gave a mailbox with CREATE-SPECIAL-USE (RFC 6154 3), kept
//! in a small file inside the mailbox's own directory: it moves with RENAME and goes with
//! DELETE, so no per-user table has to follow those. One attribute per line (`\Junk`).

use std::fs;
use std::io::{self as stdio, Write};

use mail_types::MailboxName;

use super::io;
use super::{MaildirStore, list};
use crate::{Result, StoreError};

/// The file's name; Dovecot ignores files it does not know in a Maildir folder.
const FILE_NAME: &str = "columba-special-use";

/// Longest file read back: a handful of short attributes, never more.
const MAX_FILE: u64 = 4096;

/// Creates `name` with `uses` recorded; when the attributes cannot be written, the new mailbox
/// is removed again, so the CREATE either did everything or nothing (RFC 6154 3: "MUST NOT
/// create the mailbox").
pub fn create(store: &MaildirStore, name: &MailboxName, uses: &[String]) -> Result<()> {
    list::create(store, name)?;
    let written = store.mailbox_path(name).and_then(|dir| write(&dir, uses));
    if let Err(e) = written {
        // Best effort: the error that matters to the client is the one above.
        let _ = list::delete(store, name);
        return Err(e);
    }
    Ok(())
}

/// Records `uses` in the mailbox directory `dir`, durably.
pub fn write(dir: &std::path::Path, uses: &[String]) -> Result<()> {
    let path = dir.join(FILE_NAME);
    let tmp = dir.join(format!("{FILE_NAME}.tmp"));
    let mut text = uses.join("\n");
    text.push('\n');
    let write = || -> stdio::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, &path)
    };
    write().map_err(|e| io::error(&path, e))?;
    io::fsync_dir(dir)
}

/// The attributes recorded for `name`; none when there is no file (most mailboxes) or it
/// cannot be read.
pub fn read(store: &MaildirStore, name: &MailboxName) -> Vec<String> {
    let Ok(dir) = store.mailbox_path(name) else {
        return Vec::new();
    };
    let path = dir.join(FILE_NAME);
    let text = match fs::metadata(&path) {
        Ok(meta) if meta.len() <= MAX_FILE => fs::read_to_string(&path).unwrap_or_default(),
        Ok(_) => {
            tracing::warn!("{}: too large, ignored", path.display());
            String::new()
        }
        Err(e) if e.kind() == stdio::ErrorKind::NotFound => String::new(),
        Err(e) => {
            tracing::warn!("{}: {}", path.display(), StoreError::io(&path, e));
            String::new()
        }
    };
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with('\\') && l.len() > 1)
        .map(str::to_owned)
        .collect()
}
