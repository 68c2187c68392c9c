//! OAuth 2.0 bearer tokens for OAUTHBEARER and XOAUTH2: a [`TokenValidator`] says whether a
//! token is good and whose it is. [`Introspection`] asks the authorization server, as RFC 7662
//! describes (Dovecot's `passdb oauth2` with `introspection_mode = post`): it POSTs
//! `token=<token>` to the configured endpoint and reads `active` and the user name field
//! (`username`, or e.g. `email`) of the JSON answer.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::AuthError;
use crate::http::{HttpUrl, post_form};
use crate::sasl::oauth::BearerToken;

/// What a validator found out about a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenStatus {
    /// The token may be used now, by this user.
    Active { username: String },
    /// The token may not be used (inactive, expired, lacking the scope, naming no user): why,
    /// for the log.
    Inactive { reason: String },
}

/// Checks bearer tokens. A call may block (network). An `Err` is a temporary failure (the
/// authorization server could not be asked), never a verdict on the token.
pub trait TokenValidator: Send + Sync {
    fn validate(&self, token: &BearerToken) -> Result<TokenStatus, AuthError>;

    /// The scope a client should ask for, sent in the error status of a rejected token
    /// (RFC 7628 section 3.2.2).
    fn scope(&self) -> Option<&str> {
        None
    }
}

/// Where the system's trusted certificate authorities are on Debian (ca-certificates).
pub const SYSTEM_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// How to reach the introspection endpoint.
#[derive(Clone, PartialEq, Eq)]
pub struct IntrospectionSettings {
    /// `http://` or `https://` URL of the endpoint.
    pub url: String,
    /// The field of the answer that holds the user name (`username`, `email`, `sub`...).
    pub username_field: String,
    /// Credentials of this server at the authorization server (RFC 7662 section 2.1 requires
    /// the protected resource to authenticate), sent as HTTP Basic.
    pub client_id: Option<String>,
    pub client_secret: Option<Zeroizing<String>>,
    /// A scope the token must have (among the answer's space-separated `scope`), also named
    /// in the error status.
    pub required_scope: Option<String>,
    /// How long asking may take in all.
    pub timeout: Duration,
    /// PEM certificate authorities to trust for `https://`; default [`SYSTEM_CA_FILE`].
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for IntrospectionSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntrospectionSettings")
            .field("url", &self.url)
            .field("username_field", &self.username_field)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("required_scope", &self.required_scope)
            .field("timeout", &self.timeout)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// An RFC 7662 token introspection client.
pub struct Introspection {
    settings: IntrospectionSettings,
    url: HttpUrl,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// `Basic base64(client_id:client_secret)`, when configured.
    authorization: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for Introspection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Introspection")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Introspection {
    /// Checks the URL and, for `https://`, loads the trusted authorities now.
    pub fn new(settings: IntrospectionSettings) -> Result<Introspection, AuthError> {
        let config = |reason: String| AuthError::Config(format!("oauth2 introspection: {reason}"));
        let url = HttpUrl::parse(&settings.url).map_err(config)?;
        if settings.username_field.is_empty() {
            return Err(config("empty username_field".to_owned()));
        }
        let tls = if url.tls {
            let ca_file = settings
                .ca_file
                .clone()
                .unwrap_or_else(|| PathBuf::from(SYSTEM_CA_FILE));
            Some(Arc::new(client_tls(&ca_file).map_err(config)?))
        } else {
            None
        };
        let authorization = match (&settings.client_id, &settings.client_secret) {
            (Some(id), secret) => {
                if id.contains(':') {
                    return Err(config("client_id contains ':'".to_owned()));
                }
                let pair = Zeroizing::new(format!(
                    "{id}:{}",
                    secret.as_ref().map(|s| s.as_str()).unwrap_or("")
                ));
                Some(Zeroizing::new(format!("Basic {}", STANDARD.encode(&*pair))))
            }
            (None, Some(_)) => return Err(config("client_secret without client_id".to_owned())),
            (None, None) => None,
        };
        Ok(Introspection {
            settings,
            url,
            tls,
            authorization,
        })
    }

