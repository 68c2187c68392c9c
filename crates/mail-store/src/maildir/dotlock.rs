//! Dovecot-compatible dot-locking (`lib/file-dotlock.c`), so that Columba and Dovecot processes
//! exclude each other on `dovecot-uidlist`, `dovecot-keywords` and `subscriptions`.
//!
//! A lock on `F` is the file `F.lock`, created with `O_EXCL` (Dovecot's `dotlock_use_excl`,
//! the default). For a plain lock it holds `<pid>:<hostname>`; a lock file older than two
//! seconds whose pid is on this host and no longer runs is stale and is broken at once, and any
//! lock that neither it nor `F` changed for `stale_timeout` is broken as well. For "replace" use
//! (`file_dotlock_open` + `file_dotlock_replace`) the new content of `F` is written into the lock
//! file, which is then fsynced and renamed over `F`: readers see the old or the new file, never
//! a partial one.
//!
//! Dovecot runs one process per session; Columba runs many sessions in one process, and all of
//! them have the same pid, so a second, in-process lock table keeps threads from taking the same
//! dot lock (Dovecot would treat a lock with its own pid as stale).

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use super::filename;
use super::io as mio;
use crate::{Result, StoreError};

/// How long a lock may sit unchanged before it is presumed stale, and how long to wait for it.
#[derive(Debug, Clone, Copy)]
pub struct LockSettings {
    pub stale_timeout: Duration,
    pub timeout: Duration,
}

/// A lock file younger than this is not checked for a dead owner (`STALE_PID_CHECK_SECS`): it
/// was most likely just created and its pid not written yet.
const STALE_PID_CHECK: Duration = Duration::from_secs(2);

/// A held lock; dropping it removes the lock file (if it is still ours).
#[derive(Debug)]
pub struct DotLock {
    lock_path: PathBuf,
    dev: u64,
    ino: u64,
    _held: HeldInProcess,
}

impl DotLock {
    /// Takes the lock on `path` (the lock file is `path` + `.lock`), waiting up to
    /// `settings.timeout` and breaking stale locks. `InUse` on timeout.
    pub fn acquire(path: &Path, settings: &LockSettings) -> Result<DotLock> {
        let lock_path = lock_path_of(path);
        let held = HeldInProcess::acquire(&lock_path, settings.timeout)?;
        // The pid goes into a temporary file first, which is then hard-linked to the lock name
        // (Dovecot's `try_create_lock_hardlink`): the lock never exists without its owner, so a
        // process killed while taking it cannot leave a lock only the 120 s timeout can break.
        let temp = temp_path_of(&lock_path);
        let content = format!("{}:{}", std::process::id(), filename::raw_hostname());
        let written = mio::create_new(&temp)
            .and_then(|mut f| f.write_all(content.as_bytes()).map(|()| f))
            .map_err(|e| mio::error(&temp, e));
        let file = match written {
            Ok(f) => f,
            Err(e) => {
                let _ = fs::remove_file(&temp);
                return Err(e);
            }
        };
        let linked = wait_for_lock(path, &lock_path, settings, || {
            mio::hard_link(&temp, &lock_path)
        });
        let _ = fs::remove_file(&temp);
        linked?;
        let meta = file.metadata().map_err(|e| StoreError::io(&lock_path, e))?;
        Ok(DotLock {
            lock_path,
            dev: meta.dev(),
            ino: meta.ino(),
            _held: held,
        })
    }

    #[cfg(test)]
    pub fn path(&self) -> &Path {
        &self.lock_path
    }
}

impl Drop for DotLock {
    fn drop(&mut self) {
        // Only remove the file if it is still the one we created: someone may have judged our
        // lock stale and replaced it.
        match fs::symlink_metadata(&self.lock_path) {
            Ok(m) if m.dev() == self.dev && m.ino() == self.ino => {
                if let Err(e) = fs::remove_file(&self.lock_path) {
                    tracing::warn!(file = %self.lock_path.display(), "cannot remove lock: {e}");
                }
            }
            Ok(_) => tracing::warn!(
                file = %self.lock_path.display(),
                "our lock was overridden by another process"
            ),
            Err(_) => {}
        }
    }
}

/// Rewrites `path` atomically under its dot lock: `write` fills the lock file, which is then
/// fsynced and renamed over `path` (Dovecot's `file_dotlock_replace`). When `write` returns
/// `Ok(false)` nothing changes and the lock is dropped (`file_dotlock_delete`).
pub fn replace(
    path: &Path,
    settings: &LockSettings,
    write: impl FnOnce(&mut File, &Path) -> Result<bool>,
) -> Result<()> {
    let lock_path = lock_path_of(path);
    let _held = HeldInProcess::acquire(&lock_path, settings.timeout)?;
    let mut file = create_lock_file(path, &lock_path, settings)?;
    let result = write(&mut file, &lock_path).and_then(|commit| {
        if !commit {
            return Ok(false);
        }
        file.sync_all().map_err(|e| mio::error(&lock_path, e))?;
        fs::rename(&lock_path, path).map_err(|e| mio::error(path, e))?;
        Ok(true)
    });
    match result {
        Ok(true) => {}
        Ok(false) => {
            let _ = fs::remove_file(&lock_path);
            return Ok(());
        }
        Err(e) => {
            let _ = fs::remove_file(&lock_path);
            return Err(e);
        }
    }
    if let Some(dir) = path.parent() {
        mio::fsync_dir(dir)?;
    }
    Ok(())
}

