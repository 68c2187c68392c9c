//! Mail locations in Dovecot's syntax, and opening the store one names:
//!
//! - `maildir:PATH` or a bare `PATH`: a Maildir++ tree.
//! - `mbox:ROOT[:INBOX=PATH][:KEY=VALUE...]`: folders as mbox files under `ROOT`, INBOX in the
//!   file `PATH` (default `ROOT/inbox`), e.g. `mbox:~/mail:INBOX=/var/mail/%u`. Besides
//!   Dovecot's `INBOX` it takes Columba's own `READ_LOCKS` and `WRITE_LOCKS` (lock methods
//!   joined by `+`, in order: `dotlock`, `fcntl`, `flock`; defaults `fcntl` and
//!   `dotlock+fcntl` as Dovecot's `mbox_read_locks`/`mbox_write_locks`) and `QUOTING`
//!   (`mboxrd`, the default, `mboxo` or `content-length`). Dovecot's `INDEX` and `CONTROL`
//!   are accepted and ignored (Columba keeps its files in `ROOT/.imap`).
//!
//! Paths may use `~/` for the home directory and the `%` variables of [`expand_location`].

use std::path::PathBuf;
use std::sync::Arc;

use auth::UserRecord;
use mail_store::maildir::MaildirStore;
use mail_store::mbox::{LockMethod, MboxSettings, MboxStore, Quoting};
use mail_store::{MailStore, StoreError};

use crate::config::expand_location;

/// A parsed location, paths not yet expanded for a user.
#[derive(Debug, Clone, PartialEq)]
enum Location {
    Maildir(String),
    Mbox {
        root: String,
        inbox: Option<String>,
        settings: MboxSettings,
    },
}

fn parse(location: &str) -> anyhow::Result<Location> {
    if let Some(rest) = location.strip_prefix("mbox:") {
        let mut parts = rest.split(':');
        let root = parts.next().unwrap_or_default().to_owned();
        if root.is_empty() {
            anyhow::bail!("mail location {location:?}: mbox needs a root directory");
        }
        let mut inbox = None;
        let mut settings = MboxSettings::default();
        for part in parts {
            let (key, value) = part.split_once('=').ok_or_else(|| {
                anyhow::anyhow!("mail location {location:?}: {part:?} is not KEY=VALUE")
            })?;
            match key {
                "INBOX" => inbox = Some(value.to_owned()),
                "READ_LOCKS" => settings.locks.read = lock_methods(value)?,
                "WRITE_LOCKS" => settings.locks.write = lock_methods(value)?,
                "QUOTING" => {
                    settings.quoting = match value {
                        "mboxrd" => Quoting::Mboxrd,
                        "mboxo" => Quoting::Mboxo,
                        "content-length" => Quoting::ContentLength,
                        other => anyhow::bail!("unknown mbox QUOTING {other:?}"),
                    }
                }
                "INDEX" | "CONTROL" => {}
                other => anyhow::bail!("mail location {location:?}: unknown parameter {other:?}"),
            }
        }
        return Ok(Location::Mbox {
            root,
            inbox,
            settings,
        });
    }
    Ok(Location::Maildir(
        location
            .strip_prefix("maildir:")
            .unwrap_or(location)
            .to_owned(),
    ))
}

fn lock_methods(value: &str) -> anyhow::Result<Vec<LockMethod>> {
    value
        .split('+')
        .filter(|m| !m.is_empty())
        .map(|m| LockMethod::parse(m).ok_or_else(|| anyhow::anyhow!("unknown lock method {m:?}")))
        .collect()
}

/// Expands one path of a location for `user`; `~` is the home directory.
fn expand(path: &str, user: &UserRecord) -> anyhow::Result<PathBuf> {
    let template = match path.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("%h{rest}"),
        _ => path.to_owned(),
    };
    expand_location(&template, &user.name, user.home.as_deref())
}

/// A location with its paths expanded for one user.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    Maildir(PathBuf),
    Mbox {
        root: PathBuf,
        inbox: PathBuf,
        settings: MboxSettings,
    },
}

impl Resolved {
    /// The directory the mail lives under (the Maildir root, the mbox folder root).
    pub fn root(&self) -> &std::path::Path {
        match self {
            Resolved::Maildir(root) | Resolved::Mbox { root, .. } => root,
        }
    }

    /// Opens the store, creating what is missing.
    pub fn open(&self) -> Result<Arc<dyn MailStore>, StoreError> {
        Ok(match self {
            Resolved::Maildir(root) => Arc::new(MaildirStore::new(root.clone())?),
            Resolved::Mbox {
                root,
                inbox,
                settings,
            } => Arc::new(MboxStore::new(
                root.clone(),
                inbox.clone(),
                settings.clone(),
            )?),
        })
    }
}

/// Parses `location` and expands its paths for `user`.
pub fn resolve(location: &str, user: &UserRecord) -> anyhow::Result<Resolved> {
    Ok(match parse(location)? {
        Location::Maildir(path) => Resolved::Maildir(expand(&path, user)?),
        Location::Mbox {
            root,
            inbox,
            settings,
        } => {
            let root = expand(&root, user)?;
            let inbox = match inbox {
                Some(p) => expand(&p, user)?,
                None => root.join("inbox"),
            };
            Resolved::Mbox {
                root,
                inbox,
                settings,
            }
        }
    })
}

/// Opens the store `location` names for `user`.
pub fn open(location: &str, user: &UserRecord) -> Result<Arc<dyn MailStore>, StoreError> {
    resolve(location, user)
        .map_err(|e| StoreError::Internal(format!("mail location for {}: {e}", user.name)))?
        .open()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_like_dovecots() {
        assert_eq!(
            parse("maildir:~/Maildir").unwrap(),
            Location::Maildir("~/Maildir".to_owned())
        );
        assert_eq!(
            parse("/srv/%u/Maildir").unwrap(),
            Location::Maildir("/srv/%u/Maildir".to_owned())
        );
        let Location::Mbox {
            root,
            inbox,
            settings,
        } = parse(
            "mbox:~/mail:INBOX=/var/mail/%u:INDEX=/x:WRITE_LOCKS=fcntl+dotlock:QUOTING=mboxo",
        )
        .unwrap()
        else {
            panic!("not mbox");
        };
        assert_eq!(root, "~/mail");
        assert_eq!(inbox.as_deref(), Some("/var/mail/%u"));
        assert_eq!(
            settings.locks.write,
            vec![LockMethod::Fcntl, LockMethod::Dotlock]
        );
        assert_eq!(settings.locks.read, vec![LockMethod::Fcntl]);
        assert_eq!(settings.quoting, Quoting::Mboxo);
        for bad in [
            "mbox:",
            "mbox:~/mail:INBOX",
            "mbox:~/mail:FOO=1",
            "mbox:~/mail:WRITE_LOCKS=lockf",
            "mbox:~/mail:QUOTING=none",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
