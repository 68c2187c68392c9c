//! The SQL passdb and userdb over SQLite (the embedded database; PostgreSQL is tested against a
//! real server in crates/columba/tests/sql_auth.rs): password schemes, `userdb_*` prefetch
//! columns, the userdb columns, hostile user names against the queries, ambiguous and broken
//! queries, and CRAM-MD5 over stored plaintext.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use auth::sasl::{Mechanism, cram_md5_response};
use auth::scheme::{Scheme, hash};
use auth::sql::{DEFAULT_PASSWORD_QUERY, DEFAULT_USER_QUERY, SqlDb, SqlDriver, SqlSettings};
use auth::{
    AuthError, AuthOutcome, AuthSettings, Authenticator, CredentialLookup, ExchangeStep,
    FailureKind, PassDb, UserDb, UserRecord,
};

/// A database with Dovecot's example `users` table (userid, password, home, uid, gid) plus a
/// `mail` column and a `domain`-split second table.
fn database(dir: &Path) -> PathBuf {
    let path = dir.join("users.sqlite");
    let db = rusqlite::Connection::open(&path).unwrap();
    db.execute_batch(
        "CREATE TABLE users (userid TEXT PRIMARY KEY, password TEXT, home TEXT, uid INTEGER,
                             gid INTEGER, mail TEXT);
         CREATE TABLE mailboxes (local TEXT, domain TEXT, pw TEXT, maildir TEXT);",
    )
    .unwrap();
    // user, password, home, uid (and gid), mail
    let rows = [
        (
            "alice",
            Some(hash(Scheme::Sha512Crypt, b"alice-pw")),
            Some("/home/alice"),
            Some(2001),
            Some("maildir:/var/mail/alice"),
        ),
        (
            "bob",
            Some(hash(Scheme::Ssha256, b"bob-pw")),
            None,
            None,
            None,
        ),
        (
            "carol",
            Some(hash(Scheme::Plain, b"carol-pw")),
            None,
            Some(2003),
            None,
        ),
        (
            "dave",
            Some("$1$xssJd1Mr$rKTrCTw2k3InN2LdLCJ750".to_owned()),
            None,
            None,
            None,
        ),
        ("nopass", None, None, None, None),
        (
            "scram",
            Some(hash(Scheme::ScramSha256, b"pencil")),
            None,
            None,
            None,
        ),
        ("emptypass", Some(String::new()), None, None, None),
    ];
    for (user, password, home, uid, mail) in rows {
        db.execute(
            "INSERT INTO users VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
            rusqlite::params![user, password, home, uid, mail],
        )
        .unwrap();
    }
    db.execute(
        "INSERT INTO mailboxes VALUES ('erin', 'example.org', ?1, '/srv/mail/example.org/erin')",
        [hash(Scheme::Plain, b"erin-pw")],
    )
    .unwrap();
    path
}

fn open(path: &Path, password_query: Option<&str>, user_query: Option<&str>) -> SqlDb {
    SqlDb::open(SqlSettings {
        driver: SqlDriver::Sqlite(path.to_owned()),
        password_query: password_query.map(str::to_owned),
        user_query: user_query.map(str::to_owned),
        default_pass_scheme: None,
        max_connections: 1,
        password: None,
    })
    .unwrap()
}

fn success(outcome: AuthOutcome) -> UserRecord {
    match outcome {
        AuthOutcome::Success(r) => r,
        other => panic!("expected success, got {other:?}"),
    }
}

#[test]
fn passwords_in_every_scheme_and_failures() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&database(dir.path()), Some(DEFAULT_PASSWORD_QUERY), None);
    for (user, password) in [
        ("alice", "alice-pw"),
        ("bob", "bob-pw"),
        ("carol", "carol-pw"),
        ("dave", "pass"),
        ("scram", "pencil"),
    ] {
        let record = success(db.verify_plain(user, password.as_bytes()).unwrap());
        assert_eq!(record.name, user);
        assert_eq!(
            db.verify_plain(user, b"wrong").unwrap(),
            AuthOutcome::WrongPassword,
            "{user}"
        );
    }
    assert_eq!(
        db.verify_plain("nobody-here", b"x").unwrap(),
        AuthOutcome::UnknownUser
    );
    // NULL and empty passwords let nobody in.
    for user in ["nopass", "emptypass"] {
        assert_eq!(
            db.verify_plain(user, b"").unwrap(),
            AuthOutcome::WrongPassword
        );
        assert_eq!(
            db.verify_plain(user, b"x").unwrap(),
            AuthOutcome::WrongPassword
        );
    }
}

