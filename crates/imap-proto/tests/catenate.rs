//! CATENATE (RFC 4469 5) framing: the parts of a message built from TEXT literals and URLs
//! come out in the client's order, TEXT literals are streamed like APPEND messages, MULTIAPPEND
//! and REPLACE combine with it, and malformed input is BAD without ever panicking.

mod common;

use common::{Ev, drive, drive_all, drive_bytes, header, without_continuations};
use imap_proto::*;
use mail_types::Flag;
use proptest::prelude::*;

fn start(t: &str, mailbox: &str, flags: Vec<Flag>) -> Ev {
    Ev::D(Decoded::CatenateStart {
        tag: Tag(t.into()),
        header: header(mailbox, flags),
    })
}

fn url(u: &str) -> Ev {
    Ev::D(Decoded::CatenateUrl {
        url: u.as_bytes().to_vec(),
    })
}

fn text(size: u64, synchronizing: bool, binary: bool) -> Ev {
    Ev::D(Decoded::CatenateText {
        size,
        synchronizing,
        binary,
        utf8: false,
    })
}

fn data(m: &str) -> Ev {
    Ev::Message(m.as_bytes().to_vec())
}

const END: Ev = Ev::D(Decoded::CatenateEnd);
const NEED: Ev = Ev::D(Decoded::NeedContinuation);

fn done(t: &str) -> Ev {
    Ev::D(Decoded::AppendDone { tag: Tag(t.into()) })
}

fn bad(t: &str, message: &str) -> Ev {
    Ev::D(Decoded::Bad {
        tag: Some(Tag(t.into())),
        message: message.to_owned(),
    })
}

fn noop(t: &str) -> Ev {
    Ev::D(Decoded::Command(Command {
        tag: Tag(t.into()),
        body: CommandBody::Noop,
    }))
}

/// RFC 4469 3's example, with the parts in order and each TEXT streamed.
#[test]
fn text_and_url_parts_in_order() {
    let input = b"A003 APPEND Drafts (\\Seen \\Draft $MDNSent) CATENATE (TEXT {5+}\r\nhello URL \"/Drafts;UIDVALIDITY=385759045/;UID=20/;section=1.2\" TEXT {3+}\r\nend)\r\nb NOOP\r\n";
    let want = vec![
        start(
            "A003",
            "Drafts",
            vec![Flag::Seen, Flag::Draft, Flag::parse("$MDNSent").unwrap()],
        ),
        text(5, false, false),
        data("hello"),
        url("/Drafts;UIDVALIDITY=385759045/;UID=20/;section=1.2"),
        text(3, false, false),
        data("end"),
        END,
        done("A003"),
        noop("b"),
    ];
    assert_eq!(drive_all(input), want);
    assert_eq!(
        without_continuations(drive_bytes(input, Limits::default())),
        want
    );
}

/// URL-only messages have no literal at all, and the whole command arrives as one line.
#[test]
fn urls_only() {
    assert_eq!(
        drive_all(b"a APPEND INBOX CATENATE (URL \";UID=1\" URL /INBOX/;UID=2)\r\n"),
        vec![
            start("a", "INBOX", vec![]),
            url(";UID=1"),
            url("/INBOX/;UID=2"),
            END,
            done("a"),
        ]
    );
}

/// A URL sent as a literal is an ordinary literal: kept, not streamed.
#[test]
fn url_as_a_literal() {
    assert_eq!(
        drive(
            &[
                b"a APPEND INBOX CATENATE (URL {6}\r\n",
                b";UID=1 TEXT {1}\r\n",
                b"x)\r\n"
            ],
            Limits::default()
        ),
        vec![
            NEED,
            start("a", "INBOX", vec![]),
            url(";UID=1"),
            text(1, true, false),
            data("x"),
            END,
            done("a"),
        ]
    );
}

/// MULTIAPPEND (RFC 3502) mixes plain messages and CATENATE ones; literal8 TEXT under BINARY.
#[test]
fn catenate_in_multiappend() {
    let evs = drive_all(
        b"a APPEND Sent {2+}\r\nm1 (\\Seen) CATENATE (TEXT ~{3+}\r\na\0b) CATENATE (URL \";UID=9\") {2+}\r\nm3\r\n",
    );
    assert!(
        matches!(
            evs.first(),
            Some(Ev::D(Decoded::AppendStart { size: 2, .. }))
        ),
        "{evs:?}"
    );
    assert_eq!(
        evs[1..],
        [
            data("m1"),
            start("a", "Sent", vec![Flag::Seen]),
            text(3, false, true),
            Ev::Message(b"a\0b".to_vec()),
            END,
            start("a", "Sent", vec![]),
            url(";UID=9"),
            END,
            Ev::D(Decoded::AppendStart {
                tag: Tag("a".into()),
                header: header("Sent", vec![]),
                size: 2,
                synchronizing: false,
            }),
            data("m3"),
            done("a"),
        ]
    );
}

