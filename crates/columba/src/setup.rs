//! First start with the embedded defaults: create the data directory with a self-signed
//! certificate and a passwd-file holding one demo user, whose password is printed once.

use std::path::Path;

use anyhow::Context as _;
use base64::Engine as _;

use crate::config::Config;

/// Name of the user the embedded default creates.
pub const DEMO_USER: &str = "demo";

/// Creates whatever the configuration needs and is missing. Returns the demo user's password
/// when it was just created.
pub fn ensure_data_dir(config: &Config) -> anyhow::Result<Option<String>> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    set_mode(&config.data_dir, 0o700)?;
    let (cert, key) = (config.cert_path(), config.key_path());
    if !cert.exists() && !key.exists() {
        crate::tls::generate_self_signed(&cert, &key)?;
        tracing::info!("created a self-signed certificate in {}", cert.display());
    }
    let passwd = config.passwd_path();
    if passwd.exists() || !config.uses_passwd_file() {
        return Ok(None);
    }
    let password = random_password()?;
    let hash = auth::scheme::hash(auth::scheme::Scheme::default(), password.as_bytes());
    auth::passwd_file::add_user(&passwd, DEMO_USER, &hash, &Default::default())
        .with_context(|| format!("creating {}", passwd.display()))?;
    Ok(Some(password))
}

fn random_password() -> anyhow::Result<String> {
    let mut bytes = [0u8; 12];
    getrandom::getrandom(&mut bytes).context("reading random bytes")?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting permissions of {}", path.display()))
}
