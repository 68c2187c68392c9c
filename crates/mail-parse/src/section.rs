//! BODY[section] (RFC 3501 6.4.5): finding a part by number and cutting out its bytes.

use std::borrow::Cow;

use crate::header::fields;
use crate::{Part, PartChildren, SectionSpec};

/// The part a section number names (RFC 3501 6.4.5), as Dovecot finds it: in a multipart, N is
/// its Nth part; a non-multipart part has only part 1, itself, and nothing below it unless it is
/// message/rfc822, whose following numbers apply to the embedded message.
pub(crate) fn find<'p>(root: &'p Part, path: &[u32]) -> Option<&'p Part> {
    let mut part = root;
    for (i, &n) in path.iter().enumerate() {
        let more = i + 1 < path.len();
        part = match &part.children {
            PartChildren::Multipart(children) => children.get((n as usize).checked_sub(1)?)?,
            _ if n != 1 => return None,
            PartChildren::Message(_) => part,
            PartChildren::None if more => return None,
            PartChildren::None => part,
        };
        if let (true, PartChildren::Message(child)) = (more, &part.children) {
            part = child;
        }
    }
    Some(part)
}

pub(crate) fn section<'r>(
    root: &Part,
    raw: &'r [u8],
    path: &[u32],
    spec: SectionSpec<'_>,
) -> Option<Cow<'r, [u8]>> {
    let part = find(root, path)?;
    let slice = |r: std::ops::Range<usize>| raw.get(r).map(Cow::Borrowed);
    // HEADER, TEXT and HEADER.FIELDS of a part number mean those of the message/rfc822 it is.
    let message = || -> Option<&Part> {
        if path.is_empty() {
            return Some(part);
        }
        match &part.children {
            PartChildren::Message(child) => Some(child),
            _ => None,
        }
    };
    match spec {
        SectionSpec::Full if path.is_empty() => Some(Cow::Borrowed(raw)),
        SectionSpec::Full => slice(part.body.clone()),
        SectionSpec::Mime => slice(part.header.clone()),
        SectionSpec::Header => slice(message()?.header.clone()),
        SectionSpec::Text => slice(message()?.body.clone()),
        SectionSpec::HeaderFields(names) => {
            Some(Cow::Owned(header_fields(raw, message()?, names, true)))
        }
        SectionSpec::HeaderFieldsNot(names) => {
            Some(Cow::Owned(header_fields(raw, message()?, names, false)))
        }
    }
}

/// The fields whose names are (or with `keep == false`, are not) in `names`, compared without
/// regard to case, in message order with their folding, then the blank line that ends a header.
///
/// As in Dovecot: HEADER.FIELDS always ends with that blank line (and a last field cut short
/// by the end of the message gets its line break), while HEADER.FIELDS.NOT passes the lines on
/// as they are, the blank line only if the header had one.
fn header_fields(raw: &[u8], part: &Part, names: &[String], keep: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let header = raw.get(part.header.clone()).unwrap_or_default();
    let has_blank_line = header == b"\n"
        || header == b"\r\n"
        || header.ends_with(b"\n\n")
        || header.ends_with(b"\n\r\n");
    for f in fields(raw, part.header.clone()) {
        let listed = names
            .iter()
            .any(|n| f.name.eq_ignore_ascii_case(n.as_bytes()));
        if listed == keep {
            let bytes = raw.get(f.lines.clone()).unwrap_or_default();
            out.extend_from_slice(bytes);
            if keep && !bytes.ends_with(b"\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    if keep || has_blank_line {
        out.extend_from_slice(b"\r\n");
    }
    out
}
