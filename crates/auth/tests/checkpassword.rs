//! The `checkpassword` passdb against small checkpassword programs written here in bash: the
//! fd 3 request, the reply on fd 4 (from a reply program written here, and from Dovecot's own
//! `checkpassword-reply` when it is installed), exit statuses, signals and timeouts.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use auth::checkpassword::CheckPassword;
use auth::{AuthOutcome, PassDb};

const CHECKPASSWORD: &str = r#"#!/bin/bash
# The request: user NUL password NUL timestamp NUL, on descriptor 3.
IFS= read -r -d '' user <&3 || exit 2
IFS= read -r -d '' pass <&3 || exit 2
IFS= read -r -d '' stamp <&3 || exit 2
[ -z "$stamp" ] || exit 2
# The password must come only through descriptor 3.
if [ ${#pass} -gt 5 ] && printenv | grep -qF -- "$pass"; then exit 2; fi
case "$user" in
  alice)
    [ "$pass" = 's3cret pass	with tab' ] || exit 1
    export USER=alice HOME=/home/alice-cp userdb_uid=2001 userdb_mail=maildir:/var/mail/alice
    export EXTRA="userdb_uid userdb_mail"
    exec "$@" ;;
  renamed) export USER=Alice; exec "$@" ;;
  slow) sleep 30 ;;
  temp) exit 111 ;;
  weird) exit 7 ;;
  noreply) exit 0 ;;
  signal) kill -9 $$ ;;
  vpop) exit 3 ;;
  proto) [ "$PROTO" = TCP ] && [ -n "$ORIG_UID" ] || exit 2; export USER=proto; exec "$@" ;;
  *) exit 1 ;;
esac
"#;

const REPLY: &str = r#"#!/bin/bash
# What Dovecot's checkpassword-reply writes, on descriptor 4.
{
  [ -n "$USER" ] && printf 'user=%s\t' "$USER"
  [ -n "$HOME" ] && printf 'userdb_home=%s\t' "$HOME"
  for k in $EXTRA; do printf '%s=%s\t' "${k,,}" "${!k}"; done
} >&4
"#;

fn script(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn db(dir: &Path, reply: Vec<OsString>, timeout: Duration) -> CheckPassword {
    let program = script(dir, "checkpassword", CHECKPASSWORD);
    CheckPassword::new(program, reply, timeout).unwrap()
}

#[test]
fn logins_replies_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let reply = script(dir.path(), "reply", REPLY);
    let db = db(dir.path(), vec![reply.into()], Duration::from_secs(10));
    let AuthOutcome::Success(record) = db.verify_plain("alice", b"s3cret pass\twith tab").unwrap()
    else {
        panic!("alice should log in")
    };
    assert_eq!(record.name, "alice");
    assert_eq!(record.home, Some(PathBuf::from("/home/alice-cp")));
    assert_eq!(record.uid, Some(2001));
    assert_eq!(
        record.extra,
        [(
            "userdb_mail".to_owned(),
            "maildir:/var/mail/alice".to_owned()
        )]
    );
    assert_eq!(
        db.verify_plain("alice", b"wrong").unwrap(),
        AuthOutcome::WrongPassword
    );
    assert_eq!(
        db.verify_plain("nobody", b"x").unwrap(),
        AuthOutcome::WrongPassword
    );
    assert_eq!(
        db.verify_plain("vpop", b"x").unwrap(),
        AuthOutcome::WrongPassword
    );
    let AuthOutcome::Success(record) = db.verify_plain("renamed", b"x").unwrap() else {
        panic!()
    };
    assert_eq!(record.name, "Alice");
    assert!(matches!(
        db.verify_plain("proto", b"x").unwrap(),
        AuthOutcome::Success(_)
    ));
}

#[test]
fn failures_are_errors_not_wrong_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let reply = script(dir.path(), "reply", REPLY);
    let db = db(dir.path(), vec![reply.into()], Duration::from_millis(700));
    for user in ["temp", "weird", "noreply", "signal", "slow"] {
        let started = std::time::Instant::now();
        assert!(db.verify_plain(user, b"x").is_err(), "{user}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{user} took too long"
        );
    }
}

#[test]
fn over_long_requests_never_reach_the_program() {
    let dir = tempfile::tempdir().unwrap();
    let reply = script(dir.path(), "reply", REPLY);
    let db = db(dir.path(), vec![reply.into()], Duration::from_secs(10));
    let long = vec![b'p'; 510];
    assert_eq!(
        db.verify_plain("alice", &long).unwrap(),
        AuthOutcome::WrongPassword
    );
    assert_eq!(db.verify_plain("", b"x").unwrap(), AuthOutcome::UnknownUser);
}

#[test]
fn dovecots_reply_program() {
    let dovecot_reply = Path::new("/usr/lib/dovecot/checkpassword-reply");
    if !dovecot_reply.exists() {
        if std::env::var("COLUMBA_REQUIRE_EXTERNAL").as_deref() == Ok("1") {
            panic!("{} is required but missing", dovecot_reply.display());
        }
        eprintln!("skipping: {} not installed", dovecot_reply.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = db(
        dir.path(),
        vec![dovecot_reply.into()],
        Duration::from_secs(10),
    );
    let AuthOutcome::Success(record) = db.verify_plain("alice", b"s3cret pass\twith tab").unwrap()
    else {
        panic!("alice should log in")
    };
    assert_eq!(record.name, "alice");
    assert_eq!(record.home, Some(PathBuf::from("/home/alice-cp")));
    assert_eq!(record.uid, Some(2001));
    // Dovecot's reply adds the gid it runs with.
    // SAFETY: getgid cannot fail.
    assert_eq!(record.gid, Some(unsafe { libc::getgid() }));
}
