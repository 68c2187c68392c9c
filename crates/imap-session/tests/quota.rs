//! QUOTA (RFC 9208) for a user whose userdb gives limits (`quota_rule`, as Dovecot's): the
//! QUOTAROOT and QUOTA responses, and APPEND, MULTIAPPEND, CATENATE and COPY refused with
//! OVERQUOTA before any literal is sent and without storing anything, while MOVE is not limited.

mod common;

use std::sync::Arc;

use auth::{AuthError, AuthOutcome, UserRecord};
use common::{command, context_with, serve};
use mail_store::{MailStore, StoreError};
use session_api::UserBackend;
use test_support::transcript::{Conn, TestBackend};

/// The test users, alice with 2 KiB of storage and 3 messages at most.
struct LimitedBackend(TestBackend);

impl UserBackend for LimitedBackend {
    fn authenticate(&self, username: &str, password: &[u8]) -> Result<AuthOutcome, AuthError> {
        Ok(match self.0.authenticate(username, password)? {
            AuthOutcome::Success(mut user) => {
                user.extra
                    .push(("userdb_quota_rule".into(), "*:storage=2k".into()));
                user.extra
                    .push(("userdb_quota_rule2".into(), "*:messages=3".into()));
                AuthOutcome::Success(user)
            }
            other => other,
        })
    }

    fn open_store(&self, user: &UserRecord) -> Result<Arc<dyn MailStore>, StoreError> {
        self.0.open_store(user)
    }
}

/// A message of exactly `size` octets.
fn message(size: usize) -> String {
    let head = "Subject: q\r\n\r\n";
    format!("{head}{}", "x".repeat(size - head.len()))
}

#[tokio::test]
async fn limits_are_reported_and_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context_with(Arc::new(LimitedBackend(TestBackend {
        root: dir.path().to_owned(),
    })));
    let (mut c, server) = Conn::pair();
    serve(&ctx, server, "quota");
    c.line().await;
    let login = command(&mut c, "l", "LOGIN alice wonderland").await;
    assert!(
        login[0].contains(" QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE"),
        "{login:?}"
    );
    command(&mut c, "c", "CREATE Other").await;

    let one = message(1000);
    let reply = command(&mut c, "a1", &format!("APPEND INBOX {{1000+}}\r\n{one}")).await;
    assert!(reply[0].starts_with("a1 OK [APPENDUID"), "{reply:?}");
    assert_eq!(
        command(&mut c, "q1", "GETQUOTAROOT INBOX").await,
        [
            "* QUOTAROOT \"INBOX\" \"User quota\"",
            "* QUOTA \"User quota\" (STORAGE 1 2 MESSAGE 1 3)",
            "q1 OK Getquotaroot completed."
        ]
    );

    // Too large: refused before the synchronizing literal is asked for.
    assert_eq!(
        command(&mut c, "a2", "APPEND INBOX {1500}").await,
        ["a2 NO [OVERQUOTA] Quota exceeded (mailbox for user is full)"]
    );
    // A MULTIAPPEND whose second message goes over stores neither.
    let small = message(600);
    let reply = command(
        &mut c,
        "a3",
        &format!("APPEND INBOX {{600+}}\r\n{small} {{600+}}\r\n{small}"),
    )
    .await;
    assert_eq!(
        reply,
        ["a3 NO [OVERQUOTA] Quota exceeded (mailbox for user is full)"]
    );
    let tiny = message(100);
    let reply = command(&mut c, "a4", &format!("APPEND INBOX {{100+}}\r\n{tiny}")).await;
    assert!(reply[0].starts_with("a4 OK"), "{reply:?}");
    assert_eq!(
        command(&mut c, "q2", "GETQUOTA \"User quota\"").await,
        [
            "* QUOTA \"User quota\" (STORAGE 2 2 MESSAGE 2 3)",
            "q2 OK Getquota completed."
        ]
    );

    // CATENATE (RFC 4469): a message made of URL parts counts once its size is known, a
    // synchronizing TEXT literal that would go over is refused before it is sent, and
    // nothing is stored either way.
    assert_eq!(
        command(
            &mut c,
            "t1",
            "APPEND INBOX CATENATE (URL \"/INBOX/;UID=1\")"
        )
        .await,
        ["t1 NO [OVERQUOTA] Quota exceeded (mailbox for user is full)"]
    );
    assert_eq!(
        command(
            &mut c,
            "t2",
            "APPEND INBOX CATENATE (URL \"/INBOX/;UID=1/;PARTIAL=0.500\" TEXT {500}"
        )
        .await,
        ["t2 NO [OVERQUOTA] Quota exceeded (mailbox for user is full)"]
    );
    let reply = command(
        &mut c,
        "t3",
        "APPEND INBOX CATENATE (URL \"/INBOX/;UID=1/;PARTIAL=0.100\")",
    )
    .await;
    assert!(reply[0].starts_with("t3 OK [APPENDUID"), "{reply:?}");
    assert_eq!(
        command(&mut c, "q4", "GETQUOTA \"User quota\"").await,
        [
            "* QUOTA \"User quota\" (STORAGE 2 2 MESSAGE 3 3)",
            "q4 OK Getquota completed."
        ]
    );

    // COPY of both would make 4 messages; MOVE adds nothing and goes through.
    command(&mut c, "s", "SELECT INBOX").await;
    let reply = command(&mut c, "k1", "COPY 1:2 Other").await;
    assert_eq!(
        reply.last().unwrap(),
        "k1 NO [OVERQUOTA] Quota exceeded (mailbox for user is full)"
    );
    let reply = command(&mut c, "k2", "MOVE 1:2 Other").await;
    assert_eq!(reply.last().unwrap(), "k2 OK Move completed.");
    assert_eq!(
        command(&mut c, "k3", "STATUS Other (MESSAGES)").await,
        ["* STATUS \"Other\" (MESSAGES 2)", "k3 OK Status completed."]
    );
    assert_eq!(
        command(&mut c, "q3", "SETQUOTA \"User quota\" (STORAGE 9999)").await,
        ["q3 NO [NOPERM] Quota limits are set by the administrator."]
    );
}
