//! SQLite, embedded: the database file is opened read-only, so the auth side cannot change
//! it, and a writer holding a lock is waited for up to [`BUSY_TIMEOUT`].

use std::path::Path;
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{OpenFlags, params_from_iter};

use super::query::PreparedQuery;
use super::{Connection, Row};
use crate::AuthError;

/// How long a lookup waits for a writer (an admin's `UPDATE`) to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) fn placeholder(n: usize) -> String {
    format!("?{n}")
}

pub(super) struct SqliteConnection {
    connection: rusqlite::Connection,
}

impl SqliteConnection {
    pub(super) fn open(path: &Path) -> Result<SqliteConnection, AuthError> {
        let io = |e: rusqlite::Error| AuthError::Io {
            path: path.to_owned(),
            source: std::io::Error::other(e),
        };
        let connection = rusqlite::Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(io)?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(io)?;
        // Opening is lazy in SQLite: read the schema now, so that a file that is not a database
        // is reported at start.
        connection
            .query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
            .map_err(io)?;
        Ok(SqliteConnection { connection })
    }
}

impl Connection for SqliteConnection {
    fn query(&mut self, query: &PreparedQuery, params: &[String]) -> Result<Vec<Row>, String> {
        let mut statement = self
            .connection
            .prepare_cached(&query.sql)
            .map_err(|e| e.to_string())?;
        let names: Vec<String> = statement
            .column_names()
            .into_iter()
            .map(str::to_lowercase)
            .collect();
        let mut rows = statement
            .query(params_from_iter(params))
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        while out.len() < 2 {
            let Some(row) = rows.next().map_err(|e| e.to_string())? else {
                break;
            };
            let mut values = Vec::with_capacity(names.len());
            for (i, name) in names.iter().enumerate() {
                let value = match row.get_ref(i).map_err(|e| e.to_string())? {
                    ValueRef::Null => None,
                    ValueRef::Integer(n) => Some(n.to_string()),
                    ValueRef::Real(x) => Some(x.to_string()),
                    ValueRef::Text(t) | ValueRef::Blob(t) => Some(
                        String::from_utf8(t.to_vec())
                            .map_err(|_| format!("column {name} is not UTF-8"))?,
                    ),
                };
                values.push((name.clone(), value));
            }
            out.push(values);
        }
        Ok(out)
    }
}
