//! Writing a mailbox for a migration (`crate::migrate`): each message with its `X-UID`,
//! `Status`/`X-Status`/`X-Keywords` and, when it has a UIDL, `X-UIDL`; the first one carries
//! `X-IMAPbase` with the source's UIDVALIDITY, UIDNEXT - 1 and every keyword. A mailbox without
//! messages whose UIDs were used keeps them in UW-IMAP's pseudo-message.
//!
//! Batches are appended under the write locks, fdatasynced, and only then is their end written
//! to the partial marker in the control directory (written to a temporary file, fsynced,
//! renamed): the next run (`resume`) cuts the file back to that length, so a message torn by
//! a kill never stays.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::FileExt as _;
use std::path::PathBuf;

use mail_types::{MailboxName, Uid};

use super::lock::{Access, MboxLock};
use super::mailbox::{CACHE_FILE, pseudo_message};
use super::write::{self, BaseOut, MetaOut};
use super::{INDEX_FILE, LOG_FILE, MboxStore, create_empty, from_line, parse};
use crate::maildir::io as mio;
use crate::migrate::{
    BATCH_BYTES, BATCH_MESSAGES, ImportPlan, MailboxImport, MessageMeta, PARTIAL_MARKER,
    check_uidl, wire_to_stored,
};
use crate::{Result, StoreError};

pub(super) struct MboxImport {
    name: MailboxName,
    path: PathBuf,
    control: PathBuf,
    store: MboxStore,
    plan: ImportPlan,
    /// The length of the file that is durable and recorded in the marker.
    committed: u64,
    batch: Vec<u8>,
    batch_messages: usize,
    last_uid: u32,
}

impl MboxImport {
    pub(super) fn begin(store: &MboxStore, name: &MailboxName, plan: &ImportPlan) -> Result<Self> {
        if !plan.special_use.is_empty() {
            return Err(StoreError::NotPossible(format!(
                "{name}: mbox keeps no special-use attributes"
            )));
        }
        let path = store.mailbox_path(name)?;
        let control = store.control_path(name);
        let marker = control.join(PARTIAL_MARKER);
        let committed = if plan.resume {
            let Some(length) = crate::migrate::read_committed(&marker)? else {
                return Err(StoreError::NotPossible(format!(
                    "{name}: no interrupted migration to resume here"
                )));
            };
            let lock = MboxLock::acquire(&path, Access::Write, &store.settings().locks)?;
            // What the killed run wrote after its last commit may be torn: it goes.
            lock.file()
                .set_len(length)
                .and_then(|()| lock.file().sync_all())
                .map_err(|e| mio::error(&path, e))?;
            length
        } else {
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
            }
            create_empty(&path)?;
            let lock = MboxLock::acquire(&path, Access::Write, &store.settings().locks)?;
            let len = lock
                .file()
                .metadata()
                .map_err(|e| StoreError::io(&path, e))?
                .len();
            if len > 0 {
                return Err(StoreError::AlreadyExists(format!(
                    "{name}: {} is not empty",
                    path.display()
                )));
            }
            fs::create_dir_all(&control).map_err(|e| StoreError::io(&control, e))?;
            // Indexes of what was there before describe another file.
            for stale in [INDEX_FILE, LOG_FILE, CACHE_FILE] {
                match fs::remove_file(control.join(stale)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(StoreError::io(control.join(stale), e)),
                }
            }
            write_marker(&control, 0)?;
            0
        };
        if plan.modseq_floor > 0 {
            fs::create_dir_all(&control).map_err(|e| StoreError::io(&control, e))?;
            crate::migrate::keep_modseqs_above(&control, plan.modseq_floor);
        }
        Ok(MboxImport {
            name: name.clone(),
            path,
            control,
            store: store.clone(),
            plan: plan.clone(),
            committed,
            batch: Vec::new(),
            batch_messages: 0,
            last_uid: last_committed_uid(store, name, committed)?,
        })
    }

    fn base(&self) -> BaseOut<'_> {
        BaseOut {
            uid_validity: self.plan.uid_validity.get(),
            last_uid: self.plan.uid_next.get().saturating_sub(1),
            keywords: &self.plan.keywords,
        }
    }

    /// Appends `bytes` at the committed end, durably, and records the new end.
    fn append_durably(&mut self, bytes: &[u8]) -> Result<()> {
        let lock = MboxLock::acquire(&self.path, Access::Write, &self.store.settings().locks)?;
        let len = lock
            .file()
            .metadata()
            .map_err(|e| StoreError::io(&self.path, e))?
            .len();
        if len != self.committed {
            return Err(StoreError::InUse(format!(
                "{}: {} changed during the migration ({len} bytes where {} were written); stop deliveries and run it again",
                self.name,
                self.path.display(),
                self.committed
            )));
        }
        lock.file()
            .write_all_at(bytes, self.committed)
            .and_then(|()| lock.file().sync_data())
            .map_err(|e| mio::error(&self.path, e))?;
        self.committed += bytes.len() as u64;
        write_marker(&self.control, self.committed)
    }
}

