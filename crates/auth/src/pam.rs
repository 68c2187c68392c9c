//! The `pam` passdb: passwords checked by the system's PAM stack (Linux-PAM, Debian's
//! `libpam0g`) under a service name (default `columba`, so `/etc/pam.d/columba`; without that
//! file PAM uses `/etc/pam.d/other`, which on Debian includes the `common-*` stacks).
//!
//! Each login runs `pam_authenticate` and then `pam_acct_mgmt` (expired accounts and passwords,
//! `pam_nologin`, access lists), both with `PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK`, and takes
//! the user name PAM ends with (`PAM_USER`; a module may rename). PAM's own failure delay is
//! switched off: the server's per-address penalty does that job for every passdb alike.
//!
//! PAM modules are not all thread-safe, so transactions are serialised here; the auth process
//! of the planned process model can run several. PAM needs privileges (pam_unix reads
//! `/etc/shadow` as root, or through its setgid helper `unix_chkpwd` for the calling user only).
//!
//! libpam is linked by its run-time name, `libpam.so.0`, so that building needs no `-dev`
//! package.

use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_void};
use std::sync::Mutex;

use zeroize::Zeroizing;

use crate::{AuthError, AuthOutcome, PassDb, UserRecord};

/// The service name used when none is configured.
pub const DEFAULT_SERVICE: &str = "columba";

const PAM_SUCCESS: c_int = 0;
const PAM_BUF_ERR: c_int = 5;
const PAM_PERM_DENIED: c_int = 6;
const PAM_AUTH_ERR: c_int = 7;
const PAM_CRED_INSUFFICIENT: c_int = 8;
const PAM_USER_UNKNOWN: c_int = 10;
const PAM_MAXTRIES: c_int = 11;
const PAM_NEW_AUTHTOK_REQD: c_int = 12;
const PAM_ACCT_EXPIRED: c_int = 13;
const PAM_CONV_ERR: c_int = 19;
const PAM_AUTHTOK_EXPIRED: c_int = 27;

const PAM_USER: c_int = 2;
const PAM_FAIL_DELAY: c_int = 10;

const PAM_SILENT: c_int = 0x8000;
const PAM_DISALLOW_NULL_AUTHTOK: c_int = 0x0001;

const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_PROMPT_ECHO_ON: c_int = 2;
const PAM_ERROR_MSG: c_int = 3;
const PAM_TEXT_INFO: c_int = 4;
const PAM_MAX_NUM_MSG: c_int = 32;

#[repr(C)]
struct PamMessage {
    msg_style: c_int,
    msg: *const c_char,
}

#[repr(C)]
struct PamResponse {
    resp: *mut c_char,
    resp_retcode: c_int,
}

type ConvFn = unsafe extern "C" fn(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata: *mut c_void,
) -> c_int;

#[repr(C)]
struct PamConv {
    conv: Option<ConvFn>,
    appdata_ptr: *mut c_void,
}

#[repr(C)]
struct PamHandle {
    _private: [u8; 0],
}

#[link(name = "libpam.so.0", kind = "dylib", modifiers = "+verbatim")]
unsafe extern "C" {
    fn pam_start(
        service: *const c_char,
        user: *const c_char,
        conv: *const PamConv,
        pamh: *mut *mut PamHandle,
    ) -> c_int;
    fn pam_end(pamh: *mut PamHandle, status: c_int) -> c_int;
    fn pam_authenticate(pamh: *mut PamHandle, flags: c_int) -> c_int;
    fn pam_acct_mgmt(pamh: *mut PamHandle, flags: c_int) -> c_int;
    fn pam_set_item(pamh: *mut PamHandle, item_type: c_int, item: *const c_void) -> c_int;
    fn pam_get_item(pamh: *mut PamHandle, item_type: c_int, item: *mut *const c_void) -> c_int;
    fn pam_strerror(pamh: *mut PamHandle, errnum: c_int) -> *const c_char;
}

/// What the conversation function answers with.
struct ConvData {
    user: CString,
    password: Zeroizing<Vec<u8>>,
}

