//! What SORT and THREAD compare of a message (RFC 5256 3, RFC 5957 3), derived once and kept in
//! the store's cache (`CacheField::SortKeys`), so that a warm SORT or THREAD reads no mail file
//! (Dovecot keeps the same values in its cache file).
//!
//! Strings that are compared are stored already case-mapped: upper case, which is
//! i;ascii-casemap for ASCII (RFC 4790 9.2), extended to other scripts as Dovecot extends it
//! (titlecase mapping, then one level of decomposition), so that `über` and `ÜBER` sort and
//! thread alike and `Ärger` sorts between `Alice` and `Bob` on both servers.

use mail_parse::{Address, ParsedMessage, decode_header, parse_addresses};

use super::decompose::{push_decomposed, titlecase};
use super::subject::base_subject;
use crate::cmd::thread::msgid::MessageIds;

/// Encoding version: a cache entry written by another version is ignored and derived again.
const VERSION: u8 = 2;

/// At most this many ids of a References field are kept: the last ones, nearest the message.
/// Real threads stay far below; it bounds the work a hostile message can cause.
pub(crate) const MAX_REFERENCES: usize = 128;

const HAS_SENT: u8 = 1;
const HAS_SUBJECT: u8 = 2;
const REPLY_OR_FORWARD: u8 = 4;
const HAS_MESSAGE_ID: u8 = 8;
const KNOWN_FLAGS: u8 = HAS_SENT | HAS_SUBJECT | REPLY_OR_FORWARD | HAS_MESSAGE_ID;

/// The sort and thread keys of one message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct SortKeys {
    /// The Date header as seconds since the epoch (UTC); `None` without a usable Date, when
    /// INTERNALDATE stands in (RFC 5256 2.2).
    pub sent: Option<i64>,
    /// The base subject (RFC 5256 2.1), case-mapped; `None` without a Subject field.
    pub subject: Option<String>,
    /// The subject had a `Re:`, `Fwd:`, `(fwd)` or `[fwd: ...]` (RFC 5256 2.1, used by THREAD).
    pub reply_or_forward: bool,
    /// addr-mailbox of the first address of the first From, To and Cc fields, case-mapped.
    pub from: String,
    pub to: String,
    pub cc: String,
    /// RFC 5957 display names of the first From and To addresses, case-mapped.
    pub display_from: String,
    pub display_to: String,
    /// The first valid id of the first Message-ID field.
    pub message_id: Option<String>,
    /// The valid ids of the first References field (at most [`MAX_REFERENCES`], the last
    /// ones), or without any, the first valid id of In-Reply-To (RFC 5256 4, as Dovecot reads
    /// them).
    pub references: Vec<String>,
}

