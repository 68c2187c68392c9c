//! Decoded text for SEARCH: header values with RFC 2047 encoded-words decoded, and body text
//! transfer-decoded (RFC 2045 6.7, 6.8) and converted to UTF-8.
//!
//! These decoders never fail: broken encodings (bad base64 characters, stray `=` in
//! quoted-printable, unknown charsets) yield the best text they can, because SEARCH should still
//! find the readable parts of a broken message. Each is a single linear pass.

use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::parsers::MessageStream;
use mail_parser::{DateTime, HeaderValue};

/// A header value (full value, folds as LF + whitespace) unfolded and with encoded-words decoded
/// (RFC 2047 6); raw 8-bit bytes are read as UTF-8, invalid sequences replaced.
pub(crate) fn decode_header_value(value: &[u8]) -> String {
    let mut v = Vec::with_capacity(value.len() + 1);
    v.extend_from_slice(value);
    // The parser reads up to the line break that ends the field.
    v.push(b'\n');
    match MessageStream::new(&v).parse_unstructured() {
        HeaderValue::Text(t) => t.into_owned(),
        _ => String::new(),
    }
}

/// The Date value as seconds since the epoch and the zone offset in minutes (RFC 5322 3.3).
pub(crate) fn parse_date(value: &[u8]) -> Option<(i64, i32)> {
    let s = String::from_utf8_lossy(value);
    let d = DateTime::parse_rfc822(s.trim())?;
    if !d.is_valid() {
        return None;
    }
    let offset = i32::from(d.tz_hour) * 60 + i32::from(d.tz_minute);
    Some((
        d.to_timestamp(),
        if d.tz_before_gmt { -offset } else { offset },
    ))
}

/// A text body: transfer-decoded per its Content-Transfer-Encoding, then converted from its
/// charset.
pub(crate) fn decode_body(body: &[u8], encoding: Option<&[u8]>, charset: Option<&[u8]>) -> String {
    let decoded = match encoding {
        Some(e) if e.eq_ignore_ascii_case(b"base64") => base64(body),
        Some(e) if e.eq_ignore_ascii_case(b"quoted-printable") => quoted_printable(body),
        _ => body.to_vec(),
    };
    to_utf8(decoded, charset)
}

fn to_utf8(bytes: Vec<u8>, charset: Option<&[u8]>) -> String {
    // UTF-8 (and its subset US-ASCII) needs no table; everything else goes through
    // mail-parser's; an unknown charset is read as UTF-8 so that ASCII words stay searchable.
    let is_utf8 = |c: &[u8]| {
        c.eq_ignore_ascii_case(b"utf-8")
            || c.eq_ignore_ascii_case(b"utf8")
            || c.eq_ignore_ascii_case(b"us-ascii")
    };
    match charset.filter(|c| !is_utf8(c)).and_then(charset_decoder) {
        Some(decode) => decode(&bytes),
        None => match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        },
    }
}

/// Base64 (RFC 2045 6.8), skipping characters outside the alphabet instead of failing; `=` ends
/// a group.
pub(crate) fn base64(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3 + 3);
    let (mut acc, mut n) = (0u32, 0u8);
    for &c in input {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                match n {
                    2 => out.push((acc >> 4) as u8),
                    3 => out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]),
                    _ => {}
                }
                (acc, n) = (0, 0);
                continue;
            }
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        n += 1;
        if n == 4 {
            out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]);
            (acc, n) = (0, 0);
        }
    }
    match n {
        2 => out.push((acc >> 4) as u8),
        3 => out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]),
        _ => {}
    }
    out
}

/// Quoted-printable (RFC 2045 6.7): `=XX` escapes and soft line breaks (`=` then optional
/// whitespace then the line break); a malformed `=` is kept as it is.
pub(crate) fn quoted_printable(input: &[u8]) -> Vec<u8> {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&c) = input.get(i) {
        if c != b'=' {
            out.push(c);
            i += 1;
            continue;
        }
        if let (Some(h), Some(l)) = (
            input.get(i + 1).and_then(|&c| hex(c)),
            input.get(i + 2).and_then(|&c| hex(c)),
        ) {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        // A soft line break, possibly with transport padding before it.
        let mut j = i + 1;
        while matches!(input.get(j), Some(b' ' | b'\t')) {
            j += 1;
        }
        match input.get(j) {
            Some(b'\n') => i = j + 1,
            Some(b'\r') if input.get(j + 1) == Some(&b'\n') => i = j + 2,
            None => i = j,
            _ => {
                out.push(b'=');
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_lenient() {
        assert_eq!(base64(b"aGVsbG8gd29ybGQ="), b"hello world");
        assert_eq!(base64(b"aGVs\r\nbG8g\r\nd29y bGQ"), b"hello world");
        assert!(base64(b"aGV!!sbG8=junk").starts_with(b"hello"));
        assert_eq!(base64(b""), b"");
    }

    #[test]
    fn qp_is_lenient() {
        assert_eq!(
            quoted_printable(b"caf=C3=A9 =\r\nsoft=  \nx=3d"),
            "café softx=".as_bytes()
        );
        assert_eq!(quoted_printable(b"bad =ZZ and =4"), b"bad =ZZ and =4");
        assert_eq!(quoted_printable(b"end="), b"end");
    }

    #[test]
    fn charsets() {
        assert_eq!(decode_body(b"caf\xe9", None, Some(b"ISO-8859-1")), "café");
        assert_eq!(
            decode_body(b"caf\xe9", None, Some(b"x-unknown")),
            "caf\u{fffd}"
        );
        assert_eq!(
            decode_body(b"Y2Fmw6k=", Some(b"BASE64"), Some(b"utf-8")),
            "café"
        );
    }

    #[test]
    fn header_words() {
        assert_eq!(
            decode_header_value(b"=?utf-8?q?caf=C3=A9?= =?utf-8?b?IMOg?= ok"),
            "café à ok"
        );
        assert_eq!(decode_header_value(b"plain\n  folded"), "plain folded");
        assert_eq!(decode_header_value(b"raw caf\xc3\xa9"), "raw café");
        assert_eq!(decode_header_value(b""), "");
    }

    #[test]
    fn dates() {
        assert_eq!(
            parse_date(b"Mon, 7 Feb 1994 21:52:25 -0800"),
            Some((760686745, -480))
        );
        assert_eq!(parse_date(b"Thu, 1 Jan 1970 00:00:00 +0000"), Some((0, 0)));
        assert_eq!(parse_date(b"garbage"), None);
    }
}
