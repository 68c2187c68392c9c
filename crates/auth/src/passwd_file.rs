//! Dovecot-format passwd-file (`user:{SCHEME}hash:uid:gid:gecos:home:shell:extra`).
//!
//! The format is Dovecot's (`src/auth/db-passwd-file.c`, "passwd-file" in its documentation):
//! one user a line, colon-separated, every field after the password optional:
//!
//! ```text
//! # comment
//! user:{SHA512-CRYPT}$6$...:1000:1000:Gecos:/home/user:/bin/false:userdb_mail=maildir:~/Mail quota=1G
//! ```
//!
//! * `#` lines, blank lines and lines starting with `:` are skipped;
//! * a password without `{SCHEME}` is a crypt(3) string; libpam-pwdfile's `hash[NN]` suffix is
//!   understood as Dovecot does (`[34]` = `PLAIN-MD5`, anything else `CRYPT`);
//! * uid and gid are numbers or user/group names; 0 (root) is refused, as Dovecot's userdb does;
//! * the extra fields are everything after the seventh colon (colons included), split at spaces
//!   into `key=value` (a bare `key` gets an empty value); an empty eighth field followed by a
//!   ninth is the old format, whose ninth field is `userdb_mail`.
//!
//! A malformed line is skipped with a warning naming the file and line; the first of duplicate
//! users wins. User names are compared after lower-casing (Dovecot's default
//! `auth_username_format = %Lu`); the record keeps the file's spelling.
//!
//! [`PasswdFile`] re-reads the file whenever a `stat()` (one per lookup) shows a different
//! device, inode, size, mtime or ctime. The admin helpers ([`add_user`], [`remove_user`],
//! [`set_password`]) rewrite it crash-safely: a temporary file in the same directory, fsync,
//! rename over the original, fsync of the directory — under an exclusive `flock` of the
//! directory, so concurrent edits do not lose each other's changes.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cache::FileCache;
use crate::system::{resolve_gid, resolve_uid};
use crate::{AuthError, AuthOutcome, CredentialLookup, PassDb, UserDb, UserRecord, scheme};

/// The longest user name accepted, in bytes.
pub const MAX_USER_NAME: usize = 255;

/// A passwd-file used as password and user database.
pub struct PasswdFile {
    file: FileCache<Snapshot>,
}

impl std::fmt::Debug for PasswdFile {
    /// Shows the path only: the cache holds password hashes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswdFile")
            .field("path", &self.file.path())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
struct Entry {
    record: UserRecord,
    /// The stored hash; `None` when the line has no (or an empty) password field, so nobody
    /// can log in as this user.
    password: Option<String>,
}

#[derive(Debug)]
struct Snapshot {
    /// Keyed by the lower-cased user name.
    users: HashMap<String, Entry>,
    /// A real stored hash (the first user's), verified against the offered password when the
    /// user is unknown, so that the answer takes as long as for a known user.
    dummy: Option<String>,
}

impl Snapshot {
    fn dummy_verify(&self, password: &[u8]) {
        if let Some(stored) = &self.dummy {
            let _ = std::hint::black_box(scheme::verify(stored, password));
        }
    }
}

impl PasswdFile {
    /// A passwd-file at `path`, read at the first lookup.
    pub fn new(path: impl Into<PathBuf>) -> PasswdFile {
        PasswdFile {
            file: FileCache::new(path.into()),
        }
    }