#[test]
fn hostile_user_names_are_parameters_not_sql() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(dir.path());
    let db = open(
        &path,
        Some("SELECT userid AS user, password FROM users WHERE userid = '%u'"),
        Some("SELECT home, uid, gid FROM users WHERE userid = '%u'"),
    );
    for hostile in [
        "x' OR '1'='1",
        "' OR 1=1 --",
        "alice'--",
        "alice' UNION SELECT 'alice', '{PLAIN}x' --",
        "'; DROP TABLE users; --",
        "%u",
        "alice\\",
    ] {
        assert_eq!(
            db.verify_plain(hostile, b"x").unwrap(),
            AuthOutcome::UnknownUser,
            "{hostile}"
        );
        assert_eq!(UserDb::lookup(&db, hostile).unwrap(), None, "{hostile}");
    }
    // The UNION would have let "x" in as alice had it been pasted into the SQL.
    assert_eq!(
        db.verify_plain("alice' UNION SELECT 'alice', '{PLAIN}x' --", b"x")
            .unwrap(),
        AuthOutcome::UnknownUser
    );
    // The table is still there.
    success(db.verify_plain("alice", b"alice-pw").unwrap());
}

#[test]
fn user_query_columns_and_prefetch_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(dir.path());
    let db = open(
        &path,
        Some(DEFAULT_PASSWORD_QUERY),
        Some("SELECT home, uid, gid, mail FROM users WHERE userid = '%u'"),
    );
    let alice = UserDb::lookup(&db, "alice").unwrap().unwrap();
    assert_eq!(
        alice,
        UserRecord {
            name: "alice".into(),
            uid: Some(2001),
            gid: Some(2001),
            home: Some("/home/alice".into()),
            extra: vec![("mail".into(), "maildir:/var/mail/alice".into())],
        }
    );
    // NULL columns are missing fields.
    assert_eq!(
        UserDb::lookup(&db, "bob").unwrap().unwrap(),
        UserRecord::named("bob")
    );
    assert_eq!(UserDb::lookup(&db, "zed").unwrap(), None);
    let default = open(&path, None, Some(DEFAULT_USER_QUERY));
    assert_eq!(
        UserDb::lookup(&default, "carol").unwrap().unwrap().uid,
        Some(2003)
    );

    // One password_query serving userdb "prefetch": userdb_* columns fill the record, the
    // canonical name comes from the `user` column, a domain is split off with %n and %d.
    let prefetch = open(
        &path,
        Some(
            "SELECT local || '@' || domain AS user, pw AS password, 3000 AS userdb_uid, \
             'nogroup' AS userdb_gid, '/srv/mail/' || domain AS userdb_home, \
             'maildir:' || maildir AS userdb_mail, NULL AS userdb_quota \
             FROM mailboxes WHERE local = '%Ln' AND domain = '%Ld'",
        ),
        None,
    );
    let erin = success(
        prefetch
            .verify_plain("Erin@Example.org", b"erin-pw")
            .unwrap(),
    );
    assert_eq!(erin.name, "erin@example.org");
    assert_eq!(erin.uid, Some(3000));
    assert_eq!(erin.gid, auth::system::resolve_gid("nogroup"));
    assert_eq!(erin.home, Some("/srv/mail/example.org".into()));
    assert_eq!(
        erin.extra,
        [(
            "userdb_mail".to_owned(),
            "maildir:/srv/mail/example.org/erin".to_owned()
        )]
    );
    assert_eq!(
        prefetch
            .verify_plain("erin@example.com", b"erin-pw")
            .unwrap(),
        AuthOutcome::UnknownUser
    );
    // A literal around a variable: '%n@example.org'.
    let literal = open(
        &path,
        Some(
            "SELECT pw AS password FROM mailboxes WHERE local || '@' || domain = '%n@example.org'",
        ),
        None,
    );
    success(literal.verify_plain("erin@anything", b"erin-pw").unwrap());
}

