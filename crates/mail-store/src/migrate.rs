//! Moving a user's mail between formats (`columba migrate`) without losing what clients and
//! other programs rely on: UIDVALIDITY, UIDNEXT, each message's UID, flags, keywords,
//! INTERNALDATE and POP3 UIDL, and the message as clients see it.
//!
//! Two halves, so that the source is never written:
//!
//! - A [`SourceStore`] reads a tree as it is on disk, without the mailbox machinery: no index,
//!   cache or `dovecot-uidlist` is written, no `\Recent` is claimed, no `X-UID` or `Status` is
//!   added to an mbox. Messages the source has not numbered yet get the UIDs its server would
//!   give them next, in memory only ([`MailboxMeta::numbered_here`]). Reading an mbox takes its
//!   configured read locks (with the default `fcntl`, nothing appears on disk).
//!   [`MaildirSource`] and [`MboxSource`] read the destination too, to find what an earlier run
//!   left there.
//! - [`MailStore::import`](crate::MailStore::import) writes one mailbox under given UIDs with
//!   the source's UIDVALIDITY and UIDNEXT ([`MailboxImport`]). Messages are fsynced as the
//!   backends' appends are, in batches ([`MailboxImport::commit`]).
//!
//! An import leaves a marker ([`PARTIAL_MARKER`]) beside the mailbox until
//! [`MailboxImport::finish`]; a reader reports such a mailbox as [`MailboxMeta::partial`] and
//! shows only its committed messages. A run killed half-way is resumed by the next one: it opens
//! the import with `resume`, which throws away what the killed run wrote after its last commit
//! (Maildir files without a `dovecot-uidlist` record, the end of an mbox after the committed
//! length the marker records), and goes on with the UIDs still missing.

mod maildir_source;
mod mbox_source;

use std::fs;
use std::io;
use std::path::Path;

use mail_types::{Flags, Keyword, MailboxName, Uid, UidValidity};

pub use maildir_source::MaildirSource;
pub use mbox_source::MboxSource;

use crate::{MailboxEntry, Result, StoreError};

/// The file an unfinished import leaves in the mailbox's directory (Maildir) or control
/// directory (mbox); for mbox it holds the length of the file that is committed.
pub const PARTIAL_MARKER: &str = "columba-migrate.partial";

/// Columba's mod-sequence ceiling, beside each mailbox's index (both formats use the name).
const MODSEQ_FILE: &str = crate::maildir::MODSEQ_FILE;

/// What a migration keeps of one message besides its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    pub uid: Uid,
    pub flags: Flags,
    /// INTERNALDATE, seconds since the epoch.
    pub internal_date: i64,
    /// RFC822.SIZE (the message with CRLF line endings).
    pub size: u64,
    /// The POP3 UIDL an earlier server gave the message (mbox `X-UIDL`, Dovecot's uidlist `P`).
    pub uidl: Option<String>,
}

/// One mailbox as a source holds it.
#[derive(Debug, Clone)]
pub struct MailboxMeta {
    pub name: MailboxName,
    pub uid_validity: UidValidity,
    pub uid_next: Uid,
    /// In UID order.
    pub messages: Vec<MessageMeta>,
    /// Every keyword the mailbox defines or a message carries.
    pub keywords: Vec<Keyword>,
    /// Messages the source had not given a UID yet, numbered by this read the way its server
    /// would number them next (they keep those UIDs in the destination).
    pub numbered_here: usize,
    /// The mailbox has no UIDVALIDITY of its own yet (an mbox nobody served over IMAP, a
    /// Maildir without `dovecot-uidlist`): `uid_validity` was chosen by this read.
    pub uid_validity_chosen: bool,
    /// An import into this mailbox was interrupted; only its committed messages are listed.
    pub partial: bool,
    /// Every mod-sequence Columba handed out for this mailbox is at or below this (its
    /// `columba.index.modseq`; 0 for other servers' mail): the destination's start above it,
    /// so HIGHESTMODSEQ never goes back for a CONDSTORE client.
    pub modseq_floor: u64,
}

