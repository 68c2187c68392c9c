//! Giving up root: who to become, becoming them for good, and starting child processes with the
//! descriptors they are meant to have and no others.
//!
//! Everything here runs before the process has a second thread (set*id must change the whole
//! process, and glibc only promises that for its own wrappers), or in a child between fork and
//! exec, where only async-signal-safe calls are allowed.

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::Command;

use anyhow::Context as _;
use auth::system::SystemUser;

/// The user login processes run as when `[server] user` is unset (Dovecot's `dovenull`).
pub const DEFAULT_LOGIN_USER: &str = "columba";

/// Where the descriptors handed to a child start (0-2 are stdin, stdout and stderr).
pub const FIRST_CHILD_FD: RawFd = 3;

pub fn running_as_root() -> bool {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

/// Looks up `name`, creating it as a system account without a home or shell when it is the
/// default login user and missing (as Debian's packages create `dovenull`).
pub fn service_user(name: &str) -> anyhow::Result<SystemUser> {
    if let Some(user) = auth::system::lookup_user(name)? {
        return Ok(user);
    }
    if name != DEFAULT_LOGIN_USER {
        anyhow::bail!("user {name:?} does not exist");
    }
    tracing::info!("creating the system user {name:?} for the login processes");
    let status = Command::new("useradd")
        .args([
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ])
        .status()
        .context("running useradd")?;
    // Another server starting at the same moment may have created it first.
    match auth::system::lookup_user(name)? {
        Some(user) => Ok(user),
        None => {
            anyhow::bail!("useradd {name} failed ({status}); create the user or set [server] user")
        }
    }
}

/// Becomes `uid`/`gid` for good, with no supplementary groups: first the groups, while still
/// allowed to change them, then the uid, which ends the right to change anything. Checked
/// afterwards, because a set*id call that silently did nothing would leave root in place.
pub fn become_user(uid: u32, gid: u32) -> anyhow::Result<()> {
    if uid == 0 {
        anyhow::bail!("refusing to run as root after startup");
    }
    // SAFETY: plain system calls on integers; no memory is shared with them.
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0 {
            return Err(std::io::Error::last_os_error()).context("setgroups");
        }
        if libc::setgid(gid) != 0 {
            return Err(std::io::Error::last_os_error()).context("setgid");
        }
        if libc::setuid(uid) != 0 {
            return Err(std::io::Error::last_os_error()).context("setuid");
        }
        if libc::getuid() != uid || libc::geteuid() != uid || libc::getegid() != gid {
            anyhow::bail!("privileges were not dropped");
        }
        // Root must not be regained: this has to fail now.
        if libc::setuid(0) == 0 {
            anyhow::bail!("setuid(0) succeeded after dropping privileges");
        }
    }
    Ok(())
}

/// Locks the process in `dir` (an empty directory), so that a compromised login process finds
/// no files to read or write.
pub fn chroot_to(dir: &Path) -> anyhow::Result<()> {
    let c = CString::new(dir.as_os_str().as_encoded_bytes())
        .with_context(|| format!("chroot directory {}", dir.display()))?;
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the calls.
    unsafe {
        if libc::chroot(c.as_ptr()) != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("chroot {}", dir.display()));
        }
        if libc::chdir(c"/".as_ptr()) != 0 {
            return Err(std::io::Error::last_os_error()).context("chdir / after chroot");
        }
    }
    Ok(())
}

/// No exec of this process or its children can gain privileges (setuid binaries, file
/// capabilities), and other processes of the same uid cannot attach to it or read its memory.
pub fn forbid_new_privileges() -> anyhow::Result<()> {
    // SAFETY: prctl with integer arguments only.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error()).context("PR_SET_NO_NEW_PRIVS");
        }
        if libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error()).context("PR_SET_DUMPABLE");
        }
    }
    Ok(())
}

/// Asks the kernel for `signal` when the parent process ends (`PR_SET_PDEATHSIG`).
pub fn die_with_parent(signal: i32) -> anyhow::Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).context("PR_SET_PDEATHSIG");
    }
    // The parent may have ended before the request was made.
    // SAFETY: getppid cannot fail.
    if unsafe { libc::getppid() } == 1 {
        anyhow::bail!("the master process is gone");
    }
    Ok(())
}

/// Arranges for the child of `command` to find `fds` as descriptors 3, 4, ... (in order), and
/// no other descriptor of this process: Rust opens everything close-on-exec, and `dup2` clears
/// that flag only on the copies made here. The child is also told to end with its parent.
pub fn pass_fds(command: &mut Command, fds: &[BorrowedFd<'_>]) {
    let sources: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    // SAFETY: the closure runs in the child between fork and exec and calls only fcntl and
    // dup2, which are async-signal-safe; `sources` was allocated before the fork.
    unsafe {
        command.pre_exec(move || {
            // First out of the way of the targets (a source may sit where another must go).
            let mut moved = [0 as RawFd; 64];
            if sources.len() > moved.len() {
                return Err(std::io::Error::from_raw_os_error(libc::EMFILE));
            }
            for (i, fd) in sources.iter().enumerate() {
                let high = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 128);
                if high < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                moved[i] = high;
            }
            for (i, fd) in moved[..sources.len()].iter().enumerate() {
                if libc::dup2(*fd, FIRST_CHILD_FD + i as RawFd) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            // A child outliving a killed master would serve on with nobody in charge.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