    /// A passwd-file at `path`, read now, so a missing or unreadable file is reported at start.
    pub fn open(path: impl Into<PathBuf>) -> Result<PasswdFile, AuthError> {
        let file = PasswdFile::new(path);
        file.snapshot()?;
        Ok(file)
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// The user's record (the userdb side), without checking any password.
    pub fn lookup(&self, user: &str) -> Result<Option<UserRecord>, AuthError> {
        let snapshot = self.snapshot()?;
        Ok(snapshot
            .users
            .get(&user.to_lowercase())
            .map(|e| e.record.clone()))
    }

    /// How many users the file currently holds.
    pub fn user_count(&self) -> Result<usize, AuthError> {
        Ok(self.snapshot()?.users.len())
    }

    /// The current contents, re-read if `stat()` shows the file changed.
    fn snapshot(&self) -> Result<Arc<Snapshot>, AuthError> {
        self.file.get(|path, content| {
            let entries = parse(path, content);
            let dummy = entries.iter().find_map(|e| e.password.clone());
            let users = entries
                .into_iter()
                .map(|e| (e.record.name.to_lowercase(), e))
                .collect();
            tracing::debug!(file = %path.display(), "passwd-file read");
            Snapshot { users, dummy }
        })
    }
}

impl PassDb for PasswdFile {
    /// Checks a plaintext password. Unknown users and users without a password still cost one
    /// hash verification. A stored hash in an unsupported scheme is an error (logged by the
    /// caller), not a wrong password.
    fn verify_plain(&self, user: &str, password: &[u8]) -> Result<AuthOutcome, AuthError> {
        let snapshot = self.snapshot()?;
        match snapshot.users.get(&user.to_lowercase()) {
            Some(Entry {
                record,
                password: Some(stored),
            }) => Ok(if scheme::verify(stored, password)? {
                AuthOutcome::Success(record.clone())
            } else {
                AuthOutcome::WrongPassword
            }),
            Some(Entry { password: None, .. }) => {
                snapshot.dummy_verify(password);
                Ok(AuthOutcome::WrongPassword)
            }
            None => {
                snapshot.dummy_verify(password);
                Ok(AuthOutcome::UnknownUser)
            }
        }
    }

    /// A passwd-file can hold `{PLAIN}` passwords and `{SCRAM-SHA-*}` keys.
    fn supports_credentials(&self) -> bool {
        true
    }

