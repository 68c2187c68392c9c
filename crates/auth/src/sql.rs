//! The SQL passdb and userdb, as Dovecot's `passdb sql` and `userdb sql`: the administrator
//! writes the queries, with `%u`, `%n`, `%d` where the user name goes (see [`query`] for how
//! they become bound parameters, never text in the SQL).
//!
//! * `password_query` returns one row with a `password` column (any scheme [`crate::scheme`]
//!   verifies, `{SCHEME}` prefix or a crypt(3) string; `default_pass_scheme` names the scheme
//!   of values without a prefix), optionally `user` (the canonical user name) and `userdb_*`
//!   columns (`userdb_uid`, `userdb_gid`, `userdb_home`, `userdb_mail`...) that the `prefetch`
//!   userdb uses, so one query can serve both.
//! * `user_query` returns one row with `uid`, `gid` (numbers or names), `home` and optionally
//!   `mail` and other fields.
//!
//! A NULL column is as if it were missing. No row is an unknown user; more than one row is
//! a backend error (the query is ambiguous), as in Dovecot. The databases are SQLite (a file
//! opened read-only) and PostgreSQL (a server; the connection is made at the first lookup and
//! made again after it breaks).

mod postgresql;
pub mod query;
mod sqlite;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use crate::system::{resolve_gid, resolve_uid};
use crate::{AuthError, AuthOutcome, CredentialLookup, PassDb, UserDb, UserRecord, scheme};

use query::{PreparedQuery, QueryTemplate};
use zeroize::Zeroizing;

/// Dovecot's example `password_query` (dovecot-sql.conf.ext).
pub const DEFAULT_PASSWORD_QUERY: &str =
    "SELECT userid AS user, password FROM users WHERE userid = '%u'";
/// How many lookups run at once, each on its own connection (Dovecot's `maxconns`, whose
/// default this is).
pub const DEFAULT_MAX_CONNECTIONS: usize = 5;

/// Dovecot's example `user_query`.
pub const DEFAULT_USER_QUERY: &str = "SELECT home, uid, gid FROM users WHERE userid = '%u'";

/// Which SQL database.
#[derive(Clone, PartialEq, Eq)]
pub enum SqlDriver {
    /// An SQLite database file, opened read-only.
    Sqlite(PathBuf),
    /// A PostgreSQL server: a libpq-style connection string (`host=... port=... user=...
    /// password=... dbname=...`) or a `postgresql://` URL.
    Postgresql(String),
}

impl std::fmt::Debug for SqlDriver {
    /// A PostgreSQL connection string may hold a password: only the driver is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SqlDriver::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            SqlDriver::Postgresql(_) => f.write_str("Postgresql(<connection string redacted>)"),
        }
    }
}

/// What an [`SqlDb`] is configured with. `Debug` shows no password.
#[derive(Clone, PartialEq, Eq)]
pub struct SqlSettings {
    pub driver: SqlDriver,
    /// `None`: this database is not used as a passdb.
    pub password_query: Option<String>,
    /// `None`: this database is not used as a userdb.
    pub user_query: Option<String>,
    /// The scheme of stored passwords without a `{SCHEME}` prefix (Dovecot's
    /// `default_pass_scheme`); `None`: a crypt(3) string.
    pub default_pass_scheme: Option<String>,
    /// Connections opened at most, so that that many lookups run at once (at least 1).
    pub max_connections: usize,
    /// PostgreSQL: the password, when it is kept out of the connection string (read from a
    /// file of its own; the `postgres` client reads no `~/.pgpass`).
    pub password: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for SqlSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlSettings")
            .field("driver", &self.driver)
            .field("password_query", &self.password_query)
            .field("user_query", &self.user_query)
            .field("default_pass_scheme", &self.default_pass_scheme)
            .field("max_connections", &self.max_connections)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// One row: column names (lower-cased) and their values as text, NULL as `None`.
pub(crate) type Row = Vec<(String, Option<String>)>;

/// A connection to one of the databases.
pub(crate) trait Connection: Send {
    /// Runs `query` with `params` bound to its parameters and returns its rows (at most two are
    /// read: more than one is an error anyway).
    fn query(&mut self, query: &PreparedQuery, params: &[String]) -> Result<Vec<Row>, String>;
}

/// An SQL database used as passdb, userdb or both. Cloning shares the connections.
#[derive(Clone)]
pub struct SqlDb {
    inner: Arc<Inner>,
}

struct Inner {
    backend: &'static str,
    /// A lookup takes the first idle connection, or waits for one in turn.
    connections: Vec<Mutex<Box<dyn Connection>>>,
    next: AtomicUsize,
    password_query: Option<PreparedQuery>,
    user_query: Option<PreparedQuery>,
    default_pass_scheme: Option<String>,
    /// A real stored hash (the last one read), verified when the user is unknown or has no
    /// password, so that the answer takes about as long as for a known user.
    dummy_hash: Mutex<Option<String>>,
}

impl std::fmt::Debug for SqlDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlDb")
            .field("backend", &self.inner.backend)
            .field("password_query", &self.inner.password_query)
            .field("user_query", &self.inner.user_query)
            .finish_non_exhaustive()
    }
}

