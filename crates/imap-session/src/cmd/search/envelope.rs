//! SEARCH's FROM, TO, CC, BCC and SUBJECT keys and its sent date, read from the message's
//! ENVELOPE (RFC 3501 6.4.4 and RFC 9051 6.4.4: "contains the specified string in the envelope
//! structure's FROM field", and so on) in the IMAP text FETCH sends and the store's cache keeps
//! (`CacheField::Envelope`): one cache entry serves both FETCH ENVELOPE and SEARCH. The sent
//! date is the envelope's, the last Date field (the header parse before read the first; a
//! message has one).
//!
//! The text is read by a small cursor that borrows from it (only a quoted string with escapes is
//! copied) and never panics: whatever is not an `envelope` (RFC 3501 9) is refused as a whole,
//! and the caller derives the envelope from the message again. The check walks the text once,
//! skipping quoted strings with `memchr`, and notes where the fields SEARCH reads are
//! ([`Layout`]), so a message's envelope is checked once and its fields read without another
//! walk.

use std::ops::Range;

use std::borrow::Cow;

use mail_parse::decode_header;

/// The address lists SEARCH looks in, by their place in the envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AddressField {
    From,
    To,
    Cc,
    Bcc,
}

/// Where the fields SEARCH reads are in a checked envelope text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Layout {
    /// The `env-date` and `env-subject` nstrings.
    date: Range<usize>,
    subject: Range<usize>,
    /// `env-from`, `env-to`, `env-cc` and `env-bcc`: `NIL` or `(address...)`.
    lists: [Range<usize>; 4],
}

impl Layout {
    /// `None` unless `text` is one `envelope` and nothing else.
    pub fn of(text: &[u8]) -> Option<Layout> {
        let mut r = Reader { buf: text, pos: 0 };
        r.expect(b'(')?;
        let date = r.skip_nstring()?;
        r.expect(b' ')?;
        let subject = r.skip_nstring()?;
        // from, sender, reply-to, to, cc, bcc
        let mut all: [Range<usize>; 6] = Default::default();
        for list in &mut all {
            r.expect(b' ')?;
            *list = r.address_list()?;
        }
        for _ in 0..2 {
            // in-reply-to, message-id
            r.expect(b' ')?;
            r.skip_nstring()?;
        }
        r.expect(b')')?;
        if r.pos != text.len() {
            return None;
        }
        let [from, _sender, _reply_to, to, cc, bcc] = all;
        Some(Layout {
            date,
            subject,
            lists: [from, to, cc, bcc],
        })
    }
}

/// A cached ENVELOPE, checked, with the fields SEARCH reads.
#[derive(Debug)]
pub(super) struct EnvelopeText<'a> {
    text: &'a [u8],
    layout: Layout,
}

/// One `address` (RFC 3501 7.4.2): `addr-name addr-adl addr-mailbox addr-host`. A group start has
/// NIL host and the group name as mailbox; a group end NIL mailbox and host.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Address<'a> {
    pub name: Option<Cow<'a, [u8]>>,
    pub mailbox: Option<Cow<'a, [u8]>>,
    pub host: Option<Cow<'a, [u8]>>,
}

impl<'a> EnvelopeText<'a> {
    /// `None` unless `text` is one `envelope` and nothing else.
    #[cfg(test)]
    pub fn parse(text: &'a [u8]) -> Option<EnvelopeText<'a>> {
        Layout::of(text).map(|layout| EnvelopeText { text, layout })
    }

    /// `text` with the layout [`Layout::of`] found in it.
    pub fn with_layout(text: &'a [u8], layout: Layout) -> EnvelopeText<'a> {
        EnvelopeText { text, layout }
    }

    /// The nstring at `range` (checked by [`Layout::of`]); `None` for NIL.
    fn nstring_at(&self, range: &Range<usize>) -> Option<Cow<'a, [u8]>> {
        let mut r = Reader {
            buf: self.text.get(range.clone())?,
            pos: 0,
        };
        r.nstring(true)?
    }

    /// `env-date`: the Date field as the message has it (unfolded).
    pub fn date(&self) -> Option<Cow<'a, [u8]>> {
        self.nstring_at(&self.layout.date)
    }

