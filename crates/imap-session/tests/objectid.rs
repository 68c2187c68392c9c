//! OBJECTID (RFC 8474) identities that a transcript cannot compare across lines: MAILBOXID is
//! the same in CREATE, STATUS and SELECT, survives RENAME and a new session, and differs
//! between mailboxes; EMAILID is kept by COPY and MOVE (5.1), differs between messages, and
//! is found again by SEARCH EMAILID.

mod common;

use std::sync::Arc;

use common::{command, context, serve};
use imap_session::SessionContext;
use test_support::transcript::Conn;

/// A logged-in session as alice.
async fn login(ctx: &Arc<SessionContext>) -> Conn {
    let (mut conn, server) = Conn::pair();
    serve(ctx, server, "objectid");
    conn.line().await;
    let reply = command(&mut conn, "l", "LOGIN alice wonderland").await;
    assert!(reply.last().unwrap().contains("OBJECTID"), "{reply:?}");
    conn
}

/// The `(...)` after `label` in the first line holding it.
fn id_after(lines: &[String], label: &str) -> String {
    let line = lines
        .iter()
        .find(|l| l.contains(label))
        .unwrap_or_else(|| panic!("no {label} in {lines:?}"));
    let rest = &line[line.find(label).unwrap() + label.len()..];
    let id = rest.trim_start_matches(" (");
    id[..id.find(')').unwrap()].to_owned()
}

async fn append(conn: &mut Conn, tag: &str, mailbox: &str, message: &str) {
    conn.send(
        format!(
            "{tag} APPEND {mailbox} {{{}+}}\r\n{message}\r\n",
            message.len()
        )
        .as_bytes(),
    )
    .await;
    let line = conn.line().await;
    assert!(line.starts_with(&format!("{tag} OK")), "{line}");
}

#[tokio::test]
async fn mailbox_and_email_ids_are_stable() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    let mut c = login(&ctx).await;

    let created = command(&mut c, "a1", "CREATE Work").await;
    let work = id_after(&created, "MAILBOXID");
    assert!(
        !work.is_empty()
            && work
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    let other = id_after(&command(&mut c, "a2", "CREATE Other").await, "MAILBOXID");
    assert_ne!(work, other);
    let inbox = id_after(
        &command(&mut c, "a3", "STATUS INBOX (MAILBOXID)").await,
        "MAILBOXID",
    );
    assert_ne!(inbox, work);
    command(&mut c, "a4", "RENAME Work Play").await;
    let status = command(&mut c, "a5", "STATUS Play (MAILBOXID MESSAGES)").await;
    assert_eq!(
        id_after(&status, "MAILBOXID"),
        work,
        "RENAME keeps the MAILBOXID"
    );

    append(&mut c, "b1", "INBOX", "Subject: one\r\n\r\nsame body\r\n").await;
    append(&mut c, "b2", "INBOX", "Subject: two\r\n\r\nsame body\r\n").await;
    let selected = command(&mut c, "b3", "SELECT INBOX").await;
    assert_eq!(id_after(&selected, "MAILBOXID"), inbox);
    let fetched = command(&mut c, "b4", "FETCH 1:2 (EMAILID THREADID)").await;
    let one = id_after(&fetched[..1], "EMAILID");
    let two = id_after(&fetched[1..2], "EMAILID");
    assert_ne!(one, two);
    assert!(fetched[0].ends_with("THREADID NIL)"), "{fetched:?}");
    let found = command(&mut c, "b5", &format!("UID SEARCH EMAILID {two}")).await;
    assert_eq!(found[0], "* SEARCH 2");
    let found = command(&mut c, "b6", "SEARCH THREADID T1").await;
    assert_eq!(found[0], "* SEARCH");

    // COPY and MOVE keep the EMAILID (RFC 8474 5.1).
    command(&mut c, "c1", "COPY 1 Play").await;
    command(&mut c, "c2", "MOVE 2 Other").await;
    command(&mut c, "c3", "SELECT Play").await;
    let copied = command(&mut c, "c4", "FETCH 1 (EMAILID)").await;
    assert_eq!(id_after(&copied, "EMAILID"), one);
    command(&mut c, "c5", "SELECT Other").await;
    let moved = command(&mut c, "c6", "FETCH 1 (EMAILID)").await;
    assert_eq!(id_after(&moved, "EMAILID"), two);

    // Another session (and the ids a new process would compute) agree.
    command(&mut c, "d1", "LOGOUT").await;
    mail_store::maildir::release_idle_mailboxes(&dir.path().join("alice"));
    let mut c = login(&ctx).await;
    let status = command(&mut c, "d2", "STATUS Play (MAILBOXID)").await;
    assert_eq!(id_after(&status, "MAILBOXID"), work);
    command(&mut c, "d3", "EXAMINE INBOX").await;
    let again = command(&mut c, "d4", "FETCH 1 (EMAILID)").await;
    assert_eq!(id_after(&again, "EMAILID"), one);
}
