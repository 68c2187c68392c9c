//! Shared test driver: feeds input to a decoder in given fragments and plays the session's part
//! for APPEND and CATENATE `TEXT` literals (streaming them out of the input) and continuations
//! (just go on).
#![allow(dead_code)]

pub mod strategy;

use imap_proto::{AppendHeader, Decoded, Decoder, Limits, MailboxArg};
use mail_types::Flag;

/// The header of a message for `mailbox` with `flags`, no date, replacing nothing.
pub fn header(mailbox: &str, flags: Vec<Flag>) -> AppendHeader {
    AppendHeader {
        mailbox: MailboxArg(mailbox.as_bytes().to_vec()),
        flags,
        date: None,
        replace: None,
        utf8: false,
    }
}

/// What the driver saw: decoder output, plus each streamed APPEND message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev {
    D(Decoded),
    Message(Vec<u8>),
}

/// Feeds `chunks` one after another. Stops after `Fatal`.
pub fn drive(chunks: &[&[u8]], limits: Limits) -> Vec<Ev> {
    let mut dec = Decoder::new(limits.clone());
    let mut buf = Vec::new();
    let mut out = Vec::new();
    // (bytes still to stream, bytes streamed so far) of the APPEND message being read.
    let mut streaming: Option<(u64, Vec<u8>)> = None;
    // Every call consumes input or reports something that did: a bound proves termination.
    let total: usize = chunks.iter().map(|c| c.len()).sum();
    let mut budget = 4 * total + 4 * chunks.len() + 16;
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            budget = budget
                .checked_sub(1)
                .expect("decoder does not make progress");
            if let Some((remaining, msg)) = streaming.as_mut() {
                let n = (*remaining).min(buf.len() as u64) as usize;
                msg.extend(buf.drain(..n));
                *remaining -= n as u64;
                if *remaining > 0 {
                    break;
                }
                let (_, msg) = streaming.take().unwrap();
                out.push(Ev::Message(msg));
                dec.append_literal_done();
            }
            let item = dec.decode(&mut buf);
            let bound = limits.max_line.max(limits.max_command);
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

pub fn drive_all(input: &[u8]) -> Vec<Ev> {
    drive(&[input], Limits::default())
}

/// One byte at a time.
pub fn drive_bytes(input: &[u8], limits: Limits) -> Vec<Ev> {
    let chunks: Vec<&[u8]> = input.chunks(1).collect();
    drive(&chunks, limits)
}

/// Drops continuation requests, whose presence depends on fragmentation by design.
pub fn without_continuations(evs: Vec<Ev>) -> Vec<Ev> {
    evs.into_iter()
        .filter(|e| *e != Ev::D(Decoded::NeedContinuation))
        .collect()
}

/// Decodes one complete command given all at once; panics unless exactly one item results.
pub fn one(input: &[u8]) -> Decoded {
    let evs = without_continuations(drive_all(input));
    assert_eq!(
        evs.len(),
        1,
        "{:?}: {evs:?}",
        String::from_utf8_lossy(input)
    );
    match evs.into_iter().next() {
        Some(Ev::D(d)) => d,
        other => panic!("unexpected {other:?}"),
    }
}