    /// `env-subject`: the Subject field, whitespace tidied, encoded-words not decoded.
    pub fn subject(&self) -> Option<Cow<'a, [u8]>> {
        self.nstring_at(&self.layout.subject)
    }

    fn list(&self, field: AddressField) -> &'a [u8] {
        let range = self.layout.lists[field as usize].clone();
        self.text.get(range).unwrap_or_default()
    }

    /// The addresses of one list, in order (none for NIL).
    pub fn addresses(&self, field: AddressField) -> impl Iterator<Item = Address<'a>> + use<'a> {
        let text = self.list(field);
        let mut r = Reader { buf: text, pos: 0 };
        // NIL has no addresses; a list starts with its `(` (both checked by `parse`).
        let open = r.eat(b'(');
        std::iter::from_fn(move || {
            if !open {
                return None;
            }
            r.address(true)
        })
    }

    /// Whether the list has any address: what an empty search string matches.
    pub fn has_addresses(&self, field: AddressField) -> bool {
        self.list(field).first() == Some(&b'(')
    }

    /// The list as people write it and search it: `Name <mailbox@host>` (or `mailbox@host`
    /// without a name), joined with `, `, groups as `Group: member, member;`; display names
    /// and group names with their encoded-words decoded (RFC 2047). The fill-ins that stand for
    /// a missing part (`MISSING_MAILBOX`, `MISSING_DOMAIN`, `SYNTAX_ERROR`) are left out:
    /// nobody wrote them.
    pub fn address_text(&self, field: AddressField) -> String {
        let mut out = String::with_capacity(self.list(field).len());
        // Nothing before the next address needs a comma: the start, or just after `Group:`.
        let mut fresh = true;
        for a in self.addresses(field) {
            match (&a.mailbox, &a.host) {
                (None, None) => {
                    out.push(';');
                    fresh = false;
                }
                (Some(group), None) => {
                    if !fresh {
                        out.push_str(", ");
                    }
                    push_decoded(&mut out, group);
                    out.push(':');
                    fresh = true;
                }
                (mailbox, Some(host)) => {
                    if !fresh {
                        out.push_str(", ");
                    } else if out.ends_with(':') {
                        out.push(' ');
                    }
                    fresh = false;
                    let mailbox = mailbox.as_deref().filter(|m| *m != b"MISSING_MAILBOX");
                    let host =
                        Some(&**host).filter(|h| *h != b"MISSING_DOMAIN" && *h != b"SYNTAX_ERROR");
                    if let Some(name) = &a.name {
                        push_decoded(&mut out, name);
                    }
                    if let Some(m) = mailbox {
                        let bracket = a.name.is_some();
                        if bracket {
                            out.push_str(" <");
                        }
                        out.push_str(&String::from_utf8_lossy(m));
                        if let Some(h) = host {
                            out.push('@');
                            out.push_str(&String::from_utf8_lossy(h));
                        }
                        if bracket {
                            out.push('>');
                        }
                    }
                }
            }
        }
        out
    }

    /// The subject with its encoded-words decoded (RFC 2047).
    pub fn subject_text(&self) -> Option<String> {
        self.subject().map(|s| {
            let mut out = String::new();
            push_decoded(&mut out, &s);
            out
        })
    }

    /// Days since the epoch of the date in its own zone ("disregarding time and timezone",
    /// RFC 3501 6.4.4), read as a Date header is read; `None` without a date that reads.
    pub fn sent_day(&self) -> Option<i64> {
        let (unix, offset_minutes) = mail_parse::parse_date(&self.date()?)?;
        Some((unix + i64::from(offset_minutes) * 60).div_euclid(86_400))
    }
}

/// A phrase or unstructured text with encoded-words decoded; text without any is taken as it is
/// (8-bit bytes as UTF-8, invalid sequences replaced).
fn push_decoded(out: &mut String, text: &[u8]) {
    if memchr::memmem::find(text, b"=?").is_some() {
        out.push_str(&decode_header(text));
    } else {
        out.push_str(&String::from_utf8_lossy(text));
    }
}

