//! The streaming decoder: holds what the client sent and not yet consumed, and takes complete
//! command lines — or, after DATA, the message up to its end-of-data line — off its front.
//!
//! Command lines end with CRLF; a bare LF is accepted there too, as most servers do. Inside
//! DATA only CRLF ends a line (RFC 5321 4.1.1.4: `<LF>.<LF>` MUST NOT end the data, which is
//! what SMTP smuggling abuses); a bare LF stays inside its line, and the store turns it into a
//! line end of the message. A line over the command limit is reported once as
//! [`Decoded::TooLong`] and skipped to its end; a message over the size limit is read to its
//! end and thrown away, so the reply comes at the point the client expects it. Either way the
//! buffer never holds more than a limit's worth of input.
//!
//! Incomplete input is a result (`None`), not I/O: the caller reads more bytes into
//! [`Decoder::buffer`] and asks again.

use crate::command::{Command, ParseError};

/// What the front of the command input holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    Command(Command),
    /// A complete line that is not a valid command.
    Error(ParseError),
    /// A line longer than the limit; its bytes are discarded up to its line end.
    TooLong,
}

/// The end of a DATA section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataEnd {
    /// The message, dot-unstuffed, every line ending in CRLF.
    Message(Vec<u8>),
    /// The message was larger than allowed; it was read to its end and discarded.
    TooBig,
}

/// The DATA section being read.
#[derive(Debug)]
struct Data {
    message: Vec<u8>,
    max_size: u64,
    too_big: bool,
    /// The buffer's front is inside a line whose beginning was already taken (a very long
    /// line), so it can be neither the end-of-data line nor dot-stuffed.
    mid_line: bool,
}

/// Buffers client input and decodes commands and messages from it.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    pos: usize,
    max_line: usize,
    /// Inside an over-long command line: skip to its end.
    discarding: bool,
    data: Option<Data>,
}

/// How much room to offer each read at least.
const READ_RESERVE: usize = 16 * 1024;

/// A partial DATA line longer than this is moved into the message before its end arrives.
const DATA_CHUNK: usize = 64 * 1024;

impl Decoder {
    /// `max_line` bounds a command line, without its line end.
    pub fn new(max_line: usize) -> Decoder {
        Decoder {
            buf: Vec::new(),
            pos: 0,
            max_line,
            discarding: false,
            data: None,
        }
    }

    /// The buffer to read more input into (append at its end). Consumed bytes are dropped first.
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

    /// Whether a complete command line (or an over-long one) waits in the buffer: the
    /// session flushes its replies only when none does (RFC 2920 pipelining).
    pub fn has_line(&self) -> bool {
        self.data.is_none()
            && (memchr::memchr(b'\n', &self.buf[self.pos..]).is_some()
                || self.buf.len() - self.pos > self.max_line)
    }

    /// Takes the next command line off the front; `None` when more input is needed.
    pub fn decode(&mut self) -> Option<Decoded> {
        loop {
            let pending = &self.buf[self.pos..];
            match memchr::memchr(b'\n', pending) {
                Some(nl) => {
                    let line_start = self.pos;
                    self.pos += nl + 1;
                    if self.discarding {
                        self.discarding = false;
                        continue;
                    }
                    let mut line = &self.buf[line_start..line_start + nl];
                    if let Some(l) = line.strip_suffix(b"\r") {
                        line = l;
                    }
                    if line.len() > self.max_line {
                        return Some(Decoded::TooLong);
                    }
                    return Some(match Command::parse(line) {
                        Ok(command) => Decoded::Command(command),
                        Err(e) => Decoded::Error(e),
                    });
                }
                None if pending.len() > self.max_line => {
                    self.pos = self.buf.len();
                    if self.discarding {
                        return None;
                    }
                    self.discarding = true;
                    return Some(Decoded::TooLong);
                }
                None => return None,
            }
        }
    }

    /// Starts reading a DATA section (after the 354 reply) of at most `max_size` octets,
    /// unstuffed and with CRLF line ends.
    pub fn start_data(&mut self, max_size: u64) {
        self.data = Some(Data {
            message: Vec::new(),
            max_size,
            too_big: false,
            mid_line: false,
        });
    }

    /// Takes the DATA section off the front once its end-of-data line (`.` CRLF) has arrived;
    /// `None` when more input is needed. Command decoding resumes after it.
    pub fn decode_data(&mut self) -> Option<DataEnd> {
        let data = self.data.as_mut()?;
        loop {
            let pending = &self.buf[self.pos..];
            let Some(end) = find_crlf(pending) else {
                // Keep a final CR: it may start the CRLF of the next read.
                let keep = usize::from(pending.last() == Some(&b'\r'));
                if pending.len() > DATA_CHUNK {
                    let take = pending.len() - keep;
                    let chunk = &pending[..take];
                    let chunk = if data.mid_line {
                        chunk
                    } else {
                        chunk.strip_prefix(b".").unwrap_or(chunk)
                    };
                    data.add(chunk);
                    data.mid_line = true;
                    self.pos += take;
                }
                return None;
            };
            let line = &pending[..end];
            self.pos += end + 2;
            if !data.mid_line && line == b"." {
                let Some(data) = self.data.take() else {
                    return None;
                };
                return Some(if data.too_big {
                    DataEnd::TooBig
                } else {
                    DataEnd::Message(data.message)
                });
            }
            // RFC 5321 4.5.2: a line that begins with a period loses it.
            let line = if data.mid_line {
                line
            } else {
                line.strip_prefix(b".").unwrap_or(line)
            };
            data.add(line);
            data.add(b"\r\n");
            data.mid_line = false;
        }
    }

