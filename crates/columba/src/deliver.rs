//! `columba deliver`: the local delivery agent, compatible with `dovecot-lda` where an MTA
//! depends on it (Postfix `mailbox_command = /usr/local/bin/columba deliver`, or with
//! `-d "$USER"` from a pipe transport). One message on stdin goes into one user's mailbox;
//! the exit code is what the MTA acts on (sysexits.h):
//!
//! | code | meaning | the MTA |
//! |---|---|---|
//! | 0 | delivered (fsynced) | done |
//! | 64 `EX_USAGE` | started as root without `-d`, or with bad arguments | defers |
//! | 67 `EX_NOUSER` | the userdb does not know the user | bounces |
//! | 75 `EX_TEMPFAIL` | disk, locks, the userdb, a user who may not get mail; over quota with `quota_full_tempfail` | retries |
//! | 77 `EX_NOPERM` | over quota (the reason on stderr, Dovecot's `-e`) or too big | bounces |
//!
//! As Dovecot's LDA: no headers are added (Postfix's local(8) adds `Return-Path:` and
//! `Delivered-To:` itself), a leading mbox `From ` line is dropped (its address is the sender
//! when `-f` is not given), a mailbox (`-m`) that does not exist or is not a valid name means
//! INBOX (`lda_mailbox_autocreate = no`), and a rejection is never mailed back: it is always
//! reported as with `-e`, on stderr with exit code 77.

use std::io::Read as _;

use crate::config::Config;
use crate::privsep;
use session_api::delivery::{DeliveryError, deliver};

pub const EX_USAGE: i32 = 64;
pub const EX_NOUSER: i32 = 67;
pub const EX_TEMPFAIL: i32 = 75;
pub const EX_NOPERM: i32 = 77;

/// The command line, dovecot-lda's options.
#[derive(Debug, Clone, Default)]
pub struct Args {
    /// `-d`: the user; default the user running the command (`$USER`).
    pub user: Option<String>,
    /// `-m`: the mailbox; default INBOX.
    pub mailbox: Option<String>,
    /// `-f`: the envelope sender, for the log.
    pub sender: Option<String>,
    /// `-a`: the original recipient address, for the log.
    pub recipient: Option<String>,
    /// Only tell whether the user is at a quota limit (exit 0 or 77); no message is read.
    /// For LMTP's check at RCPT in the separated model.
    pub check_quota_only: bool,
}

/// A delivery that did not happen: the exit code and what stderr says.
struct Failure {
    code: i32,
    message: String,
}

fn fail(code: i32, message: impl Into<String>) -> Failure {
    Failure {
        code,
        message: message.into(),
    }
}

fn tempfail(e: impl std::fmt::Display) -> Failure {
    fail(EX_TEMPFAIL, e.to_string())
}

/// Delivers stdin and returns the exit code; the reason of a failure is on stderr.
pub fn run(config: &Config, args: &Args) -> i32 {
    let code = match deliver_stdin(config, args) {
        Ok(()) => 0,
        Err(f) => {
            eprintln!("{}", f.message);
            f.code
        }
    };
    // Closing the mailboxes saves their indexes, as the server does when it stops.
    mail_store::maildir::release_idle_mailboxes(std::path::Path::new("/"));
    mail_store::mbox::release_idle_mailboxes(std::path::Path::new("/"));
    code
}

fn deliver_stdin(config: &Config, args: &Args) -> Result<(), Failure> {
    let root = privsep::running_as_root();
    let name = match (&args.user, root) {
        (Some(user), _) => user.clone(),
        (None, true) => {
            return Err(fail(
                EX_USAGE,
                "destination user parameter (-d user) not given",
            ));
        }
        (None, false) => std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .ok_or_else(|| fail(EX_USAGE, "Couldn't lookup our username ($USER is not set)"))?,
    };
    let users = crate::backend::delivery_users(config).map_err(tempfail)?;
    let record = match users.lookup(&name).map_err(tempfail)? {
        Some(record) => record,
        // Run from a user's own mailbox_command: the account running it is the user.
        None if args.user.is_none() => own_account(&name)?,
        None => return Err(fail(EX_NOUSER, format!("Unknown user: {name}"))),
    };
    let message = if args.check_quota_only {
        Vec::new()
    } else {
        read_message(config.delivery.max_message_size)?
    };
    let (message, from_line_sender) = strip_from_line(&message);
    if root {
        let (uid, gid) = delivery_ids(config, &record).map_err(tempfail)?;
        privsep::become_mail_user(uid, gid).map_err(tempfail)?;
    }
    // Mail files are the user's alone (0600), as Dovecot and the mail processes create them.
    // SAFETY: umask only sets the process's file mode mask.
    unsafe {
        libc::umask(0o077);
    }
    let store =
        crate::backend::open_user_store(&config.mail_location(), &record).map_err(tempfail)?;
    if args.check_quota_only {
        let full = session_api::quota::QuotaLimits::of(&record)
            .would_exceed(store.as_ref(), 0, 1)
            .map_err(tempfail)?;
        if full {
            return Err(fail(EX_NOPERM, session_api::quota::QUOTA_EXCEEDED_MESSAGE));
        }
        return Ok(());
    }
    let sender = args.sender.clone().or(from_line_sender).unwrap_or_default();
    match deliver(store.as_ref(), &record, args.mailbox.as_deref(), message) {
        Ok(done) => {
            tracing::info!(
                "lda({}): saved mail to {} (uid {}, from=<{sender}>, to=<{}>, size={})",
                record.name,
                done.mailbox,
                done.uid,
                args.recipient.as_deref().unwrap_or(&record.name),
                message.len()
            );
            Ok(())
        }
        Err(DeliveryError::OverQuota) => {
            let code = if config.delivery.quota_full_tempfail {
                EX_TEMPFAIL
            } else {
                EX_NOPERM
            };
            tracing::info!("lda({}): rejected: over quota", record.name);
            Err(fail(code, session_api::quota::QUOTA_EXCEEDED_MESSAGE))
        }
        Err(e) => Err(tempfail(e)),
    }
}

