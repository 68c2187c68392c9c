//! Cleaning `tmp/` of files that writers left behind when they died before moving them into
//! `new/` or `cur/` (Dovecot's `maildir_check_tmp` and `unlink_old_files`).
//!
//! A file whose atime and ctime are both more than 36 hours old is deleted: that is the Maildir
//! convention for how long a delivery may take, and no writer of ours keeps a file in `tmp/`
//! without touching it for that long. Directories are left alone.
//!
//! The scan runs when the mailbox is synced, at most once an hour per mailbox in this process.
//! As in Dovecot, `tmp/`'s own atime records when it was last scanned, which every process sees:
//! a `tmp/` scanned within the hour is not scanned again, and one whose last scan came more than
//! 36 hours after its last change held nothing but files that scan deleted, so it is not scanned
//! until something changes in it.

use std::fs::{self, File};
use std::io;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use super::io as mio;

/// Files in `tmp/` untouched for this long are deleted (`MAILDIR_TMP_DELETE_SECS`).
pub const DELETE_AFTER: Duration = Duration::from_secs(36 * 60 * 60);

/// How often `tmp/` is scanned at most.
pub const SCAN_INTERVAL: Duration = Duration::from_secs(60 * 60);

/// When this process last looked at one mailbox's `tmp/`.
#[derive(Debug, Default)]
pub struct TmpCleanup {
    last_check: Mutex<Option<SystemTime>>,
}

impl TmpCleanup {
    /// Cleans `<mailbox>/tmp` if that is due at `now`: the number of files deleted, or `None`
    /// when it was not due. Failures are logged, never returned: a `tmp/` that cannot be
    /// cleaned must not stop the mailbox from working.
    pub fn run_if_due(&self, mailbox: &Path, now: SystemTime) -> Option<usize> {
        {
            let mut last = self.last_check.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|t| within(t, now, SCAN_INTERVAL)) {
                return None;
            }
            *last = Some(now);
        }
        let tmp = mailbox.join("tmp");
        let meta = match fs::metadata(&tmp) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(dir = %tmp.display(), "cannot check tmp/ for stale files: {e}");
                return None;
            }
        };
        if !is_due(&meta, now) {
            return None;
        }
        match clean(&tmp, now) {
            Ok(deleted) => {
                if deleted > 0 {
                    tracing::info!(
                        dir = %tmp.display(),
                        "deleted {deleted} files left in tmp/ for more than 36 hours"
                    );
                }
                Some(deleted)
            }
            Err(e) => {
                tracing::warn!(dir = %tmp.display(), "cannot clean tmp/: {e}");
                None
            }
        }
    }
}

/// Whether `then` is less than `span` before `now` (or, the clock having gone back, less than
/// `span` after it).
fn within(then: SystemTime, now: SystemTime, span: Duration) -> bool {
    match now.duration_since(then) {
        Ok(d) => d < span,
        Err(e) => e.duration() < span,
    }
}

/// Dovecot's test on `tmp/` itself, whose atime says when it was last scanned: due when that was
/// an hour ago or more, unless the last scan came 36 hours after the last change.
pub fn is_due(tmp: &fs::Metadata, now: SystemTime) -> bool {
    let (scanned, ctime) = mio::atime_ctime(tmp);
    let changed = ctime.max(mio::mtime(tmp));
    if scanned > changed + DELETE_AFTER {
        return false;
    }
    !within(scanned, now, SCAN_INTERVAL)
}