/// The highest UID in the first `committed` bytes of the mailbox's file (0 when empty).
fn last_committed_uid(store: &MboxStore, name: &MailboxName, committed: u64) -> Result<u32> {
    if committed == 0 {
        return Ok(0);
    }
    let path = store.mailbox_path(name)?;
    let mut bytes = fs::read(&path).map_err(|e| StoreError::io(&path, e))?;
    bytes.truncate(committed as usize);
    let parsed =
        parse::scan(&bytes, 0).map_err(|e| StoreError::Internal(format!("{name}: {e}")))?;
    Ok(parsed.iter().filter_map(|m| m.meta.uid).max().unwrap_or(0))
}

/// Records the committed length, replacing the marker atomically.
fn write_marker(control: &std::path::Path, committed: u64) -> Result<()> {
    let marker = control.join(PARTIAL_MARKER);
    let tmp = control.join(format!("{PARTIAL_MARKER}.tmp"));
    let written = fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(format!("{committed}\n").as_bytes())?;
            f.sync_all()
        })
        .and_then(|()| fs::rename(&tmp, &marker));
    written.map_err(|e| mio::error(&marker, e))?;
    mio::fsync_dir(control)
}

/// Whether the header of `message` (LF line endings) has a field `name`.
fn has_field(message: &[u8], name: &[u8]) -> bool {
    for line in message.split(|&b| b == b'\n') {
        if line.is_empty() {
            return false;
        }
        if parse::field_name(line).is_some_and(|n| n.eq_ignore_ascii_case(name)) {
            return true;
        }
    }
    false
}

/// `message` with `field` (a complete line) added at the end of its header.
fn with_field(message: &[u8], field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + field.len() + 1);
    let header_end = if message.starts_with(b"\n") {
        Some(0)
    } else {
        memchr::memmem::find(message, b"\n\n").map(|i| i + 1)
    };
    match header_end {
        Some(at) => {
            out.extend_from_slice(&message[..at]);
            out.extend_from_slice(field);
            out.extend_from_slice(&message[at..]);
        }
        None => {
            out.extend_from_slice(message);
            if !message.is_empty() && !message.ends_with(b"\n") {
                out.push(b'\n');
            }
            out.extend_from_slice(field);
        }
    }
    out
}

impl MailboxImport for MboxImport {
    fn add(&mut self, meta: &MessageMeta, body: &[u8]) -> Result<()> {
        if meta.uid.get() <= self.last_uid {
            return Err(StoreError::NotPossible(format!(
                "{} UID {}: not above UID {} already in the mailbox",
                self.name, meta.uid, self.last_uid
            )));
        }
        let mut message = wire_to_stored(body);
        if let Some(uidl) = &meta.uidl {
            check_uidl(&self.name, meta.uid, uidl)?;
            // X-UIDL is where UW-IMAP's and qpopper's POP3 kept the UIDL; a message that
            // already carries one keeps it.
            if !has_field(&message, b"X-UIDL") {
                message = with_field(&message, format!("X-UIDL: {uidl}\n").as_bytes());
            }
        }
        let first = self.committed == 0 && self.batch.is_empty();
        let base = self.base();
        let mut out = Vec::with_capacity(message.len() + 256);
        write::new_message(
            &mut out,
            &from_line::format("MAILER-DAEMON", meta.internal_date),
            &message,
            self.store.settings().quoting,
            &MetaOut {
                uid: meta.uid.get(),
                flags: &meta.flags,
                old: true,
                base: first.then_some(base),
            },
        );
        self.batch.extend_from_slice(&out);
        self.batch_messages += 1;
        self.last_uid = meta.uid.get();
        if self.batch_messages >= BATCH_MESSAGES || self.batch.len() >= BATCH_BYTES {
            self.commit()?;
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        self.batch_messages = 0;
        self.append_durably(&batch)
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        self.commit()?;
        if self.committed == 0 && self.plan.uid_next > Uid::MIN {
            // No message to carry X-IMAPbase, but UIDs were handed out: UW-IMAP's way.
            let mut pseudo = Vec::new();
            pseudo_message(&mut pseudo, &self.base());
            self.append_durably(&pseudo)?;
        }
        let marker = self.control.join(PARTIAL_MARKER);
        fs::remove_file(&marker).map_err(|e| StoreError::io(&marker, e))?;
        mio::fsync_dir(&self.control)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x_uidl_goes_at_the_end_of_the_header() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"Subject: a\n\nbody\n", b"Subject: a\nX-UIDL: u\n\nbody\n"),
            (b"\nno header\n", b"X-UIDL: u\n\nno header\n"),
            (
                b"Subject: only a header",
                b"Subject: only a header\nX-UIDL: u\n",
            ),
            (b"", b"X-UIDL: u\n"),
        ];
        for (message, want) in cases {
            assert_eq!(with_field(message, b"X-UIDL: u\n"), *want);
        }
    }

    #[test]
    fn fields_are_found_in_the_header_only() {
        assert!(has_field(b"Subject: a\nx-uidl: 1\n\nbody\n", b"X-UIDL"));
        assert!(!has_field(b"Subject: a\n\nX-UIDL: 1\n", b"X-UIDL"));
        assert!(!has_field(b"Subject: a\n X-UIDL: folded\n\n", b"X-UIDL"));
    }
}
