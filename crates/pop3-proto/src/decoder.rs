//! The streaming decoder: holds what the client sent and not yet consumed, and takes complete
//! command lines off its front.
//!
//! RFC 2449 4 limits a command line to 255 octets; real clients send longer `USER`/`PASS` lines
//! (long passwords), so the limit is the caller's (`max_line`, Columba's default 1024). A line
//! over the limit is reported once as [`Decoded::TooLong`] and skipped up to its line end, so a
//! client that sends garbage does not make the server buffer it. Every command line ends with
//! CRLF (RFC 1939 3); a bare LF is accepted too, as most servers do.
//!
//! Incomplete input is a result (`None`), not I/O: the caller reads more bytes into
//! [`Decoder::buffer`] and asks again.

use crate::command::{self, Command, ParseError};

/// What the front of the input holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    Command(Command),
    /// A complete line that is not a valid command.
    Error(ParseError),
    /// A line longer than the limit; its bytes are discarded up to its line end.
    TooLong,
}

/// One raw line, for SASL responses (RFC 5034 4), which are not commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineRead {
    /// A line without its line end.
    Line(Vec<u8>),
    NeedMore,
    /// The line is longer than allowed; the bytes seen so far were discarded.
    TooLong,
}

/// Buffers client input and decodes command lines from it.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed.
    pos: usize,
    max_line: usize,
    /// Inside an over-long line: skip to its end.
    discarding: bool,
}

/// How much room to offer each read at least.
const READ_RESERVE: usize = 4096;

impl Decoder {
    /// `max_line` bounds a command line, without its line end.
    pub fn new(max_line: usize) -> Decoder {
        Decoder {
            buf: Vec::new(),
            pos: 0,
            max_line,
            discarding: false,
        }
    }

