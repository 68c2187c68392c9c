//! PostgreSQL through the blocking `postgres` client (auth calls block anyway). One
//! connection, made at the first lookup and made again after it breaks, without TLS: the
//! server is expected on the same host or a trusted network (a Unix socket directory works as
//! `host=/var/run/postgresql`).

use std::str::FromStr;
use std::time::Duration;

use postgres::types::{ToSql, Type};
use postgres::{Client, NoTls};

use super::query::PreparedQuery;
use super::{Connection, Row};
use crate::AuthError;

/// How long connecting may take when the connection string does not say
/// (`connect_timeout=`): a dead server fails logins quickly as temporary failures.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The server-side limit on one lookup when the connection string sets no `options`: a query
/// stuck on a lock fails as a temporary failure instead of holding its connection for ever.
const STATEMENT_TIMEOUT_OPTION: &str = "-c statement_timeout=5s";

pub(super) fn placeholder(n: usize) -> String {
    // Typed, so that a parameter inside `'' || $1` is text too.
    format!("${n}::text")
}

pub(super) struct PostgresConnection {
    config: postgres::Config,
    client: Option<Client>,
}

impl PostgresConnection {
    /// Parses the connection string (`password`, when given, overrides one in it); connects
    /// later.
    pub(super) fn new(
        connect: &str,
        password: Option<&str>,
    ) -> Result<PostgresConnection, AuthError> {
        let mut config = postgres::Config::from_str(connect).map_err(|e| {
            // The error names the bad part, never the password.
            AuthError::Config(format!("sql connect string: {e}"))
        })?;
        if let Some(password) = password {
            config.password(password);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_options().is_none() {
            config.options(STATEMENT_TIMEOUT_OPTION);
        }
        if config.get_application_name().is_none() {
            config.application_name("columba-auth");
        }
        Ok(PostgresConnection {
            config,
            client: None,
        })
    }

    fn client(&mut self) -> Result<&mut Client, String> {
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
        }
        match &mut self.client {
            Some(client) => Ok(client),
            slot => Ok(slot.insert(
                self.config
                    .connect(NoTls)
                    .map_err(|e| format!("connecting: {e}"))?,
            )),
        }
    }

    fn run(&mut self, query: &PreparedQuery, params: &[String]) -> Result<Vec<Row>, PgError> {
        let client = self.client().map_err(PgError::Connect)?;
        let params: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let rows = client
            .query(query.sql.as_str(), &params)
            .map_err(PgError::Query)?;
        rows.iter()
            .take(2)
            .map(|row| decode(row).map_err(PgError::Decode))
            .collect()
    }
}

enum PgError {
    Connect(String),
    Query(postgres::Error),
    Decode(String),
}

impl Connection for PostgresConnection {
    fn query(&mut self, query: &PreparedQuery, params: &[String]) -> Result<Vec<Row>, String> {
        match self.run(query, params) {
            Ok(rows) => Ok(rows),
            // A connection the server closed or reset (a restart, an administrator ending
            // backends) is made again once, at once. Errors the server reports (with an
            // SQLSTATE) are the query's own, and final.
            Err(PgError::Query(e)) if e.as_db_error().is_none() => {
                self.client = None;
                self.run(query, params).map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        }
    }
}

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PgError::Connect(e) | PgError::Decode(e) => f.write_str(e),
            PgError::Query(e) => match e.as_db_error() {
                Some(db) => write!(f, "{}: {}", db.code().code(), db.message()),
                None => write!(f, "{e}"),
            },
        }
    }
}

/// A row's columns as text; integers and booleans are written out, other types refused.
fn decode(row: &postgres::Row) -> Result<Row, String> {
    let mut values = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let name = column.name().to_lowercase();
        let bad = |e: postgres::Error| format!("column {name}: {e}");
        let value = match *column.type_() {
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                row.try_get::<_, Option<String>>(i).map_err(bad)?
            }
            Type::INT2 => row
                .try_get::<_, Option<i16>>(i)
                .map_err(bad)?
                .map(|n| n.to_string()),
            Type::INT4 => row
                .try_get::<_, Option<i32>>(i)
                .map_err(bad)?
                .map(|n| n.to_string()),
            Type::INT8 => row
                .try_get::<_, Option<i64>>(i)
                .map_err(bad)?
                .map(|n| n.to_string()),
            Type::OID => row
                .try_get::<_, Option<u32>>(i)
                .map_err(bad)?
                .map(|n| n.to_string()),
            Type::BOOL => row
                .try_get::<_, Option<bool>>(i)
                .map_err(bad)?
                .map(|b| if b { "y" } else { "n" }.to_owned()),
            ref other => {
                return Err(format!(
                    "column {name} has type {other}; cast it to text in the query"
                ));
            }
        };
        values.push((name, value));
    }
    Ok(values)
}
