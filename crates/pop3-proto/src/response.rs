//! Response syntax: status lines (RFC 1939 3) with extended response codes (RFC 2449 8,
//! RFC 3206), SASL continuations (RFC 5034 4) and multi-line bodies with their dot-stuffing.
//!
//! Every function appends to a `Vec<u8>`; the session decides when to flush it.

/// Extended response codes, sent in brackets right after `-ERR` (RFC 2449 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// RFC 2449 8.1.1: the maildrop is locked by another session.
    InUse,
    /// RFC 2449 8.1.2: the user logged in too recently.
    LoginDelay,
    /// RFC 3206 4: a temporary system problem; retrying later may work.
    SysTemp,
    /// RFC 3206 4: a permanent system problem.
    SysPerm,
    /// RFC 3206 5: the credentials were wrong, or the authentication was refused.
    Auth,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InUse => "IN-USE",
            Code::LoginDelay => "LOGIN-DELAY",
            Code::SysTemp => "SYS/TEMP",
            Code::SysPerm => "SYS/PERM",
            Code::Auth => "AUTH",
        }
    }
}

/// RFC 2449 4: a response line is at most 512 octets, CRLF included.
pub const MAX_RESPONSE_LINE: usize = 512;

/// `+OK text` (the text may be empty).
pub fn ok(out: &mut Vec<u8>, text: &str) {
    status(out, "+OK", None, text);
}

/// `-ERR [CODE] text`.
pub fn err(out: &mut Vec<u8>, code: Option<Code>, text: &str) {
    status(out, "-ERR", code, text);
}

fn status(out: &mut Vec<u8>, indicator: &str, code: Option<Code>, text: &str) {
    let start = out.len();
    out.extend_from_slice(indicator.as_bytes());
    if let Some(code) = code {
        out.extend_from_slice(b" [");
        out.extend_from_slice(code.as_str().as_bytes());
        out.push(b']');
    }
    if !text.is_empty() {
        out.push(b' ');
        // A line end inside the text would start a line the client reads as something else.
        let room = MAX_RESPONSE_LINE - 2 - (out.len() - start);
        let mut cut = text.len().min(room);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        out.extend(
            text.as_bytes()[..cut]
                .iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
    }
    out.extend_from_slice(b"\r\n");
}

/// A SASL challenge, already base64-encoded: `+ data` (RFC 5034 4; an empty challenge is `+ `).
pub fn continuation(out: &mut Vec<u8>, base64: &str) {
    out.extend_from_slice(b"+ ");
    out.extend_from_slice(base64.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// One line of a multi-line response whose lines the server makes up (CAPA, LIST, UIDL): it is
/// dot-stuffed like any other.
pub fn multiline_line(out: &mut Vec<u8>, line: &str) {
    if line.starts_with('.') {
        out.push(b'.');
    }
    out.extend_from_slice(line.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// The `.` line that ends a multi-line response.
pub fn end_multiline(out: &mut Vec<u8>) {
    out.extend_from_slice(b".\r\n");
}

/// Writes message bytes as a multi-line body (RFC 1939 3): a line that begins with `.` gets
/// another `.` in front, and [`DotStuffer::finish`] makes sure the body ends with CRLF before the
/// terminating `.` line. Works across chunk boundaries, so a message can be sent in pieces.
#[derive(Debug, Clone)]
pub struct DotStuffer {
    at_line_start: bool,
}

impl Default for DotStuffer {
    fn default() -> Self {
        DotStuffer {
            at_line_start: true,
        }
    }
}

impl DotStuffer {
    pub fn new() -> DotStuffer {
        DotStuffer::default()
    }

    /// Appends `chunk`, stuffed, to `out`.
    pub fn write(&mut self, out: &mut Vec<u8>, chunk: &[u8]) {
        let mut rest = chunk;
        while !rest.is_empty() {
            if self.at_line_start && rest[0] == b'.' {
                out.push(b'.');
            }
            match rest.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    out.extend_from_slice(&rest[..=i]);
                    rest = &rest[i + 1..];
                    self.at_line_start = true;
                }
                None => {
                    out.extend_from_slice(rest);
                    self.at_line_start = false;
                    return;
                }
            }
        }
    }

    /// Ends the body: a CRLF if the last line had none, then the `.` line.
    pub fn finish(self, out: &mut Vec<u8>) {
        if !self.at_line_start {
            out.extend_from_slice(b"\r\n");
        }
        end_multiline(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(out: &[u8]) -> &str {
        std::str::from_utf8(out).unwrap()
    }

    #[test]
    fn status_lines() {
        let mut out = Vec::new();
        ok(&mut out, "2 320");
        ok(&mut out, "");
        err(&mut out, Some(Code::InUse), "Mailbox is locked");
        err(&mut out, Some(Code::SysTemp), "");
        err(&mut out, None, "bad\r\nline");
        continuation(&mut out, "");
        continuation(&mut out, "VXNlcm5hbWU6");
        assert_eq!(
            text(&out),
            "+OK 2 320\r\n+OK\r\n-ERR [IN-USE] Mailbox is locked\r\n-ERR [SYS/TEMP]\r\n\
             -ERR bad  line\r\n+ \r\n+ VXNlcm5hbWU6\r\n"
        );
    }

    #[test]
    fn status_lines_stay_within_512_octets() {
        let mut out = Vec::new();
        err(&mut out, Some(Code::SysTemp), &"é".repeat(600));
        assert!(out.len() <= MAX_RESPONSE_LINE, "{}", out.len());
        assert!(out.ends_with(b"\r\n"));
        assert!(std::str::from_utf8(&out).is_ok());
    }

    #[test]
    fn bodies_are_dot_stuffed_across_chunks() {
        let mut out = Vec::new();
        let mut s = DotStuffer::new();
        s.write(&mut out, b".first\r\nsecond\r");
        s.write(&mut out, b"\n");
        s.write(&mut out, b".");
        s.write(&mut out, b"..third\r\n.\r\nlast");
        s.finish(&mut out);
        assert_eq!(
            text(&out),
            "..first\r\nsecond\r\n....third\r\n..\r\nlast\r\n.\r\n"
        );
    }

    #[test]
    fn an_empty_body_is_just_the_terminator() {
        let mut out = Vec::new();
        DotStuffer::new().finish(&mut out);
        assert_eq!(out, b".\r\n");
        multiline_line(&mut out, ".hidden");
        assert_eq!(text(&out), ".\r\n..hidden\r\n");
    }
}
