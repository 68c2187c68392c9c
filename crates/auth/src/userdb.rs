//! The `static` userdb: every user the passdb accepted gets the same uid and gid and a home
//! directory made from a template, as Dovecot's `userdb static { args = uid=vmail gid=vmail
//! home=/var/vmail/%d/%n }` — the usual setup for virtual users whose mail one system account
//! owns. (The other userdbs: [`crate::passwd_file::PasswdFile`] and
//! [`crate::system::PasswdUserDb`].)

use std::path::{Path, PathBuf};

use crate::system::{resolve_gid, resolve_uid};
use crate::{AuthError, UserDb, UserRecord};

/// The `static` userdb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticUserDb {
    uid: u32,
    gid: u32,
    home: Option<String>,
}

impl StaticUserDb {
    /// `uid` and `gid` are numbers or names (resolved now, so a typo is reported at start);
    /// `home` is a template where `%u` is the user name, `%n` its part before `@`, `%d` its
    /// part after `@` (empty without one) and `%%` a percent sign.
    pub fn new(uid: &str, gid: &str, home: Option<String>) -> Result<StaticUserDb, AuthError> {
        let uid = resolve_uid(uid)
            .ok_or_else(|| AuthError::Config(format!("static userdb: unknown uid {uid:?}")))?;
        let gid = resolve_gid(gid)
            .ok_or_else(|| AuthError::Config(format!("static userdb: unknown gid {gid:?}")))?;
        if let Some(template) = &home {
            if !template.starts_with('/') {
                return Err(AuthError::Config(format!(
                    "static userdb: home {template:?} is not an absolute path"
                )));
            }
            expand_home(template, "user@example.org")
                .map_err(|e| AuthError::Config(format!("static userdb: home {template:?}: {e}")))?;
        }
        Ok(StaticUserDb { uid, gid, home })
    }
}

impl UserDb for StaticUserDb {
    fn lookup(&self, user: &str) -> Result<Option<UserRecord>, AuthError> {
        let home = match &self.home {
            None => None,
            Some(template) => match expand_home(template, user) {
                Ok(home) => Some(home),
                Err(reason) => {
                    tracing::warn!(user, reason, "static userdb: no home for this user name");
                    return Ok(None);
                }
            },
        };
        Ok(Some(UserRecord {
            name: user.to_owned(),
            uid: Some(self.uid),
            gid: Some(self.gid),
            home,
            extra: Vec::new(),
        }))
    }
}

/// Expands the home template for `user` (see [`expand`]).
pub fn expand_home(template: &str, user: &str) -> Result<PathBuf, &'static str> {
    expand(template, user, None)
}

/// Expands a path template: `%u` the user name, `%n` its part before `@`, `%d` its part after
/// `@` (empty without one), `%h` the home directory, `%%` a percent sign. The user name and
/// each piece of it must be usable as one path component (not empty, no `/`, no NUL, not
/// starting with `.`), so no name can climb out of the template's directory.
pub fn expand(template: &str, user: &str, home: Option<&Path>) -> Result<PathBuf, &'static str> {
    let (local, domain) = match user.split_once('@') {
        Some((l, d)) => (l, d),
        None => (user, ""),
    };
    let component = |piece: &str| -> Result<(), &'static str> {
        if piece.starts_with('.') || piece.contains('/') || piece.contains('\0') {
            Err("user name is not usable in a path")
        } else {
            Ok(())
        }
    };
    if user.is_empty() || local.is_empty() {
        return Err("empty user name");
    }
    component(user)?;
    let mut out = String::with_capacity(template.len() + user.len());
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('u') => out.push_str(user),
            Some('n') => out.push_str(local),
            Some('d') => {
                component(domain)?;
                out.push_str(domain);
            }
            Some('h') => match home {
                Some(h) => out.push_str(&h.to_string_lossy()),
                None => return Err("%h is used but the user has no home directory"),
            },
            Some('%') => out.push('%'),
            _ => return Err("unknown %-variable (use %u, %n, %d, %h or %%)"),
        }
    }
    Ok(PathBuf::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_records() {
        let db = StaticUserDb::new("5000", "root", Some("/var/vmail/%d/%n".into())).unwrap();
        let rec = db.lookup("bob@example.org").unwrap().unwrap();
        assert_eq!(rec.name, "bob@example.org");
        assert_eq!((rec.uid, rec.gid), (Some(5000), Some(0)));
        assert_eq!(rec.home, Some(PathBuf::from("/var/vmail/example.org/bob")));
        let rec = db.lookup("carol").unwrap().unwrap();
        assert_eq!(rec.home, Some(PathBuf::from("/var/vmail//carol")));
        for bad in ["../etc@x", "a/b", "bob@..", "@example.org", "", ".hidden"] {
            assert_eq!(db.lookup(bad).unwrap(), None, "{bad:?}");
        }
        let db = StaticUserDb::new("5000", "5000", None).unwrap();
        assert_eq!(db.lookup("x").unwrap().unwrap().home, None);
    }

    #[test]
    fn static_configuration_errors() {
        assert!(StaticUserDb::new("no-such-user-columba", "1", None).is_err());
        assert!(StaticUserDb::new("1", "no-such-group-columba", None).is_err());
        assert!(StaticUserDb::new("1", "1", Some("relative/%u".into())).is_err());
        assert!(StaticUserDb::new("1", "1", Some("/m/%x".into())).is_err());
        assert!(StaticUserDb::new("1", "1", Some("/m/%u/100%%".into())).is_ok());
    }
}
