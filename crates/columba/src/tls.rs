//! TLS for IMAPS and STARTTLS (RFC 8314, RFC 3501 6.2.1) with rustls, and the self-signed
//! certificate the embedded default creates on first start.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use session_api::{BoxedStream, TlsUpgrade, UpgradeFuture};
use tokio_rustls::TlsAcceptor;

/// Loads a PEM certificate chain and private key into a rustls acceptor.
pub fn acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
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
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("certificate and key do not match")?;
    Ok(TlsAcceptor::from(Arc::new(config)))
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
