//! The keys of SCRAM (RFC 5802 section 3; SCRAM-SHA-256 in RFC 7677) and the form in which
//! Dovecot stores them, `{SCRAM-SHA-256}iterations,salt,StoredKey,ServerKey` (Dovecot's
//! `password-scheme-scram.c`: base64 salt and keys, at least 4096 iterations).
//!
//! A server that stores only StoredKey and ServerKey can check a SCRAM proof but cannot
//! impersonate the client to another server; one that stores the plaintext derives the keys for
//! each exchange ([`ScramKeys::derive`]). The exchange itself is in [`crate::sasl`].
//!
//! SASLprep (RFC 4013) is not applied to passwords, as Dovecot does not apply it either: an
//! ASCII password is unaffected, and a non-ASCII one is used as the UTF-8 bytes typed.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::scheme::ct_eq;

/// Fewest iterations accepted in a stored entry (Dovecot's `SCRAM_MIN_ITERATE_COUNT`, RFC 7677
/// section 4's recommendation).
pub const MIN_ITERATIONS: u32 = 4096;
/// Iterations used for new entries and for keys derived from a plaintext password.
pub const DEFAULT_ITERATIONS: u32 = 4096;
/// More iterations than this in a stored entry is refused: each check would cost minutes.
pub const MAX_ITERATIONS: u32 = 10_000_000;

/// The hash function of a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScramHash {
    Sha1,
    Sha256,
}

impl ScramHash {
    /// The mechanism (and Dovecot scheme) name.
    pub fn name(self) -> &'static str {
        match self {
            ScramHash::Sha1 => "SCRAM-SHA-1",
            ScramHash::Sha256 => "SCRAM-SHA-256",
        }
    }

    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            ScramHash::Sha1 => 20,
            ScramHash::Sha256 => 32,
        }
    }

    /// `H(data)`.
    pub fn hash(self, data: &[u8]) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(match self {
            ScramHash::Sha1 => Sha1::digest(data).to_vec(),
            ScramHash::Sha256 => Sha256::digest(data).to_vec(),
        })
    }

    /// `HMAC(key, data)`.
    pub fn hmac(self, key: &[u8], data: &[u8]) -> Zeroizing<Vec<u8>> {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
            // HMAC takes a key of any length; the error case cannot happen.
            match <M as hmac::digest::KeyInit>::new_from_slice(key) {
                Ok(mut mac) => {
                    mac.update(data);
                    mac.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            }
        }
        Zeroizing::new(match self {
            ScramHash::Sha1 => run::<Hmac<Sha1>>(key, data),
            ScramHash::Sha256 => run::<Hmac<Sha256>>(key, data),
        })
    }

    /// `Hi(password, salt, i)`: PBKDF2 with HMAC-H and one output block (RFC 5802 section 2.2).
    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(vec![0u8; self.digest_len()]);
        match self {
            ScramHash::Sha1 => pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, iterations, &mut out),
            ScramHash::Sha256 => {
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out)
            }
        }
        out
    }
}

/// What a server needs to check a SCRAM proof: the salt and iteration count it sends, and the
/// two keys derived from the salted password. `Debug` shows no key.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramKeys {
    pub hash: ScramHash,
    pub iterations: u32,
    /// The salt exactly as sent to the client (base64; kept as stored, as Dovecot sends it).
    pub salt_b64: String,
    pub stored_key: Zeroizing<Vec<u8>>,
    pub server_key: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for ScramKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramKeys")
            .field("hash", &self.hash)
            .field("iterations", &self.iterations)
            .field("salt_b64", &self.salt_b64)
            .finish_non_exhaustive()
    }
}

impl ScramKeys {
    /// Derives the keys from a plaintext password (RFC 5802 section 3):
    /// `SaltedPassword = Hi(password, salt, i)`, `StoredKey = H(HMAC(SaltedPassword, "Client
    /// Key"))`, `ServerKey = HMAC(SaltedPassword, "Server Key")`.
    pub fn derive(hash: ScramHash, password: &[u8], salt: &[u8], iterations: u32) -> ScramKeys {
        let salted = hash.salted_password(password, salt, iterations);
        let client_key = hash.hmac(&salted, b"Client Key");
        ScramKeys {
            hash,
            iterations,
            salt_b64: STANDARD.encode(salt),
            stored_key: hash.hash(&client_key),
            server_key: hash.hmac(&salted, b"Server Key"),
        }
    }

    /// Keys for a new entry: 16 random salt bytes and [`DEFAULT_ITERATIONS`] (or `iterations`,
    /// raised to [`MIN_ITERATIONS`]).
    pub fn generate(hash: ScramHash, password: &[u8], iterations: Option<u32>) -> ScramKeys {
        let iterations = iterations
            .unwrap_or(DEFAULT_ITERATIONS)
            .clamp(MIN_ITERATIONS, MAX_ITERATIONS);
        ScramKeys::derive(hash, password, &crate::scheme::random_salt(), iterations)
    }

