//! The mailbox's index saved to `columba.index`, so that a restarted server reopens a mailbox
//! without parsing `dovecot-uidlist` or listing `cur/`: it loads the index with what the last
//! scan saw of the directories and of the uidlist, and the usual sync then scans only what
//! changed since (nothing, for a mailbox nobody touched).
//!
//! The file is a cache. A missing, damaged or foreign one is logged and ignored, and the mailbox
//! is indexed from its files as before; the index layer validates every field (see
//! `mail_index::file`). Saved state is always a consistent pair — index and the stamps it
//! matches — written atomically, so a stale file only means the next open scans.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mail_index::{LogPosition, MailboxIndex};

use super::io::FileStamp;
use super::mailbox::MaildirMailbox;
use super::state::{DirStamp, State, UidlistState};
use crate::index_log::Logged as _;

/// The index file in each mailbox directory, beside Dovecot's `dovecot.index`.
pub const INDEX_FILE: &str = "columba.index";

/// The mod-sequence ceiling beside the index: no mod-sequence above it has left the process.
pub const MODSEQ_FILE: &str = "columba.index.modseq";

/// Version of the Maildir part of the saved state (2: with the log position).
const STATE_VERSION: u8 = 3;

/// What was saved last, to skip rewriting an unchanged index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SavedMark {
    cursor: u64,
    records: usize,
    new_dir: DirStamp,
    cur_dir: DirStamp,
    uidlist: Option<FileStamp>,
}

impl SavedMark {
    pub fn of(st: &State) -> SavedMark {
        SavedMark {
            cursor: st.index.cursor(),
            records: st.index.len(),
            new_dir: st.new_dir,
            cur_dir: st.cur_dir,
            uidlist: st.uidlist.stamp,
        }
    }
}

impl MaildirMailbox {
    fn index_path(&self) -> PathBuf {
        self.path.join(INDEX_FILE)
    }

    /// The state saved by an earlier process, if there is a usable one.
    pub(super) fn restore(&self) -> Option<State> {
        let path = self.index_path();
        let loaded = match MailboxIndex::read_file(&path) {
            Ok(Some(l)) => l,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(file = %path.display(), "index file ignored, rebuilding from the mail files: {e}");
                return None;
            }
        };
        let Some(saved) = decode_state(&loaded.backend_state) else {
            tracing::warn!(file = %path.display(), "index file ignored, rebuilding from the mail files: unreadable Maildir state");
            return None;
        };
        let mut st = State::new();
        st.index = loaded.index;
        st.initialized = true;
        st.new_dir = saved.new_dir;
        st.cur_dir = saved.cur_dir;
        st.uidlist = UidlistState {
            stamp: saved.uidlist,
            guid: saved.guid,
            header_ext: saved.header_ext,
            exact: None,
        };
        st.log.position = saved.log_position;
        st.log.previous = saved.log_previous;
        if let Err(e) = st.keywords.refresh(&self.path) {
            tracing::warn!(mailbox = %self.path.display(), "cannot read dovecot-keywords: {e}");
            return None;
        }
        st.saved = Some(SavedMark::of(&st));
        Some(st)
    }

    /// Applies the stored mod-sequence ceiling to a freshly loaded or rebuilt index: the index
    /// may be older than the last mod-sequences handed out (a crash before it was saved), and
    /// those must never be handed out again.
    pub(super) fn apply_modseq_ceiling(&self, st: &mut State) {
        let ceiling = crate::indexed::read_modseq_ceiling(&self.path.join(MODSEQ_FILE));
        st.index.raise_modseq(ceiling);
        st.modseq_ceiling = ceiling;
    }

    /// Learns the stored ceiling without applying it: for an index whose log was replayed
    /// whole, which already holds every mod-sequence handed out.
    pub(super) fn read_modseq_ceiling(&self, st: &mut State) {
        st.modseq_ceiling = crate::indexed::read_modseq_ceiling(&self.path.join(MODSEQ_FILE));
    }

    /// Called before mod-sequences leave the store (snapshots, changes, STORE results, STATUS):
    /// moves the ceiling on disk above them first, fsynced, so that a crash cannot make them
    /// come round again.
    pub(super) fn reserve_modseqs(&self, st: &mut State) {
        let highest = st.index.cursor();
        crate::indexed::reserve_modseqs(&self.path, MODSEQ_FILE, highest, &mut st.modseq_ceiling);
    }

    /// Saves the state if it changed since it was loaded or last saved, as of the log position
    /// it has applied. Done under the log's lock after reading its tail, so that a rotation by
    /// another process is never overwritten with an older index. Failures are logged: the next
    /// open replays more of the log, or rebuilds.
    pub(super) fn save(&self, st: &mut State) {
        if !st.initialized || self.is_deleted() {
            return;
        }
        self.save_at_log_end(st, |st| st.saved != Some(SavedMark::of(st)));
    }

    /// Writes `columba.index` with the state's log position.
    pub(super) fn write_index_file(&self, st: &State) -> Result<(), String> {
        let backend = encode_state(st, st.log.position, st.log.previous);
        st.index
            .write_file(&self.index_path(), &backend)
            .map_err(|e| format!("{}: {e}", self.index_path().display()))
    }

    /// The Maildir state a log record carries (its log position is not used).
    pub(super) fn encode_backend_state(&self, st: &State) -> Vec<u8> {
        encode_state(st, LogPosition::default(), LogPosition::default())
    }
}

pub(super) struct SavedState {
    pub(super) new_dir: DirStamp,
    pub(super) cur_dir: DirStamp,
    pub(super) uidlist: Option<FileStamp>,
    pub(super) guid: Option<String>,
    pub(super) header_ext: Vec<String>,
    pub(super) log_position: LogPosition,
    /// Where the log generation `log_position` replaced ends, for a rotation cut short
    /// (`crate::index_log::LogState::previous`); generation 0 when none.
    pub(super) log_previous: LogPosition,
}

