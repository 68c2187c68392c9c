//! Locking an mbox file so that Columba, Dovecot, UW-IMAP, mutt, procmail and Postfix never
//! write it at the same time: a dot lock (`file.lock`, Dovecot's format and stale-lock rules,
//! shared with the Maildir code), `fcntl` record locks and `flock`, taken in a configurable
//! order like Dovecot's `mbox_read_locks` / `mbox_write_locks`.
//!
//! The `fcntl` lock is an open-file-description lock (`F_OFD_SETLK`): other processes see it as
//! an ordinary POSIX record lock on the whole file, but unlike one it is not dropped when this
//! process closes some other descriptor of the file, and it is not shared by every thread of
//! the process. Inside the process the mailbox's own mutex orders its users anyway.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::maildir::dotlock::{DotLock, LockSettings as DotLockSettings};
use crate::{Result, StoreError};

/// One kind of lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMethod {
    Dotlock,
    Fcntl,
    Flock,
}

impl LockMethod {
    /// Dovecot's names: `dotlock`, `fcntl`, `flock`.
    pub fn parse(name: &str) -> Option<LockMethod> {
        match name {
            "dotlock" => Some(LockMethod::Dotlock),
            "fcntl" => Some(LockMethod::Fcntl),
            "flock" => Some(LockMethod::Flock),
            _ => None,
        }
    }
}

/// Which locks, in which order, and how long to wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockConfig {
    /// For reading (Dovecot's default: `fcntl`).
    pub read: Vec<LockMethod>,
    /// For writing (Dovecot's default: `dotlock fcntl`).
    pub write: Vec<LockMethod>,
    /// How long to wait for a lock before giving up with `InUse`.
    pub timeout: Duration,
    /// A dot lock nobody touched for this long is stale (Dovecot's
    /// `mbox_dotlock_change_timeout`).
    pub dotlock_stale: Duration,
}

impl Default for LockConfig {
    fn default() -> Self {
        LockConfig {
            read: vec![LockMethod::Fcntl],
            write: vec![LockMethod::Dotlock, LockMethod::Fcntl],
            timeout: Duration::from_secs(30),
            dotlock_stale: Duration::from_secs(120),
        }
    }
}

/// Whether the holder may change the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// The mbox file opened and locked; every read and write of a locked operation goes through
/// [`MboxLock::file`]. Dropping it releases the locks in the reverse order.
#[derive(Debug)]
pub struct MboxLock {
    file: File,
    path: PathBuf,
    held: Vec<Held>,
}

#[derive(Debug)]
enum Held {
    Dot(DotLock),
    Fcntl,
    Flock,
}

impl MboxLock {
    /// Opens `path` and takes the configured locks. `NotFound` when the file does not exist.
    pub fn acquire(path: &Path, access: Access, config: &LockConfig) -> Result<MboxLock> {
        let deadline = Instant::now() + config.timeout;
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(access == Access::Write)
                .open(path)
                .map_err(|e| match e.kind() {
                    io::ErrorKind::NotFound => StoreError::NotFound(path.display().to_string()),
                    _ => StoreError::io(path, e),
                })?;
            let mut lock = MboxLock {
                file,
                path: path.to_owned(),
                held: Vec::new(),
            };
            let methods = match access {
                Access::Read => &config.read,
                Access::Write => &config.write,
            };
            for &method in methods {
                lock.take(method, access, config, deadline)?;
            }
            // Someone may have replaced the file (rename) while we waited: lock the new one.
            if lock.still_current()? {
                return Ok(lock);
            }
            if Instant::now() >= deadline {
                return Err(StoreError::InUse(format!(
                    "{} keeps being replaced",
                    path.display()
                )));
            }
        }
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn still_current(&self) -> Result<bool> {
        let ours = self
            .file
            .metadata()
            .map_err(|e| StoreError::io(&self.path, e))?;
        match std::fs::metadata(&self.path) {
            Ok(now) => Ok(now.ino() == ours.ino() && now.dev() == ours.dev()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::NotFound(self.path.display().to_string()))
            }
            Err(e) => Err(StoreError::io(&self.path, e)),
        }
    }

    fn take(
        &mut self,
        method: LockMethod,
        access: Access,
        config: &LockConfig,
        deadline: Instant,
    ) -> Result<()> {
        match method {
            LockMethod::Dotlock => {
                let settings = DotLockSettings {
                    stale_timeout: config.dotlock_stale,
                    timeout: deadline.saturating_duration_since(Instant::now()),
                };
                self.held
                    .push(Held::Dot(DotLock::acquire(&self.path, &settings)?));
            }
            LockMethod::Fcntl => {
                let kind = match access {
                    Access::Read => libc::F_RDLCK,
                    Access::Write => libc::F_WRLCK,
                };
                retry(&self.path, deadline, || {
                    ofd_lock(&self.file, kind as libc::c_short)
                })?;
                self.held.push(Held::Fcntl);
            }
            LockMethod::Flock => {
                let op = match access {
                    Access::Read => libc::LOCK_SH,
                    Access::Write => libc::LOCK_EX,
                };
                retry(&self.path, deadline, || {
                    flock(&self.file, op | libc::LOCK_NB)
                })?;
                self.held.push(Held::Flock);
            }
        }
        Ok(())
    }
}

impl Drop for MboxLock {
    fn drop(&mut self) {
        while let Some(held) = self.held.pop() {
            match held {
                Held::Dot(dot) => drop(dot),
                Held::Fcntl => {
                    let _ = ofd_lock(&self.file, libc::F_UNLCK as libc::c_short);
                }
                Held::Flock => {
                    let _ = flock(&self.file, libc::LOCK_UN);
                }
            }
        }
    }
}

/// Runs a non-blocking lock attempt until it succeeds or the deadline passes.
fn retry(
    path: &Path,
    deadline: Instant,
    mut attempt: impl FnMut() -> io::Result<bool>,
) -> Result<()> {
    let mut wait = Duration::from_millis(2);
    loop {
        if attempt().map_err(|e| StoreError::io(path, e))? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(StoreError::InUse(format!(
                "timed out locking {}",
                path.display()
            )));
        }
        thread::sleep(wait);
        wait = (wait * 2).min(Duration::from_millis(50));
    }
}

/// `Ok(false)` when another holder is in the way.
fn ofd_lock(file: &File, kind: libc::c_short) -> io::Result<bool> {
    // SAFETY: a zeroed flock is a valid value (whole file from offset 0, pid 0 as OFD locks
    // require); the descriptor is open for the lifetime of `file`.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: see above; `fl` outlives the call.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &fl) };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
        _ => Err(err),
    }
}

fn flock(file: &File, op: libc::c_int) -> io::Result<bool> {
    // SAFETY: the descriptor is open for the lifetime of `file`.
    let rc = unsafe { libc::flock(file.as_raw_fd(), op) };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EWOULDBLOCK) => Ok(false),
        _ => Err(err),
    }
}