pub fn lock_path_of(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

/// Creates the lock file with `O_EXCL`, waiting for and breaking stale locks.
fn create_lock_file(path: &Path, lock_path: &Path, settings: &LockSettings) -> Result<File> {
    let mut created = None;
    wait_for_lock(path, lock_path, settings, || {
        mio::create_new(lock_path).map(|f| created = Some(f))
    })?;
    created.ok_or_else(|| StoreError::Internal("lock file vanished".to_owned()))
}

/// Runs `try_create` (which fails with `AlreadyExists` while someone holds the lock) until it
/// succeeds, breaking stale locks on the way; `InUse` after `settings.timeout`.
fn wait_for_lock(
    path: &Path,
    lock_path: &Path,
    settings: &LockSettings,
    mut try_create: impl FnMut() -> io::Result<()>,
) -> Result<()> {
    let start = Instant::now();
    let mut wait = Duration::from_millis(2);
    loop {
        match try_create() {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(mio::error(lock_path, e)),
        }
        if is_stale(path, lock_path, settings) {
            override_lock(lock_path);
            continue;
        }
        if start.elapsed() >= settings.timeout {
            return Err(StoreError::InUse(format!(
                "timed out waiting for {}",
                lock_path.display()
            )));
        }
        thread::sleep(wait);
        wait = (wait * 2).min(Duration::from_millis(100));
    }
}

/// `.temp.<host>.<pid>.<n>` beside the lock, Dovecot's name for a lock in the making (a dot
/// file, so Maildir scans and folder listings skip it).
fn temp_path_of(lock_path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = format!(".temp.{}.{}.{n}", filename::hostname(), std::process::id());
    match lock_path.parent() {
        Some(dir) => dir.join(name),
        None => PathBuf::from(name),
    }
}

/// Dovecot's `check_lock`, without its change tracking across waits: a lock is stale when its
/// owner on this host is dead (checked once the lock's mtime is two seconds old), or when
/// neither it nor the file it protects changed for `stale_timeout`. A change is the later of
/// mtime and ctime, as in `update_change_info` (an mtime set into the past does not count).
fn is_stale(path: &Path, lock_path: &Path, settings: &LockSettings) -> bool {
    let Ok(meta) = fs::symlink_metadata(lock_path) else {
        return false;
    };
    let now = SystemTime::now();
    let mtime_age = now.duration_since(mio::mtime(&meta)).unwrap_or_default();
    if mtime_age >= STALE_PID_CHECK
        && let Some(pid) = read_local_pid(lock_path)
    {
        let ours = i64::from(pid) == i64::from(std::process::id());
        // Our own pid here can only be a leftover of an earlier process that had the same
        // pid: live locks of this process are excluded by the in-process table first.
        if ours || !mio::process_exists(pid) {
            tracing::warn!(
                file = %lock_path.display(),
                pid,
                "breaking a lock whose owner is gone"
            );
            return true;
        }
        return false;
    }
    let changed = |m: &fs::Metadata| mio::mtime(m).min(now).max(ctime(m));
    let lock_changed = changed(&meta);
    let protected_changed = fs::metadata(path)
        .map(|m| changed(&m))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let since = now
        .duration_since(lock_changed.max(protected_changed))
        .unwrap_or_default();
    if since >= settings.stale_timeout {
        tracing::warn!(
            file = %lock_path.display(),
            "breaking a lock unchanged for {}s",
            since.as_secs()
        );
        return true;
    }
    false
}

fn ctime(meta: &fs::Metadata) -> SystemTime {
    let secs = meta.ctime();
    mio::from_unix_secs(secs)
}

/// The pid in a `<pid>:<host>` lock file, if the host is this one.
fn read_local_pid(lock_path: &Path) -> Option<i32> {
    let mut buf = Vec::with_capacity(128);
    File::open(lock_path)
        .ok()?
        .take(512)
        .read_to_end(&mut buf)
        .ok()?;
    let text = String::from_utf8_lossy(&buf);
    let text = text.strip_suffix('\n').unwrap_or(&text);
    let (pid, host) = text.split_once(':')?;
    if host != filename::raw_hostname() {
        return None;
    }
    pid.parse::<i32>().ok().filter(|p| *p > 0)
}

fn override_lock(lock_path: &Path) {
    if let Err(e) = fs::remove_file(lock_path)
        && e.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(file = %lock_path.display(), "cannot remove stale lock: {e}");
    }
}

/// The in-process half of the lock: one thread at a time per lock path.
#[derive(Debug)]
struct HeldInProcess {
    path: PathBuf,
}

fn table() -> &'static (Mutex<HashSet<PathBuf>>, Condvar) {
    static TABLE: OnceLock<(Mutex<HashSet<PathBuf>>, Condvar)> = OnceLock::new();
    TABLE.get_or_init(|| (Mutex::new(HashSet::new()), Condvar::new()))
}