    fn lookup_credentials(&self, user: &str) -> Result<CredentialLookup, AuthError> {
        let snapshot = self.snapshot()?;
        Ok(match snapshot.users.get(&user.to_lowercase()) {
            None => CredentialLookup::UnknownUser,
            Some(Entry { password: None, .. }) => CredentialLookup::NotAvailable,
            Some(Entry {
                record,
                password: Some(stored),
            }) => match scheme::stored_secret(stored) {
                Some(secret) => CredentialLookup::Found {
                    secret,
                    record: record.clone(),
                },
                None => CredentialLookup::NotAvailable,
            },
        })
    }
}

impl UserDb for PasswdFile {
    fn lookup(&self, user: &str) -> Result<Option<UserRecord>, AuthError> {
        PasswdFile::lookup(self, user)
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// Parses the whole file: valid entries in file order, duplicates dropped (first wins), with a
/// warning for every skipped line.
fn parse(path: &Path, content: &[u8]) -> Vec<Entry> {
    let mut seen = std::collections::HashSet::new();
    let mut entries = Vec::new();
    for (index, raw) in content.split(|&b| b == b'\n').enumerate() {
        let line_no = index + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let Ok(line) = std::str::from_utf8(raw) else {
            warn_line(path, line_no, "not UTF-8");
            continue;
        };
        match parse_line(line) {
            Ok(None) => {}
            Ok(Some(entry)) => {
                if seen.insert(entry.record.name.to_lowercase()) {
                    entries.push(entry);
                } else {
                    warn_line(
                        path,
                        line_no,
                        "user exists more than once; the first line wins",
                    );
                }
            }
            Err(reason) => warn_line(path, line_no, reason),
        }
    }
    entries
}

fn warn_line(path: &Path, line: usize, reason: &str) {
    tracing::warn!(file = %path.display(), line, reason, "passwd-file: skipping line");
}

/// Whether a line holds no user: blank, a comment, or no user name (`:...`).
fn is_skipped(line: &str) -> bool {
    line.trim().is_empty() || line.starts_with('#') || line.starts_with(':')
}

fn parse_line(line: &str) -> Result<Option<Entry>, &'static str> {
    if is_skipped(line) {
        return Ok(None);
    }
    let fields: Vec<&str> = line.split(':').collect();
    let name = fields[0];
    validate_user_name(name).map_err(|e| match e {
        AdminError::InvalidUserName(reason) => reason,
        _ => "invalid user name",
    })?;
    let password = fields
        .get(1)
        .filter(|p| !p.is_empty())
        .map(|p| libpam_pwdfile_compat(p));
    let field = |i: usize| fields.get(i).copied().filter(|f| !f.is_empty());
    let uid = match field(2) {
        None => None,
        Some(f) => Some(
            resolve_uid(f)
                .filter(|&id| id != 0)
                .ok_or("invalid UID (unknown, or 0)")?,
        ),
    };
    let gid = match field(3) {
        None => None,
        Some(f) => Some(
            resolve_gid(f)
                .filter(|&id| id != 0)
                .ok_or("invalid GID (unknown, or 0)")?,
        ),
    };
    let home = field(5).map(PathBuf::from);
    let mut extra = Vec::new();
    if fields.len() > 7 {
        if fields[7].is_empty() {
            // Old format: an empty field, then the mail location.
            let mail = fields[8..].join(":");
            if !mail.is_empty() {
                extra.push(("userdb_mail".to_owned(), mail));
            }
        } else {
            for item in fields[7..].join(":").split_whitespace() {
                let (key, value) = item.split_once('=').unwrap_or((item, ""));
                extra.push((key.to_owned(), value.to_owned()));
            }
        }
    }
    Ok(Some(Entry {
        record: UserRecord {
            name: name.to_owned(),
            uid,
            gid,
            home,
            extra,
        },
        password,
    }))
}

/// libpam-pwdfile writes `hash[NN]`: `[34]` is MD5 (hex), `[13]` DES; Dovecot reads any other
/// number as CRYPT. (`[56]`, Dovecot's old DIGEST-MD5, becomes an unsupported scheme.)
fn libpam_pwdfile_compat(pass: &str) -> String {
    let b = pass.as_bytes();
    let n = b.len();
    if n > 4
        && b[0] != b'{'
        && b[0] != b'$'
        && b[n - 1] == b']'
        && b[n - 4] == b'['
        && b[n - 3].is_ascii_digit()
        && b[n - 2].is_ascii_digit()
    {
        let hash = &pass[..n - 4];
        return match &b[n - 3..n - 1] {
            b"34" => format!("{{PLAIN-MD5}}{hash}"),
            b"56" => format!("{{DIGEST-MD5}}{hash}"),
            _ => format!("{{CRYPT}}{hash}"),
        };
    }
    pass.to_owned()
}

// ---------------------------------------------------------------------------------------------
// Administration (`columba user add/list/del/passwd`)

/// Why an administrative change to a passwd-file failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("passwd-file {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("user {0} already exists")]
    UserExists(String),
    #[error("no such user {0}")]
    NoSuchUser(String),
    #[error("invalid user name: {0}")]
    InvalidUserName(&'static str),
    #[error("invalid {field}: {reason}")]
    InvalidField {
        field: &'static str,
        reason: &'static str,
    },
}

/// The optional columns of a new user's line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFields {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Must be absolute.
    pub home: Option<PathBuf>,
    /// `key=value` extra fields (an empty value writes a bare `key`).
    pub extra: Vec<(String, String)>,
}

/// Checks a user name for a passwd-file: not empty, at most [`MAX_USER_NAME`] bytes, no `:`,
/// no `/`, no control characters, no surrounding white space, and not starting with `#`.
pub fn validate_user_name(name: &str) -> Result<(), AdminError> {
    let reason = if name.is_empty() {
        "empty"
    } else if name.len() > MAX_USER_NAME {
        "longer than 255 bytes"
    } else if name.contains(':') {
        "contains ':'"
    } else if name.contains('/') {
        "contains '/'"
    } else if name.chars().any(char::is_control) {
        "contains a control character"
    } else if name.starts_with('#') {
        "starts with '#'"
    } else if name.trim() != name {
        "starts or ends with white space"
    } else {
        return Ok(());
    };
    Err(AdminError::InvalidUserName(reason))
}

fn validate_hash(hash: &str) -> Result<(), AdminError> {
    let reason = if hash.is_empty() {
        "empty"
    } else if hash.contains(':') {
        "contains ':'"
    } else if hash.chars().any(char::is_control) {
        "contains a control character"
    } else if hash.trim() != hash {
        "starts or ends with white space"
    } else {
        return Ok(());
    };
    Err(AdminError::InvalidField {
        field: "password hash",
        reason,
    })
}

/// The line for a new user, trailing empty fields omitted.
fn format_line(name: &str, hash: &str, fields: &UserFields) -> Result<String, AdminError> {
    let invalid = |field, reason| Err(AdminError::InvalidField { field, reason });
    if fields.uid == Some(0) {
        return invalid("uid", "0 (root) is not allowed");
    }
    if fields.gid == Some(0) {
        return invalid("gid", "0 (root) is not allowed");
    }
    let home = match &fields.home {
        None => String::new(),
        Some(h) => {
            let Some(text) = h.to_str() else {
                return invalid("home", "not UTF-8");
            };
            if !h.is_absolute() {
                return invalid("home", "not an absolute path");
            }
            if text.contains(':') || text.chars().any(char::is_control) {
                return invalid("home", "contains ':' or a control character");
            }
            text.to_owned()
        }
    };
    let mut extra = Vec::new();
    for (key, value) in &fields.extra {
        let bad_char = |c: char| c.is_whitespace() || c.is_control();
        if key.is_empty() || key.contains(['=', ':']) || key.chars().any(bad_char) {
            return invalid(
                "extra field",
                "key is empty or contains '=', ':' or white space",
            );
        }
        if value.chars().any(bad_char) {
            return invalid("extra field", "value contains white space");
        }
        extra.push(if value.is_empty() {
            key.clone()
        } else {
            format!("{key}={value}")
        });
    }
    let columns = [
        name.to_owned(),
        hash.to_owned(),
        fields.uid.map(|u| u.to_string()).unwrap_or_default(),
        fields.gid.map(|g| g.to_string()).unwrap_or_default(),
        String::new(),
        home,
        String::new(),
        extra.join(" "),
    ];
    let used = columns
        .iter()
        .rposition(|c| !c.is_empty())
        .map_or(0, |i| i + 1);
    Ok(columns[..used.max(2)].join(":"))
}

/// The lower-cased user name a raw line defines, if any.
fn line_user(line: &[u8]) -> Option<String> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let name_end = line.iter().position(|&b| b == b':').unwrap_or(line.len());
    let text = std::str::from_utf8(line).ok()?;
    if is_skipped(text) {
        return None;
    }
    Some(text[..name_end].to_lowercase())
}

/// Adds a user. Fails with [`AdminError::UserExists`] if the name is taken (case-insensitively).
/// Creates the file with mode 0600 if it does not exist.
pub fn add_user(
    path: &Path,
    name: &str,
    password_hash: &str,
    fields: &UserFields,
) -> Result<(), AdminError> {
    validate_user_name(name)?;
    validate_hash(password_hash)?;
    let line = format_line(name, password_hash, fields)?;
    let key = name.to_lowercase();
    rewrite(path, |content| {
        let mut content = content.unwrap_or_default();
        if content
            .split(|&b| b == b'\n')
            .any(|l| line_user(l).as_deref() == Some(&key))
        {
            return Err(AdminError::UserExists(name.to_owned()));
        }
        if !content.is_empty() && !content.ends_with(b"\n") {
            content.push(b'\n');
        }
        content.extend_from_slice(line.as_bytes());
        content.push(b'\n');
        Ok(content)
    })
}

/// Removes every line defining `name` (case-insensitively).
pub fn remove_user(path: &Path, name: &str) -> Result<(), AdminError> {
    let key = name.to_lowercase();
    rewrite(path, |content| {
        let content = content.ok_or_else(|| AdminError::NoSuchUser(name.to_owned()))?;
        let lines: Vec<&[u8]> = content.split(|&b| b == b'\n').collect();
        let kept: Vec<&[u8]> = lines
            .iter()
            .copied()
            .filter(|l| line_user(l).as_deref() != Some(&key))
            .collect();
        if kept.len() == lines.len() {
            return Err(AdminError::NoSuchUser(name.to_owned()));
        }
        Ok(kept.join(&b'\n'))
    })
}

/// Replaces the password field of the line defining `name`, keeping the rest of the line.
pub fn set_password(path: &Path, name: &str, password_hash: &str) -> Result<(), AdminError> {
    validate_hash(password_hash)?;
    let key = name.to_lowercase();
    rewrite(path, |content| {
        let content = content.ok_or_else(|| AdminError::NoSuchUser(name.to_owned()))?;
        let mut lines: Vec<Vec<u8>> = content.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
        let line = lines
            .iter_mut()
            .find(|l| line_user(l).as_deref() == Some(&key))
            .ok_or_else(|| AdminError::NoSuchUser(name.to_owned()))?;
        let cr = line.ends_with(b"\r");
        if cr {
            line.pop();
        }
        let mut new = Vec::with_capacity(line.len() + password_hash.len());
        match line.iter().position(|&b| b == b':') {
            None => {
                new.extend_from_slice(line);
                new.push(b':');
                new.extend_from_slice(password_hash.as_bytes());
            }
            Some(name_end) => {
                new.extend_from_slice(&line[..=name_end]);
                new.extend_from_slice(password_hash.as_bytes());
                let after = &line[name_end + 1..];
                if let Some(pass_end) = after.iter().position(|&b| b == b':') {
                    new.extend_from_slice(&after[pass_end..]);
                }
            }
        }
        if cr {
            new.push(b'\r');
        }
        *line = new;
        Ok(lines.join(&b'\n'))
    })
}

/// The users in the file, in file order, as the server would read them (malformed lines and
/// duplicates skipped with a warning). A missing file has no users.
pub fn list_users(path: &Path) -> Result<Vec<UserRecord>, AdminError> {
    let content = match fs::read(path) {
        Ok(c) => c,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(AdminError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    Ok(parse(path, &content)
        .into_iter()
        .map(|e| e.record)
        .collect())
}

/// Replaces the file with `edit(current contents)` crash-safely: temp file in the same
/// directory, fsync, rename, fsync the directory, all under an exclusive lock on the directory.
/// The file keeps its mode and owner; a new file gets mode 0600.
fn rewrite(
    path: &Path,
    edit: impl FnOnce(Option<Vec<u8>>) -> Result<Vec<u8>, AdminError>,
) -> Result<(), AdminError> {
    let io_err = |p: &Path| {
        let p = p.to_owned();
        move |source| AdminError::Io { path: p, source }
    };
    // Edit the file a symlink points to, not the link.
    let target = match fs::canonicalize(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => path.to_owned(),
        Err(e) => return Err(io_err(path)(e)),
    };
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let file_name = target
        .file_name()
        .ok_or_else(|| io_err(path)(io::Error::other("not a file name")))?
        .to_owned();

    let dir_handle = File::open(&dir).map_err(io_err(&dir))?;
    dir_handle.lock().map_err(io_err(&dir))?;

    let (existing, meta) = match File::open(&target) {
        Ok(mut f) => {
            let meta = f.metadata().map_err(io_err(&target))?;
            let mut content = Vec::new();
            f.read_to_end(&mut content).map_err(io_err(&target))?;
            (Some(content), Some(meta))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => (None, None),
        Err(e) => return Err(io_err(&target)(e)),
    };
    let content = edit(existing)?;

    let mut suffix = [0u8; 6];
    getrandom::getrandom(&mut suffix).map_err(|e| io_err(&dir)(io::Error::other(e.to_string())))?;
    let tmp_name = format!(
        ".{}.tmp-{}-{}",
        file_name.to_string_lossy(),
        std::process::id(),
        suffix
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let tmp = dir.join(tmp_name);
    let result = write_replace(&tmp, &target, &content, meta.as_ref(), &dir_handle);
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(|(p, source)| AdminError::Io { path: p, source })
}

fn write_replace(
    tmp: &Path,
    target: &Path,
    content: &[u8],
    original: Option<&fs::Metadata>,
    dir: &File,
) -> Result<(), (PathBuf, io::Error)> {
    let at = |p: &Path| {
        let p = p.to_owned();
        move |e| (p, e)
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)
        .map_err(at(tmp))?;
    if let Some(meta) = original {
        let mine = file.metadata().map_err(at(tmp))?;
        if (mine.uid(), mine.gid()) != (meta.uid(), meta.gid()) {
            std::os::unix::fs::fchown(&file, Some(meta.uid()), Some(meta.gid()))
                .map_err(at(tmp))?;
        }
        file.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(at(tmp))?;
    }
    file.write_all(content).map_err(at(tmp))?;
    file.sync_all().map_err(at(tmp))?;
    drop(file);
    fs::rename(tmp, target).map_err(at(target))?;
    dir.sync_all().map_err(at(target))?;
    Ok(())
}
