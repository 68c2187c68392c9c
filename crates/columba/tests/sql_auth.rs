//! passdb and userdb "sql" in the built server and against a real PostgreSQL: users of an
//! SQLite database and of a PostgreSQL database log in over IMAP and POP3 (LOGIN, USER/PASS,
//! AUTHENTICATE PLAIN, SCRAM-SHA-256 from stored keys), their mail goes where the userdb
//! columns say, and wrong passwords, unknown and hostile user names, malformed base64 and
//! disabled mechanisms fail. The PostgreSQL server is started by the test (Debian's
//! `postgresql` package; skipped without it unless `COLUMBA_REQUIRE_EXTERNAL=1`).

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use auth::sasl::Mechanism;
use auth::scheme::hash;
use auth::sql::{SqlDb, SqlDriver, SqlSettings};
use auth::{AuthError, AuthOutcome, PassDb, UserDb};
use common::{Pop3Client, RawClient, Server, imap_scram};
use test_support::postgres::Postgres;
use test_support::sasl::{SASL_USERS, b64};

/// A PostgreSQL server of our own, or `None` (skip) when PostgreSQL is not installed.
fn postgres() -> Option<Postgres> {
    let pg = Postgres::start();
    if pg.is_none() {
        if std::env::var("COLUMBA_REQUIRE_EXTERNAL").as_deref() == Ok("1") {
            panic!("PostgreSQL is required (COLUMBA_REQUIRE_EXTERNAL=1) but not installed");
        }
        eprintln!("skipping: PostgreSQL (initdb, postgres) not installed");
    }
    pg
}

/// SQL that creates Dovecot's example `users` table for [`SASL_USERS`] (alice: plaintext, bob:
/// SCRAM-SHA-256 keys, carol: SHA512-CRYPT), each with a home under `homes`, and dave, whose
/// `mail` column names a Maildir elsewhere.
fn users_sql(homes: &Path) -> String {
    let mut sql = String::from(
        "CREATE TABLE users (userid TEXT PRIMARY KEY, password TEXT, home TEXT, mail TEXT);\n",
    );
    let mut users: Vec<(String, String, String)> = SASL_USERS
        .iter()
        .map(|(name, pw, scheme)| {
            let home = homes.join(name).display().to_string();
            (name.to_string(), hash(*scheme, pw.as_bytes()), home)
        })
        .collect();
    users.push((
        "dave".into(),
        hash(auth::scheme::Scheme::Sha512Crypt, b"diver"),
        homes.join("dave").display().to_string(),
    ));
    for (name, stored, home) in users {
        let mail = if name == "dave" {
            format!("'maildir:{}'", homes.join("elsewhere/dave").display())
        } else {
            "NULL".to_owned()
        };
        sql.push_str(&format!(
            "INSERT INTO users VALUES ('{name}', '{stored}', '{home}', {mail});\n"
        ));
    }
    sql
}

/// The server's configuration; `sql_extra` goes into `[auth.sql]`.
fn config(
    driver: &str,
    connect: &str,
    userdb: &str,
    password_query: &str,
    sql_extra: &str,
) -> String {
    format!(
        "[auth]\npassdb = \"sql\"\nuserdb = \"{userdb}\"\n\
         mechanisms = [\"PLAIN\", \"LOGIN\", \"SCRAM-SHA-256\"]\nfailure_delay_ms = 20\n\
         [auth.sql]\ndriver = \"{driver}\"\nconnect = \"{connect}\"\n{sql_extra}\
         password_query = \"{password_query}\"\n\
         user_query = \"SELECT home, mail FROM users WHERE userid = '%u'\"\n\
         [mail]\nlocation = \"%h/Maildir\"\n"
    )
}

fn start(dir: tempfile::TempDir, config: &str) -> Server {
    let path = dir.path().join("columba.toml");
    std::fs::write(&path, config).unwrap();
    Server::start_in(dir, &["--config", path.to_str().unwrap()])
}

