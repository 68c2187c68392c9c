//! The `checkpassword` passdb: the qmail checkpassword interface, as Dovecot runs it
//! (`src/auth/db-checkpassword.c`).
//!
//! For each login the configured program is started with file descriptor 3 open for reading
//! `user NUL password NUL NUL` (the empty third field is the APOP timestamp, never used), at
//! most 512 bytes, and with the reply program and its arguments as its own arguments. A program
//! that accepts the password runs the reply program (`exec "$@"`) with `USER`, `HOME` and
//! whatever `EXTRA` names in its environment; the reply program writes tab-separated `key=value`
//! fields to descriptor 4 — Dovecot's `checkpassword-reply` or `columba checkpassword-reply`,
//! which write the same thing. Exit status 0 with a reply is a login; 1 (and vpopmail's 3, 12,
//! 13, 15, 20-23) a refused password; anything else, a signal or a timeout is a temporary
//! failure. The password never appears in an argument or the environment.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::system::{resolve_gid, resolve_uid};
use crate::{AuthError, AuthOutcome, PassDb, UserRecord};

/// Longest request the interface allows (`user\0password\0\0`).
pub const MAX_REQUEST: usize = 512;
/// Longest reply read from descriptor 4.
const MAX_REPLY: usize = 64 * 1024;
/// How long a program may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The `checkpassword` passdb.
#[derive(Debug, Clone)]
pub struct CheckPassword {
    program: PathBuf,
    reply: Vec<OsString>,
    timeout: Duration,
}

impl CheckPassword {
    /// Runs `program`, giving it `reply` (the reply program and its arguments) as arguments.
    pub fn new(
        program: impl Into<PathBuf>,
        reply: Vec<OsString>,
        timeout: Duration,
    ) -> Result<CheckPassword, AuthError> {
        let program = program.into();
        if reply.is_empty() {
            return Err(AuthError::Config(
                "checkpassword needs a reply program".to_owned(),
            ));
        }
        if !program.is_absolute() {
            return Err(AuthError::Config(format!(
                "checkpassword program {} is not an absolute path",
                program.display()
            )));
        }
        Ok(CheckPassword {
            program,
            reply,
            timeout,
        })
    }

    fn fail(&self, reason: impl Into<String>) -> AuthError {
        AuthError::Backend {
            backend: "checkpassword",
            reason: format!("{}: {}", self.program.display(), reason.into()),
        }
    }

