//! UTF8=ACCEPT (RFC 6855) where the operator offers it: advertised after login, enabled with
//! ENABLE; then UTF-8 mailbox names both ways, `APPEND ... UTF8 (~{n})` and CATENATE's UTF8
//! part, and no SEARCH CHARSET (3). Clients that did not enable it get NO for an APPEND with
//! 8-bit header octets (4), while 8-bit bodies stay welcome. Without the setting nothing of it
//! is offered.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{command, serve};
use imap_session::{ImapSettings, LoginPenalty, SessionContext};
use test_support::transcript::{Conn, TestBackend};

fn context(root: &std::path::Path, utf8_accept: bool) -> Arc<SessionContext> {
    Arc::new(SessionContext {
        settings: ImapSettings {
            utf8_accept,
            ..ImapSettings::default()
        },
        backend: Arc::new(TestBackend {
            root: root.to_owned(),
        }),
        starttls: None,
        penalty: Arc::new(LoginPenalty::new(
            Duration::from_millis(1),
            Duration::from_millis(5),
        )),
    })
}

async fn logged_in(ctx: &Arc<SessionContext>, id: &str) -> (Conn, Vec<String>) {
    let (mut c, server) = Conn::pair();
    serve(ctx, server, id);
    c.line().await;
    let login = command(&mut c, "l", "LOGIN alice wonderland").await;
    (c, login)
}

/// Sends an APPEND whose message goes in a non-synchronizing literal.
async fn append(
    c: &mut Conn,
    tag: &str,
    prefix: &str,
    message: &[u8],
    suffix: &str,
) -> Vec<String> {
    let mut bytes = format!("{tag} APPEND {prefix}{{{}+}}\r\n", message.len()).into_bytes();
    bytes.extend_from_slice(message);
    bytes.extend_from_slice(suffix.as_bytes());
    bytes.extend_from_slice(b"\r\n");
    c.send(&bytes).await;
    let mut lines = Vec::new();
    loop {
        let line = c.line().await;
        let done = line.starts_with(&format!("{tag} "));
        lines.push(line);
        if done {
            return lines;
        }
    }
}

const UTF8_HEADER: &[u8] = "Subject: Grüße aus Köln\r\n\r\nHallo\r\n".as_bytes();
const UTF8_BODY: &[u8] = "Subject: plain\r\n\r\nGrüße\r\n".as_bytes();

#[tokio::test]
async fn enabled_clients_use_utf8_and_others_are_held_to_rfc_6855_4() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path(), true);

    // A client that did not enable it.
    let (mut legacy, login) = logged_in(&ctx, "legacy").await;
    assert!(login[0].contains(" UTF8=ACCEPT"), "{login:?}");
    let refused = append(&mut legacy, "a1", "INBOX ", UTF8_HEADER, "").await;
    assert!(refused[0].starts_with("a1 NO "), "{refused:?}");
    let body_only = append(&mut legacy, "a2", "INBOX ", UTF8_BODY, "").await;
    assert!(
        body_only[0].starts_with("a2 OK [APPENDUID "),
        "{body_only:?}"
    );
    // Its UTF8 data is refused, and so is 8-bit in a CATENATE part's header.
    let bad = append(&mut legacy, "a3", "INBOX UTF8 (~", UTF8_HEADER, ")").await;
    assert!(bad[0].starts_with("a3 BAD "), "{bad:?}");
    let cat = append(&mut legacy, "a4", "INBOX CATENATE (TEXT ", UTF8_HEADER, ")").await;
    assert!(cat[0].starts_with("a4 NO "), "{cat:?}");
    // Mailbox names stay modified UTF-7 for it.
    command(&mut legacy, "c1", "CREATE Gr&APwA3w-e").await;
    let list = command(&mut legacy, "c2", "LIST \"\" Gr*").await;
    assert_eq!(list[0], "* LIST (\\HasNoChildren) \"/\" \"Gr&APwA3w-e\"");

    // A client that enables it.
    let (mut modern, _) = logged_in(&ctx, "modern").await;
    assert_eq!(
        command(&mut modern, "e", "ENABLE UTF8=ACCEPT").await,
        ["* ENABLED UTF8=ACCEPT", "e OK Enabled."]
    );
    let list = command(&mut modern, "c3", "LIST \"\" Gr*").await;
    assert_eq!(list[0], "* LIST (\\HasNoChildren) \"/\" \"Grüße\"");
    let ok = append(&mut modern, "a5", "\"Grüße\" UTF8 (~", UTF8_HEADER, ")").await;
    assert!(ok[0].starts_with("a5 OK [APPENDUID "), "{ok:?}");
    let cat = append(
        &mut modern,
        "a6",
        "INBOX CATENATE (UTF8 (~",
        UTF8_HEADER,
        ") TEXT {2+}\r\nPS)",
    )
    .await;
    assert!(cat[0].starts_with("a6 OK [APPENDUID "), "{cat:?}");
    command(&mut modern, "s", "SELECT \"Grüße\"").await;
    let found = command(&mut modern, "f1", "SEARCH SUBJECT \"Köln\"").await;
    assert_eq!(found[0], "* SEARCH 1");
    let charset = command(&mut modern, "f2", "SEARCH CHARSET UTF-8 SUBJECT \"Köln\"").await;
    assert!(charset[0].starts_with("f2 BAD "), "{charset:?}");
    let body = command(&mut modern, "f3", "FETCH 1 BODY.PEEK[]").await;
    assert!(
        body[0].ends_with(&format!("{{{}}}", UTF8_HEADER.len())),
        "{body:?}"
    );
    // Invalid UTF-8 in a quoted string is BAD (RFC 6855 3).
    let mut invalid = b"q CREATE \"Gr".to_vec();
    invalid.extend_from_slice(&[0xfc, b'"', b'\r', b'\n']);
    modern.send(&invalid).await;
    assert!(modern.line().await.starts_with("q BAD "));
}

#[tokio::test]
async fn not_offered_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path(), false);
    let (mut c, login) = logged_in(&ctx, "off").await;
    assert!(!login[0].contains("UTF8=ACCEPT"), "{login:?}");
    assert_eq!(
        command(&mut c, "e", "ENABLE UTF8=ACCEPT").await,
        ["* ENABLED", "e OK Enabled."]
    );
    // 8-bit headers are accepted as before, from every client.
    let ok = append(&mut c, "a", "INBOX ", UTF8_HEADER, "").await;
    assert!(ok[0].starts_with("a OK [APPENDUID "), "{ok:?}");
}