#[test]
fn default_pass_scheme_applies_to_values_without_a_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("md5.sqlite");
    let db = rusqlite::Connection::open(&path).unwrap();
    db.execute_batch(
        "CREATE TABLE u (name TEXT, pass TEXT);
         INSERT INTO u VALUES ('md5', '5f4dcc3b5aa765d61d8327deb882cf99');
         INSERT INTO u VALUES ('tagged', '{PLAIN}tagged-pw');",
    )
    .unwrap();
    let db = SqlDb::open(SqlSettings {
        driver: SqlDriver::Sqlite(path),
        password_query: Some("SELECT pass AS password FROM u WHERE name = '%u'".into()),
        user_query: None,
        default_pass_scheme: Some("PLAIN-MD5".into()),
        max_connections: 1,
        password: None,
    })
    .unwrap();
    success(db.verify_plain("md5", b"password").unwrap());
    assert_eq!(
        db.verify_plain("md5", b"5f4dcc3b5aa765d61d8327deb882cf99")
            .unwrap(),
        AuthOutcome::WrongPassword
    );
    success(db.verify_plain("tagged", b"tagged-pw").unwrap());
}

#[test]
fn ambiguous_and_broken_queries_are_backend_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(dir.path());
    let many = open(&path, Some("SELECT password FROM users"), None);
    assert!(matches!(
        many.verify_plain("alice", b"alice-pw"),
        Err(AuthError::Backend { .. })
    ));
    let broken = open(
        &path,
        Some("SELECT password FROM no_such_table WHERE u = %u"),
        None,
    );
    assert!(matches!(
        broken.verify_plain("alice", b"x"),
        Err(AuthError::Backend { .. })
    ));
    let bad_uid = open(&path, None, Some("SELECT 'no-such-user-columba' AS uid"));
    assert!(matches!(
        UserDb::lookup(&bad_uid, "alice"),
        Err(AuthError::Backend { .. })
    ));
    let root = open(&path, None, Some("SELECT 0 AS uid"));
    assert!(UserDb::lookup(&root, "alice").is_err());
    // A passdb-only database asked as a userdb, and the reverse.
    assert!(UserDb::lookup(&open(&path, Some(DEFAULT_PASSWORD_QUERY), None), "alice").is_err());
    assert!(
        open(&path, None, Some(DEFAULT_USER_QUERY))
            .verify_plain("alice", b"x")
            .is_err()
    );
}

#[test]
fn configuration_errors_are_reported_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(dir.path());
    let settings = |driver, query: &str| SqlSettings {
        driver,
        password_query: Some(query.to_owned()),
        user_query: None,
        default_pass_scheme: None,
        max_connections: 1,
        password: None,
    };
    let sqlite = || SqlDriver::Sqlite(path.clone());
    for bad in ["WHERE u = '%x'", "WHERE u = '%u", "WHERE \"%u\" = 1"] {
        assert!(
            matches!(
                SqlDb::open(settings(sqlite(), bad)),
                Err(AuthError::Config(_))
            ),
            "{bad}"
        );
    }
    assert!(
        SqlDb::open(settings(
            SqlDriver::Sqlite(dir.path().join("missing")),
            "SELECT 1"
        ))
        .is_err()
    );
    let junk = dir.path().join("junk");
    std::fs::write(&junk, b"this is not an SQLite database, not at all, no").unwrap();
    assert!(SqlDb::open(settings(SqlDriver::Sqlite(junk), "SELECT 1")).is_err());
    // A password is for PostgreSQL only, and never shown.
    let with_password = SqlSettings {
        password: Some(zeroize::Zeroizing::new("hunter2".to_owned())),
        ..settings(sqlite(), "SELECT 1")
    };
    assert!(!format!("{with_password:?}").contains("hunter2"));
    assert!(matches!(
        SqlDb::open(with_password),
        Err(AuthError::Config(_))
    ));
    // The PostgreSQL connection string is checked, and its password never shown.
    let secret = "host=127.0.0.1 password=hunter2 port=notaport";
    let e = SqlDb::open(settings(SqlDriver::Postgresql(secret.into()), "SELECT 1")).unwrap_err();
    assert!(!e.to_string().contains("hunter2"), "{e}");
    let debug = format!(
        "{:?}",
        settings(SqlDriver::Postgresql(secret.into()), "SELECT 1")
    );
    assert!(!debug.contains("hunter2"), "{debug}");
}