/// Whether a file under `root` holds `needle`.
fn holds(root: &Path, needle: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(root) else {
        return false;
    };
    entries.flatten().any(|e| {
        let path = e.path();
        if path.is_dir() {
            holds(&path, needle)
        } else {
            std::fs::read(&path)
                .map(|b| String::from_utf8_lossy(&b).contains(needle))
                .unwrap_or(false)
        }
    })
}

fn login(server: &Server, user: &str, password: &str) -> RawClient {
    let mut c = RawClient::connect(server.imap);
    let r = c.command("l", &format!("LOGIN \"{user}\" \"{password}\""));
    assert!(r.last().unwrap().starts_with("l OK"), "{user}: {r:?}");
    c
}

fn append(c: &mut RawClient, message: &str) {
    c.send(format!("ap APPEND INBOX {{{}+}}\r\n", message.len()).as_bytes());
    c.send(message.as_bytes());
    c.send(b"\r\n");
    let r = c.until_tagged("ap");
    assert!(r.last().unwrap().starts_with("ap OK"), "{r:?}");
}

fn imap_refused(server: &Server, command: &str) -> String {
    let mut c = RawClient::connect(server.imap);
    c.command("n", command).last().unwrap().clone()
}

/// A POP3 conversation: sends each line and returns the first reply line to each.
fn pop3(addr: SocketAddr, lines: &[&str]) -> Vec<String> {
    let mut c = Pop3Client::connect(addr);
    lines.iter().map(|l| c.command(l)).collect()
}

/// The logins every SQL setup must get right, over IMAP and POP3.
fn check_logins(server: &Server, homes: &Path) {
    let mut c = login(server, "alice", "wonderland");
    append(&mut c, "Subject: sql\r\n\r\nalice via sql\r\n");
    assert!(holds(&homes.join("alice/Maildir"), "alice via sql"));
    // A `mail` column moves the Maildir.
    let mut c = login(server, "dave", "diver");
    append(&mut c, "Subject: sql\r\n\r\ndave via sql\r\n");
    assert!(holds(&homes.join("elsewhere/dave"), "dave via sql"));
    assert!(!homes.join("dave/Maildir").exists());
    // Carol's one-way hash takes her password, but not a wrong one.
    login(server, "carol", "christmas");
    let reply = imap_scram(server.imap, Mechanism::ScramSha256, "bob", "builder");
    assert!(
        reply.starts_with("a1 OK") && reply.ends_with("Logged in"),
        "SCRAM from stored keys: {reply}"
    );
    assert!(imap_scram(server.imap, Mechanism::ScramSha256, "bob", "wrong").starts_with("a1 NO"));
    for command in [
        "LOGIN carol wrong",
        "LOGIN nobody x",
        "LOGIN \"x' OR '1'='1\" \"x' OR '1'='1\"",
        "LOGIN \"alice' --\" x",
        // CRAM-MD5 is not among the configured mechanisms.
        "AUTHENTICATE CRAM-MD5",
    ] {
        let reply = imap_refused(server, command);
        assert!(
            reply.starts_with("n NO") || reply.starts_with("n BAD"),
            "{command}: {reply}"
        );
    }
    // PLAIN with an initial response that is not base64.
    let reply = imap_refused(server, "AUTHENTICATE PLAIN !!!notbase64");
    assert!(
        reply.starts_with("n BAD") || reply.starts_with("n NO"),
        "{reply}"
    );
    let plain = |user: &str, pw: &str| b64(format!("\0{user}\0{pw}"));
    let replies = pop3(
        server.pop3,
        &[
            "USER alice",
            "PASS wrong",
            &format!("AUTH PLAIN {}", plain("nobody", "x")),
            "AUTH PLAIN ***",
            &format!("AUTH PLAIN {}", plain("alice", "wonderland")),
            "STAT",
        ],
    );
    assert!(replies[0].starts_with("+OK"), "{replies:?}");
    assert!(replies[1].starts_with("-ERR"), "{replies:?}");
    assert!(replies[2].starts_with("-ERR"), "{replies:?}");
    assert!(replies[3].starts_with("-ERR"), "{replies:?}");
    assert_eq!(replies[4], "+OK Logged in.", "{replies:?}");
    assert!(replies[5].starts_with("+OK 1 "), "{replies:?}");
}

