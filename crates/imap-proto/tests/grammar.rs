//! Table-driven tests of the command grammar (RFC 3501 9 and extensions).

mod common;

use std::num::NonZeroU32;

use common::one;
use imap_proto::*;
use mail_types::{Flag, SeqBound, SeqRange, SeqSet};

fn mb(s: &str) -> MailboxArg {
    MailboxArg(s.as_bytes().to_vec())
}

fn pat(s: &str) -> ListPattern {
    ListPattern(s.as_bytes().to_vec())
}

fn bound(s: &str) -> SeqBound {
    if s == "*" {
        SeqBound::Star
    } else {
        SeqBound::Value(NonZeroU32::new(s.parse().unwrap()).unwrap())
    }
}

fn nums(s: &str) -> MessageSet {
    MessageSet::Numbers(set(s))
}

fn set(s: &str) -> SeqSet {
    SeqSet::new(
        s.split(',')
            .map(|r| {
                let (a, b) = r.split_once(':').unwrap_or((r, r));
                SeqRange {
                    start: bound(a),
                    end: bound(b),
                }
            })
            .collect(),
    )
    .unwrap()
}

fn kw(s: &str) -> Flag {
    Flag::parse(s).unwrap()
}

fn date(year: u16, month: u8, day: u8) -> Date {
    Date { year, month, day }
}

fn section(part: &[u32], text: Option<SectionText>) -> Section {
    Section {
        part: part.to_vec(),
        text,
    }
}

fn body_section(peek: bool, s: Section, partial: Option<(u32, u32)>) -> FetchAttr {
    FetchAttr::BodySection {
        peek,
        section: s,
        partial: partial.map(|(origin, length)| Partial { origin, length }),
    }
}

fn search(charset: Option<&str>, criteria: SearchKey) -> CommandBody {
    CommandBody::Search {
        uid: false,
        returns: None,
        charset: charset.map(str::to_owned),
        criteria,
    }
}

fn fetch(s: &str, items: Vec<FetchAttr>) -> CommandBody {
    CommandBody::Fetch {
        uid: false,
        set: nums(s),
        items,
        changed_since: None,
        vanished: false,
    }
}

#[track_caller]
fn ok(wire: &str, body: CommandBody) {
    let mut input = wire.as_bytes().to_vec();
    if !wire.ends_with('\n') {
        input.extend_from_slice(b"\r\n");
    }
    match one(&input) {
        Decoded::Command(cmd) => {
            assert_eq!(cmd.body, body, "{wire:?}");
            // Whatever we accept, our own encoder writes in a form we accept again.
            let again = one(&cmd.to_wire());
            assert_eq!(again, Decoded::Command(cmd), "re-encoding {wire:?}");
        }
        other => panic!("{wire:?}: {other:?}"),
    }
}

#[track_caller]
fn bad(wire: &str, tag: Option<&str>, message: &str) {
    let mut input = wire.as_bytes().to_vec();
    input.extend_from_slice(b"\r\n");
    assert_eq!(
        one(&input),
        Decoded::Bad {
            tag: tag.map(|t| Tag(t.to_owned())),
            message: message.to_owned(),
        },
        "{wire:?}"
    );
}

#[track_caller]
fn invalid(wire: &str, name: &str) {
    let tag = wire.split(' ').next().unwrap();
    bad(
        wire,
        Some(tag),
        &format!("Error in IMAP command {name}: Invalid arguments."),
    );
}

#[test]
fn commands_without_arguments() {
    use CommandBody::*;
    for (wire, body) in [
        ("a CAPABILITY", Capability),
        ("a noop", Noop),
        ("a Logout", Logout),
        ("a STARTTLS", StartTls),
        ("a NAMESPACE", Namespace),
        ("a IDLE", Idle),
        ("a CHECK", Check),
        ("a CLOSE", Close),
        ("a UNSELECT", Unselect),
        ("a EXPUNGE", Expunge),
    ] {
        ok(wire, body);
    }
    invalid("a NOOP x", "NOOP");
    invalid("a NOOP ", "NOOP");
    invalid("a CAPABILITY\t", "CAPABILITY");
}

#[test]
fn tags() {
    let cmd = |t: &str| Command {
        tag: Tag(t.to_owned()),
        body: CommandBody::Noop,
    };
    for t in ["a", "A001", "x]y", "1", "tag.with-dots_and$"] {
        assert_eq!(
            one(format!("{t} NOOP\r\n").as_bytes()),
            Decoded::Command(cmd(t))
        );
    }
    let no_tag = |wire: &str| {
        bad(
            wire,
            None,
            "Error in IMAP command received by server: Invalid tag.",
        )
    };
    no_tag("+ NOOP");
    no_tag("a+b NOOP");
    no_tag(" NOOP");
    no_tag("a(b NOOP");
    no_tag("\"a\" NOOP");
    no_tag("a*b NOOP");
    no_tag("caf\u{e9} NOOP");
    bad(
        "a",
        Some("a"),
        "Error in IMAP command received by server: Missing command name.",
    );
    bad(
        "a ",
        Some("a"),
        "Error in IMAP command received by server: Missing command name.",
    );
    bad(
        "a  NOOP",
        Some("a"),
        "Error in IMAP command received by server: Missing command name.",
    );
    bad(
        "a FOO",
        Some("a"),
        "Error in IMAP command FOO: Unknown command.",
    );
    bad(
        "a frobnicate x y",
        Some("a"),
        "Error in IMAP command FROBNICATE: Unknown command.",
    );
    bad(
        "a UID FOO 1",
        Some("a"),
        "Error in IMAP command UID FOO: Unknown command.",
    );
    invalid("a UID", "UID");
}

