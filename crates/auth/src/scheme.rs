//! Password hash schemes in Dovecot's `{SCHEME}` notation and crypt(3) forms.
//!
//! A stored password is `{SCHEME}data` or, with no `{...}` prefix, a crypt(3) string (Dovecot's
//! passwd-file default scheme is `CRYPT`). The scheme name is matched case-insensitively and may
//! carry an encoding suffix, `.HEX`, `.B64` or `.BASE64`, naming how the raw hash is written
//! (Dovecot's `password_decode()`):
//!
//! * schemes whose raw form is text (`PLAIN`, the crypt family, `PBKDF2`, `ARGON2*`) store it
//!   verbatim unless a suffix says otherwise;
//! * unsalted digests (`SHA`, `SHA256`, `SHA512`, `PLAIN-MD5`, `LDAP-MD5`) have a fixed raw length,
//!   so without a suffix the encoding is guessed exactly as Dovecot does: hex when the text is
//!   twice the digest length, base64 otherwise;
//! * salted digests (`SSHA*`, `SMD5`) are `digest || salt`, base64 unless `.HEX`.
//!
//! Like Dovecot, which hands the password to every scheme as a C string, a password is only
//! considered up to its first NUL byte. (No protocol can deliver a NUL inside a password anyway:
//! SASL PLAIN uses it as the separator, RFC 4616 section 2.)
//!
//! Every comparison of a computed hash against a stored one is constant-time in the compared
//! bytes. A malformed stored hash never panics: [`verify`] logs it and answers `Ok(false)`.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use crate::AuthError;
use crate::scram::{ScramHash, ScramKeys};

/// A password scheme that [`hash`] can produce. [`verify`] additionally understands the aliases
/// and legacy names Dovecot accepts (`CLEAR`, `CLEARTEXT`, `SHA1`, `MD5`, `DES-CRYPT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `PLAIN` (aliases `CLEAR`, `CLEARTEXT`): the password itself.
    Plain,
    /// `CRYPT`: any crypt(3) string. [`hash`] writes SHA-512-crypt (`$6$`), which every
    /// crypt(3) that Dovecot may run on understands.
    Crypt,
    /// `MD5-CRYPT` (alias `MD5`): `$1$salt$hash`, the FreeBSD/glibc MD5 crypt.
    Md5Crypt,
    /// `SHA256-CRYPT`: `$5$[rounds=N$]salt$hash` (Drepper's SHA-crypt).
    Sha256Crypt,
    /// `SHA512-CRYPT`: `$6$[rounds=N$]salt$hash` (Drepper's SHA-crypt).
    Sha512Crypt,
    /// `BLF-CRYPT`: bcrypt, `$2y$cost$salthash` (also `$2a$`, `$2b$`).
    BlfCrypt,
    /// `ARGON2I`: PHC string `$argon2i$v=19$m=...,t=...,p=...$salt$hash`.
    Argon2i,
    /// `ARGON2ID`: PHC string `$argon2id$v=19$m=...,t=...,p=...$salt$hash`.
    Argon2id,
    /// `SSHA`: base64(SHA-1(password || salt) || salt).
    Ssha,
    /// `SSHA256`: base64(SHA-256(password || salt) || salt).
    Ssha256,
    /// `SSHA512`: base64(SHA-512(password || salt) || salt).
    Ssha512,
    /// `SHA` (alias `SHA1`): base64(SHA-1(password)).
    Sha,
    /// `SHA256`: base64(SHA-256(password)).
    Sha256,
    /// `SHA512`: base64(SHA-512(password)).
    Sha512,
    /// `SMD5`: base64(MD5(password || salt) || salt).
    Smd5,
    /// `PLAIN-MD5`: hex(MD5(password)).
    PlainMd5,
    /// `LDAP-MD5`: base64(MD5(password)).
    LdapMd5,
    /// `PBKDF2`: Dovecot's own `$1$salt$rounds$hex(PBKDF2-HMAC-SHA1(password, salt, rounds, 20))`.
    Pbkdf2,
    /// `SCRAM-SHA-1`: `iterations,salt,StoredKey,ServerKey` (RFC 5802 keys, base64), which also
    /// serves the SCRAM-SHA-1 SASL mechanism.
    ScramSha1,
    /// `SCRAM-SHA-256`: the same with SHA-256 (RFC 7677).
    ScramSha256,
}

impl Scheme {
    /// Every scheme [`hash`] can produce.
    pub const ALL: [Scheme; 20] = [
        Scheme::Plain,
        Scheme::Crypt,
        Scheme::Md5Crypt,
        Scheme::Sha256Crypt,
        Scheme::Sha512Crypt,
        Scheme::BlfCrypt,
        Scheme::Argon2i,
        Scheme::Argon2id,
        Scheme::Ssha,
        Scheme::Ssha256,
        Scheme::Ssha512,
        Scheme::Sha,
        Scheme::Sha256,
        Scheme::Sha512,
        Scheme::Smd5,
        Scheme::PlainMd5,
        Scheme::LdapMd5,
        Scheme::Pbkdf2,
        Scheme::ScramSha1,
        Scheme::ScramSha256,
    ];

