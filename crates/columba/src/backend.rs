//! Wires authentication to mail: the configured passdb and userdb (an [`Authenticator`]) check
//! passwords and say who the user is, the mail location template says where each user's
//! mail is (a Maildir or an mbox tree, see `location`).

pub mod location;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use auth::checkpassword::CheckPassword;
use auth::oauth2::{Introspection, IntrospectionSettings, TokenValidator};
use auth::pam::PamPassDb;
use auth::passwd_file::PasswdFile;
use auth::sasl::Mechanism;
use auth::shadow::ShadowPassDb;
use auth::sql::{SqlDb, SqlDriver, SqlSettings};
use auth::system::PasswdUserDb;
use auth::userdb::StaticUserDb;
use auth::{
    AuthError, AuthOutcome, AuthSettings, Authenticator, PassDb, UidRange, UserDb, UserLookup,
    UserRecord, read_secret_file,
};
use mail_store::{MailStore, StoreError};
use session_api::{ConnectionInfo, ConnectionSlot, SaslExchange, TooManyConnections, UserBackend};

use crate::config::expand_location;
use crate::config::{Config, PassdbKind, SqlDriverKind, UserdbKind};
use crate::limits::{PreLoginLimit, UserIpLimit};

pub struct AuthBackend {
    auth: Arc<Authenticator>,
    /// Opening mail and counting connections, as a mail process does.
    mail: MailBackend,
    /// Connections of the single process not logged in yet; a login ends a connection's count.
    pub prelogin: Arc<PreLoginLimit>,
}

impl AuthBackend {
    /// The passdb and userdb the configuration names, checked now: a missing passwd-file is
    /// created by first start, but an unreadable `/etc/shadow`, an unknown static uid or a
    /// mechanism the passdb cannot serve stops the server before it listens.
    pub fn from_config(config: &Config) -> anyhow::Result<AuthBackend> {
        let settings = AuthSettings {
            mechanisms: mechanisms(config)?,
            uid_range: uid_range(config),
            lowercase_usernames: config.auth.lowercase_usernames,
        };
        let auth = match token_validator(config)? {
            Some(validator) => Authenticator::with_token_validator(
                passdb(config)?,
                userdb(config)?,
                settings,
                validator,
            ),
            None => Authenticator::new(passdb(config)?, userdb(config)?, settings),
        }
        .context("[auth] mechanisms")?;
        Ok(AuthBackend {
            auth: Arc::new(auth),
            mail: MailBackend::from_config(config),
            prelogin: PreLoginLimit::new(config.server.max_prelogin_connections_per_ip),
        })
    }
}

fn uid_range(config: &Config) -> UidRange {
    UidRange {
        first_valid_uid: config.auth.first_valid_uid,
        last_valid_uid: config.auth.last_valid_uid,
        first_valid_gid: config.auth.first_valid_gid,
        last_valid_gid: config.auth.last_valid_gid,
    }
}

/// The configured userdb with the uid guards, for finding the users mail is delivered to.
pub fn delivery_users(config: &Config) -> anyhow::Result<UserLookup> {
    let userdb = userdb(config)?.context(
        "userdb \"prefetch\" knows users only when they log in: delivery needs a userdb that holds them",
    )?;
    Ok(UserLookup::new(
        userdb,
        uid_range(config),
        config.auth.lowercase_usernames,
    ))
}

/// Where `user`'s mail lives: the record's `userdb_mail` (or `mail`) field, else the
/// configured location template.
fn mail_root(location: &str, user: &UserRecord) -> anyhow::Result<PathBuf> {
    let location = user_location(location, user);
    expand_location(
        location.trim_start_matches("maildir:"),
        &user.name,
        user.home.as_deref(),
    )
}

/// The record's `userdb_mail` (or `mail`) field, else the configured location template.
fn user_location<'a>(location: &'a str, user: &'a UserRecord) -> &'a str {
    user.extra
        .iter()
        .find(|(k, _)| k == "userdb_mail" || k == "mail")
        .map_or(location, |(_, v)| v.as_str())
}

