//! Writing messages into an mbox file: the metadata headers UW-IMAP and Dovecot read, and the
//! quoting that keeps a body's `From ` lines from starting a new message.
//!
//! Metadata goes at the end of the header, in the order Dovecot writes it: `X-IMAPbase` (first
//! message only; the last UID as ten digits, so appends can update it in place), `X-UID`,
//! `Status` (`R` seen, `O` no longer `\Recent`), `X-Status` (`A`nswered, `F`lagged, `T` draft,
//! `D`eleted) and `X-Keywords`. Every message ends with a newline and is followed by the empty
//! line readers expect before the next `From ` line.

use mail_types::{Flags, Keyword, SystemFlags};

use super::parse;

/// How the bodies of new messages are protected (Dovecot writes `ContentLength`, mutt and
/// procmail `Mboxo`, qmail and newer tools `Mboxrd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Quoting {
    /// `>` before every line matching `>*From `, which a reader can undo exactly.
    #[default]
    Mboxrd,
    /// `>` before every line starting with `From ` (lossy: `>From ` lines read back as `From `).
    Mboxo,
    /// No quoting; a `Content-Length` header gives the body's length (Dovecot's way).
    ContentLength,
}

/// The metadata one message gets.
#[derive(Debug, Clone, Copy)]
pub struct MetaOut<'a> {
    pub uid: u32,
    pub flags: &'a Flags,
    /// Not `\Recent` any more (`Status: O`).
    pub old: bool,
    /// `X-IMAPbase` fields, for the first message of the file.
    pub base: Option<BaseOut<'a>>,
}

#[derive(Debug, Clone, Copy)]
pub struct BaseOut<'a> {
    pub uid_validity: u32,
    pub last_uid: u32,
    pub keywords: &'a [Keyword],
}

/// Appends the metadata header lines for `meta`.
pub fn metadata_headers(out: &mut Vec<u8>, meta: &MetaOut<'_>) {
    if let Some(base) = meta.base {
        out.extend_from_slice(
            format!("X-IMAPbase: {} {:010}", base.uid_validity, base.last_uid).as_bytes(),
        );
        for k in base.keywords {
            out.push(b' ');
            out.extend_from_slice(k.as_str().as_bytes());
        }
        out.push(b'\n');
    }
    out.extend_from_slice(format!("X-UID: {}\n", meta.uid).as_bytes());
    let system = meta.flags.system;
    out.extend_from_slice(b"Status: ");
    if system.contains(SystemFlags::SEEN) {
        out.push(b'R');
    }
    if meta.old {
        out.push(b'O');
    }
    out.push(b'\n');
    let x_status: Vec<u8> = [
        (SystemFlags::ANSWERED, b'A'),
        (SystemFlags::FLAGGED, b'F'),
        (SystemFlags::DRAFT, b'T'),
        (SystemFlags::DELETED, b'D'),
    ]
    .iter()
    .filter(|(f, _)| system.contains(*f))
    .map(|(_, c)| *c)
    .collect();
    if !x_status.is_empty() {
        out.extend_from_slice(b"X-Status: ");
        out.extend_from_slice(&x_status);
        out.push(b'\n');
    }
    if !meta.flags.keywords().is_empty() {
        out.extend_from_slice(b"X-Keywords:");
        for k in meta.flags.keywords() {
            out.push(b' ');
            out.extend_from_slice(k.as_str().as_bytes());
        }
        out.push(b'\n');
    }
}

/// Appends a message already in the file with its metadata replaced: `raw` is the file from
/// the message's `From ` line to its next one, `header`, `body` and `end` offsets within it.
/// The `From ` line, the other header lines, the body and the separator stay byte for byte.
pub fn rewrite(
    out: &mut Vec<u8>,
    raw: &[u8],
    header: usize,
    body: usize,
    end: usize,
    meta: &MetaOut<'_>,
) {
    out.extend_from_slice(&raw[..header]);
    let block = without_blank_line(&raw[header..body]);
    let header_end = header + block.len();
    copy_fields(out, &raw[header..header_end], |name| {
        // Content-Length stays: the body it measures does not change.
        parse::is_hidden(name) && !name.eq_ignore_ascii_case(b"Content-Length")
    });
    if header_end > header && raw[header_end - 1] != b'\n' {
        out.push(b'\n');
    }
    metadata_headers(out, meta);
    out.push(b'\n');
    out.extend_from_slice(&raw[body..end]);
    out.extend_from_slice(&raw[end..]);
}