    /// The canonical Dovecot name, as written between the braces.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Plain => "PLAIN",
            Scheme::Crypt => "CRYPT",
            Scheme::Md5Crypt => "MD5-CRYPT",
            Scheme::Sha256Crypt => "SHA256-CRYPT",
            Scheme::Sha512Crypt => "SHA512-CRYPT",
            Scheme::BlfCrypt => "BLF-CRYPT",
            Scheme::Argon2i => "ARGON2I",
            Scheme::Argon2id => "ARGON2ID",
            Scheme::Ssha => "SSHA",
            Scheme::Ssha256 => "SSHA256",
            Scheme::Ssha512 => "SSHA512",
            Scheme::Sha => "SHA",
            Scheme::Sha256 => "SHA256",
            Scheme::Sha512 => "SHA512",
            Scheme::Smd5 => "SMD5",
            Scheme::PlainMd5 => "PLAIN-MD5",
            Scheme::LdapMd5 => "LDAP-MD5",
            Scheme::Pbkdf2 => "PBKDF2",
            Scheme::ScramSha1 => "SCRAM-SHA-1",
            Scheme::ScramSha256 => "SCRAM-SHA-256",
        }
    }

    /// How the raw hash is written when the name carries no encoding suffix.
    pub fn default_encoding(self) -> Encoding {
        match self {
            Scheme::Plain
            | Scheme::Crypt
            | Scheme::Md5Crypt
            | Scheme::Sha256Crypt
            | Scheme::Sha512Crypt
            | Scheme::BlfCrypt
            | Scheme::Argon2i
            | Scheme::Argon2id
            | Scheme::Pbkdf2
            | Scheme::ScramSha1
            | Scheme::ScramSha256 => Encoding::None,
            Scheme::PlainMd5 => Encoding::Hex,
            Scheme::Ssha
            | Scheme::Ssha256
            | Scheme::Ssha512
            | Scheme::Sha
            | Scheme::Sha256
            | Scheme::Sha512
            | Scheme::Smd5
            | Scheme::LdapMd5 => Encoding::Base64,
        }
    }
}

impl Default for Scheme {
    /// `SHA512-CRYPT`: understood by every Dovecot and crypt(3), no password length limit, and
    /// cheap enough in memory to check many logins at once.
    fn default() -> Scheme {
        Scheme::Sha512Crypt
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scheme {
    type Err = AuthError;

    /// Parses a scheme name case-insensitively, accepting Dovecot's aliases. Encoding suffixes
    /// are not part of a [`Scheme`]; see [`HashOptions::encoding`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.to_ascii_uppercase();
        let scheme = match upper.as_str() {
            "PLAIN" | "CLEAR" | "CLEARTEXT" => Scheme::Plain,
            "CRYPT" => Scheme::Crypt,
            "MD5-CRYPT" | "MD5" => Scheme::Md5Crypt,
            "SHA256-CRYPT" => Scheme::Sha256Crypt,
            "SHA512-CRYPT" => Scheme::Sha512Crypt,
            "BLF-CRYPT" => Scheme::BlfCrypt,
            "ARGON2I" => Scheme::Argon2i,
            "ARGON2ID" => Scheme::Argon2id,
            "SSHA" => Scheme::Ssha,
            "SSHA256" => Scheme::Ssha256,
            "SSHA512" => Scheme::Ssha512,
            "SHA" | "SHA1" => Scheme::Sha,
            "SHA256" => Scheme::Sha256,
            "SHA512" => Scheme::Sha512,
            "SMD5" => Scheme::Smd5,
            "PLAIN-MD5" => Scheme::PlainMd5,
            "LDAP-MD5" => Scheme::LdapMd5,
            "PBKDF2" => Scheme::Pbkdf2,
            "SCRAM-SHA-1" => Scheme::ScramSha1,
            "SCRAM-SHA-256" => Scheme::ScramSha256,
            _ => return Err(AuthError::UnsupportedScheme(s.to_owned())),
        };
        Ok(scheme)
    }
}

/// How a scheme's raw hash is written after the `{SCHEME}` prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// Verbatim (text schemes only).
    None,
    /// Lower-case hexadecimal (`.HEX`).
    Hex,
    /// Standard base64 with padding (`.B64`, `.BASE64`).
    Base64,
}

/// Options for [`hash_with`]. The defaults reproduce what `doveadm pw -s SCHEME` writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HashOptions {
    /// The scheme's cost, like `doveadm pw -r`: rounds for SHA*-CRYPT (clamped to
    /// 1000..=999999999; written as `rounds=N$` when given), PBKDF2 (at least 1) and SCRAM-SHA-*
    /// (4096..=10000000), the cost for BLF-CRYPT and CRYPT's SHA-512 (4..=31 for bcrypt), the
    /// time cost `t` for ARGON2*. Ignored by schemes without a cost.
    pub rounds: Option<u32>,
    /// Write the raw hash in this encoding, adding `.HEX` / `.B64` to the scheme name when it
    /// differs from the scheme's default. [`Encoding::None`] for a binary digest means its
    /// default (base64), since raw bytes cannot be written as text.
    pub encoding: Option<Encoding>,
}

/// Hashes `password` with `scheme` and default parameters, giving the `{SCHEME}...` form.
///
/// Salts come from the operating system's random generator. As in Dovecot, the password ends at
/// its first NUL byte. `{PLAIN}` of a password that is not UTF-8 or contains `:` or a control
/// character (which would break a passwd-file line) is written as `{PLAIN.B64}`.
pub fn hash(scheme: Scheme, password: &[u8]) -> String {
    hash_with(scheme, password, &HashOptions::default())
}

