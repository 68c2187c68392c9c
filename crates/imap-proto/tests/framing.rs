//! Framing: literals, continuations, fragmentation, limits and APPEND streaming.

mod common;

use common::{Ev, drive, drive_all, drive_bytes, header, without_continuations};
use imap_proto::*;
use mail_types::{Flag, SeqBound};

fn tag(t: &str) -> Option<Tag> {
    Some(Tag(t.to_owned()))
}

fn cmd(t: &str, body: CommandBody) -> Ev {
    Ev::D(Decoded::Command(Command {
        tag: Tag(t.to_owned()),
        body,
    }))
}

fn bad(t: Option<&str>, message: &str) -> Ev {
    Ev::D(Decoded::Bad {
        tag: t.map(|t| Tag(t.to_owned())),
        message: message.to_owned(),
    })
}

fn login(u: &str, p: &str) -> CommandBody {
    CommandBody::Login {
        username: u.as_bytes().to_vec(),
        password: p.as_bytes().to_vec(),
    }
}

const NEED: Ev = Ev::D(Decoded::NeedContinuation);

fn append_start(t: &str, mailbox: &str, flags: Vec<Flag>, size: u64, sync: bool) -> Ev {
    Ev::D(Decoded::AppendStart {
        tag: Tag(t.into()),
        header: header(mailbox, flags),
        size,
        synchronizing: sync,
    })
}

fn msg(m: &str) -> Ev {
    Ev::Message(m.as_bytes().to_vec())
}

fn done(t: &str) -> Ev {
    Ev::D(Decoded::AppendDone { tag: Tag(t.into()) })
}

#[test]
fn synchronizing_literal_asks_once_when_the_client_waits() {
    let evs = drive(
        &[b"a LOGIN {3}\r\n", b"joe {4}\r\n", b"pa", b"ss\r\n"],
        Limits::default(),
    );
    assert_eq!(evs, vec![NEED, NEED, cmd("a", login("joe", "pass"))]);
    // Bytes already there: the client did not wait, so no continuation is reported.
    assert_eq!(
        drive_all(b"a LOGIN {3}\r\njoe {4}\r\npass\r\n"),
        vec![cmd("a", login("joe", "pass"))]
    );
    // Non-synchronizing literals (RFC 7888) never ask.
    assert_eq!(
        drive(
            &[b"a LOGIN {3+}\r\n", b"joe {4+}\r\n", b"pass\r\n"],
            Limits::default()
        ),
        vec![cmd("a", login("joe", "pass"))]
    );
    // An empty synchronizing literal still waits for the continuation.
    assert_eq!(
        drive(&[b"a LOGIN {0}\r\n", b" x\r\n"], Limits::default()),
        vec![NEED, cmd("a", login("", "x"))]
    );
    // Literal-looking text inside a quoted string is just text.
    assert_eq!(
        drive_all(b"a LOGIN x \"{3}\"\r\n"),
        vec![cmd("a", login("x", "{3}"))]
    );
}

#[test]
fn literal_of_a_bad_command_is_refused_before_it_is_sent() {
    assert_eq!(
        drive_all(b"a FOO {3}\r\nb NOOP\r\n"),
        vec![
            bad(Some("a"), "Error in IMAP command FOO: Unknown command."),
            cmd("b", CommandBody::Noop)
        ]
    );
    assert_eq!(
        drive_all(b"{3}\r\nb NOOP\r\n"),
        vec![
            bad(
                None,
                "Error in IMAP command received by server: Invalid tag."
            ),
            cmd("b", CommandBody::Noop)
        ]
    );
    // A non-synchronizing literal is on its way: skip it, then report.
    assert_eq!(
        drive_all(b"a FOO {3+}\r\nx\r\n more {2+}\r\nyy\r\nb NOOP\r\n"),
        vec![
            bad(Some("a"), "Error in IMAP command FOO: Unknown command."),
            cmd("b", CommandBody::Noop)
        ]
    );
    // literal8 outside APPEND.
    assert_eq!(
        drive_all(b"a LOGIN ~{3}\r\nb NOOP\r\n"),
        vec![
            bad(Some("a"), "Error in IMAP command LOGIN: Invalid arguments."),
            cmd("b", CommandBody::Noop)
        ]
    );
}

