//! The `shadow` passdb: passwords of system accounts, checked against `/etc/shadow` (shadow(5))
//! with the system's crypt(3) ([`crate::crypt`], libxcrypt: yescrypt, SHA-crypt, bcrypt...).
//!
//! The file is parsed here rather than through `getspnam(3)`, so that a broken line is skipped
//! with a warning instead of hiding the rest, and so that tests can point at a file of their
//! own. Only root can read `/etc/shadow`; [`ShadowPassDb::open`] says so at start.
//!
//! A user is refused, whatever the password, when:
//! * the password field is empty (no password: fine for a console, never for a mail server),
//!   or starts with `!` or `*` (locked by `passwd -l` or `usermod -L`, or no password set);
//! * the account has expired (field 8, `chage -E`; day 0 counts, as in pam_unix);
//! * the password must be changed: last change 0 (`chage -d 0`, `passwd -e`) or older than the
//!   maximum age (field 5), or older than that plus the inactivity period (field 7) — as
//!   pam_unix's account check decides, since a mail client cannot change a password;
//! * the account is root's (uid 0).
//!
//! The reason goes to the log; the client only sees a failed login, as for a wrong password.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use zeroize::Zeroizing;

use crate::cache::FileCache;
use crate::crypt::{self, CryptProblem};
use crate::{AuthError, AuthOutcome, PassDb, UserRecord};

/// Where the system keeps its password hashes.
pub const DEFAULT_PATH: &str = "/etc/shadow";

/// The `shadow` passdb.
pub struct ShadowPassDb {
    file: FileCache<Shadow>,
}

impl std::fmt::Debug for ShadowPassDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShadowPassDb")
            .field("path", &self.file.path())
            .finish_non_exhaustive()
    }
}

/// One line of the file. Dates are days since 1970-01-01; `None` is an empty field.
#[derive(Clone)]
struct Entry {
    hash: Zeroizing<String>,
    last_change: Option<i64>,
    max_age: Option<i64>,
    inactive: Option<i64>,
    expire: Option<i64>,
}

struct Shadow {
    users: HashMap<String, Entry>,
    /// A real hash of the file, checked when the user is unknown so that the answer takes as
    /// long as for a known user.
    dummy: Option<Zeroizing<String>>,
}

impl ShadowPassDb {
    /// The shadow file at `path`, read at the first lookup.
    pub fn new(path: impl Into<PathBuf>) -> ShadowPassDb {
        ShadowPassDb {
            file: FileCache::new(path.into()),
        }
    }

    /// The shadow file at `path`, read now: an unreadable file (not running as root) is
    /// reported at start rather than at the first login.
    pub fn open(path: impl Into<PathBuf>) -> Result<ShadowPassDb, AuthError> {
        let db = ShadowPassDb::new(path);
        db.snapshot()?;
        Ok(db)
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    fn snapshot(&self) -> Result<Arc<Shadow>, AuthError> {
        self.file.get(parse)
    }
}

impl PassDb for ShadowPassDb {
    fn verify_plain(&self, user: &str, password: &[u8]) -> Result<AuthOutcome, AuthError> {
        let shadow = self.snapshot()?;
        let dummy = || {
            if let Some(hash) = &shadow.dummy {
                let _ = std::hint::black_box(crypt::verify(hash, password));
            }
        };
        let Some(entry) = shadow.users.get(user) else {
            dummy();
            return Ok(AuthOutcome::UnknownUser);
        };
        if crate::system::lookup_user_uid(user) == Some(0) {
            dummy();
            tracing::warn!(user, "shadow: refusing a login as a uid 0 account");
            return Ok(AuthOutcome::WrongPassword);
        }
        // A locked account keeps its hash behind the `!`: check it anyway, for the time it
        // takes and so the log can say whether the password was right.
        let hash = entry.hash.trim_start_matches(['!', '*']);
        let password_ok = if hash.starts_with('$') || hash.len() == 13 {
            match crypt::verify(hash, password) {
                Ok(matched) => matched,
                Err(CryptProblem::Disabled) => {
                    return Err(AuthError::UnsupportedScheme(format!(
                        "crypt method of {user} in {}",
                        self.path().display()
                    )));
                }
                Err(CryptProblem::Invalid) => {
                    tracing::warn!(user, file = %self.path().display(), "shadow: unusable password hash");
                    false
                }
            }
        } else {
            dummy();
            false
        };
        if let Err(reason) = entry.usable(today()) {
            tracing::info!(user, reason, password_ok, "shadow: account may not log in");
            return Ok(AuthOutcome::WrongPassword);
        }
        Ok(if password_ok {
            AuthOutcome::Success(UserRecord::named(user))
        } else {
            AuthOutcome::WrongPassword
        })
    }
}

/// Days since 1970-01-01, as shadow(5) counts.
fn today() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| (d.as_secs() / 86_400) as i64)
}

impl Entry {
    /// Whether the account may log in on `today`, as pam_unix's account management decides.
    fn usable(&self, today: i64) -> Result<(), &'static str> {
        let hash = self.hash.as_str();
        if hash.is_empty() {
            return Err("no password set");
        }
        if hash.starts_with('!') || hash.starts_with('*') {
            return Err("account locked");
        }
        if let Some(expire) = self.expire
            && today >= expire
        {
            return Err("account expired");
        }
        if let Some(last) = self.last_change {
            if last == 0 {
                return Err("password must be changed");
            }
            if let Some(max) = self.max_age {
                let age = today - last;
                if let Some(inactive) = self.inactive
                    && age > max.saturating_add(inactive)
                {
                    return Err("password expired and account inactive");
                }
                if age > max {
                    return Err("password expired");
                }
            }
        }
        Ok(())
    }
}

