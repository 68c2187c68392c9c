//! The public API on small messages: part tree, sections (RFC 3501 6.4.5), decoded header
//! values, Date and search text. (ENVELOPE and BODYSTRUCTURE are covered, against Dovecot, by
//! the corpus test in imap-session.)

use mail_parse::{BodyStructure, ParsedMessage, PartChildren, SectionSpec, SinglePart, crlf_size};

const MIXED: &[u8] = b"From: a@example.org\r\n\
Subject: =?utf-8?q?caf=C3=A9?= and more\r\n\
Date: Tue, 1 Aug 2023 10:00:00 +0200\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\
\r\n\
preamble\r\n\
--b\r\n\
Content-Type: text/plain; charset=iso-8859-1\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
caf=E9 =\r\n\
cr=E8me\r\n\
--b\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
Subject: inner\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
aW5uZXIgdGV4dA==\r\n\
--b\r\n\
Content-Type: image/png\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
iVBORw0KGgo=\r\n\
--b--\r\n\
epilogue\r\n";

fn text(c: Option<std::borrow::Cow<'_, [u8]>>) -> Option<String> {
    c.map(|c| String::from_utf8_lossy(&c).into_owned())
}

#[test]
fn tree_ranges() {
    let p = ParsedMessage::parse(MIXED);
    let PartChildren::Multipart(parts) = &p.root.children else {
        panic!("not multipart")
    };
    assert_eq!(parts.len(), 3);
    assert_eq!(&MIXED[parts[0].body.clone()], b"caf=E9 =\r\ncr=E8me");
    assert!(matches!(parts[1].children, PartChildren::Message(_)));
    assert_eq!(p.root.body.end, MIXED.len());
}

#[test]
fn sections() {
    let p = ParsedMessage::parse(MIXED);
    let s = |path: &[u32], spec| text(p.section(MIXED, path, spec));
    assert_eq!(
        s(&[], SectionSpec::Full).map(|t| t.len()),
        Some(MIXED.len())
    );
    assert!(s(&[], SectionSpec::Header).is_some_and(|h| h.ends_with("boundary=b\r\n\r\n")));
    assert!(s(&[], SectionSpec::Text).is_some_and(|t| t.starts_with("preamble\r\n--b")));
    assert_eq!(
        s(&[1], SectionSpec::Full).as_deref(),
        Some("caf=E9 =\r\ncr=E8me")
    );
    assert_eq!(
        s(&[1], SectionSpec::Mime).as_deref(),
        Some(
            "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        )
    );
    // A leaf's only part is itself; nothing lies below it.
    assert_eq!(s(&[1, 1], SectionSpec::Full), s(&[1], SectionSpec::Full));
    assert_eq!(s(&[1, 1, 1], SectionSpec::Full), None);
    // HEADER/TEXT with a part number need a message/rfc822 part.
    assert_eq!(s(&[1], SectionSpec::Header), None);
    assert_eq!(
        s(&[2], SectionSpec::Text).as_deref(),
        Some("aW5uZXIgdGV4dA==")
    );
    assert!(s(&[2], SectionSpec::Header).is_some_and(|h| h.starts_with("Subject: inner\r\n")));
    assert_eq!(
        s(&[2, 1], SectionSpec::Full).as_deref(),
        Some("aW5uZXIgdGV4dA==")
    );
    assert_eq!(s(&[4], SectionSpec::Full), None);
    assert_eq!(s(&[0], SectionSpec::Full), None);
    let names = vec!["SUBJECT".to_string(), "x-none".to_string()];
    assert_eq!(
        s(&[], SectionSpec::HeaderFields(&names)).as_deref(),
        Some("Subject: =?utf-8?q?caf=C3=A9?= and more\r\n\r\n")
    );
    assert_eq!(
        s(&[2], SectionSpec::HeaderFields(&names)).as_deref(),
        Some("Subject: inner\r\n\r\n")
    );
    let not = s(&[], SectionSpec::HeaderFieldsNot(&names)).unwrap_or_default();
    assert!(not.starts_with("From: a@example.org\r\nDate:") && not.ends_with("boundary=b\r\n\r\n"));
}

#[test]
fn header_values_and_date() {
    let p = ParsedMessage::parse(MIXED);
    assert_eq!(
        p.header_values(MIXED, "subject"),
        vec!["café and more".to_string()]
    );
    assert!(p.header_values(MIXED, "X-Missing").is_empty());
    assert_eq!(p.date(MIXED), Some((1_690_876_800, 120)));
    let raw = b"Date: yesterday\r\n\r\n";
    assert_eq!(ParsedMessage::parse(raw).date(raw), None);
}

#[test]
fn body_text_decodes_text_parts_only() {
    let p = ParsedMessage::parse(MIXED);
    assert_eq!(p.body_text(MIXED), "café crème\ninner text");
    // Without MIME-Version a Content-Transfer-Encoding does not count (RFC 2045 4).
    let raw = b"Subject: x\r\nContent-Transfer-Encoding: base64\r\n\r\naGk=\r\n";
    assert_eq!(ParsedMessage::parse(raw).body_text(raw), "aGk=\r\n");
}

#[test]
fn body_text_of_a_large_part_is_linear() {
    let mut raw = b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n".to_vec();
    for _ in 0..200_000 {
        raw.extend_from_slice(b"aGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd29y\r\n");
    }
    let start = std::time::Instant::now();
    let p = ParsedMessage::parse(&raw);
    let t = p.body_text(&raw);
    assert_eq!(t.len(), 200_000 * 45);
    assert!(
        start.elapsed().as_secs() < 10,
        "12 MB took {:?}",
        start.elapsed()
    );
}

#[test]
fn lf_only_input() {
    let raw = b"Subject: lf\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=x\n\n--x\n\nhi\n--x--\n";
    let p = ParsedMessage::parse(raw);
    let BodyStructure::Multipart { parts, .. } = p.body_structure(raw) else {
        panic!("not multipart")
    };
    let BodyStructure::Single { size, specific, .. } = &parts[0] else {
        panic!("not single")
    };
    assert_eq!((*size, specific), (2, &SinglePart::Text { lines: 0 }));
    assert_eq!(
        text(p.section(raw, &[1], SectionSpec::Full)).as_deref(),
        Some("hi")
    );
}

#[test]
fn crlf_size_counts_bare_lf_twice() {
    assert_eq!(crlf_size(b""), 0);
    assert_eq!(crlf_size(b"a\nb\r\nc\n"), 9);
    assert_eq!(crlf_size(b"\n\n"), 4);
    assert_eq!(crlf_size(b"\r\r\n"), 3);
}
