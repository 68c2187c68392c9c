//! Modified UTF-7 for mailbox names (RFC 3501 5.1.3): the IMAP wire form of a name, and also
//! how Dovecot (and so Columba) spells non-ASCII folder names in Maildir++ directory names.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Utf7Error {
    #[error("mailbox name is not valid modified UTF-7")]
    Invalid,
}

/// The modified BASE64 alphabet: RFC 2045 base64 with `,` in place of `/` (RFC 3501 5.1.3).
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

fn b64_value(b: u8) -> Option<u32> {
    match b {
        b'A'..=b'Z' => Some(u32::from(b - b'A')),
        b'a'..=b'z' => Some(u32::from(b - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(b - b'0') + 52),
        b'+' => Some(62),
        b',' => Some(63),
        _ => None,
    }
}

/// Printable US-ASCII other than `&` stands for itself; everything else must be shifted
/// (RFC 3501 5.1.3, octets 0x20-0x25 and 0x27-0x7e).
fn is_direct(c: char) -> bool {
    matches!(c, '\u{20}'..='\u{25}' | '\u{27}'..='\u{7e}')
}

/// Encodes a Unicode mailbox name for the wire.
///
/// Runs of characters that cannot stand for themselves become one `&...-` shift sequence of
/// UTF-16BE in modified BASE64, without padding; `&` becomes `&-` (RFC 3501 5.1.3).
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '&' {
            out.push_str("&-");
        } else if is_direct(c) {
            out.push(c);
        } else {
            // Gather the whole run so the name has a single canonical spelling: two adjacent
            // shift sequences would be a "null shift", which RFC 3501 5.1.3 forbids.
            let mut units: Vec<u16> = Vec::new();
            let mut buf = [0u16; 2];
            units.extend_from_slice(c.encode_utf16(&mut buf));
            while let Some(&next) = chars.peek() {
                if next == '&' || is_direct(next) {
                    break;
                }
                units.extend_from_slice(next.encode_utf16(&mut buf));
                chars.next();
            }
            out.push('&');
            let mut acc: u32 = 0;
            let mut bits = 0u32;
            for unit in units {
                acc = (acc << 16) | u32::from(unit);
                bits += 16;
                while bits >= 6 {
                    bits -= 6;
                    out.push(char::from(ALPHABET[((acc >> bits) & 63) as usize]));
                }
                acc &= (1 << bits) - 1;
            }
            if bits > 0 {
                out.push(char::from(ALPHABET[((acc << (6 - bits)) & 63) as usize]));
            }
            out.push('-');
        }
    }
    out
}

/// Decodes a mailbox name from the wire. Strict: non-canonical encodings (a shift sequence for
/// printable ASCII, `&-` not used for `&`, unterminated or badly padded base64, 8-bit bytes) are
/// refused so that one mailbox has exactly one wire name.
pub fn decode(raw: &[u8]) -> Result<String, Utf7Error> {
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    // Whether the previous token was a shift sequence: `&..-&..-` is a null shift (RFC 3501 5.1.3).
    let mut after_shift = false;
    while let Some(&b) = raw.get(i) {
        if b != b'&' {
            if !(0x20..0x7f).contains(&b) {
                return Err(Utf7Error::Invalid);
            }
            out.push(char::from(b));
            i += 1;
            after_shift = false;
            continue;
        }
        i += 1;
        if raw.get(i) == Some(&b'-') {
            out.push('&');
            i += 1;
            after_shift = false;
            continue;
        }
        if after_shift {
            return Err(Utf7Error::Invalid);
        }
        let start = i;
        while raw.get(i).is_some_and(|&c| c != b'-') {
            i += 1;
        }
        if raw.get(i) != Some(&b'-') {
            // Names must end in US-ASCII: an unterminated shift is refused.
            return Err(Utf7Error::Invalid);
        }
        let encoded = raw.get(start..i).ok_or(Utf7Error::Invalid)?;
        i += 1;
        decode_shifted(encoded, &mut out)?;
        after_shift = true;
    }
    Ok(out)
}

/// Decodes the modified BASE64 between `&` and `-` (RFC 3501 5.1.3) and appends it to `out`.
fn decode_shifted(encoded: &[u8], out: &mut String) -> Result<(), Utf7Error> {
    let mut units: Vec<u16> = Vec::with_capacity(encoded.len() * 3 / 8 + 1);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &c in encoded {
        let v = b64_value(c).ok_or(Utf7Error::Invalid)?;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 16 {
            bits -= 16;
            units.push(((acc >> bits) & 0xffff) as u16);
            acc &= (1 << bits) - 1;
        }
    }
    // Canonical padding: fewer than 6 leftover bits, all zero. More would mean a stray character
    // that encodes nothing; non-zero bits would give a second spelling of the same name.
    if bits >= 6 || acc != 0 || units.is_empty() {
        return Err(Utf7Error::Invalid);
    }
    for c in char::decode_utf16(units) {
        let c = c.map_err(|_| Utf7Error::Invalid)?;
        if c == '&' || is_direct(c) {
            return Err(Utf7Error::Invalid);
        }
        out.push(c);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_3501_example() {
        let wire = "~peter/mail/&U,BTFw-/&ZeVnLIqe-";
        let name = "~peter/mail/\u{53f0}\u{5317}/\u{65e5}\u{672c}\u{8a9e}";
        assert_eq!(encode(name), wire);
        assert_eq!(decode(wire.as_bytes()).as_deref(), Ok(name));
    }

    #[test]
    fn ampersand_and_ascii() {
        assert_eq!(encode("A&B"), "A&-B");
        assert_eq!(decode(b"A&-B").as_deref(), Ok("A&B"));
        assert_eq!(decode(b"&-&-").as_deref(), Ok("&&"));
        assert_eq!(encode("INBOX"), "INBOX");
        assert_eq!(encode(""), "");
        assert_eq!(encode("Entw\u{fc}rfe"), "Entw&APw-rfe");
        assert_eq!(decode(b"Entw&APw-rfe").as_deref(), Ok("Entw\u{fc}rfe"));
        // Control characters and DEL are not printable, so they are shifted.
        assert_eq!(encode("a\tb"), "a&AAk-b");
        assert_eq!(decode(b"a&AAk-b").as_deref(), Ok("a\tb"));
        // A supplementary-plane character travels as a surrogate pair.
        let emoji = "\u{1f600}";
        assert_eq!(decode(encode(emoji).as_bytes()).as_deref(), Ok(emoji));
    }

    #[test]
    fn non_canonical_and_broken_forms_are_refused() {
        for bad in [
            &b"&"[..],             // shift at end
            b"a&U,BTFw",           // unterminated
            b"&AGE-",              // "a" encoded although it can stand for itself
            b"&ACY-",              // "&" encoded instead of "&-"
            b"&U,BTFw-&ZeVnLIqe-", // null shift between two sequences
            b"&U,BTFx-",           // non-zero padding bits
            b"&U,BTFwA-",          // a stray character that encodes nothing
            b"&U,BTF-",            // truncated unit
            b"&2D0-",              // lone high surrogate
            b"&3gA-",              // lone low surrogate
            b"&U/BTFw-",           // `/` is not modified BASE64
            b"&U,BT=w-",           // padding is not used
            b"caf\xc3\xa9",        // 8-bit
            b"a\tb",               // raw control character
            b"a\x7fb",             // raw DEL
        ] {
            assert_eq!(
                decode(bad),
                Err(Utf7Error::Invalid),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