    /// Parses Dovecot's `iterations,salt,StoredKey,ServerKey`.
    pub fn parse(hash: ScramHash, data: &str) -> Result<ScramKeys, &'static str> {
        let fields: Vec<&str> = data.split(',').collect();
        let [iterations, salt, stored, server] = fields[..] else {
            return Err("SCRAM entry is not iterations,salt,StoredKey,ServerKey");
        };
        let iterations = iterations
            .parse::<u32>()
            .ok()
            .filter(|i| (MIN_ITERATIONS..=MAX_ITERATIONS).contains(i))
            .ok_or("SCRAM iteration count is not a number from 4096 to 10000000")?;
        if salt.is_empty() || STANDARD.decode(salt).is_err() {
            return Err("SCRAM salt is not base64");
        }
        let key = |text: &str, what| {
            STANDARD
                .decode(text)
                .ok()
                .filter(|k| k.len() == hash.digest_len())
                .map(Zeroizing::new)
                .ok_or(what)
        };
        Ok(ScramKeys {
            hash,
            iterations,
            salt_b64: salt.to_owned(),
            stored_key: key(stored, "SCRAM StoredKey is not a base64 digest")?,
            server_key: key(server, "SCRAM ServerKey is not a base64 digest")?,
        })
    }

    /// Dovecot's stored form, without the `{SCHEME}` prefix.
    pub fn to_dovecot(&self) -> String {
        format!(
            "{},{},{},{}",
            self.iterations,
            self.salt_b64,
            STANDARD.encode(&*self.stored_key),
            STANDARD.encode(&*self.server_key)
        )
    }

    /// Whether `password` derives these keys (a plaintext login against a SCRAM entry).
    pub fn matches_password(&self, password: &[u8]) -> bool {
        let Ok(salt) = STANDARD.decode(&self.salt_b64) else {
            return false;
        };
        let derived = ScramKeys::derive(self.hash, password, &salt, self.iterations);
        ct_eq(&derived.stored_key, &self.stored_key)
    }
}

/// The client's side of the computation (RFC 5802 section 3), for tests and diagnostic tools:
/// the `ClientProof` to send for `auth_message`, and the `ServerSignature` to expect back.
pub fn client_proof(
    hash: ScramHash,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
    auth_message: &[u8],
) -> (Vec<u8>, Vec<u8>) {
    let salted = hash.salted_password(password, salt, iterations);
    let client_key = hash.hmac(&salted, b"Client Key");
    let client_signature = hash.hmac(&hash.hash(&client_key), auth_message);
    let proof = client_key
        .iter()
        .zip(client_signature.iter())
        .map(|(k, s)| k ^ s)
        .collect();
    let server_key = hash.hmac(&salted, b"Server Key");
    (proof, hash.hmac(&server_key, auth_message).to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_5802_keys() {
        // RFC 5802 section 5: user "user", password "pencil", salt QSXCR+Q6sek8bf92, i=4096.
        let salt = STANDARD.decode("QSXCR+Q6sek8bf92").unwrap();
        let keys = ScramKeys::derive(ScramHash::Sha1, b"pencil", &salt, 4096);
        assert_eq!(keys.salt_b64, "QSXCR+Q6sek8bf92");
        let text = keys.to_dovecot();
        let back = ScramKeys::parse(ScramHash::Sha1, &text).unwrap();
        assert_eq!(back, keys);
        assert!(back.matches_password(b"pencil"));
        assert!(!back.matches_password(b"pencil2"));
    }

    #[test]
    fn parse_refuses_malformed_entries() {
        let good = ScramKeys::generate(ScramHash::Sha256, b"pw", None).to_dovecot();
        assert!(ScramKeys::parse(ScramHash::Sha256, &good).is_ok());
        // The right key length is checked per hash.
        assert!(ScramKeys::parse(ScramHash::Sha1, &good).is_err());
        let fields: Vec<&str> = good.split(',').collect();
        for bad in [
            String::new(),
            "4096".to_owned(),
            format!("4095,{},{},{}", fields[1], fields[2], fields[3]),
            format!("x,{},{},{}", fields[1], fields[2], fields[3]),
            format!("-4096,{},{},{}", fields[1], fields[2], fields[3]),
            format!("4096,,{},{}", fields[2], fields[3]),
            format!("4096,!!,{},{}", fields[2], fields[3]),
            format!("4096,{},AAAA,{}", fields[1], fields[3]),
            format!("4096,{},{},", fields[1], fields[2]),
            format!("{good},extra"),
        ] {
            assert!(ScramKeys::parse(ScramHash::Sha256, &bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_hides_keys() {
        let keys = ScramKeys::generate(ScramHash::Sha1, b"pw", None);
        let shown = format!("{keys:?}");
        assert!(
            !shown.contains(&STANDARD.encode(&*keys.stored_key)),
            "{shown}"
        );
    }
}
