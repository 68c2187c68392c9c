//! Reading an mbox file: where each message starts and ends, what its UW-IMAP/Dovecot metadata
//! headers say, and the message as a client sees it.
//!
//! A message starts at a `From ` line with a valid date (`from_line`) at the start of the file
//! or of a line. It ends before the next such line; the empty line writers put before every
//! `From ` line is not part of it. A `Content-Length` header is honoured only when it checks
//! out (the body of that length ends at the end of the file or right before a separator): then
//! the body is taken verbatim, unquoted `From ` lines and all, as Dovecot writes it. Otherwise
//! the message is read as mboxrd: one `>` is removed from every line matching `>+From `.
//!
//! The metadata headers (`X-IMAPbase`, `X-IMAP`, `X-UID`, `Status`, `X-Status`, `X-Keywords`,
//! and `Content-Length`, which is only true of the file) are parsed here and never shown to
//! clients: [`visible`] drops them, so BODY[], RFC822.SIZE and SEARCH do not see them, as with
//! UW-IMAP and Dovecot. A first message carrying `X-IMAP` is UW-IMAP's pseudo-message
//! ("DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA") and is not a message at all.

use mail_types::{Keyword, SystemFlags};

use super::from_line;

/// The header fields mbox readers hide from clients (Dovecot's `mbox_hide_headers`).
pub const HIDDEN_HEADERS: [&str; 7] = [
    "X-IMAPbase",
    "X-IMAP",
    "X-UID",
    "Status",
    "X-Status",
    "X-Keywords",
    "Content-Length",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("not an mbox file: no `From ` line at offset {0}")]
    NoFromLine(u64),
}

/// The folder's UIDVALIDITY, last UID and keyword list (`X-IMAPbase` or `X-IMAP`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Base {
    pub uid_validity: u32,
    pub last_uid: u32,
    pub keywords: Vec<Keyword>,
    /// Where the ten digits of the last UID are, counted from the start of the message's
    /// headers, when they are exactly ten digits wide (as UW-IMAP and Dovecot write them): then
    /// an append can update them in place.
    pub last_uid_digits: Option<u64>,
}

/// What a message's metadata headers say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    pub uid: Option<u32>,
    pub flags: SystemFlags,
    /// `Status: O`: some session has seen the message, so it is not `\Recent`.
    pub old: bool,
    pub keywords: Vec<Keyword>,
    /// `X-IMAPbase` (first message) or `X-IMAP` (pseudo-message).
    pub base: Option<Base>,
    /// The message carries `X-IMAP`: it is the pseudo-message.
    pub pseudo: bool,
    /// `X-UIDL`: the POP3 UIDL the old server (UW-IMAP's ipop3d, qpopper) gave the message,
    /// which POP3 keeps showing. Not hidden: those servers showed it too.
    pub uidl: Option<String>,
}

/// One message of the file, by absolute offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    /// The `From ` line.
    pub from: u64,
    /// The first header line (right after the `From ` line).
    pub header: u64,
    /// The first byte of the body (after the empty line ending the header), or `end`.
    pub body: u64,
    /// The end of the message's content.
    pub end: u64,
    /// The next `From ` line, or the end of the file. `end..next` is the separator.
    pub next: u64,
    /// INTERNALDATE, from the `From ` line.
    pub date: i64,
    /// The `Content-Length` checked out: the body is not unquoted.
    pub verbatim: bool,
    pub meta: Meta,
}

/// Splits `buf` (the file from offset `base` on, which must be the start of a message or the
/// end of the file) into messages.
pub fn scan(buf: &[u8], base: u64) -> Result<Vec<RawMessage>, ParseError> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < buf.len() {
        let line_end = memchr::memchr(b'\n', &buf[pos..]).map_or(buf.len(), |i| pos + i);
        let Some(from) = from_line::parse(&buf[pos..line_end]) else {
            return Err(ParseError::NoFromLine(base + pos as u64));
        };
        let header = (line_end + 1).min(buf.len());
        let (body, fields) = header_block(buf, header);
        let meta = metadata(buf, header, &fields);
        let content_length = fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case("Content-Length"))
            .and_then(|f| parse_number::<u64>(&buf[f.value.0..f.value.1]));
        let (end, next, verbatim) = match content_length.and_then(|n| honoured(buf, body, n)) {
            Some((end, next)) => (end, next, true),
            None => {
                let next = next_separator(buf, body.max(header)).unwrap_or(buf.len());
                (content_end(buf, header, next), next, false)
            }
        };
        out.push(RawMessage {
            from: base + pos as u64,
            header: base + header as u64,
            body: base + body.min(end) as u64,
            end: base + end as u64,
            next: base + next as u64,
            date: from.date,
            verbatim,
            meta,
        });
        pos = next;
    }
    Ok(out)
}