#[test]
fn huge_literals() {
    let lim = || Limits::default();
    for size in ["4294967295", "99999999999999999999999999", "65537"] {
        let sync = format!("a LOGIN {{{size}}}\r\nb NOOP\r\n");
        assert_eq!(
            drive(&[sync.as_bytes()], lim()),
            vec![
                bad(
                    Some("a"),
                    "Error in IMAP command LOGIN: Literal size too large."
                ),
                cmd("b", CommandBody::Noop)
            ],
            "{size}"
        );
        let nonsync = format!("a LOGIN {{{size}+}}\r\nb NOOP\r\n");
        let fatal = Ev::D(Decoded::Fatal {
            message: "Literal size too large.".into(),
        });
        assert_eq!(drive(&[nonsync.as_bytes()], lim()), vec![fatal]);
    }
    // Exactly at the limit is fine.
    let limits = Limits {
        max_literal: 5,
        ..Limits::default()
    };
    assert_eq!(
        drive(&[b"a LOGIN {5+}\r\nabcde {6}\r\n"], limits),
        vec![bad(
            Some("a"),
            "Error in IMAP command LOGIN: Literal size too large."
        )]
    );
}

#[test]
fn fatal_is_sticky() {
    let mut dec = Decoder::default();
    let mut buf = b"a LOGIN {4294967295+}\r\n".to_vec();
    let f = dec.decode(&mut buf);
    assert!(matches!(f, Some(Decoded::Fatal { .. })));
    buf.extend_from_slice(b"b NOOP\r\n");
    assert_eq!(dec.decode(&mut buf), f);
}

#[test]
fn ten_megabyte_line_is_skipped_without_buffering() {
    let mut dec = Decoder::default();
    let mut buf = b"a1 FETCH 1 (BODY[HEADER.FIELDS (".to_vec();
    let chunk = vec![b'x'; 64 * 1024];
    let mut max_buffered = 0;
    for _ in 0..160 {
        buf.extend_from_slice(&chunk);
        assert_eq!(dec.decode(&mut buf), None);
        assert!(buf.is_empty(), "input must be consumed");
        max_buffered = max_buffered.max(dec.buffered_len());
    }
    assert!(max_buffered <= Limits::default().max_line, "{max_buffered}");
    buf.extend_from_slice(b")])\r\na2 NOOP\r\n");
    assert_eq!(
        dec.decode(&mut buf),
        Some(Decoded::Bad {
            tag: tag("a1"),
            message: "Error in IMAP command FETCH: Too long argument.".into()
        })
    );
    assert_eq!(
        dec.decode(&mut buf),
        Some(Decoded::Command(Command {
            tag: Tag("a2".into()),
            body: CommandBody::Noop
        }))
    );
}

#[test]
fn long_line_ending_in_a_literal_keeps_framing() {
    let limits = Limits {
        max_line: 20,
        ..Limits::default()
    };
    let input = b"a LOGIN \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxx\" {3+}\r\nabc\r\nb NOOP\r\n";
    let expect = vec![
        bad(Some("a"), "Error in IMAP command LOGIN: Too long argument."),
        cmd("b", CommandBody::Noop),
    ];
    assert_eq!(drive(&[input], limits.clone()), expect);
    assert_eq!(drive_bytes(input, limits.clone()), expect);
    // Synchronizing: the client waits, so the command ends at the header.
    let input = b"a LOGIN \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxx\" {3}\r\nb NOOP\r\n";
    assert_eq!(drive(&[input], limits), expect);
}

#[test]
fn deep_parentheses() {
    for name in ["SEARCH", "FETCH 1", "STORE 1 FLAGS"] {
        let input = format!(
            "a {name} {}ALL{}\r\nb NOOP\r\n",
            "(".repeat(1000),
            ")".repeat(1000)
        );
        let name = name.split(' ').next().unwrap();
        let expect = vec![
            bad(
                Some("a"),
                &format!("Error in IMAP command {name}: Too deep parenthesis nesting."),
            ),
            cmd("b", CommandBody::Noop),
        ];
        assert_eq!(drive_all(input.as_bytes()), expect);
        assert_eq!(drive_bytes(input.as_bytes(), Limits::default()), expect);
    }
    // At the limit is fine.
    let ok = format!("a SEARCH {}ALL{}\r\n", "(".repeat(64), ")".repeat(64));
    assert!(matches!(
        drive_all(ok.as_bytes()).as_slice(),
        [Ev::D(Decoded::Command(_))]
    ));
    // Parentheses inside quoted strings and literals do not count.
    let quoted = format!("a SEARCH TEXT \"{}\"\r\n", "(".repeat(1000));
    assert!(matches!(
        drive_all(quoted.as_bytes()).as_slice(),
        [Ev::D(Decoded::Command(_))]
    ));
    let literal = format!("a SEARCH TEXT {{1000+}}\r\n{}\r\n", "(".repeat(1000));
    assert!(matches!(
        drive_all(literal.as_bytes()).as_slice(),
        [Ev::D(Decoded::Command(_))]
    ));
}

