//! RFC 5322 and MIME (RFC 2045-2049, 2231) analysis of one message: its part tree with byte
//! ranges, the data behind IMAP's ENVELOPE and BODYSTRUCTURE, body sections, decoded header values
//! and searchable text.
//!
//! This crate owns the reading of message bytes. It is pure: it takes a byte slice (normally the
//! CRLF form of a message), never touches files or sockets, and knows nothing of IMAP wire
//! syntax — it produces plain data (`Envelope`, `BodyStructure`) that the session layer encodes.
//! Broken input (missing boundaries, bad encodings, 8-bit headers, absurd nesting) never panics:
//! it yields the best reading the RFCs and common practice (Dovecot's) allow.
//!
//! The reference for every choice the RFCs leave open is Dovecot 2.3, whose answers clients have
//! cached: the part tree follows its `message-parser.c` (see `tree.rs`), header fields its
//! `rfc822-parser.c` and `message-address.c`, BODYSTRUCTURE its `imap-bodystructure.c`. The
//! corpus test in `imap-session` compares both on real messages.

use std::borrow::Cow;
use std::ops::Range;

mod address;
mod bodystructure;
mod envelope;
mod header;
mod mime;
mod rfc822;
mod section;
mod text;
mod tree;

pub use tree::{MAX_NESTED, MAX_TOTAL};

/// ENVELOPE data (RFC 3501 7.4.2): raw header values (unfolded, not decoded — encoded-words are
/// sent to clients as they are), and parsed address lists.
///
/// As Dovecot builds it: the subject and display names are tidied for people (whitespace runs
/// made one space, trimmed); a repeated string field counts once, its last occurrence, while the
/// addresses of repeated address fields add up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Envelope {
    pub date: Option<Vec<u8>>,
    pub subject: Option<Vec<u8>>,
    pub from: Vec<Address>,
    /// Defaults to `from` when the header is absent (RFC 3501 7.4.2).
    pub sender: Vec<Address>,
    /// Defaults to `from` when the header is absent.
    pub reply_to: Vec<Address>,
    pub to: Vec<Address>,
    pub cc: Vec<Address>,
    pub bcc: Vec<Address>,
    pub in_reply_to: Option<Vec<u8>>,
    pub message_id: Option<Vec<u8>>,
}

/// One `address` of an ENVELOPE (RFC 3501 7.4.2). Group syntax (RFC 5322 3.4) is represented as
/// IMAP does: a start marker with `host: None` and the group name in `mailbox`, the members, and an
/// end marker with both `mailbox` and `host` `None`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Address {
    pub name: Option<Vec<u8>>,
    pub adl: Option<Vec<u8>>,
    pub mailbox: Option<Vec<u8>>,
    pub host: Option<Vec<u8>>,
}

/// A `Content-Disposition` (RFC 2183) as BODYSTRUCTURE shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disposition {
    pub kind: Vec<u8>,
    pub params: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The extension data that only the extensible form (BODYSTRUCTURE, not BODY) carries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Extension {
    pub disposition: Option<Disposition>,
    /// `Content-Language` values; `None` for NIL.
    pub language: Option<Vec<Vec<u8>>>,
    pub location: Option<Vec<u8>>,
}

