//! Property tests: no input makes the parser panic, every range it reports lies inside the
//! input, `BODY[]` is the input, and the CRLF and LF forms of a message have the same structure.

use std::borrow::Cow;

use mail_parse::{BodyStructure, ParsedMessage, Part, PartChildren, SectionSpec};
use proptest::prelude::*;

/// Checks the tree's ranges: inside the input, header before body, children inside their
/// parent's body and in order.
fn check_part(p: &Part, lo: usize, hi: usize) -> Result<(), TestCaseError> {
    prop_assert!(
        lo <= p.header.start && p.header.start <= p.header.end,
        "{p:?}"
    );
    prop_assert!(
        p.header.end <= p.body.start && p.body.start <= p.body.end && p.body.end <= hi,
        "{p:?}"
    );
    let mut at = p.body.start;
    let children: Vec<&Part> = match &p.children {
        PartChildren::None => Vec::new(),
        PartChildren::Multipart(c) => c.iter().collect(),
        PartChildren::Message(m) => vec![&**m],
    };
    for c in children {
        check_part(c, at, p.body.end)?;
        at = c.body.end;
    }
    Ok(())
}

fn exercise(raw: &[u8]) -> Result<ParsedMessage, TestCaseError> {
    let parsed = ParsedMessage::parse(raw);
    check_part(&parsed.root, 0, raw.len())?;
    prop_assert_eq!(parsed.root.header.start, 0);
    let _ = parsed.envelope(raw);
    let _ = parsed.body_structure(raw);
    let _ = parsed.body_text(raw);
    let _ = parsed.header_values(raw, "subject");
    let _ = parsed.date(raw);
    let whole = parsed.section(raw, &[], SectionSpec::Full);
    prop_assert!(matches!(whole, Some(Cow::Borrowed(b)) if b == raw));
    let names = vec!["Subject".to_string(), "content-type".to_string()];
    let specs = [
        SectionSpec::Full,
        SectionSpec::Header,
        SectionSpec::Text,
        SectionSpec::Mime,
        SectionSpec::HeaderFields(&names),
        SectionSpec::HeaderFieldsNot(&names),
    ];
    let paths: [&[u32]; 8] = [
        &[],
        &[0],
        &[1],
        &[2],
        &[1, 1],
        &[1, 2, 1],
        &[2, 1, 1, 1],
        &[u32::MAX],
    ];
    for path in paths {
        for spec in specs {
            if let Some(Cow::Borrowed(b)) = parsed.section(raw, path, spec) {
                // A borrowed answer is a slice of the input.
                let (start, end) = (raw.as_ptr() as usize, raw.as_ptr() as usize + raw.len());
                prop_assert!(
                    b.is_empty()
                        || (b.as_ptr() as usize >= start && b.as_ptr() as usize + b.len() <= end)
                );
            }
        }
    }
    Ok(parsed)
}

/// A random MIME message: nested multiparts (some sharing boundary prefixes, some left
/// unclosed), message/rfc822 parts, digests, broken headers, encodings and charsets.
fn mime_tree(depth: u32) -> BoxedStrategy<String> {
    let leaf = (
        prop::sample::select(vec![
            "",
            "Content-Type: text/plain; charset=utf-8\n",
            "Content-Type: text/html\nContent-Transfer-Encoding: quoted-printable\n",
            "Content-Type: application/octet-stream; name*0=a; name*1*=%41\nContent-Transfer-Encoding: base64\n",
            "Content-Type: text\n",
            "Content-Type: text/plain; charset=\"unterminated\n",
            "Content-Disposition: attachment; filename=x\nContent-Language: en, de\n",
        ]),
        prop::sample::select(vec!["body", "", "caf=C3=A9 =\nsoft", "aGVsbG8=", "--not-a-boundary", "\n\n", "x\ny\n"]),
    )
        .prop_map(|(h, b)| format!("{h}\n{b}"));
    leaf.prop_recursive(depth, 64, 4, |inner| {
        prop_oneof![
            (
                prop::sample::select(vec!["b", "bb", "b-1", "x"]),
                prop::sample::select(vec!["mixed", "alternative", "digest"]),
                prop::collection::vec(inner.clone(), 0..4),
                any::<bool>(),
                any::<bool>(),
            )
                .prop_map(|(b, sub, parts, close, preamble)| {
                    let mut s = format!("Content-Type: multipart/{sub}; boundary=\"{b}\"\n\n");
                    if preamble {
                        s.push_str("preamble\n");
                    }
                    for p in parts {
                        s.push_str(&format!("--{b}\n{p}\n"));
                    }
                    if close {
                        s.push_str(&format!("--{b}--\nepilogue\n"));
                    }
                    s
                }),
            inner.prop_map(|m| format!(
                "Content-Type: message/rfc822\n\nSubject: inner\nMIME-Version: 1.0\n{m}"
            )),
        ]
    })
    .boxed()
}

fn to_crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() * 2);
    for &c in raw {
        if c == b'\n' {
            out.push(b'\r');
        }
        out.push(c);
    }
    out
}

/// Sizes and line counts are of the CRLF form, so they are equal for both forms.
fn same_shape(a: &BodyStructure, b: &BodyStructure) -> bool {
    a == b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(raw in prop::collection::vec(any::<u8>(), 0..2048)) {
        exercise(&raw)?;
    }

    #[test]
    fn header_like_bytes_never_panic(
        lines in prop::collection::vec(
            prop::sample::select(vec![
                "Content-Type: multipart/mixed; boundary=a", "--a", "--a--", "", " folded", "From: <@",
                "Subject: =?utf-8?q?x?=", "Content-Type: message/rfc822", "To: g: a@b;", "\r", "--",
                "Content-Type: multipart/digest; boundary=\"a\"", "Date: Mon, 7 Feb 1994 21:52:25 -0800",
            ]),
            0..40,
        )
    ) {
        let raw = lines.join("\n");
        exercise(raw.as_bytes())?;
        exercise(&to_crlf(raw.as_bytes()))?;
    }

    #[test]
    fn structured_mime_is_consistent(body in mime_tree(5)) {
        let raw = format!("From: a@b\nSubject: s\nMIME-Version: 1.0\n{body}");
        let lf = exercise(raw.as_bytes())?;
        let crlf_raw = to_crlf(raw.as_bytes());
        let crlf = exercise(&crlf_raw)?;
        prop_assert!(same_shape(&lf.body_structure(raw.as_bytes()), &crlf.body_structure(&crlf_raw)));
        prop_assert_eq!(lf.envelope(raw.as_bytes()), crlf.envelope(&crlf_raw));
    }
}

#[test]
fn hostile_nesting_is_bounded() {
    // 5,000 nested multiparts and message/rfc822 parts: the tree stops at the nesting limit.
    let mut raw = String::from("MIME-Version: 1.0\n");
    for i in 0..5000 {
        if i % 2 == 0 {
            raw.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=\"n{i}\"\n\n--n{i}\n"
            ));
        } else {
            raw.push_str("Content-Type: message/rfc822\n\n");
        }
    }
    let parsed = ParsedMessage::parse(raw.as_bytes());
    fn depth(p: &Part) -> usize {
        match &p.children {
            PartChildren::None => 1,
            PartChildren::Multipart(c) => 1 + c.iter().map(depth).max().unwrap_or(0),
            PartChildren::Message(m) => 1 + depth(m),
        }
    }
    assert!(depth(&parsed.root) <= mail_parse::MAX_NESTED);
    let _ = parsed.body_structure(raw.as_bytes());
}
