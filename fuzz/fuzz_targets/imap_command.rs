//! Client bytes into the command decoder (RFC 3501 2.2 framing and 9 grammar).
//!
//! Beyond "no panic, no hang", three oracles: feeding the same bytes in fragments gives the same
//! items as feeding them at once; the decoder never holds more of a command than the limits
//! allow; and every decoded command survives `to_wire` and decoding again.
#![no_main]

use imap_proto::{Decoded, Decoder, Limits};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, PartialEq, Eq)]
enum Ev {
    D(Decoded),
    Message(Vec<u8>),
}

/// Plays the session: streams APPEND messages and CATENATE TEXT parts out of the input, goes on
/// after continuations.
fn run(chunks: &[&[u8]], limits: &Limits) -> Vec<Ev> {
    let mut dec = Decoder::new(limits.clone());
    let bound = limits.max_line.max(limits.max_command);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut streaming: Option<(u64, Vec<u8>)> = None;
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            if let Some((remaining, msg)) = streaming.as_mut() {
                let n = (*remaining).min(buf.len() as u64) as usize;
                msg.extend(buf.drain(..n));
                *remaining -= n as u64;
                if *remaining > 0 {
                    break;
                }
                if let Some((_, msg)) = streaming.take() {
                    out.push(Ev::Message(msg));
                }
                dec.append_literal_done();
            }
            let item = dec.decode(&mut buf);
            assert!(
                dec.buffered_len() <= bound,
                "decoder holds {} bytes",
                dec.buffered_len()
            );
            match item {
                None => break,
                Some(d) => {
                    let fatal = matches!(d, Decoded::Fatal { .. });
                    if let Decoded::AppendStart { size, .. } | Decoded::CatenateText { size, .. } =
                        &d
                    {
                        streaming = Some((*size, Vec::new()));
                    }
                    if let Decoded::CatenateUrl { url } = &d {
                        // Whatever a client names, parsing the URL must not panic.
                        let _ = imap_proto::url::ImapUrl::parse(url);
                    }
                    out.push(Ev::D(d));
                    if fatal {
                        return out;
                    }
                }
            }
        }
    }
    out
}

fn significant(evs: Vec<Ev>) -> Vec<Ev> {
    evs.into_iter()
        .filter(|e| *e != Ev::D(Decoded::NeedContinuation))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, data)) = data.split_first() else {
        return;
    };
    let limits = if ctl & 1 == 0 {
        Limits::default()
    } else {
        Limits {
            max_line: 40,
            max_literal: 16,
            max_append: 32,
            max_command: 100,
            max_depth: 3,
        }
    };
    let whole = significant(run(&[data], &limits));

    // Fragment sizes from a tiny generator seeded by the control byte: 1 byte at a time often.
    let mut chunks = Vec::new();
    let mut rest = data;
    let mut x = u32::from(ctl) | 1;
    while !rest.is_empty() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let n = if ctl & 2 == 0 {
            1
        } else {
            (x % 9) as usize + 1
        };
        let (a, b) = rest.split_at(n.min(rest.len()));
        chunks.push(a);
        rest = b;
    }
    assert_eq!(significant(run(&chunks, &limits)), whole);

    let roomy = Limits {
        max_line: 1 << 20,
        max_literal: 1 << 20,
        max_append: 1 << 20,
        max_command: 1 << 22,
        max_depth: 64,
    };
    for ev in &whole {
        if let Ev::D(Decoded::Command(cmd)) = ev {
            let wire = cmd.to_wire();
            let again = significant(run(&[&wire], &roomy));
            assert_eq!(
                again,
                vec![Ev::D(Decoded::Command(cmd.clone()))],
                "{:?}",
                String::from_utf8_lossy(&wire)
            );
        }
    }
});