/// [`hash`] with explicit cost and encoding.
pub fn hash_with(scheme: Scheme, password: &[u8], options: &HashOptions) -> String {
    let password = c_string(password);
    let rounds = options.rounds;
    let raw: Vec<u8> = match scheme {
        Scheme::Plain => password.to_vec(),
        Scheme::Crypt | Scheme::Sha512Crypt => {
            sha_crypt_generate(ShaVariant::Sha512, password, rounds).into_bytes()
        }
        Scheme::Sha256Crypt => {
            sha_crypt_generate(ShaVariant::Sha256, password, rounds).into_bytes()
        }
        Scheme::Md5Crypt => {
            let salt = random_crypt_salt(8);
            md5_crypt(password, salt.as_bytes()).into_bytes()
        }
        Scheme::BlfCrypt => bcrypt_generate(password, rounds).into_bytes(),
        Scheme::Argon2i => {
            argon2_generate(argon2::Algorithm::Argon2i, password, rounds).into_bytes()
        }
        Scheme::Argon2id => {
            argon2_generate(argon2::Algorithm::Argon2id, password, rounds).into_bytes()
        }
        Scheme::Ssha => salted_digest::<Sha1>(password, &random_bytes::<8>()),
        Scheme::Ssha256 => salted_digest::<Sha256>(password, &random_bytes::<8>()),
        Scheme::Ssha512 => salted_digest::<Sha512>(password, &random_bytes::<8>()),
        Scheme::Smd5 => salted_digest::<Md5>(password, &random_bytes::<8>()),
        Scheme::Sha => Sha1::digest(password).to_vec(),
        Scheme::Sha256 => Sha256::digest(password).to_vec(),
        Scheme::Sha512 => Sha512::digest(password).to_vec(),
        Scheme::PlainMd5 | Scheme::LdapMd5 => Md5::digest(password).to_vec(),
        Scheme::Pbkdf2 => pbkdf2_generate(password, rounds).into_bytes(),
        Scheme::ScramSha1 => ScramKeys::generate(ScramHash::Sha1, password, rounds)
            .to_dovecot()
            .into_bytes(),
        Scheme::ScramSha256 => ScramKeys::generate(ScramHash::Sha256, password, rounds)
            .to_dovecot()
            .into_bytes(),
    };
    let default = scheme.default_encoding();
    let mut encoding = options.encoding.unwrap_or(default);
    if scheme == Scheme::Plain && encoding == Encoding::None && !passwd_file_safe(&raw) {
        encoding = Encoding::Base64;
    }
    let text = match encoding {
        // Only text schemes default to `None`; their raw form is ASCII (or checked above).
        Encoding::None if std::str::from_utf8(&raw).is_ok() => {
            String::from_utf8_lossy(&raw).into_owned()
        }
        Encoding::None => {
            encoding = Encoding::Base64;
            STANDARD.encode(&raw)
        }
        Encoding::Hex => hex_encode(&raw),
        Encoding::Base64 => STANDARD.encode(&raw),
    };
    let suffix = if encoding == default {
        ""
    } else {
        match encoding {
            Encoding::None => "",
            Encoding::Hex => ".HEX",
            Encoding::Base64 => ".B64",
        }
    };
    format!("{{{}{}}}{}", scheme.name(), suffix, text)
}

/// Checks `password` against a stored hash (`{SCHEME}data`, or a bare crypt(3) string).
///
/// Returns `Ok(true)` on a match and `Ok(false)` on a mismatch or when the stored hash is
/// malformed (which is logged as a warning, without the hash). Errors with
/// [`AuthError::UnsupportedScheme`] for a scheme this crate does not implement: Dovecot's
/// challenge-response-only schemes (`CRAM-MD5`, `DIGEST-MD5`, ...), unknown names, and crypt(3)
/// methods the system's libxcrypt was built without. crypt(3) methods without a pure-Rust
/// implementation here (yescrypt `$y$`, `$gy$`, scrypt `$7$`...) are checked by libxcrypt.
pub fn verify(stored: &str, password: &[u8]) -> Result<bool, AuthError> {
    match check(stored, password) {
        Ok(matched) => Ok(matched),
        Err(Problem::Unsupported(what)) => Err(AuthError::UnsupportedScheme(what)),
        Err(Problem::Malformed(reason)) => {
            let scheme = split_scheme(stored).0.unwrap_or("CRYPT");
            tracing::warn!(scheme, reason, "malformed stored password hash");
            Ok(false)
        }
    }
}

/// Splits `{SCHEME}data` into `(Some("SCHEME"), "data")`; anything else is `(None, stored)`.
pub fn split_scheme(stored: &str) -> (Option<&str>, &str) {
    if let Some(rest) = stored.strip_prefix('{')
        && let Some(end) = rest.find('}')
    {
        return (Some(&rest[..end]), &rest[end + 1..]);
    }
    (None, stored)
}