/// Opens the mail of `user` at the configured `location` (or the record's own), Maildir or
/// mbox (see `location`).
pub fn open_user_store(
    location: &str,
    user: &UserRecord,
) -> Result<Arc<dyn MailStore>, StoreError> {
    location::open(user_location(location, user), user)
}

/// The [`UserBackend`] of a mail process (privilege separation): its users logged in
/// elsewhere, so it only opens their mail.
pub struct MailBackend {
    location: String,
    limit: UserIpLimit,
}

impl MailBackend {
    pub fn from_config(config: &Config) -> MailBackend {
        MailBackend {
            location: config.mail_location(),
            limit: UserIpLimit::new(config.server.max_userip_connections),
        }
    }
}

impl UserBackend for MailBackend {
    fn authenticate(&self, _username: &str, _password: &[u8]) -> Result<AuthOutcome, AuthError> {
        Err(AuthError::Backend {
            backend: "mail process",
            reason: "passwords are checked by the auth process".to_owned(),
        })
    }

    fn open_store(&self, user: &UserRecord) -> Result<Arc<dyn MailStore>, StoreError> {
        open_user_store(&self.location, user)
    }

    fn claim_connection(
        &self,
        protocol: &'static str,
        user: &str,
        connection: &ConnectionInfo,
    ) -> Result<Option<ConnectionSlot>, TooManyConnections> {
        self.limit.claim(protocol, user, connection.remote.ip())
    }
}

/// The Maildir root of `user` as the configured userdb describes them, for the admin commands
/// (which check no password).
pub fn user_mail_root(config: &Config, user: &str) -> anyhow::Result<PathBuf> {
    mail_root(&config.mail_location(), &user_record(config, user)?)
}

/// `user` as the configured userdb describes them, for the admin commands.
pub fn user_record(config: &Config, user: &str) -> anyhow::Result<UserRecord> {
    let userdb = userdb(config)?.context(
        "userdb \"prefetch\" knows users only when they log in; use the userdb that holds them",
    )?;
    userdb
        .lookup(user)
        .with_context(|| format!("looking up {user:?}"))?
        .with_context(|| format!("no user {user:?}"))
}

/// The mail location the server would open for `user` (the record's own, or the configured).
pub fn configured_location(config: &Config, user: &UserRecord) -> String {
    user_location(&config.mail_location(), user).to_owned()
}