#[test]
fn id_enable_authenticate_login() {
    use CommandBody::*;
    ok("a ID NIL", Id(None));
    ok("a ID ()", Id(Some(vec![])));
    ok(
        "a ID (\"name\" \"sodr\" \"version\" NIL)",
        Id(Some(vec![
            ("name".into(), Some("sodr".into())),
            ("version".into(), None),
        ])),
    );
    ok(
        "a id (name {4}\r\nsodr)",
        Id(Some(vec![("name".into(), Some("sodr".into()))])),
    );
    invalid("a ID", "ID");
    invalid("a ID (\"name\")", "ID");
    invalid("a ID (\"name\" \"x\" )", "ID");

    ok(
        "a ENABLE condstore utf8=accept",
        Enable(vec!["CONDSTORE".into(), "UTF8=ACCEPT".into()]),
    );
    invalid("a ENABLE", "ENABLE");

    ok(
        "a AUTHENTICATE plain",
        Authenticate {
            mechanism: "PLAIN".into(),
            initial_response: None,
        },
    );
    ok(
        "a AUTHENTICATE PLAIN =",
        Authenticate {
            mechanism: "PLAIN".into(),
            initial_response: Some(vec![]),
        },
    );
    ok(
        "a AUTHENTICATE PLAIN AHVzZXIAcGFzcw==",
        Authenticate {
            mechanism: "PLAIN".into(),
            initial_response: Some(b"AHVzZXIAcGFzcw==".to_vec()),
        },
    );
    invalid("a AUTHENTICATE PLAIN AHVzZXIAcGFzcw=", "AUTHENTICATE");
    invalid("a AUTHENTICATE PLAIN AH=zZXIA", "AUTHENTICATE");
    invalid("a AUTHENTICATE PLAIN ===", "AUTHENTICATE");
    invalid("a AUTHENTICATE", "AUTHENTICATE");

    ok(
        "a LOGIN joe \"se\\\"cr\\\\et\"",
        Login {
            username: b"joe".to_vec(),
            password: b"se\"cr\\et".to_vec(),
        },
    );
    ok(
        "a LOGIN {3}\r\njoe {4+}\r\np\0ss",
        Login {
            username: b"joe".to_vec(),
            password: b"p\0ss".to_vec(),
        },
    );
    ok(
        "a LOGIN \"j\u{f6}rg\" \"\"",
        Login {
            username: "j\u{f6}rg".as_bytes().to_vec(),
            password: vec![],
        },
    );
    invalid("a LOGIN joe", "LOGIN");
    invalid("a LOGIN joe pass extra", "LOGIN");
    invalid("a LOGIN \"joe pass", "LOGIN");
    invalid("a LOGIN \"jo\\e\" pass", "LOGIN");
    invalid("a LOGIN joe (pass)", "LOGIN");
}

#[test]
fn mailbox_commands() {
    use CommandBody::*;
    ok(
        "a SELECT INBOX",
        Select {
            mailbox: mb("INBOX"),
            params: SelectParams::default(),
        },
    );
    ok(
        "a SELECT \"Sent Items\" (condstore)",
        Select {
            mailbox: mb("Sent Items"),
            params: SelectParams {
                condstore: true,
                qresync: None,
            },
        },
    );
    ok(
        "a EXAMINE &U,BTFw-",
        Examine {
            mailbox: mb("&U,BTFw-"),
            params: SelectParams::default(),
        },
    );
    invalid("a SELECT INBOX (QRESYNC (1))", "SELECT");
    invalid("a SELECT INBOX (FOO)", "SELECT");
    invalid("a SELECT INBOX CONDSTORE", "SELECT");
    invalid("a SELECT", "SELECT");
    ok(
        "a CREATE foo/bar",
        Create {
            mailbox: mb("foo/bar"),
            uses: vec![],
        },
    );
    ok("a DELETE \"\"", Delete { mailbox: mb("") });
    ok("a SUBSCRIBE a]b", Subscribe { mailbox: mb("a]b") });
    ok("a UNSUBSCRIBE NIL", Unsubscribe { mailbox: mb("NIL") });
    invalid("a CREATE a*b", "CREATE");
    invalid("a CREATE a%", "CREATE");
    ok(
        "a RENAME old {3}\r\nnew",
        Rename {
            from: mb("old"),
            to: mb("new"),
        },
    );
    invalid("a RENAME old", "RENAME");
    ok(
        "a LIST \"\" *",
        List {
            reference: pat(""),
            pattern: pat("*"),
        },
    );
    ok(
        "a LIST ~/Mail/ %/a]",
        List {
            reference: pat("~/Mail/"),
            pattern: pat("%/a]"),
        },
    );
    ok(
        "a LSUB \"#news.\" \"comp.mail.*\"",
        Lsub {
            reference: pat("#news."),
            pattern: pat("comp.mail.*"),
        },
    );
    // RFC 5258 LIST-EXTENDED.
    ok(
        "a LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (INBOX \"Other/%\") RETURN (CHILDREN STATUS (MESSAGES UNSEEN))",
        CommandBody::ListExtended {
            select: ListSelect {
                subscribed: true,
                recursive_match: true,
                ..ListSelect::default()
            },
            reference: pat(""),
            patterns: vec![pat("INBOX"), pat("Other/%")],
            returns: ListReturn {
                children: true,
                status: Some(vec![StatusItem::Messages, StatusItem::Unseen]),
                ..ListReturn::default()
            },
        },
    );
    ok(
        "a LIST \"\" % RETURN (SPECIAL-USE)",
        CommandBody::ListExtended {
            select: ListSelect::default(),
            reference: pat(""),
            patterns: vec![pat("%")],
            returns: ListReturn {
                special_use: true,
                ..ListReturn::default()
            },
        },
    );
    // Unknown options, RECURSIVEMATCH alone, and a missing pattern are BAD (RFC 5258 3).
    invalid("a LIST (SUBSCRIBED BOGUS) \"\" *", "LIST");
    invalid("a LIST (RECURSIVEMATCH) \"\" *", "LIST");
    invalid("a LIST \"\" * RETURN (BOGUS)", "LIST");
    invalid("a LIST \"\" ()", "LIST");
    invalid("a LIST \"\"", "LIST");
    ok(
        "a STATUS blurdybloop (UIDNEXT MESSAGES unseen RECENT UIDVALIDITY HIGHESTMODSEQ SIZE DELETED)",
        Status {
            mailbox: mb("blurdybloop"),
            items: vec![
                StatusItem::UidNext,
                StatusItem::Messages,
                StatusItem::Unseen,
                StatusItem::Recent,
                StatusItem::UidValidity,
                StatusItem::HighestModSeq,
                StatusItem::Size,
                StatusItem::Deleted,
            ],
        },
    );
    invalid("a STATUS INBOX ()", "STATUS");
    invalid("a STATUS INBOX (FOO)", "STATUS");
    invalid("a STATUS INBOX MESSAGES", "STATUS");
    invalid("a APPEND INBOX", "APPEND");
    invalid("a APPEND INBOX (\\Seen)", "APPEND");
}

