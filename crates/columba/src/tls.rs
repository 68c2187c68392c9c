//! TLS for IMAPS and STARTTLS (RFC 8314, RFC 3501 6.2.1) with rustls, the self-signed
//! certificate the embedded default creates on first start, and optional client certificates
//! (`[tls] client_ca`) whose user SASL EXTERNAL logs in.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use auth::cert::{CertUserField, certificate_user};
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use session_api::{BoxedStream, TlsUpgrade, UpgradeFuture, VerifiedUpgradeFuture};
use tokio_rustls::TlsAcceptor;

/// Loads a PEM certificate chain and private key into a rustls acceptor.
#[cfg(test)]
pub fn acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    acceptor_with_client_auth(cert, key, None)
}

/// Client certificates: which authorities sign them and which field names the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertAuth {
    /// PEM certificates of the authorities whose client certificates are accepted.
    pub ca_file: PathBuf,
    pub username_field: CertUserField,
}

impl ClientCertAuth {
    /// The client certificate settings of `[tls]`, if `client_ca` is set.
    pub fn from_config(config: &crate::config::Config) -> Option<ClientCertAuth> {
        let ca_file = config.tls.client_ca.clone()?;
        let username_field = match config.tls.client_cert_username {
            crate::config::ClientCertUsername::CommonName => CertUserField::CommonName,
            crate::config::ClientCertUsername::Email => CertUserField::Email,
        };
        Some(ClientCertAuth {
            ca_file,
            username_field,
        })
    }
}

