//! ENVELOPE and BODYSTRUCTURE/BODY in IMAP syntax (RFC 3501 7.4.2, `envelope` and `body` in 9).
//!
//! `mail-parse` computes the data; this module is the only place that knows how it is spelled on
//! the wire. Strings are written as `nstring`s (quoted when 7-bit and short, literal otherwise).

use imap_proto::response::{write_nstring, write_string};
use mail_parse::{
    Address, BodyStructure, Disposition, Envelope, Extension, ParsedMessage, SinglePart,
};

/// A message's ENVELOPE as FETCH sends it and the store's cache keeps it (`CacheField::Envelope`),
/// which SEARCH reads as well (`cmd/search/envelope.rs`).
pub fn envelope_text(raw: &[u8], parsed: &ParsedMessage) -> Vec<u8> {
    let mut out = Vec::new();
    write_envelope(&mut out, &parsed.envelope(raw));
    out
}

/// `envelope = "(" env-date SP env-subject SP env-from SP env-sender SP env-reply-to SP env-to SP
/// env-cc SP env-bcc SP env-in-reply-to SP env-message-id ")"`
pub fn write_envelope(out: &mut Vec<u8>, env: &Envelope) {
    out.push(b'(');
    write_nstring(out, env.date.as_deref());
    out.push(b' ');
    write_nstring(out, env.subject.as_deref());
    for list in [
        &env.from,
        &env.sender,
        &env.reply_to,
        &env.to,
        &env.cc,
        &env.bcc,
    ] {
        out.push(b' ');
        write_address_list(out, list);
    }
    out.push(b' ');
    write_nstring(out, env.in_reply_to.as_deref());
    out.push(b' ');
    write_nstring(out, env.message_id.as_deref());
    out.push(b')');
}

fn write_address_list(out: &mut Vec<u8>, list: &[Address]) {
    if list.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for a in list {
        out.push(b'(');
        write_nstring(out, a.name.as_deref());
        out.push(b' ');
        write_nstring(out, a.adl.as_deref());
        out.push(b' ');
        write_nstring(out, a.mailbox.as_deref());
        out.push(b' ');
        write_nstring(out, a.host.as_deref());
        out.push(b')');
    }
    out.push(b')');
}

/// `body-fld-param`: `("name" "value" ...)` or NIL.
fn write_params(out: &mut Vec<u8>, params: &[(Vec<u8>, Vec<u8>)]) {
    if params.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        write_string(out, k);
        out.push(b' ');
        write_string(out, v);
    }
    out.push(b')');
}

fn write_disposition(out: &mut Vec<u8>, d: Option<&Disposition>) {
    match d {
        None => out.extend_from_slice(b"NIL"),
        Some(d) => {
            out.push(b'(');
            write_string(out, &d.kind);
            out.push(b' ');
            write_params(out, &d.params);
            out.push(b')');
        }
    }
}

/// `body-fld-dsp SP body-fld-lang SP body-fld-loc`
fn write_extension_tail(out: &mut Vec<u8>, ext: &Extension) {
    write_disposition(out, ext.disposition.as_ref());
    out.push(b' ');
    // Always a list, even of one: RFC 3501 allows a bare string too, but Dovecot sends a list
    // and clients that cached its answers compare them.
    match &ext.language {
        None => out.extend_from_slice(b"NIL"),
        Some(langs) if langs.is_empty() => out.extend_from_slice(b"NIL"),
        Some(langs) => {
            out.push(b'(');
            for (i, l) in langs.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                write_string(out, l);
            }
            out.push(b')');
        }
    }
    out.push(b' ');
    write_nstring(out, ext.location.as_deref());
}

