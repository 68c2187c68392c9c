//! `columba checkpassword-reply`: the program a checkpassword program runs once it accepted a
//! password (qmail's interface: the rest of its command line). It reports the user back to the
//! server on descriptor 4, writing what Dovecot's `checkpassword-reply` writes, so either can
//! be configured: `user=$USER`, `userdb_home=$HOME`, `key=value` for each variable `$EXTRA`
//! names (lower-cased), and `userdb_uid`/`userdb_gid` from its own ids unless EXTRA gave them,
//! tab-separated.

use std::io::Write as _;
use std::os::fd::FromRawFd as _;

/// Runs the reply program; the result is its exit status: 0 (or 2 when `AUTHORIZED=2`, the
/// userdb-lookup convention), 1 for a value that cannot be sent, 111 when writing fails.
pub fn run() -> i32 {
    let Some(reply) = reply(|name| std::env::var(name).ok()) else {
        eprintln!("checkpassword-reply: a value contains a TAB or newline");
        return 1;
    };
    // SAFETY: descriptor 4 is the reply pipe the server opened for this process tree (the
    // interface's contract); this is its only owner here, and it is closed once written.
    let mut out = unsafe { std::fs::File::from_raw_fd(4) };
    if let Err(e) = out.write_all(reply.as_bytes()) {
        eprintln!("checkpassword-reply: writing to descriptor 4: {e}");
        return 111;
    }
    if std::env::var("AUTHORIZED").as_deref() == Ok("2") {
        2
    } else {
        0
    }
}

/// The reply line from the environment `var` reads; `None` when a value holds a TAB or LF.
fn reply(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    let mut fields: Vec<(String, String)> = Vec::new();
    if let Some(user) = var("USER") {
        fields.push(("user".to_owned(), user));
    }
    if let Some(home) = var("HOME") {
        fields.push(("userdb_home".to_owned(), home));
    }
    for name in var("EXTRA")
        .unwrap_or_default()
        .split(' ')
        .filter(|n| !n.is_empty())
    {
        if let Some(value) = var(name) {
            fields.push((name.to_lowercase(), value));
        }
    }
    // SAFETY: getuid and getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    if !fields.iter().any(|(k, _)| k == "userdb_uid") {
        fields.push(("userdb_uid".to_owned(), uid.to_string()));
    }
    if !fields.iter().any(|(k, _)| k == "userdb_gid") {
        fields.push(("userdb_gid".to_owned(), gid.to_string()));
    }
    let mut out = String::new();
    for (key, value) in fields {
        if value.contains(['\t', '\n']) || key.contains(['\t', '\n', '=']) {
            return None;
        }
        out.push_str(&key);
        out.push('=');
        out.push_str(&value);
        out.push('\t');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_from_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let r = reply(env(&[
            ("USER", "bob"),
            ("HOME", "/home/bob"),
            ("EXTRA", "userdb_uid userdb_mail MISSING"),
            ("userdb_uid", "1500"),
            ("userdb_mail", "maildir:~/Mail"),
        ]))
        .unwrap();
        assert!(r.starts_with("user=bob\tuserdb_home=/home/bob\tuserdb_uid=1500\tuserdb_mail=maildir:~/Mail\tuserdb_gid="));
        assert!(r.ends_with('\t'));
        assert!(reply(env(&[("USER", "a\tb")])).is_none());
        let r = reply(env(&[])).unwrap();
        assert!(r.starts_with("userdb_uid="), "{r}");
    }
}
