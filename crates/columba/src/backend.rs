//! Wires authentication to mail: the passwd-file checks passwords, the mail location template
//! says where each user's Maildir is.

use std::path::PathBuf;
use std::sync::Arc;

use auth::passwd_file::PasswdFile;
use auth::{AuthError, AuthOutcome, PassDb, UserRecord};
use mail_store::maildir::MaildirStore;
use mail_store::{MailStore, StoreError};
use session_api::UserBackend;

use crate::config::expand_location;

pub struct PasswdFileBackend {
    passdb: PasswdFile,
    location: String,
}

impl PasswdFileBackend {
    pub fn new(passwd_file: PathBuf, location: String) -> Self {
        PasswdFileBackend {
            passdb: PasswdFile::new(passwd_file),
            location,
        }
    }

    /// Where `user`'s mail lives.
    pub fn mail_root(&self, user: &UserRecord) -> Result<PathBuf, StoreError> {
        let location = user
            .extra
            .iter()
            .find(|(k, _)| k == "userdb_mail" || k == "mail")
            .map(|(_, v)| v.trim_start_matches("maildir:").to_owned())
            .unwrap_or_else(|| self.location.clone());
        expand_location(&location, &user.name, user.home.as_deref())
            .map_err(|e| StoreError::Internal(format!("mail location for {}: {e}", user.name)))
    }
}

impl UserBackend for PasswdFileBackend {
    fn authenticate(&self, username: &str, password: &[u8]) -> Result<AuthOutcome, AuthError> {
        self.passdb.verify_plain(username, password)
    }

    fn open_store(&self, user: &UserRecord) -> Result<Arc<dyn MailStore>, StoreError> {
        let root = self.mail_root(user)?;
        Ok(Arc::new(MaildirStore::new(root)?))
    }
}
