//! crypt(3) as the system implements it: libxcrypt (Debian's `libcrypt1`), called through
//! `crypt_rn`, which is thread-safe and reports failure as a null pointer instead of a
//! "failure token".
//!
//! This is how every hash in `/etc/shadow` is checked, whatever its method: yescrypt (`$y$`,
//! Debian 12's default), gost-yescrypt (`$gy$`), scrypt (`$7$`), SHA-crypt (`$5$`, `$6$`),
//! bcrypt (`$2b$`, `$2y$`), MD5-crypt (`$1$`) and the legacy methods libxcrypt still accepts.
//! The password-file schemes keep their pure-Rust implementations (see [`crate::scheme`]) and
//! come here only for methods those do not implement.
//!
//! Every buffer that held the password or its hash is wiped before it is freed, and the
//! comparison with the stored hash is constant-time.

use std::ffi::{CStr, CString, c_char, c_int, c_void};

use zeroize::Zeroizing;

use crate::scheme::ct_eq;

/// `sizeof(struct crypt_data)` in libxcrypt (`crypt.h`: "add up to exactly 32768 bytes").
const CRYPT_DATA_SIZE: usize = 32768;
/// `CRYPT_MAX_PASSPHRASE_SIZE`: longer passphrases (counting the terminating NUL) are refused.
pub const MAX_PASSPHRASE: usize = 511;
/// `CRYPT_GENSALT_OUTPUT_SIZE`.
const GENSALT_OUTPUT_SIZE: usize = 192;
/// `crypt_checksalt` results.
const CRYPT_SALT_INVALID: c_int = 1;
const CRYPT_SALT_METHOD_DISABLED: c_int = 2;

#[link(name = "crypt")]
unsafe extern "C" {
    fn crypt_rn(
        phrase: *const c_char,
        setting: *const c_char,
        data: *mut c_void,
        size: c_int,
    ) -> *mut c_char;
    fn crypt_checksalt(setting: *const c_char) -> c_int;
    fn crypt_gensalt_rn(
        prefix: *const c_char,
        count: libc::c_ulong,
        rbytes: *const c_char,
        nrbytes: c_int,
        output: *mut c_char,
        output_size: c_int,
    ) -> *mut c_char;
}

/// Why a stored crypt(3) string could not be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptProblem {
    /// Not a setting libxcrypt recognises, or one it refuses (bad salt, cost out of range).
    Invalid,
    /// A method this libxcrypt was built without.
    Disabled,
}

/// Hashes `password` with `setting` — a stored hash, or a setting from [`gensalt`]. `None` when
/// libxcrypt refuses the setting or the password (longer than [`MAX_PASSPHRASE`] bytes). As in
/// every crypt(3), the password ends at its first NUL byte.
pub fn crypt(password: &[u8], setting: &str) -> Option<Zeroizing<String>> {
    let password = until_nul(password);
    if password.len() > MAX_PASSPHRASE {
        return None;
    }
    let phrase = Zeroizing::new(CString::new(password).ok()?.into_bytes_with_nul());
    let setting = CString::new(setting).ok()?;
    let mut data = Zeroizing::new(vec![0u8; CRYPT_DATA_SIZE]);
    // SAFETY: `phrase` and `setting` are NUL-terminated and outlive the call; `data` is a
    // writable buffer of the size passed, as large as `struct crypt_data`, zero-initialised as
    // libxcrypt asks. The returned pointer (if not null) points into `data` at a NUL-terminated
    // string, which is copied before `data` is wiped.
    let out = unsafe {
        crypt_rn(
            phrase.as_ptr().cast(),
            setting.as_ptr(),
            data.as_mut_ptr().cast(),
            CRYPT_DATA_SIZE as c_int,
        )
    };
    if out.is_null() {
        return None;
    }
    // SAFETY: see above; libxcrypt NUL-terminates its output inside `data`.
    let hashed = unsafe { CStr::from_ptr(out) };
    Some(Zeroizing::new(hashed.to_string_lossy().into_owned()))
}

/// Checks `password` against a stored crypt(3) string. `Ok(false)` for a mismatch, and for a
/// password libxcrypt cannot hash (too long); an error when the stored string is unusable.
pub fn verify(stored: &str, password: &[u8]) -> Result<bool, CryptProblem> {
    let Ok(setting) = CString::new(stored) else {
        return Err(CryptProblem::Invalid);
    };
    // SAFETY: `setting` is NUL-terminated and outlives the call, which only reads it.
    match unsafe { crypt_checksalt(setting.as_ptr()) } {
        CRYPT_SALT_INVALID => return Err(CryptProblem::Invalid),
        CRYPT_SALT_METHOD_DISABLED => return Err(CryptProblem::Disabled),
        // OK, legacy (DES, MD5, NT...: still what the stored string says), or too cheap.
        _ => {}
    }
    if until_nul(password).len() > MAX_PASSPHRASE {
        return Ok(false);
    }
    match crypt(password, stored) {
        Some(computed) => Ok(ct_eq(computed.as_bytes(), stored.as_bytes())),
        // The method is known (checked above) but the rest of the setting is not acceptable.
        None => Err(CryptProblem::Invalid),
    }
}