/// The message as a client sees it, with LF line endings as stored: `bytes` is the file from
/// the message's header start to its end, `body` the body's offset within it.
pub fn visible(bytes: &[u8], body: usize, verbatim: bool) -> Vec<u8> {
    let body = body.min(bytes.len());
    let mut out = Vec::with_capacity(bytes.len());
    let mut line_start = 0;
    let mut hiding = false;
    while line_start < body {
        let line_end =
            memchr::memchr(b'\n', &bytes[line_start..body]).map_or(body, |i| line_start + i + 1);
        let line = &bytes[line_start..line_end];
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation {
            hiding = field_name(line).is_some_and(is_hidden);
        }
        if !hiding {
            push_line(&mut out, line, verbatim);
        }
        line_start = line_end;
    }
    if verbatim {
        out.extend_from_slice(&bytes[body..]);
    } else {
        let mut start = body;
        while start < bytes.len() {
            let end = memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |i| start + i + 1);
            push_line(&mut out, &bytes[start..end], false);
            start = end;
        }
    }
    out
}

/// Whether a header field name is one of the hidden metadata fields.
pub fn is_hidden(name: &[u8]) -> bool {
    HIDDEN_HEADERS
        .iter()
        .any(|h| h.as_bytes().eq_ignore_ascii_case(name))
}

/// The name of the field a header line starts, if it is one.
pub fn field_name(line: &[u8]) -> Option<&[u8]> {
    let colon = memchr::memchr(b':', line)?;
    let name = &line[..colon];
    let name = name.strip_suffix(b" ").unwrap_or(name);
    (!name.is_empty() && name.iter().all(|&b| b > b' ' && b < 127)).then_some(name)
}

fn push_line(out: &mut Vec<u8>, line: &[u8], verbatim: bool) {
    if !verbatim && is_quoted_from(line) {
        out.extend_from_slice(&line[1..]);
    } else {
        out.extend_from_slice(line);
    }
}

/// `>+From `: a line mboxrd quoting produced.
fn is_quoted_from(line: &[u8]) -> bool {
    let gt = line.iter().take_while(|&&b| b == b'>').count();
    gt > 0 && line[gt..].starts_with(b"From ")
}

struct Field {
    name: String,
    /// The value's range in the buffer, continuation lines included, without the final newline.
    value: (usize, usize),
}

/// Reads the header starting at `start`: returns where the body starts (after the empty line)
/// and the fields. A header that never ends (no empty line before the next message) ends at
/// the next separator.
fn header_block(buf: &[u8], start: usize) -> (usize, Vec<Field>) {
    let mut fields: Vec<Field> = Vec::new();
    let mut pos = start;
    while pos < buf.len() {
        let line_end = memchr::memchr(b'\n', &buf[pos..]).map_or(buf.len(), |i| pos + i + 1);
        let line = &buf[pos..line_end];
        if line == b"\n" || line == b"\r\n" {
            return (line_end, fields);
        }
        if line.starts_with(b"From ") && from_line::is_separator(trim_newline(line)) {
            return (pos, fields);
        }
        if matches!(line.first(), Some(b' ' | b'\t')) {
            if let Some(last) = fields.last_mut() {
                last.value.1 = pos + trim_newline(line).len();
            }
        } else if let Some(name) = field_name(line) {
            let value_start = pos + memchr::memchr(b':', line).map_or(0, |i| i + 1);
            fields.push(Field {
                name: String::from_utf8_lossy(name).into_owned(),
                value: (value_start, pos + trim_newline(line).len()),
            });
        }
        pos = line_end;
    }
    (buf.len(), fields)
}