#[test]
fn read_only_database_cannot_be_written_by_a_query() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(dir.path());
    let db = open(
        &path,
        Some("UPDATE users SET password = '{PLAIN}owned' WHERE userid = '%u' RETURNING password"),
        None,
    );
    assert!(db.verify_plain("alice", b"owned").is_err());
    let check = open(&path, Some(DEFAULT_PASSWORD_QUERY), None);
    success(check.verify_plain("alice", b"alice-pw").unwrap());
}

#[test]
fn stored_secrets_serve_cram_md5_and_scram_through_the_authenticator() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&database(dir.path()), Some(DEFAULT_PASSWORD_QUERY), None);
    assert!(matches!(
        db.lookup_credentials("carol").unwrap(),
        CredentialLookup::Found { .. }
    ));
    assert!(matches!(
        db.lookup_credentials("scram").unwrap(),
        CredentialLookup::Found { .. }
    ));
    assert_eq!(
        db.lookup_credentials("alice").unwrap(),
        CredentialLookup::NotAvailable
    );
    assert_eq!(
        db.lookup_credentials("zed").unwrap(),
        CredentialLookup::UnknownUser
    );
    let auth = Arc::new(
        Authenticator::new(
            Box::new(db),
            None,
            AuthSettings {
                mechanisms: vec![Mechanism::CramMd5, Mechanism::Plain],
                ..AuthSettings::default()
            },
        )
        .unwrap(),
    );
    let cram = |user: &str, password: &[u8]| {
        let mut exchange = auth.start(Mechanism::CramMd5).unwrap();
        let ExchangeStep::Challenge(challenge) = exchange.step(None) else {
            panic!("no challenge")
        };
        exchange.step(Some(&cram_md5_response(user, password, &challenge)))
    };
    assert!(matches!(cram("carol", b"carol-pw"), ExchangeStep::Success(r) if r.name == "carol"));
    let ExchangeStep::Failure(f) = cram("carol", b"wrong") else {
        panic!()
    };
    assert_eq!(f.kind, FailureKind::WrongPassword);
    let ExchangeStep::Failure(f) = cram("zed", b"x") else {
        panic!()
    };
    assert_eq!(f.kind, FailureKind::UnknownUser);
    // A one-way hash cannot serve CRAM-MD5.
    let ExchangeStep::Failure(f) = cram("alice", b"alice-pw") else {
        panic!()
    };
    assert_eq!(f.kind, FailureKind::WrongPassword);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Whatever the user name — quotes, comment markers, backslashes, `%`-variables,
    /// any Unicode — the query finds exactly the row whose name it is, or none: the name is
    /// data, never SQL. (Built from SQL's special characters more often than chance would.)
    #[test]
    fn any_user_name_is_only_ever_compared(
        name in proptest::string::string_regex(
            "(['\"\\\\;%_\\-/*()=|]|OR|--|1|alice|[a-z ]|\\PC){0,24}"
        ).unwrap()
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u.sqlite");
        let db = rusqlite::Connection::open(&path).unwrap();
        db.execute_batch("CREATE TABLE u (name TEXT, pass TEXT)").unwrap();
        db.execute("INSERT INTO u VALUES ('alice', '{PLAIN}pw')", []).unwrap();
        if !name.is_empty() && name != "alice" {
            db.execute("INSERT INTO u VALUES (?1, '{PLAIN}theirs')", [&name]).unwrap();
        }
        let sql = open(
            &path,
            Some("SELECT pass AS password FROM u WHERE name = '%u' AND pass <> '%u'"),
            None,
        );
        let expected = if name.is_empty() {
            AuthOutcome::UnknownUser
        } else if name == "alice" {
            AuthOutcome::WrongPassword
        } else {
            AuthOutcome::Success(UserRecord::named(name.clone()))
        };
        proptest::prop_assert_eq!(sql.verify_plain(&name, b"theirs").unwrap(), expected);
        // Nobody gets in as alice with her name spelled any other way.
        if name != "alice" {
            proptest::prop_assert_ne!(
                sql.verify_plain(&name, b"pw").unwrap(),
                AuthOutcome::Success(UserRecord::named("alice"))
            );
        }
    }
}
