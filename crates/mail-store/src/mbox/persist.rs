//! The mbox mailbox's index saved to `.imap/<name>/columba.index`, so that a restarted server
//! reopens an mbox without scanning it: the index (with each message's place in the file) is
//! loaded together with the stamp of the file it matches, and the usual sync then scans only
//! when the file changed since — from the last known message when it merely grew.
//!
//! The file is a cache: a missing, damaged or foreign one is logged and ignored, and the file
//! is scanned as before, keeping UIDs by `X-UID`.
//!
//! The same mbox state (without the log position) travels with every record of the
//! transaction log `columba.index.log` beside it, so that another process replaying a record
//! knows which state of the mbox file the index then matches and does not scan it again.

use std::time::{Duration, UNIX_EPOCH};

use mail_index::{LogPosition, MailboxIndex};
use mail_types::Keyword;

use super::parse::Base;
use crate::maildir::io::FileStamp;

/// The index file in the mailbox's control directory.
pub const INDEX_FILE: &str = "columba.index";

/// Version of the mbox part of the saved state (2: with the log position; 1, from before the
/// log, is still read, as continuing no log).
const STATE_VERSION: u8 = 3;

/// What the index file holds besides the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedState {
    pub stamp: FileStamp,
    pub pseudo_end: Option<u64>,
    pub base: Option<Base>,
    pub base_digits: Option<u64>,
    /// Where in `columba.index.log` the index continues (generation 0: no log).
    pub log_position: LogPosition,
    /// Where the generation `log_position` replaced ends, for a rotation cut short
    /// (`crate::index_log::LogState::previous`); generation 0 when none.
    pub log_previous: LogPosition,
}

/// The index and the mbox state of a loaded index file; `None` when the state is unreadable.
pub fn decode(loaded: mail_index::LoadedIndex) -> Option<(MailboxIndex, SavedState)> {
    let state = decode_state(&loaded.backend_state)?;
    Some((loaded.index, state))
}

pub fn encode_state(s: &SavedState) -> Vec<u8> {
    let mut out = vec![STATE_VERSION];
    out.extend_from_slice(&s.log_position.to_bytes());
    out.extend_from_slice(&s.log_previous.to_bytes());
    for v in [s.stamp.dev, s.stamp.ino, s.stamp.size] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let since = s.stamp.mtime.duration_since(UNIX_EPOCH).unwrap_or_default();
    out.extend_from_slice(&since.as_secs().to_le_bytes());
    out.extend_from_slice(&since.subsec_nanos().to_le_bytes());
    for v in [s.pseudo_end, s.base_digits] {
        put_option(&mut out, v);
    }
    match &s.base {
        None => out.push(0),
        Some(b) => {
            out.push(1);
            out.extend_from_slice(&b.uid_validity.to_le_bytes());
            out.extend_from_slice(&b.last_uid.to_le_bytes());
            put_option(&mut out, b.last_uid_digits);
            out.extend_from_slice(&(b.keywords.len() as u32).to_le_bytes());
            for k in &b.keywords {
                let name = k.as_str().as_bytes();
                out.extend_from_slice(&(name.len() as u32).to_le_bytes());
                out.extend_from_slice(name);
            }
        }
    }
    out
}

fn put_option(out: &mut Vec<u8>, v: Option<u64>) {
    match v {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

pub fn decode_state(bytes: &[u8]) -> Option<SavedState> {
    let mut r = Reader(bytes);
    let (log_position, log_previous) = match r.u8()? {
        1 => (LogPosition::default(), LogPosition::default()),
        2 => (
            LogPosition::from_bytes(r.take(16)?.try_into().ok()?),
            LogPosition::default(),
        ),
        STATE_VERSION => (
            LogPosition::from_bytes(r.take(16)?.try_into().ok()?),
            LogPosition::from_bytes(r.take(16)?.try_into().ok()?),
        ),
        _ => return None,
    };
    let (dev, ino, size) = (r.u64()?, r.u64()?, r.u64()?);
    let secs = r.u64()?;
    let nanos = r.u32()?;
    if nanos >= 1_000_000_000 {
        return None;
    }
    let mtime = UNIX_EPOCH.checked_add(Duration::new(secs, nanos))?;
    let pseudo_end = r.option()?;
    let base_digits = r.option()?;
    let base = match r.u8()? {
        0 => None,
        1 => {
            let uid_validity = r.u32()?;
            let last_uid = r.u32()?;
            let last_uid_digits = r.option()?;
            let count = r.u32()?;
            let mut keywords = Vec::new();
            for _ in 0..count {
                let len = r.u32()? as usize;
                let name = std::str::from_utf8(r.take(len)?).ok()?;
                keywords.push(Keyword::new(name).ok()?);
            }
            Some(Base {
                uid_validity,
                last_uid,
                keywords,
                last_uid_digits,
            })
        }
        _ => return None,
    };
    if !r.0.is_empty() {
        return None;
    }
    Some(SavedState {
        stamp: FileStamp {
            dev,
            ino,
            size,
            mtime,
        },
        pseudo_end,
        base,
        base_digits,
        log_position,
        log_previous,
    })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn option(&mut self) -> Option<Option<u64>> {
        match self.u8()? {
            0 => Some(None),
            1 => Some(Some(self.u64()?)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_damage_is_refused() {
        let state = SavedState {
            stamp: FileStamp {
                dev: 1,
                ino: 2,
                size: 3,
                mtime: UNIX_EPOCH + Duration::new(1_795_941_720, 123),
            },
            pseudo_end: Some(400),
            base: Some(Base {
                uid_validity: 7,
                last_uid: 9,
                keywords: vec![Keyword::new("work").unwrap()],
                last_uid_digits: Some(24),
            }),
            base_digits: Some(120),
            log_position: LogPosition {
                generation: 5,
                offset: 77,
            },
            log_previous: LogPosition {
                generation: 4,
                offset: 1234,
            },
        };
        let bytes = encode_state(&state);
        assert_eq!(decode_state(&bytes), Some(state.clone()));
        for cut in 0..bytes.len() {
            assert_eq!(decode_state(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode_state(&longer), None);
        let mut other_version = bytes.clone();
        other_version[0] = 4;
        assert_eq!(decode_state(&other_version), None);
        // A file from before the log: the same fields without the positions.
        let mut v1 = vec![1u8];
        v1.extend_from_slice(&bytes[33..]);
        let old = decode_state(&v1).unwrap();
        assert_eq!(old.log_position, LogPosition::default());
        assert_eq!(old.stamp, state.stamp);
        // Version 2: the position without the previous generation's end.
        let mut v2 = vec![2u8];
        v2.extend_from_slice(&bytes[1..17]);
        v2.extend_from_slice(&bytes[33..]);
        let two = decode_state(&v2).unwrap();
        assert_eq!(two.log_position, state.log_position);
        assert_eq!(two.log_previous, LogPosition::default());
    }
}