/// Parses the file: one `name:hash:lastchg:min:max:warn:inactive:expire:reserved` a line.
/// Missing trailing fields are empty; NIS `+`/`-` lines and malformed lines are skipped with a
/// warning; the first line of a user wins, as getspnam(3) finds it.
fn parse(path: &Path, content: &[u8]) -> Shadow {
    let mut users = HashMap::new();
    let mut dummy = None;
    for (index, raw) in content.split(|&b| b == b'\n').enumerate() {
        let line_no = index + 1;
        let warn = |reason: &str| {
            tracing::warn!(file = %path.display(), line = line_no, reason, "shadow: skipping line");
        };
        if raw.is_empty() || raw.starts_with(b"#") {
            continue;
        }
        if raw.starts_with(b"+") || raw.starts_with(b"-") {
            warn("NIS compatibility lines are not supported");
            continue;
        }
        let Ok(line) = std::str::from_utf8(raw) else {
            warn("not UTF-8");
            continue;
        };
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() < 2 || fields.len() > 9 {
            warn("not 2 to 9 colon-separated fields");
            continue;
        }
        let name = fields[0];
        if name.is_empty() || name.chars().any(char::is_control) {
            warn("invalid user name");
            continue;
        }
        let number = |i: usize| -> Result<Option<i64>, ()> {
            match fields.get(i).copied().unwrap_or("") {
                "" => Ok(None),
                text => match text.parse::<i64>() {
                    // Some tools write -1 for "not set".
                    Ok(n) if n < 0 => Ok(None),
                    Ok(n) => Ok(Some(n)),
                    Err(_) => Err(()),
                },
            }
        };
        let (Ok(last_change), Ok(max_age), Ok(inactive), Ok(expire)) =
            (number(2), number(4), number(6), number(7))
        else {
            warn("a date or age field is not a number");
            continue;
        };
        if users.contains_key(name) {
            warn("user exists more than once; the first line wins");
            continue;
        }
        let hash = Zeroizing::new(fields[1].to_owned());
        if dummy.is_none() && hash.starts_with('$') {
            dummy = Some(hash.clone());
        }
        users.insert(
            name.to_owned(),
            Entry {
                hash,
                last_change,
                max_age,
                inactive,
                expire,
            },
        );
    }
    tracing::debug!(file = %path.display(), users = users.len(), "shadow file read");
    Shadow { users, dummy }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(line: &str) -> Entry {
        let shadow = parse(Path::new("test"), line.as_bytes());
        let name = line.split(':').next().unwrap();
        shadow.users.get(name).cloned().unwrap()
    }

    #[test]
    fn account_states() {
        let today = 20_000;
        for (line, expected) in [
            ("a:$y$x:19000:0:99999:7:::", Ok(())),
            ("a:$y$x", Ok(())),
            ("a:$y$x:::::::", Ok(())),
            ("a::19000:0:99999:7:::", Err("no password set")),
            ("a:!$y$x:19000:0:99999:7:::", Err("account locked")),
            ("a:!:19000::::::", Err("account locked")),
            ("a:*:19000::::::", Err("account locked")),
            ("a:$y$x:19000:0:99999:7::19999:", Err("account expired")),
            ("a:$y$x:19000:0:99999:7::20000:", Err("account expired")),
            ("a:$y$x:19000:0:99999:7::20001:", Ok(())),
            ("a:$y$x:19000:0:99999:7::0:", Err("account expired")),
            ("a:$y$x:0:0:99999:7:::", Err("password must be changed")),
            ("a:$y$x:19000:0:999:7:::", Err("password expired")),
            ("a:$y$x:19000:0:1000:7:::", Ok(())),
            (
                "a:$y$x:19000:0:900:7:50::",
                Err("password expired and account inactive"),
            ),
            ("a:$y$x:19000:0:900:7:200::", Err("password expired")),
            ("a:$y$x:19000:0:-1:7:::", Ok(())),
            ("a:$y$x::0:1:7:::", Ok(())),
        ] {
            assert_eq!(entry(line).usable(today), expected, "{line}");
        }
    }

    #[test]
    fn parse_skips_bad_lines_and_keeps_the_first() {
        let content = b"root:*:19000:0:99999:7:::\n\
            \n\
            +nis::::::::\n\
            bad\n\
            toomany:a:1:2:3:4:5:6:7:8\n\
            nodate:$y$x:soon::::::\n\
            \xff\xfe:$y$x\n\
            alice:$y$first:19000::::::\n\
            alice:$y$second:19000::::::\n\
            bob:$6$s$h:19000:0:99999:7:::\n";
        let shadow = parse(Path::new("test"), content);
        let mut names: Vec<&String> = shadow.users.keys().collect();
        names.sort();
        assert_eq!(names, ["alice", "bob", "root"]);
        assert_eq!(shadow.users["alice"].hash.as_str(), "$y$first");
        assert_eq!(
            shadow.dummy.as_deref().map(String::as_str),
            Some("$y$first")
        );
    }
}