#[test]
fn sqlite_users_log_in_over_imap_and_pop3() {
    let dir = tempfile::tempdir().unwrap();
    let homes = dir.path().join("homes");
    let db_path = dir.path().join("users.sqlite");
    rusqlite::Connection::open(&db_path)
        .unwrap()
        .execute_batch(&users_sql(&homes))
        .unwrap();
    let config = config(
        "sqlite",
        db_path.to_str().unwrap(),
        "sql",
        "SELECT userid AS user, password FROM users WHERE userid = '%u'",
        "",
    );
    let server = start(dir, &config);
    check_logins(&server, &homes);
}

#[test]
fn postgresql_users_log_in_over_imap_and_pop3() {
    let Some(pg) = postgres() else { return };
    let dir = tempfile::tempdir().unwrap();
    let homes = dir.path().join("homes");
    pg.psql(&users_sql(&homes));
    // One query for passdb and userdb ("prefetch"); the database password in a file of its
    // own.
    let password_file = dir.path().join("pg-password");
    std::fs::write(
        &password_file,
        format!("{}\n", test_support::postgres::PASSWORD),
    )
    .unwrap();
    let config = config(
        "postgresql",
        &pg.connect_string_without_password(),
        "prefetch",
        "SELECT userid AS user, password, home AS userdb_home, mail AS userdb_mail \
         FROM users WHERE userid = '%u'",
        &format!("password_file = \"{}\"\n", password_file.display()),
    );
    let mut server = start(dir, &config);
    check_logins(&server, &homes);
    // The database gone: a temporary failure, not a wrong password.
    drop(pg);
    let reply = imap_refused(&server, "LOGIN alice wonderland");
    assert!(reply.starts_with("n NO [UNAVAILABLE]"), "{reply}");
    server.wait_for_log("postgresql: password_query: connecting");
}

fn pg_db(pg: &Postgres, password_query: Option<&str>, user_query: Option<&str>) -> SqlDb {
    SqlDb::open(SqlSettings {
        driver: SqlDriver::Postgresql(pg.connect_string()),
        password_query: password_query.map(str::to_owned),
        user_query: user_query.map(str::to_owned),
        default_pass_scheme: None,
        max_connections: 1,
        password: None,
    })
    .unwrap()
}