/// Why a stored hash could not be checked.
enum Problem {
    Unsupported(String),
    Malformed(&'static str),
}

type Checked = Result<bool, Problem>;

fn check(stored: &str, password: &[u8]) -> Checked {
    let password = c_string(password);
    let (name, data) = split_scheme(stored);
    let Some(name) = name else {
        return crypt_verify(data, password);
    };
    let (base, suffix) = match name.split_once('.') {
        Some((base, suffix)) => (base, Some(suffix)),
        None => (name, None),
    };
    let encoding = match suffix.map(|s| s.to_ascii_uppercase()) {
        None => None,
        Some(s) if s == "HEX" => Some(Encoding::Hex),
        Some(s) if s == "B64" || s == "BASE64" => Some(Encoding::Base64),
        Some(_) => return Err(Problem::Unsupported(name.to_owned())),
    };
    let upper = base.to_ascii_uppercase();
    match upper.as_str() {
        "PLAIN" | "CLEAR" | "CLEARTEXT" => {
            let raw = decode(data, encoding.unwrap_or(Encoding::None))?;
            Ok(ct_eq(&raw, password))
        }
        "CRYPT" | "DES-CRYPT" | "MD5-CRYPT" | "SHA256-CRYPT" | "SHA512-CRYPT" | "BLF-CRYPT" => {
            // Dovecot checks all of these with crypt(3), which dispatches on the string's form.
            let raw = decode(data, encoding.unwrap_or(Encoding::None))?;
            let text = std::str::from_utf8(&raw)
                .map_err(|_| Problem::Malformed("crypt string is not ASCII"))?;
            crypt_verify(text, password)
        }
        "MD5" => {
            // Dovecot's MD5 is MD5-CRYPT, or PLAIN-MD5 when the data is not `$1$...`.
            let raw = decode(data, encoding.unwrap_or(Encoding::None))?;
            if raw.starts_with(b"$1$") {
                let text = std::str::from_utf8(&raw)
                    .map_err(|_| Problem::Malformed("crypt string is not ASCII"))?;
                crypt_verify(text, password)
            } else {
                let text = std::str::from_utf8(&raw)
                    .map_err(|_| Problem::Malformed("MD5 hash is not text"))?;
                let digest = decode_fixed(text, None, 16)?;
                Ok(ct_eq(&digest, &Md5::digest(password)))
            }
        }
        "ARGON2I" | "ARGON2ID" => {
            let raw = decode(data, encoding.unwrap_or(Encoding::None))?;
            let text = std::str::from_utf8(&raw)
                .map_err(|_| Problem::Malformed("argon2 string is not ASCII"))?;
            argon2_verify(text, password)
        }
        "PBKDF2" => {
            let raw = decode(data, encoding.unwrap_or(Encoding::None))?;
            pbkdf2_verify(&raw, password)
        }
        "SCRAM-SHA-1" => scram_verify(ScramHash::Sha1, data, encoding, password),
        "SCRAM-SHA-256" => scram_verify(ScramHash::Sha256, data, encoding, password),
        "SHA" | "SHA1" => digest_verify::<Sha1>(data, encoding, password),
        "SHA256" => digest_verify::<Sha256>(data, encoding, password),
        "SHA512" => digest_verify::<Sha512>(data, encoding, password),
        // Both have a fixed raw length, so their default encodings are guessed alike.
        "PLAIN-MD5" | "LDAP-MD5" => digest_verify::<Md5>(data, encoding, password),
        "SSHA" => salted_verify::<Sha1>(data, encoding, password),
        "SSHA256" => salted_verify::<Sha256>(data, encoding, password),
        "SSHA512" => salted_verify::<Sha512>(data, encoding, password),
        "SMD5" => salted_verify::<Md5>(data, encoding, password),
        _ => Err(Problem::Unsupported(name.to_owned())),
    }
}

// ---------------------------------------------------------------------------------------------
// Encodings

/// The password as a C string: everything before the first NUL.
fn c_string(password: &[u8]) -> &[u8] {
    match password.iter().position(|&b| b == 0) {
        Some(nul) => &password[..nul],
        None => password,
    }
}

/// Whether `{PLAIN}` text can go into a passwd-file line as is.
fn passwd_file_safe(raw: &[u8]) -> bool {
    match std::str::from_utf8(raw) {
        Ok(s) => !s.chars().any(|c| c == ':' || c.is_control()),
        Err(_) => false,
    }
}

/// Dovecot's base64 decoder does not insist on padding or canonical trailing bits.
const LENIENT_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

fn decode(data: &str, encoding: Encoding) -> Result<Vec<u8>, Problem> {
    match encoding {
        Encoding::None => Ok(data.as_bytes().to_vec()),
        Encoding::Hex => hex_decode(data).ok_or(Problem::Malformed("invalid hex encoding")),
        Encoding::Base64 => LENIENT_B64
            .decode(data)
            .map_err(|_| Problem::Malformed("invalid base64 encoding")),
    }
}

/// Decodes a fixed-length raw hash: with no explicit encoding, hex when the text is exactly
/// twice `len` characters (falling back to base64 if it is not valid hex), else base64 —
/// Dovecot's `password_decode()` guess.
fn decode_fixed(data: &str, encoding: Option<Encoding>, len: usize) -> Result<Vec<u8>, Problem> {
    let raw = match encoding {
        Some(e) => decode(data, e)?,
        None if data.len() == len * 2 => match hex_decode(data) {
            Some(raw) => raw,
            None => decode(data, Encoding::Base64)?,
        },
        None => decode(data, Encoding::Base64)?,
    };
    if raw.len() != len {
        return Err(Problem::Malformed("hash has the wrong length"));
    }
    Ok(raw)
}

pub(crate) fn hex_encode(raw: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(raw.len() * 2);
    for &b in raw {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

pub(crate) fn hex_decode(text: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

/// Constant-time equality: the time depends on the lengths only, never on where the inputs
/// differ.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

// ---------------------------------------------------------------------------------------------
// Randomness

/// Sixteen random bytes, the salt of new SCRAM keys.
pub(crate) fn random_salt() -> [u8; 16] {
    random_bytes::<16>()
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // Failure means the kernel's random generator is unavailable: nothing can be hashed safely.
    getrandom::getrandom(&mut buf).expect("operating system random generator failed");
    buf
}

/// The crypt(3) salt alphabet.
const CRYPT_ALPHABET: &[u8; 64] =
    b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn random_crypt_salt(len: usize) -> String {
    let mut buf = vec![0u8; len];
    getrandom::getrandom(&mut buf).expect("operating system random generator failed");
    // 64 divides 256, so the reduction is unbiased.
    buf.iter()
        .map(|&b| char::from(CRYPT_ALPHABET[usize::from(b & 0x3f)]))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Plain and salted digests

fn digest_verify<D: Digest>(data: &str, encoding: Option<Encoding>, password: &[u8]) -> Checked {
    let len = <D as Digest>::output_size();
    let stored = decode_fixed(data, encoding, len)?;
    Ok(ct_eq(&stored, &D::digest(password)))
}

fn salted_digest<D: Digest>(password: &[u8], salt: &[u8]) -> Vec<u8> {
    let mut hasher = D::new();
    hasher.update(password);
    hasher.update(salt);
    let mut raw = hasher.finalize().to_vec();
    raw.extend_from_slice(salt);
    raw
}

/// `SSHA*` and `SMD5`: `digest(password || salt) || salt`; the salt is whatever follows the
/// digest and must not be empty (Dovecot: "password is too short").
fn salted_verify<D: Digest>(data: &str, encoding: Option<Encoding>, password: &[u8]) -> Checked {
    let raw = decode(data, encoding.unwrap_or(Encoding::Base64))?;
    let len = <D as Digest>::output_size();
    if raw.len() <= len {
        return Err(Problem::Malformed("salted hash is too short"));
    }
    let (digest, salt) = raw.split_at(len);
    let mut hasher = D::new();
    hasher.update(password);
    hasher.update(salt);
    Ok(ct_eq(digest, &hasher.finalize()))
}

// ---------------------------------------------------------------------------------------------
// PBKDF2 (Dovecot's src/auth/password-scheme-pbkdf2.c)

const PBKDF2_ROUNDS_DEFAULT: u32 = 5000;

fn pbkdf2_sha1(password: &[u8], salt: &[u8], rounds: u32) -> [u8; 20] {
    pbkdf2::pbkdf2_hmac_array::<Sha1, 20>(password, salt, rounds)
}

fn pbkdf2_generate(password: &[u8], rounds: Option<u32>) -> String {
    let rounds = rounds.unwrap_or(PBKDF2_ROUNDS_DEFAULT).max(1);
    let salt = random_crypt_salt(16);
    let key = pbkdf2_sha1(password, salt.as_bytes(), rounds);
    format!("$1${salt}${rounds}${}", hex_encode(&key))
}

/// `$1$salt$rounds$hex(key)`, the key being 20 bytes of PBKDF2-HMAC-SHA1 (RFC 8018 section 5.2).
fn pbkdf2_verify(raw: &[u8], password: &[u8]) -> Checked {
    let text = std::str::from_utf8(raw).map_err(|_| Problem::Malformed("PBKDF2 is not text"))?;
    let rest = text
        .strip_prefix("$1$")
        .ok_or(Problem::Malformed("PBKDF2 entry lacks the $1$ prefix"))?;
    let fields: Vec<&str> = rest.split('$').collect();
    let [salt, rounds, key] = fields[..] else {
        return Err(Problem::Malformed(
            "PBKDF2 entry is not $1$salt$rounds$hash",
        ));
    };
    let rounds = parse_decimal(rounds)
        .filter(|&r| r > 0)
        .ok_or(Problem::Malformed(
            "PBKDF2 rounds are not a positive number",
        ))?;
    let stored = hex_decode(key)
        .filter(|k| k.len() == 20)
        .ok_or(Problem::Malformed("PBKDF2 hash is not 160 bits of hex"))?;
    Ok(ct_eq(
        &stored,
        &pbkdf2_sha1(password, salt.as_bytes(), rounds),
    ))
}

// ---------------------------------------------------------------------------------------------
// SCRAM keys (Dovecot's src/auth/password-scheme-scram.c)

fn scram_verify(
    hash: ScramHash,
    data: &str,
    encoding: Option<Encoding>,
    password: &[u8],
) -> Checked {
    let raw = decode(data, encoding.unwrap_or(Encoding::None))?;
    let text = std::str::from_utf8(&raw).map_err(|_| Problem::Malformed("SCRAM is not text"))?;
    let keys = ScramKeys::parse(hash, text).map_err(Problem::Malformed)?;
    Ok(keys.matches_password(password))
}

/// The stored secret a challenge-response mechanism can use, if `stored` holds one: the
/// plaintext (`{PLAIN}` and its aliases and encodings) or SCRAM keys. `None` for one-way hashes
/// and malformed entries.
pub fn stored_secret(stored: &str) -> Option<crate::Secret> {
    let (Some(name), data) = split_scheme(stored) else {
        return None;
    };
    let (base, suffix) = match name.split_once('.') {
        Some((base, suffix)) => (base, Some(suffix.to_ascii_uppercase())),
        None => (name, None),
    };
    let encoding = match suffix.as_deref() {
        None => Encoding::None,
        Some("HEX") => Encoding::Hex,
        Some("B64" | "BASE64") => Encoding::Base64,
        Some(_) => return None,
    };
    let raw = zeroize::Zeroizing::new(decode(data, encoding).ok()?);
    match base.to_ascii_uppercase().as_str() {
        "PLAIN" | "CLEAR" | "CLEARTEXT" => Some(crate::Secret::Plaintext(zeroize::Zeroizing::new(
            c_string(&raw).to_vec(),
        ))),
        "SCRAM-SHA-1" => ScramKeys::parse(ScramHash::Sha1, std::str::from_utf8(&raw).ok()?)
            .ok()
            .map(crate::Secret::Scram),
        "SCRAM-SHA-256" => ScramKeys::parse(ScramHash::Sha256, std::str::from_utf8(&raw).ok()?)
            .ok()
            .map(crate::Secret::Scram),
        _ => None,
    }
}

/// A plain decimal `u32` (no sign, no spaces), as C's `str_to_uint()`.
fn parse_decimal(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

// ---------------------------------------------------------------------------------------------
// crypt(3)

/// Checks a crypt(3) string, dispatching on its form as crypt(3) does.
fn crypt_verify(stored: &str, password: &[u8]) -> Checked {
    if stored.is_empty() {
        // crypt(3) with an empty setting matches nothing (Dovecot refuses it explicitly).
        return Ok(false);
    }
    if stored.starts_with('!') || stored.starts_with('*') {
        // Locked or disabled account markers, as in /etc/shadow.
        return Ok(false);
    }
    if let Some(rest) = stored.strip_prefix("$1$") {
        return md5_crypt_verify(rest, stored, password);
    }
    if stored.starts_with("$5$") {
        return sha_crypt_verify(ShaVariant::Sha256, stored, password);
    }
    if stored.starts_with("$6$") {
        return sha_crypt_verify(ShaVariant::Sha512, stored, password);
    }
    if stored.starts_with("$2a$") || stored.starts_with("$2b$") || stored.starts_with("$2y$") {
        return bcrypt_verify(stored, password);
    }
    if stored.starts_with("$argon2") {
        return argon2_verify(stored, password);
    }
    if stored.starts_with('$') || stored.starts_with('_') {
        // yescrypt (`$y$`), gost-yescrypt, scrypt and whatever else the system's crypt(3)
        // knows: libxcrypt, as Dovecot's CRYPT scheme would call it.
        return system_crypt_verify(stored, password);
    }
    des_crypt_verify(stored, password)
}

fn system_crypt_verify(stored: &str, password: &[u8]) -> Checked {
    match crate::crypt::verify(stored, password) {
        Ok(matched) => Ok(matched),
        Err(crate::crypt::CryptProblem::Invalid) => {
            Err(Problem::Malformed("crypt(3) does not accept this string"))
        }
        Err(crate::crypt::CryptProblem::Disabled) => {
            let id = stored.split('$').nth(1).unwrap_or(stored);
            Err(Problem::Unsupported(format!("crypt ${id}$")))
        }
    }
}

/// Traditional DES crypt: two salt characters and eleven hash characters. Only the first eight
/// password bytes count — which is why nothing here ever writes it.
fn des_crypt_verify(stored: &str, password: &[u8]) -> Checked {
    if stored.len() != 13 || !stored.bytes().all(|b| CRYPT_ALPHABET.contains(&b)) {
        return Err(Problem::Malformed("unrecognised crypt string"));
    }
    Ok(pwhash::unix_crypt::verify(password, stored))
}

/// MD5-crypt (`$1$`), Poul-Henning Kamp's algorithm as in glibc and Dovecot.
fn md5_crypt(password: &[u8], salt: &[u8]) -> String {
    const MAGIC: &[u8] = b"$1$";
    let mut ctx = Md5::new();
    ctx.update(password);
    ctx.update(MAGIC);
    ctx.update(salt);

    let mut alt = Md5::new();
    alt.update(password);
    alt.update(salt);
    alt.update(password);
    let alt = alt.finalize();

    let mut left = password.len();
    while left > 0 {
        let n = left.min(16);
        ctx.update(&alt[..n]);
        left -= n;
    }
    let mut i = password.len();
    while i > 0 {
        if i & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&password[..1]);
        }
        i >>= 1;
    }
    let mut fin = ctx.finalize();

    for round in 0..1000 {
        let mut ctx = Md5::new();
        if round & 1 == 1 {
            ctx.update(password);
        } else {
            ctx.update(fin);
        }
        if round % 3 != 0 {
            ctx.update(salt);
        }
        if round % 7 != 0 {
            ctx.update(password);
        }
        if round & 1 == 1 {
            ctx.update(fin);
        } else {
            ctx.update(password);
        }
        fin = ctx.finalize();
    }

    let mut out = String::with_capacity(3 + salt.len() + 1 + 22);
    out.push_str("$1$");
    out.push_str(&String::from_utf8_lossy(salt));
    out.push('$');
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        let v = u32::from(fin[a]) << 16 | u32::from(fin[b]) << 8 | u32::from(fin[c]);
        push_b64(&mut out, v, 4);
    }
    push_b64(&mut out, u32::from(fin[11]), 2);
    out
}

/// Appends `n` characters of crypt's little-endian base-64.
fn push_b64(out: &mut String, mut v: u32, n: usize) {
    for _ in 0..n {
        out.push(char::from(CRYPT_ALPHABET[(v & 0x3f) as usize]));
        v >>= 6;
    }
}

fn md5_crypt_verify(rest: &str, stored: &str, password: &[u8]) -> Checked {
    // The salt ends at the next `$` and is at most eight characters (crypt-md5.c).
    let salt_end = rest.find('$').unwrap_or(rest.len()).min(8);
    let salt = &rest.as_bytes()[..salt_end];
    let computed = md5_crypt(password, salt);
    Ok(ct_eq(computed.as_bytes(), stored.as_bytes()))
}

#[derive(Clone, Copy)]
enum ShaVariant {
    Sha256,
    Sha512,
}

/// glibc's SHA-crypt rounds limits: out-of-range requests are clamped.
const SHA_ROUNDS_MIN: u32 = 1000;
const SHA_ROUNDS_MAX: u32 = 999_999_999;
const SHA_ROUNDS_DEFAULT: u32 = 5000;

/// Computes the complete crypt string `$5$`/`$6$[rounds=N$]salt$hash` for `salt` (at most 16
/// characters; the caller has cut it).
fn sha_crypt(
    variant: ShaVariant,
    password: &[u8],
    salt: &str,
    rounds: Option<u32>,
) -> Option<String> {
    let effective = rounds.unwrap_or(SHA_ROUNDS_DEFAULT) as usize;
    let (id, hash) = match variant {
        ShaVariant::Sha256 => {
            let params = sha_crypt::Sha256Params::new(effective).ok()?;
            (
                "5",
                sha_crypt::sha256_crypt_b64(password, salt.as_bytes(), &params).ok()?,
            )
        }
        ShaVariant::Sha512 => {
            let params = sha_crypt::Sha512Params::new(effective).ok()?;
            (
                "6",
                sha_crypt::sha512_crypt_b64(password, salt.as_bytes(), &params).ok()?,
            )
        }
    };
    Some(match rounds {
        Some(r) => format!("${id}$rounds={r}${salt}${hash}"),
        None => format!("${id}${salt}${hash}"),
    })
}

fn sha_crypt_generate(variant: ShaVariant, password: &[u8], rounds: Option<u32>) -> String {
    let rounds = rounds.map(|r| r.clamp(SHA_ROUNDS_MIN, SHA_ROUNDS_MAX));
    let salt = random_crypt_salt(16);
    // The parameters are in range and the salt is valid, so this cannot fail.
    sha_crypt(variant, password, &salt, rounds).expect("SHA-crypt with valid parameters")
}

/// Recomputes the crypt string from the stored setting as glibc's `crypt()` does (rounds
/// clamped and echoed only when given, salt cut at `$` or 16 characters) and compares the whole
/// string, exactly as Dovecot compares `crypt()` output with the stored value.
fn sha_crypt_verify(variant: ShaVariant, stored: &str, password: &[u8]) -> Checked {
    let mut rest = &stored[3..];
    let mut rounds = None;
    if let Some(after) = rest.strip_prefix("rounds=")
        && let Some((num, tail)) = after.split_once('$')
        && let Some(n) = parse_decimal(num)
    {
        rounds = Some(n.clamp(SHA_ROUNDS_MIN, SHA_ROUNDS_MAX));
        rest = tail;
    }
    let salt_end = rest.find('$').unwrap_or(rest.len()).min(16);
    if !rest.is_char_boundary(salt_end) || !rest[..salt_end].is_ascii() {
        return Err(Problem::Malformed("SHA-crypt salt is not ASCII"));
    }
    let salt = &rest[..salt_end];
    let computed = sha_crypt(variant, password, salt, rounds)
        .ok_or(Problem::Malformed("invalid SHA-crypt parameters"))?;
    Ok(ct_eq(computed.as_bytes(), stored.as_bytes()))
}

const BCRYPT_COST_DEFAULT: u32 = 5;

fn bcrypt_generate(password: &[u8], cost: Option<u32>) -> String {
    let cost = cost.unwrap_or(BCRYPT_COST_DEFAULT).clamp(4, 31);
    let salt = random_bytes::<16>();
    // bcrypt only reads 72 bytes (including crypt_blowfish's terminating NUL); the crate
    // truncates the same way.
    bcrypt::hash_with_salt(password, cost, salt)
        .map(|parts| parts.format_for_version(bcrypt::Version::TwoY))
        .expect("bcrypt with a valid cost")
}

/// `$2a$`/`$2b$`/`$2y$` + two-digit cost + `$` + 22 salt and 31 hash characters.
fn bcrypt_verify(stored: &str, password: &[u8]) -> Checked {
    let bytes = stored.as_bytes();
    let well_formed = bytes.len() == 60
        && bytes[4].is_ascii_digit()
        && bytes[5].is_ascii_digit()
        && bytes[6] == b'$'
        && bytes[7..].iter().all(|b| CRYPT_ALPHABET.contains(b));
    if !well_formed {
        return Err(Problem::Malformed("malformed bcrypt string"));
    }
    bcrypt::verify(password, stored).map_err(|_| Problem::Malformed("invalid bcrypt string"))
}

/// Dovecot writes libsodium's `crypto_pwhash_str()` defaults: ARGON2I with t=4, m=32 MiB;
/// ARGON2ID with t=3 (rounds below that are raised, as libsodium does), m=64 MiB.
fn argon2_generate(algorithm: argon2::Algorithm, password: &[u8], rounds: Option<u32>) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let (t_default, m_cost) = match algorithm {
        argon2::Algorithm::Argon2i => (4, 32 * 1024),
        _ => (3, 64 * 1024),
    };
    let t_cost = rounds.unwrap_or(t_default).max(t_default);
    let params = argon2::Params::new(m_cost, t_cost, 1, Some(32)).expect("valid argon2 params");
    let hasher = argon2::Argon2::new(algorithm, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(&random_bytes::<16>()).expect("16-byte salt");
    hasher
        .hash_password(password, &salt)
        .map(|h| h.to_string())
        .expect("argon2 with valid parameters")
}

/// Argon2 PHC strings (RFC 9106 for the function; `$argon2i$`/`$argon2id$` as libsodium writes).
fn argon2_verify(stored: &str, password: &[u8]) -> Checked {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    if !(stored.starts_with("$argon2i$") || stored.starts_with("$argon2id$")) {
        return Err(Problem::Malformed("not an argon2i/argon2id string"));
    }
    let parsed =
        PasswordHash::new(stored).map_err(|_| Problem::Malformed("malformed argon2 string"))?;
    if parsed.hash.is_none() {
        return Err(Problem::Malformed("argon2 string without hash"));
    }
    match argon2::Argon2::default().verify_password(password, &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(_) => Err(Problem::Malformed("invalid argon2 parameters")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        assert_eq!(hex_decode("00ffAb"), Some(vec![0, 255, 0xab]));
        assert_eq!(hex_decode("0"), None);
        assert_eq!(hex_decode("zz"), None);
        assert_eq!(hex_encode(&[0, 255, 0xab]), "00ffab");
    }

    #[test]
    fn md5_crypt_known_vector() {
        // From pwhash's and FreeBSD's test suites.
        assert_eq!(
            md5_crypt(b"password", b"5pZSV9va"),
            "$1$5pZSV9va$azfrPr6af3Fc7dLblQXVa0"
        );
    }

    #[test]
    fn scheme_names_round_trip() {
        for s in Scheme::ALL {
            assert_eq!(s.name().parse::<Scheme>().ok(), Some(s));
            assert_eq!(s.name().to_lowercase().parse::<Scheme>().ok(), Some(s));
        }
        assert_eq!("cleartext".parse::<Scheme>().ok(), Some(Scheme::Plain));
        assert_eq!("SHA1".parse::<Scheme>().ok(), Some(Scheme::Sha));
        assert!("NOPE".parse::<Scheme>().is_err());
        assert!("SHA.HEX".parse::<Scheme>().is_err());
    }

    #[test]
    fn no_prefix_is_crypt() {
        let h = hash(Scheme::Md5Crypt, b"secret");
        let bare = h.strip_prefix("{MD5-CRYPT}").unwrap();
        assert!(verify(bare, b"secret").unwrap());
        assert!(!verify(bare, b"Secret").unwrap());
    }

    #[test]
    fn nul_ends_the_password() {
        let h = hash(Scheme::Ssha, b"abc");
        assert!(verify(&h, b"abc\0def").unwrap());
        assert_eq!(hash(Scheme::Sha, b"abc\0x"), hash(Scheme::Sha, b"abc"));
    }

    #[test]
    fn plain_unsafe_text_is_base64() {
        let h = hash(Scheme::Plain, b"a:b");
        assert_eq!(h, "{PLAIN.B64}YTpi");
        assert!(verify(&h, b"a:b").unwrap());
        let h = hash(Scheme::Plain, b"\xff\xfe");
        assert!(h.starts_with("{PLAIN.B64}"));
        assert!(verify(&h, b"\xff\xfe").unwrap());
        assert_eq!(
            hash(Scheme::Plain, "pässwörd".as_bytes()),
            "{PLAIN}pässwörd"
        );
    }

    #[test]
    fn unsupported_schemes_are_errors() {
        for stored in [
            "{NOPE}x",
            "{CRAM-MD5}abcd",
            "{SHA.ROT13}x",
            "{DIGEST-MD5}abcd",
        ] {
            assert!(
                matches!(verify(stored, b"x"), Err(AuthError::UnsupportedScheme(_))),
                "{stored}"
            );
        }
    }

    #[test]
    fn other_crypt_methods_go_to_libxcrypt() {
        let yescrypt = "$y$j9T$Qeof7nTZR1kT1cFwdlZqd0$B5.LdYzAcE8IwmEjeOUR9RwIwpalyyj/oxaiDqnryZ/";
        for stored in [yescrypt.to_owned(), format!("{{CRYPT}}{yescrypt}")] {
            assert!(
                verify(&stored, b"WA7NERURoVlDegBUVyM1Kk").unwrap(),
                "{stored}"
            );
            assert!(
                !verify(&stored, b"WA7NERURoVlDegBUVyM1KK").unwrap(),
                "{stored}"
            );
        }
        let gost = crate::crypt::crypt(b"pw", &crate::crypt::gensalt("$gy$", 0).unwrap()).unwrap();
        assert!(verify(&gost, b"pw").unwrap());
        // Well-formed for its method but not a hash of "x"; and settings crypt(3) refuses.
        for stored in ["$y$j9T$salt$hash", "$3$$abc", "$7$abc", "$y$", "$nope$x$y"] {
            assert!(!verify(stored, b"x").unwrap(), "{stored}");
        }
    }

    #[test]
    fn malformed_hashes_are_false() {
        for stored in [
            "",
            "{SHA}",
            "{SHA}!!!!",
            "{SHA}abcd",
            "{SSHA}",
            "{SSHA}AAAA",
            "{SHA.HEX}zz",
            "{PBKDF2}",
            "{PBKDF2}$1$salt$0$220f5104acf97e303c6474d40ba27f44d299d00a",
            "{PBKDF2}$1$salt$x$220f5104acf97e303c6474d40ba27f44d299d00a",
            "{PBKDF2}$1$salt$5$220f",
            "{PBKDF2}$1$salt$5",
            "{PBKDF2}$2$salt$5$220f5104acf97e303c6474d40ba27f44d299d00a",
            "{BLF-CRYPT}$2y$05$short",
            "{BLF-CRYPT}$2y$99$......................YgIDy4hFBdVlc/6LHnD9mX488r9cLd2",
            "$2y$0x$......................YgIDy4hFBdVlc/6LHnD9mX488r9cLd2",
            "{ARGON2ID}$argon2id$v=19$m=1,t=1,p=1$c2FsdHNhbHQ",
            "{ARGON2ID}$argon2id$garbage",
            "{ARGON2I}plain",
            "$1$",
            "$5$",
            "$6$rounds=$x",
            "$6$rounds=10$salt$hash",
            "*",
            "!$6$abc$def",
            "abc",
            "{CRYPT}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}",
            "{MD5}nothex",
            "{PLAIN.HEX}0",
            "{SMD5.HEX}00",
        ] {
            assert!(!verify(stored, b"").unwrap(), "{stored}");
            assert!(!verify(stored, b"x").unwrap(), "{stored}");
        }
    }

    #[test]
    fn encodings_in_hash_with() {
        let opts = HashOptions {
            encoding: Some(Encoding::Hex),
            ..HashOptions::default()
        };
        let h = hash_with(Scheme::Sha, b"pass", &opts);
        assert_eq!(h, "{SHA.HEX}9d4e1e23bd5b727046a9e3b4b7db57bd8d6ee684");
        assert!(verify(&h, b"pass").unwrap());
        let opts = HashOptions {
            encoding: Some(Encoding::Base64),
            ..HashOptions::default()
        };
        let h = hash_with(Scheme::PlainMd5, b"pass", &opts);
        assert_eq!(h, "{PLAIN-MD5.B64}Gh3JHJBzJcaScd3wyUS8cg==");
        let opts = HashOptions {
            encoding: Some(Encoding::None),
            ..HashOptions::default()
        };
        // A binary digest cannot be written verbatim: base64 it is.
        assert!(hash_with(Scheme::Sha, b"pass", &opts).starts_with("{SHA}"));
    }

    #[test]
    fn rounds_option() {
        let opts = HashOptions {
            rounds: Some(10),
            ..HashOptions::default()
        };
        let h = hash_with(Scheme::Sha512Crypt, b"pw", &opts);
        assert!(h.starts_with("{SHA512-CRYPT}$6$rounds=1000$"), "{h}");
        assert!(verify(&h, b"pw").unwrap());
        let h = hash_with(Scheme::Pbkdf2, b"pw", &opts);
        assert!(h.contains("$10$"), "{h}");
        assert!(verify(&h, b"pw").unwrap());
        let h = hash_with(Scheme::BlfCrypt, b"pw", &opts);
        assert!(h.starts_with("{BLF-CRYPT}$2y$10$"), "{h}");
    }

    #[test]
    fn split_scheme_forms() {
        assert_eq!(split_scheme("{SHA}abc"), (Some("SHA"), "abc"));
        assert_eq!(split_scheme("$1$abc"), (None, "$1$abc"));
        assert_eq!(split_scheme("{unterminated"), (None, "{unterminated"));
    }
}