    /// Reads the endpoint's JSON answer (RFC 7662 section 2.2).
    fn verdict(&self, answer: &serde_json::Value) -> TokenStatus {
        let inactive = |reason: &str| TokenStatus::Inactive {
            reason: reason.to_owned(),
        };
        if answer.get("active").and_then(serde_json::Value::as_bool) != Some(true) {
            return inactive("the endpoint says the token is not active");
        }
        // RFC 7662 section 2.2: `exp`, seconds since the epoch. The endpoint should have said
        // inactive; a stale cache in between should not let an expired token in.
        if let Some(exp) = answer.get("exp").and_then(serde_json::Value::as_f64) {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            if exp <= now {
                return inactive("the token has expired");
            }
        }
        if let Some(required) = &self.settings.required_scope {
            let scopes = answer
                .get("scope")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("");
            if !scopes.split(' ').any(|s| s == required) {
                return inactive("the token lacks the required scope");
            }
        }
        match answer
            .get(&self.settings.username_field)
            .and_then(serde_json::Value::as_str)
        {
            Some(name) if !name.is_empty() => TokenStatus::Active {
                username: name.to_owned(),
            },
            _ => inactive("the answer has no user name field"),
        }
    }
}

impl TokenValidator for Introspection {
    fn validate(&self, token: &BearerToken) -> Result<TokenStatus, AuthError> {
        let backend = |reason: String| AuthError::Backend {
            backend: "oauth2 introspection",
            reason,
        };
        let body = Zeroizing::new(format!(
            "token={}&token_type_hint=access_token",
            form_encode(token.expose())
        ));
        let mut headers = Vec::new();
        if let Some(auth) = &self.authorization {
            headers.push(("Authorization", auth.as_str()));
        }
        let response = post_form(
            &self.url,
            self.tls.as_ref(),
            &headers,
            body.as_bytes(),
            self.settings.timeout,
        )
        .map_err(|e| backend(format!("{}: {e}", self.settings.url)))?;
        if response.status != 200 {
            return Err(backend(format!(
                "{} answered HTTP {}",
                self.settings.url, response.status
            )));
        }
        let answer: serde_json::Value = serde_json::from_slice(&response.body)
            .map_err(|e| backend(format!("{} answered no JSON: {e}", self.settings.url)))?;
        if !answer.is_object() {
            return Err(backend(format!(
                "{} answered no JSON object",
                self.settings.url
            )));
        }
        Ok(self.verdict(&answer))
    }

    fn scope(&self) -> Option<&str> {
        self.settings.required_scope.as_deref()
    }
}

/// A rustls client configuration trusting the PEM authorities in `ca_file`.
fn client_tls(ca_file: &std::path::Path) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_file)
        .map_err(|e| format!("reading {}: {e}", ca_file.display()))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("parsing {}: {e}", ca_file.display()))?;
        // A bundle may hold certificates rustls cannot use; the others still count.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(format!("no usable certificate in {}", ca_file.display()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// `application/x-www-form-urlencoded` (WHATWG URL, the urlencoded serializer): unreserved
/// bytes as they are, space as `+`, everything else `%XX`.
fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn introspection(field: &str, scope: Option<&str>) -> Introspection {
        Introspection::new(IntrospectionSettings {
            url: "http://127.0.0.1:9/introspect".into(),
            username_field: field.into(),
            client_id: Some("columba".into()),
            client_secret: Some(Zeroizing::new("s3cret".into())),
            required_scope: scope.map(str::to_owned),
            timeout: Duration::from_secs(1),
            ca_file: None,
        })
        .unwrap()
    }

    #[test]
    fn verdicts() {
        let i = introspection("email", Some("mail"));
        let v = |json: &str| i.verdict(&serde_json::from_str(json).unwrap());
        assert_eq!(
            v(r#"{"active":true,"email":"a@b.c","scope":"openid mail","exp":99999999999}"#),
            TokenStatus::Active {
                username: "a@b.c".into()
            }
        );
        for inactive in [
            r#"{"active":false,"email":"a@b.c","scope":"mail"}"#,
            r#"{"active":"true","email":"a@b.c","scope":"mail"}"#,
            r#"{"email":"a@b.c","scope":"mail"}"#,
            r#"{"active":true,"email":"a@b.c","scope":"mail","exp":1000}"#,
            r#"{"active":true,"email":"a@b.c","scope":"mailbox"}"#,
            r#"{"active":true,"username":"a","scope":"mail"}"#,
            r#"{"active":true,"email":"","scope":"mail"}"#,
            r#"{"active":true,"email":7,"scope":"mail"}"#,
        ] {
            assert!(
                matches!(v(inactive), TokenStatus::Inactive { .. }),
                "{inactive}"
            );
        }
    }

    #[test]
    fn settings_and_secrets() {
        let i = introspection("username", None);
        assert_eq!(
            i.authorization.as_deref().map(String::as_str),
            Some("Basic Y29sdW1iYTpzM2NyZXQ=")
        );
        let shown = format!("{i:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("Y29sdW1i"),
            "{shown}"
        );
        let bad = |url: &str, field: &str| {
            Introspection::new(IntrospectionSettings {
                url: url.into(),
                username_field: field.into(),
                client_id: None,
                client_secret: None,
                required_scope: None,
                timeout: Duration::from_secs(1),
                ca_file: Some("/nonexistent/ca.pem".into()),
            })
            .is_err()
        };
        assert!(bad("ftp://x/", "username"));
        assert!(bad("http://x/", ""));
        assert!(bad("https://x/", "username"), "missing CA file");
        assert!(!bad("http://x/", "username"));
        assert_eq!(form_encode("a b+c/=é"), "a+b%2Bc%2F%3D%C3%A9");
    }
}