impl SortKeys {
    pub fn derive(raw: &[u8], parsed: &ParsedMessage) -> SortKeys {
        let first = |name: &str| parsed.first_header(raw, name);
        let (subject, reply_or_forward) = match first("Subject") {
            Some(v) => {
                let (base, reply) = base_subject(&decode_header(&v));
                (Some(base), reply)
            }
            None => (None, false),
        };
        let from = first("From").and_then(|v| parse_addresses(&v).into_iter().next());
        let to = first("To").and_then(|v| parse_addresses(&v).into_iter().next());
        let cc = first("Cc").and_then(|v| parse_addresses(&v).into_iter().next());
        let message_id = first("Message-ID").and_then(|v| MessageIds::new(&v).next());
        let mut references: Vec<String> = match first("References") {
            Some(v) => MessageIds::new(&v).collect(),
            None => Vec::new(),
        };
        if references.len() > MAX_REFERENCES {
            references.drain(..references.len() - MAX_REFERENCES);
        }
        if references.is_empty()
            && let Some(id) = first("In-Reply-To").and_then(|v| MessageIds::new(&v).next())
        {
            references.push(id);
        }
        SortKeys {
            // Dovecot takes a Date of exactly the epoch for a missing one.
            sent: parsed.date(raw).map(|(unix, _)| unix).filter(|&t| t != 0),
            subject,
            reply_or_forward,
            from: casemap(&mailbox(from.as_ref())),
            to: casemap(&mailbox(to.as_ref())),
            cc: casemap(&mailbox(cc.as_ref())),
            display_from: casemap(&display_name(from.as_ref())),
            display_to: casemap(&display_name(to.as_ref())),
            message_id,
            references,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut flags = 0;
        for (set, bit) in [
            (self.sent.is_some(), HAS_SENT),
            (self.subject.is_some(), HAS_SUBJECT),
            (self.reply_or_forward, REPLY_OR_FORWARD),
            (self.message_id.is_some(), HAS_MESSAGE_ID),
        ] {
            if set {
                flags |= bit;
            }
        }
        let mut out = vec![VERSION, flags];
        if let Some(t) = self.sent {
            out.extend_from_slice(&t.to_le_bytes());
        }
        let mut put = |s: &str| {
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        };
        if let Some(s) = &self.subject {
            put(s);
        }
        for s in [
            &self.from,
            &self.to,
            &self.cc,
            &self.display_from,
            &self.display_to,
        ] {
            put(s);
        }
        if let Some(id) = &self.message_id {
            put(id);
        }
        let refs = &self.references[..self.references.len().min(MAX_REFERENCES)];
        out.extend_from_slice(&(refs.len() as u16).to_le_bytes());
        for r in refs {
            out.extend_from_slice(&(r.len() as u32).to_le_bytes());
            out.extend_from_slice(r.as_bytes());
        }
        out
    }

    /// `None` for anything that is not exactly what [`encode`](Self::encode) writes.
    #[cfg(test)]
    pub fn decode(bytes: &[u8]) -> Option<SortKeys> {
        Self::decode_only(bytes, Want::ALL)
    }

    /// [`decode`](Self::decode), keeping only the strings `want` names (the others are
    /// checked, and left empty): a SORT by one key allocates nothing for the rest.
    pub fn decode_only(bytes: &[u8], want: Want) -> Option<SortKeys> {
        let mut r = Reader(bytes);
        if r.take(1)? != [VERSION] {
            return None;
        }
        let flags = *r.take(1)?.first()?;
        if flags & !KNOWN_FLAGS != 0 {
            return None;
        }
        let sent = match flags & HAS_SENT {
            0 => None,
            _ => Some(i64::from_le_bytes(r.take(8)?.try_into().ok()?)),
        };
        let subject = match flags & HAS_SUBJECT {
            0 => None,
            _ => Some(r.string(want.subject)?),
        };
        let from = r.string(want.from)?;
        let to = r.string(want.to)?;
        let cc = r.string(want.cc)?;
        let display_from = r.string(want.display_from)?;
        let display_to = r.string(want.display_to)?;
        let message_id = match flags & HAS_MESSAGE_ID {
            0 => None,
            _ => Some(r.string(want.ids)?),
        };
        let count = u16::from_le_bytes(r.take(2)?.try_into().ok()?) as usize;
        if count > MAX_REFERENCES {
            return None;
        }
        let mut references = Vec::with_capacity(if want.ids { count } else { 0 });
        for _ in 0..count {
            let id = r.string(want.ids)?;
            if want.ids {
                references.push(id);
            }
        }
        if !r.0.is_empty() {
            return None;
        }
        Some(SortKeys {
            sent,
            subject,
            reply_or_forward: flags & REPLY_OR_FORWARD != 0,
            from,
            to,
            cc,
            display_from,
            display_to,
            message_id,
            references,
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = tail;
        Some(head)
    }

    /// The next string: a copy if `keep`, else only checked (and empty).
    fn string(&mut self, keep: bool) -> Option<String> {
        let len = u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize;
        let s = std::str::from_utf8(self.take(len)?).ok()?;
        Some(if keep { s.to_owned() } else { String::new() })
    }
}

/// Which strings of [`SortKeys`] a command compares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Want {
    pub subject: bool,
    pub from: bool,
    pub to: bool,
    pub cc: bool,
    pub display_from: bool,
    pub display_to: bool,
    /// Message-ID and references.
    pub ids: bool,
}

#[cfg(test)]
impl Want {
    pub const ALL: Want = Want {
        subject: true,
        from: true,
        to: true,
        cc: true,
        display_from: true,
        display_to: true,
        ids: true,
    };
}

/// Case mapping for comparisons: ASCII upper case (i;ascii-casemap); beyond ASCII what Dovecot
/// compares, each character's simple titlecase mapping and then one level of its
/// decomposition (see `decompose.rs`).
pub(crate) fn casemap(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_uppercase();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c.to_ascii_uppercase());
        } else {
            push_decomposed(&mut out, titlecase(c));
        }
    }
    out
}

fn lossy(b: &Option<Vec<u8>>) -> Option<String> {
    b.as_ref().map(|v| String::from_utf8_lossy(v).into_owned())
}

/// addr-mailbox of an address (RFC 5256 3: FROM, TO, CC), empty when there is none.
fn mailbox(addr: Option<&Address>) -> String {
    addr.and_then(|a| lossy(&a.mailbox)).unwrap_or_default()
}