#[test]
fn sequence_sets_and_copy_move_expunge() {
    use CommandBody::*;
    ok(
        "a COPY 2:4 MEETING",
        Copy {
            uid: false,
            set: nums("2:4"),
            mailbox: mb("MEETING"),
        },
    );
    ok(
        "a UID copy 1,3:*,*:7,4294967295 x",
        Copy {
            uid: true,
            set: nums("1,3:*,*:7,4294967295"),
            mailbox: mb("x"),
        },
    );
    ok(
        "a MOVE * Trash",
        Move {
            uid: false,
            set: nums("*"),
            mailbox: mb("Trash"),
        },
    );
    ok(
        "a uid move 1:2 Trash",
        Move {
            uid: true,
            set: nums("1:2"),
            mailbox: mb("Trash"),
        },
    );
    ok("a UID EXPUNGE 3000:3002", UidExpunge(nums("3000:3002")));
    let msgset = |w: &str, name: &str| {
        bad(
            w,
            Some("a"),
            &format!("Error in IMAP command {name}: Invalid messageset"),
        )
    };
    msgset("a COPY 0 x", "COPY");
    msgset("a COPY 1:0 x", "COPY");
    msgset("a COPY 1, x", "COPY");
    msgset("a UID EXPUNGE 1:", "UID EXPUNGE");
    msgset("a COPY 4294967296 x", "COPY");
    msgset("a COPY 99999999999999999999999 x", "COPY");
    msgset("a COPY # x", "COPY");
    invalid("a COPY 1;2 x", "COPY");
    invalid("a COPY 1", "COPY");
    invalid("a EXPUNGE 1", "EXPUNGE");
    invalid("a UID EXPUNGE", "UID EXPUNGE");
}

#[test]
fn store() {
    let store = |action, silent, flags: Vec<Flag>| CommandBody::Store {
        uid: false,
        set: nums("2:4"),
        action,
        silent,
        flags,
        unchanged_since: None,
    };
    ok(
        "a STORE 2:4 +FLAGS (\\Deleted)",
        store(StoreAction::Add, false, vec![Flag::Deleted]),
    );
    ok(
        "a STORE 2:4 -flags.silent \\seen $Junk",
        store(StoreAction::Remove, true, vec![Flag::Seen, kw("$Junk")]),
    );
    ok(
        "a STORE 2:4 FLAGS ()",
        store(StoreAction::Replace, false, vec![]),
    );
    ok(
        "a STORE 2:4 FLAGS.SILENT (\\Answered \\Flagged \\Draft \\Seen \\Deleted NonJunk)",
        store(
            StoreAction::Replace,
            true,
            vec![
                Flag::Answered,
                Flag::Flagged,
                Flag::Draft,
                Flag::Seen,
                Flag::Deleted,
                kw("NonJunk"),
            ],
        ),
    );
    ok(
        "a UID STORE 1 +FLAGS Junk",
        CommandBody::Store {
            uid: true,
            set: nums("1"),
            action: StoreAction::Add,
            silent: false,
            flags: vec![kw("Junk")],
            unchanged_since: None,
        },
    );
    bad(
        "a STORE 1 +FLAGS (\\Recent)",
        Some("a"),
        "Error in IMAP command STORE: Invalid system flag \\RECENT",
    );
    bad(
        "a STORE 1 +FLAGS \\Bogus",
        Some("a"),
        "Error in IMAP command STORE: Invalid system flag \\BOGUS",
    );
    bad(
        &format!("a STORE 1 +FLAGS {}", "k".repeat(300)),
        Some("a"),
        "Error in IMAP command STORE: Invalid keyword",
    );
    invalid("a STORE 1 +FLAGS \\*", "STORE");
    invalid("a STORE 1 +FLAGS (a]b)", "STORE");
    invalid("a STORE 1 +FLAGS (\"quoted\")", "STORE");
    invalid("a STORE 1 +FLAGS", "STORE");
    invalid("a STORE 1 +FLAGS ", "STORE");
    invalid("a STORE 1 FLAG (\\Seen)", "STORE");
    invalid("a STORE 1 *FLAGS (\\Seen)", "STORE");
    invalid("a STORE 1 (UNCHANGEDSINCE) FLAGS (\\Seen)", "STORE");
    invalid("a STORE 1 FLAGS (\\Seen", "STORE");
    invalid("a STORE 1 FLAGS (\\Seen )", "STORE");
}