/// The conversation (pam_conv(3)): the password for hidden prompts, the user name for visible
/// ones, nothing for messages. Responses are allocated with malloc, as PAM frees them.
unsafe extern "C" fn converse(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata: *mut c_void,
) -> c_int {
    if !(1..=PAM_MAX_NUM_MSG).contains(&num_msg) || msg.is_null() || resp.is_null() {
        return PAM_CONV_ERR;
    }
    let count = num_msg as usize;
    // SAFETY: PAM passes back the appdata pointer given to pam_start, a live ConvData.
    let data = unsafe { &*(appdata as *const ConvData) };
    // SAFETY: calloc of `count` zeroed responses; checked for null below.
    let replies =
        unsafe { libc::calloc(count, std::mem::size_of::<PamResponse>()) } as *mut PamResponse;
    if replies.is_null() {
        return PAM_BUF_ERR;
    }
    for i in 0..count {
        // SAFETY: Linux-PAM passes `msg` as an array of `num_msg` message pointers.
        let message = unsafe { *msg.add(i) };
        if message.is_null() {
            // SAFETY: `replies` holds `count` responses, the first `i` possibly filled.
            unsafe { free_replies(replies, count) };
            return PAM_CONV_ERR;
        }
        // SAFETY: a non-null message from PAM is a valid pam_message.
        let style = unsafe { (*message).msg_style };
        let answer: Option<&[u8]> = match style {
            PAM_PROMPT_ECHO_OFF => Some(&data.password),
            PAM_PROMPT_ECHO_ON => Some(data.user.as_bytes()),
            PAM_ERROR_MSG | PAM_TEXT_INFO => None,
            _ => {
                // SAFETY: as above.
                unsafe { free_replies(replies, count) };
                return PAM_CONV_ERR;
            }
        };
        if let Some(bytes) = answer {
            // SAFETY: malloc of len+1 bytes, filled and NUL-terminated; checked for null.
            let copy = unsafe { libc::malloc(bytes.len() + 1) } as *mut u8;
            if copy.is_null() {
                // SAFETY: as above.
                unsafe { free_replies(replies, count) };
                return PAM_BUF_ERR;
            }
            // SAFETY: `copy` has room for the bytes and the NUL; `replies` for `count` entries.
            unsafe {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), copy, bytes.len());
                *copy.add(bytes.len()) = 0;
                (*replies.add(i)).resp = copy.cast();
            }
        }
    }
    // SAFETY: `resp` is PAM's out-pointer; PAM takes ownership of `replies`.
    unsafe { *resp = replies };
    PAM_SUCCESS
}

/// Wipes and frees the responses built so far, then the array.
unsafe fn free_replies(replies: *mut PamResponse, count: usize) {
    for i in 0..count {
        // SAFETY: the caller passes the calloc'ed array of `count` responses.
        let r = unsafe { (*replies.add(i)).resp };
        if !r.is_null() {
            // SAFETY: `r` is a NUL-terminated malloc'ed string this module wrote.
            unsafe {
                let len = libc::strlen(r);
                std::ptr::write_bytes(r, 0, len);
                libc::free(r.cast());
            }
        }
    }
    // SAFETY: allocated by calloc in `converse`.
    unsafe { libc::free(replies.cast()) };
}

/// A PAM_FAIL_DELAY callback that does not sleep: the login penalty delays failures instead.
unsafe extern "C" fn no_fail_delay(_retval: c_int, _usec: c_uint, _appdata: *mut c_void) {}

/// The `pam` passdb.
pub struct PamPassDb {
    service: CString,
    /// One PAM transaction at a time.
    lock: Mutex<()>,
}

impl std::fmt::Debug for PamPassDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PamPassDb")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

/// A PAM handle, ended when dropped.
struct Transaction {
    pamh: *mut PamHandle,
    status: c_int,
}

impl Drop for Transaction {
    fn drop(&mut self) {
        // SAFETY: `pamh` came from a successful pam_start and is ended exactly once.
        unsafe { pam_end(self.pamh, self.status) };
    }
}

impl Transaction {
    fn error(&self, what: &str, status: c_int) -> AuthError {
        // SAFETY: pam_strerror returns a static string for any status.
        let text = unsafe { pam_strerror(self.pamh, status) };
        let text = if text.is_null() {
            format!("status {status}")
        } else {
            // SAFETY: non-null, NUL-terminated.
            unsafe { CStr::from_ptr(text) }
                .to_string_lossy()
                .into_owned()
        };
        AuthError::Backend {
            backend: "pam",
            reason: format!("{what}: {text}"),
        }
    }

