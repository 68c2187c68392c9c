//! New UIDVALIDITY values the way Dovecot picks them (`mailbox-uidvalidity.c`), sharing its
//! counter so that Columba and Dovecot never hand out the same value for one user.
//!
//! The root directory holds `dovecot-uidvalidity` (the last value, 8 hex digits) and an empty
//! marker file `dovecot-uidvalidity.<hex>`. Taking a value renames the marker from the current
//! value to the next; a process that loses the race gets `ENOENT` and tries the following value.
//! The first value is the current time, so a mailbox deleted and created again (even after the
//! counter files were lost) gets a different UIDVALIDITY (RFC 3501 2.3.1.1).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use mail_types::UidValidity;

const FILE_NAME: &str = "dovecot-uidvalidity";
const RETRY_COUNT: usize = 10;

/// The next UIDVALIDITY for a mailbox of the user whose Maildir root is `root`.
pub fn next(root: &Path) -> UidValidity {
    let value = next_raw(root);
    UidValidity::new(value).unwrap_or(UidValidity::MIN)
}

fn next_raw(root: &Path) -> u32 {
    let path = root.join(FILE_NAME);
    let mut file = match OpenOptions::new().read(true).write(true).open(&path) {
        Ok(f) => f,
        Err(e) => {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(file = %path.display(), "cannot open: {e}");
            }
            return rescan(root);
        }
    };
    let mut buf = [0u8; 8];
    let n = read_up_to(&mut file, &mut buf);
    let current = std::str::from_utf8(&buf[..n])
        .ok()
        .and_then(|s| u32::from_str_radix(s, 16).ok());
    let Some(current) = current.filter(|_| n > 0) else {
        return rescan(root);
    };
    match bump(root, current, false) {
        Some(value) => {
            write_value(&mut file, value, &path);
            value
        }
        None => rescan(root),
    }
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    n
}

/// Renames the marker for `value` to the following value; returns the value taken.
fn bump(root: &Path, mut value: u32, log_missing: bool) -> Option<u32> {
    for _ in 0..RETRY_COUNT {
        let from = root.join(format!("{FILE_NAME}.{value:08x}"));
        value = value.wrapping_add(1).max(1);
        let to = root.join(format!("{FILE_NAME}.{value:08x}"));
        match fs::rename(&from, &to) {
            Ok(()) => return Some(value),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                tracing::warn!(file = %from.display(), "cannot rename: {e}");
                return None;
            }
        }
    }
    if log_missing {
        tracing::warn!(dir = %root.display(), "no uidvalidity marker file found");
    }
    None
}

/// The slow path: find the marker files, or start the counter at the current time.
fn rescan(root: &Path) -> u32 {
    let prefix = format!("{FILE_NAME}.");
    let mut min = u32::MAX;
    let mut max = 0u32;
    match fs::read_dir(root) {
        Ok(entries) => {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(hex) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
                    continue;
                };
                if let Ok(v) = u32::from_str_radix(hex, 16) {
                    min = min.min(v);
                    max = max.max(v);
                }
            }
        }
        Err(e) => {
            tracing::warn!(dir = %root.display(), "cannot list: {e}");
            return fallback();
        }
    }
    let path = root.join(FILE_NAME);
    if max == 0 {
        for _ in 0..RETRY_COUNT {
            let value = fallback();
            let marker = root.join(format!("{FILE_NAME}.{value:08x}"));
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o444)
                .open(&marker)
            {
                Ok(_) => {
                    write_file(&path, value);
                    return value;
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    tracing::warn!(file = %marker.display(), "cannot create: {e}");
                    return value;
                }
            }
        }
        return fallback();
    }
    if min != max {
        // Duplicate markers (an earlier race): the highest one counts.
        let _ = fs::remove_file(root.join(format!("{FILE_NAME}.{min:08x}")));
    }
    match bump(root, max, true) {
        Some(value) => {
            write_file(&path, value);
            value
        }
        None => fallback(),
    }
}

/// The current time, or one more than the last value this process made up.
fn fallback() -> u32 {
    static LAST: Mutex<u32> = Mutex::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(1);
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    *last = if *last < now {
        now
    } else {
        last.wrapping_add(1)
    }
    .max(1);
    *last
}

fn write_file(path: &Path, value: u32) {
    match OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
    {
        Ok(mut f) => write_value(&mut f, value, path),
        Err(e) => tracing::warn!(file = %path.display(), "cannot write: {e}"),
    }
}

fn write_value(file: &mut File, value: u32, path: &Path) {
    let result = file
        .seek(SeekFrom::Start(0))
        .and_then(|_| file.write_all(format!("{value:08x}").as_bytes()));
    if let Err(e) = result {
        tracing::warn!(file = %path.display(), "cannot write: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_grow_and_markers_move() {
        let dir = tempfile::tempdir().unwrap();
        let a = next(dir.path()).get();
        let b = next(dir.path()).get();
        let c = next(dir.path()).get();
        assert_eq!((b, c), (a + 1, a + 2));
        assert_eq!(
            fs::read_to_string(dir.path().join(FILE_NAME)).unwrap(),
            format!("{c:08x}")
        );
        assert!(dir.path().join(format!("{FILE_NAME}.{c:08x}")).exists());
        assert!(!dir.path().join(format!("{FILE_NAME}.{b:08x}")).exists());
        // Starts at the current time (other tests in this process may have moved the fallback
        // counter a few values ahead).
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as u32;
        assert!(a + 60 > now && a < now + 60);
    }

    #[test]
    fn continues_from_the_marker_when_the_main_file_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let a = next(dir.path()).get();
        fs::remove_file(dir.path().join(FILE_NAME)).unwrap();
        assert_eq!(next(dir.path()).get(), a + 1);
        fs::write(dir.path().join(FILE_NAME), b"garbage!").unwrap();
        assert_eq!(next(dir.path()).get(), a + 2);
    }

    #[test]
    fn continues_a_dovecot_counter() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE_NAME), b"6b0b8d67").unwrap();
        fs::write(dir.path().join(format!("{FILE_NAME}.6b0b8d67")), b"").unwrap();
        assert_eq!(next(dir.path()).get(), 0x6b0b8d68);
    }
}
