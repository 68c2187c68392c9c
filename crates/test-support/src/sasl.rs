//! SASL for tests: a user backend over the real [`auth::Authenticator`] (a passwd-file whose
//! users store their passwords in the forms the mechanisms care about), and the client side of
//! CRAM-MD5 and SCRAM, so that tests can run whole exchanges against a session or the server.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use auth::passwd_file::PasswdFile;
use auth::sasl::Mechanism;
use auth::scheme::{Scheme, hash};
use auth::scram::client_proof;
use auth::{AuthError, AuthOutcome, AuthSettings, Authenticator, UserRecord};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mail_store::maildir::MaildirStore;
use mail_store::{MailStore, StoreError};
use session_api::{
    BoxedStream, SaslExchange, TlsUpgrade, UpgradeFuture, UserBackend, VerifiedUpgradeFuture,
};

/// `(name, password, scheme)`: alice's password is stored in plaintext (every mechanism works),
/// bob's as SCRAM-SHA-256 keys (PLAIN, LOGIN and SCRAM-SHA-256), carol's as a one-way hash
/// (PLAIN and LOGIN only).
pub const SASL_USERS: [(&str, &str, Scheme); 3] = [
    ("alice", "wonderland", Scheme::Plain),
    ("bob", "builder", Scheme::ScramSha256),
    ("carol", "christmas", Scheme::Sha512Crypt),
];

/// Writes the passwd-file of [`SASL_USERS`] to `path`.
pub fn write_passwd_file(path: &Path) {
    let lines: String = SASL_USERS
        .iter()
        .map(|(name, pw, scheme)| format!("{name}:{}\n", hash(*scheme, pw.as_bytes())))
        .collect();
    std::fs::write(path, lines).expect("write passwd-file");
}

/// A STARTTLS/STLS stand-in for SASL EXTERNAL tests: keeps the byte stream as it is and
/// reports `client_user` as the user of a verified client certificate, as the binary's
/// verifying upgrade would (its real handshakes are tested in columba's `tls` module).
pub struct CertificateUpgrade {
    pub client_user: Option<&'static str>,
}

impl TlsUpgrade for CertificateUpgrade {
    fn upgrade(&self, stream: BoxedStream) -> UpgradeFuture {
        Box::pin(async move { Ok(stream) })
    }

    fn upgrade_verified(&self, stream: BoxedStream) -> VerifiedUpgradeFuture {
        let user = self.client_user.map(str::to_owned);
        Box::pin(async move { Ok((stream, user)) })
    }
}

/// A backend offering `mechanisms` over a passwd-file of [`SASL_USERS`]; each user's Maildir is
/// `root/<name>`.
pub struct AuthBackend {
    auth: Arc<Authenticator>,
    root: PathBuf,
}

impl AuthBackend {
    pub fn new(root: &Path, mechanisms: &[Mechanism]) -> AuthBackend {
        let passwd = root.join("users");
        write_passwd_file(&passwd);
        let settings = AuthSettings {
            mechanisms: mechanisms.to_vec(),
            ..AuthSettings::default()
        };
        // The passwd-file is the userdb too, as in the server's default configuration.
        let auth = Authenticator::new(
            Box::new(PasswdFile::new(&passwd)),
            Some(Box::new(PasswdFile::new(&passwd))),
            settings,
        )
        .expect("authenticator");
        AuthBackend {
            auth: Arc::new(auth),
            root: root.to_owned(),
        }
    }
}

impl UserBackend for AuthBackend {
    fn authenticate(&self, username: &str, password: &[u8]) -> Result<AuthOutcome, AuthError> {
        self.auth.verify_plain(username, password)
    }

    fn open_store(&self, user: &UserRecord) -> Result<Arc<dyn MailStore>, StoreError> {
        Ok(Arc::new(MaildirStore::new(self.root.join(&user.name))?))
    }

    fn mechanisms(&self) -> Vec<Mechanism> {
        self.auth.mechanisms().to_vec()
    }

    fn sasl_exchange(&self, mechanism: Mechanism) -> Option<Box<dyn SaslExchange>> {
        self.auth
            .start(mechanism)
            .map(|e| Box::new(e) as Box<dyn SaslExchange>)
    }

    fn sasl_external(&self, identity: &str) -> Option<Box<dyn SaslExchange>> {
        self.auth
            .start_external(identity)
            .map(|e| Box::new(e) as Box<dyn SaslExchange>)
    }
}

/// The client side of SCRAM (RFC 5802 section 7) without channel binding.
pub struct ScramClient {
    mechanism: Mechanism,
    user: String,
    password: Vec<u8>,
    nonce: String,
    expected_server_final: Option<String>,
}

impl ScramClient {
    pub fn new(mechanism: Mechanism, user: &str, password: &str) -> ScramClient {
        assert!(mechanism.scram_hash().is_some(), "{mechanism} is not SCRAM");
        ScramClient {
            mechanism,
            user: user.replace('=', "=3D").replace(',', "=2C"),
            password: password.as_bytes().to_vec(),
            nonce: "c1ientNonce+/0123456789".to_owned(),
            expected_server_final: None,
        }
    }

    fn bare(&self) -> String {
        format!("n={},r={}", self.user, self.nonce)
    }

    /// The client-first message.
    pub fn first(&self) -> String {
        format!("n,,{}", self.bare())
    }

    /// The client-final message answering `server_first`.
    pub fn answer(&mut self, server_first: &str) -> String {
        let rest = server_first
            .strip_prefix("r=")
            .expect("server-first starts with r=");
        let (nonce, rest) = rest.split_once(",s=").expect("server-first has s=");
        assert!(nonce.starts_with(&self.nonce), "the server kept our nonce");
        let (salt, iterations) = rest.split_once(",i=").expect("server-first has i=");
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.bare());
        let (proof, signature) = client_proof(
            self.mechanism.scram_hash().expect("SCRAM"),
            &self.password,
            &STANDARD.decode(salt).expect("base64 salt"),
            iterations.parse().expect("iteration count"),
            auth_message.as_bytes(),
        );
        self.expected_server_final = Some(format!("v={}", STANDARD.encode(signature)));
        format!("{without_proof},p={}", STANDARD.encode(proof))
    }

    /// Whether `server_final` proves the server knew the keys.
    pub fn server_final_ok(&self, server_final: &str) -> bool {
        self.expected_server_final.as_deref() == Some(server_final)
    }
}

/// The client's CRAM-MD5 answer to `challenge`.
pub fn cram_md5(user: &str, password: &str, challenge: &[u8]) -> String {
    String::from_utf8(auth::sasl::cram_md5_response(
        user,
        password.as_bytes(),
        challenge,
    ))
    .expect("ASCII response")
}

/// Base64, as continuation lines carry SASL data.
pub fn b64(data: impl AsRef<[u8]>) -> String {
    STANDARD.encode(data)
}

/// Decodes the data of a `+ <base64>` continuation line.
pub fn unb64(continuation: &str) -> Vec<u8> {
    let data = continuation
        .strip_prefix("+ ")
        .or_else(|| continuation.strip_prefix('+'))
        .unwrap_or_else(|| panic!("not a continuation: {continuation:?}"));
    STANDARD.decode(data.trim()).expect("base64 continuation")
}
