//! Property tests: robustness under arbitrary input and fragmentation, and encoder/decoder
//! round trips.

mod common;

use common::strategy::{append_header, command};
use common::{Ev, drive, without_continuations};
use imap_proto::*;
use proptest::collection::vec;
use proptest::prelude::*;

/// Pieces that make random input reach deep into the grammar and the framer.
const TOKENS: &[&[u8]] = &[
    b"a ",
    b"b1 ",
    b"APPEND ",
    b"INBOX ",
    b"LOGIN ",
    b"SEARCH ",
    b"FETCH ",
    b"STORE ",
    b"UID ",
    b"NOT ",
    b"OR ",
    b"ALL",
    b"1:*",
    b" ",
    b"(",
    b")",
    b"\"",
    b"\\",
    b"{3}\r\n",
    b"{0}\r\n",
    b"{2+}\r\n",
    b"~{1}\r\n",
    b"{99999999999}\r\n",
    b"{5+}\r\n",
    b"\r\n",
    b"\n",
    b"\r",
    b"BODY[",
    b"]",
    b"<0.1>",
    b"(\\Seen) ",
    b"\"01-Jan-2000 00:00:00 +0000\" ",
    b"NIL",
    b"CHARSET UTF-8 ",
    b"HEADER.FIELDS (",
    b"+FLAGS ",
    b"abc",
    b"\xc3\xa9",
    b"\0",
];

fn soup() -> impl Strategy<Value = Vec<u8>> {
    vec(
        prop_oneof![
            3 => proptest::sample::select(TOKENS).prop_map(<[u8]>::to_vec),
            1 => vec(any::<u8>(), 0..6),
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

fn small_limits() -> Limits {
    Limits {
        max_line: 48,
        max_literal: 16,
        max_append: 32,
        max_command: 128,
        max_depth: 3,
    }
}

/// Splits `input` at the given (unsorted, possibly out-of-range) points.
fn fragments<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut last = 0;
    for c in cuts {
        out.push(&input[last..c]);
        last = c;
    }
    out.push(&input[last..]);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// (a) Any bytes, any fragmentation: no panic, termination, and the same items as when
    /// everything arrives at once (continuation requests aside, which exist because of
    /// fragmentation).
    #[test]
    fn fragmentation_never_changes_the_result(
        input in prop_oneof![soup(), vec(any::<u8>(), 0..200)],
        cuts in vec(any::<usize>(), 0..12),
        small in any::<bool>(),
    ) {
        let limits = if small { small_limits() } else { Limits::default() };
        let whole = without_continuations(drive(&[&input], limits.clone()));
        let pieces = fragments(&input, &cuts);
        prop_assert_eq!(&without_continuations(drive(&pieces, limits.clone())), &whole);
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        prop_assert_eq!(&without_continuations(drive(&bytes, limits)), &whole);
    }

    /// (b) Every command value the decoder can produce survives encoding and decoding.
    #[test]
    fn to_wire_round_trips(cmd in command(false), cuts in vec(any::<usize>(), 0..6)) {
        let wire = cmd.to_wire();
        let expect = vec![Ev::D(Decoded::Command(cmd))];
        prop_assert_eq!(&without_continuations(drive(&[&wire], Limits::default())), &expect);
        let pieces = fragments(&wire, &cuts);
        prop_assert_eq!(&without_continuations(drive(&pieces, Limits::default())), &expect);
    }

    #[test]
    fn append_round_trips(
        tag in common::strategy::tag(),
        header in append_header(false),
        message in vec(any::<u8>(), 0..40),
    ) {
        let wire = append_to_wire(&tag, &header, &message);
        let size = message.len() as u64;
        prop_assert_eq!(
            without_continuations(drive(&[&wire], Limits::default())),
            vec![
                Ev::D(Decoded::AppendStart { tag: tag.clone(), header, size, synchronizing: true }),
                Ev::Message(message),
                Ev::D(Decoded::AppendDone { tag }),
            ]
        );
    }

    #[test]
    fn utf7_round_trip(s in any::<String>()) {
        let wire = utf7::encode(&s);
        prop_assert!(wire.bytes().all(|b| (0x20..0x7f).contains(&b)));
        prop_assert_eq!(utf7::decode(wire.as_bytes()), Ok(s));
    }

    /// Strictness: whatever decodes has exactly one wire form.
    #[test]
    fn utf7_decode_is_canonical(
        bytes in prop_oneof![
            vec(any::<u8>(), 0..32),
            "[A-Za-z&,+\\-0-9 ]{0,24}".prop_map(String::into_bytes),
        ]
    ) {
        if let Ok(name) = utf7::decode(&bytes) {
            prop_assert_eq!(utf7::encode(&name).into_bytes(), bytes);
        }
    }
}
