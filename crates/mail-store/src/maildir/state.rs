//! What one open Maildir mailbox remembers between syncs: the shared index, what was last seen of
//! `dovecot-uidlist`, `dovecot-keywords` and the `new/` and `cur/` directories.

use std::time::{Duration, SystemTime};

use mail_index::MailboxIndex;
use mail_types::UidValidity;

use super::io::FileStamp;
use super::keywords::KeywordMap;

/// The two Maildir directories messages live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    New,
    Cur,
}

impl Dir {
    pub fn name(self) -> &'static str {
        match self {
            Dir::New => "new",
            Dir::Cur => "cur",
        }
    }

    fn tag(self) -> u8 {
        match self {
            Dir::New => b'n',
            Dir::Cur => b'c',
        }
    }
}

/// Where a message's file is, as the index's opaque backend reference holds it:
/// one byte for the directory, the file name, and the uidlist extension fields after a NUL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location<'a> {
    pub dir: Dir,
    pub fname: &'a str,
    /// `dovecot-uidlist` extension fields of the message (usually empty).
    pub ext: &'a str,
}

impl<'a> Location<'a> {
    pub fn decode(raw: &'a [u8]) -> Option<Location<'a>> {
        let (&tag, rest) = raw.split_first()?;
        let dir = match tag {
            b'n' => Dir::New,
            b'c' => Dir::Cur,
            _ => return None,
        };
        // Called for every record when the uidlist is rewritten: byte searches, not char ones.
        let (fname, ext) = match memchr::memchr(0, rest) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &[][..]),
        };
        Some(Location {
            dir,
            fname: std::str::from_utf8(fname).ok()?,
            ext: std::str::from_utf8(ext).ok()?,
        })
    }

    pub fn base(&self) -> &'a str {
        super::filename::base(self.fname)
    }
}

pub fn encode(dir: Dir, fname: &str, ext: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + fname.len() + ext.len() + 1);
    out.push(dir.tag());
    out.extend_from_slice(fname.as_bytes());
    if !ext.is_empty() {
        out.push(0);
        out.extend_from_slice(ext.as_bytes());
    }
    out
}

/// Changes within this long of a directory's mtime may share that mtime (coarse clocks, NFS), so
/// a scan that close to a change is repeated once later (Dovecot's `MAILDIR_SYNC_SECS`).
pub const SYNC_SLACK: Duration = Duration::from_secs(1);

/// What the last scan of a directory saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirStamp {
    /// The directory's mtime when it was scanned (`None`: never scanned).
    pub mtime: Option<SystemTime>,
    /// When that scan started.
    pub checked_at: Option<SystemTime>,
}

impl DirStamp {
    /// Whether the directory must be scanned: it changed, or the last scan came so soon after a
    /// change that another change in the same clock tick could hide behind the same mtime.
    pub fn needs_scan(&self, mtime: SystemTime, now: SystemTime) -> bool {
        let (Some(seen), Some(checked)) = (self.mtime, self.checked_at) else {
            return true;
        };
        if seen != mtime {
            return true;
        }
        checked < seen + SYNC_SLACK && now > seen + SYNC_SLACK
    }

    pub fn scanned(mtime: SystemTime, started: SystemTime) -> DirStamp {
        DirStamp {
            mtime: Some(mtime),
            checked_at: Some(started),
        }
    }
}

/// What Columba last read or wrote of `dovecot-uidlist`.
#[derive(Debug, Clone, Default)]
pub struct UidlistState {
    pub stamp: Option<FileStamp>,
    pub guid: Option<String>,
    pub header_ext: Vec<String>,
    /// When set, the file with `stamp` holds exactly the index's records plus these, so it can be
    /// rewritten from memory instead of being parsed again before each commit.
    pub exact: Option<Exact>,
}

/// The part of the uidlist file the index does not hold.
#[derive(Debug, Clone, Default)]
pub struct Exact {
    /// At least one more than every UID the file lists (its header's NEXTUID may lag behind
    /// records appended since).
    pub next_uid: u32,
    /// Records of files the index does not know (expunged but not yet dropped, or not yet seen),
    /// ascending by UID.
    pub extras: Vec<super::uidlist::Record>,
    /// The file is undamaged, in the current format and ends with a complete line: new records
    /// may go at its end.
    pub appendable: bool,
}

/// Everything behind the mailbox's mutex.
#[derive(Debug)]
pub struct State {
    pub index: MailboxIndex,
    /// The index has been built from disk at least once.
    pub initialized: bool,
    pub uidlist: UidlistState,
    pub keywords: KeywordMap,
    pub new_dir: DirStamp,
    pub cur_dir: DirStamp,
    /// What `columba.index` holds, when it matches this state (see `persist`).
    pub saved: Option<super::persist::SavedMark>,
    /// Every mod-sequence a client has seen is at or below this value, which is on disk
    /// (`columba.index.modseq`; see `persist`).
    pub modseq_ceiling: u64,
    /// The message list views share, with the cursor it was made at (see `indexed`).
    pub shared: crate::indexed::SharedList,
    /// The transaction log and what this process knows of it (`crate::index_log`).
    pub log: crate::index_log::LogState,
    /// The index file's unreadable references were repaired by a full sync (they are found
    /// when first read; that sync reads all of them, so once is enough).
    pub references_repaired: bool,
}

impl State {
    pub fn new() -> State {
        State {
            index: MailboxIndex::new(UidValidity::MIN),
            initialized: false,
            uidlist: UidlistState::default(),
            keywords: KeywordMap::default(),
            new_dir: DirStamp::default(),
            cur_dir: DirStamp::default(),
            saved: None,
            modseq_ceiling: 0,
            shared: Default::default(),
            log: crate::index_log::LogState::default(),
            references_repaired: false,
        }
    }

    pub fn dir_stamp_mut(&mut self, dir: Dir) -> &mut DirStamp {
        match dir {
            Dir::New => &mut self.new_dir,
            Dir::Cur => &mut self.cur_dir,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_round_trip() {
        let raw = encode(Dir::Cur, "1.M2P3.h,S=4,W=5:2,S", "W5 GX");
        let loc = Location::decode(&raw).unwrap();
        assert_eq!(loc.dir, Dir::Cur);
        assert_eq!(loc.fname, "1.M2P3.h,S=4,W=5:2,S");
        assert_eq!(loc.ext, "W5 GX");
        assert_eq!(loc.base(), "1.M2P3.h,S=4,W=5");
        assert_eq!(encode(loc.dir, loc.fname, loc.ext), raw);
        let plain = encode(Dir::New, "x", "");
        assert_eq!(plain, b"nx");
        assert_eq!(Location::decode(b"zx"), None);
        assert_eq!(Location::decode(b""), None);
    }

    #[test]
    fn scans_repeat_once_after_a_close_change() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert!(DirStamp::default().needs_scan(t0, t0));
        // Scanned well after the change: clean.
        let clean = DirStamp::scanned(t0, t0 + Duration::from_secs(5));
        assert!(!clean.needs_scan(t0, t0 + Duration::from_secs(6)));
        assert!(clean.needs_scan(t0 + Duration::from_millis(1), t0 + Duration::from_secs(6)));
        // Scanned right after the change: once more, but only after the slack has passed.
        let close = DirStamp::scanned(t0, t0 + Duration::from_millis(10));
        assert!(!close.needs_scan(t0, t0 + Duration::from_millis(500)));
        assert!(close.needs_scan(t0, t0 + Duration::from_secs(2)));
    }
}
