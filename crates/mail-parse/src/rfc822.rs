//! RFC 5322 3.2 lexical tokens (CFWS, atom, dot-atom, quoted-string, phrase, domain) and the MIME
//! token / Content-Type / parameter grammar of RFC 2045 5.1, read the way Dovecot's
//! `rfc822-parser.c` reads them, because ENVELOPE and BODYSTRUCTURE must match its answers for
//! broken input too.
//!
//! Every function follows the same result convention as Dovecot's: `-1` the input is broken here,
//! `0` the end of the input was reached, `1` there is more input after the token. Positions never
//! pass the end of the slice, so no input can make them panic.

/// `atext` (RFC 5322 3.2.3) plus 8-bit bytes, which real mail puts in atoms; `2` marks letters
/// and digits, `4` the atext characters that are MIME tspecials (`/`, `=`, `?`, RFC 2045 5.1).
const fn atext_table() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = if c >= 0x80 || c.is_ascii_alphanumeric() {
            2
        } else {
            match c {
                b'/' | b'=' | b'?' => 4,
                b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'^' | b'_'
                | b'`' | b'{' | b'|' | b'}' | b'~' => 1,
                _ => 0,
            }
        };
        i += 1;
    }
    t
}

static ATEXT: [u8; 256] = atext_table();

pub(crate) fn is_atext(c: u8) -> bool {
    ATEXT[c as usize] != 0
}

/// A MIME `token` character: atext that is not a tspecial.
fn is_token_char(c: u8) -> bool {
    ATEXT[c as usize] & 3 != 0
}

/// U+FFFD, which Dovecot puts where a NUL byte was inside quoted strings and comments.
pub(crate) const NUL_REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();

pub(crate) struct Lexer<'a> {
    pub data: &'a [u8],
    pub pos: usize,
    /// The text of the last comment skipped, when the caller wants it (an address without
    /// display name takes its name from a trailing comment).
    pub last_comment: Option<Vec<u8>>,
    /// Replace NULs in quoted strings and comments, as Dovecot's address parser does.
    pub replace_nuls: bool,
}