/// RFC 8508 4.2: REPLACE takes CATENATE, still for one message only.
#[test]
fn replace_with_catenate() {
    let evs = drive_all(b"a UID REPLACE 7 Drafts CATENATE (URL \";UID=7\" TEXT {1+}\r\nx)\r\n");
    match &evs[0] {
        Ev::D(Decoded::CatenateStart { header, .. }) => {
            assert!(header.replace.is_some_and(|r| r.uid));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(evs.last(), Some(&done("a")));
    let evs =
        drive_all(b"a REPLACE 1 Drafts CATENATE (URL \";UID=7\") CATENATE (URL \";UID=8\")\r\n");
    assert_eq!(
        evs,
        vec![bad(
            "a",
            "Error in IMAP command REPLACE: Invalid arguments."
        )]
    );
}

/// Malformed CATENATE lists are BAD, and the next command is read normally; a synchronizing
/// TEXT literal of a bad command is never asked for.
#[test]
fn malformed_is_bad() {
    let invalid = "Error in IMAP command APPEND: Invalid arguments.";
    for input in [
        &b"a APPEND INBOX CATENATE ()\r\nb NOOP\r\n"[..],
        b"a APPEND INBOX CATENATE\r\nb NOOP\r\n",
        b"a APPEND INBOX CATENATE (URL)\r\nb NOOP\r\n",
        b"a APPEND INBOX CATENATE (URL \"x\"\r\nb NOOP\r\n",
        b"a APPEND INBOX CATENATE (URL \"x\"))\r\nb NOOP\r\n",
        b"a APPEND INBOX CATENATE (FOO \"x\")\r\nb NOOP\r\n",
        b"a APPEND INBOX CATENATE (TEXT \"inline\")\r\nb NOOP\r\n",
        b"a APPEND INBOX CATENATE ((URL \"x\"))\r\nb NOOP\r\n",
        b"a APPEND INBOX CATENATE (URL \"x\" (TEXT {1}\r\nb NOOP\r\n",
        b"a APPEND INBOX CATENATE (URL ~{1}\r\nb NOOP\r\n",
        b"a APPEND INBOX CATENATE (URL \"x\" TEXT {1}x)\r\nb NOOP\r\n",
        b"a APPEND INBOX CATENATE (URL \"x\")junk\r\nb NOOP\r\n",
    ] {
        let evs = without_continuations(drive_all(input));
        assert_eq!(
            evs,
            vec![bad("a", invalid), noop("b")],
            "{}",
            String::from_utf8_lossy(input)
        );
    }
    // After a streamed TEXT part, junk ends the command as BAD too.
    let evs = drive_all(b"a APPEND INBOX CATENATE (TEXT {1+}\r\nx junk)\r\nb NOOP\r\n");
    assert_eq!(evs[evs.len() - 2..], [bad("a", invalid), noop("b")]);
}

/// A huge TEXT literal count: a synchronizing one is handed to the caller to refuse, a
/// non-synchronizing one beyond the APPEND limit ends the connection, as for APPEND.
#[test]
fn huge_text_literals() {
    let evs = drive_all(b"a APPEND INBOX CATENATE (TEXT {99999999999999999999999}\r\n");
    assert_eq!(
        evs,
        vec![start("a", "INBOX", vec![]), text(u64::MAX, true, false)]
    );
    let evs = drive_all(b"a APPEND INBOX CATENATE (TEXT {99999999999+}\r\n");
    assert!(
        matches!(evs.as_slice(), [Ev::D(Decoded::Fatal { .. })]),
        "{evs:?}"
    );
}

/// Many parts on one line stay within the command limit, whatever the line holds.
#[test]
fn many_parts_are_bounded_by_the_command_limit() {
    let mut line = b"a APPEND INBOX CATENATE (".to_vec();
    for _ in 0..100_000 {
        line.extend_from_slice(b"URL \";UID=1\" ");
    }
    line.extend_from_slice(b"URL \";UID=1\")\r\nb NOOP\r\n");
    let evs = drive_all(&line);
    assert_eq!(
        evs,
        vec![
            Ev::D(Decoded::Bad {
                tag: Some(Tag("a".into())),
                message: "Error in IMAP command APPEND: Too long argument.".into()
            }),
            noop("b")
        ]
    );
}

fn cat_part() -> impl Strategy<Value = (bool, Vec<u8>)> {
    prop_oneof![
        proptest::collection::vec(1u8..=255, 1..20).prop_map(|t| (true, t)),
        "[;/A-Za-z0-9=.%]{1,30}".prop_map(|u| (false, u.into_bytes())),
    ]
}

proptest! {
    /// Any list of parts comes out as sent, however the input is cut.
    #[test]
    fn parts_round_trip(parts in proptest::collection::vec(cat_part(), 1..8), cut in 1usize..17) {
        let mut wire = b"t APPEND INBOX CATENATE (".to_vec();
        let mut want = vec![start("t", "INBOX", vec![])];
        for (i, (is_text, bytes)) in parts.iter().enumerate() {
            if i > 0 {
                wire.push(b' ');
            }
            if *is_text {
                let binary = bytes.contains(&0);
                wire.extend_from_slice(format!("TEXT {}{{{}+}}\r\n", if binary { "~" } else { "" }, bytes.len()).as_bytes());
                wire.extend_from_slice(bytes);
                want.push(text(bytes.len() as u64, false, binary));
                want.push(Ev::Message(bytes.clone()));
            } else {
                wire.extend_from_slice(b"URL \"");
                wire.extend_from_slice(bytes);
                wire.push(b'"');
                want.push(Ev::D(Decoded::CatenateUrl { url: bytes.clone() }));
            }
        }
        wire.extend_from_slice(b")\r\n");
        want.push(END);
        want.push(done("t"));
        prop_assert_eq!(drive_all(&wire), want.clone());
        let chunks: Vec<&[u8]> = wire.chunks(cut).collect();
        prop_assert_eq!(without_continuations(drive(&chunks, Limits::default())), want);
    }

    /// Junk after `CATENATE (` never panics and never swallows the next command.
    #[test]
    fn junk_never_panics(junk in "[ ()A-Z\"{}~+0-9;/]{0,40}") {
        let mut wire = b"t APPEND INBOX CATENATE (".to_vec();
        wire.extend_from_slice(junk.as_bytes());
        wire.extend_from_slice(b"\r\nz NOOP\r\n");
        let evs = drive(&[&wire], Limits::default());
        // No command other than the one after it can come out of the junk.
        for ev in &evs {
            if let Ev::D(Decoded::Command(cmd)) = ev {
                prop_assert_eq!(cmd.tag.as_str(), "z");
            }
        }
    }
}

/// RFC 6855 4: `UTF8 (~{n})` as a message (`append-data`) and as a CATENATE part (`cat-part`),
/// its `)` after the literal; anything but a literal8 inside, or a missing `)`, is BAD.
#[test]
fn utf8_append_data() {
    let mut utf8_header = header("INBOX", vec![]);
    utf8_header.utf8 = true;
    assert_eq!(
        drive_all(b"a APPEND INBOX UTF8 (~{2+}\r\nm1) {2+}\r\nm2\r\n"),
        [
            Ev::D(Decoded::AppendStart {
                tag: Tag("a".into()),
                header: utf8_header,
                size: 2,
                synchronizing: false,
            }),
            data("m1"),
            Ev::D(Decoded::AppendStart {
                tag: Tag("a".into()),
                header: header("INBOX", vec![]),
                size: 2,
                synchronizing: false,
            }),
            data("m2"),
            done("a"),
        ]
    );
    assert_eq!(
        drive_all(b"a APPEND INBOX CATENATE (UTF8 (~{2+}\r\nm1) URL \";UID=1\")\r\n"),
        [
            start("a", "INBOX", vec![]),
            Ev::D(Decoded::CatenateText {
                size: 2,
                synchronizing: false,
                binary: true,
                utf8: true,
            }),
            data("m1"),
            url(";UID=1"),
            END,
            done("a"),
        ]
    );
    let invalid = "Error in IMAP command APPEND: Invalid arguments.";
    for input in [
        &b"a APPEND INBOX UTF8 ({2+}\r\nm1)\r\nb NOOP\r\n"[..],
        b"a APPEND INBOX UTF8 ~{2+}\r\nm1\r\nb NOOP\r\n",
        b"a APPEND INBOX UTF8 (~{2+}\r\nm1\r\nb NOOP\r\n",
        b"a APPEND INBOX CATENATE (UTF8 (~{2+}\r\nm1 URL \"x\")\r\nb NOOP\r\n",
    ] {
        let evs = without_continuations(drive_all(input));
        assert_eq!(
            evs[evs.len() - 2..],
            [bad("a", invalid), noop("b")],
            "{}",
            String::from_utf8_lossy(input)
        );
    }
}
