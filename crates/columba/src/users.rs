//! `columba user add|list|del|passwd`: manages the passwd-file the embedded default uses.

use anyhow::Context as _;

use crate::UserAction;
use crate::config::Config;

pub fn run(config: &Config, action: UserAction) -> anyhow::Result<()> {
    let path = config.passwd_path();
    match action {
        UserAction::Add { name, scheme } => {
            let scheme = parse_scheme(scheme.as_deref())?;
            let password = crate::read_password()?;
            let hash = auth::scheme::hash(scheme, password.as_bytes());
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            auth::passwd_file::add_user(&path, &name, &hash, &Default::default())?;
            println!("added user {name}");
        }
        UserAction::List => {
            for user in auth::passwd_file::list_users(&path)? {
                println!("{}", user.name);
            }
        }
        UserAction::Del { name } => {
            auth::passwd_file::remove_user(&path, &name)?;
            println!("deleted user {name}");
        }
        UserAction::Passwd { name, scheme } => {
            let scheme = parse_scheme(scheme.as_deref())?;
            let password = crate::read_password()?;
            let hash = auth::scheme::hash(scheme, password.as_bytes());
            auth::passwd_file::set_password(&path, &name, &hash)?;
            println!("changed the password of {name}");
        }
    }
    Ok(())
}

/// The scheme `--scheme` names, or the default (SHA512-CRYPT).
fn parse_scheme(name: Option<&str>) -> anyhow::Result<auth::scheme::Scheme> {
    match name {
        None => Ok(auth::scheme::Scheme::default()),
        Some(name) => name.parse().with_context(|| {
            let known: Vec<&str> = auth::scheme::Scheme::ALL.iter().map(|s| s.name()).collect();
            format!("--scheme {name}: known schemes are {}", known.join(", "))
        }),
    }
}