/// BODYSTRUCTURE data (RFC 3501 7.4.2). Parameter names and values are as in the message, after
/// RFC 2231 continuation joining; media types as written (Dovecot keeps their case), with the
/// RFC 2045 defaults filled in (`text/plain; charset=us-ascii`, `7bit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyStructure {
    Single {
        media_type: Vec<u8>,
        subtype: Vec<u8>,
        params: Vec<(Vec<u8>, Vec<u8>)>,
        id: Option<Vec<u8>>,
        description: Option<Vec<u8>>,
        encoding: Vec<u8>,
        /// Body octets, CRLF line endings counted as two.
        size: u64,
        specific: SinglePart,
        md5: Option<Vec<u8>>,
        extension: Extension,
    },
    Multipart {
        parts: Vec<BodyStructure>,
        subtype: Vec<u8>,
        params: Vec<(Vec<u8>, Vec<u8>)>,
        extension: Extension,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinglePart {
    /// Any non-text, non-message part.
    Basic,
    /// `text/*`, with the body's line count.
    Text { lines: u64 },
    /// `message/rfc822`: the embedded message's envelope and structure. (`message/global` is a
    /// `Basic` part, as in Dovecot 2.3 and RFC 3501's grammar, which has no envelope for it.)
    Message {
        envelope: Box<Envelope>,
        body: Box<BodyStructure>,
        lines: u64,
    },
}

/// Which bytes of a part a `BODY[section]` asks for (RFC 3501 6.4.5), minus the part number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionSpec<'a> {
    /// `BODY[]` / `BODY[1.2]`: the whole message, or a part's body.
    Full,
    /// `HEADER`: the header including the blank line that ends it.
    Header,
    /// `HEADER.FIELDS (...)`: only those fields, in message order, plus the ending blank line.
    HeaderFields(&'a [String]),
    HeaderFieldsNot(&'a [String]),
    /// `TEXT`: the body after the header.
    Text,
    /// `MIME`: a part's MIME header.
    Mime,
}

/// One node of the part tree: where its header and body lie in the message bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub header: Range<usize>,
    pub body: Range<usize>,
    pub children: PartChildren,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartChildren {
    None,
    Multipart(Vec<Part>),
    /// The embedded message of a message/rfc822 part.
    Message(Box<Part>),
}

/// A message's part tree, computed once and queried many times. It holds byte ranges only, so
/// every query takes the same message bytes it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedMessage {
    pub root: Part,
}

impl ParsedMessage {
    /// Builds the part tree (RFC 2045, RFC 2046 5.1, 5.2.1). Any input gives a tree; `tree.rs`
    /// says how broken structure is read. At most [`MAX_NESTED`] levels and [`MAX_TOTAL`] parts.
    pub fn parse(raw: &[u8]) -> Self {
        ParsedMessage {
            root: tree::parse(raw),
        }
    }

    /// The message's ENVELOPE (RFC 3501 7.4.2).
    pub fn envelope(&self, raw: &[u8]) -> Envelope {
        envelope::envelope(&header::fields(raw, self.root.header.clone()))
    }

    /// The message's BODYSTRUCTURE (RFC 3501 7.4.2); BODY is the same without [`Extension`]s.
    pub fn body_structure(&self, raw: &[u8]) -> BodyStructure {
        bodystructure::body_structure(raw, &self.root, false, false)
    }

    /// The bytes of `BODY[part.spec]`, `None` when the part does not exist (the session then sends
    /// an empty string, as Dovecot does).
    ///
    /// RFC 3501 6.4.5: `Full` with no part number is the whole message, with one the part's body
    /// (for message/rfc822, the embedded message); `Header`, `Text` and the `HeaderFields`
    /// forms apply to the message, or with a part number to the message/rfc822 part it names
    /// (`None` for other parts); `Mime` is a part's own header. The `HeaderFields` forms are
    /// built (each field's lines as in the message, then CRLF); everything else borrows from
    /// `raw`.
    pub fn section<'r>(
        &self,
        raw: &'r [u8],
        part: &[u32],
        spec: SectionSpec<'_>,
    ) -> Option<Cow<'r, [u8]>> {
        section::section(&self.root, raw, part, spec)
    }

    /// Every value of the header field `name` in the top-level header, unfolded and with RFC 2047
    /// encoded-words decoded to UTF-8 (invalid bytes replaced).
    pub fn header_values(&self, raw: &[u8], name: &str) -> Vec<String> {
        header::fields(raw, self.root.header.clone())
            .iter()
            .filter(|f| f.is(name))
            .map(|f| text::decode_header_value(&f.value()))
            .collect()
    }

    /// The value of the first `name` field of the top-level header, as Dovecot's
    /// `mail_get_first_header` gives it: unfolded only as far as the line breaks between the
    /// folded lines (kept as LF), encoded-words not decoded. `None` when there is no such field.
    pub fn first_header(&self, raw: &[u8], name: &str) -> Option<Vec<u8>> {
        header::fields(raw, self.root.header.clone())
            .iter()
            .find(|f| f.is(name))
            .map(|f| f.value())
    }

    /// The Date header as seconds since the epoch (UTC) and the zone offset in minutes
    /// (RFC 5322 3.3); the first Date field counts, as for Dovecot's SORT and SEARCH.
    pub fn date(&self, raw: &[u8]) -> Option<(i64, i32)> {
        let fields = header::fields(raw, self.root.header.clone());
        let date = fields.iter().find(|f| f.is("Date"))?;
        parse_date(&date.value())
    }

    /// Text for SEARCH BODY/TEXT: every text/* part (and message/rfc822 bodies, recursively),
    /// transfer-decoded and converted to UTF-8, joined with newlines.
    ///
    /// Other parts (attachments) are skipped without being decoded; broken encodings and
    /// unknown charsets still give their readable text.
    pub fn body_text(&self, raw: &[u8]) -> String {
        let mut out = String::new();
        // (part, direct child of a multipart)
        let mut stack = vec![(&self.root, false)];
        while let Some((part, mime_child)) = stack.pop() {
            match &part.children {
                PartChildren::Multipart(children) => {
                    stack.extend(children.iter().rev().map(|c| (c, true)));
                }
                PartChildren::Message(child) => stack.push((child, false)),
                PartChildren::None => {
                    let f = header::fields(raw, part.header.clone());
                    let d = mime::content_data(&f, mime::is_mime(&f, mime_child));
                    if d.media_type
                        .as_ref()
                        .is_some_and(|t| !t.eq_ignore_ascii_case(b"text"))
                    {
                        continue;
                    }
                    let charset = d
                        .params
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(b"charset"));
                    let body = raw.get(part.body.clone()).unwrap_or_default();
                    let decoded = text::decode_body(
                        body,
                        d.encoding.as_deref(),
                        charset.map(|(_, v)| v.as_slice()),
                    );
                    if !out.is_empty() {
                        out.push('\n');
                    }
                    out.push_str(&decoded);
                }
            }
        }
        out
    }
}

/// A header value unfolded, with RFC 2047 encoded-words decoded to UTF-8 (invalid bytes
/// replaced): what [`ParsedMessage::header_values`] gives for each field.
pub fn decode_header(value: &[u8]) -> String {
    text::decode_header_value(value)
}

/// A Date field value (RFC 5322 3.3) as seconds since the epoch
/// (UTC) and the zone offset in minutes: how [`ParsedMessage::date`] reads the Date header, for
/// a value taken from elsewhere (an ENVELOPE's `env-date`). `None` when it does not read.
pub fn parse_date(value: &[u8]) -> Option<(i64, i32)> {
    text::parse_date(value)
}

/// An address-list field value (RFC 5322 3.4) read as ENVELOPE reads it: groups as start and end
/// markers, what cannot be read filled in as Dovecot does, display names tidied but not decoded.
pub fn parse_addresses(value: &[u8]) -> Vec<Address> {
    address::parse_address_list(value)
}

/// Size of the CRLF form of `raw`, whichever line endings it has (Maildir's `W=`).
pub fn crlf_size(raw: &[u8]) -> u64 {
    let bare_lf = memchr::memchr_iter(b'\n', raw)
        .filter(|&i| i == 0 || raw.get(i - 1) != Some(&b'\r'))
        .count();
    raw.len() as u64 + bare_lf as u64
}