impl SqlDb {
    /// Parses the queries and, for SQLite, opens the file now, so that mistakes are reported
    /// at start. A PostgreSQL server is first contacted at the first lookup (it may start after
    /// Columba).
    pub fn open(settings: SqlSettings) -> Result<SqlDb, AuthError> {
        let backend = match &settings.driver {
            SqlDriver::Sqlite(_) => "sqlite",
            SqlDriver::Postgresql(_) => "postgresql",
        };
        if settings.password.is_some() && matches!(settings.driver, SqlDriver::Sqlite(_)) {
            return Err(AuthError::Config(
                "sql: a password is for PostgreSQL, not SQLite".to_owned(),
            ));
        }
        let connections = (0..settings.max_connections.max(1))
            .map(|_| -> Result<Mutex<Box<dyn Connection>>, AuthError> {
                Ok(Mutex::new(match &settings.driver {
                    SqlDriver::Sqlite(path) => Box::new(sqlite::SqliteConnection::open(path)?),
                    SqlDriver::Postgresql(connect) => {
                        Box::new(postgresql::PostgresConnection::new(
                            connect,
                            settings.password.as_ref().map(|p| p.as_str()),
                        )?)
                    }
                }))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let placeholder = match &settings.driver {
            SqlDriver::Sqlite(_) => sqlite::placeholder,
            SqlDriver::Postgresql(_) => postgresql::placeholder,
        };
        let prepare = |name: &str, text: &Option<String>| -> Result<_, AuthError> {
            text.as_deref()
                .map(|t| {
                    QueryTemplate::parse(t)
                        .map(|q| q.render(placeholder))
                        .map_err(|e| AuthError::Config(format!("sql {name}: {e}")))
                })
                .transpose()
        };
        if let Some(scheme) = &settings.default_pass_scheme
            && (scheme.is_empty() || scheme.contains(['{', '}']))
        {
            return Err(AuthError::Config(format!(
                "sql default_pass_scheme {scheme:?} is not a scheme name"
            )));
        }
        Ok(SqlDb {
            inner: Arc::new(Inner {
                backend,
                connections,
                next: AtomicUsize::new(0),
                password_query: prepare("password_query", &settings.password_query)?,
                user_query: prepare("user_query", &settings.user_query)?,
                default_pass_scheme: settings.default_pass_scheme,
                dummy_hash: Mutex::new(None),
            }),
        })
    }

    /// The one row `query` finds for `user`, if any.
    fn row(&self, name: &str, query: &PreparedQuery, user: &str) -> Result<Option<Row>, AuthError> {
        let params = query.params(user);
        let mut rows = self
            .connection()
            .query(query, &params)
            .map_err(|e| self.error(name, e))?;
        match rows.len() {
            0 => Ok(None),
            1 => Ok(rows.pop()),
            _ => Err(self.error(name, format!("more than one row for user {user:?}"))),
        }
    }

    /// An idle connection, or the next one in turn to wait for. A connection whose lookup
    /// panicked is used again: its next failure makes it anew.
    fn connection(&self) -> MutexGuard<'_, Box<dyn Connection>> {
        let connections = &self.inner.connections;
        for slot in connections {
            match slot.try_lock() {
                Ok(guard) => return guard,
                Err(TryLockError::Poisoned(poisoned)) => return poisoned.into_inner(),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        let turn = self.inner.next.fetch_add(1, Ordering::Relaxed) % connections.len();
        connections[turn]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn error(&self, query: &str, reason: String) -> AuthError {
        AuthError::Backend {
            backend: self.inner.backend,
            reason: format!("{query}: {reason}"),
        }
    }

    fn password_query(&self) -> Result<&PreparedQuery, AuthError> {
        self.inner
            .password_query
            .as_ref()
            .ok_or_else(|| AuthError::Config("sql passdb without a password_query".to_owned()))
    }

    /// The stored password of the row (with the default scheme's prefix where it has none) and
    /// the user's record, from a `password_query` row.
    fn passdb_row(&self, user: &str, row: Row) -> Result<(Option<String>, UserRecord), AuthError> {
        let mut record = UserRecord::named(user);
        let mut password = None;
        for (column, value) in row {
            let Some(value) = value else { continue };
            match column.as_str() {
                "password" => password = Some(value).filter(|p| !p.is_empty()),
                "user" => record.name = value,
                "userdb_uid" => record.uid = Some(self.id("password_query", &column, &value)?),
                "userdb_gid" => record.gid = Some(self.id("password_query", &column, &value)?),
                "userdb_home" => record.home = Some(PathBuf::from(value)),
                _ => record.extra.push((column, value)),
            }
        }
        let password =
            password.map(
                |p| match (&self.inner.default_pass_scheme, p.starts_with('{')) {
                    (Some(scheme), false) => format!("{{{scheme}}}{p}"),
                    _ => p,
                },
            );
        Ok((password, record))
    }

    /// A uid or gid column: a number or a name; 0 (root) is refused here already.
    fn id(&self, query: &str, column: &str, value: &str) -> Result<u32, AuthError> {
        let id = if column.ends_with("uid") {
            resolve_uid(value)
        } else {
            resolve_gid(value)
        };
        match id {
            Some(id) if id != 0 => Ok(id),
            _ => Err(self.error(
                query,
                format!("column {column}: unknown or root id {value:?}"),
            )),
        }
    }

    fn dummy_verify(&self, password: &[u8]) {
        let stored = self.inner.dummy_hash.lock().ok().and_then(|d| d.clone());
        if let Some(stored) = stored {
            let _ = std::hint::black_box(scheme::verify(&stored, password));
        }
    }

    fn remember_hash(&self, stored: &str) {
        if let Ok(mut dummy) = self.inner.dummy_hash.lock() {
            dummy.replace(stored.to_owned());
        }
    }
}

impl PassDb for SqlDb {
    fn verify_plain(&self, user: &str, password: &[u8]) -> Result<AuthOutcome, AuthError> {
        let query = self.password_query()?;
        let Some(row) = self.row("password_query", query, user)? else {
            self.dummy_verify(password);
            return Ok(AuthOutcome::UnknownUser);
        };
        let (stored, record) = self.passdb_row(user, row)?;
        let Some(stored) = stored else {
            self.dummy_verify(password);
            return Ok(AuthOutcome::WrongPassword);
        };
        let matched = scheme::verify(&stored, password)?;
        self.remember_hash(&stored);
        Ok(if matched {
            AuthOutcome::Success(record)
        } else {
            AuthOutcome::WrongPassword
        })
    }

    /// A password column may hold `{PLAIN}` passwords or `{SCRAM-SHA-*}` keys.
    fn supports_credentials(&self) -> bool {
        self.inner.password_query.is_some()
    }

    fn lookup_credentials(&self, user: &str) -> Result<CredentialLookup, AuthError> {
        let query = self.password_query()?;
        let Some(row) = self.row("password_query", query, user)? else {
            return Ok(CredentialLookup::UnknownUser);
        };
        Ok(match self.passdb_row(user, row)? {
            (Some(stored), record) => match scheme::stored_secret(&stored) {
                Some(secret) => CredentialLookup::Found { secret, record },
                None => CredentialLookup::NotAvailable,
            },
            (None, _) => CredentialLookup::NotAvailable,
        })
    }
}

impl UserDb for SqlDb {
    fn lookup(&self, user: &str) -> Result<Option<UserRecord>, AuthError> {
        let query = self
            .inner
            .user_query
            .as_ref()
            .ok_or_else(|| AuthError::Config("sql userdb without a user_query".to_owned()))?;
        let Some(row) = self.row("user_query", query, user)? else {
            return Ok(None);
        };
        let mut record = UserRecord::named(user);
        for (column, value) in row {
            let Some(value) = value else { continue };
            // Dovecot's user_query columns are bare (`uid`); the `userdb_` prefix of a
            // password_query is accepted too, so one query text can serve both.
            let key = column.strip_prefix("userdb_").unwrap_or(&column);
            match key {
                "uid" => record.uid = Some(self.id("user_query", "uid", &value)?),
                "gid" => record.gid = Some(self.id("user_query", "gid", &value)?),
                "home" => record.home = Some(PathBuf::from(value)),
                // A password selected by a shared query is no userdb field.
                "password" => {}
                _ => record.extra.push((key.to_owned(), value)),
            }
        }
        Ok(Some(record))
    }
}
