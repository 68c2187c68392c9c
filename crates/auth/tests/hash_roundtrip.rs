//! Every `hash()` output verifies with our `verify` and with Dovecot's `doveadm pw -t` (the
//! latter when doveadm is installed; with `COLUMBA_REQUIRE_EXTERNAL=1` it must be).

use std::process::{Command, Stdio};
use std::thread;

use auth::scheme::{Encoding, HashOptions, Scheme, hash, hash_with, verify};

const LONG: &str = "Long-password-0123456789Long-password-0123456789Long-password-0123456789\
                    Long-password-0123456789Long-password-0123456789";

fn passwords(scheme: Scheme) -> Vec<&'static str> {
    match scheme {
        // Seconds per hash in an unoptimised build: one password (UTF-8) each.
        Scheme::Argon2i | Scheme::Argon2id => vec!["pässwörd€😀"],
        _ => vec![
            "",
            "password",
            "pass word:with#special$chars\\\"'{}",
            "pässwörd€😀",
            LONG,
        ],
    }
}

fn doveadm_available() -> bool {
    let found = Command::new("doveadm")
        .args(["pw", "-l"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        if std::env::var("COLUMBA_REQUIRE_EXTERNAL").as_deref() == Ok("1") {
            panic!("doveadm is required (COLUMBA_REQUIRE_EXTERNAL=1) but not installed");
        }
        eprintln!("skipping the doveadm cross-check: doveadm (Dovecot) is not installed");
    }
    found
}

fn doveadm_verifies(stored: &str, password: &str) -> bool {
    Command::new("doveadm")
        .args(["pw", "-t", stored, "-p", password])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// All (label, password, stored) cases: every scheme with default options, every non-Argon2
/// scheme in both explicit encodings, and the cost option where a scheme has one.
fn cases() -> Vec<(String, &'static str, String)> {
    let mut out = Vec::new();
    for scheme in Scheme::ALL {
        for pw in passwords(scheme) {
            out.push((scheme.to_string(), pw, hash(scheme, pw.as_bytes())));
        }
        if matches!(scheme, Scheme::Argon2i | Scheme::Argon2id) {
            continue;
        }
        for encoding in [Encoding::Hex, Encoding::Base64] {
            let options = HashOptions {
                encoding: Some(encoding),
                ..HashOptions::default()
            };
            let pw = "pässwörd€😀";
            let label = format!("{scheme} {encoding:?}");
            out.push((label, pw, hash_with(scheme, pw.as_bytes(), &options)));
        }
    }
    for (scheme, rounds) in [
        (Scheme::Sha512Crypt, 6000),
        (Scheme::Sha256Crypt, 1),
        (Scheme::Crypt, 5001),
        (Scheme::BlfCrypt, 6),
        (Scheme::Pbkdf2, 777),
    ] {
        let options = HashOptions {
            rounds: Some(rounds),
            ..HashOptions::default()
        };
        out.push((
            format!("{scheme} rounds {rounds}"),
            "password",
            hash_with(scheme, b"password", &options),
        ));
    }
    // {PLAIN} of text that cannot stand in a passwd-file line.
    out.push((
        "PLAIN unsafe".into(),
        "a:b\tc",
        hash(Scheme::Plain, b"a:b\tc"),
    ));
    out
}

#[test]
fn hash_output_verifies_here_and_with_doveadm() {
    let cases = cases();
    let doveadm = doveadm_available();
    let workers = thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(2);
    let failures: Vec<String> = thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let cases = &cases;
                s.spawn(move || {
                    let mut failures = Vec::new();
                    for (label, pw, stored) in cases.iter().skip(w).step_by(workers) {
                        if !matches!(verify(stored, pw.as_bytes()), Ok(true)) {
                            failures.push(format!("{label}: verify({stored}, {pw:?}) not true"));
                        }
                        let wrong = format!("x{pw}");
                        if !label.starts_with("ARGON2")
                            && !matches!(verify(stored, wrong.as_bytes()), Ok(false))
                        {
                            failures.push(format!("{label}: wrong password accepted: {stored}"));
                        }
                        if doveadm && !doveadm_verifies(stored, pw) {
                            failures.push(format!("{label}: doveadm rejects {stored} / {pw:?}"));
                        }
                        if doveadm && doveadm_verifies(stored, &wrong) {
                            failures.push(format!("{label}: doveadm accepts wrong {stored}"));
                        }
                    }
                    failures
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker panicked"))
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn hash_uses_fresh_salts() {
    for scheme in [
        Scheme::Ssha,
        Scheme::Sha512Crypt,
        Scheme::Pbkdf2,
        Scheme::Md5Crypt,
    ] {
        assert_ne!(hash(scheme, b"pw"), hash(scheme, b"pw"), "{scheme}");
    }
    assert_eq!(hash(Scheme::Sha, b"pw"), hash(Scheme::Sha, b"pw"));
}

#[test]
fn hash_prefixes() {
    for scheme in Scheme::ALL {
        if matches!(scheme, Scheme::Argon2i | Scheme::Argon2id) {
            continue;
        }
        let h = hash(scheme, b"password");
        assert!(h.starts_with(&format!("{{{}}}", scheme.name())), "{h}");
    }
    assert!(hash(Scheme::Crypt, b"x").starts_with("{CRYPT}$6$"));
    assert!(hash(Scheme::BlfCrypt, b"x").starts_with("{BLF-CRYPT}$2y$05$"));
    assert!(hash(Scheme::PlainMd5, b"x").len() == "{PLAIN-MD5}".len() + 32);
}