/// `body`: with `extensible` the BODYSTRUCTURE form (extension data included), without it the
/// BODY form (RFC 3501 6.4.5).
pub fn write_body_structure(out: &mut Vec<u8>, body: &BodyStructure, extensible: bool) {
    out.push(b'(');
    match body {
        BodyStructure::Multipart {
            parts,
            subtype,
            params,
            extension,
        } => {
            for part in parts {
                write_body_structure(out, part, extensible);
            }
            out.push(b' ');
            write_string(out, subtype);
            if extensible {
                out.push(b' ');
                write_params(out, params);
                out.push(b' ');
                write_extension_tail(out, extension);
            }
        }
        BodyStructure::Single {
            media_type,
            subtype,
            params,
            id,
            description,
            encoding,
            size,
            specific,
            md5,
            extension,
        } => {
            write_string(out, media_type);
            out.push(b' ');
            write_string(out, subtype);
            out.push(b' ');
            write_params(out, params);
            out.push(b' ');
            write_nstring(out, id.as_deref());
            out.push(b' ');
            write_nstring(out, description.as_deref());
            out.push(b' ');
            write_string(out, encoding);
            out.extend_from_slice(format!(" {size}").as_bytes());
            match specific {
                SinglePart::Basic => {}
                SinglePart::Text { lines } => out.extend_from_slice(format!(" {lines}").as_bytes()),
                SinglePart::Message {
                    envelope,
                    body,
                    lines,
                } => {
                    out.push(b' ');
                    write_envelope(out, envelope);
                    out.push(b' ');
                    write_body_structure(out, body, extensible);
                    out.extend_from_slice(format!(" {lines}").as_bytes());
                }
            }
            if extensible {
                out.push(b' ');
                write_nstring(out, md5.as_deref());
                out.push(b' ');
                write_extension_tail(out, extension);
            }
        }
    }
    out.push(b')');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_part(extensible_data: Extension) -> BodyStructure {
        BodyStructure::Single {
            media_type: b"text".to_vec(),
            subtype: b"plain".to_vec(),
            params: vec![(b"charset".to_vec(), b"us-ascii".to_vec())],
            id: None,
            description: None,
            encoding: b"7bit".to_vec(),
            size: 12,
            specific: SinglePart::Text { lines: 1 },
            md5: None,
            extension: extensible_data,
        }
    }

    #[test]
    fn single_text_part_both_forms() {
        let body = text_part(Extension::default());
        let mut out = Vec::new();
        write_body_structure(&mut out, &body, true);
        assert_eq!(
            String::from_utf8_lossy(&out),
            r#"("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 12 1 NIL NIL NIL NIL)"#
        );
        out.clear();
        write_body_structure(&mut out, &body, false);
        assert_eq!(
            String::from_utf8_lossy(&out),
            r#"("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 12 1)"#
        );
    }

    #[test]
    fn multipart_with_disposition_and_language() {
        let attachment = text_part(Extension {
            disposition: Some(Disposition {
                kind: b"attachment".to_vec(),
                params: vec![(b"filename".to_vec(), b"a.txt".to_vec())],
            }),
            language: Some(vec![b"en".to_vec(), b"de".to_vec()]),
            location: None,
        });
        let body = BodyStructure::Multipart {
            parts: vec![text_part(Extension::default()), attachment],
            subtype: b"mixed".to_vec(),
            params: vec![(b"boundary".to_vec(), b"xyz".to_vec())],
            extension: Extension::default(),
        };
        let mut out = Vec::new();
        write_body_structure(&mut out, &body, true);
        assert_eq!(
            String::from_utf8_lossy(&out),
            concat!(
                r#"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 12 1 NIL NIL NIL NIL)"#,
                r#"("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 12 1 NIL ("attachment" ("filename" "a.txt")) ("en" "de") NIL)"#,
                r#" "mixed" ("boundary" "xyz") NIL NIL NIL)"#
            )
        );
        out.clear();
        write_body_structure(&mut out, &body, false);
        assert!(String::from_utf8_lossy(&out).ends_with(r#" "mixed")"#));
    }

    #[test]
    fn one_language_is_still_a_list() {
        let body = text_part(Extension {
            disposition: None,
            language: Some(vec![b"en".to_vec()]),
            location: None,
        });
        let mut out = Vec::new();
        write_body_structure(&mut out, &body, true);
        assert!(String::from_utf8_lossy(&out).ends_with(r#" NIL NIL ("en") NIL)"#));
    }

    #[test]
    fn envelope_with_group_and_missing_fields() {
        let env = Envelope {
            date: Some(b"Mon, 7 Feb 1994 21:52:25 -0800".to_vec()),
            subject: Some("caf\u{e9}".as_bytes().to_vec()),
            from: vec![Address {
                name: Some(b"Fred Foobar".to_vec()),
                adl: None,
                mailbox: Some(b"foobar".to_vec()),
                host: Some(b"Blurdybloop.example".to_vec()),
            }],
            to: vec![
                Address {
                    mailbox: Some(b"undisclosed".to_vec()),
                    ..Address::default()
                },
                Address::default(),
            ],
            ..Envelope::default()
        };
        let mut out = Vec::new();
        write_envelope(&mut out, &env);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "(\"Mon, 7 Feb 1994 21:52:25 -0800\" {5}\r\ncaf\u{e9} ((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) NIL NIL ((NIL NIL \"undisclosed\" NIL)(NIL NIL NIL NIL)) NIL NIL NIL NIL)"
        );
    }
}
