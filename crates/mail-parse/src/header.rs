//! Header fields (RFC 5322 2.2): splitting a header block into fields, unfolding (2.2.3), and
//! the "full value" Dovecot works from.

use std::ops::Range;

/// One header field, possibly folded over several lines.
#[derive(Debug, Clone)]
pub(crate) struct Field<'a> {
    /// The name, without the whitespace some writers put before the colon. For a line without a
    /// colon (broken input) the whole line.
    pub name: &'a [u8],
    /// All its lines, including the final line break (absolute offsets into the message).
    pub lines: Range<usize>,
    has_colon: bool,
    raw: &'a [u8],
}

impl<'a> Field<'a> {
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name.as_bytes())
    }

    /// The value as Dovecot's header parser gives it (`full_value` with
    /// `SKIP_INITIAL_LWSP | DROP_CR`): whitespace after the colon skipped (all of it, unless the
    /// value is only whitespace, then one character), line breaks reduced to LF between the
    /// folded lines, nothing else touched. NULs become U+FFFD as in `message_header_strdup`.
    pub fn value(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.has_colon {
            return out;
        }
        let mut first = true;
        for line in Lines::new(self.raw, self.lines.clone()) {
            let text = self.raw.get(line.text.clone()).unwrap_or_default();
            if first {
                first = false;
                let after = text
                    .iter()
                    .position(|&c| c == b':')
                    .map_or(text.len(), |p| p + 1);
                let v = text.get(after..).unwrap_or_default();
                let skip = v.iter().take_while(|&&c| c == b' ' || c == b'\t').count();
                let skip = if skip == v.len() { skip.min(1) } else { skip };
                out.extend_from_slice(v.get(skip..).unwrap_or_default());
            } else {
                out.push(b'\n');
                out.extend_from_slice(text);
            }
        }
        if out.contains(&0) {
            out = replace_nuls(&out);
        }
        out
    }
}

fn replace_nuls(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() + 8);
    for &c in v {
        if c == 0 {
            out.extend_from_slice(crate::rfc822::NUL_REPLACEMENT);
        } else {
            out.push(c);
        }
    }
    out
}

/// One physical line: its text without the line break, and where the next line starts.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub start: usize,
    pub text: Range<usize>,
    pub next: usize,
}

impl Line {
    pub fn is_blank(&self) -> bool {
        self.text.is_empty() && self.next > self.start
    }
}

/// The lines of `raw[range]`; a line ends after LF (its CR, if any, is not part of the text) or at
/// the end of the range.
pub(crate) struct Lines<'a> {
    raw: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Lines<'a> {
    pub fn new(raw: &'a [u8], range: Range<usize>) -> Self {
        let end = range.end.min(raw.len());
        Lines {
            raw,
            pos: range.start.min(end),
            end,
        }
    }
}

/// The line starting at `pos`, looking no further than `end`.
pub(crate) fn line_at(raw: &[u8], pos: usize, end: usize) -> Line {
    let hay = raw.get(pos..end).unwrap_or_default();
    match memchr::memchr(b'\n', hay) {
        Some(i) => {
            let lf = pos + i;
            let text_end = if lf > pos && raw.get(lf - 1) == Some(&b'\r') {
                lf - 1
            } else {
                lf
            };
            Line {
                start: pos,
                text: pos..text_end,
                next: lf + 1,
            }
        }
        None => Line {
            start: pos,
            text: pos..end.max(pos),
            next: end.max(pos),
        },
    }
}

impl Iterator for Lines<'_> {
    type Item = Line;
    fn next(&mut self) -> Option<Line> {
        if self.pos >= self.end {
            return None;
        }
        let line = line_at(self.raw, self.pos, self.end);
        self.pos = line.next;
        Some(line)
    }
}