impl<'a> Lexer<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Lexer {
            data,
            pos: 0,
            last_comment: None,
            replace_nuls: false,
        }
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// The current byte; 0 at the end (callers check `at_end` where it matters, and 0 never
    /// matches the characters they look for).
    pub fn peek(&self) -> u8 {
        self.data.get(self.pos).copied().unwrap_or(0)
    }

    fn more(&self) -> i32 {
        if self.at_end() { 0 } else { 1 }
    }

    fn append_comment(&mut self, from: usize, to: usize) {
        if let (Some(c), Some(s)) = (self.last_comment.as_mut(), self.data.get(from..to)) {
            c.extend_from_slice(s);
        }
    }

    /// Skips a (nested) comment starting at `(`.
    fn skip_comment(&mut self) -> i32 {
        if let Some(c) = self.last_comment.as_mut() {
            c.clear();
        }
        let mut level = 1;
        self.pos += 1;
        let mut start = self.pos;
        while self.pos < self.data.len() {
            match self.peek() {
                0 if self.replace_nuls && self.last_comment.is_some() => {
                    self.append_comment(start, self.pos);
                    if let Some(c) = self.last_comment.as_mut() {
                        c.extend_from_slice(NUL_REPLACEMENT);
                    }
                    start = self.pos + 1;
                }
                b'(' => level += 1,
                b')' => {
                    level -= 1;
                    if level == 0 {
                        self.append_comment(start, self.pos);
                        self.pos += 1;
                        return self.more();
                    }
                }
                b'\n' => {
                    let mut end = self.pos;
                    if end > start && self.data.get(end - 1) == Some(&b'\r') {
                        end -= 1;
                    }
                    self.append_comment(start, end);
                    start = self.pos + 1;
                }
                b'\\' => {
                    self.pos += 1;
                    if self.at_end() {
                        return -1;
                    }
                    if matches!(self.peek(), b'\r' | b'\n' | 0) {
                        self.pos -= 1;
                    } else {
                        self.append_comment(start, self.pos - 1);
                        start = self.pos;
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        -1
    }

    /// Skips whitespace, line breaks and comments (CFWS, RFC 5322 3.2.2).
    pub fn skip_lwsp(&mut self) -> i32 {
        while !self.at_end() {
            match self.peek() {
                b' ' | b'\t' | b'\r' | b'\n' => self.pos += 1,
                b'(' => {
                    if self.skip_comment() < 0 {
                        return -1;
                    }
                }
                _ => break,
            }
        }
        self.more()
    }

    pub fn parse_atom(&mut self, out: &mut Vec<u8>) -> i32 {
        if self.at_end() || !is_atext(self.peek()) {
            return -1;
        }
        let start = self.pos;
        while !self.at_end() && is_atext(self.peek()) {
            self.pos += 1;
        }
        out.extend_from_slice(&self.data[start..self.pos]);
        if self.at_end() { 0 } else { self.skip_lwsp() }
    }

    /// `dot-atom`, allowing whitespace around the dots as RFC 822 did.
    pub fn parse_dot_atom(&mut self, out: &mut Vec<u8>) -> i32 {
        if self.at_end() || !is_atext(self.peek()) {
            return -1;
        }
        let mut start = self.pos;
        self.pos += 1;
        while !self.at_end() {
            if is_atext(self.peek()) {
                self.pos += 1;
                continue;
            }
            if start == self.pos {
                return -1;
            }
            out.extend_from_slice(&self.data[start..self.pos]);
            let ret = self.skip_lwsp();
            if ret <= 0 {
                return ret;
            }
            if self.peek() != b'.' {
                return 1;
            }
            self.pos += 1;
            out.push(b'.');
            if self.skip_lwsp() <= 0 {
                return -1;
            }
            start = self.pos;
        }
        out.extend_from_slice(&self.data[start..self.pos]);
        0
    }

    /// A MIME `token` (RFC 2045 5.1); Dovecot also accepts dots and 8-bit bytes, and an empty
    /// token, which callers check.
    pub fn parse_mime_token(&mut self, out: &mut Vec<u8>) -> i32 {
        let start = self.pos;
        while !self.at_end() && (is_token_char(self.peek()) || self.peek() == b'.') {
            self.pos += 1;
        }
        out.extend_from_slice(&self.data[start..self.pos]);
        if self.at_end() { 0 } else { self.skip_lwsp() }
    }

    /// `quoted-string` starting at `"`: unescaped, folding line breaks removed.
    pub fn parse_quoted_string(&mut self, out: &mut Vec<u8>) -> i32 {
        self.pos += 1;
        let mut start = self.pos;
        while self.pos < self.data.len() {
            match self.peek() {
                0 if self.replace_nuls => {
                    out.extend_from_slice(&self.data[start..self.pos]);
                    out.extend_from_slice(NUL_REPLACEMENT);
                    start = self.pos + 1;
                }
                b'"' => {
                    out.extend_from_slice(&self.data[start..self.pos]);
                    self.pos += 1;
                    return self.skip_lwsp();
                }
                b'\n' => {
                    let mut end = self.pos;
                    if end > start && self.data.get(end - 1) == Some(&b'\r') {
                        end -= 1;
                    }
                    out.extend_from_slice(&self.data[start..end]);
                    start = self.pos + 1;
                }
                b'\\' => {
                    self.pos += 1;
                    if self.at_end() {
                        return -1;
                    }
                    if matches!(self.peek(), b'\r' | b'\n' | 0) {
                        self.pos -= 1;
                    } else {
                        out.extend_from_slice(&self.data[start..self.pos - 1]);
                        start = self.pos;
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        -1
    }

    /// Atoms and dots, without skipping the whitespace between them.
    fn parse_atom_or_dot(&mut self, out: &mut Vec<u8>) -> i32 {
        let start = self.pos;
        while !self.at_end() && (is_atext(self.peek()) || self.peek() == b'.') {
            self.pos += 1;
        }
        out.extend_from_slice(&self.data[start..self.pos]);
        if self.at_end() { 0 } else { self.skip_lwsp() }
    }

    /// `phrase` / `obs-phrase` (RFC 5322 3.2.5, 4.1): words joined by single spaces.
    pub fn parse_phrase(&mut self, out: &mut Vec<u8>) -> i32 {
        if self.at_end() {
            return 0;
        }
        if self.peek() == b'.' {
            return -1;
        }
        loop {
            let ret = if self.peek() == b'"' {
                self.parse_quoted_string(out)
            } else {
                self.parse_atom_or_dot(out)
            };
            if ret <= 0 {
                return ret;
            }
            let c = self.peek();
            if !is_atext(c) && c != b'"' && c != b'.' {
                break;
            }
            out.push(b' ');
        }
        self.skip_lwsp()
    }

    fn parse_domain_literal(&mut self, out: &mut Vec<u8>) -> i32 {
        let mut start = self.pos;
        self.pos += 1;
        while self.pos < self.data.len() {
            match self.peek() {
                0 if self.replace_nuls => {
                    out.extend_from_slice(&self.data[start..self.pos]);
                    out.extend_from_slice(NUL_REPLACEMENT);
                    start = self.pos + 1;
                }
                b'[' => return -1,
                b']' => {
                    out.extend_from_slice(&self.data[start..=self.pos]);
                    self.pos += 1;
                    return self.skip_lwsp();
                }
                b'\n' => {
                    let mut end = self.pos;
                    if end > start && self.data.get(end - 1) == Some(&b'\r') {
                        end -= 1;
                    }
                    out.extend_from_slice(&self.data[start..end]);
                    start = self.pos + 1;
                }
                b'\\' => {
                    self.pos += 1;
                    if self.at_end() {
                        return -1;
                    }
                    if matches!(self.peek(), b'\r' | b'\n' | 0) {
                        out.extend_from_slice(&self.data[start..self.pos]);
                        start = self.pos;
                        self.pos -= 1;
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        -1
    }

    /// `domain` after `@`: dot-atom or domain-literal.
    pub fn parse_domain(&mut self, out: &mut Vec<u8>) -> i32 {
        self.pos += 1;
        if self.skip_lwsp() <= 0 {
            return -1;
        }
        if self.peek() == b'[' {
            self.parse_domain_literal(out)
        } else {
            self.parse_dot_atom(out)
        }
    }

    /// `type "/" subtype` (RFC 2045 5.1). On failure `out` is usually left empty, but — as in
    /// Dovecot, whose BODYSTRUCTURE then shows it — a lone type at the end of the value stays.
    pub fn parse_content_type(&mut self, out: &mut Vec<u8>) -> i32 {
        let base = out.len();
        if self.skip_lwsp() <= 0 {
            return -1;
        }
        if self.parse_mime_token(out) <= 0 || out.len() == base {
            return -1;
        }
        if self.peek() != b'/' {
            out.truncate(base);
            return -1;
        }
        self.pos += 1;
        if self.skip_lwsp() <= 0 {
            out.truncate(base);
            return -1;
        }
        out.push(b'/');
        let sub = out.len();
        let ret = self.parse_mime_token(out);
        if ret < 0 || out.len() == sub || (!self.at_end() && self.peek() != b';') {
            out.truncate(base);
            return -1;
        }
        ret
    }

    /// One `";" attribute "=" value`. Returns 0 at the end, -1 when broken, 1 with a parameter.
    pub fn parse_content_param(&mut self) -> (i32, Vec<u8>, Vec<u8>) {
        let (mut key, mut value) = (Vec::new(), Vec::new());
        if self.at_end() {
            return (0, key, value);
        }
        if self.peek() != b';' {
            return (-1, key, value);
        }
        self.pos += 1;
        if self.skip_lwsp() <= 0 {
            return (-1, key, value);
        }
        if self.parse_mime_token(&mut key) <= 0 || self.peek() != b'=' {
            return (-1, key, value);
        }
        self.pos += 1;
        let mut ret = self.skip_lwsp();
        if ret <= 0 {
            // No value: an empty one.
        } else if self.peek() == b'"' {
            ret = self.parse_quoted_string(&mut value);
        } else if self.peek() == b'=' {
            // Broken but common: name==?utf-8?b?...?= — take everything up to whitespace or ';'.
            while !self.at_end() && !matches!(self.peek(), b';' | b' ' | b'\t' | b'\r' | b'\n') {
                value.push(self.peek());
                self.pos += 1;
            }
        } else {
            ret = self.parse_mime_token(&mut value);
        }
        (if ret < 0 { -1 } else { 1 }, key, value)
    }
}

/// All parameters after a Content-Type or Content-Disposition value, RFC 2231 3-4 continuations
/// (`name*0`, `name*1*`...) joined the way Dovecot's `rfc2231-parser.c` joins them: the joined
/// value keeps its `charset'language'` prefix and %-encoding (the name becomes `name*`), and a
/// set with missing indexes is left as separate `name*N` parameters. Plain parameters come first,
/// in message order, then the joined ones sorted by name.
pub(crate) fn parse_params(lx: &mut Lexer<'_>) -> Vec<(Vec<u8>, Vec<u8>)> {
    struct Ext {
        key: Vec<u8>,
        value: Vec<u8>,
        idx: u32,
        extended: bool,
    }
    let mut result = Vec::new();
    let mut exts: Vec<Ext> = Vec::new();
    // Dovecot keeps the section index of the previous `name*N` when a parameter is just `name*`;
    // replicating that keeps our answers identical for such (rare, broken) messages.
    let mut idx: u32 = 0;
    loop {
        let (ret, key, value) = lx.parse_content_param();
        if ret == 0 {
            break;
        }
        if ret < 0 {
            if lx.at_end() {
                break;
            }
            lx.pos += 1;
            continue;
        }
        let Some(star) = key.iter().position(|&c| c == b'*') else {
            result.push((key, value));
            continue;
        };
        let mut p = star;
        if p + 1 < key.len() {
            p += 1;
            idx = 0;
            while let Some(d) = key.get(p).filter(|d| d.is_ascii_digit()) {
                idx = idx.wrapping_mul(10).wrapping_add(u32::from(d - b'0'));
                p += 1;
            }
        }
        let extended = key.get(p) == Some(&b'*');
        if extended {
            p += 1;
        }
        if p < key.len() {
            result.push((key, value));
        } else {
            exts.push(Ext {
                key: key[..star].to_vec(),
                value,
                idx,
                extended,
            });
        }
    }
    if exts.is_empty() {
        return result;
    }
    exts.sort_by(|a, b| a.key.cmp(&b.key).then(a.idx.cmp(&b.idx)));
    let mut i = 0;
    while i < exts.len() {
        let mut next = i;
        let mut ok = true;
        let mut have_extended = false;
        let mut next_idx = 0u32;
        while let Some(e) = exts.get(next) {
            if !e.key.eq_ignore_ascii_case(&exts[i].key) {
                break;
            }
            if e.idx != next_idx {
                ok = false;
            }
            have_extended |= e.extended;
            next_idx = next_idx.wrapping_add(1);
            next += 1;
        }
        let group = &exts[i..next];
        if !ok {
            for e in group {
                let mut k = e.key.clone();
                k.extend_from_slice(format!("*{}", e.idx).as_bytes());
                if e.extended {
                    k.push(b'*');
                }
                result.push((k, e.value.clone()));
            }
        } else {
            let mut value = Vec::new();
            if !group[0].extended && have_extended {
                value.extend_from_slice(b"''");
            }
            for e in group {
                if !e.extended && have_extended {
                    // A plain section inside an encoded value: protect its '%'.
                    for &c in &e.value {
                        if c == b'%' {
                            value.extend_from_slice(b"%25");
                        } else {
                            value.push(c);
                        }
                    }
                } else {
                    value.extend_from_slice(&e.value);
                }
            }
            let mut key = group[0].key.clone();
            if have_extended {
                key.push(b'*');
            }
            result.push((key, value));
        }
        i = next;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(s: &str) -> Vec<(String, String)> {
        let mut lx = Lexer::new(s.as_bytes());
        parse_params(&mut lx)
            .into_iter()
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(&k).into(),
                    String::from_utf8_lossy(&v).into(),
                )
            })
            .collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn content_type_and_params() {
        let mut lx = Lexer::new(b" Text/Plain ; Charset=\"UTF-8\"; format=flowed (c)");
        let mut t = Vec::new();
        assert_eq!(lx.parse_content_type(&mut t), 1);
        assert_eq!(t, b"Text/Plain");
        assert_eq!(
            parse_params(&mut lx),
            vec![
                (b"Charset".to_vec(), b"UTF-8".to_vec()),
                (b"format".to_vec(), b"flowed".to_vec())
            ]
        );
    }

    #[test]
    fn broken_content_types_leave_nothing() {
        for s in [
            "text;a=b",
            "text/",
            "/plain",
            "text/plain garbage",
            "",
            "  (comment)",
        ] {
            let mut t = Vec::new();
            assert_eq!(
                Lexer::new(s.as_bytes()).parse_content_type(&mut t),
                -1,
                "{s}"
            );
            assert!(t.is_empty(), "{s}");
        }
        let mut t = Vec::new();
        assert_eq!(Lexer::new(b"text").parse_content_type(&mut t), -1);
        assert_eq!(t, b"text");
    }

    #[test]
    fn rfc2231_continuations() {
        assert_eq!(
            params("; a=1; name*1=\"def\"; name*0=abc; z=2"),
            pairs(&[("a", "1"), ("z", "2"), ("name", "abcdef")])
        );
        assert_eq!(
            params("; title*0*=us-ascii'en'This%20is; title*1=\" 100%\""),
            pairs(&[("title*", "us-ascii'en'This%20is 100%25")])
        );
        assert_eq!(
            params("; f*=utf-8''%E2%82%AC"),
            pairs(&[("f*", "utf-8''%E2%82%AC")])
        );
        // A missing section keeps them apart.
        assert_eq!(
            params("; n*0=a; n*2=c"),
            pairs(&[("n*0", "a"), ("n*2", "c")])
        );
        // Dovecot's stale index: `t*` after `n*1` counts as section 1 of `t`.
        assert_eq!(
            params("; n*0=a; n*1=b; t*=x"),
            pairs(&[("n", "ab"), ("t*1*", "x")])
        );
    }

    #[test]
    fn broken_params_are_skipped() {
        // An empty name is read as one, as Dovecot does.
        assert_eq!(
            params("; =x; a=1; ;b; c=\"q"),
            pairs(&[("", "x"), ("a", "1")])
        );
        assert_eq!(
            params("; name==?utf-8?q?x?= ; b=2"),
            pairs(&[("name", "=?utf-8?q?x?="), ("b", "2")])
        );
        assert_eq!(params("; empty="), pairs(&[("empty", "")]));
    }

    #[test]
    fn phrase_and_quoted() {
        let mut out = Vec::new();
        let mut lx = Lexer::new(b"\"Joe \\\"Q\\\" Public\" Jr. <x@y>");
        assert_eq!(lx.parse_phrase(&mut out), 1);
        assert_eq!(out, b"Joe \"Q\" Public Jr.");
        assert_eq!(lx.peek(), b'<');
    }

    #[test]
    fn comments_nest_and_are_remembered() {
        let mut lx = Lexer::new(b"(a (nested) \\) c) x");
        lx.last_comment = Some(Vec::new());
        assert_eq!(lx.skip_lwsp(), 1);
        assert_eq!(lx.peek(), b'x');
        assert_eq!(lx.last_comment.as_deref(), Some(&b"a (nested) ) c"[..]));
        assert_eq!(Lexer::new(b"(unclosed").skip_lwsp(), -1);
    }
}
