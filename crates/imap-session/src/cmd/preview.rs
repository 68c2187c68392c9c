//! PREVIEW (RFC 8970): up to 200 characters of a message's text, as plain text (3.3). The
//! text parts are decoded by `mail-parse` (transfer encoding and charset); markup is removed
//! here, quoted lines (`> ...`) are skipped as Dovecot's snippets skip them, and runs of
//! whitespace become one space. The result is kept in the message cache, which is what
//! `PREVIEW (LAZY)` answers from (4.1: NIL when it is not there yet).

use mail_parse::ParsedMessage;
use mail_store::{CacheField, Mailbox};
use mail_types::Uid;

/// RFC 8970 3.3: "SHOULD limit ... to 200 preview characters".
const PREVIEW_CHARS: usize = 200;

/// The preview of a message: `Some(text)` (possibly empty: nothing readable, 3.2), or `None`
/// for a lazy request that would have to read the message, and for a message that is gone.
pub(crate) fn preview(mailbox: &dyn Mailbox, uid: Uid, lazy: bool) -> Option<String> {
    if let Some(cached) = mailbox.cached(uid, CacheField::Preview) {
        return Some(String::from_utf8_lossy(&cached).into_owned());
    }
    if lazy {
        return None;
    }
    let raw = mailbox.read_message(uid).ok()?;
    let text = make_preview(&raw);
    mailbox.cache(uid, CacheField::Preview, text.as_bytes());
    Some(text)
}

/// The preview of a message's bytes.
pub(crate) fn make_preview(raw: &[u8]) -> String {
    let parsed = ParsedMessage::parse(raw);
    let text = parsed.body_text(raw);
    let mut out = String::with_capacity(PREVIEW_CHARS + 4);
    let mut chars = 0;
    let mut pending_space = false;
    for line in without_markup(&text).lines() {
        if line.trim_start().starts_with('>') {
            continue;
        }
        for word in line.split_whitespace() {
            if pending_space {
                out.push(' ');
                chars += 1;
            }
            for ch in word.chars() {
                if chars >= PREVIEW_CHARS {
                    return out;
                }
                out.push(ch);
                chars += 1;
            }
            pending_space = true;
        }
        if chars >= PREVIEW_CHARS {
            break;
        }
    }
    out
}

/// The text with HTML markup taken out: tags (`<` then a letter, `/` or `!`, up to `>`), the
/// contents of `<style>`, `<script>` and `<head>`, and the common character references
/// decoded. Other text, including a lone `<` or `a < b`, stays as it is.
fn without_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut skip_until: Option<&'static str> = None;
    while let Some(at) = rest.find(['<', '&']) {
        let (before, from) = rest.split_at(at);
        if skip_until.is_none() {
            out.push_str(before);
        }
        if from.starts_with('&') {
            let (decoded, used) = entity(from);
            if skip_until.is_none() {
                out.push_str(&decoded);
            }
            rest = &from[used..];
            continue;
        }
        let is_tag = from[1..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '/' || c == '!');
        let Some(end) = from.find('>').filter(|_| is_tag) else {
            if skip_until.is_none() {
                out.push('<');
            }
            rest = &from[1..];
            continue;
        };
        let tag = from[1..end].to_ascii_lowercase();
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        match (skip_until, name.as_str()) {
            (None, "style" | "script" | "head") if !tag.starts_with('/') => {
                skip_until = Some(match name.as_str() {
                    "style" => "style",
                    "script" => "script",
                    _ => "head",
                });
            }
            (Some(open), closing) if tag.starts_with('/') && closing == open => skip_until = None,
            // Block-level ends separate words.
            (None, "br" | "p" | "div" | "li" | "tr" | "td" | "h1" | "h2" | "h3") => out.push('\n'),
            _ => {}
        }
        rest = &from[end + 1..];
    }
    if skip_until.is_none() {
        out.push_str(rest);
    }
    out
}

/// A character reference at the start of `s` (which starts with `&`): its text and length,
/// or a literal `&` when it is none we know.
fn entity(s: &str) -> (String, usize) {
    let Some(end) = s.get(..12).unwrap_or(s).find(';') else {
        return ("&".to_owned(), 1);
    };
    let name = &s[1..end];
    let decoded = match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some(' '),
        _ => name
            .strip_prefix("#x")
            .or_else(|| name.strip_prefix("#X"))
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
            .and_then(char::from_u32),
    };
    match decoded {
        Some(c) => (c.to_string(), end + 1),
        None => ("&".to_owned(), 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_collapsed_and_cut_at_200_characters() {
        let body =
            "Hello  there,\r\n\r\n> quoted reply\r\nsecond\tline ".to_owned() + &"é".repeat(300);
        let raw =
            format!("Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n");
        let p = make_preview(raw.as_bytes());
        assert!(p.starts_with("Hello there, second line éé"), "{p}");
        assert_eq!(p.chars().count(), 200);
    }

    #[test]
    fn html_loses_its_markup_style_and_entities() {
        let raw = "Content-Type: text/html\r\n\r\n<html><head><title>T</title><style>p {color: red}</style></head><body><p>Fish &amp; chips&nbsp;&lt;3</p><p>a &#x263A; b</p><script>x()</script>done</body></html>\r\n";
        assert_eq!(
            make_preview(raw.as_bytes()),
            "Fish & chips <3 a \u{263A} b done"
        );
    }

    #[test]
    fn encodings_are_decoded_and_attachments_skipped() {
        let raw = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=E9 au lait\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n--b--\r\n";
        assert_eq!(make_preview(raw.as_bytes()), "Café au lait");
    }

    #[test]
    fn nothing_readable_gives_an_empty_preview() {
        let raw =
            "Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n";
        assert_eq!(make_preview(raw.as_bytes()), "");
        assert_eq!(make_preview(b"a < b & c"), "");
    }

    #[test]
    fn lone_angle_brackets_and_ampersands_stay() {
        assert_eq!(without_markup("a < b && c <3"), "a < b && c <3");
        assert_eq!(without_markup("x <unclosed"), "x <unclosed");
    }
}
