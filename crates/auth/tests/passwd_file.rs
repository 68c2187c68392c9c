//! The passwd-file passdb/userdb and its admin helpers.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use auth::passwd_file::{
    AdminError, PasswdFile, UserFields, add_user, list_users, remove_user, set_password,
    validate_user_name,
};
use auth::scheme::{HashOptions, Scheme, hash, hash_with};
use auth::{AuthOutcome, PassDb, UserRecord};

fn write(dir: &Path, content: &str) -> PathBuf {
    let path = dir.join("passwd");
    fs::write(&path, content).unwrap();
    path
}

fn success(outcome: AuthOutcome) -> UserRecord {
    match outcome {
        AuthOutcome::Success(r) => r,
        other => panic!("expected success, got {other:?}"),
    }
}

#[test]
fn full_format_comments_blank_lines_and_extra_fields() {
    let dir = tempfile::tempdir().unwrap();
    let content = format!(
        "# a comment\n\
         \n\
         \x20  \n\
         :no-user:1000\n\
         alice:{alice}:1000:1001:Alice A:/home/alice:/bin/false:userdb_mail=maildir:~/Mail quota_rule=*:storage=1G nopassword_flag\n\
         Bob:{bob}\r\n\
         carol:{carol}::::/home/carol\n\
         old:{old}:1002:1002::/home/old:::userdb_home=/x:mbox:~/mail\n\
         nopass\n\
         emptypass::1003:1003\n",
        alice = hash(Scheme::Sha512Crypt, b"alice-pw"),
        bob = hash(Scheme::Ssha, b"bob-pw"),
        carol = "$1$xssJd1Mr$rKTrCTw2k3InN2LdLCJ750",
        old = hash(Scheme::Plain, b"old-pw"),
    );
    let path = write(dir.path(), &content);
    let db = PasswdFile::open(&path).unwrap();
    assert_eq!(db.user_count().unwrap(), 6);

    let alice = success(db.verify_plain("alice", b"alice-pw").unwrap());
    assert_eq!(
        alice,
        UserRecord {
            name: "alice".into(),
            uid: Some(1000),
            gid: Some(1001),
            home: Some("/home/alice".into()),
            extra: vec![
                ("userdb_mail".into(), "maildir:~/Mail".into()),
                ("quota_rule".into(), "*:storage=1G".into()),
                ("nopassword_flag".into(), String::new()),
            ],
        }
    );
    assert_eq!(
        db.verify_plain("alice", b"wrong").unwrap(),
        AuthOutcome::WrongPassword
    );

    // CRLF line, case-insensitive lookup, record keeps the file's spelling.
    let bob = success(db.verify_plain("BOB", b"bob-pw").unwrap());
    assert_eq!(bob.name, "Bob");
    assert_eq!((bob.uid, bob.gid, bob.home), (None, None, None));

    // A bare crypt string (no {SCHEME}) is CRYPT.
    let carol = success(db.verify_plain("carol", b"pass").unwrap());
    assert_eq!(carol.home, Some("/home/carol".into()));

    // Old format: empty 8th field, then the mail location (which may hold colons).
    let old = success(db.verify_plain("old", b"old-pw").unwrap());
    assert_eq!(
        old.extra,
        vec![("userdb_mail".into(), "userdb_home=/x:mbox:~/mail".into())]
    );

    // Users without a password exist but cannot log in.
    for user in ["nopass", "emptypass"] {
        assert!(db.lookup(user).unwrap().is_some());
        assert_eq!(
            db.verify_plain(user, b"").unwrap(),
            AuthOutcome::WrongPassword
        );
        assert_eq!(
            db.verify_plain(user, b"x").unwrap(),
            AuthOutcome::WrongPassword
        );
    }
    assert_eq!(
        db.verify_plain("nobody", b"x").unwrap(),
        AuthOutcome::UnknownUser
    );
    assert_eq!(db.lookup("ALICE").unwrap().unwrap().uid, Some(1000));
    assert_eq!(db.lookup("nobody").unwrap(), None);
}

