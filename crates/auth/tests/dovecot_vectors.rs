//! Every hash in `dovecot-vectors.tsv` (written and checked by Dovecot's `doveadm pw`, see
//! `make-vectors.sh`) verifies with the right password and fails with a wrong one.

use std::thread;

const VECTORS: &str = include_str!("dovecot-vectors.tsv");

struct Vector {
    line: usize,
    label: String,
    password: Vec<u8>,
    stored: String,
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn vectors() -> Vec<Vector> {
    VECTORS
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .map(|(i, l)| {
            let mut f = l.splitn(3, '\t');
            let (Some(label), Some(pw), Some(stored)) = (f.next(), f.next(), f.next()) else {
                panic!("line {}: not three fields", i + 1);
            };
            Vector {
                line: i + 1,
                label: label.to_owned(),
                password: unhex(pw),
                stored: stored.to_owned(),
            }
        })
        .collect()
}

fn check(v: &Vector) -> Result<(), String> {
    let ok = auth::scheme::verify(&v.stored, &v.password);
    if !matches!(ok, Ok(true)) {
        return Err(format!(
            "line {} ({}): right password gave {ok:?} for {}",
            v.line, v.label, v.stored
        ));
    }
    // An Argon2 check costs seconds in an unoptimised build: the wrong password is tried on the
    // empty-password vectors only (the same code path as every other).
    if v.label.starts_with("ARGON2") && !v.password.is_empty() {
        return Ok(());
    }
    let mut wrong = b"x".to_vec();
    wrong.extend_from_slice(&v.password);
    let bad = auth::scheme::verify(&v.stored, &wrong);
    if !matches!(bad, Ok(false)) {
        return Err(format!(
            "line {} ({}): wrong password gave {bad:?} for {}",
            v.line, v.label, v.stored
        ));
    }
    Ok(())
}

#[test]
fn every_dovecot_vector_verifies() {
    let mut all = vectors();
    // The slow ones first, so the workers finish together.
    all.sort_by_key(|v| !v.label.starts_with("ARGON2"));
    assert!(all.len() > 200, "only {} vectors", all.len());
    let workers = thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(2);
    let failures: Vec<String> = thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let all = &all;
                s.spawn(move || {
                    all.iter()
                        .skip(w)
                        .step_by(workers)
                        .filter_map(|v| check(v).err())
                        .collect::<Vec<_>>()
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
fn vectors_cover_every_scheme() {
    let all = vectors();
    for scheme in auth::scheme::Scheme::ALL {
        let prefix = format!("{{{}", scheme.name());
        assert!(
            all.iter().any(|v| v.stored.starts_with(&prefix)),
            "no vector for {scheme}"
        );
    }
}