#[test]
fn fetch_items() {
    use FetchAttr::*;
    ok(
        "a FETCH 1 ALL",
        fetch("1", vec![Flags, InternalDate, Rfc822Size, Envelope]),
    );
    ok(
        "a FETCH 1 fast",
        fetch("1", vec![Flags, InternalDate, Rfc822Size]),
    );
    ok(
        "a FETCH 1 FULL",
        fetch("1", vec![Flags, InternalDate, Rfc822Size, Envelope, Body]),
    );
    ok("a FETCH 1:* FLAGS", fetch("1:*", vec![Flags]));
    ok(
        "a FETCH 2:4 (ENVELOPE FLAGS INTERNALDATE RFC822 RFC822.HEADER RFC822.SIZE RFC822.TEXT BODY BODYSTRUCTURE UID MODSEQ)",
        fetch(
            "2:4",
            vec![
                Envelope,
                Flags,
                InternalDate,
                Rfc822,
                Rfc822Header,
                Rfc822Size,
                Rfc822Text,
                Body,
                BodyStructure,
                Uid,
                ModSeq,
            ],
        ),
    );
    ok(
        "a FETCH 1 (BODY[] BODY.PEEK[HEADER] body[TEXT]<0.100>)",
        fetch(
            "1",
            vec![
                body_section(false, section(&[], None), None),
                body_section(true, section(&[], Some(SectionText::Header)), None),
                body_section(false, section(&[], Some(SectionText::Text)), Some((0, 100))),
            ],
        ),
    );
    ok(
        "a FETCH 1 BODY.PEEK[HEADER.FIELDS (DATE FROM \"X-Odd Name\")]",
        fetch(
            "1",
            vec![body_section(
                true,
                section(
                    &[],
                    Some(SectionText::HeaderFields(vec![
                        "DATE".into(),
                        "FROM".into(),
                        "X-Odd Name".into(),
                    ])),
                ),
                None,
            )],
        ),
    );
    ok(
        "a FETCH 1 (BODY[1.2.3] BODY[4.HEADER] BODY[4.1.MIME] BODY[3.TEXT] BODY[2.header.fields.not (Received)]<10.5>)",
        fetch(
            "1",
            vec![
                body_section(false, section(&[1, 2, 3], None), None),
                body_section(false, section(&[4], Some(SectionText::Header)), None),
                body_section(false, section(&[4, 1], Some(SectionText::Mime)), None),
                body_section(false, section(&[3], Some(SectionText::Text)), None),
                body_section(
                    false,
                    section(
                        &[2],
                        Some(SectionText::HeaderFieldsNot(vec!["Received".into()])),
                    ),
                    Some((10, 5)),
                ),
            ],
        ),
    );
    ok(
        "a UID FETCH 1:* (FLAGS)",
        CommandBody::Fetch {
            uid: true,
            set: nums("1:*"),
            items: vec![Flags],
            changed_since: None,
            vanished: false,
        },
    );
    for w in [
        "a FETCH 1 BODY[MIME]",
        "a FETCH 1 BODY[0]",
        "a FETCH 1 BODY[1.]",
        "a FETCH 1 BODY[1.0]",
        "a FETCH 1 BODY[HEADER.FIELDS ()]",
        "a FETCH 1 BODY[HEADER.FIELDS]",
        "a FETCH 1 BODY[HEADER.FIELDS (A B]",
        "a FETCH 1 BODY[FOO]",
        "a FETCH 1 BODY[]<0>",
        "a FETCH 1 BODY[]<0.0>",
        "a FETCH 1 BODY[]<.5>",
        "a FETCH 1 BODY[",
        "a FETCH 1 BODY.PEEK",
        "a FETCH 1 ()",
        "a FETCH 1 (ALL)",
        "a FETCH 1 (FLAGS",
        "a FETCH 1 (FLAGS) (CHANGEDSINCE)",
        "a FETCH 1 (FLAGS) ()",
        "a FETCH 1 FLAGS UID",
        "a FETCH 1 BINARY[1.MIME]",
        "a FETCH 1 ((FLAGS))",
        "a FETCH 1",
        "a FETCH 1 ALLX",
    ] {
        invalid(w, "FETCH");
    }
}

#[test]
fn search_keys() {
    use SearchKey::*;
    ok("a SEARCH ALL", search(None, All));
    ok(
        "a SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"",
        search(
            None,
            And(vec![
                Flagged,
                Since(date(1994, 2, 1)),
                Not(Box::new(From("Smith".into()))),
            ]),
        ),
    );
    ok(
        "a SEARCH OR (SEEN DRAFT) 2:4 UNDELETED",
        search(
            None,
            And(vec![
                Or(
                    Box::new(And(vec![Seen, Draft])),
                    Box::new(SequenceSet(set("2:4"))),
                ),
                Undeleted,
            ]),
        ),
    );
    ok("a SEARCH (ALL)", search(None, And(vec![All])));
    ok(
        "a SEARCH CHARSET UTF-8 TEXT {6}\r\nXX\u{e9}XX",
        search(Some("UTF-8"), Text("XX\u{e9}XX".into())),
    );
    // A charset Columba does not know still decodes; the session answers [BADCHARSET].
    ok(
        "a SEARCH CHARSET KOI8-R SUBJECT {2}\r\n\u{3a9}",
        search(Some("KOI8-R"), Subject("\u{3a9}".into())),
    );
    match one(b"a SEARCH CHARSET ISO-8859-1 BODY {1}\r\n\xe9\r\n") {
        Decoded::Command(Command {
            body: CommandBody::Search {
                charset, criteria, ..
            },
            ..
        }) => {
            assert_eq!(charset.as_deref(), Some("ISO-8859-1"));
            assert_eq!(criteria, Body("\u{fffd}".into()));
        }
        other => panic!("{other:?}"),
    }
    let every = "a SEARCH ALL ANSWERED BCC b BEFORE \"1-Jan-2000\" BODY x CC c DELETED DRAFT FLAGGED \
                 FROM f HEADER X-Spam \"\" KEYWORD $Junk LARGER 10 NEW NOT OLD OLD ON 29-Feb-2000 \
                 OR RECENT SEEN RECENT SEEN SENTBEFORE 31-Dec-1999 SENTON 01-jan-2001 SENTSINCE 2-Mar-2002 \
                 SINCE 3-Apr-2003 SMALLER 4294967295 SUBJECT s TEXT t TO o UID 1:5 UNANSWERED \
                 UNDELETED UNDRAFT UNFLAGGED UNKEYWORD \\Seen UNSEEN 1,2 MODSEQ 620162338 \
                 MODSEQ \"/flags/\\\\draft\" all 620162338";
    ok(
        every,
        search(
            None,
            And(vec![
                All,
                Answered,
                Bcc("b".into()),
                Before(date(2000, 1, 1)),
                Body("x".into()),
                Cc("c".into()),
                Deleted,
                Draft,
                Flagged,
                From("f".into()),
                Header("X-Spam".into(), String::new()),
                Keyword("$Junk".into()),
                Larger(10),
                New,
                Not(Box::new(Old)),
                Old,
                On(date(2000, 2, 29)),
                Or(Box::new(Recent), Box::new(Seen)),
                Recent,
                Seen,
                SentBefore(date(1999, 12, 31)),
                SentOn(date(2001, 1, 1)),
                SentSince(date(2002, 3, 2)),
                Since(date(2003, 4, 3)),
                Smaller(u32::MAX),
                Subject("s".into()),
                Text("t".into()),
                To("o".into()),
                Uid(set("1:5")),
                Unanswered,
                Undeleted,
                Undraft,
                Unflagged,
                Unkeyword("\\Seen".into()),
                Unseen,
                SequenceSet(set("1,2")),
                ModSeq(620162338),
                ModSeq(620162338),
            ]),
        ),
    );
    ok(
        "a UID SEARCH NOT NOT (OR 1 2 (3))",
        CommandBody::Search {
            uid: true,
            returns: None,
            charset: None,
            criteria: Not(Box::new(Not(Box::new(And(vec![
                Or(
                    Box::new(SequenceSet(set("1"))),
                    Box::new(SequenceSet(set("2"))),
                ),
                And(vec![SequenceSet(set("3"))]),
            ]))))),
        },
    );
    bad(
        "a SEARCH FOO",
        Some("a"),
        "Error in IMAP command SEARCH: Unknown argument FOO",
    );
    bad(
        "a SEARCH RETURNING ALL",
        Some("a"),
        "Error in IMAP command SEARCH: Unknown argument RETURNING",
    );
    for w in [
        "a SEARCH",
        "a SEARCH ",
        "a SEARCH ALL ",
        "a SEARCH ()",
        "a SEARCH (ALL",
        "a SEARCH ALL)",
        "a SEARCH (ALL))",
        "a SEARCH NOT",
        "a SEARCH OR ALL",
        "a SEARCH OR ALL  ALL",
        "a SEARCH SINCE 30-Feb-2000",
        "a SEARCH SINCE 29-Feb-1900",
        "a SEARCH SINCE 1-Foo-2000",
        "a SEARCH SINCE 1-Jan-20",
        "a SEARCH SINCE 100-Jan-2000",
        "a SEARCH SINCE \"1-Jan-2000",
        "a SEARCH LARGER",
        "a SEARCH LARGER x",
        "a SEARCH LARGER 4294967296",
        "a SEARCH HEADER X",
        "a SEARCH MODSEQ",
        "a SEARCH MODSEQ \"/flags/x\" nope 5",
        "a SEARCH CHARSET",
        "a SEARCH CHARSET UTF-8",
        "a SEARCH UID",
    ] {
        invalid(w, "SEARCH");
    }
    bad(
        "a SEARCH 0",
        Some("a"),
        "Error in IMAP command SEARCH: Invalid messageset",
    );
}

