use pop3_proto::DotStuffer;
use pop3_proto::response;

use crate::session::{FLUSH_THRESHOLD, Session, State, blocking};

/// What a message read is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// RETR: all of it.
    Whole,
    /// TOP: the header and this many lines of the body.
    Top(u32),
}

impl Session {
    /// RETR msg (RFC 1939 5): `+OK size octets`, then the message, dot-stuffed.
    pub(crate) async fn cmd_retr(&mut self, msg: u32) {
        self.send_message(msg, Part::Whole).await;
    }

    /// TOP msg n (RFC 1939 7): the header, the blank line and the first `n` lines of the body.
    pub(crate) async fn cmd_top(&mut self, msg: u32, lines: u32) {
        self.send_message(msg, Part::Top(lines)).await;
    }

    async fn send_message(&mut self, msg: u32, part: Part) {
        let State::Transaction(maildrop) = &self.state else {
            return;
        };
        let uid = match maildrop.get(msg) {
            Ok(entry) => entry.uid,
            Err(e) => return response::err(&mut self.out, None, &e.text()),
        };
        let mailbox = maildrop.mailbox.clone();
        let message = match blocking(move || mailbox.read_message(uid)).await {
            Ok(message) => message,
            Err(e) => return self.store_error(&e.into()),
        };
        let start = self.out.len() as u64 + self.bytes_out;
        let body = match part {
            Part::Whole => {
                response::ok(&mut self.out, &format!("{} octets", message.len()));
                &message[..]
            }
            Part::Top(lines) => {
                response::ok(&mut self.out, "");
                top(&message, lines)
            }
        };
        let mut stuffer = DotStuffer::new();
        for chunk in body.chunks(FLUSH_THRESHOLD) {
            stuffer.write(&mut self.out, chunk);
            if self.out.len() >= FLUSH_THRESHOLD && self.flush().await.is_err() {
                // The read loop notices the dead connection at its next read.
                return;
            }
        }
        stuffer.finish(&mut self.out);
        let sent = self.out.len() as u64 + self.bytes_out - start;
        match part {
            Part::Whole => {
                self.stats.retr_count += 1;
                self.stats.retr_bytes += sent;
                if let State::Transaction(maildrop) = &mut self.state
                    && let Ok(entry) = maildrop.get_mut(msg)
                {
                    entry.retrieved = true;
                }
            }
            Part::Top(_) => {
                self.stats.top_count += 1;
                self.stats.top_bytes += sent;
            }
        }
    }
}

/// The header, the blank line after it and the first `lines` lines of the body. A message
/// without a blank line is all header, and is returned whole.
fn top(message: &[u8], lines: u32) -> &[u8] {
    let mut end = header_end(message);
    for _ in 0..lines {
        if end >= message.len() {
            break;
        }
        match message[end..].iter().position(|&b| b == b'\n') {
            Some(i) => end += i + 1,
            None => end = message.len(),
        }
    }
    &message[..end]
}

/// Where the body starts: just after the first empty line.
fn header_end(message: &[u8]) -> usize {
    if message.starts_with(b"\r\n") {
        return 2;
    }
    if message.starts_with(b"\n") {
        return 1;
    }
    let mut at = 0;
    while let Some(i) = message[at..].iter().position(|&b| b == b'\n') {
        let next = at + i + 1;
        let rest = &message[next..];
        if rest.starts_with(b"\r\n") {
            return next + 2;
        }
        if rest.starts_with(b"\n") {
            return next + 1;
        }
        at = next;
    }
    message.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_takes_header_and_body_lines() {
        let m = b"Subject: x\r\nFrom: y\r\n\r\none\r\ntwo\r\nthree";
        let rows: [(u32, &[u8]); 5] = [
            (0, b"Subject: x\r\nFrom: y\r\n\r\n"),
            (1, b"Subject: x\r\nFrom: y\r\n\r\none\r\n"),
            (2, b"Subject: x\r\nFrom: y\r\n\r\none\r\ntwo\r\n"),
            (3, m),
            (u32::MAX, m),
        ];
        for (lines, want) in rows {
            assert_eq!(
                top(m, lines),
                want,
                "{lines}: {}",
                String::from_utf8_lossy(top(m, lines))
            );
        }
    }

    #[test]
    fn top_of_odd_messages() {
        assert_eq!(top(b"No-Body: here\r\n", 0), b"No-Body: here\r\n");
        assert_eq!(top(b"\r\nbody\r\nmore\r\n", 1), b"\r\nbody\r\n");
        assert_eq!(top(b"", 5), b"");
        assert_eq!(top(b"A: b\n\nc\nd\n", 1), b"A: b\n\nc\n");
    }
}