fn mechanisms(config: &Config) -> anyhow::Result<Vec<Mechanism>> {
    let mechanisms = config
        .auth
        .mechanisms
        .iter()
        .map(|name| {
            Mechanism::from_name(name).with_context(|| {
                format!(
                    "[auth] mechanisms: unknown mechanism {name:?} (known: {})",
                    Mechanism::KNOWN.map(Mechanism::name).join(", ")
                )
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if mechanisms.contains(&Mechanism::External) && config.tls.client_ca.is_none() {
        // Without an authority to verify them, no client certificate names anyone.
        anyhow::bail!("[auth] mechanisms: EXTERNAL needs [tls] client_ca");
    }
    Ok(mechanisms)
}

fn passdb(config: &Config) -> anyhow::Result<Box<dyn PassDb>> {
    Ok(match config.auth.passdb {
        PassdbKind::PasswdFile => Box::new(PasswdFile::new(config.passwd_path())),
        PassdbKind::Shadow => Box::new(
            ShadowPassDb::open(&config.auth.shadow.file)
                .context("passdb \"shadow\" (only root can read /etc/shadow)")?,
        ),
        PassdbKind::Pam => Box::new(PamPassDb::new(&config.auth.pam.service)?),
        PassdbKind::Checkpassword => {
            let c = &config.auth.checkpassword;
            let program = c
                .program
                .clone()
                .context("passdb \"checkpassword\" needs [auth.checkpassword] program")?;
            let reply = match &c.reply {
                Some(path) => vec![path.clone().into_os_string()],
                None => vec![
                    std::env::current_exe()
                        .context("finding this program for checkpassword-reply")?
                        .into_os_string(),
                    "checkpassword-reply".into(),
                ],
            };
            Box::new(CheckPassword::new(
                program,
                reply,
                Duration::from_secs(c.timeout_secs.max(1)),
            )?)
        }
        PassdbKind::Sql => Box::new(sql_db(config, SqlRole::Passdb)?),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SqlRole {
    Passdb,
    Userdb,
}

/// The database of `[auth.sql]` with the query its role needs. Passdb and userdb each get
/// their own connection: a lookup of one never waits for the other.
fn sql_db(config: &Config, role: SqlRole) -> anyhow::Result<SqlDb> {
    let c = &config.auth.sql;
    let connect = c
        .connect
        .clone()
        .context("passdb or userdb \"sql\" needs [auth.sql] connect")?;
    let driver = match c.driver {
        SqlDriverKind::Sqlite => SqlDriver::Sqlite(PathBuf::from(connect)),
        SqlDriverKind::Postgresql => SqlDriver::Postgresql(connect),
    };
    let (password_query, user_query) = match role {
        SqlRole::Passdb => (Some(c.password_query.clone()), None),
        SqlRole::Userdb => (None, Some(c.user_query.clone())),
    };
    SqlDb::open(SqlSettings {
        driver,
        password_query,
        user_query,
        default_pass_scheme: c.default_pass_scheme.clone(),
        max_connections: c.max_connections,
        password: c
            .password_file
            .as_deref()
            .map(read_secret_file)
            .transpose()
            .context("[auth.sql] password_file")?,
    })
    .context("[auth.sql]")
}

/// The token introspection of `[auth.oauth2]`, when an endpoint is configured.
fn token_validator(config: &Config) -> anyhow::Result<Option<Box<dyn TokenValidator>>> {
    let c = &config.auth.oauth2;
    let Some(url) = &c.introspection_url else {
        return Ok(None);
    };
    let client_secret = c
        .client_secret_file
        .as_deref()
        .map(read_secret_file)
        .transpose()
        .context("[auth.oauth2] client_secret_file")?;
    let introspection = Introspection::new(IntrospectionSettings {
        url: url.clone(),
        username_field: c.username_field.clone(),
        client_id: c.client_id.clone(),
        client_secret,
        required_scope: c.scope.clone(),
        timeout: Duration::from_secs(c.timeout_secs.max(1)),
        ca_file: c.ca_file.clone(),
    })
    .context("[auth.oauth2]")?;
    Ok(Some(Box::new(introspection)))
}

/// The configured userdb; `None` for "prefetch" (the passdb's record is used).
fn userdb(config: &Config) -> anyhow::Result<Option<Box<dyn UserDb>>> {
    Ok(match config.auth.userdb {
        UserdbKind::PasswdFile => Some(Box::new(PasswdFile::new(config.passwd_path()))),
        UserdbKind::Passwd => Some(Box::new(PasswdUserDb)),
        UserdbKind::Static => {
            let s = &config.auth.static_userdb;
            let (Some(uid), Some(gid)) = (&s.uid, &s.gid) else {
                anyhow::bail!("userdb \"static\" needs [auth.static] uid and gid");
            };
            Some(Box::new(StaticUserDb::new(
                &uid.as_text(),
                &gid.as_text(),
                s.home.clone(),
            )?))
        }
        UserdbKind::Prefetch => None,
        UserdbKind::Sql => Some(Box::new(sql_db(config, SqlRole::Userdb)?)),
    })
}

impl UserBackend for AuthBackend {
    fn authenticate(&self, username: &str, password: &[u8]) -> Result<AuthOutcome, AuthError> {
        self.auth.verify_plain(username, password)
    }

    fn open_store(&self, user: &UserRecord) -> Result<Arc<dyn MailStore>, StoreError> {
        self.mail.open_store(user)
    }

    fn claim_connection(
        &self,
        protocol: &'static str,
        user: &str,
        connection: &ConnectionInfo,
    ) -> Result<Option<ConnectionSlot>, TooManyConnections> {
        self.prelogin.logged_in(&connection.session_id);
        self.mail.claim_connection(protocol, user, connection)
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