#[test]
fn malformed_lines_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let good = hash(Scheme::Sha256, b"pw");
    let mut content = Vec::new();
    for line in [
        format!("rootuid:{good}:0:100"),
        format!("rootgid:{good}:100:0"),
        format!("badgid:{good}:100:no-such-group-here-xyz"),
        format!("baduid:{good}:no-such-user-here-xyz:100"),
        format!("bad\x01name:{good}"),
        format!("{}:{good}", "n".repeat(256)),
        format!("sl/ash:{good}"),
        format!("ok:{good}:4294967295"),
        format!("dup:{good}"),
        format!("DUP:{}", hash(Scheme::Sha256, b"other")),
    ] {
        content.extend_from_slice(line.as_bytes());
        content.push(b'\n');
    }
    content.extend_from_slice(b"latin\xe9:{PLAIN}pw\n");
    content.extend_from_slice(format!("last:{good}").as_bytes()); // no final newline
    let path = dir.path().join("passwd");
    fs::write(&path, &content).unwrap();
    let db = PasswdFile::open(&path).unwrap();
    let names: Vec<String> = list_users(&path)
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["ok", "dup", "last"]);
    assert_eq!(db.user_count().unwrap(), 3);
    assert_eq!(db.lookup("ok").unwrap().unwrap().uid, Some(u32::MAX));
    // The first of duplicate users wins.
    success(db.verify_plain("dup", b"pw").unwrap());
    assert_eq!(
        db.verify_plain("dup", b"other").unwrap(),
        AuthOutcome::WrongPassword
    );
    success(db.verify_plain("last", b"pw").unwrap());
    assert_eq!(
        db.verify_plain("rootuid", b"pw").unwrap(),
        AuthOutcome::UnknownUser
    );
}

#[test]
fn uid_and_gid_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "u:{PLAIN}pw:daemon:daemon\n");
    let db = PasswdFile::open(&path).unwrap();
    // Debian and most systems have a `daemon` user and group with id 1; tolerate others.
    if let Some(record) = db.lookup("u").unwrap() {
        assert!(record.uid.is_some_and(|u| u != 0));
        assert!(record.gid.is_some_and(|g| g != 0));
    }
}

#[test]
fn libpam_pwdfile_suffixes() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "a:5f4dcc3b5aa765d61d8327deb882cf99[34]\nb:D3EWY6eHZo5z2[13]\nc:$1$xssJd1Mr$rKTrCTw2k3InN2LdLCJ750\n",
    );
    let db = PasswdFile::open(&path).unwrap();
    success(db.verify_plain("a", b"password").unwrap());
    success(db.verify_plain("b", b"pass").unwrap());
    success(db.verify_plain("c", b"pass").unwrap());
}

#[test]
fn unsupported_scheme_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "y:{DIGEST-MD5}abcdef\n");
    let db = PasswdFile::open(&path).unwrap();
    assert!(matches!(
        db.verify_plain("y", b"pw"),
        Err(auth::AuthError::UnsupportedScheme(_))
    ));
}

#[test]
fn yescrypt_through_the_system_crypt() {
    let dir = tempfile::tempdir().unwrap();
    let yescrypt = "$y$j9T$Qeof7nTZR1kT1cFwdlZqd0$B5.LdYzAcE8IwmEjeOUR9RwIwpalyyj/oxaiDqnryZ/";
    let path = write(
        dir.path(),
        &format!("y:{yescrypt}\nz:{{CRYPT}}{yescrypt}\n"),
    );
    let db = PasswdFile::open(&path).unwrap();
    for user in ["y", "z"] {
        success(db.verify_plain(user, b"WA7NERURoVlDegBUVyM1Kk").unwrap());
        assert_eq!(
            db.verify_plain(user, b"wrong").unwrap(),
            AuthOutcome::WrongPassword
        );
    }
}

#[test]
fn missing_file_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent");
    assert!(matches!(
        PasswdFile::open(&path),
        Err(auth::AuthError::Io { .. })
    ));
    let db = PasswdFile::new(&path);
    assert!(matches!(
        db.verify_plain("x", b"y"),
        Err(auth::AuthError::Io { .. })
    ));
    // Appears later: picked up.
    fs::write(&path, "x:{PLAIN}y\n").unwrap();
    success(db.verify_plain("x", b"y").unwrap());
}

#[test]
fn reloads_when_the_file_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "u:{PLAIN}one\n");
    let db = PasswdFile::open(&path).unwrap();
    success(db.verify_plain("u", b"one").unwrap());

    // Same size, rewritten in place (same inode): the mtime/ctime change is seen.
    fs::write(&path, "u:{PLAIN}two\n").unwrap();
    success(db.verify_plain("u", b"two").unwrap());
    assert_eq!(
        db.verify_plain("u", b"one").unwrap(),
        AuthOutcome::WrongPassword
    );

    // Replaced by rename (the admin helpers' way): new inode.
    set_password(&path, "u", "{PLAIN}three").unwrap();
    success(db.verify_plain("u", b"three").unwrap());
    add_user(&path, "v", "{PLAIN}vee", &UserFields::default()).unwrap();
    success(db.verify_plain("v", b"vee").unwrap());
    remove_user(&path, "u").unwrap();
    assert_eq!(
        db.verify_plain("u", b"three").unwrap(),
        AuthOutcome::UnknownUser
    );
}