/// Appends a new message: its `From ` line (without newline), the message with LF line endings
/// (any metadata fields it brings are dropped: they would lie), the metadata, the quoted body
/// and the separator.
pub fn new_message(
    out: &mut Vec<u8>,
    from_line: &str,
    message: &[u8],
    quoting: Quoting,
    meta: &MetaOut<'_>,
) {
    out.extend_from_slice(from_line.as_bytes());
    out.push(b'\n');
    let (header, body) = split_header(message);
    let start = out.len();
    copy_fields(out, header, parse::is_hidden);
    if quoting != Quoting::ContentLength {
        let fields = out.split_off(start);
        quote(out, &fields, quoting);
    }
    if out.last() != Some(&b'\n') {
        out.push(b'\n');
    }
    metadata_headers(out, meta);
    let mut quoted = Vec::with_capacity(body.len() + 16);
    match quoting {
        Quoting::ContentLength => quoted.extend_from_slice(body),
        q => quote(&mut quoted, body, q),
    }
    if !quoted.is_empty() && quoted.last() != Some(&b'\n') {
        quoted.push(b'\n');
    }
    if quoting == Quoting::ContentLength {
        out.extend_from_slice(format!("Content-Length: {}\n", quoted.len()).as_bytes());
    }
    out.push(b'\n');
    out.extend_from_slice(&quoted);
    out.push(b'\n');
}

/// A header block without the empty line that ends it (if it has one).
fn without_blank_line(block: &[u8]) -> &[u8] {
    for blank in [&b"\n"[..], b"\r\n"] {
        if block == blank {
            return &[];
        }
        if block.len() > blank.len()
            && block.ends_with(blank)
            && block[block.len() - blank.len() - 1] == b'\n'
        {
            return &block[..block.len() - blank.len()];
        }
    }
    block
}

/// The header (without the empty line) and the body of a message.
fn split_header(message: &[u8]) -> (&[u8], &[u8]) {
    if message.starts_with(b"\n") {
        return (&[], &message[1..]);
    }
    match memchr::memmem::find(message, b"\n\n") {
        Some(i) => (&message[..=i], &message[i + 2..]),
        None => (message, &[]),
    }
}

/// Copies header lines, leaving out fields (with their continuation lines) that `drop` names.
fn copy_fields(out: &mut Vec<u8>, header: &[u8], drop: impl Fn(&[u8]) -> bool) {
    let mut pos = 0;
    let mut dropping = false;
    while pos < header.len() {
        let end = memchr::memchr(b'\n', &header[pos..]).map_or(header.len(), |i| pos + i + 1);
        let line = &header[pos..end];
        if !matches!(line.first(), Some(b' ' | b'\t')) {
            dropping = parse::field_name(line).is_some_and(&drop);
        }
        if !dropping {
            out.extend_from_slice(line);
        }
        pos = end;
    }
}

/// Appends `text` with its `From ` lines quoted.
fn quote(out: &mut Vec<u8>, text: &[u8], quoting: Quoting) {
    let mut pos = 0;
    while pos < text.len() {
        let end = memchr::memchr(b'\n', &text[pos..]).map_or(text.len(), |i| pos + i + 1);
        let line = &text[pos..end];
        let needs = match quoting {
            Quoting::Mboxrd => {
                let gt = line.iter().take_while(|&&b| b == b'>').count();
                line[gt..].starts_with(b"From ")
            }
            Quoting::Mboxo => line.starts_with(b"From "),
            Quoting::ContentLength => false,
        };
        if needs {
            out.push(b'>');
        }
        out.extend_from_slice(line);
        pos = end;
    }
}