    /// Whether a DATA section is being read.
    pub fn in_data(&self) -> bool {
        self.data.is_some()
    }
}

impl Data {
    fn add(&mut self, bytes: &[u8]) {
        if self.too_big {
            return;
        }
        if (self.message.len() + bytes.len()) as u64 > self.max_size {
            self.too_big = true;
            self.message = Vec::new();
            return;
        }
        self.message.extend_from_slice(bytes);
    }
}

fn find_crlf(bytes: &[u8]) -> Option<usize> {
    memchr::memmem::find(bytes, b"\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(d: &mut Decoder, bytes: &[u8]) {
        d.buffer().extend_from_slice(bytes);
    }

    #[test]
    fn command_lines_and_the_limit() {
        let mut d = Decoder::new(20);
        feed(&mut d, b"NOOP\r\nRSET\nQUI");
        assert!(d.has_line());
        assert_eq!(d.decode(), Some(Decoded::Command(Command::Noop)));
        assert_eq!(d.decode(), Some(Decoded::Command(Command::Rset)));
        assert_eq!(d.decode(), None);
        feed(&mut d, b"T\r\n");
        assert_eq!(d.decode(), Some(Decoded::Command(Command::Quit)));
        // An over-long line is reported once, however it arrives, and skipped to its end.
        feed(&mut d, &[b'x'; 30]);
        assert_eq!(d.decode(), Some(Decoded::TooLong));
        feed(&mut d, &[b'x'; 30]);
        assert_eq!(d.decode(), None);
        feed(&mut d, b"xx\r\nNOOP\r\n");
        assert_eq!(d.decode(), Some(Decoded::Command(Command::Noop)));
        feed(&mut d, format!("NOOP {}\r\n", "y".repeat(20)).as_bytes());
        assert_eq!(d.decode(), Some(Decoded::TooLong));
        assert_eq!(d.decode(), None);
    }

    #[test]
    fn data_is_unstuffed_and_ends_only_at_crlf_dot_crlf() {
        let mut d = Decoder::new(100);
        d.start_data(1000);
        feed(&mut d, b"Subject: x\r\n\r\n..leading dot\r\nbare\n.\nstill in\r\n.");
        assert_eq!(d.decode_data(), None);
        feed(&mut d, b"\r\nNOOP\r\n");
        assert_eq!(
            d.decode_data(),
            Some(DataEnd::Message(
                b"Subject: x\r\n\r\n.leading dot\r\nbare\n.\nstill in\r\n".to_vec()
            ))
        );
        assert!(!d.in_data());
        assert_eq!(d.decode(), Some(Decoded::Command(Command::Noop)));
    }

    #[test]
    fn split_line_ends_and_empty_messages() {
        let mut d = Decoder::new(100);
        d.start_data(1000);
        for byte in b"a\r\n.\r\n" {
            assert_eq!(d.decode_data(), None);
            feed(&mut d, &[*byte]);
        }
        assert_eq!(d.decode_data(), Some(DataEnd::Message(b"a\r\n".to_vec())));
        d.start_data(1000);
        feed(&mut d, b".\r\n");
        assert_eq!(d.decode_data(), Some(DataEnd::Message(Vec::new())));
    }

    #[test]
    fn oversized_data_is_read_to_its_end_and_dropped() {
        let mut d = Decoder::new(100);
        d.start_data(10);
        feed(&mut d, b"0123456789\r\n.\r\nNOOP\r\n");
        assert_eq!(d.decode_data(), Some(DataEnd::TooBig));
        assert_eq!(d.decode(), Some(Decoded::Command(Command::Noop)));
        // A line longer than the buffer chunk never ends the data by looking like ".".
        d.start_data(1 << 20);
        let mut long = vec![b'.'];
        long.extend(std::iter::repeat_n(b'z', DATA_CHUNK + 10));
        feed(&mut d, &long);
        assert_eq!(d.decode_data(), None);
        feed(&mut d, b"\r\n.\r\n");
        let Some(DataEnd::Message(m)) = d.decode_data() else {
            panic!("no message");
        };
        assert_eq!(m.len(), DATA_CHUNK + 12);
        assert!(m.starts_with(b"zz") && m.ends_with(b"z\r\n"));
    }
}