#[test]
fn too_big_command() {
    let limits = Limits {
        max_command: 1000,
        max_literal: 600,
        ..Limits::default()
    };
    let mut input = b"a LOGIN {600+}\r\n".to_vec();
    input.extend_from_slice(&[b'u'; 600]);
    let mut sync = input.clone();
    sync.extend_from_slice(b" {600}\r\nb NOOP\r\n");
    assert_eq!(
        drive(&[&sync], limits.clone()),
        vec![
            bad(
                Some("a"),
                "Error in IMAP command LOGIN: Literal size too large."
            ),
            cmd("b", CommandBody::Noop)
        ]
    );
    input.extend_from_slice(b" {600+}\r\n");
    assert_eq!(
        drive(&[&input], limits.clone()),
        vec![Ev::D(Decoded::Fatal {
            message: "Literal size too large.".into()
        })]
    );
    // Line bytes count as well.
    let long = format!("a SEARCH {}ALL\r\nb NOOP\r\n", "ALL ".repeat(300));
    let expect = vec![
        bad(Some("a"), "Error in IMAP command SEARCH: Too long command."),
        cmd("b", CommandBody::Noop),
    ];
    assert_eq!(drive(&[long.as_bytes()], limits.clone()), expect);
    assert_eq!(drive_bytes(long.as_bytes(), limits), expect);
}

#[test]
fn append_streams_the_message() {
    let evs = drive(
        &[
            b"a APPEND saved-messages (\\Seen) \" 4-Jul-2023 10:00:00 +0200\" {5}\r\n",
            b"hel",
            b"lo",
            b"\r\nb NOOP\r\n",
        ],
        Limits::default(),
    );
    assert_eq!(
        evs,
        vec![
            Ev::D(Decoded::AppendStart {
                tag: Tag("a".into()),
                header: AppendHeader {
                    mailbox: MailboxArg(b"saved-messages".to_vec()),
                    flags: vec![Flag::Seen],
                    // 2023-07-04 08:00:00 UTC
                    date: Some(DateTime {
                        unix: 1_688_457_600,
                        offset_minutes: 120
                    }),
                    replace: None,
                    utf8: false,
                },
                size: 5,
                synchronizing: true,
            }),
            msg("hello"),
            done("a"),
            cmd("b", CommandBody::Noop),
        ]
    );
}

#[test]
fn append_with_literal_mailbox_and_literal8() {
    let evs = drive(
        &[b"a APPEND {5}\r\n", b"INBOX ~{3+}\r\nabc\r\n"],
        Limits::default(),
    );
    assert_eq!(
        evs,
        vec![
            NEED,
            append_start("a", "INBOX", vec![], 3, false),
            msg("abc"),
            done("a")
        ]
    );
}

#[test]
fn multiappend() {
    let input = b"a APPEND INBOX {3}\r\nabc (\\Flagged $Work) {2+}\r\nxy {0}\r\n\r\nb NOOP\r\n";
    let expect = vec![
        append_start("a", "INBOX", vec![], 3, true),
        msg("abc"),
        append_start(
            "a",
            "INBOX",
            vec![Flag::Flagged, Flag::parse("$Work").unwrap()],
            2,
            false,
        ),
        msg("xy"),
        append_start("a", "INBOX", vec![], 0, true),
        msg(""),
        done("a"),
        cmd("b", CommandBody::Noop),
    ];
    assert_eq!(drive_all(input), expect);
    assert_eq!(drive_bytes(input, Limits::default()), expect);
    // Garbage after a message.
    assert_eq!(
        drive_all(b"a APPEND INBOX {1}\r\nx garbage\r\nb NOOP\r\n"),
        vec![
            append_start("a", "INBOX", vec![], 1, true),
            msg("x"),
            bad(
                Some("a"),
                "Error in IMAP command APPEND: Invalid arguments."
            ),
            cmd("b", CommandBody::Noop),
        ]
    );
    assert_eq!(
        drive_all(b"a APPEND INBOX {1}\r\nx (\\Recent) {1+}\r\ny\r\nb NOOP\r\n"),
        vec![
            append_start("a", "INBOX", vec![], 1, true),
            msg("x"),
            bad(
                Some("a"),
                "Error in IMAP command APPEND: Invalid system flag \\RECENT"
            ),
            cmd("b", CommandBody::Noop),
        ]
    );
}