/// RFC 5957 3: the display name, decoded; without one, the address as `mailbox@host`.
fn display_name(addr: Option<&Address>) -> String {
    let Some(a) = addr else {
        return String::new();
    };
    if let Some(name) = &a.name {
        let decoded = decode_header(name);
        if !decoded.is_empty() {
            return decoded;
        }
    }
    match (lossy(&a.mailbox), lossy(&a.host)) {
        (Some(m), Some(h)) => format!("{m}@{h}"),
        (Some(m), None) => m,
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(raw: &str) -> SortKeys {
        let raw = raw.replace('\n', "\r\n");
        SortKeys::derive(raw.as_bytes(), &ParsedMessage::parse(raw.as_bytes()))
    }

    #[test]
    fn derives_what_sort_and_thread_compare() {
        let k = keys(
            "From: =?UTF-8?Q?J=C3=BCrgen?= <jürgen@example.de>, b@example.com\n\
             To: undisclosed-recipients:;\n\
             Cc: <Carol@Example.COM>\n\
             Subject: Re: [list] =?ISO-8859-1?Q?Gr=FC=DFe?= (fwd)\n\
             Date: Mon, 15 Mar 2021 23:30:00 -0200\n\
             Message-ID: <one@example.com> <two@example.com>\n\
             References: <a@x> junk <b@x>\n\
             In-Reply-To: <ignored@x>\n\
             \n\
             body\n",
        );
        assert_eq!(k.sent, Some(1_615_858_200));
        assert_eq!(k.subject.as_deref(), Some("GRU\u{308}ßE"));
        assert!(k.reply_or_forward);
        assert_eq!(k.from, "JU\u{308}RGEN");
        assert_eq!(k.display_from, "JU\u{308}RGEN");
        assert_eq!(k.to, "UNDISCLOSED-RECIPIENTS");
        assert_eq!(k.display_to, "UNDISCLOSED-RECIPIENTS");
        assert_eq!(k.cc, "CAROL");
        assert_eq!(k.message_id.as_deref(), Some("one@example.com"));
        assert_eq!(k.references, ["a@x", "b@x"]);

        let k = keys("Cc: <x@y>\nIn-Reply-To: <p@x> <q@x>\nDate: junk\n\nbody\n");
        assert_eq!(k.sent, None);
        assert_eq!(k.subject, None);
        assert_eq!(k.from, "");
        assert_eq!(k.display_from, "");
        assert_eq!(k.display_to, "");
        assert_eq!(k.references, ["p@x"]);
        // No display name: the address stands in for it (RFC 5957 3).
        let k = keys("From: bob@Example.org\nTo: \"\" <a@b>\nSubject:\n\nx\n");
        assert_eq!(k.display_from, "BOB@EXAMPLE.ORG");
        assert_eq!(k.display_to, "A@B");
        assert_eq!(k.subject.as_deref(), Some(""));
    }

    #[test]
    fn references_are_bounded() {
        let ids: String = (0..500).map(|i| format!("<{i}@x> ")).collect();
        let k = keys(&format!("References: {ids}\n\nx\n"));
        assert_eq!(k.references.len(), MAX_REFERENCES);
        assert_eq!(k.references.last().map(String::as_str), Some("499@x"));
    }

    #[test]
    fn round_trips_and_rejects_damage() {
        for k in [
            SortKeys::default(),
            keys(
                "From: A <a@b>\nSubject: Fwd: hi\nDate: Tue, 1 Jan 2019 00:00:00 +0000\n\
                 Message-ID: <m@x>\nReferences: <r1@x> <r2@x>\n\nx\n",
            ),
        ] {
            let bytes = k.encode();
            assert_eq!(SortKeys::decode(&bytes), Some(k.clone()));
            let only_subject = Want {
                subject: true,
                ..Want::default()
            };
            let partial = SortKeys::decode_only(&bytes, only_subject).unwrap();
            assert_eq!((partial.subject, partial.sent), (k.subject.clone(), k.sent));
            assert!(partial.from.is_empty() && partial.references.is_empty());
            for len in 0..bytes.len() {
                assert_eq!(SortKeys::decode(&bytes[..len]), None, "cut at {len}");
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(SortKeys::decode(&longer), None);
            let mut other = bytes.clone();
            other[0] = 9;
            assert_eq!(SortKeys::decode(&other), None);
            let mut flags = bytes;
            flags[1] |= 0x80;
            assert_eq!(SortKeys::decode(&flags), None);
        }
    }
}