/// RFC 7162: FETCH CHANGEDSINCE/VANISHED, STORE UNCHANGEDSINCE, SELECT QRESYNC.
#[test]
fn condstore_and_qresync_modifiers() {
    ok(
        "a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)",
        CommandBody::Fetch {
            uid: true,
            set: nums("1:*"),
            items: vec![FetchAttr::Flags],
            changed_since: Some(12345),
            vanished: true,
        },
    );
    ok(
        "a STORE 1:3 (UNCHANGEDSINCE 0) +FLAGS.SILENT (\\Seen)",
        CommandBody::Store {
            uid: false,
            set: nums("1:3"),
            action: StoreAction::Add,
            silent: true,
            flags: vec![Flag::Seen],
            unchanged_since: Some(0),
        },
    );
    ok(
        "a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541 (1:3 4:6)))",
        CommandBody::Select {
            mailbox: MailboxArg(b"INBOX".to_vec()),
            params: SelectParams {
                condstore: false,
                qresync: Some(QresyncParams {
                    uid_validity: 67890007,
                    modseq: 20050715194045000,
                    known_uids: Some(set("41,43:211,214:541")),
                    seq_match: Some((set("1:3"), set("4:6"))),
                }),
            },
        },
    );
    // VANISHED needs UID FETCH and CHANGEDSINCE; CHANGEDSINCE 0 is not a mod-sequence-value.
    invalid("a FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)", "FETCH");
    invalid("a UID FETCH 1 (FLAGS) (VANISHED)", "UID FETCH");
    invalid("a FETCH 1 (FLAGS) (CHANGEDSINCE 0)", "FETCH");
    invalid("a STORE 1 (BOGUS 1) +FLAGS x", "STORE");
    invalid("a SELECT INBOX (QRESYNC (0 1))", "SELECT");
}

/// RFC 4731 3.1 ESEARCH: `RETURN (...)` before CHARSET and the keys; `RETURN ()` means ALL.
#[test]
fn search_return_options() {
    ok(
        "a UID SEARCH RETURN (MIN COUNT) CHARSET UTF-8 UNSEEN",
        CommandBody::Search {
            uid: true,
            returns: Some(vec![SearchReturn::Min, SearchReturn::Count]),
            charset: Some("UTF-8".to_owned()),
            criteria: SearchKey::Unseen,
        },
    );
    ok(
        "a SEARCH RETURN () ALL",
        CommandBody::Search {
            uid: false,
            returns: Some(Vec::new()),
            charset: None,
            criteria: SearchKey::All,
        },
    );
    invalid("a SEARCH RETURN (SAVED) ALL", "SEARCH");
    invalid("a SEARCH RETURN (MIN ALL", "SEARCH");
    invalid("a SEARCH RETURN MIN ALL", "SEARCH");
}

/// RFC 5267 4.2-4.4 and 5: CONTEXT, UPDATE and PARTIAL (a range either way round, never `*`
/// or 0, at most one of PARTIAL and ALL), and CANCELUPDATE with quoted tags.
#[test]
fn search_contexts() {
    ok(
        "B01 UID SEARCH RETURN (UPDATE CONTEXT PARTIAL 500:1) DELETED",
        CommandBody::Search {
            uid: true,
            returns: Some(vec![
                SearchReturn::Update,
                SearchReturn::Context,
                SearchReturn::Partial {
                    first: 1,
                    last: 500,
                },
            ]),
            charset: None,
            criteria: SearchKey::Deleted,
        },
    );
    invalid("a SEARCH RETURN (PARTIAL 1:10 PARTIAL 11:20) ALL", "SEARCH");
    invalid("a SEARCH RETURN (ALL PARTIAL 1:10) ALL", "SEARCH");
    invalid("a SEARCH RETURN (PARTIAL 0:10) ALL", "SEARCH");
    invalid("a SEARCH RETURN (PARTIAL 1:*) ALL", "SEARCH");
    invalid("a SEARCH RETURN (PARTIAL 5) ALL", "SEARCH");
    ok(
        "B04 CANCELUPDATE \"B01\" \"B02\"",
        CommandBody::CancelUpdate(vec!["B01".to_owned(), "B02".to_owned()]),
    );
    invalid("a CANCELUPDATE", "CANCELUPDATE");
    invalid("a CANCELUPDATE B01", "CANCELUPDATE");
}