#[test]
fn append_errors_before_the_message() {
    // Synchronizing: refused at once, the client sends nothing more.
    assert_eq!(
        drive_all(b"a APPEND INBOX (\\Recent) {5}\r\nb NOOP\r\n"),
        vec![
            bad(
                Some("a"),
                "Error in IMAP command APPEND: Invalid system flag \\RECENT"
            ),
            cmd("b", CommandBody::Noop),
        ]
    );
    assert_eq!(
        drive_all(b"a APPEND INBOX \"31-Feb-2020 00:00:00 +0000\" {5}\r\nb NOOP\r\n"),
        vec![
            bad(
                Some("a"),
                "Error in IMAP command APPEND: Invalid arguments."
            ),
            cmd("b", CommandBody::Noop),
        ]
    );
    // Non-synchronizing: the message is skipped.
    assert_eq!(
        drive_all(b"a APPEND INBOX junk {5+}\r\nhello\r\nb NOOP\r\n"),
        vec![
            bad(
                Some("a"),
                "Error in IMAP command APPEND: Invalid arguments."
            ),
            cmd("b", CommandBody::Noop),
        ]
    );
}

#[test]
fn append_size_limits() {
    let limits = Limits {
        max_append: 10,
        ..Limits::default()
    };
    // Synchronizing: the session decides (NO [TOOBIG]) and rejects.
    let mut dec = Decoder::new(limits.clone());
    let mut buf = b"a APPEND INBOX {11}\r\nb NOOP\r\n".to_vec();
    assert!(matches!(
        dec.decode(&mut buf),
        Some(Decoded::AppendStart {
            size: 11,
            synchronizing: true,
            ..
        })
    ));
    assert_eq!(dec.decode(&mut buf), None, "waits for the caller");
    dec.reject_append();
    assert_eq!(
        dec.decode(&mut buf),
        Some(Decoded::Command(Command {
            tag: Tag("b".into()),
            body: CommandBody::Noop
        }))
    );
    // Non-synchronizing above the limit cannot be refused.
    assert_eq!(
        drive(&[b"a APPEND INBOX {11+}\r\n"], limits),
        vec![Ev::D(Decoded::Fatal {
            message: "Literal size too large.".into()
        })]
    );
}

#[test]
fn rejecting_a_non_synchronizing_append_skips_it_silently() {
    let mut dec = Decoder::default();
    let mut buf = b"a APPEND INBOX {5+}\r\nhel".to_vec();
    assert!(matches!(
        dec.decode(&mut buf),
        Some(Decoded::AppendStart { size: 5, .. })
    ));
    dec.reject_append();
    assert_eq!(dec.decode(&mut buf), None);
    buf.extend_from_slice(b"lo (\\Seen) {2+}\r\nxy {3}\r\nb NOOP\r\n");
    assert_eq!(
        dec.decode(&mut buf),
        Some(Decoded::Command(Command {
            tag: Tag("b".into()),
            body: CommandBody::Noop
        }))
    );
}

#[test]
fn mixed_session_is_fragmentation_independent() {
    let mut script = Vec::new();
    script.extend_from_slice(b"1 CAPABILITY\r\n2 LOGIN {4}\r\nuser \"pa\\\"ss\"\r\n");
    script.extend_from_slice(b"3 SELECT INBOX (CONDSTORE)\n4 FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From {2+}\r\nTo)])\r\n");
    script.extend_from_slice(b"5 APPEND {5+}\r\nDraft (\\Draft) {10}\r\n0123456789 {3}\r\nabc\r\n");
    script.extend_from_slice(
        b"6 UID SEARCH CHARSET UTF-8 OR SUBJECT {5}\r\ncaf\xc3\xa9 NOT (1:3 SEEN)\r\n",
    );
    script.extend_from_slice(b"7 BOGUS\r\n8 STORE 1 +FLAGS (\\Recent)\r\n\r\n9 IDLE\r\nDONE\r\n");
    script.extend_from_slice(b"10 LOGOUT\r\n");
    let whole = without_continuations(drive_all(&script));
    assert_eq!(whole.len(), 15, "{whole:#?}");
    assert_eq!(
        without_continuations(drive_bytes(&script, Limits::default())),
        whole
    );
    for split in 1..script.len() {
        let (a, b) = script.split_at(split);
        assert_eq!(
            without_continuations(drive(&[a, b], Limits::default())),
            whole,
            "split at {split}"
        );
    }
}

