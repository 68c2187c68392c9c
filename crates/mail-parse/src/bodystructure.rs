//! BODYSTRUCTURE data (RFC 3501 7.4.2) from the part tree, as Dovecot 2.3's
//! `imap-bodystructure.c` writes it: media types as written in the message (case kept),
//! `text/plain; charset=us-ascii` and `7bit` by default (RFC 2045 5.2, 6.1), a `charset` parameter
//! appended to text parts that lack one, message/rfc822 always spelled in lower case, and an
//! empty text/plain part standing in for the parts of a multipart that has none (the grammar
//! needs at least one).

use crate::envelope::envelope;
use crate::header::fields;
use crate::mime::{ContentData, MediaKind, classify, content_data, is_mime};
use crate::{BodyStructure, Disposition, Extension, Part, PartChildren, SinglePart, crlf_size};

/// The structure of `part`; `mime_child` when it is a part of a multipart, `in_digest` when that
/// multipart is multipart/digest. (Recursion depth is bounded by the tree's nesting limit.)
pub(crate) fn body_structure(
    raw: &[u8],
    part: &Part,
    mime_child: bool,
    in_digest: bool,
) -> BodyStructure {
    let f = fields(raw, part.header.clone());
    let d = content_data(&f, is_mime(&f, mime_child));
    let kind = classify(&f, mime_child, in_digest).kind;
    let body = raw.get(part.body.clone()).unwrap_or_default();
    match &part.children {
        PartChildren::Multipart(children) => {
            let digest = kind == MediaKind::Digest;
            let parts = if children.is_empty() {
                vec![empty_text_part()]
            } else {
                children
                    .iter()
                    .map(|c| body_structure(raw, c, true, digest))
                    .collect()
            };
            let extension = extension(&d);
            BodyStructure::Multipart {
                parts,
                subtype: d.subtype,
                params: d.params,
                extension,
            }
        }
        PartChildren::Message(child) => {
            let child_fields = fields(raw, child.header.clone());
            let specific = SinglePart::Message {
                envelope: Box::new(envelope(&child_fields)),
                body: Box::new(body_structure(raw, child, false, false)),
                lines: line_count(body),
            };
            single(
                b"message".to_vec(),
                b"rfc822".to_vec(),
                false,
                d,
                body,
                specific,
            )
        }
        PartChildren::None => {
            let unparsed = matches!(
                kind,
                MediaKind::Multipart | MediaKind::Digest | MediaKind::Message
            );
            let (media_type, subtype, text) = match &d.media_type {
                _ if unparsed => (b"application".to_vec(), b"octet-stream".to_vec(), false),
                None => (b"text".to_vec(), b"plain".to_vec(), true),
                Some(t) => (
                    t.clone(),
                    d.subtype.clone(),
                    t.eq_ignore_ascii_case(b"text"),
                ),
            };
            let specific = if text {
                SinglePart::Text {
                    lines: line_count(body),
                }
            } else {
                SinglePart::Basic
            };
            single(media_type, subtype, text, d, body, specific)
        }
    }
}

fn single(
    media_type: Vec<u8>,
    subtype: Vec<u8>,
    text: bool,
    d: ContentData,
    body: &[u8],
    specific: SinglePart,
) -> BodyStructure {
    let extension = extension(&d);
    let mut params = d.params;
    if text
        && !params
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(b"charset"))
    {
        params.push((b"charset".to_vec(), b"us-ascii".to_vec()));
    }
    BodyStructure::Single {
        media_type,
        subtype,
        params,
        id: d.id,
        description: d.description,
        encoding: d.encoding.unwrap_or_else(|| b"7bit".to_vec()),
        size: crlf_size(body),
        specific,
        md5: d.md5,
        extension,
    }
}

fn extension(d: &ContentData) -> Extension {
    Extension {
        disposition: d.disposition.clone().map(|kind| Disposition {
            kind,
            params: d.disposition_params.clone(),
        }),
        language: d.language.clone(),
        location: d.location.clone(),
    }
}

fn empty_text_part() -> BodyStructure {
    BodyStructure::Single {
        media_type: b"text".to_vec(),
        subtype: b"plain".to_vec(),
        params: vec![(b"charset".to_vec(), b"us-ascii".to_vec())],
        id: None,
        description: None,
        encoding: b"7bit".to_vec(),
        size: 0,
        specific: SinglePart::Text { lines: 0 },
        md5: None,
        extension: Extension::default(),
    }
}

/// Lines as IMAP counts them: line breaks in the body (a last line without one does not count).
pub(crate) fn line_count(body: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', body).count() as u64
}
