//! Message ids in Message-ID, References and In-Reply-To values (RFC 5322 3.6.4), read as
//! Dovecot's `message_id_get_next` reads them, so that both servers link the same messages:
//! anything between `<` and `>` that has an `@` is an id (whitespace removed); ids with quotes
//! or comments inside are parsed properly (`<"a b"@c>` is `a b@c`); anything else is skipped.

/// Ids longer than this are ignored: no real one comes close, and each is kept per message.
const MAX_ID_LEN: usize = 512;

/// The valid ids of a header value, in order.
pub(crate) struct MessageIds<'a> {
    rest: &'a [u8],
}

impl<'a> MessageIds<'a> {
    pub fn new(value: &'a [u8]) -> Self {
        MessageIds { rest: value }
    }
}

impl Iterator for MessageIds<'_> {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        loop {
            let lt = self.rest.iter().position(|&c| c == b'<')?;
            let body = self.rest.get(lt + 1..).unwrap_or_default();
            // The quick look: most ids are plain, with nothing below 'A' but digits and
            // punctuation.
            let mut found_at = false;
            let mut stop = None;
            for (i, &c) in body.iter().enumerate() {
                if c >= b'A' {
                    continue;
                }
                match c {
                    b'@' => found_at = true,
                    b'>' | b'"' | b'(' => {
                        stop = Some((i, c));
                        break;
                    }
                    0 => break,
                    _ => {}
                }
            }
            let Some((at, c)) = stop else {
                self.rest = &[];
                return None;
            };
            if c == b'>' {
                self.rest = body.get(at + 1..).unwrap_or_default();
                let id: Vec<u8> = body
                    .get(..at)
                    .unwrap_or_default()
                    .iter()
                    .copied()
                    .filter(|c| !matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
                    .collect();
                if found_at && id.len() <= MAX_ID_LEN {
                    return Some(String::from_utf8_lossy(&id).into_owned());
                }
                continue;
            }
            // The slow way: quoted strings and comments inside the brackets.
            self.rest = body;
            let mut p = Tokens { s: body, pos: 0 };
            if let Some(id) = p.untokenized_id() {
                self.rest = body.get(p.pos..).unwrap_or_default();
                if id.len() <= MAX_ID_LEN {
                    return Some(String::from_utf8_lossy(&id).into_owned());
                }
            }
        }
    }
}

/// Just enough of RFC 5322's lexical rules for a `msg-id` with quotes or comments in it.
struct Tokens<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Tokens<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    /// Whitespace and (nested) comments.
    fn skip_cfws(&mut self) {
        let mut depth = 0usize;
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\r' | b'\n' => {}
                b'(' => depth += 1,
                b')' if depth > 0 => depth -= 1,
                b'\\' if depth > 0 => self.pos += 1,
                _ if depth > 0 => {}
                _ => return,
            }
            self.pos += 1;
        }
    }

    fn atom(&mut self, out: &mut Vec<u8>) -> bool {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c >= 0x80 || b"!#$%&'*+-/=?^_`{|}~".contains(&c) {
                out.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        self.pos > start
    }

    /// `dot-atom`, with whitespace and comments allowed around the dots as Dovecot allows them.
    fn dot_atom(&mut self, out: &mut Vec<u8>) -> bool {
        if !self.atom(out) {
            return false;
        }
        loop {
            self.skip_cfws();
            if self.peek() != Some(b'.') {
                return true;
            }
            self.pos += 1;
            out.push(b'.');
            self.skip_cfws();
            if !self.atom(out) {
                return false;
            }
        }
    }

    fn quoted(&mut self, out: &mut Vec<u8>) -> bool {
        self.pos += 1;
        while let Some(c) = self.peek() {
            self.pos += 1;
            match c {
                b'"' => {
                    self.skip_cfws();
                    return true;
                }
                b'\\' => {
                    if let Some(q) = self.peek() {
                        out.push(q);
                        self.pos += 1;
                    }
                }
                b'\r' | b'\n' => {}
                _ => out.push(c),
            }
        }
        false
    }

    /// `[CFWS] id-left "@" id-right ">"`, just after the `<`.
    fn untokenized_id(&mut self) -> Option<Vec<u8>> {
        let mut id = Vec::new();
        self.skip_cfws();
        let left = if self.peek() == Some(b'"') {
            self.quoted(&mut id)
        } else {
            self.dot_atom(&mut id)
        };
        if !left || self.peek() != Some(b'@') {
            return None;
        }
        self.pos += 1;
        id.push(b'@');
        self.skip_cfws();
        if !self.dot_atom(&mut id) || self.peek() != Some(b'>') {
            return None;
        }
        self.pos += 1;
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &str) -> Vec<String> {
        MessageIds::new(v.as_bytes()).collect()
    }

    #[test]
    fn reads_ids_as_dovecot_does() {
        assert_eq!(ids("<a@b>"), ["a@b"]);
        assert_eq!(ids("  <a@b> <c@d>\n\t<e.f@g.h>"), ["a@b", "c@d", "e.f@g.h"]);
        // No @, an unclosed bracket, nothing at all: skipped.
        assert_eq!(ids("<nope> <a@b> <open@x"), ["a@b"]);
        assert!(ids("").is_empty());
        assert!(ids("no ids here").is_empty());
        // Whitespace inside is removed; case is kept.
        assert_eq!(ids("<A B@\n C>"), ["AB@C"]);
        // Junk between ids, and an In-Reply-To with prose.
        assert_eq!(
            ids("Your message of Monday <x.1@host> (sent) and <y@host>"),
            ["x.1@host", "y@host"]
        );
        // Quoted local parts and comments take the slow way.
        assert_eq!(ids("<\"a b\"@host>"), ["a b@host"]);
        assert_eq!(ids("<(comment) a.b @ (c) host . org>"), ["a.b@host.org"]);
        assert_eq!(ids("<\"unclosed@x> <ok@y>"), ["ok@y"]);
        // Oversized ids are dropped, not kept.
        let long = format!("<{}@x> <ok@y>", "a".repeat(MAX_ID_LEN));
        assert_eq!(ids(&long), ["ok@y"]);
    }

    #[test]
    fn never_panics_on_junk() {
        let pieces = [
            "<", ">", "@", "\"", "(", ")", "\\", " ", "a", ".", "ü", "\n",
        ];
        let mut state = 0x9e37_79b9_u32;
        for _ in 0..5000 {
            let mut s = String::new();
            for _ in 0..(state % 12) {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                s.push_str(pieces[state as usize % pieces.len()]);
            }
            for id in ids(&s) {
                assert!(id.contains('@'), "{s:?} gave {id:?}");
            }
        }
    }
}