/// RFC 5256 SORT with RFC 5957's DISPLAY keys and RFC 5267 ESORT's RETURN.
#[test]
fn sort_commands() {
    let crit = |reverse, key| SortCriterion { reverse, key };
    ok(
        "a SORT (DATE) UTF-8 ALL",
        CommandBody::Sort {
            uid: false,
            returns: None,
            criteria: vec![crit(false, SortKey::Date)],
            charset: "UTF-8".to_owned(),
            search: SearchKey::All,
        },
    );
    ok(
        "a uid sort (reverse arrival Cc Subject REVERSE SIZE displayfrom DISPLAYTO FROM TO) \"US-ASCII\" UNSEEN SINCE 1-Feb-1994",
        CommandBody::Sort {
            uid: true,
            returns: None,
            criteria: vec![
                crit(true, SortKey::Arrival),
                crit(false, SortKey::Cc),
                crit(false, SortKey::Subject),
                crit(true, SortKey::Size),
                crit(false, SortKey::DisplayFrom),
                crit(false, SortKey::DisplayTo),
                crit(false, SortKey::From),
                crit(false, SortKey::To),
            ],
            charset: "US-ASCII".to_owned(),
            search: SearchKey::And(vec![SearchKey::Unseen, SearchKey::Since(date(1994, 2, 1))]),
        },
    );
    ok(
        "a SORT RETURN (MIN COUNT) (SUBJECT) UTF-8 (OR SEEN FLAGGED)",
        CommandBody::Sort {
            uid: false,
            returns: Some(vec![SearchReturn::Min, SearchReturn::Count]),
            criteria: vec![crit(false, SortKey::Subject)],
            charset: "UTF-8".to_owned(),
            search: SearchKey::And(vec![SearchKey::Or(
                Box::new(SearchKey::Seen),
                Box::new(SearchKey::Flagged),
            )]),
        },
    );
    bad(
        "a SORT () UTF-8 ALL",
        Some("a"),
        "Error in IMAP command SORT: Empty sort program.",
    );
    bad(
        "a SORT (DATE REVERSE) UTF-8 ALL",
        Some("a"),
        "Error in IMAP command SORT: Sort list ends with REVERSE.",
    );
    bad(
        "a SORT (X-SCORE) UTF-8 ALL",
        Some("a"),
        "Error in IMAP command SORT: Unknown sort argument: X-SCORE",
    );
    // The charset is not optional, the keys neither, and REVERSE takes one key.
    invalid("a SORT (DATE) ALL", "SORT");
    invalid("a SORT (DATE) UTF-8", "SORT");
    invalid("a SORT DATE UTF-8 ALL", "SORT");
    bad(
        "a SORT (REVERSE REVERSE DATE) UTF-8 ALL",
        Some("a"),
        "Error in IMAP command SORT: Unknown sort argument: REVERSE",
    );
    invalid("a SORT (DATE  SUBJECT) UTF-8 ALL", "SORT");
    // RFC 5182 SAVE works with ESORT's RETURN too.
    ok(
        "a SORT RETURN (SAVE) (DATE) UTF-8 ALL",
        CommandBody::Sort {
            uid: false,
            returns: Some(vec![SearchReturn::Save]),
            criteria: vec![crit(false, SortKey::Date)],
            charset: "UTF-8".to_owned(),
            search: SearchKey::All,
        },
    );
    let many = format!("a SORT ({}) UTF-8 ALL", vec!["DATE"; 40].join(" "));
    bad(
        &many,
        Some("a"),
        "Error in IMAP command SORT: Too many sort criteria.",
    );
}

/// RFC 5256 THREAD: ORDEREDSUBJECT, REFERENCES and REFS.
#[test]
fn thread_commands() {
    for (alg, algorithm) in [
        ("ORDEREDSUBJECT", ThreadAlgorithm::OrderedSubject),
        ("references", ThreadAlgorithm::References),
        ("Refs", ThreadAlgorithm::Refs),
    ] {
        ok(
            &format!("a THREAD {alg} UTF-8 ALL"),
            CommandBody::Thread {
                uid: false,
                algorithm,
                charset: "UTF-8".to_owned(),
                search: SearchKey::All,
            },
        );
    }
    ok(
        "a UID THREAD REFERENCES US-ASCII SUBJECT \"x y\" 1:5",
        CommandBody::Thread {
            uid: true,
            algorithm: ThreadAlgorithm::References,
            charset: "US-ASCII".to_owned(),
            search: SearchKey::And(vec![
                SearchKey::Subject("x y".to_owned()),
                SearchKey::SequenceSet(set("1:5")),
            ]),
        },
    );
    bad(
        "a THREAD X-FOO UTF-8 ALL",
        Some("a"),
        "Error in IMAP command THREAD: Unknown thread algorithm.",
    );
    invalid("a THREAD REFERENCES ALL", "THREAD");
    invalid("a THREAD REFERENCES UTF-8", "THREAD");
    invalid("a THREAD", "THREAD");
}

#[test]
fn search_nesting_is_bounded_without_recursion() {
    let deep_not = format!("a SEARCH {}ALL\r\n", "NOT ".repeat(10_000));
    assert_eq!(
        one(deep_not.as_bytes()),
        Decoded::Bad {
            tag: Some(Tag("a".into())),
            message: "Error in IMAP command SEARCH: Too deep search key nesting.".into(),
        }
    );
    let deep_or = format!("a SEARCH {}ALL{}\r\n", "OR ALL ".repeat(5_000), "");
    assert!(matches!(one(deep_or.as_bytes()), Decoded::Bad { .. }));
    // Moderate nesting is fine.
    let fine = format!("a SEARCH {}ALL\r\n", "NOT ".repeat(300));
    assert!(matches!(one(fine.as_bytes()), Decoded::Command(_)));
}

#[test]
fn line_ends_and_empty_lines() {
    let noop = |t: &str| {
        common::Ev::D(Decoded::Command(Command {
            tag: Tag(t.into()),
            body: CommandBody::Noop,
        }))
    };
    let evs = common::drive_all(b"\r\n\na NOOP\nb NOOP\r\n\r\n\r\nc NOOP\r\n");
    assert_eq!(evs, vec![noop("a"), noop("b"), noop("c")]);
    // A CR that is not part of the line end is a byte of the line, and so not valid grammar.
    assert_eq!(
        one(b"a NOOP\r\r\n"),
        Decoded::Bad {
            tag: Some(Tag("a".into())),
            message: "Error in IMAP command NOOP: Invalid arguments.".into()
        }
    );
}

