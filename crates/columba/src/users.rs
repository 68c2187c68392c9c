//! `columba user add|list|del|passwd`: manages the passwd-file the embedded default uses.

use anyhow::Context as _;

use crate::UserAction;
use crate::config::Config;

pub fn run(config: &Config, action: UserAction) -> anyhow::Result<()> {
    let path = config.passwd_path();
    match action {
        UserAction::Add { name } => {
            let password = crate::read_password()?;
            let hash = auth::scheme::hash(auth::scheme::Scheme::default(), password.as_bytes());
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
        UserAction::Passwd { name } => {
            let password = crate::read_password()?;
            let hash = auth::scheme::hash(auth::scheme::Scheme::default(), password.as_bytes());
            auth::passwd_file::set_password(&path, &name, &hash)?;
            println!("changed the password of {name}");
        }
    }
    Ok(())
}
