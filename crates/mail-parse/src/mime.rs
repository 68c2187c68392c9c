//! The MIME header fields of one part (RFC 2045 5-8, RFC 2183, RFC 3282, RFC 2557 4, RFC 1864),
//! read as Dovecot's `message-part-data.c` reads them for BODYSTRUCTURE.

use crate::header::{Field, nolf};
use crate::rfc822::{Lexer, parse_params};

/// What the part tree needs to know of a part's Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MediaKind {
    Text,
    Multipart,
    Digest,
    Message,
    Other,
}

pub(crate) struct Classified {
    pub kind: MediaKind,
    pub boundary: Option<Vec<u8>>,
}

/// Whether the part's Content-* fields count: always in a multipart (RFC 2045 4 applies to the
/// whole message), and at the top of a message or embedded message only with MIME-Version —
/// or, as Dovecot accepts from broken mailers, with a Content-Type.
pub(crate) fn is_mime(fields: &[Field<'_>], mime_child: bool) -> bool {
    mime_child
        || fields
            .iter()
            .any(|f| f.is("MIME-Version") || f.is("Content-Type"))
}

/// The kind of part and its boundary, from the first Content-Type field. Without one a part is
/// text/plain, or message/rfc822 directly inside multipart/digest (RFC 2046 5.1.5).
pub(crate) fn classify(fields: &[Field<'_>], mime_child: bool, in_digest: bool) -> Classified {
    let ct = fields.iter().find(|f| f.is("Content-Type"));
    let Some(ct) = ct.filter(|_| is_mime(fields, mime_child)) else {
        let kind = if in_digest {
            MediaKind::Message
        } else {
            MediaKind::Text
        };
        return Classified {
            kind,
            boundary: None,
        };
    };
    let value = ct.value();
    let mut lx = Lexer::new(&value);
    lx.skip_lwsp();
    let mut t = Vec::new();
    let ret = lx.parse_content_type(&mut t);
    let kind = if t.eq_ignore_ascii_case(b"message/rfc822") {
        MediaKind::Message
    } else if t.len() >= 4
        && t[..4].eq_ignore_ascii_case(b"text")
        && matches!(t.get(4), None | Some(b'/'))
    {
        MediaKind::Text
    } else if t.len() >= 10 && t[..10].eq_ignore_ascii_case(b"multipart/") {
        if t[10..].eq_ignore_ascii_case(b"digest") {
            MediaKind::Digest
        } else {
            MediaKind::Multipart
        }
    } else {
        MediaKind::Other
    };
    let boundary = if ret >= 0 && matches!(kind, MediaKind::Multipart | MediaKind::Digest) {
        parse_params(&mut lx)
            .into_iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(b"boundary"))
            .map(|(_, v)| v)
    } else {
        None
    };
    Classified { kind, boundary }
}

/// The BODYSTRUCTURE fields of a part: each the first occurrence, values as written (strings are
/// unfolded by the caller's `nolf`).
#[derive(Debug, Default, Clone)]
pub(crate) struct ContentData {
    /// `None` without Content-Type; a broken one gives what could be read, possibly empty.
    pub media_type: Option<Vec<u8>>,
    pub subtype: Vec<u8>,
    pub params: Vec<(Vec<u8>, Vec<u8>)>,
    pub encoding: Option<Vec<u8>>,
    pub id: Option<Vec<u8>>,
    pub description: Option<Vec<u8>>,
    pub md5: Option<Vec<u8>>,
    pub disposition: Option<Vec<u8>>,
    pub disposition_params: Vec<(Vec<u8>, Vec<u8>)>,
    pub language: Option<Vec<Vec<u8>>>,
    pub location: Option<Vec<u8>>,
}

pub(crate) fn content_data(fields: &[Field<'_>], mime: bool) -> ContentData {
    let mut d = ContentData::default();
    if !mime {
        return d;
    }
    for f in fields {
        let Some(rest) = f
            .name
            .get(..8)
            .filter(|p| p.eq_ignore_ascii_case(b"Content-"))
            .map(|_| &f.name[8..])
        else {
            continue;
        };
        let is = |n: &str| rest.eq_ignore_ascii_case(n.as_bytes());
        if is("ID") && d.id.is_none() {
            d.id = Some(nolf(f.value()));
        } else if is("MD5") && d.md5.is_none() {
            d.md5 = Some(nolf(f.value()));
        } else if is("Type") && d.media_type.is_none() {
            content_type(&mut d, &f.value());
        } else if is("Transfer-Encoding") && d.encoding.is_none() {
            // RFC 2045 6.1: one token; anything after it makes the field unusable.
            let v = f.value();
            let mut lx = Lexer::new(&v);
            lx.skip_lwsp();
            let mut t = Vec::new();
            if lx.parse_mime_token(&mut t) >= 0 && lx.skip_lwsp() == 0 && !t.is_empty() {
                d.encoding = Some(t);
            }
        } else if is("Language") && d.language.is_none() {
            d.language = language(&f.value());
        } else if is("Location") && d.location.is_none() {
            d.location = Some(nolf(f.value()));
        } else if is("Description") && d.description.is_none() {
            d.description = Some(nolf(f.value()));
        } else if is("Disposition") && d.disposition_params.is_empty() {
            // Dovecot lets a later Content-Disposition replace one without parameters.
            let v = f.value();
            let mut lx = Lexer::new(&v);
            lx.skip_lwsp();
            let mut t = Vec::new();
            if lx.parse_mime_token(&mut t) >= 0 {
                d.disposition = Some(t);
                d.disposition_params = parse_params(&mut lx);
            }
        }
    }
    d
}

fn content_type(d: &mut ContentData, value: &[u8]) {
    let mut lx = Lexer::new(value);
    lx.skip_lwsp();
    let mut t = Vec::new();
    let ret = lx.parse_content_type(&mut t);
    match t.iter().position(|&c| c == b'/') {
        Some(slash) => {
            d.subtype = t[slash + 1..].to_vec();
            t.truncate(slash);
        }
        None => d.subtype = Vec::new(),
    }
    d.media_type = Some(t);
    if ret >= 0 {
        d.params = parse_params(&mut lx);
    }
}

/// `Content-Language` (RFC 3282): a comma-separated list of atoms; `None` when there is none.
fn language(value: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut lx = Lexer::new(value);
    let mut langs = Vec::new();
    lx.skip_lwsp();
    loop {
        let mut t = Vec::new();
        if lx.parse_atom(&mut t) < 0 {
            break;
        }
        langs.push(t);
        if lx.at_end() || lx.peek() != b',' {
            break;
        }
        lx.pos += 1;
        lx.skip_lwsp();
    }
    (!langs.is_empty()).then_some(langs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::fields;

    fn data(h: &str) -> ContentData {
        content_data(&fields(h.as_bytes(), 0..h.len()), true)
    }

    #[test]
    fn classify_kinds() {
        let c = |h: &str, digest| {
            let f = fields(h.as_bytes(), 0..h.len());
            let r = classify(&f, true, digest);
            (
                r.kind,
                r.boundary.map(|b| String::from_utf8_lossy(&b).into_owned()),
            )
        };
        assert_eq!(
            c("Content-Type: Multipart/Mixed; Boundary=\"a b\"\n", false),
            (MediaKind::Multipart, Some("a b".into()))
        );
        assert_eq!(
            c("Content-Type: multipart/digest; boundary=x\n", false),
            (MediaKind::Digest, Some("x".into()))
        );
        assert_eq!(
            c("Content-Type: MESSAGE/RFC822\n", false),
            (MediaKind::Message, None)
        );
        assert_eq!(c("Content-Type: text\n", false), (MediaKind::Text, None));
        assert_eq!(
            c("Content-Type: texts/plain\n", false),
            (MediaKind::Other, None)
        );
        assert_eq!(c("Subject: x\n", true), (MediaKind::Message, None));
        assert_eq!(c("Subject: x\n", false), (MediaKind::Text, None));
        assert_eq!(
            c("Content-Type: multipart/mixed garbage; boundary=x\n", false),
            (MediaKind::Other, None)
        );
    }

    #[test]
    fn fields_first_wins_and_quirks() {
        let d = data(concat!(
            "Content-Type: TEXT/html; charset=utf-8\n",
            "Content-Type: image/png\n",
            "Content-Transfer-Encoding: base64 junk\n",
            "Content-Transfer-Encoding: QUOTED-PRINTABLE\n",
            "Content-Language: en-US, (comment) de\n",
            "Content-Disposition: inline\n",
            "Content-Disposition: attachment; filename=a.txt\n",
            "Content-ID: <id@x>\n",
            "Content-Description: folded\n two\n",
        ));
        assert_eq!(d.media_type.as_deref(), Some(&b"TEXT"[..]));
        assert_eq!(d.subtype, b"html");
        assert_eq!(d.params, vec![(b"charset".to_vec(), b"utf-8".to_vec())]);
        assert_eq!(d.encoding.as_deref(), Some(&b"QUOTED-PRINTABLE"[..]));
        assert_eq!(d.language, Some(vec![b"en-US".to_vec(), b"de".to_vec()]));
        assert_eq!(d.disposition.as_deref(), Some(&b"attachment"[..]));
        assert_eq!(d.id.as_deref(), Some(&b"<id@x>"[..]));
        assert_eq!(d.description.as_deref(), Some(&b"folded two"[..]));
    }

    #[test]
    fn broken_content_type_is_kept_as_read() {
        let d = data("Content-Type: foo\n");
        assert_eq!(
            (d.media_type.as_deref(), d.subtype.as_slice()),
            (Some(&b"foo"[..]), &b""[..])
        );
        let d = data("Content-Type: ;x=y\n");
        assert_eq!(
            (d.media_type.as_deref(), d.params.len()),
            (Some(&b""[..]), 0)
        );
        assert!(
            content_data(&fields(b"Content-Type: a/b\n", 0..18), false)
                .media_type
                .is_none()
        );
    }
}