impl MailboxMeta {
    /// Where message `uid` is in `messages`; `Expunged` when it is not there.
    pub fn position(&self, uid: Uid) -> Result<usize> {
        self.messages
            .binary_search_by_key(&uid, |m| m.uid)
            .map_err(|_| StoreError::Expunged)
    }

    /// The sum of the messages' RFC822.SIZEs.
    pub fn bytes(&self) -> u64 {
        self.messages.iter().map(|m| m.size).sum()
    }
}

/// The mailboxes of a tree, and what was found there but is not a mailbox that can be read
/// safely (names that do not decode, symbolic links, names that leave the tree).
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// In name order; `\Noselect` parents have `selectable == false`.
    pub mailboxes: Vec<MailboxEntry>,
    /// One human-readable line per entry left out.
    pub skipped: Vec<String>,
}

/// A mail tree read without changing it.
pub trait SourceStore {
    fn list(&self) -> Result<Listing>;
    fn subscriptions(&self) -> Result<Vec<MailboxName>>;
    /// The special-use attributes (`\Sent`, RFC 6154) of a mailbox, where the format keeps them.
    fn special_use(&self, name: &MailboxName) -> Vec<String>;
    /// Reads a mailbox's metadata; `NotFound` when it does not exist.
    fn open(&self, name: &MailboxName) -> Result<Box<dyn SourceMailbox>>;
}

/// One mailbox of a [`SourceStore`].
pub trait SourceMailbox {
    fn meta(&self) -> &MailboxMeta;
    /// The message with CRLF line endings, as FETCH BODY[] shows it.
    fn read(&self, uid: Uid) -> Result<Vec<u8>>;
}

/// What an import is told about the mailbox it writes.
#[derive(Debug, Clone)]
pub struct ImportPlan {
    pub uid_validity: UidValidity,
    pub uid_next: Uid,
    /// Every keyword the mailbox will hold (mbox lists them in `X-IMAPbase`).
    pub keywords: Vec<Keyword>,
    pub special_use: Vec<String>,
    /// Go on with an interrupted import (its marker must be there) instead of starting one in
    /// a mailbox that must be missing or empty.
    pub resume: bool,
    /// See [`MailboxMeta::modseq_floor`].
    pub modseq_floor: u64,
}

/// An import of one mailbox in progress. Dropping it without `finish` leaves the mailbox
/// marked partial, for a later run to resume.
pub trait MailboxImport {
    /// Adds a message under `meta.uid`, which must be above every UID the mailbox holds. `body`
    /// is the message as clients see it (CRLF). Durable after the next [`MailboxImport::commit`].
    fn add(&mut self, meta: &MessageMeta, body: &[u8]) -> Result<()>;
    /// Makes every message added so far durable.
    fn commit(&mut self) -> Result<()>;
    /// Commits, sets UIDNEXT and removes the partial marker.
    fn finish(self: Box<Self>) -> Result<()>;
}

/// How many bytes an import collects before committing them.
pub(crate) const BATCH_BYTES: usize = 8 << 20;
/// How many messages an import collects before committing them.
pub(crate) const BATCH_MESSAGES: usize = 500;

/// The stored form (LF line endings, as both backends keep mail) of a message clients see as
/// `wire`, such that converting it back gives `wire` exactly: every CRLF becomes LF, except a
/// CRLF right after another CR, which the backends would read back as a bare CR and a CRLF.
pub fn wire_to_stored(wire: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(wire.len());
    let mut start = 0;
    for i in memchr::memmem::find_iter(wire, b"\r\n") {
        let after_cr = i > 0 && wire[i - 1] == b'\r';
        if after_cr {
            continue;
        }
        out.extend_from_slice(&wire[start..i]);
        out.push(b'\n');
        start = i + 2;
    }
    out.extend_from_slice(&wire[start..]);
    out
}