/// The PostgreSQL driver itself: column types, hostile names, ambiguous rows, a connection
/// the server dropped, a server that is gone.
#[test]
fn postgresql_passdb_and_userdb() {
    let Some(mut pg) = postgres() else { return };
    pg.psql(
        "CREATE TABLE accounts (name VARCHAR(64), pw TEXT, uid INTEGER, gid BIGINT, home TEXT,
                                quota_mb SMALLINT, active BOOLEAN, created TIMESTAMP);
         INSERT INTO accounts VALUES
           ('erin', '{PLAIN}erin-pw', 2000, 2001, '/srv/erin', 512, true, now()),
           ('twin', '{PLAIN}a', NULL, NULL, NULL, NULL, NULL, NULL),
           ('twin', '{PLAIN}b', NULL, NULL, NULL, NULL, NULL, NULL);",
    );
    let passdb = pg_db(
        &pg,
        Some("SELECT name AS user, pw AS password FROM accounts WHERE name = '%u' AND active"),
        None,
    );
    assert!(matches!(
        passdb.verify_plain("erin", b"erin-pw").unwrap(),
        AuthOutcome::Success(r) if r.name == "erin"
    ));
    assert_eq!(
        passdb.verify_plain("erin", b"wrong").unwrap(),
        AuthOutcome::WrongPassword
    );
    assert_eq!(
        passdb.verify_plain("nobody", b"x").unwrap(),
        AuthOutcome::UnknownUser
    );
    for hostile in [
        "x' OR '1'='1",
        "erin' --",
        "'; DROP TABLE accounts; --",
        "erin\\' OR true --",
        "$1",
    ] {
        assert_eq!(
            passdb.verify_plain(hostile, b"erin-pw").unwrap(),
            AuthOutcome::UnknownUser,
            "{hostile}"
        );
    }
    // Two rows for one name: refused as ambiguous, not the first one taken.
    assert!(matches!(
        pg_db(
            &pg,
            Some("SELECT pw AS password FROM accounts WHERE name = '%u'"),
            None
        )
        .verify_plain("twin", b"a"),
        Err(AuthError::Backend { .. })
    ));

    let userdb = pg_db(
        &pg,
        None,
        Some("SELECT uid, gid, home, quota_mb AS quota, active FROM accounts WHERE name = '%u'"),
    );
    let erin = UserDb::lookup(&userdb, "erin").unwrap().unwrap();
    assert_eq!((erin.uid, erin.gid), (Some(2000), Some(2001)));
    assert_eq!(erin.home, Some(PathBuf::from("/srv/erin")));
    assert_eq!(
        erin.extra,
        [
            ("quota".to_owned(), "512".to_owned()),
            ("active".to_owned(), "y".to_owned())
        ]
    );
    assert_eq!(UserDb::lookup(&userdb, "nobody").unwrap(), None);
    // A column type without a text form is named in the error.
    let timestamp = pg_db(
        &pg,
        None,
        Some("SELECT created FROM accounts WHERE name = '%u'"),
    );
    let e = UserDb::lookup(&timestamp, "erin").unwrap_err();
    assert!(e.to_string().contains("created"), "{e}");

    // Lookups are limited in time by the server unless the connection string says otherwise.
    let timeout = pg_db(
        &pg,
        Some("SELECT '{PLAIN}' || current_setting('statement_timeout') AS password"),
        None,
    );
    assert!(matches!(
        timeout.verify_plain("anyone", b"5s").unwrap(),
        AuthOutcome::Success(_)
    ));

    // Five lookups at once run on five connections: together they take about as long as one
    // (each sleeps half a second in the server), not five times as long.
    let slow = SqlDb::open(SqlSettings {
        driver: SqlDriver::Postgresql(pg.connect_string()),
        password_query: Some(
            "SELECT pw AS password FROM accounts, pg_sleep(0.5) WHERE name = '%u'".into(),
        ),
        user_query: None,
        default_pass_scheme: None,
        max_connections: 5,
        password: None,
    })
    .unwrap();
    let started = std::time::Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..5 {
            scope.spawn(|| {
                assert!(matches!(
                    slow.verify_plain("erin", b"erin-pw").unwrap(),
                    AuthOutcome::Success(_)
                ));
            });
        }
    });
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_millis(2000), "{took:?}");

    // The server drops the connection (an admin, a restart): the next lookup connects again.
    pg.psql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = 'columba-auth'",
    );
    assert!(matches!(
        passdb.verify_plain("erin", b"erin-pw").unwrap(),
        AuthOutcome::Success(_)
    ));
    // A wrong password for the database itself is reported, without that password.
    let wrong = SqlDb::open(SqlSettings {
        driver: SqlDriver::Postgresql(format!(
            "{} password=not-the-pg-password",
            pg.connect_string()
        )),
        password_query: Some("SELECT 1".into()),
        user_query: None,
        default_pass_scheme: None,
        max_connections: 1,
        password: None,
    })
    .unwrap();
    let e = wrong.verify_plain("erin", b"x").unwrap_err();
    assert!(!e.to_string().contains("not-the-pg-password"), "{e}");
    assert!(
        e.to_string().contains("password authentication failed"),
        "{e}"
    );
    // The server is gone: an error (a temporary failure), not an unknown user.
    pg.stop();
    assert!(matches!(
        passdb.verify_plain("erin", b"erin-pw"),
        Err(AuthError::Backend { .. })
    ));
}