#[test]
fn unknown_users_cost_a_hash_verification() {
    let dir = tempfile::tempdir().unwrap();
    let options = HashOptions {
        rounds: Some(40_000),
        ..HashOptions::default()
    };
    let path = write(
        dir.path(),
        &format!("slow:{}\n", hash_with(Scheme::Sha512Crypt, b"pw", &options)),
    );
    let db = PasswdFile::open(&path).unwrap();
    let time = |user: &str| {
        let start = Instant::now();
        let _ = db.verify_plain(user, b"guess").unwrap();
        start.elapsed()
    };
    let known = time("slow");
    let unknown = time("no-such-user");
    // Without the dummy verification an unknown user answers in microseconds.
    assert!(
        unknown >= known / 3 && unknown > Duration::from_millis(5),
        "known {known:?}, unknown {unknown:?}"
    );
}

#[test]
fn add_user_creates_file_0600_and_refuses_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users");
    let fields = UserFields {
        uid: Some(1000),
        gid: Some(1000),
        home: Some("/srv/mail/alice".into()),
        extra: vec![
            ("userdb_mail".into(), "maildir:~/Maildir".into()),
            ("flag".into(), String::new()),
        ],
    };
    add_user(&path, "alice", "{PLAIN}pw", &fields).unwrap();
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "alice:{PLAIN}pw:1000:1000::/srv/mail/alice::userdb_mail=maildir:~/Maildir flag\n"
    );
    add_user(&path, "bob", "{PLAIN}b", &UserFields::default()).unwrap();
    add_user(
        &path,
        "carol",
        "{PLAIN}c",
        &UserFields {
            home: Some("/home/carol".into()),
            ..UserFields::default()
        },
    )
    .unwrap();
    assert!(matches!(
        add_user(&path, "ALICE", "{PLAIN}x", &UserFields::default()),
        Err(AdminError::UserExists(_))
    ));
    let content = fs::read_to_string(&path).unwrap();
    assert!(
        content.ends_with("\nbob:{PLAIN}b\ncarol:{PLAIN}c::::/home/carol\n"),
        "{content}"
    );

    let users = list_users(&path).unwrap();
    assert_eq!(users.len(), 3);
    assert_eq!(users[0].extra[1], ("flag".into(), String::new()));
    let db = PasswdFile::open(&path).unwrap();
    assert_eq!(success(db.verify_plain("alice", b"pw").unwrap()), users[0]);
    assert_no_temp_files(dir.path());
}

#[test]
fn add_user_validates_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users");
    let none = UserFields::default();
    for name in [
        "",
        "a:b",
        "a/b",
        "a\nb",
        "a\tb",
        "#a",
        " a",
        "a ",
        &"x".repeat(256),
    ] {
        assert!(
            matches!(
                add_user(&path, name, "{PLAIN}x", &none),
                Err(AdminError::InvalidUserName(_))
            ),
            "{name:?}"
        );
    }
    assert!(validate_user_name(&"x".repeat(255)).is_ok());
    assert!(validate_user_name("jürgen@example.org").is_ok());
    for hash in ["", "{PLAIN}a:b", "{PLAIN}a\nb", " {PLAIN}x"] {
        assert!(
            matches!(
                add_user(&path, "u", hash, &none),
                Err(AdminError::InvalidField { .. })
            ),
            "{hash:?}"
        );
    }
    for fields in [
        UserFields {
            uid: Some(0),
            ..UserFields::default()
        },
        UserFields {
            gid: Some(0),
            ..UserFields::default()
        },
        UserFields {
            home: Some("relative".into()),
            ..UserFields::default()
        },
        UserFields {
            home: Some("/a:b".into()),
            ..UserFields::default()
        },
        UserFields {
            extra: vec![("a b".into(), "c".into())],
            ..UserFields::default()
        },
        UserFields {
            extra: vec![("".into(), "c".into())],
            ..UserFields::default()
        },
        UserFields {
            extra: vec![("k=".into(), "c".into())],
            ..UserFields::default()
        },
        UserFields {
            extra: vec![("k".into(), "c d".into())],
            ..UserFields::default()
        },
    ] {
        assert!(
            matches!(
                add_user(&path, "u", "{PLAIN}x", &fields),
                Err(AdminError::InvalidField { .. })
            ),
            "{fields:?}"
        );
    }
    assert!(!path.exists(), "nothing was written");
}

