//! Properties of the decoder over arbitrary input: whatever arrives, in whatever pieces, it
//! never panics and never holds more than a limit's worth of it; and a message a client
//! dot-stuffs (RFC 5321 4.5.2) comes back out of DATA as it was, with CRLF line ends.

use lmtp_proto::{DataEnd, Decoder};
use proptest::prelude::*;

/// The lines of `message` without their line ends (LF or CRLF); a last line without one is
/// a line too.
fn lines(message: &[u8]) -> impl Iterator<Item = &[u8]> {
    message
        .split_inclusive(|&b| b == b'\n')
        .map(|line| match line.strip_suffix(b"\n") {
            Some(l) => l.strip_suffix(b"\r").unwrap_or(l),
            None => line,
        })
}

/// What a client sends for `message` after DATA: each line dot-stuffed, then `.` CRLF.
fn stuffed(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines(message) {
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// `message` as the decoder gives it back: every line ending in CRLF.
fn crlf_lines(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines(message) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

proptest! {
    #[test]
    fn arbitrary_input_in_arbitrary_pieces(
        input in proptest::collection::vec(any::<u8>(), 0..4096),
        cuts in proptest::collection::vec(1usize..512, 1..16),
        data_after in 0usize..8,
    ) {
        let mut d = Decoder::new(100);
        let mut rest = &input[..];
        let mut commands = 0;
        for cut in cuts.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (piece, more) = rest.split_at((*cut).min(rest.len()));
            rest = more;
            d.buffer().extend_from_slice(piece);
            loop {
                if d.in_data() {
                    if d.decode_data().is_none() {
                        break;
                    }
                } else if d.decode().is_some() {
                    commands += 1;
                    if commands == data_after {
                        d.start_data(1000);
                    }
                } else {
                    break;
                }
            }
            // A command line over the limit is dropped; DATA keeps only what may still end
            // a line, besides the chunk it moves on.
            prop_assert!(d.buffer().len() <= 64 * 1024 + 512 + 100);
        }
    }

    #[test]
    fn dot_stuffed_messages_come_back(
        lines in proptest::collection::vec("[.a-z \r]{0,20}", 0..20),
    ) {
        let message: Vec<u8> = lines.join("\n").into_bytes();
        let mut d = Decoder::new(100);
        d.start_data(1 << 20);
        d.buffer().extend_from_slice(&stuffed(&message));
        match d.decode_data() {
            Some(DataEnd::Message(m)) => {
                let expected = if message.is_empty() { Vec::new() } else { crlf_lines(&message) };
                prop_assert_eq!(m, expected);
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }
}
