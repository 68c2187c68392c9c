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

use bytes::BytesMut;

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

/// Buffers client input and decodes commands and messages from it. Consumed input is split
/// off the front of the buffer, which costs nothing (`BytesMut::split_to`), so pipelined
/// commands and a DATA section's lines need no bookkeeping of a read position.
#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
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
            buf: BytesMut::new(),
            max_line,
            discarding: false,
            data: None,
        }
    }

    /// The buffer to read more input into (`AsyncReadExt::read_buf` appends at its end).
    pub fn buffer(&mut self) -> &mut BytesMut {
        self.buf.reserve(READ_RESERVE);
        &mut self.buf
    }

    /// Takes the next command line off the front; `None` when more input is needed.
    pub fn decode(&mut self) -> Option<Decoded> {
        loop {
            let Some(nl) = memchr::memchr(b'\n', &self.buf) else {
                if self.buf.len() <= self.max_line {
                    return None;
                }
                self.buf.clear();
                let first = !self.discarding;
                self.discarding = true;
                return first.then_some(Decoded::TooLong);
            };
            let line = self.buf.split_to(nl + 1);
            if std::mem::take(&mut self.discarding) {
                continue;
            }
            let line = &line[..nl];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.len() > self.max_line {
                return Some(Decoded::TooLong);
            }
            return Some(match Command::parse(line) {
                Ok(command) => Decoded::Command(command),
                Err(e) => Decoded::Error(e),
            });
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
            let Some(end) = memchr::memmem::find(&self.buf, b"\r\n") else {
                // Keep a final CR: it may start the CRLF of the next read.
                let keep = usize::from(self.buf.last() == Some(&b'\r'));
                if self.buf.len() > DATA_CHUNK {
                    let chunk = self.buf.split_to(self.buf.len() - keep);
                    data.add_line_part(&chunk);
                    data.mid_line = true;
                }
                return None;
            };
            let line = self.buf.split_to(end + 2);
            let line = &line[..end];
            if !data.mid_line && line == b"." {
                let data = self.data.take()?;
                return Some(if data.too_big {
                    DataEnd::TooBig
                } else {
                    DataEnd::Message(data.message)
                });
            }
            data.add_line_part(line);
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
    /// Adds the (rest of a) line; at a line's start, a period is taken off first
    /// (RFC 5321 4.5.2).
    fn add_line_part(&mut self, part: &[u8]) {
        let part = if self.mid_line {
            part
        } else {
            part.strip_prefix(b".").unwrap_or(part)
        };
        self.add(part);
    }

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
        feed(
            &mut d,
            b"Subject: x\r\n\r\n..leading dot\r\nbare\n.\nstill in\r\n.",
        );
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