#[test]
fn edits_preserve_other_lines_mode_and_line_endings() {
    let dir = tempfile::tempdir().unwrap();
    let original: &[u8] = b"# users\n\
        alice:{PLAIN}a:1000:1000::/home/alice::quota=1G\n\
        \n\
        bob:{PLAIN}b\r\n\
        :orphan\n\
        garbage\xff-is-kept\n\
        Carol\n\
        bob:{PLAIN}shadowed\n\
        # end";
    let path = dir.path().join("passwd");
    fs::write(&path, original).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();

    set_password(&path, "ALICE", "{PLAIN}new").unwrap();
    set_password(&path, "bob", "{PLAIN}bb").unwrap();
    set_password(&path, "carol", "{PLAIN}c").unwrap();
    assert_eq!(
        String::from_utf8_lossy(&fs::read(&path).unwrap()),
        String::from_utf8_lossy(
            b"# users\n\
            alice:{PLAIN}new:1000:1000::/home/alice::quota=1G\n\
            \n\
            bob:{PLAIN}bb\r\n\
            :orphan\n\
            garbage\xff-is-kept\n\
            Carol:{PLAIN}c\n\
            bob:{PLAIN}shadowed\n\
            # end"
        )
    );
    assert_eq!(
        fs::read(&path).unwrap()[..]
            .windows(1)
            .filter(|w| w[0] == 0xff)
            .count(),
        1
    );
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o640
    );

    // Removing takes every line of the user, so no shadowed duplicate resurfaces.
    remove_user(&path, "BOB").unwrap();
    assert_eq!(
        fs::read(&path).unwrap(),
        b"# users\n\
        alice:{PLAIN}new:1000:1000::/home/alice::quota=1G\n\
        \n\
        :orphan\n\
        garbage\xff-is-kept\n\
        Carol:{PLAIN}c\n\
        # end"
    );
    assert!(matches!(
        remove_user(&path, "bob"),
        Err(AdminError::NoSuchUser(_))
    ));
    assert!(matches!(
        set_password(&path, "bob", "{PLAIN}x"),
        Err(AdminError::NoSuchUser(_))
    ));
    // Appending to a file without a final newline adds one first.
    add_user(&path, "dave", "{PLAIN}d", &UserFields::default()).unwrap();
    assert!(
        fs::read(&path)
            .unwrap()
            .ends_with(b"# end\ndave:{PLAIN}d\n")
    );
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o640
    );
    assert_no_temp_files(dir.path());
}

#[test]
fn edits_on_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent");
    assert!(list_users(&path).unwrap().is_empty());
    assert!(matches!(
        remove_user(&path, "x"),
        Err(AdminError::NoSuchUser(_))
    ));
    assert!(matches!(
        set_password(&path, "x", "{PLAIN}x"),
        Err(AdminError::NoSuchUser(_))
    ));
    assert!(!path.exists());
    let in_missing_dir = dir.path().join("no/such/dir/passwd");
    assert!(matches!(
        add_user(&in_missing_dir, "x", "{PLAIN}x", &UserFields::default()),
        Err(AdminError::Io { .. })
    ));
}

#[test]
fn edits_follow_symlinks() {
    let dir = tempfile::tempdir().unwrap();
    let real = write(dir.path(), "a:{PLAIN}a\n");
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    add_user(&link, "b", "{PLAIN}b", &UserFields::default()).unwrap();
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        fs::read_to_string(&real).unwrap(),
        "a:{PLAIN}a\nb:{PLAIN}b\n"
    );
}

#[test]
fn concurrent_adds_are_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("passwd");
    thread::scope(|s| {
        for t in 0..4 {
            let path = &path;
            s.spawn(move || {
                for i in 0..10 {
                    add_user(
                        path,
                        &format!("u{t}-{i}"),
                        "{PLAIN}x",
                        &UserFields::default(),
                    )
                    .unwrap();
                }
            });
        }
    });
    assert_eq!(list_users(&path).unwrap().len(), 40);
    assert_no_temp_files(dir.path());
}

#[test]
fn concurrent_lookups_during_rewrites() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "stable:{PLAIN}pw\n");
    let db = PasswdFile::open(&path).unwrap();
    thread::scope(|s| {
        s.spawn(|| {
            for i in 0..30 {
                add_user(&path, &format!("n{i}"), "{PLAIN}x", &UserFields::default()).unwrap();
            }
        });
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..200 {
                    success(db.verify_plain("stable", b"pw").unwrap());
                }
            });
        }
    });
    assert_eq!(db.user_count().unwrap(), 31);
}

fn assert_no_temp_files(dir: &Path) {
    let leftovers: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