/// RFC 5182 SEARCHRES: the SAVE return option, and `$` wherever a sequence set goes (a whole
/// set on its own, never mixed with numbers) and as a search key, also after UID.
#[test]
fn searchres_saved_result() {
    use CommandBody::*;
    ok(
        "a SEARCH RETURN (SAVE MIN) FLAGGED",
        Search {
            uid: false,
            returns: Some(vec![SearchReturn::Save, SearchReturn::Min]),
            charset: None,
            criteria: SearchKey::Flagged,
        },
    );
    ok(
        "a UID SEARCH UID $ SMALLER 4096",
        Search {
            uid: true,
            returns: None,
            charset: None,
            criteria: SearchKey::And(vec![SearchKey::SavedResult, SearchKey::Smaller(4096)]),
        },
    );
    ok(
        "a SEARCH (OR $ 1,3) SEEN",
        Search {
            uid: false,
            returns: None,
            charset: None,
            criteria: SearchKey::And(vec![
                SearchKey::And(vec![SearchKey::Or(
                    Box::new(SearchKey::SavedResult),
                    Box::new(SearchKey::SequenceSet(set("1,3"))),
                )]),
                SearchKey::Seen,
            ]),
        },
    );
    ok(
        "a FETCH $ (FLAGS)",
        Fetch {
            uid: false,
            set: MessageSet::SavedResult,
            items: vec![FetchAttr::Flags],
            changed_since: None,
            vanished: false,
        },
    );
    ok(
        "a UID STORE $ +FLAGS.SILENT (\\Deleted)",
        Store {
            uid: true,
            set: MessageSet::SavedResult,
            action: StoreAction::Add,
            silent: true,
            flags: vec![Flag::Deleted],
            unchanged_since: None,
        },
    );
    ok(
        "a MOVE $ Junk",
        Move {
            uid: false,
            set: MessageSet::SavedResult,
            mailbox: mb("Junk"),
        },
    );
    ok("a UID EXPUNGE $", UidExpunge(MessageSet::SavedResult));
    invalid("a FETCH $,1 (FLAGS)", "FETCH");
    bad(
        "a FETCH 1,$ (FLAGS)",
        Some("a"),
        "Error in IMAP command FETCH: Invalid messageset",
    );
    invalid("a COPY $$ Junk", "COPY");
}

/// RFC 5032 WITHIN: OLDER and YOUNGER take a non-zero number of seconds.
#[test]
fn within_keys() {
    ok(
        "a SEARCH OLDER 3600 YOUNGER 4294967295",
        CommandBody::Search {
            uid: false,
            returns: None,
            charset: None,
            criteria: SearchKey::And(vec![SearchKey::Older(3600), SearchKey::Younger(u32::MAX)]),
        },
    );
    invalid("a SEARCH OLDER 0", "SEARCH");
    invalid("a SEARCH YOUNGER", "SEARCH");
    invalid("a SEARCH YOUNGER -5", "SEARCH");
}

/// RFC 6154 3 CREATE-SPECIAL-USE: `CREATE name (USE (attrs))`; RFC 7889 STATUS APPENDLIMIT.
#[test]
fn create_special_use_and_appendlimit() {
    ok(
        "a CREATE Spam (USE (\\Junk))",
        CommandBody::Create {
            mailbox: mb("Spam"),
            uses: vec!["\\Junk".to_owned()],
        },
    );
    ok(
        "a CREATE \"Old mail\" (USE (\\Archive \\Flagged))",
        CommandBody::Create {
            mailbox: mb("Old mail"),
            uses: vec!["\\Archive".to_owned(), "\\Flagged".to_owned()],
        },
    );
    ok(
        "a CREATE x (USE ())",
        CommandBody::Create {
            mailbox: mb("x"),
            uses: vec![],
        },
    );
    invalid("a CREATE x (USE (Junk))", "CREATE");
    invalid("a CREATE x (USE (\\Junk)", "CREATE");
    invalid("a CREATE x USE (\\Junk)", "CREATE");
    bad(
        "a CREATE x (COLOR (red))",
        Some("a"),
        "Error in IMAP command CREATE: Unknown CREATE parameter.",
    );
    ok(
        "a STATUS INBOX (APPENDLIMIT MESSAGES)",
        CommandBody::Status {
            mailbox: mb("INBOX"),
            items: vec![StatusItem::AppendLimit, StatusItem::Messages],
        },
    );
}

/// RFC 8514 SAVEDATE: the FETCH item and the four search keys.
#[test]
fn savedate_item_and_keys() {
    ok(
        "a FETCH 1 (SAVEDATE UID)",
        CommandBody::Fetch {
            uid: false,
            set: nums("1"),
            items: vec![FetchAttr::SaveDate, FetchAttr::Uid],
            changed_since: None,
            vanished: false,
        },
    );
    let day = Date {
        year: 2014,
        month: 12,
        day: 28,
    };
    ok(
        "a SEARCH SAVEDON 28-Dec-2014 SAVEDBEFORE 28-Dec-2014 SAVEDSINCE 28-Dec-2014 SAVEDATESUPPORTED",
        CommandBody::Search {
            uid: false,
            returns: None,
            charset: None,
            criteria: SearchKey::And(vec![
                SearchKey::SavedOn(day),
                SearchKey::SavedBefore(day),
                SearchKey::SavedSince(day),
                SearchKey::SaveDateSupported,
            ]),
        },
    );
    invalid("a SEARCH SAVEDON", "SEARCH");
    invalid("a SEARCH SAVEDSINCE 32-Dec-2014", "SEARCH");
}

/// RFC 8474 OBJECTID: EMAILID and THREADID in FETCH and SEARCH, MAILBOXID in STATUS.
#[test]
fn objectid_items_and_keys() {
    ok(
        "a UID FETCH 1:* (EMAILID THREADID)",
        CommandBody::Fetch {
            uid: true,
            set: nums("1:*"),
            items: vec![FetchAttr::EmailId, FetchAttr::ThreadId],
            changed_since: None,
            vanished: false,
        },
    );
    ok(
        "a SEARCH EMAILID M6d99ac3275bb4e THREADID T64b478a75b7ea9",
        CommandBody::Search {
            uid: false,
            returns: None,
            charset: None,
            criteria: SearchKey::And(vec![
                SearchKey::EmailId("M6d99ac3275bb4e".to_owned()),
                SearchKey::ThreadId("T64b478a75b7ea9".to_owned()),
            ]),
        },
    );
    ok(
        "a STATUS INBOX (MAILBOXID)",
        CommandBody::Status {
            mailbox: mb("INBOX"),
            items: vec![StatusItem::MailboxId],
        },
    );
    invalid("a SEARCH EMAILID", "SEARCH");
    invalid("a SEARCH EMAILID \"M1\"", "SEARCH");
    invalid("a SEARCH EMAILID M1.2", "SEARCH");
    invalid(&format!("a SEARCH EMAILID {}", "M".repeat(256)), "SEARCH");
}

