//! The helpers against a real Dovecot (skipped when it is not installed).

use test_support::Dovecot;

#[test]
fn append_then_fetch_round_trip() {
    let Some(dovecot) = Dovecot::start() else {
        return;
    };
    let mut c = dovecot.connect().expect("login");
    let msg = b"Subject: hi\r\n\r\nbody\r\n";
    c.append("INBOX", msg)
        .expect("append")
        .ok()
        .expect("append OK");
    c.command("SELECT INBOX")
        .expect("select")
        .ok()
        .expect("select OK");
    let r = c
        .command("FETCH 1 (BODY.PEEK[] RFC822.SIZE)")
        .expect("fetch")
        .ok()
        .expect("fetch OK");
    assert_eq!(r.untagged.len(), 1, "{r:?}");
    let line = &r.untagged[0];
    let expected_tail = [&b"{21}\r\n"[..], msg, b")"].concat();
    assert!(
        line.ends_with(&expected_tail),
        "{}",
        String::from_utf8_lossy(line)
    );
    let bad = c.command("FETCH 1 (NONSENSE)").expect("fetch");
    assert_eq!(bad.status, "BAD");
}
