//! Properties of the decoder and the dot-stuffing that no table of examples covers: any input,
//! split anywhere, decodes the same; any body survives stuffing and a client's unstuffing.

use pop3_proto::{Decoded, Decoder, DotStuffer};
use proptest::prelude::*;

fn decode_all(chunks: &[&[u8]], max_line: usize) -> Vec<Decoded> {
    let mut d = Decoder::new(max_line);
    let mut out = Vec::new();
    for chunk in chunks {
        d.buffer().extend_from_slice(chunk);
        while let Some(item) = d.decode() {
            out.push(item);
        }
    }
    out
}

/// What a client does with a multi-line response (RFC 1939 3): split into lines up to the `.`
/// line and remove one leading `.` from the others.
fn unstuff(wire: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = wire;
    loop {
        let end = rest.windows(2).position(|w| w == b"\r\n")?;
        let line = &rest[..end];
        rest = &rest[end + 2..];
        if line == b"." {
            return rest.is_empty().then_some(out);
        }
        out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        out.extend_from_slice(b"\r\n");
    }
}

proptest! {
    #[test]
    fn splitting_the_input_does_not_change_what_is_decoded(
        input in proptest::collection::vec(
            prop_oneof![Just(b'\n'), Just(b'\r'), Just(b' '), Just(b'1'), any::<u8>(),
                        Just(b'S'), Just(b'T'), Just(b'A'), Just(b'L')],
            0..300),
        cut in 0usize..300,
        max_line in 1usize..40,
    ) {
        let cut = cut.min(input.len());
        let whole = decode_all(&[&input], max_line);
        let split = decode_all(&[&input[..cut], &input[cut..]], max_line);
        prop_assert_eq!(whole, split);
    }

    #[test]
    fn stuffed_bodies_come_back_unchanged(
        lines in proptest::collection::vec("[.a-z ]{0,12}", 0..20),
        cut in 0usize..400,
    ) {
        let mut body = Vec::new();
        for l in &lines {
            body.extend_from_slice(l.as_bytes());
            body.extend_from_slice(b"\r\n");
        }
        let cut = cut.min(body.len());
        let mut wire = Vec::new();
        let mut s = DotStuffer::new();
        s.write(&mut wire, &body[..cut]);
        s.write(&mut wire, &body[cut..]);
        s.finish(&mut wire);
        prop_assert_eq!(unstuff(&wire), Some(body));
    }
}