fn trim_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn metadata(buf: &[u8], header: usize, fields: &[Field]) -> Meta {
    let mut meta = Meta::default();
    let mut seen = [false; 6];
    for f in fields {
        if meta.uidl.is_none() && f.name.eq_ignore_ascii_case("X-UIDL") {
            let value = String::from_utf8_lossy(&buf[f.value.0..f.value.1]);
            let value = value.trim();
            // A UIDL is 1 to 70 printable characters (RFC 1939 7).
            if (1..=70).contains(&value.len()) && value.bytes().all(|b| (0x21..0x7f).contains(&b)) {
                meta.uidl = Some(value.to_owned());
            }
            continue;
        }
        let Some(which) = HIDDEN_HEADERS[..6]
            .iter()
            .position(|h| h.eq_ignore_ascii_case(&f.name))
        else {
            continue;
        };
        // The first of each field counts, as in Dovecot.
        if std::mem::replace(&mut seen[which], true) {
            continue;
        }
        let value = &buf[f.value.0..f.value.1];
        let text = String::from_utf8_lossy(value);
        match which {
            0 | 1 => {
                meta.pseudo |= which == 1;
                meta.base = parse_base(&text).map(|mut b| {
                    b.last_uid_digits =
                        last_uid_digits(value).map(|at| (f.value.0 + at - header) as u64);
                    b
                });
            }
            2 => meta.uid = parse_number::<u32>(value).filter(|&u| u > 0),
            3 => {
                for c in text.trim().chars() {
                    match c {
                        'R' => meta.flags.insert(SystemFlags::SEEN),
                        'O' => meta.old = true,
                        _ => {}
                    }
                }
            }
            4 => {
                for c in text.trim().chars() {
                    match c {
                        'A' => meta.flags.insert(SystemFlags::ANSWERED),
                        'F' => meta.flags.insert(SystemFlags::FLAGGED),
                        'T' => meta.flags.insert(SystemFlags::DRAFT),
                        'D' => meta.flags.insert(SystemFlags::DELETED),
                        _ => {}
                    }
                }
            }
            _ => meta.keywords = keywords(text.split_ascii_whitespace()),
        }
    }
    meta
}

/// `<uidvalidity> <last uid> [keyword...]`.
fn parse_base(text: &str) -> Option<Base> {
    let mut words = text.split_ascii_whitespace();
    let uid_validity: u32 = words.next()?.parse().ok().filter(|&v| v > 0)?;
    let last_uid: u32 = words.next()?.parse().ok()?;
    Some(Base {
        uid_validity,
        last_uid,
        keywords: keywords(words),
        last_uid_digits: None,
    })
}

/// The offset in an `X-IMAPbase` value of its second word, when that is ten digits.
fn last_uid_digits(value: &[u8]) -> Option<usize> {
    let mut pos = value.iter().position(|b| !b.is_ascii_whitespace())?;
    pos += value[pos..].iter().position(|b| b.is_ascii_whitespace())?;
    pos += value[pos..].iter().position(|b| !b.is_ascii_whitespace())?;
    let width = value[pos..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    (width == 10).then_some(pos)
}

/// Valid keywords, each once; others (and system flag names) are dropped.
fn keywords<'a>(words: impl Iterator<Item = &'a str>) -> Vec<Keyword> {
    let mut out: Vec<Keyword> = Vec::new();
    for w in words {
        if let Ok(k) = Keyword::new(w)
            && !out.iter().any(|o| o.eq_ignore_case(&k))
        {
            out.push(k);
        }
    }
    out
}

/// Where a message whose body starts at `body` and is `length` long ends, if a separator (or
/// the end of the file) is really there: `(end, next)`.
fn honoured(buf: &[u8], body: usize, length: u64) -> Option<(usize, usize)> {
    let end = body.checked_add(usize::try_from(length).ok()?)?;
    if end > buf.len() {
        return None;
    }
    let rest = &buf[end..];
    if rest.is_empty() || rest == b"\n" {
        return Some((end, buf.len()));
    }
    // The separator: an empty line, then the next `From ` line; or the `From ` line right away
    // when the body ended with a newline.
    if rest[0] == b'\n' && starts_with_separator(&rest[1..]) {
        return Some((end, end + 1));
    }
    if end > 0 && buf[end - 1] == b'\n' && starts_with_separator(rest) {
        return Some((end, end));
    }
    None
}

fn starts_with_separator(bytes: &[u8]) -> bool {
    let line_end = memchr::memchr(b'\n', bytes).unwrap_or(bytes.len());
    from_line::is_separator(&bytes[..line_end])
}

/// The offset of the next `From ` separator line at or after `from` (at a line start).
fn next_separator(buf: &[u8], from: usize) -> Option<usize> {
    if from < buf.len()
        && (from == 0 || buf[from - 1] == b'\n')
        && starts_with_separator(&buf[from..])
    {
        return Some(from);
    }
    let finder = memchr::memmem::Finder::new(b"\nFrom ");
    let mut pos = from;
    while let Some(i) = finder.find(&buf[pos..]) {
        let line = pos + i + 1;
        if starts_with_separator(&buf[line..]) {
            return Some(line);
        }
        pos = line;
    }
    None
}

/// The end of a message's content that runs up to `next`: the empty line before a separator
/// (or at the end of the file) is the separator's, not the message's.
fn content_end(buf: &[u8], header: usize, next: usize) -> usize {
    if next >= header + 2 && buf[next - 1] == b'\n' && buf[next - 2] == b'\n' {
        next - 1
    } else if next == header + 1 && buf[next - 1] == b'\n' {
        header
    } else {
        next
    }
}

fn parse_number<T: std::str::FromStr>(value: &[u8]) -> Option<T> {
    std::str::from_utf8(value).ok()?.trim().parse().ok()
}
