//! The mbox locks exclude other programs the way they lock: a POSIX `fcntl` lock taken by
//! another process (Python's `fcntl.lockf`, as procmail and Postfix take theirs), an `flock`
//! (util-linux `flock`, as mutt may be built), and a dot lock whose owner is alive. Each holds
//! Columba off until it is released; a dot lock whose owner died is broken.
//!
//! Without python3 or flock the tests print "skipping: ..." and pass, unless
//! `COLUMBA_REQUIRE_EXTERNAL=1`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mail_store::StoreErrorKind;
use mail_store::mbox::lock::{Access, LockConfig, LockMethod, MboxLock};

use common::have;

fn config(write: Vec<LockMethod>) -> LockConfig {
    LockConfig {
        read: vec![LockMethod::Fcntl],
        write,
        timeout: Duration::from_millis(300),
        dotlock_stale: Duration::from_secs(120),
    }
}

/// Runs `sh -c script` and waits until it prints a line (it holds its lock then).
fn holder(script: &str) -> Child {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(!line.is_empty(), "the lock holder did not start");
    child
}

/// While `child` holds its lock Columba gets `InUse`; once it is gone Columba gets the lock.
fn held_off_then_granted(path: &Path, config: &LockConfig, mut child: Child) {
    let err = MboxLock::acquire(path, Access::Write, config).unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::InUse, "{err}");
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match MboxLock::acquire(path, Access::Write, config) {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => {
                assert_eq!(e.kind(), StoreErrorKind::InUse, "{e}")
            }
            Err(e) => panic!("still locked after the holder died: {e}"),
        }
    }
}

#[test]
fn a_posix_fcntl_lock_of_another_process_holds_columba_off() {
    if !have("python3") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inbox");
    std::fs::write(&path, "").unwrap();
    let child = holder(&format!(
        "exec python3 -c 'import fcntl, time; f = open(\"{}\", \"r+\"); \
         fcntl.lockf(f, fcntl.LOCK_EX); print(\"locked\", flush=True); time.sleep(30)'",
        path.display()
    ));
    held_off_then_granted(&path, &config(vec![LockMethod::Fcntl]), child);
    // A read lock is refused too while a writer holds the file.
    let child = holder(&format!(
        "exec python3 -c 'import fcntl, time; f = open(\"{}\", \"r+\"); \
         fcntl.lockf(f, fcntl.LOCK_EX); print(\"locked\", flush=True); time.sleep(30)'",
        path.display()
    ));
    let err = MboxLock::acquire(&path, Access::Read, &config(vec![])).unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::InUse);
    let mut child = child;
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn an_flock_of_another_process_holds_columba_off() {
    if !have("flock") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inbox");
    std::fs::write(&path, "").unwrap();
    let child = holder(&format!(
        "exec flock -x -o {} sh -c 'echo locked; exec sleep 10'",
        path.display()
    ));
    held_off_then_granted(&path, &config(vec![LockMethod::Flock]), child);
}

#[test]
fn a_live_dot_lock_holds_columba_off_and_a_dead_ones_is_broken() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inbox");
    std::fs::write(&path, "").unwrap();
    let lock_file = dir.path().join("inbox.lock");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    std::fs::write(&lock_file, format!("{}:{}", sleeper.id(), host.trim())).unwrap();
    let dot = config(vec![LockMethod::Dotlock]);
    let err = MboxLock::acquire(&path, Access::Write, &dot).unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::InUse);
    // The owner dies: its lock is broken once it is two seconds old.
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    let mut patient = dot.clone();
    patient.timeout = Duration::from_secs(5);
    let lock = MboxLock::acquire(&path, Access::Write, &patient).unwrap();
    // Ours now: the file holds our pid.
    let content = std::fs::read_to_string(&lock_file).unwrap();
    assert!(
        content.starts_with(&format!("{}:", std::process::id())),
        "{content}"
    );
    drop(lock);
    assert!(!lock_file.exists());
}