/// Deletes the files in `tmp` whose atime and ctime are both more than [`DELETE_AFTER`] before
/// `now`, then records the scan in `tmp`'s atime. Returns how many were deleted.
pub fn clean(tmp: &Path, now: SystemTime) -> io::Result<usize> {
    let Some(cutoff) = now.checked_sub(DELETE_AFTER) else {
        return Ok(0);
    };
    let dir = File::open(tmp)?;
    let mut deleted = 0;
    for entry in fs::read_dir(tmp)? {
        let path = entry?.path();
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                tracing::warn!(file = %path.display(), "cannot stat: {e}");
                continue;
            }
        };
        if meta.is_dir() {
            continue;
        }
        let (atime, ctime) = mio::atime_ctime(&meta);
        if atime >= cutoff || ctime >= cutoff {
            continue;
        }
        match fs::remove_file(&path) {
            Ok(()) => deleted += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(file = %path.display(), "cannot delete a stale file: {e}"),
        }
    }
    // Reading the directory may have set its atime already (unless mounted noatime); setting it
    // changes its ctime too, so only when needed, as Dovecot does.
    let (atime, _) = mio::atime_ctime(&dir.metadata()?);
    if atime < now
        && let Err(e) = mio::set_atime(&dir, now)
    {
        tracing::debug!(dir = %tmp.display(), "cannot record the tmp/ scan: {e}");
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn touch_atime(path: &Path, t: SystemTime) {
        mio::set_atime(&File::open(path).unwrap(), t).unwrap();
    }

    #[test]
    fn only_files_untouched_for_36_hours_go() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("tmp");
        fs::create_dir(&tmp).unwrap();
        for name in ["1.M1P1.died", "2.M1P1.died", ".hidden"] {
            fs::write(tmp.join(name), b"partial").unwrap();
        }
        fs::create_dir(tmp.join("subdir")).unwrap();
        let now = SystemTime::now();
        for name in ["1.M1P1.died", "2.M1P1.died", ".hidden"] {
            touch_atime(&tmp.join(name), now - 40 * HOUR);
        }
        // Read recently: its atime says someone still uses it.
        touch_atime(&tmp.join("2.M1P1.died"), now + 20 * HOUR);

        // 35 hours on, every ctime is too recent.
        assert_eq!(clean(&tmp, now + 35 * HOUR).unwrap(), 0);
        assert_eq!(fs::read_dir(&tmp).unwrap().count(), 4);
        // 37 hours on, the files both old go; the recently read one and the directory stay.
        assert_eq!(clean(&tmp, now + 37 * HOUR).unwrap(), 2);
        let mut left: Vec<String> = fs::read_dir(&tmp)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["2.M1P1.died", "subdir"]);
        // The scan is recorded in tmp/'s atime.
        let (atime, _) = mio::atime_ctime(&fs::metadata(&tmp).unwrap());
        assert!(atime >= now + 36 * HOUR);
    }

    #[test]
    fn due_by_the_atime_of_tmp() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("tmp");
        fs::create_dir(&tmp).unwrap();
        let now = SystemTime::now();
        // (atime of tmp/ relative to now, now relative to real time) -> due?
        let table = [
            (-2 * 60 * 60, 0, true),
            (-30 * 60, 0, false),
            // Scanned 40 hours after its last change (just now): nothing can be left.
            (40 * 60 * 60, 41 * 60 * 60, false),
            // Changed since the last scan.
            (-2 * 60 * 60, 30 * 60 * 60, true),
        ];
        for (atime, later, due) in table {
            let shift = |secs: i64| {
                if secs >= 0 {
                    now + Duration::from_secs(secs as u64)
                } else {
                    now - Duration::from_secs(secs.unsigned_abs())
                }
            };
            touch_atime(&tmp, shift(atime));
            let meta = fs::metadata(&tmp).unwrap();
            assert_eq!(is_due(&meta, shift(later)), due, "{atime} {later}");
        }
    }

    #[test]
    fn at_most_once_an_hour() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("tmp");
        fs::create_dir(&tmp).unwrap();
        let now = SystemTime::now();
        touch_atime(&tmp, now - 2 * HOUR);
        let cleanup = TmpCleanup::default();
        assert_eq!(cleanup.run_if_due(dir.path(), now), Some(0));
        // Within the hour this process does not even look.
        touch_atime(&tmp, now - 2 * HOUR);
        assert_eq!(cleanup.run_if_due(dir.path(), now + HOUR / 2), None);
        // Another process scanned (tmp/'s atime) within the hour: not again.
        touch_atime(&tmp, now + HOUR);
        assert_eq!(cleanup.run_if_due(dir.path(), now + HOUR + HOUR / 2), None);
        // An hour after both: scanned.
        assert_eq!(cleanup.run_if_due(dir.path(), now + 3 * HOUR), Some(0));
        // A mailbox without tmp/ is left as it is.
        fs::remove_dir(&tmp).unwrap();
        assert_eq!(cleanup.run_if_due(dir.path(), now + 5 * HOUR), None);
        assert!(!tmp.exists());
    }
}