/// [`acceptor`], asking clients for a certificate when `client` is given. A client without
/// one still connects (it logs in with a password); one whose certificate does not verify
/// against `client.ca_file` (another authority, expired, not for client authentication) fails
/// the handshake.
pub fn acceptor_with_client_auth(
    cert: &Path,
    key: &Path,
    client: Option<&ClientCertAuth>,
) -> anyhow::Result<TlsAcceptor> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading certificate {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing certificate {}", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("no certificate found in {}", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading private key {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match client {
        None => builder.with_no_client_auth(),
        Some(client) => {
            let mut roots = rustls::RootCertStore::empty();
            let path = &client.ca_file;
            for ca in CertificateDer::pem_file_iter(path)
                .with_context(|| format!("reading client CA {}", path.display()))?
            {
                let ca = ca.with_context(|| format!("parsing client CA {}", path.display()))?;
                roots
                    .add(ca)
                    .with_context(|| format!("client CA {}", path.display()))?;
            }
            if roots.is_empty() {
                anyhow::bail!("no certificate found in client CA {}", path.display());
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .context("client certificate verifier")?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(certs, key)
        .context("certificate and key do not match")?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The user the client's certificate names, if it presented one (rustls verified it during
/// the handshake: only verified certificates are kept as peer certificates).
pub fn client_user(connection: &rustls::ServerConnection, field: CertUserField) -> Option<String> {
    let certificate = connection.peer_certificates()?.first()?;
    match certificate_user(certificate, field) {
        Ok(user) => user,
        Err(e) => {
            tracing::info!("client certificate names no usable user: {e}");
            None
        }
    }
}

/// Writes a self-signed certificate for `localhost` (and the loopback addresses) with its key,
/// the key readable by the owner only.
pub fn generate_self_signed(cert: &Path, key: &Path) -> anyhow::Result<()> {
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let generated = rcgen::generate_simple_self_signed(names)
        .context("generating a self-signed certificate")?;
    for path in [cert, key] {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
    }
    crate::fsutil::write_private(key, generated.key_pair.serialize_pem().as_bytes())?;
    crate::fsutil::write_atomic(cert, generated.cert.pem().as_bytes(), 0o644)?;
    Ok(())
}

/// The STARTTLS and STLS upgrade for listeners that verify client certificates: also gives
/// the session the user the certificate names, for SASL EXTERNAL.
pub struct StartTlsVerified {
    pub acceptor: TlsAcceptor,
    pub username_field: CertUserField,
}

impl TlsUpgrade for StartTlsVerified {
    fn upgrade(&self, stream: BoxedStream) -> UpgradeFuture {
        StartTls(self.acceptor.clone()).upgrade(stream)
    }

    fn upgrade_verified(&self, stream: BoxedStream) -> VerifiedUpgradeFuture {
        let acceptor = self.acceptor.clone();
        let field = self.username_field;
        Box::pin(async move {
            let tls = acceptor.accept(stream).await?;
            let user = client_user(tls.get_ref().1, field);
            Ok((Box::new(tls) as BoxedStream, user))
        })
    }
}

/// The STARTTLS (IMAP) and STLS (POP3) upgrade handed to sessions.
pub struct StartTls(pub TlsAcceptor);

impl TlsUpgrade for StartTls {
    fn upgrade(&self, stream: BoxedStream) -> UpgradeFuture {
        let acceptor = self.0.clone();
        Box::pin(async move {
            let tls = acceptor.accept(stream).await?;
            Ok(Box::new(tls) as BoxedStream)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose, SanType,
    };
    use rustls::pki_types::ServerName;

    /// A certificate authority for client certificates.
    struct Ca {
        cert: rcgen::Certificate,
        key: KeyPair,
    }

    impl Ca {
        fn new(name: &str) -> Ca {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.distinguished_name.push(DnType::CommonName, name);
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            let key = KeyPair::generate().unwrap();
            let cert = params.self_signed(&key).unwrap();
            Ca { cert, key }
        }

        /// A client certificate for `cn` (with `email` as subjectAltName) and its key.
        fn client(&self, cn: &str, email: Option<&str>) -> (CertificateDer<'static>, KeyPair) {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.distinguished_name.push(DnType::CommonName, cn);
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            if let Some(email) = email {
                params.subject_alt_names = vec![SanType::Rfc822Name(email.try_into().unwrap())];
            }
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
            (cert.der().clone(), key)
        }
    }

    /// The server's certificate, key and client CA files in `dir`.
    fn server_files(dir: &Path, ca: &Ca) -> (PathBuf, PathBuf, PathBuf) {
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        generate_self_signed(&cert, &key).unwrap();
        let ca_file = dir.join("client-ca.pem");
        std::fs::write(&ca_file, ca.cert.pem()).unwrap();
        (cert, key, ca_file)
    }

    /// Runs a handshake between `upgrade` and a client presenting `client_cert`: the user the
    /// server found, or the server's handshake error.
    async fn handshake(
        upgrade: &dyn TlsUpgrade,
        server_cert: &Path,
        client_cert: Option<(CertificateDer<'static>, KeyPair)>,
    ) -> std::io::Result<Option<String>> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(server_cert).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let config = match client_cert {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    vec![cert],
                    PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
                )
                .unwrap(),
        };
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let (client_end, server_end) = tokio::io::duplex(64 * 1024);
        let client = async move {
            use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
            let name = ServerName::try_from("localhost").unwrap();
            if let Ok(mut tls) = connector.connect(name, client_end).await {
                // TLS 1.3 clients learn of a refused certificate only when they read.
                let _ = tls.write_all(b"x").await;
                let mut byte = [0u8; 1];
                let _ = tls.read(&mut byte).await;
            }
        };
        let server = async move {
            let (stream, user) = upgrade.upgrade_verified(Box::new(server_end)).await?;
            drop(stream);
            Ok(user)
        };
        let (_, user) = tokio::join!(client, server);
        user
    }

    #[tokio::test]
    async fn client_certificates_name_users_for_external() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("Columba test client CA");
        let (cert, key, ca_file) = server_files(dir.path(), &ca);
        let auth = |field| ClientCertAuth {
            ca_file: ca_file.clone(),
            username_field: field,
        };
        let by_cn = StartTlsVerified {
            acceptor: acceptor_with_client_auth(
                &cert,
                &key,
                Some(&auth(CertUserField::CommonName)),
            )
            .unwrap(),
            username_field: CertUserField::CommonName,
        };
        let by_email = StartTlsVerified {
            acceptor: acceptor_with_client_auth(&cert, &key, Some(&auth(CertUserField::Email)))
                .unwrap(),
            username_field: CertUserField::Email,
        };
        let alice = || ca.client("alice", Some("alice@example.org"));
        assert_eq!(
            handshake(&by_cn, &cert, Some(alice())).await.unwrap(),
            Some("alice".to_owned())
        );
        assert_eq!(
            handshake(&by_email, &cert, Some(alice())).await.unwrap(),
            Some("alice@example.org".to_owned())
        );
        // No certificate: the handshake succeeds, without a user.
        assert_eq!(handshake(&by_cn, &cert, None).await.unwrap(), None);
        // A certificate from another authority: refused in the handshake.
        let other = Ca::new("Someone else's CA");
        assert!(
            handshake(&by_cn, &cert, Some(other.client("alice", None)))
                .await
                .is_err()
        );
        // A self-signed client certificate: refused too.
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, "alice");
        let self_key = KeyPair::generate().unwrap();
        let self_signed = params.self_signed(&self_key).unwrap().der().clone();
        assert!(
            handshake(&by_cn, &cert, Some((self_signed, self_key)))
                .await
                .is_err()
        );
        // Listeners that do not verify client certificates never name a user.
        let plain = StartTls(acceptor(&cert, &key).unwrap());
        assert_eq!(handshake(&plain, &cert, Some(alice())).await.unwrap(), None);
    }

    /// The whole STARTTLS path with real TLS: an IMAP session whose upgrade verifies client
    /// certificates, a client presenting one made for alice by the test's CA, AUTHENTICATE
    /// EXTERNAL offered only after the handshake and logging alice in.
    #[tokio::test]
    async fn imap_starttls_then_authenticate_external() {
        use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("Columba test client CA");
        let (cert, key, ca_file) = server_files(dir.path(), &ca);
        let client_auth = ClientCertAuth {
            ca_file,
            username_field: CertUserField::CommonName,
        };
        let upgrade = StartTlsVerified {
            acceptor: acceptor_with_client_auth(&cert, &key, Some(&client_auth)).unwrap(),
            username_field: CertUserField::CommonName,
        };
        let backend = test_support::sasl::AuthBackend::new(
            dir.path(),
            &[
                auth::sasl::Mechanism::Plain,
                auth::sasl::Mechanism::External,
            ],
        );
        let ctx = Arc::new(imap_session::SessionContext {
            settings: imap_session::ImapSettings::default(),
            backend: Arc::new(backend),
            starttls: Some(Arc::new(upgrade)),
            penalty: Arc::new(auth::LoginPenalty::new(
                std::time::Duration::from_millis(1),
                std::time::Duration::from_millis(5),
            )),
        });
        let info = session_api::ConnectionInfo {
            remote: "192.0.2.7:50000".parse().unwrap(),
            local: "192.0.2.1:143".parse().unwrap(),
            implicit_tls: false,
            session_id: "external".into(),
        };
        let (client_end, server_end) = tokio::io::duplex(64 * 1024);
        tokio::spawn(imap_session::serve(Box::new(server_end), ctx, info));

        // Cleartext: greeting, no EXTERNAL, then STARTTLS.
        let mut plain = BufReader::new(client_end);
        let mut line = String::new();
        plain.read_line(&mut line).await.unwrap();
        assert!(line.starts_with("* OK"), "{line}");
        plain.write_all(b"c CAPABILITY\r\n").await.unwrap();
        line.clear();
        plain.read_line(&mut line).await.unwrap();
        assert!(
            line.starts_with("* CAPABILITY") && !line.contains("EXTERNAL"),
            "{line}"
        );
        line.clear();
        plain.read_line(&mut line).await.unwrap();
        assert!(line.starts_with("c OK"), "{line}");
        plain.write_all(b"t STARTTLS\r\n").await.unwrap();
        line.clear();
        plain.read_line(&mut line).await.unwrap();
        assert!(line.starts_with("t OK"), "{line}");

        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(&cert).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let (client_cert, client_key) = ca.client("alice", None);
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![client_cert],
            PrivateKeyDer::try_from(client_key.serialize_der()).unwrap(),
        )
        .unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(
                ServerName::try_from("localhost").unwrap(),
                plain.into_inner(),
            )
            .await
            .unwrap();
        let mut tls = BufReader::new(tls);
        let mut command = async |text: &str, tag: &str| -> Vec<String> {
            tls.write_all(text.as_bytes()).await.unwrap();
            tls.flush().await.unwrap();
            let mut lines = Vec::new();
            loop {
                let mut l = String::new();
                if tls.read_line(&mut l).await.unwrap() == 0 {
                    return lines;
                }
                let done = l.starts_with(&format!("{tag} "));
                lines.push(l.trim_end().to_owned());
                if done {
                    return lines;
                }
            }
        };
        let caps = command("c CAPABILITY\r\n", "c").await;
        assert!(caps[0].ends_with("AUTH=PLAIN AUTH=EXTERNAL"), "{caps:?}");
        let reply = command("a AUTHENTICATE EXTERNAL =\r\n", "a").await;
        assert!(reply.last().unwrap().starts_with("a OK"), "{reply:?}");
        let reply = command("s SELECT INBOX\r\n", "s").await;
        assert!(reply.last().unwrap().starts_with("s OK"), "{reply:?}");
    }

    #[test]
    fn client_settings_from_the_configuration() {
        let config: crate::config::Config = toml::from_str("").unwrap();
        assert_eq!(ClientCertAuth::from_config(&config), None);
        let config: crate::config::Config =
            toml::from_str("[tls]\nclient_ca = \"/ca.pem\"\nclient_cert_username = \"email\"\n")
                .unwrap();
        assert_eq!(
            ClientCertAuth::from_config(&config),
            Some(ClientCertAuth {
                ca_file: PathBuf::from("/ca.pem"),
                username_field: CertUserField::Email,
            })
        );
    }

    #[test]
    fn client_ca_files_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("CA");
        let (cert, key, _) = server_files(dir.path(), &ca);
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        for ca_file in [dir.path().join("missing.pem"), empty] {
            let client = ClientCertAuth {
                ca_file,
                username_field: CertUserField::CommonName,
            };
            assert!(acceptor_with_client_auth(&cert, &key, Some(&client)).is_err());
        }
    }
}
