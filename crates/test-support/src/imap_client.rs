//! A tiny blocking IMAP client for tests (RFC 3501 syntax, no pipelining, no TLS).
//!
//! Each command gets a tag `T<n>`; [`ImapClient::command`] returns once the tagged answer arrives,
//! with every untagged line received meanwhile. A server line announcing a literal (`{n}` at its
//! end, RFC 3501 4.3) is read on through the literal's bytes and the rest of the line, so each
//! entry of [`Response::untagged`] is one complete response, literals included verbatim.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The answer to one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Untagged (`* ...`) responses without their final CRLF; literals are kept inline as
    /// `{n}\r\n` followed by the n bytes.
    pub untagged: Vec<Vec<u8>>,
    /// `OK`, `NO` or `BAD`.
    pub status: String,
    /// The rest of the tagged line.
    pub text: String,
}

impl Response {
    pub fn is_ok(&self) -> bool {
        self.status == "OK"
    }

    /// The `[APPENDUID uidvalidity uid]` code of a tagged answer (RFC 4315).
    pub fn append_uid(&self) -> Option<(u32, u32)> {
        let rest = self.text.split("[APPENDUID ").nth(1)?;
        let mut fields = rest.split([' ', ']']);
        let validity = fields.next()?.parse().ok()?;
        let uid = fields.next()?.parse().ok()?;
        Some((validity, uid))
    }

    /// Turns a `NO`/`BAD` answer into an error.
    pub fn ok(self) -> io::Result<Response> {
        if self.is_ok() {
            Ok(self)
        } else {
            Err(io::Error::other(format!("{} {}", self.status, self.text)))
        }
    }
}

/// A connection to an IMAP server.
pub struct ImapClient {
    stream: BufReader<TcpStream>,
    next_tag: u32,
    /// The server's greeting line.
    pub greeting: Vec<u8>,
}

impl ImapClient {
    /// Connects and reads the greeting. Reads time out after 30 s so a wedged server fails the
    /// test instead of hanging it.
    pub fn connect(addr: impl ToSocketAddrs) -> io::Result<ImapClient> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut c = ImapClient {
            stream: BufReader::new(stream),
            next_tag: 1,
            greeting: Vec::new(),
        };
        c.greeting = c.read_response()?;
        Ok(c)
    }

    /// `LOGIN user password`, failing unless the server says OK.
    pub fn login(&mut self, user: &str, password: &str) -> io::Result<Response> {
        self.command(&format!("LOGIN {} {}", quote(user), quote(password)))?
            .ok()
    }

    /// Sends one command line (without tag and CRLF) and reads up to its tagged answer.
    pub fn command(&mut self, command: &str) -> io::Result<Response> {
        self.command_with_literals(&[command.as_bytes()])
    }

    /// Sends a command made of text pieces and literals, alternating: `parts[0]` is text,
    /// `parts[1]` a literal, `parts[2]` text, and so on. Each literal is announced as `{n}` and sent
    /// after the server's continuation request (synchronizing literals, RFC 3501 7.5).
    pub fn command_with_literals(&mut self, parts: &[&[u8]]) -> io::Result<Response> {
        let tag = format!("T{}", self.next_tag);
        self.next_tag += 1;
        let mut untagged = Vec::new();
        let mut line = format!("{tag} ").into_bytes();
        for (i, part) in parts.iter().enumerate() {
            if i % 2 == 0 {
                line.extend_from_slice(part);
                continue;
            }
            line.extend_from_slice(format!("{{{}}}\r\n", part.len()).as_bytes());
            self.write(&line)?;
            line.clear();
            // Wait for "+ ...", collecting any untagged data; a tagged answer means refusal.
            loop {
                let resp = self.read_response()?;
                if resp.starts_with(b"+") {
                    break;
                }
                if resp.starts_with(b"* ") {
                    untagged.push(resp);
                    continue;
                }
                return Ok(tagged(&tag, resp, untagged));
            }
            self.write(part)?;
        }
        line.extend_from_slice(b"\r\n");
        self.write(&line)?;
        loop {
            let resp = self.read_response()?;
            if resp.starts_with(tag.as_bytes()) && resp.get(tag.len()) == Some(&b' ') {
                return Ok(tagged(&tag, resp, untagged));
            }
            if resp.starts_with(b"* ") {
                untagged.push(resp);
            }
        }
    }

    /// `APPEND mailbox {n}` with `message` as the literal.
    pub fn append(&mut self, mailbox: &str, message: &[u8]) -> io::Result<Response> {
        let head = format!("APPEND {} ", quote(mailbox));
        self.command_with_literals(&[head.as_bytes(), message, b""])
    }

    /// `APPEND mailbox (flags) "date" {n}`: `flags` as written between the parentheses (may be
    /// empty), `date` an RFC 3501 `date-time` without its quotes.
    pub fn append_with(
        &mut self,
        mailbox: &str,
        flags: &str,
        date: Option<&str>,
        message: &[u8],
    ) -> io::Result<Response> {
        let date = date.map(|d| format!(" \"{d}\"")).unwrap_or_default();
        let head = format!("APPEND {} ({flags}){date} ", quote(mailbox));
        self.command_with_literals(&[head.as_bytes(), message, b""])
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let s = self.stream.get_mut();
        s.write_all(bytes)?;
        s.flush()
    }

    /// One server response: a line, continued through every literal it announces. The final
    /// CRLF is removed.
    fn read_response(&mut self) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let start = out.len();
            let n = self.stream.read_until(b'\n', &mut out)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "server closed",
                ));
            }
            let line = &out[start..];
            match literal_size(line) {
                Some(size) => {
                    let mut literal = vec![0; size];
                    self.stream.read_exact(&mut literal)?;
                    out.extend_from_slice(&literal);
                }
                None => {
                    while out.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
                        out.pop();
                    }
                    return Ok(out);
                }
            }
        }
    }
}

fn tagged(tag: &str, line: Vec<u8>, untagged: Vec<Vec<u8>>) -> Response {
    let rest = String::from_utf8_lossy(line.get(tag.len() + 1..).unwrap_or_default()).into_owned();
    let (status, text) = rest.split_once(' ').unwrap_or((rest.as_str(), ""));
    Response {
        untagged,
        status: status.to_owned(),
        text: text.to_owned(),
    }
}

/// The `n` of a line ending in `{n}\r\n`.
fn literal_size(line: &[u8]) -> Option<usize> {
    let line = line.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = line.strip_suffix(b"}")?;
    let open = line.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(line.get(open + 1..)?)
        .ok()?
        .parse()
        .ok()
}

/// A quoted string (RFC 3501 4.3), good enough for test user names and mailbox names.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_announcements() {
        assert_eq!(literal_size(b"* 1 FETCH (BODY[] {12}\r\n"), Some(12));
        assert_eq!(literal_size(b"* 1 FETCH (BODY[] {0}\n"), Some(0));
        assert_eq!(literal_size(b"* OK done\r\n"), None);
        assert_eq!(literal_size(b"* OK {x}\r\n"), None);
    }

    #[test]
    fn tagged_line_split() {
        let r = tagged("T3", b"T3 NO [TRYCREATE] no".to_vec(), Vec::new());
        assert_eq!(r.status, "NO");
        assert_eq!(r.text, "[TRYCREATE] no");
        assert!(!r.is_ok());
        assert_eq!(r.append_uid(), None);
        let r = tagged(
            "T4",
            b"T4 OK [APPENDUID 1700 42] Append completed.".to_vec(),
            vec![],
        );
        assert_eq!(r.append_uid(), Some((1700, 42)));
    }
}