/// A cursor over envelope text. Every method returns `None` on anything unexpected and leaves
/// the position wherever it got to; callers give up on the whole text then.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, b: u8) -> Option<()> {
        self.eat(b).then_some(())
    }

    /// `nstring`: `Some(None)` for NIL, `None` when it is not one. Without `keep`, a string
    /// is only skipped (given as empty): nothing is copied.
    fn nstring(&mut self, keep: bool) -> Option<Option<Cow<'a, [u8]>>> {
        match self.peek()? {
            b'"' => self.quoted(keep).map(Some),
            b'{' => self.literal().map(|l| Some(Cow::Borrowed(l))),
            b'N' | b'n' => {
                let word = self.buf.get(self.pos..self.pos.checked_add(3)?)?;
                if !word.eq_ignore_ascii_case(b"NIL") {
                    return None;
                }
                self.pos += 3;
                Some(None)
            }
            _ => None,
        }
    }

    /// Skips an nstring; its range.
    fn skip_nstring(&mut self) -> Option<Range<usize>> {
        let start = self.pos;
        self.nstring(false)?;
        Some(start..self.pos)
    }

    /// `quoted`: `\` escapes the next byte. (CR, LF and NUL, which the writer never puts in a
    /// quoted string, are not looked for: they cannot make the reading go wrong.)
    fn quoted(&mut self, keep: bool) -> Option<Cow<'a, [u8]>> {
        self.expect(b'"')?;
        let start = self.pos;
        let mut owned: Option<Vec<u8>> = None;
        loop {
            let rest = self.buf.get(self.pos..)?;
            let i = memchr::memchr2(b'"', b'\\', rest)?;
            let special = *rest.get(i)?;
            let run = rest.get(..i)?;
            self.pos += i + 1;
            if special == b'"' {
                return Some(match owned {
                    Some(mut o) => {
                        o.extend_from_slice(run);
                        Cow::Owned(o)
                    }
                    None if keep => Cow::Borrowed(self.buf.get(start..self.pos - 1)?),
                    None => Cow::Borrowed(&[]),
                });
            }
            let escaped = self.peek()?;
            self.pos += 1;
            if keep {
                let o = owned.get_or_insert_with(Vec::new);
                o.extend_from_slice(run);
                o.push(escaped);
            }
        }
    }

    /// `literal`: `{n}` CRLF and n bytes.
    fn literal(&mut self) -> Option<&'a [u8]> {
        self.expect(b'{')?;
        let mut n: usize = 0;
        let digits = self.pos;
        while let Some(d) = self.peek().filter(u8::is_ascii_digit) {
            n = n.checked_mul(10)?.checked_add(usize::from(d - b'0'))?;
            self.pos += 1;
        }
        if self.pos == digits {
            return None;
        }
        self.expect(b'}')?;
        self.expect(b'\r')?;
        self.expect(b'\n')?;
        let end = self.pos.checked_add(n)?;
        let data = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(data)
    }

    /// An address list, NIL or `(address...)`, checked; its range.
    fn address_list(&mut self) -> Option<Range<usize>> {
        let start = self.pos;
        if self.eat(b'(') {
            // At least one address, and only addresses (RFC 3501 9: `"(" 1*address ")"`).
            self.address(false)?;
            while !self.eat(b')') {
                self.address(false)?;
            }
        } else if self.nstring(false)?.is_some() {
            return None;
        }
        Some(start..self.pos)
    }

    /// `address`: `(name adl mailbox host)`, with the space some writers put between addresses.
    /// Without `keep`, only checked (the strings given are empty).
    fn address(&mut self, keep: bool) -> Option<Address<'a>> {
        self.eat(b' ');
        self.expect(b'(')?;
        let name = self.nstring(keep)?;
        self.expect(b' ')?;
        let _adl = self.nstring(false)?;
        self.expect(b' ')?;
        let mailbox = self.nstring(keep)?;
        self.expect(b' ')?;
        let host = self.nstring(keep)?;
        self.expect(b')')?;
        Some(Address {
            name,
            mailbox,
            host,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parse::ParsedMessage;

    fn envelope_of(raw: &[u8]) -> Vec<u8> {
        let parsed = ParsedMessage::parse(raw);
        crate::fetch::structure::envelope_text(raw, &parsed)
    }

    #[test]
    fn reads_what_fetch_writes() {
        let raw = b"Date: Mon, 15 Mar 2021 23:30:00 -0200\r\n\
            Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= and \"more\"\r\n\
            From: =?UTF-8?Q?J=C3=BCrgen?= <j@example.de>, \"Smith, \\\"Jo\\\\hn\\\"\" <js@example.com>\r\n\
            To: Team: a@example.com, Bob <b@example.com>;, c@example.com\r\n\
            Cc: undisclosed-recipients:;\r\n\
            \r\nbody\r\n";
        let text = envelope_of(raw);
        let env = EnvelopeText::parse(&text).unwrap();
        assert_eq!(
            env.address_text(AddressField::From),
            "Jürgen <j@example.de>, Smith, \"Jo\\hn\" <js@example.com>"
        );
        assert_eq!(
            env.address_text(AddressField::To),
            "Team: a@example.com, Bob <b@example.com>;, c@example.com"
        );
        assert_eq!(
            env.address_text(AddressField::Cc),
            "undisclosed-recipients:;"
        );
        assert!(env.has_addresses(AddressField::Cc));
        assert!(!env.has_addresses(AddressField::Bcc));
        assert_eq!(env.address_text(AddressField::Bcc), "");
        assert_eq!(env.subject_text().as_deref(), Some("Grüße and \"more\""));
        // 23:30 at -0200 is still the 15th in its own zone.
        assert_eq!(env.sent_day(), Some(18_701));
        let groups: Vec<Address<'_>> = env.addresses(AddressField::To).collect();
        assert_eq!(groups.len(), 5);
        assert_eq!(groups[0].host, None);
        assert_eq!(groups[3].mailbox, None);
    }

    #[test]
    fn literals_and_missing_fields() {
        // 8-bit text travels in literals; no From, no Date.
        let raw = "Subject: Grüße\r\nTo: Jörg <j@example.de>\r\n\r\nbody\r\n".as_bytes();
        let text = envelope_of(raw);
        assert!(
            text.windows(3).any(|w| w == b"}\r\n"),
            "a literal is written"
        );
        let env = EnvelopeText::parse(&text).unwrap();
        assert_eq!(env.subject_text().as_deref(), Some("Grüße"));
        assert_eq!(env.address_text(AddressField::To), "Jörg <j@example.de>");
        assert!(!env.has_addresses(AddressField::From));
        assert_eq!(env.date(), None);
        assert_eq!(env.sent_day(), None);
        // Fill-ins for what the header lacks are not searchable text.
        let text = envelope_of(b"From: foo\r\nTo: Just A Name\r\n\r\n");
        let env = EnvelopeText::parse(&text).unwrap();
        assert_eq!(env.address_text(AddressField::From), "foo");
        assert_eq!(env.address_text(AddressField::To), "Just A Name");
    }

    #[test]
    fn refuses_anything_else_without_panicking() {
        let raw = b"Date: Wed, 1 Jan 2020 09:00:00 +0000\r\nSubject: x\r\nFrom: A <a@b.c>\r\n\r\n";
        let text = envelope_of(raw);
        assert!(EnvelopeText::parse(&text).is_some());
        for len in 0..text.len() {
            assert!(EnvelopeText::parse(&text[..len]).is_none(), "cut at {len}");
        }
        let mut longer = text.clone();
        longer.push(b' ');
        assert!(EnvelopeText::parse(&longer).is_none());
        for bad in [
            &b""[..],
            b"garbage",
            b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL",
            b"(NIL NIL () NIL NIL NIL NIL NIL NIL NIL)",
            b"(NIL NIL \"x\" NIL NIL NIL NIL NIL NIL NIL)",
            b"(NIL {99999999999999999999999}\r\n NIL NIL NIL NIL NIL NIL NIL NIL)",
            b"(NIL {5}\r\nab NIL NIL NIL NIL NIL NIL NIL NIL)",
            b"(NIL NIL ((NIL NIL \"a\")) NIL NIL NIL NIL NIL NIL NIL)",
            b"\x00\xff(",
        ] {
            assert!(EnvelopeText::parse(bad).is_none(), "{bad:?}");
        }
        // Every single-byte change either reads or is refused; none panics.
        for i in 0..text.len() {
            for b in [b'(', b')', b'"', b'\\', b'{', b'}', b' ', b'N', 0, 0xff] {
                let mut t = text.clone();
                t[i] = b;
                if let Some(env) = EnvelopeText::parse(&t) {
                    let _ = env.address_text(AddressField::From);
                    let _ = env.subject_text();
                    let _ = env.sent_day();
                }
            }
        }
        let empty = b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)";
        let env = EnvelopeText::parse(empty).unwrap();
        assert_eq!(env.subject(), None);
        assert!(!env.has_addresses(AddressField::To));
    }
}