    /// The buffer to read more input into (append at its end). Consumed bytes are dropped first,
    /// so it only ever holds what is still to be decoded.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        if self.buf.capacity() - self.buf.len() < READ_RESERVE {
            self.buf.reserve(READ_RESERVE);
        }
        &mut self.buf
    }

    /// Bytes received and not yet decoded.
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Throws away everything received and not yet decoded (after STLS, RFC 2595 4: anything
    /// pipelined in cleartext must not be acted on once TLS is up).
    pub fn clear(&mut self) {
        self.buf = Vec::new();
        self.pos = 0;
        self.discarding = false;
    }

    /// Takes the next command line, if a complete one has arrived.
    pub fn decode(&mut self) -> Option<Decoded> {
        loop {
            let pending = &self.buf[self.pos..];
            let lf = pending.iter().position(|&b| b == b'\n');
            if self.discarding {
                match lf {
                    Some(i) => {
                        self.pos += i + 1;
                        self.discarding = false;
                        continue;
                    }
                    None => {
                        self.pos = self.buf.len();
                        return None;
                    }
                }
            }
            return match lf {
                Some(i) => {
                    let line = strip_cr(&pending[..i]);
                    let item = if line.len() > self.max_line {
                        Decoded::TooLong
                    } else {
                        match command::parse(line) {
                            Ok(cmd) => Decoded::Command(cmd),
                            Err(e) => Decoded::Error(e),
                        }
                    };
                    self.pos += i + 1;
                    Some(item)
                }
                None if strip_cr(pending).len() > self.max_line => {
                    self.pos = self.buf.len();
                    self.discarding = true;
                    Some(Decoded::TooLong)
                }
                None => None,
            };
        }
    }

    /// Takes one raw line of at most `max` bytes (without its line end), for a SASL response.
    pub fn take_line(&mut self, max: usize) -> LineRead {
        let pending = &self.buf[self.pos..];
        match pending.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let line = strip_cr(&pending[..i]);
                let out = if line.len() > max {
                    LineRead::TooLong
                } else {
                    LineRead::Line(line.to_vec())
                };
                self.pos += i + 1;
                out
            }
            None if strip_cr(pending).len() > max => {
                self.pos = self.buf.len();
                self.discarding = true;
                LineRead::TooLong
            }
            None => LineRead::NeedMore,
        }
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Takes one raw line from the front of `input` (for callers that keep their own buffer).
pub fn take_line(input: &mut Vec<u8>, max: usize) -> LineRead {
    let mut d = Decoder {
        buf: std::mem::take(input),
        pos: 0,
        max_line: max,
        discarding: false,
    };
    let out = d.take_line(max);
    *input = d.buf.split_off(d.pos);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(d: &mut Decoder, bytes: &[u8]) {
        d.buffer().extend_from_slice(bytes);
    }

    #[test]
    fn pipelined_commands_come_out_one_by_one() {
        let mut d = Decoder::new(100);
        feed(&mut d, b"STAT\r\nLIST 1\nRETR");
        assert_eq!(d.decode(), Some(Decoded::Command(Command::Stat)));
        assert_eq!(d.decode(), Some(Decoded::Command(Command::List(Some(1)))));
        assert_eq!(d.decode(), None);
        feed(&mut d, b" 2\r");
        assert_eq!(d.decode(), None);
        feed(&mut d, b"\n");
        assert_eq!(d.decode(), Some(Decoded::Command(Command::Retr(2))));
        assert_eq!(d.decode(), None);
        assert!(d.pending().is_empty());
    }

    #[test]
    fn an_overlong_line_is_reported_once_and_skipped() {
        let mut d = Decoder::new(10);
        feed(&mut d, b"NOOP 12345678901234");
        assert_eq!(d.decode(), Some(Decoded::TooLong));
        assert_eq!(d.decode(), None);
        feed(&mut d, b"more garbage");
        assert_eq!(d.decode(), None);
        feed(&mut d, b"\r\nNOOP\r\n");
        assert_eq!(d.decode(), Some(Decoded::Command(Command::Noop)));
        // A complete line over the limit.
        feed(&mut d, b"USER abcdefghijkl\r\nQUIT\r\n");
        assert_eq!(d.decode(), Some(Decoded::TooLong));
        assert_eq!(d.decode(), Some(Decoded::Command(Command::Quit)));
    }

    #[test]
    fn a_line_at_the_limit_waits_for_its_crlf() {
        let mut d = Decoder::new(4);
        feed(&mut d, b"STAT\r");
        assert_eq!(d.decode(), None);
        feed(&mut d, b"\n");
        assert_eq!(d.decode(), Some(Decoded::Command(Command::Stat)));
    }

    #[test]
    fn bad_lines_are_errors_and_decoding_goes_on() {
        let mut d = Decoder::new(100);
        feed(&mut d, b"FOO\r\n\r\nNOOP\r\n");
        assert_eq!(
            d.decode(),
            Some(Decoded::Error(ParseError::UnknownCommand("FOO".into())))
        );
        assert_eq!(d.decode(), Some(Decoded::Error(ParseError::Empty)));
        assert_eq!(d.decode(), Some(Decoded::Command(Command::Noop)));
    }

    #[test]
    fn raw_lines_for_sasl() {
        let mut d = Decoder::new(10);
        feed(&mut d, b"dGVzdA==\r\n*\r\n");
        assert_eq!(d.take_line(100), LineRead::Line(b"dGVzdA==".to_vec()));
        assert_eq!(d.take_line(100), LineRead::Line(b"*".to_vec()));
        assert_eq!(d.take_line(100), LineRead::NeedMore);
        feed(&mut d, b"0123456789");
        assert_eq!(d.take_line(5), LineRead::TooLong);

        let mut v = b"abc\r\nrest".to_vec();
        assert_eq!(take_line(&mut v, 10), LineRead::Line(b"abc".to_vec()));
        assert_eq!(v, b"rest");
    }

    #[test]
    fn clear_forgets_pipelined_input() {
        let mut d = Decoder::new(100);
        feed(&mut d, b"STLS\r\nUSER evil\r\n");
        assert_eq!(d.decode(), Some(Decoded::Command(Command::Stls)));
        d.clear();
        assert_eq!(d.decode(), None);
    }
}