    /// The user name PAM ends with.
    fn user(&self) -> Option<String> {
        let mut item: *const c_void = std::ptr::null();
        // SAFETY: `item` receives a pointer PAM owns, valid until pam_end.
        let rc = unsafe { pam_get_item(self.pamh, PAM_USER, &mut item) };
        if rc != PAM_SUCCESS || item.is_null() {
            return None;
        }
        // SAFETY: PAM_USER is a NUL-terminated string.
        let name = unsafe { CStr::from_ptr(item.cast()) };
        name.to_str().ok().map(str::to_owned)
    }
}

impl PamPassDb {
    /// A passdb asking PAM under `service`.
    pub fn new(service: &str) -> Result<PamPassDb, AuthError> {
        if service.is_empty() || service.contains('/') {
            return Err(AuthError::Config(format!(
                "PAM service name {service:?} is not a file name"
            )));
        }
        let service = CString::new(service)
            .map_err(|_| AuthError::Config("PAM service name contains NUL".to_owned()))?;
        Ok(PamPassDb {
            service,
            lock: Mutex::new(()),
        })
    }
}

impl PassDb for PamPassDb {
    fn verify_plain(&self, user: &str, password: &[u8]) -> Result<AuthOutcome, AuthError> {
        let Ok(cuser) = CString::new(user) else {
            return Ok(AuthOutcome::UnknownUser);
        };
        if crate::system::lookup_user_uid(user) == Some(0) {
            tracing::warn!(user, "pam: refusing a login as a uid 0 account");
            return Ok(AuthOutcome::WrongPassword);
        }
        let password = match password.iter().position(|&b| b == 0) {
            Some(nul) => &password[..nul],
            None => password,
        };
        let data = Box::new(ConvData {
            user: cuser.clone(),
            password: Zeroizing::new(password.to_vec()),
        });
        let conv = PamConv {
            conv: Some(converse),
            appdata_ptr: (&*data as *const ConvData).cast_mut().cast(),
        };
        let _serial = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut pamh: *mut PamHandle = std::ptr::null_mut();
        // SAFETY: service and user are NUL-terminated; `conv` and `data` outlive the
        // transaction (both are dropped after `tx`, which ends it).
        let rc = unsafe { pam_start(self.service.as_ptr(), cuser.as_ptr(), &conv, &mut pamh) };
        if rc != PAM_SUCCESS || pamh.is_null() {
            return Err(AuthError::Backend {
                backend: "pam",
                reason: format!("pam_start failed (status {rc})"),
            });
        }
        let mut tx = Transaction {
            pamh,
            status: PAM_SUCCESS,
        };
        let delay: unsafe extern "C" fn(c_int, c_uint, *mut c_void) = no_fail_delay;
        // SAFETY: PAM_FAIL_DELAY takes a function pointer of this signature.
        unsafe { pam_set_item(tx.pamh, PAM_FAIL_DELAY, delay as *const c_void) };
        let flags = PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK;
        // SAFETY: a live handle from pam_start.
        let rc = unsafe { pam_authenticate(tx.pamh, flags) };
        tx.status = rc;
        match rc {
            PAM_SUCCESS => {}
            PAM_USER_UNKNOWN => return Ok(AuthOutcome::UnknownUser),
            PAM_AUTH_ERR | PAM_CRED_INSUFFICIENT | PAM_MAXTRIES | PAM_PERM_DENIED => {
                return Ok(AuthOutcome::WrongPassword);
            }
            other => return Err(tx.error("pam_authenticate", other)),
        }
        // SAFETY: as above.
        let rc = unsafe { pam_acct_mgmt(tx.pamh, flags) };
        tx.status = rc;
        match rc {
            PAM_SUCCESS => {}
            PAM_ACCT_EXPIRED | PAM_NEW_AUTHTOK_REQD | PAM_AUTHTOK_EXPIRED | PAM_PERM_DENIED
            | PAM_USER_UNKNOWN | PAM_AUTH_ERR => {
                tracing::info!(
                    user,
                    "pam: account may not log in: {}",
                    tx.error("pam_acct_mgmt", rc)
                );
                return Ok(AuthOutcome::WrongPassword);
            }
            other => return Err(tx.error("pam_acct_mgmt", other)),
        }
        let name = tx.user().unwrap_or_else(|| user.to_owned());
        drop(tx);
        drop(data);
        Ok(AuthOutcome::Success(UserRecord::named(name)))
    }
}
