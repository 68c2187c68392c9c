//! File-system operations the Maildir code needs beyond `std::fs`: durable writes (fsync of
//! files and directories), setting a file's mtime, stat stamps to notice changes, and creating
//! directories and files with the modes Dovecot uses (0700 / 0600).

use std::ffi::CString;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{Result, StoreError};

pub const DIR_MODE: u32 = 0o700;
pub const FILE_MODE: u32 = 0o600;

/// What identifies one version of a file: a rewrite through rename changes the inode, an append
/// changes the size, a rewrite in place changes the mtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime: SystemTime,
}

impl FileStamp {
    pub fn of(meta: &fs::Metadata) -> FileStamp {
        FileStamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: mtime(meta),
        }
    }
}

/// The mtime with nanoseconds, as `stat` reports it.
pub fn mtime(meta: &fs::Metadata) -> SystemTime {
    let secs = meta.mtime();
    let nanos = u32::try_from(meta.mtime_nsec()).unwrap_or(0);
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nanos)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
            + Duration::from_nanos(u64::from(nanos))
    }
}

/// Whole seconds since the epoch (negative before 1970).
pub fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

pub fn from_unix_secs(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

/// `None` when the file does not exist.
pub fn stamp(path: &Path) -> Result<Option<FileStamp>> {
    match fs::metadata(path) {
        Ok(m) => Ok(Some(FileStamp::of(&m))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

/// Sets a file's mtime (and its atime to now), which is how Maildir stores INTERNALDATE.
pub fn set_times(file: &File, mtime: SystemTime) -> io::Result<()> {
    futimens(file, [timespec(SystemTime::now()), timespec(mtime)])
}

/// Sets a file's (or directory's) atime, leaving its mtime alone.
pub fn set_atime(file: &File, atime: SystemTime) -> io::Result<()> {
    let omit = libc::timespec {
        tv_sec: 0,
        tv_nsec: libc::UTIME_OMIT,
    };
    futimens(file, [timespec(atime), omit])
}

fn timespec(t: SystemTime) -> libc::timespec {
    let nanos = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.subsec_nanos(),
        Err(_) => 0,
    };
    libc::timespec {
        tv_sec: unix_secs(t) as libc::time_t,
        tv_nsec: nanos as _,
    }
}

/// `futimens(2)`: `[atime, mtime]`.
fn futimens(file: &File, times: [libc::timespec; 2]) -> io::Result<()> {
    // SAFETY: the descriptor is open for the lifetime of `file`; `times` holds two timespecs.
    let rc = unsafe { libc::futimens(file.as_raw_fd(), times.as_ptr()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A file's atime and ctime (whole seconds are enough for the tmp/ cleanup).
pub fn atime_ctime(meta: &fs::Metadata) -> (SystemTime, SystemTime) {
    (from_unix_secs(meta.atime()), from_unix_secs(meta.ctime()))
}

/// Makes a directory's entries durable (a rename or create is only safe after this).
pub fn fsync_dir(path: &Path) -> Result<()> {
    let dir = File::open(path).map_err(|e| StoreError::io(path, e))?;
    dir.sync_all().map_err(|e| StoreError::io(path, e))
}

/// Creates a directory with mode 0700; `Ok(false)` when it already exists.
pub fn create_dir(path: &Path) -> Result<bool> {
    match DirBuilder::new().mode(DIR_MODE).create(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

/// Creates a new file (0600) that must not exist yet.
pub fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
}

/// Creates or truncates a file (0600).
pub fn create_truncate(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)
}

/// Reads a file another program left in a mailbox (Courier's files), `None` if it does not
/// exist. Whatever the file is must not hang or exhaust the server: it is opened without
/// blocking (a FIFO would otherwise wait for a writer forever), and anything but a regular file
/// of at most `max` bytes is refused with an `InvalidData` error.
pub fn read_foreign(path: &Path, max: u64) -> io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    let mut content = Vec::new();
    file.take(max.saturating_add(1)).read_to_end(&mut content)?;
    if content.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {max} bytes"),
        ));
    }
    Ok(Some(content))
}

/// Makes a FIFO, for tests that put one where a file is expected.
#[cfg(test)]
pub fn make_fifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).expect("no NUL in a test path");
    // SAFETY: a valid NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// Maps an I/O error to the store's error, turning a full disk or quota into `OverQuota`.
pub fn error(path: &Path, e: io::Error) -> StoreError {
    match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => StoreError::OverQuota,
        _ => StoreError::io(path, e),
    }
}

/// Whether a process with this pid exists (a lock held by a dead process is stale).
pub fn process_exists(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks for existence and permission.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// `link(2)` without following symlinks; used for Dovecot-style copies by hard link.
pub fn hard_link(from: &Path, to: &Path) -> io::Result<()> {
    fs::hard_link(from, to)
}

/// `rename(2)` that refuses to replace an existing destination (Linux `renameat2`), falling
/// back to a check-then-rename where the kernel lacks it.
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    let (Ok(f), Ok(t)) = (
        CString::new(from.as_os_str().as_bytes()),
        CString::new(to.as_os_str().as_bytes()),
    ) else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    // SAFETY: both paths are NUL-terminated C strings that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::ENOSYS) => {
            if fs::symlink_metadata(to).is_ok() {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            fs::rename(from, to)
        }
        _ => Err(err),
    }
}
