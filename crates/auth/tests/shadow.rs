//! The `shadow` passdb over a shadow file of its own: every crypt(3) method Debian writes,
//! locked, expired and password-aged accounts, root, and a file that changes underneath.

use auth::crypt::{crypt, gensalt};
use auth::shadow::ShadowPassDb;
use auth::{AuthOutcome, PassDb};

fn hashed(method: &str, password: &str) -> String {
    let setting = gensalt(method, 0).unwrap_or_else(|| panic!("gensalt {method}"));
    crypt(password.as_bytes(), &setting).unwrap().to_string()
}

fn success(outcome: AuthOutcome, user: &str) {
    match outcome {
        AuthOutcome::Success(record) => assert_eq!(record.name, user),
        other => panic!("{user}: expected success, got {other:?}"),
    }
}

#[test]
fn methods_and_account_states() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shadow");
    let y = hashed("$y$", "pw");
    let lines = [
        format!("cy-yescrypt:{y}:19000:0:99999:7:::"),
        format!("cy-gost:{}:19000:0:99999:7:::", hashed("$gy$", "pw")),
        format!("cy-sha512:{}:19000:0:99999:7:::", hashed("$6$", "pw")),
        format!("cy-sha256:{}:19000:0:99999:7:::", hashed("$5$", "pw")),
        format!("cy-bcrypt:{}:19000:0:99999:7:::", hashed("$2b$", "pw")),
        format!("cy-md5:{}:19000:0:99999:7:::", hashed("$1$", "pw")),
        format!("cy-short:{y}"),
        format!("cy-locked:!{y}:19000:0:99999:7:::"),
        "cy-nopass:*:19000:0:99999:7:::".to_owned(),
        "cy-empty::19000:0:99999:7:::".to_owned(),
        format!("cy-expired:{y}:19000:0:99999:7::1:"),
        format!("cy-mustchange:{y}:0:0:99999:7:::"),
        format!("cy-aged:{y}:1:0:30:7:::"),
        "cy-broken:$y$nonsense:19000:0:99999:7:::".to_owned(),
        format!("root:{y}:19000:0:99999:7:::"),
    ];
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let db = ShadowPassDb::open(&path).unwrap();
    for user in [
        "cy-yescrypt",
        "cy-gost",
        "cy-sha512",
        "cy-sha256",
        "cy-bcrypt",
        "cy-md5",
        "cy-short",
    ] {
        success(db.verify_plain(user, b"pw").unwrap(), user);
        assert_eq!(
            db.verify_plain(user, b"pW").unwrap(),
            AuthOutcome::WrongPassword,
            "{user}"
        );
    }
    for user in [
        "cy-locked",
        "cy-nopass",
        "cy-empty",
        "cy-expired",
        "cy-mustchange",
        "cy-aged",
        "cy-broken",
        // uid 0 on this system: never, even with the right password.
        "root",
    ] {
        assert_eq!(
            db.verify_plain(user, b"pw").unwrap(),
            AuthOutcome::WrongPassword,
            "{user}"
        );
        assert_eq!(
            db.verify_plain(user, b"").unwrap(),
            AuthOutcome::WrongPassword
        );
    }
    assert_eq!(
        db.verify_plain("cy-nobody", b"pw").unwrap(),
        AuthOutcome::UnknownUser
    );
    // Names are looked up as given: the authenticator lower-cases them before.
    assert_eq!(
        db.verify_plain("CY-SHA512", b"pw").unwrap(),
        AuthOutcome::UnknownUser
    );
    // Nothing is read from the file beyond the name and hash lookups: no supported
    // credentials for challenge-response mechanisms.
    assert!(!db.supports_credentials());
}

#[test]
fn changes_to_the_file_are_seen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shadow");
    std::fs::write(
        &path,
        format!("cy-a:{}:19000::::::\n", hashed("$6$", "one")),
    )
    .unwrap();
    let db = ShadowPassDb::open(&path).unwrap();
    success(db.verify_plain("cy-a", b"one").unwrap(), "cy-a");
    // As chpasswd does: a new file renamed over the old one.
    let tmp = dir.path().join("shadow+");
    std::fs::write(&tmp, format!("cy-a:{}:19000::::::\n", hashed("$y$", "two"))).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    success(db.verify_plain("cy-a", b"two").unwrap(), "cy-a");
    assert_eq!(
        db.verify_plain("cy-a", b"one").unwrap(),
        AuthOutcome::WrongPassword
    );
}

#[test]
fn unreadable_file_is_reported_at_open() {
    let dir = tempfile::tempdir().unwrap();
    assert!(ShadowPassDb::open(dir.path().join("missing")).is_err());
    // A lazily opened one reports it per lookup, as an error (not a wrong password).
    let db = ShadowPassDb::new(dir.path().join("missing"));
    assert!(db.verify_plain("x", b"y").is_err());
}

#[test]
fn system_shadow_when_root() {
    // Only root can read /etc/shadow; tests run as root here and in CI.
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: not root");
        return;
    }
    let db = ShadowPassDb::open(auth::shadow::DEFAULT_PATH).unwrap();
    assert_eq!(
        db.verify_plain("no-such-user-columba-test", b"x").unwrap(),
        AuthOutcome::UnknownUser
    );
    assert_eq!(
        db.verify_plain("root", b"x").unwrap(),
        AuthOutcome::WrongPassword
    );
}