/// The fields of the header block `raw[range]`, stopping at the blank line that ends it.
pub(crate) fn fields(raw: &[u8], range: Range<usize>) -> Vec<Field<'_>> {
    let mut out: Vec<Field<'_>> = Vec::new();
    for line in Lines::new(raw, range) {
        let text = raw.get(line.text.clone()).unwrap_or_default();
        let folded = matches!(text.first(), Some(b' ' | b'\t'));
        if folded {
            if let Some(last) = out.last_mut() {
                last.lines.end = line.next;
                continue;
            }
        } else if line.is_blank() {
            break;
        }
        let (name, has_colon) = match text.iter().position(|&c| c == b':') {
            Some(colon) => {
                let n = text.get(..colon).unwrap_or_default();
                let trimmed = n.len()
                    - n.iter()
                        .rev()
                        .take_while(|&&c| c == b' ' || c == b'\t')
                        .count();
                (n.get(..trimmed).unwrap_or_default(), true)
            }
            None => (text, false),
        };
        out.push(Field {
            name,
            lines: line.start..line.next,
            has_colon,
            raw,
        });
    }
    out
}

/// Unfolds a value for display: line breaks removed (a space inserted where the next line does
/// not start with whitespace), as Dovecot's `imap_append_nstring_nolf` does for ENVELOPE and
/// BODYSTRUCTURE strings.
pub(crate) fn nolf(v: Vec<u8>) -> Vec<u8> {
    if !v.iter().any(|&c| c == b'\r' || c == b'\n') {
        return v;
    }
    let mut out = Vec::with_capacity(v.len());
    for (i, &c) in v.iter().enumerate() {
        if c != b'\r' && c != b'\n' {
            out.push(c);
        } else if !matches!(v.get(i + 1), None | Some(b' ' | b'\t' | b'\r' | b'\n')) {
            out.push(b' ');
        }
    }
    out
}

/// Tidies a value for people, as Dovecot's `imap_append_string_for_humans` does for the ENVELOPE
/// subject and display names: whitespace runs and line breaks become one space, leading and
/// trailing whitespace goes (a NUL would become 0x80, as there).
pub(crate) fn for_humans(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut last_space = true;
    for &c in v {
        match c {
            b'\r' | b'\n' | b'\t' | b' ' => {
                if !last_space {
                    out.push(b' ');
                }
                last_space = true;
            }
            0 => {
                out.push(0x80);
                last_space = false;
            }
            _ => {
                out.push(c);
                last_space = false;
            }
        }
    }
    if last_space && out.last() == Some(&b' ') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(raw: &[u8]) -> Vec<(String, String)> {
        fields(raw, 0..raw.len())
            .iter()
            .map(|f| {
                (
                    String::from_utf8_lossy(f.name).into_owned(),
                    String::from_utf8_lossy(&f.value()).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn folding_and_values() {
        let raw =
            b"Subject:  two\r\n  lines\r\nX-Empty:\r\nX-Space:   \r\nName : v\r\n\r\nBody: no\r\n";
        assert_eq!(
            all(raw),
            vec![
                ("Subject".into(), "two\n  lines".into()),
                ("X-Empty".into(), "".into()),
                ("X-Space".into(), "  ".into()),
                ("Name".into(), "v".into()),
            ]
        );
        assert_eq!(nolf(b"two\n  lines".to_vec()), b"two  lines");
        assert_eq!(nolf(b"a\nb".to_vec()), b"a b");
    }

    #[test]
    fn lf_only_no_colon_and_no_final_newline() {
        let raw = b" lead: x\nbroken line\nTo: a\n\tb";
        let f = all(raw);
        assert_eq!(f[0], (" lead".into(), "x".into()));
        assert_eq!(f[1], ("broken line".into(), "".into()));
        assert_eq!(f[2], ("To".into(), "a\n\tb".into()));
        let fs = fields(raw, 0..raw.len());
        assert_eq!(fs[2].lines.end, raw.len());
    }

    #[test]
    fn for_humans_tidies_whitespace() {
        assert_eq!(for_humans(b"\n\tTabbed  start \r\n"), b"Tabbed start");
        assert_eq!(for_humans(b"   "), b"");
        assert_eq!(for_humans(b"a\n\t\n b"), b"a b");
        assert_eq!(for_humans(b"\"q\\\""), b"\"q\\\"");
    }

    #[test]
    fn nuls_are_replaced() {
        assert_eq!(all(b"A: x\0y\n"), vec![("A".into(), "x\u{FFFD}y".into())]);
    }
}
