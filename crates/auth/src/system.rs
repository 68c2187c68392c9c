//! The system's user database through NSS (`getpwnam_r`, `getgrnam_r`): the `passwd` userdb
//! (uid, gid and home of a Unix account, Dovecot's `userdb passwd`) and the name lookups the
//! other databases need.

use std::ffi::{CStr, CString, c_char};
use std::path::PathBuf;

use crate::{AuthError, UserDb, UserRecord};

/// A Unix account as `getpwnam` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    pub shell: String,
}

/// The largest buffer offered to `get*nam_r`; NSS records beyond this are not real.
const MAX_NSS_BUFFER: usize = 1 << 20;

/// Runs a `get*nam_r` lookup, growing the buffer on `ERANGE`. `Err(errno)` for a failed lookup
/// (not for a missing entry, which is `Ok(None)`).
fn nss_lookup<T>(
    mut call: impl FnMut(&mut [c_char]) -> Result<Option<T>, i32>,
) -> Result<Option<T>, i32> {
    let mut buf: Vec<c_char> = vec![0; 4096];
    loop {
        match call(&mut buf) {
            Err(libc::ERANGE) if buf.len() < MAX_NSS_BUFFER => {
                let grown = buf.len() * 2;
                buf.resize(grown, 0);
            }
            // getpwnam_r(3): these mean "not found" on some NSS modules.
            Err(libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM) => return Ok(None),
            other => return other,
        }
    }
}

/// `getpwnam_r(name)`. A name that cannot be a C string is simply not found.
pub fn lookup_user(name: &str) -> Result<Option<SystemUser>, AuthError> {
    let Ok(cname) = CString::new(name) else {
        return Ok(None);
    };
    nss_lookup(|buf| {
        // SAFETY: getpwnam_r writes only into `pwd`, `buf` (of the given length) and `result`,
        // all live for the call; `cname` is NUL-terminated. On success the strings `pwd` points
        // to live in `buf`, and are copied out before `buf` is touched again.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = unsafe {
            libc::getpwnam_r(
                cname.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        match rc {
            0 if result.is_null() => Ok(None),
            0 => {
                // SAFETY: non-null fields of a successful lookup are NUL-terminated strings in
                // `buf`.
                let text = |p: *const c_char| {
                    if p.is_null() {
                        String::new()
                    } else {
                        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
                    }
                };
                Ok(Some(SystemUser {
                    name: text(pwd.pw_name),
                    uid: pwd.pw_uid,
                    gid: pwd.pw_gid,
                    home: PathBuf::from(text(pwd.pw_dir)),
                    shell: text(pwd.pw_shell),
                }))
            }
            e => Err(e),
        }
    })
    .map_err(|errno| AuthError::Backend {
        backend: "getpwnam",
        reason: std::io::Error::from_raw_os_error(errno).to_string(),
    })
}

/// The uid of the account `name`, if there is one.
pub(crate) fn lookup_user_uid(name: &str) -> Option<u32> {
    lookup_user(name).ok().flatten().map(|u| u.uid)
}

/// The gid of the group `name`, if there is one.
pub(crate) fn lookup_group_gid(name: &str) -> Option<u32> {
    let cname = CString::new(name).ok()?;
    nss_lookup(|buf| {
        // SAFETY: as in lookup_user, for getgrnam_r; only the gid is read.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        let rc = unsafe {
            libc::getgrnam_r(
                cname.as_ptr(),
                &mut grp,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        match rc {
            0 if result.is_null() => Ok(None),
            0 => Ok(Some(grp.gr_gid)),
            e => Err(e),
        }
    })
    .ok()
    .flatten()
}

/// A uid or gid given as a number or as a user or group name (`"vmail"`, `"5000"`).
pub fn resolve_uid(text: &str) -> Option<u32> {
    resolve(text, lookup_user_uid)
}

/// See [`resolve_uid`].
pub fn resolve_gid(text: &str) -> Option<u32> {
    resolve(text, lookup_group_gid)
}

fn resolve(text: &str, by_name: fn(&str) -> Option<u32>) -> Option<u32> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    by_name(text)
}

/// The `passwd` userdb: uid, gid and home from the system's account database. The mail
/// location of such users is usually `%h/Maildir`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PasswdUserDb;

impl UserDb for PasswdUserDb {
    fn lookup(&self, user: &str) -> Result<Option<UserRecord>, AuthError> {
        Ok(lookup_user(user)?.map(|u| UserRecord {
            name: u.name,
            uid: Some(u.uid),
            gid: Some(u.gid),
            home: Some(u.home),
            extra: Vec::new(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_missing_users() {
        let root = lookup_user("root").unwrap().unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        assert_eq!(root.home, PathBuf::from("/root"));
        assert_eq!(lookup_user("no-such-user-columba-test").unwrap(), None);
        assert_eq!(lookup_user("nul\0name").unwrap(), None);
        assert_eq!(lookup_user("").unwrap(), None);
        let rec = PasswdUserDb.lookup("root").unwrap().unwrap();
        assert_eq!(rec.uid, Some(0));
    }

    #[test]
    fn resolve_numbers_and_names() {
        assert_eq!(resolve_uid("1234"), Some(1234));
        assert_eq!(resolve_uid("root"), Some(0));
        assert_eq!(resolve_gid("root"), Some(0));
        assert_eq!(resolve_uid("no-such-user-columba-test"), None);
        assert_eq!(resolve_uid(""), None);
        assert_eq!(resolve_uid("99999999999"), None);
    }
}
