//! The content of `BINARY[part]` (RFC 3516 4.2): a part's body with its content transfer
//! encoding removed. Identity encodings (none, 7bit, 8bit, binary) pass through; base64 and
//! quoted-printable are decoded leniently, as mail readers do (stray characters in base64 are
//! skipped, a malformed `=` in quoted-printable stays as it is); any other encoding is
//! UNKNOWN-CTE (4.3). Decoded text parts go out with CRLF line ends (6).

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use mail_parse::{ParsedMessage, SectionSpec};

/// The section's transfer encoding is none this server can remove.
#[derive(Debug, PartialEq, Eq)]
pub struct UnknownCte(pub String);

/// Decodes the body of `part` (`[]`: the whole message, which has no encoding of its own).
/// A part that does not exist is empty, as `BODY[part]` is.
pub fn decoded_section(
    raw: &[u8],
    parsed: &ParsedMessage,
    part: &[u32],
) -> Result<Vec<u8>, UnknownCte> {
    if part.is_empty() {
        return Ok(raw.to_vec());
    }
    let header = parsed
        .section(raw, part, SectionSpec::Mime)
        .unwrap_or_default();
    let body = parsed
        .section(raw, part, SectionSpec::Full)
        .unwrap_or_default();
    let cte = field(&header, "content-transfer-encoding").unwrap_or_default();
    let content_type = field(&header, "content-type").unwrap_or_default();
    let is_text = content_type.is_empty() || content_type.starts_with("text/");
    let decoded = match cte.as_str() {
        "" | "7bit" | "8bit" | "binary" => return Ok(body.into_owned()),
        "base64" => base64_lenient(&body),
        "quoted-printable" => quoted_printable(&body),
        _ => return Err(UnknownCte(cte)),
    };
    Ok(if is_text { crlf(decoded) } else { decoded })
}

/// The lower-cased value of a MIME header field up to its parameters (`text/plain` of
/// `Text/Plain; charset=...`), unfolded; `None` when the field is missing.
fn field(header: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(header);
    let mut value: Option<String> = None;
    for line in text.split('\n') {
        let line = line.trim_end_matches('\r');
        if let Some(v) = value.as_mut() {
            if line.starts_with([' ', '\t']) {
                v.push_str(line);
                continue;
            }
            break;
        }
        if let Some((n, v)) = line.split_once(':')
            && n.trim().eq_ignore_ascii_case(name)
        {
            value = Some(v.to_owned());
        }
    }
    let value = value?;
    let bare = value.split(';').next().unwrap_or_default();
    Some(bare.trim().to_ascii_lowercase())
}

/// Base64 of a mail part: line breaks and anything outside the alphabet ignored, padding
/// optional, decoding stopped at the first `=`.
fn base64_lenient(data: &[u8]) -> Vec<u8> {
    const ENGINE: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let mut clean: Vec<u8> = data
        .iter()
        .copied()
        .take_while(|&b| b != b'=')
        .filter(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
        .collect();
    // A single leftover character carries no whole byte.
    if clean.len() % 4 == 1 {
        clean.pop();
    }
    ENGINE.decode(&clean).unwrap_or_default()
}

/// Quoted-printable (RFC 2045 6.7): `=XX` octets, `=` at a line end joins lines, whitespace
/// at line ends is dropped (rule 3).
fn quoted_printable(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut lines = data.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let end = line
            .iter()
            .rposition(|&b| b != b' ' && b != b'\t')
            .map_or(0, |i| i + 1);
        let line = &line[..end];
        let (line, soft) = match line.strip_suffix(b"=") {
            Some(l) => (l, true),
            None => (line, false),
        };
        let mut i = 0;
        while let Some(&b) = line.get(i) {
            let hex = line.get(i + 1..i + 3).and_then(|h| {
                std::str::from_utf8(h)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            });
            match (b, hex) {
                (b'=', Some(v)) => {
                    out.push(v);
                    i += 3;
                }
                _ => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        if !soft && lines.peek().is_some() {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

/// Bare LFs (and bare CRs) of decoded text as CRLF.
fn crlf(data: Vec<u8>) -> Vec<u8> {
    if !data.iter().any(|&b| b == b'\n' || b == b'\r') {
        return data;
    }
    let mut out = Vec::with_capacity(data.len() + data.len() / 16);
    let mut i = 0;
    while let Some(&b) = data.get(i) {
        match b {
            b'\r' if data.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 2;
                continue;
            }
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            _ => out.push(b),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(message: &str, part: &[u32]) -> Result<Vec<u8>, UnknownCte> {
        let raw = message.as_bytes();
        decoded_section(raw, &ParsedMessage::parse(raw), part)
    }

    const MIXED: &str = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: Quoted-Printable\r\n\r\nCaf=C3=A9 =\r\nau lait  \r\nnext=3Dline=\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\nA/8=\r\n--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nb25lCnR3bw==\r\n--b\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n--b--\r\n";

    #[test]
    fn quoted_printable_parts_are_decoded() {
        assert_eq!(
            part(MIXED, &[1]).unwrap(),
            "Café au lait\r\nnext=line".as_bytes()
        );
    }

    #[test]
    fn base64_parts_are_decoded_with_nul_and_high_bytes() {
        assert_eq!(part(MIXED, &[2]).unwrap(), vec![0, 1, 2, 3, 0xff]);
    }

    #[test]
    fn decoded_text_gets_crlf_line_ends() {
        assert_eq!(part(MIXED, &[3]).unwrap(), b"one\r\ntwo");
    }

    #[test]
    fn unknown_encodings_are_refused() {
        assert_eq!(part(MIXED, &[4]), Err(UnknownCte("x-uuencode".to_owned())));
    }

    #[test]
    fn whole_message_and_identity_parts_pass_through() {
        assert_eq!(part(MIXED, &[]).unwrap(), MIXED.as_bytes());
        let single = "Subject: x\r\nContent-Transfer-Encoding: 8bit\r\n\r\nh\u{e9}\r\n";
        assert_eq!(part(single, &[1]).unwrap(), "h\u{e9}\r\n".as_bytes());
        assert_eq!(part(single, &[2]).unwrap(), b"");
    }

    #[test]
    fn sloppy_base64_still_decodes() {
        assert_eq!(base64_lenient(b"aGVs\r\nbG8*\r\n"), b"hello");
        assert_eq!(base64_lenient(b"aGVsbG8=garbage"), b"hello");
        assert_eq!(base64_lenient(b"aGVsbG8"), b"hello");
        assert_eq!(base64_lenient(b""), b"");
    }

    #[test]
    fn malformed_quoted_printable_stays() {
        assert_eq!(quoted_printable(b"a=ZZb=4"), b"a=ZZb=4");
    }
}