/// RFC 8970 PREVIEW with its LAZY modifier, beside FETCH modifiers.
#[test]
fn preview_item() {
    ok(
        "a FETCH 1:3 (UID PREVIEW (LAZY) FLAGS)",
        CommandBody::Fetch {
            uid: false,
            set: nums("1:3"),
            items: vec![
                FetchAttr::Uid,
                FetchAttr::Preview { lazy: true },
                FetchAttr::Flags,
            ],
            changed_since: None,
            vanished: false,
        },
    );
    ok(
        "a FETCH 1 PREVIEW (CHANGEDSINCE 5)",
        CommandBody::Fetch {
            uid: false,
            set: nums("1"),
            items: vec![FetchAttr::Preview { lazy: false }],
            changed_since: Some(5),
            vanished: false,
        },
    );
    ok(
        "a FETCH 1 preview (lazy)",
        CommandBody::Fetch {
            uid: false,
            set: nums("1"),
            items: vec![FetchAttr::Preview { lazy: true }],
            changed_since: None,
            vanished: false,
        },
    );
    invalid("a FETCH 1 (PREVIEW (TEASER))", "FETCH");
}

/// RFC 3516 BINARY, BINARY.PEEK with a partial, BINARY.SIZE; part numbers only.
#[test]
fn binary_items() {
    ok(
        "a FETCH 1 (BINARY[1.2] BINARY.PEEK[]<0.100> BINARY.SIZE[3])",
        CommandBody::Fetch {
            uid: false,
            set: nums("1"),
            items: vec![
                FetchAttr::Binary {
                    peek: false,
                    part: vec![1, 2],
                    partial: None,
                },
                FetchAttr::Binary {
                    peek: true,
                    part: vec![],
                    partial: Some(Partial {
                        origin: 0,
                        length: 100,
                    }),
                },
                FetchAttr::BinarySize { part: vec![3] },
            ],
            changed_since: None,
            vanished: false,
        },
    );
    invalid("a FETCH 1 (BINARY[1.TEXT])", "FETCH");
    invalid("a FETCH 1 (BINARY[0])", "FETCH");
    invalid("a FETCH 1 (BINARY.SIZE[1]<0.5>)", "FETCH");
    invalid("a FETCH 1 BINARY", "FETCH");
}

/// RFC 4978 COMPRESS: one mechanism name, upper-cased.
#[test]
fn compress_command() {
    ok(
        "a compress deflate",
        CommandBody::Compress {
            mechanism: "DEFLATE".to_owned(),
        },
    );
    invalid("a COMPRESS", "COMPRESS");
    invalid("a COMPRESS DEFLATE X", "COMPRESS");
}

/// The draft preview forms Dovecot answers: SNIPPET and PREVIEW with FUZZY, LAZY=FUZZY.
#[test]
fn fuzzy_preview_items() {
    let fetch = |items| CommandBody::Fetch {
        uid: false,
        set: nums("1"),
        items,
        changed_since: None,
        vanished: false,
    };
    let fuzzy = |snippet, lazy| FetchAttr::FuzzyPreview { snippet, lazy };
    ok("a FETCH 1 (SNIPPET)", fetch(vec![fuzzy(true, false)]));
    ok(
        "a FETCH 1 (SNIPPET (LAZY=FUZZY) PREVIEW (FUZZY) UID)",
        fetch(vec![fuzzy(true, true), fuzzy(false, false), FetchAttr::Uid]),
    );
    ok(
        "a FETCH 1 (PREVIEW (lazy fuzzy))",
        fetch(vec![fuzzy(false, true)]),
    );
    ok(
        "a FETCH 1 SNIPPET (CHANGEDSINCE 3)",
        CommandBody::Fetch {
            uid: false,
            set: nums("1"),
            items: vec![fuzzy(true, false)],
            changed_since: Some(3),
            vanished: false,
        },
    );
    invalid("a FETCH 1 (SNIPPET (FUZZY)", "FETCH");
}

/// RFC 9208 QUOTA: GETQUOTA, GETQUOTAROOT, SETQUOTA; STATUS DELETED-STORAGE.
#[test]
fn quota_commands() {
    ok(
        "a GETQUOTA \"User quota\"",
        CommandBody::GetQuota {
            root: b"User quota".to_vec(),
        },
    );
    ok(
        "a GETQUOTAROOT INBOX",
        CommandBody::GetQuotaRoot {
            mailbox: mb("INBOX"),
        },
    );
    ok(
        "a SETQUOTA \"\" (STORAGE 512 message 10)",
        CommandBody::SetQuota {
            root: Vec::new(),
            limits: vec![("STORAGE".to_owned(), 512), ("MESSAGE".to_owned(), 10)],
        },
    );
    ok(
        "a SETQUOTA x ()",
        CommandBody::SetQuota {
            root: b"x".to_vec(),
            limits: vec![],
        },
    );
    ok(
        "a STATUS INBOX (DELETED DELETED-STORAGE)",
        CommandBody::Status {
            mailbox: mb("INBOX"),
            items: vec![StatusItem::Deleted, StatusItem::DeletedStorage],
        },
    );
    invalid("a GETQUOTA", "GETQUOTA");
    invalid("a SETQUOTA x (STORAGE)", "SETQUOTA");
    invalid("a SETQUOTA x (STORAGE -1)", "SETQUOTA");
}

/// RFC 6855 3: 8-bit octets in a quoted string must form UTF-8; anything else is BAD.
#[test]
fn quoted_strings_are_utf8() {
    ok(
        "a CREATE \"Grüße\"",
        CommandBody::Create {
            mailbox: MailboxArg("Grüße".as_bytes().to_vec()),
            uses: Vec::new(),
        },
    );
    let mut latin1 = b"a CREATE \"Gr".to_vec();
    latin1.extend_from_slice(&[0xfc, 0xdf, b'e', b'"', b'\r', b'\n']);
    match one(&latin1) {
        Decoded::Bad { tag, .. } => assert_eq!(tag, Some(Tag("a".into()))),
        other => panic!("{other:?}"),
    }
}