/// A new random setting for the method `prefix` (`"$y$"`, `"$6$"`, `"$2b$"`...) with libxcrypt's
/// default cost when `count` is 0. `None` for an unknown or disabled method or a bad cost.
pub fn gensalt(prefix: &str, count: u64) -> Option<String> {
    let prefix = CString::new(prefix).ok()?;
    let mut out = [0u8; GENSALT_OUTPUT_SIZE];
    // SAFETY: `prefix` is NUL-terminated; a null `rbytes` asks libxcrypt for OS randomness;
    // `out` is writable for the size passed. The result (if not null) is NUL-terminated in `out`.
    let made = unsafe {
        crypt_gensalt_rn(
            prefix.as_ptr(),
            libc::c_ulong::try_from(count).ok()?,
            std::ptr::null(),
            0,
            out.as_mut_ptr().cast(),
            GENSALT_OUTPUT_SIZE as c_int,
        )
    };
    if made.is_null() {
        return None;
    }
    CStr::from_bytes_until_nul(&out)
        .ok()
        .and_then(|s| s.to_str().ok())
        .map(str::to_owned)
}

fn until_nul(password: &[u8]) -> &[u8] {
    match password.iter().position(|&b| b == 0) {
        Some(nul) => &password[..nul],
        None => password,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yescrypt_round_trip() {
        let setting = gensalt("$y$", 0).unwrap();
        assert!(setting.starts_with("$y$"), "{setting}");
        let hash = crypt(b"correct horse", &setting).unwrap();
        assert!(hash.starts_with(&setting), "{}", *hash);
        assert_eq!(verify(&hash, b"correct horse"), Ok(true));
        assert_eq!(verify(&hash, b"correct horsE"), Ok(false));
        assert_eq!(verify(&hash, b""), Ok(false));
    }

    #[test]
    fn gost_yescrypt_round_trip() {
        let setting = gensalt("$gy$", 0).unwrap();
        let hash = crypt(b"pw", &setting).unwrap();
        assert_eq!(verify(&hash, b"pw"), Ok(true));
        assert_eq!(verify(&hash, b"px"), Ok(false));
    }

    #[test]
    fn known_vectors() {
        // A yescrypt hash published with its password (written by another system's
        // crypt(3)), and Drepper's SHA-crypt specification vectors for `$5$`/`$6$`.
        for (stored, password) in [
            (
                "$y$j9T$Qeof7nTZR1kT1cFwdlZqd0$B5.LdYzAcE8IwmEjeOUR9RwIwpalyyj/oxaiDqnryZ/",
                &b"WA7NERURoVlDegBUVyM1Kk"[..],
            ),
            (
                "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5",
                b"Hello world!",
            ),
            (
                "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
                b"Hello world!",
            ),
            ("$1$5pZSV9va$azfrPr6af3Fc7dLblQXVa0", b"password"),
        ] {
            assert_eq!(verify(stored, password), Ok(true), "{stored}");
            assert_eq!(verify(stored, b"wrong"), Ok(false), "{stored}");
        }
    }

    #[test]
    fn unusable_settings() {
        for stored in ["", "*", "!", "!$6$abc$def", "*LK*", "$y$", "$7$abc", "$gy$"] {
            assert!(verify(stored, b"pw").is_err(), "{stored:?}");
        }
        assert_eq!(verify("a\0b", b"pw"), Err(CryptProblem::Invalid));
        assert!(gensalt("$nope$", 0).is_none());
    }

    #[test]
    fn long_and_nul_passwords() {
        let setting = gensalt("$6$", 0).unwrap();
        let hash = crypt(b"abc", &setting).unwrap();
        assert_eq!(verify(&hash, b"abc\0def"), Ok(true));
        let long = vec![b'a'; MAX_PASSPHRASE + 1];
        assert!(crypt(&long, &setting).is_none());
        assert_eq!(verify(&hash, &long), Ok(false));
        let longest = vec![b'a'; MAX_PASSPHRASE];
        let hash = crypt(&longest, &setting).unwrap();
        assert_eq!(verify(&hash, &longest), Ok(true));
    }
}