fn encode_state(st: &State, log: LogPosition, previous: LogPosition) -> Vec<u8> {
    let mut out = vec![STATE_VERSION];
    out.extend_from_slice(&log.to_bytes());
    out.extend_from_slice(&previous.to_bytes());
    for stamp in [&st.new_dir, &st.cur_dir] {
        put_time(&mut out, stamp.mtime);
        put_time(&mut out, stamp.checked_at);
    }
    match &st.uidlist.stamp {
        Some(s) => {
            out.push(1);
            out.extend_from_slice(&s.dev.to_le_bytes());
            out.extend_from_slice(&s.ino.to_le_bytes());
            out.extend_from_slice(&s.size.to_le_bytes());
            put_time(&mut out, Some(s.mtime));
        }
        None => out.push(0),
    }
    put_str(&mut out, st.uidlist.guid.as_deref().unwrap_or(""));
    out.extend_from_slice(&(st.uidlist.header_ext.len() as u32).to_le_bytes());
    for e in &st.uidlist.header_ext {
        put_str(&mut out, e);
    }
    out
}

pub(super) fn decode_state(bytes: &[u8]) -> Option<SavedState> {
    let mut r = Reader(bytes);
    // Version 2 did not name the previous generation.
    let version = r.u8()?;
    if version != STATE_VERSION && version != 2 {
        return None;
    }
    let log_position = LogPosition::from_bytes(r.take(16)?.try_into().ok()?);
    let log_previous = match version {
        2 => LogPosition::default(),
        _ => LogPosition::from_bytes(r.take(16)?.try_into().ok()?),
    };
    let mut dirs = [DirStamp::default(); 2];
    for d in &mut dirs {
        d.mtime = r.time()?;
        d.checked_at = r.time()?;
    }
    let uidlist = match r.u8()? {
        0 => None,
        1 => {
            let dev = r.u64()?;
            let ino = r.u64()?;
            let size = r.u64()?;
            let mtime = r.time()??;
            Some(FileStamp {
                dev,
                ino,
                size,
                mtime,
            })
        }
        _ => return None,
    };
    let guid = r.str()?;
    let n = r.u32()? as usize;
    // Each entry takes at least its 4-byte length: a count beyond that is damage.
    if n > r.0.len() / 4 {
        return None;
    }
    let mut header_ext = Vec::with_capacity(n);
    for _ in 0..n {
        header_ext.push(r.str()?);
    }
    if !r.0.is_empty() {
        return None;
    }
    Some(SavedState {
        new_dir: dirs[0],
        cur_dir: dirs[1],
        uidlist,
        guid: (!guid.is_empty()).then_some(guid),
        header_ext,
        log_position,
        log_previous,
    })
}

fn put_time(out: &mut Vec<u8>, t: Option<SystemTime>) {
    match t.and_then(|t| t.duration_since(UNIX_EPOCH).ok()) {
        Some(d) => {
            out.push(1);
            out.extend_from_slice(&d.as_secs().to_le_bytes());
            out.extend_from_slice(&d.subsec_nanos().to_le_bytes());
        }
        None => out.push(0),
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let (head, tail) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    /// `Some(None)` for a saved "unknown" time; `None` for damage.
    fn time(&mut self) -> Option<Option<SystemTime>> {
        match self.u8()? {
            0 => Some(None),
            1 => {
                let secs = self.u64()?;
                let nanos = self.u32()?;
                if nanos >= 1_000_000_000 {
                    return None;
                }
                Some(UNIX_EPOCH.checked_add(Duration::new(secs, nanos)))
            }
            _ => None,
        }
    }

    fn str(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_damage_is_refused() {
        let mut st = State::new();
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123);
        st.new_dir = DirStamp::scanned(t, t + Duration::from_secs(2));
        st.cur_dir = DirStamp::default();
        st.uidlist.stamp = Some(FileStamp {
            dev: 1,
            ino: 2,
            size: 3,
            mtime: t,
        });
        st.uidlist.guid = Some("0123abcd".to_owned());
        st.uidlist.header_ext = vec!["Xfoo".to_owned()];
        let pos = LogPosition {
            generation: 7,
            offset: 99,
        };
        let previous = LogPosition {
            generation: 6,
            offset: 4321,
        };
        let bytes = encode_state(&st, pos, previous);
        let back = decode_state(&bytes).unwrap();
        assert_eq!(back.log_position, pos);
        assert_eq!(back.log_previous, previous);
        assert_eq!(back.new_dir.mtime, st.new_dir.mtime);
        assert_eq!(back.new_dir.checked_at, st.new_dir.checked_at);
        assert_eq!(back.cur_dir.mtime, None);
        assert_eq!(back.uidlist, st.uidlist.stamp);
        assert_eq!(back.guid.as_deref(), Some("0123abcd"));
        assert_eq!(back.header_ext, ["Xfoo"]);
        for len in 0..bytes.len() {
            assert!(decode_state(&bytes[..len]).is_none(), "cut at {len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode_state(&longer).is_none());
        // Version 2 (before the previous generation was named) still reads.
        let mut v2 = vec![2u8];
        v2.extend_from_slice(&bytes[1..17]);
        v2.extend_from_slice(&bytes[33..]);
        let two = decode_state(&v2).unwrap();
        assert_eq!(two.log_position, pos);
        assert_eq!(two.log_previous, LogPosition::default());
        assert_eq!(two.header_ext, ["Xfoo"]);
    }
}
