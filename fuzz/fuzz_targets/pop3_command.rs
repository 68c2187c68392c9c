//! Arbitrary client bytes, in arbitrary fragments, through the POP3 decoder: nothing panics, the
//! buffer stays bounded by the line limit, and fragmentation does not change what is decoded.
//! The same bytes as a message body through dot-stuffing never produce a line that is just ".".
#![no_main]

use libfuzzer_sys::fuzz_target;
use pop3_proto::{Decoded, Decoder, DotStuffer};

const MAX_LINE: usize = 64;

fn decode_all(chunks: &[&[u8]]) -> Vec<Decoded> {
    let mut d = Decoder::new(MAX_LINE);
    let mut out = Vec::new();
    for chunk in chunks {
        d.buffer().extend_from_slice(chunk);
        while let Some(x) = d.decode() {
            out.push(x);
        }
        // Bounded buffering: an unfinished line is never kept beyond the limit (plus CRLF).
        assert!(d.pending().len() <= MAX_LINE + 2, "buffered {}", d.pending().len());
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, data)) = data.split_first() else { return };
    let whole = decode_all(&[data]);
    let step = usize::from(split % 7) + 1;
    let pieces: Vec<&[u8]> = data.chunks(step).collect();
    assert_eq!(decode_all(&pieces), whole, "fragmentation changed the result");

    let mut out = Vec::new();
    let mut s = DotStuffer::new();
    for piece in &pieces {
        s.write(&mut out, piece);
    }
    s.finish(&mut out);
    // The terminating ".\r\n" is the only line consisting of a lone dot.
    let body = &out[..out.len() - 3];
    let lone_dot = body.split(|&b| b == b'\n').any(|l| l == b"." || l == b".\r");
    assert!(!lone_dot, "a body line reads as the terminator");
});