impl HeldInProcess {
    fn acquire(path: &Path, timeout: Duration) -> Result<HeldInProcess> {
        let (lock, cvar) = table();
        let deadline = Instant::now() + timeout;
        let mut held = lock.lock().unwrap_or_else(|e| e.into_inner());
        while held.contains(path) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StoreError::InUse(format!(
                    "timed out waiting for {}",
                    path.display()
                )));
            }
            held = cvar
                .wait_timeout(held, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        held.insert(path.to_owned());
        Ok(HeldInProcess {
            path: path.to_owned(),
        })
    }
}

impl Drop for HeldInProcess {
    fn drop(&mut self) {
        let (lock, cvar) = table();
        let mut held = lock.lock().unwrap_or_else(|e| e.into_inner());
        held.remove(&self.path);
        cvar.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUICK: LockSettings = LockSettings {
        stale_timeout: Duration::from_secs(120),
        timeout: Duration::from_millis(300),
    };

    fn age(path: &Path, secs: u64) {
        let f = File::options().write(true).open(path).unwrap();
        mio::set_times(&f, SystemTime::now() - Duration::from_secs(secs)).unwrap();
    }

    #[test]
    fn lock_holds_pid_and_is_removed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("dovecot-uidlist");
        let lock = DotLock::acquire(&target, &QUICK).unwrap();
        let content = fs::read_to_string(lock.path()).unwrap();
        assert_eq!(
            content,
            format!("{}:{}", std::process::id(), filename::raw_hostname())
        );
        drop(lock);
        assert!(!dir.path().join("dovecot-uidlist.lock").exists());
    }

    #[test]
    fn a_live_foreign_lock_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f");
        // pid 1 exists on every system and is not us.
        fs::write(
            dir.path().join("f.lock"),
            format!("1:{}", filename::raw_hostname()),
        )
        .unwrap();
        age(&dir.path().join("f.lock"), 10);
        let err = DotLock::acquire(&target, &QUICK).unwrap_err();
        assert_eq!(err.kind(), crate::StoreErrorKind::InUse);
    }

    #[test]
    fn a_lock_of_a_dead_process_is_broken() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f");
        let lock = dir.path().join("f.lock");
        // A pid beyond pid_max cannot be running.
        fs::write(&lock, format!("2147483646:{}", filename::raw_hostname())).unwrap();
        age(&lock, 10);
        let held = DotLock::acquire(&target, &QUICK).unwrap();
        drop(held);
        assert!(!lock.exists());
    }

    #[test]
    fn a_fresh_lock_of_a_dead_process_is_broken_after_two_seconds() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f");
        fs::write(
            dir.path().join("f.lock"),
            format!("2147483646:{}", filename::raw_hostname()),
        )
        .unwrap();
        let start = Instant::now();
        let slow = LockSettings {
            stale_timeout: Duration::from_secs(120),
            timeout: Duration::from_secs(10),
        };
        assert!(DotLock::acquire(&target, &slow).is_ok());
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(1500) && waited < Duration::from_secs(6));
    }

    #[test]
    fn a_lock_without_owner_is_broken_once_unchanged_long_enough() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f");
        fs::write(dir.path().join("f.lock"), b"").unwrap();
        // Within the stale timeout it is respected.
        assert!(DotLock::acquire(&target, &QUICK).is_err());
        let short = LockSettings {
            stale_timeout: Duration::from_millis(500),
            timeout: Duration::from_secs(5),
        };
        let start = Instant::now();
        assert!(DotLock::acquire(&target, &short).is_ok());
        assert!(start.elapsed() >= Duration::from_millis(200));
    }

    #[test]
    fn threads_of_one_process_exclude_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f");
        let first = DotLock::acquire(&target, &QUICK).unwrap();
        let t2 = target.clone();
        let waiter = thread::spawn(move || {
            let start = Instant::now();
            let _l = DotLock::acquire(
                &t2,
                &LockSettings {
                    stale_timeout: Duration::from_secs(120),
                    timeout: Duration::from_secs(5),
                },
            )
            .unwrap();
            start.elapsed()
        });
        thread::sleep(Duration::from_millis(100));
        drop(first);
        assert!(waiter.join().unwrap() >= Duration::from_millis(90));
    }

    #[test]
    fn replace_writes_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("subscriptions");
        fs::write(&target, b"old").unwrap();
        replace(&target, &QUICK, |f, _| {
            f.write_all(b"new").map_err(|e| StoreError::io("x", e))?;
            Ok(true)
        })
        .unwrap();
        replace(&target, &QUICK, |f, _| {
            f.write_all(b"discarded")
                .map_err(|e| StoreError::io("x", e))?;
            Ok(false)
        })
        .unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new");
        let failed = replace(&target, &QUICK, |_, _| {
            Err(StoreError::Internal("no".into()))
        });
        assert!(failed.is_err());
        assert_eq!(fs::read(&target).unwrap(), b"new");
        assert!(!dir.path().join("subscriptions.lock").exists());
    }
}