    /// Runs the program once; returns its exit status (`None`: killed by a signal) and reply.
    fn run(&self, request: &[u8]) -> Result<(Option<i32>, Vec<u8>), AuthError> {
        let io = |what: &str, e: std::io::Error| self.fail(format!("{what}: {e}"));
        let (to_child, mut request_writer) = std::io::pipe().map_err(|e| io("pipe", e))?;
        let (mut reply_reader, from_child) = std::io::pipe().map_err(|e| io("pipe", e))?;
        // The request fits in a pipe's buffer: write it all now, then let the child read it.
        request_writer
            .write_all(request)
            .map_err(|e| io("writing the request", e))?;
        drop(request_writer);
        // Above 4 so that putting them at 3 and 4 in the child cannot overwrite either.
        let fd3 = dup_above(to_child.as_raw_fd()).map_err(|e| io("dup", e))?;
        let fd4 = dup_above(from_child.as_raw_fd()).map_err(|e| io("dup", e))?;
        drop((to_child, from_child));
        let (raw3, raw4) = (fd3.as_raw_fd(), fd4.as_raw_fd());
        let mut command = Command::new(&self.program);
        command
            .args(&self.reply)
            .env("PROTO", "TCP")
            // SAFETY: getuid cannot fail.
            .env("ORIG_UID", unsafe { libc::getuid() }.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        // SAFETY: between fork and exec only dup2, which is async-signal-safe, runs; the
        // descriptors are open (held by `fd3`/`fd4` until after spawn) and not 3 or 4.
        unsafe {
            command.pre_exec(move || {
                if libc::dup2(raw3, 3) < 0 || libc::dup2(raw4, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(|e| io("starting it", e))?;
        // Our copy of the reply pipe's write end must go, or reading would never see its end.
        drop((fd3, fd4));
        let deadline = Instant::now() + self.timeout;
        let reply = match read_until_eof(&mut reply_reader, deadline) {
            Ok(reply) => reply,
            Err(e) => {
                kill(&mut child);
                return Err(self.fail(e));
            }
        };
        let status = wait_until(&mut child, deadline).map_err(|e| self.fail(e))?;
        Ok((status, reply))
    }
}

impl PassDb for CheckPassword {
    fn verify_plain(&self, user: &str, password: &[u8]) -> Result<AuthOutcome, AuthError> {
        let password = match password.iter().position(|&b| b == 0) {
            Some(nul) => &password[..nul],
            None => password,
        };
        if user.is_empty() || user.contains('\0') {
            return Ok(AuthOutcome::UnknownUser);
        }
        let mut request = Zeroizing::new(Vec::with_capacity(user.len() + password.len() + 3));
        request.extend_from_slice(user.as_bytes());
        request.push(0);
        request.extend_from_slice(password);
        request.extend_from_slice(b"\0\0");
        if request.len() > MAX_REQUEST {
            tracing::info!(
                user,
                "checkpassword: user name and password longer than 512 bytes"
            );
            return Ok(AuthOutcome::WrongPassword);
        }
        let (status, reply) = self.run(&request)?;
        match status {
            Some(0) => {
                if reply.is_empty() {
                    return Err(self.fail("exit status 0 without a reply on fd 4"));
                }
                parse_reply(user, &reply)
                    .map(AuthOutcome::Success)
                    .map_err(|e| self.fail(e))
            }
            // The standard refusal, and vpopmail's ways of saying it.
            Some(1 | 3 | 12 | 13 | 15 | 20..=23) => {
                tracing::info!(user, status, "checkpassword: login refused");
                Ok(AuthOutcome::WrongPassword)
            }
            Some(2) => Err(self.fail("exit status 2 (a userdb-only program used as passdb?)")),
            Some(111) => Err(self.fail("exit status 111 (temporary problem)")),
            Some(n) => Err(self.fail(format!("exit status {n}"))),
            None => Err(self.fail("killed by a signal")),
        }
    }
}

/// The reply: `key=value` fields separated by tabs. `user` renames the user; `userdb_home`,
/// `userdb_uid` and `userdb_gid` (numbers or names) fill the record; every other field goes to
/// its extra fields as it is (`userdb_mail=...` sets the mail location, as in a passwd-file).
fn parse_reply(user: &str, reply: &[u8]) -> Result<UserRecord, String> {
    let text = std::str::from_utf8(reply).map_err(|_| "reply is not UTF-8".to_owned())?;
    if text.contains('\n') {
        return Err("LF characters in the reply".to_owned());
    }
    let mut record = UserRecord::named(user);
    for field in text.split('\t').filter(|f| !f.is_empty()) {
        let (key, value) = field.split_once('=').unwrap_or((field, ""));
        match key {
            "user" => {
                crate::passwd_file::validate_user_name(value)
                    .map_err(|e| format!("reply user {value:?}: {e}"))?;
                record.name = value.to_owned();
            }
            "userdb_home" => record.home = Some(PathBuf::from(value)),
            "userdb_uid" => {
                record.uid =
                    Some(resolve_uid(value).ok_or_else(|| format!("unknown uid {value:?}"))?);
            }
            "userdb_gid" => {
                record.gid =
                    Some(resolve_gid(value).ok_or_else(|| format!("unknown gid {value:?}"))?);
            }
            _ => record.extra.push((key.to_owned(), value.to_owned())),
        }
    }
    Ok(record)
}

/// A close-on-exec copy of `fd` numbered 10 or above.
fn dup_above(fd: RawFd) -> std::io::Result<OwnedFd> {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) only reads `fd`, which the caller keeps open.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) };
    if new < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `new` is a freshly duplicated descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

fn read_until_eof(reader: &mut std::io::PipeReader, deadline: Instant) -> Result<Vec<u8>, String> {
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("timed out".to_owned());
        }
        let mut pollfd = libc::pollfd {
            fd: reader.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let millis = libc::c_int::try_from(left.as_millis().max(1)).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd, whose descriptor `reader` keeps open.
        let ready = unsafe { libc::poll(&mut pollfd, 1, millis) };
        if ready < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("poll: {e}"));
        }
        if ready == 0 {
            continue;
        }
        match reader.read(&mut buf) {
            Ok(0) => return Ok(reply),
            Ok(n) => {
                reply.extend_from_slice(&buf[..n]);
                if reply.len() > MAX_REPLY {
                    return Err("reply longer than 64 KiB".to_owned());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("reading the reply: {e}")),
        }
    }
}

/// Waits for the child until `deadline`, then kills it. `None` for a death by signal.
fn wait_until(child: &mut Child, deadline: Instant) -> Result<Option<i32>, String> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status.code()),
            Ok(None) if Instant::now() >= deadline => {
                kill(child);
                return Err("timed out".to_owned());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => return Err(format!("waiting: {e}")),
        }
    }
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies() {
        let r = parse_reply(
            "bob",
            b"user=Bob\tuserdb_home=/home/bob\tuserdb_uid=1500\tuserdb_gid=root\tuserdb_mail=maildir:~/M\t",
        )
        .unwrap();
        assert_eq!(r.name, "Bob");
        assert_eq!(r.home, Some(PathBuf::from("/home/bob")));
        assert_eq!((r.uid, r.gid), (Some(1500), Some(0)));
        assert_eq!(
            r.extra,
            [("userdb_mail".to_owned(), "maildir:~/M".to_owned())]
        );
        assert!(parse_reply("bob", b"user=a\nb").is_err());
        assert!(parse_reply("bob", b"userdb_uid=no-such-user-columba").is_err());
        assert!(parse_reply("bob", b"user=../x/y").is_err());
        assert!(parse_reply("bob", b"\xff").is_err());
        assert_eq!(parse_reply("bob", b"flag").unwrap().extra[0].0, "flag");
    }

    #[test]
    fn configuration() {
        assert!(CheckPassword::new("/bin/true", Vec::new(), DEFAULT_TIMEOUT).is_err());
        assert!(CheckPassword::new("true", vec!["x".into()], DEFAULT_TIMEOUT).is_err());
        assert!(CheckPassword::new("/bin/true", vec!["x".into()], DEFAULT_TIMEOUT).is_ok());
    }
}