#[test]
fn bytes_after_a_command_stay_for_take_line() {
    let mut dec = Decoder::default();
    let mut buf = b"a AUTHENTICATE PLAIN\r\nAHVzZXIAcGFzcw==\r\nb NOOP\r\n".to_vec();
    assert!(matches!(dec.decode(&mut buf), Some(Decoded::Command(_))));
    assert_eq!(
        take_line(&mut buf, 100),
        LineRead::Line(b"AHVzZXIAcGFzcw==".to_vec())
    );
    assert!(matches!(dec.decode(&mut buf), Some(Decoded::Command(_))));
    assert!(buf.is_empty());
}

#[test]
fn take_line_cases() {
    let mut buf = b"DONE\r\nrest".to_vec();
    assert_eq!(take_line(&mut buf, 4), LineRead::Line(b"DONE".to_vec()));
    assert_eq!(buf, b"rest");
    assert_eq!(take_line(&mut buf, 4), LineRead::NeedMore);
    assert_eq!(buf, b"rest");
    buf.extend_from_slice(b"\n");
    assert_eq!(take_line(&mut buf, 4), LineRead::Line(b"rest".to_vec()));
    let mut buf = b"DONE\r".to_vec();
    assert_eq!(take_line(&mut buf, 4), LineRead::NeedMore);
    let mut buf = b"toolong".to_vec();
    assert_eq!(take_line(&mut buf, 4), LineRead::TooLong);
    assert!(buf.is_empty());
    let mut buf = b"toolong\r\nnext\r\n".to_vec();
    assert_eq!(take_line(&mut buf, 4), LineRead::TooLong);
    assert_eq!(buf, b"next\r\n");
    let mut buf = b"\r\n".to_vec();
    assert_eq!(take_line(&mut buf, 0), LineRead::Line(vec![]));
}

/// RFC 8508 REPLACE and UID REPLACE stream their message as APPEND does; a second message
/// (MULTIAPPEND's form) is refused, and the command word alone is no command.
#[test]
fn replace_streams_its_message_like_append() {
    let value = |n| SeqBound::Value(std::num::NonZeroU32::new(n).unwrap());
    let replace = |uid, message, mailbox: &str, size, sync| {
        Ev::D(Decoded::AppendStart {
            tag: Tag("a".into()),
            header: AppendHeader {
                mailbox: MailboxArg(mailbox.as_bytes().to_vec()),
                flags: vec![Flag::Seen],
                date: None,
                replace: Some(ReplaceTarget { uid, message }),
                utf8: false,
            },
            size,
            synchronizing: sync,
        })
    };
    assert_eq!(
        drive_all(b"a REPLACE 4 Drafts (\\Seen) {5+}\r\nhello\r\nb NOOP\r\n"),
        vec![
            replace(false, value(4), "Drafts", 5, false),
            msg("hello"),
            done("a"),
            cmd("b", CommandBody::Noop),
        ]
    );
    assert_eq!(
        drive(
            &[
                b"a uid replace 2000 {4}\r\n",
                b"Sent (\\Seen) {2}\r\n",
                b"hi\r\n"
            ],
            Limits::default()
        ),
        vec![
            NEED,
            replace(true, value(2000), "Sent", 2, true),
            msg("hi"),
            done("a")
        ]
    );
    let evs = drive_all(b"a REPLACE * INBOX (\\Seen) {1+}\r\nx (\\Seen) {1+}\r\ny\r\nb NOOP\r\n");
    assert_eq!(evs[0], replace(false, SeqBound::Star, "INBOX", 1, false));
    assert_eq!(
        evs[2..],
        [
            bad(
                Some("a"),
                "Error in IMAP command REPLACE: Invalid arguments."
            ),
            cmd("b", CommandBody::Noop)
        ]
    );
    assert_eq!(
        drive_all(b"a REPLACE 1 INBOX\r\n"),
        vec![bad(
            Some("a"),
            "Error in IMAP command REPLACE: Invalid arguments."
        )]
    );
    assert_eq!(
        drive_all(b"a REPLACE x INBOX {1+}\r\ny\r\n"),
        vec![bad(
            Some("a"),
            "Error in IMAP command REPLACE: Invalid messageset"
        )]
    );
}