/// A UIDL that fits where the backends keep it: 1 to 70 printable characters without spaces
/// (RFC 1939 7), which is also what a `dovecot-uidlist` field and an `X-UIDL` line can hold.
pub(crate) fn check_uidl(name: &MailboxName, uid: Uid, uidl: &str) -> Result<()> {
    let ok =
        !uidl.is_empty() && uidl.len() <= 70 && uidl.bytes().all(|b| (0x21..0x7f).contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StoreError::NotPossible(format!(
            "{name} UID {uid}: POP3 UIDL {uidl:?} cannot be stored (RFC 1939: 1-70 printable characters)"
        )))
    }
}

/// Collects every keyword of `messages` and `defined` without duplicates (compared as IMAP
/// does, without case).
pub(crate) fn all_keywords(defined: &[Keyword], messages: &[MessageMeta]) -> Vec<Keyword> {
    let mut out: Vec<Keyword> = Vec::new();
    let candidates = defined
        .iter()
        .chain(messages.iter().flat_map(|m| m.flags.keywords()));
    for k in candidates {
        if !out.iter().any(|o| o.eq_ignore_case(k)) {
            out.push(k.clone());
        }
    }
    out
}

/// The committed length a partial import recorded, if one is under way.
pub(crate) fn read_committed(marker: &Path) -> Result<Option<u64>> {
    match fs::read_to_string(marker) {
        Ok(text) => text.trim().parse().map(Some).map_err(|_| {
            StoreError::Internal(format!("{}: not a file length: {text:?}", marker.display()))
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::io(marker, e)),
    }
}

/// Makes the mailbox whose index files live in `dir` hand out mod-sequences above `floor`
/// (see [`MailboxMeta::modseq_floor`]).
pub(crate) fn keep_modseqs_above(dir: &Path, floor: u64) {
    let mut ceiling = crate::indexed::read_modseq_ceiling(&dir.join(MODSEQ_FILE));
    crate::indexed::reserve_modseqs(dir, MODSEQ_FILE, floor, &mut ceiling);
}

/// A UIDVALIDITY for a mailbox that has none yet: the time, as Dovecot's counter starts.
pub(crate) fn chosen_uid_validity() -> UidValidity {
    let now = crate::maildir::io::unix_secs(std::time::SystemTime::now());
    UidValidity::new(u32::try_from(now).unwrap_or(1)).unwrap_or(UidValidity::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maildir::mailbox::to_crlf;

    #[test]
    fn stored_form_reads_back_exactly() {
        let cases: &[&[u8]] = &[
            b"",
            b"a\r\nb\r\n",
            b"x\r\r\n",
            b"x\r\r\r\ny\r\n",
            b"no newline at the end",
            b"lone\rcr\r\n\r\n",
            b"\r\n",
        ];
        for wire in cases {
            let stored = wire_to_stored(wire);
            assert_eq!(
                to_crlf(&stored),
                *wire,
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
        assert_eq!(wire_to_stored(b"a\r\nb\r\n"), b"a\nb\n");
    }

    #[test]
    fn uidls_that_cannot_be_stored_are_refused() {
        let name = MailboxName::inbox();
        let uid = Uid::new(1).unwrap();
        assert!(check_uidl(&name, uid, "4a8c3b2e00000001").is_ok());
        for bad in ["", "has space", "tab\there", &"x".repeat(71), "caf\u{e9}"] {
            let err = check_uidl(&name, uid, bad).unwrap_err();
            assert!(err.to_string().contains("INBOX UID 1"), "{err}");
        }
    }
}

/// The readers number what the source has not numbered as the backends do when they first open
/// it, so a migrated mailbox has the UIDs the old server would have shown.
#[cfg(test)]
mod numbering {
    use std::fs;
    use std::path::Path;

    use mail_types::MailboxName;

    use super::{MaildirSource, MboxSource, SourceStore};
    use crate::MailStore;
    use crate::maildir::MaildirStore;
    use crate::mbox::{MboxSettings, MboxStore};

    fn uids_read(source: &dyn SourceStore) -> (u32, Vec<u32>, u32) {
        let mb = source.open(&MailboxName::inbox()).unwrap();
        let m = mb.meta();
        (
            m.uid_validity.get(),
            m.messages.iter().map(|x| x.uid.get()).collect(),
            m.uid_next.get(),
        )
    }

    fn uids_served(store: &dyn MailStore) -> (u32, Vec<u32>, u32) {
        let mb = store.open(&MailboxName::inbox()).unwrap();
        let snap = mb.snapshot(false).unwrap();
        (
            mb.uid_validity().get(),
            snap.messages.iter().map(|m| m.uid.get()).collect(),
            snap.uid_next.get(),
        )
    }

    fn copy(from: &Path, to: &Path) {
        fs::create_dir_all(to).unwrap();
        for e in fs::read_dir(from).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                copy(&e.path(), &to.join(e.file_name()));
            } else {
                fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    }

    #[test]
    fn mbox_uids_out_of_order_missing_and_below_the_base() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        fs::create_dir_all(&src).unwrap();
        let from = |d: u32| format!("From a@example.com Sun Nov 29 08:{d:02}:00 2026\n");
        let text = format!(
            "{}X-IMAPbase: 777 0000000020\nX-UID: 5\nSubject: a\n\na\n\n\
             {}X-UID: 3\nSubject: lower than the one before\n\nb\n\n\
             {}Subject: no X-UID\n\nc\n\n\
             {}X-UID: 30\nSubject: above the base\n\nd\n\n\
             {}X-UID: 30\nSubject: the same again\n\ne\n\n",
            from(1),
            from(2),
            from(3),
            from(4),
            from(5)
        );
        fs::write(src.join("inbox"), &text).unwrap();
        let read = uids_read(&MboxSource::new(
            src.clone(),
            src.join("inbox"),
            MboxSettings::default(),
        ));
        assert_eq!(fs::read_to_string(src.join("inbox")).unwrap(), text);
        assert!(!src.join(".imap").exists(), "the reader wrote");
        let served_dir = dir.path().join("served");
        copy(&src, &served_dir);
        let store = MboxStore::new(
            served_dir.clone(),
            served_dir.join("inbox"),
            MboxSettings::default(),
        )
        .unwrap();
        assert_eq!(read, uids_served(&store));
        assert_eq!(read.0, 777);
    }

    #[test]
    fn maildir_files_without_a_record_and_no_uidlist() {
        let dir = tempfile::tempdir().unwrap();
        for with_uidlist in [true, false] {
            let src = dir.path().join(format!("src-{with_uidlist}"));
            for sub in ["cur", "new", "tmp"] {
                fs::create_dir_all(src.join(sub)).unwrap();
            }
            for (sub, name) in [
                ("cur", "1700000003.M1P1.h,S=6:2,S"),
                ("new", "1700000001.M9P1.h,S=6"),
                ("cur", "1700000002.M5P1.h,S=6:2,"),
                ("new", "1700000002.M10P1.h,S=6"),
            ] {
                fs::write(src.join(sub).join(name), "a: b\n\n").unwrap();
            }
            if with_uidlist {
                fs::write(
                    src.join("dovecot-uidlist"),
                    "3 V4242 N8 G0123456789abcdef0123456789abcdef\n\
                     7 :1700000003.M1P1.h,S=6\n",
                )
                .unwrap();
            }
            let read = uids_read(&MaildirSource::new(src.clone()).unwrap());
            let served_dir = dir.path().join(format!("served-{with_uidlist}"));
            copy(&src, &served_dir);
            let served = uids_served(&MaildirStore::new(served_dir).unwrap());
            assert_eq!(read.1, served.1, "with uidlist: {with_uidlist}");
            assert_eq!(read.2, served.2, "with uidlist: {with_uidlist}");
            if with_uidlist {
                assert_eq!(read.0, 4242);
                assert_eq!(read.1, [7, 8, 9, 10]);
            }
            assert!(!src.join("dovecot-uidlist").exists() || with_uidlist);
        }
    }
}
