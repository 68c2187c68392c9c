//! The octets of `BODY[section]<partial>` (RFC 3501 6.4.5), shared by FETCH and by CATENATE's
//! URL parts, which RFC 4469 3 defines "as if the literal returned in a FETCH BODY response
//! were put in place of the message part specifier".

use std::borrow::Cow;
use std::ops::Range;

use imap_proto::{Section, SectionText};
use mail_parse::{ParsedMessage, SectionSpec};

/// What `section` asks of the MIME parser.
pub(crate) fn spec(section: &Section) -> SectionSpec<'_> {
    match &section.text {
        None => SectionSpec::Full,
        Some(SectionText::Header) => SectionSpec::Header,
        Some(SectionText::HeaderFields(f)) => SectionSpec::HeaderFields(f),
        Some(SectionText::HeaderFieldsNot(f)) => SectionSpec::HeaderFieldsNot(f),
        Some(SectionText::Text) => SectionSpec::Text,
        Some(SectionText::Mime) => SectionSpec::Mime,
    }
}

/// The section's octets; `None` when the message has no such part.
pub(crate) fn bytes<'r>(
    raw: &'r [u8],
    parsed: &ParsedMessage,
    section: &Section,
) -> Option<Cow<'r, [u8]>> {
    parsed.section(raw, &section.part, spec(section))
}

/// The octets `<origin.length>` selects from `len` of them (RFC 3501 6.4.5): empty when the
/// origin lies beyond the end, cut short at the end; no length means up to the end (RFC 5092
/// 11 `partial-range`).
pub(crate) fn partial_range(len: usize, origin: u32, length: Option<u32>) -> Range<usize> {
    let from = usize::try_from(origin).unwrap_or(usize::MAX).min(len);
    let to = match length {
        Some(l) => from
            .saturating_add(usize::try_from(l).unwrap_or(usize::MAX))
            .min(len),
        None => len,
    };
    from..to
}

#[cfg(test)]
mod tests {
    use super::partial_range;

    #[test]
    fn partial_ranges() {
        assert_eq!(partial_range(10, 0, Some(4)), 0..4);
        assert_eq!(partial_range(10, 8, Some(4)), 8..10);
        assert_eq!(partial_range(10, 11, Some(4)), 10..10);
        assert_eq!(partial_range(10, 3, None), 3..10);
        assert_eq!(partial_range(10, u32::MAX, Some(u32::MAX)), 10..10);
    }
}