/// A user the userdb does not know, running the command for themselves: their system account,
/// if it is the one running.
fn own_account(name: &str) -> Result<auth::UserRecord, Failure> {
    // SAFETY: geteuid cannot fail and touches no memory.
    let euid = unsafe { libc::geteuid() };
    match auth::system::lookup_user(name).map_err(tempfail)? {
        Some(account) if account.uid == euid => Ok(auth::UserRecord {
            name: account.name,
            uid: Some(account.uid),
            gid: Some(account.gid),
            home: Some(account.home),
            extra: Vec::new(),
        }),
        _ => Err(fail(EX_NOUSER, format!("Unknown user: {name}"))),
    }
}

/// Reads the message from stdin, refusing one over `max` octets.
fn read_message(max: u64) -> Result<Vec<u8>, Failure> {
    let mut message = Vec::new();
    std::io::stdin()
        .lock()
        .take(max.saturating_add(1))
        .read_to_end(&mut message)
        .map_err(|e| tempfail(format!("reading the message: {e}")))?;
    if message.len() as u64 > max {
        return Err(fail(
            EX_NOPERM,
            "Message size exceeds fixed maximum message size",
        ));
    }
    Ok(message)
}

/// Drops an mbox `From sender date` line in front of the message, returning the sender it
/// names (as dovecot-lda does with what Postfix's `flags=F` or procmail leave there).
fn strip_from_line(message: &[u8]) -> (&[u8], Option<String>) {
    if !message.starts_with(b"From ") {
        return (message, None);
    }
    let Some(end) = message.iter().position(|&b| b == b'\n') else {
        return (message, None);
    };
    let line = String::from_utf8_lossy(&message[5..end]);
    let sender = line
        .split_whitespace()
        .next()
        .filter(|s| s.chars().all(|c| c.is_ascii_graphic()))
        .map(str::to_owned);
    (&message[end + 1..], sender)
}

/// Whom the mail is written as when started as root: the user's own uid and gid, or for a
/// virtual user without one the uid the server serves them as — `[server] mail_user`, and in
/// the single-process model `[server] user` or the owner of the data directory (in the
/// separated model `[server] user` is the login process's, which must never own mail).
/// Never root.
fn delivery_ids(config: &Config, record: &auth::UserRecord) -> anyhow::Result<(u32, u32)> {
    use std::os::unix::fs::MetadataExt as _;
    if record.uid.is_some() {
        return privsep::mail_ids(record, None);
    }
    let lookup = |name: &String| -> anyhow::Result<auth::system::SystemUser> {
        auth::system::lookup_user(name)?
            .ok_or_else(|| anyhow::anyhow!("[server] user {name:?} does not exist"))
    };
    let account = if let Some(name) = &config.server.mail_user {
        Some(lookup(name)?)
    } else if privsep::separated(config)? {
        None
    } else if let Some(name) = &config.server.user {
        Some(lookup(name)?)
    } else {
        std::fs::metadata(&config.data_dir)
            .ok()
            .filter(|m| m.uid() != 0)
            .map(|m| auth::system::SystemUser {
                name: format!("uid {}", m.uid()),
                uid: m.uid(),
                gid: m.gid(),
                home: config.data_dir.clone(),
                shell: String::new(),
            })
    };
    privsep::mail_ids(record, account.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mbox_from_lines_are_dropped() {
        let (m, s) = strip_from_line(b"From a@example.org Sun Nov 29 11:09:19 2026\nSubject: x\n");
        assert_eq!(m, b"Subject: x\n");
        assert_eq!(s.as_deref(), Some("a@example.org"));
        let (m, s) = strip_from_line(b"From: a@example.org\n\nbody\n");
        assert_eq!(m, b"From: a@example.org\n\nbody\n");
        assert_eq!(s, None);
        assert_eq!(strip_from_line(b"From x").0, b"From x");
    }
}
