//! The MIME part tree (RFC 2045 2.6, RFC 2046 5.1, 5.2.1): where each part's header and body
//! lie in the message bytes.
//!
//! The reading follows Dovecot 2.3's `message-parser.c`, because BODYSTRUCTURE sizes and
//! BODY[section] bytes must match what clients already cached from it:
//! - a boundary line is `--` plus one of the open boundaries as a prefix; when several match the
//!   longest wins, and among equal ones the innermost (RFC 2046 5.1.2: the same boundary may be
//!   reused in nested parts);
//! - a part's body ends before the line break that precedes the boundary line (RFC 2046 5.1.1:
//!   that CRLF belongs to the boundary), preamble and epilogue belong to the multipart;
//! - a boundary of an outer multipart closes all inner parts (missing close-delimiters), and the
//!   end of the message closes everything;
//! - a boundary line inside a header ends that header early;
//! - without Content-Type a part is text/plain, or message/rfc822 inside multipart/digest
//!   (RFC 2046 5.1.5);
//! - at most 100 levels of nesting and 10,000 parts (Dovecot's defaults): deeper multipart and
//!   message/rfc822 parts become leaves, and after the last allowed part no more boundaries are
//!   recognised, so hostile input can neither overflow the stack nor explode the tree.
//!
//! The parser keeps an explicit stack, never recursing, and looks at each byte a bounded number
//! of times.

use crate::header::{self, line_at};
use crate::mime::{self, MediaKind};
use crate::{Part, PartChildren};

/// Nesting limit (Dovecot's `MESSAGE_PARSER_DEFAULT_MAX_NESTED_MIME_PARTS`): a multipart or
/// message/rfc822 part this deep is a leaf.
pub const MAX_NESTED: usize = 100;
/// Part count limit, the root included (Dovecot's `MESSAGE_PARSER_DEFAULT_MAX_TOTAL_MIME_PARTS`):
/// after the last allowed part no boundary is recognised, so that part runs to the end.
pub const MAX_TOTAL: usize = 10_000;
/// Longer boundaries are truncated (RFC 2046 allows 70 characters; Dovecot keeps 80).
const BOUNDARY_MAX: usize = 80;
/// How much of a boundary line without line break is looked at.
const BOUNDARY_LINE_MAX: usize = BOUNDARY_MAX + 4;

/// A part being read.
struct Open {
    start: usize,
    header_end: usize,
    /// Bytes of the header's last line break that went to the parent's body because a boundary
    /// line ended the header (Dovecot counts that CRLF as part of the boundary).
    given: usize,
    depth: usize,
    /// A direct child of a multipart: its Content-* fields count even without MIME-Version.
    mime_child: bool,
    /// The parent is multipart/digest, so a missing Content-Type means message/rfc822.
    in_digest: bool,
    /// This part is multipart/digest.
    digest: bool,
    kind: Kind,
}

enum Kind {
    Leaf,
    Multipart(Vec<Part>),
    Message(Option<Box<Part>>),
}

/// An open boundary and the index (in the stack) of the multipart that owns it.
struct Boundary {
    text: Vec<u8>,
    owner: usize,
}

struct Found {
    /// Where the boundary line starts.
    line: usize,
    /// Index into the boundary list.
    index: usize,
    /// `--boundary--`: the owner has no more parts.
    close: bool,
}

enum State {
    Header(usize),
    Body(usize),
}

pub(crate) fn parse(raw: &[u8]) -> Part {
    Parser {
        raw,
        stack: Vec::new(),
        bounds: Vec::new(),
        total: 1,
    }
    .run()
}

struct Parser<'a> {
    raw: &'a [u8],
    stack: Vec<Open>,
    bounds: Vec<Boundary>,
    /// Parts created so far, the root included.
    total: usize,
}

impl<'a> Parser<'a> {
    fn run(mut self) -> Part {
        self.stack.push(Open::new(0, 0, false, false));
        let mut state = State::Header(0);
        loop {
            state = match state {
                State::Header(pos) => self.header(pos),
                State::Body(pos) => match self.find_boundary(pos) {
                    None => {
                        let end = self.raw.len();
                        return self.close_all(end);
                    }
                    Some(found) => self.at_boundary(pos, found),
                },
            };
        }
    }

    /// Reads the header of the innermost open part, decides what its body is and where reading
    /// continues.
    fn header(&mut self, start: usize) -> State {
        let raw = self.raw;
        let len = raw.len();
        let mut pos = start;
        let mut prev_newline = 0;
        // (end of header, where reading continues, the blank line that ended it)
        let (mut header_end, mut next, blank) = loop {
            if pos >= len {
                break (len, len, None);
            }
            if self.find_boundary_at(pos).is_some() {
                // The line break before a boundary line belongs to the boundary.
                break (pos - prev_newline, pos, None);
            }
            let line = line_at(raw, pos, len);
            if line.is_blank() {
                break (line.next, line.next, Some(line));
            }
            prev_newline = line.next - line.text.end;
            pos = line.next;
        };

        let fields = header::fields(raw, start..header_end);
        let Some(top_index) = self.stack.len().checked_sub(1) else {
            return State::Body(next);
        };
        let too_deep;
        let info;
        {
            let Some(top) = self.stack.last_mut() else {
                return State::Body(next);
            };
            info = mime::classify(&fields, top.mime_child, top.in_digest);
            top.digest = info.kind == MediaKind::Digest;
            too_deep = top.depth + 1 >= MAX_NESTED;
            if matches!(info.kind, MediaKind::Multipart | MediaKind::Digest) && !too_deep {
                top.kind = Kind::Multipart(Vec::new());
                // A multipart's parts begin only after a header that ended with a blank line;
                // without a boundary it stays a multipart without parts.
                if let (Some(_), Some(mut text)) = (&blank, info.boundary) {
                    text.truncate(BOUNDARY_MAX);
                    self.bounds.push(Boundary {
                        text,
                        owner: top_index,
                    });
                }
            }
        }
        // When an outer boundary line follows the blank line at once, that blank line's break is
        // the boundary's CRLF (RFC 2046 5.1.1): the header ends before it and the body is empty.
        if let Some(line) = &blank {
            let outer = self
                .find_boundary_at(line.next)
                .and_then(|f| self.bounds.get(f.index));
            if outer.is_some_and(|b| b.owner != top_index) {
                header_end = line.start;
                next = line.next;
            }
        }
        let Some(top) = self.stack.last_mut() else {
            return State::Body(next);
        };
        top.header_end = header_end;
        top.given = next - header_end;
        match info.kind {
            MediaKind::Message if !too_deep && self.total < MAX_TOTAL => {
                top.kind = Kind::Message(None);
                let depth = top.depth + 1;
                self.total += 1;
                self.stack.push(Open::new(next, depth, false, false));
                State::Header(next)
            }
            _ => State::Body(next),
        }
    }

    /// Handles a boundary line found while reading from `pos`: closes the parts it ends, then
    /// either starts the owner's next part or reads on in its epilogue.
    fn at_boundary(&mut self, pos: usize, found: Found) -> State {
        let raw = self.raw;
        let consumed_end = if found.line == pos {
            pos
        } else {
            // The line break before the boundary line belongs to it.
            let mut e = found.line - 1;
            if e > pos && raw.get(e - 1) == Some(&b'\r') {
                e -= 1;
            }
            e
        };
        let Some(owner) = self.bounds.get(found.index).map(|b| b.owner) else {
            return State::Body(self.raw.len());
        };
        self.close_until(owner, consumed_end);
        self.bounds.truncate(if found.close {
            found.index
        } else {
            found.index + 1
        });
        let next = line_at(raw, found.line, raw.len()).next;
        let owner_is_top = self.stack.len() == owner + 1;
        if owner_is_top && self.bounds.last().is_some_and(|b| b.owner == owner) {
            let (depth, digest) = self
                .stack
                .last()
                .map_or((1, false), |o| (o.depth + 1, o.digest));
            self.total += 1;
            self.stack.push(Open::new(next, depth, true, digest));
            State::Header(next)
        } else {
            State::Body(next)
        }
    }

    /// Closes the open parts above `owner`. The innermost one read up to `consumed_end`; each
    /// parent's body ends where its last child's reading did (the child's body plus the line
    /// break its header gave away, which Dovecot counts in the parent's body).
    fn close_until(&mut self, owner: usize, consumed_end: usize) {
        let mut end = consumed_end;
        while self.stack.len() > owner + 1 {
            let Some((part, consumed)) = self.pop(end) else {
                break;
            };
            end = consumed;
            self.attach(part);
        }
    }

    /// Closes the innermost part, whose reading ended at `end`; returns it and where its
    /// reading (header break included) ended.
    fn pop(&mut self, end: usize) -> Option<(Part, usize)> {
        let open = self.stack.pop()?;
        // A header cut short by a boundary line leaves an empty body: what follows is the
        // boundary.
        let body_end = if open.given > 0 {
            open.header_end
        } else {
            end.max(open.header_end)
        };
        let consumed = body_end + open.given;
        Some((open.finish(body_end), consumed))
    }

    /// The end of the message closes every open part.
    fn close_all(mut self, end: usize) -> Part {
        let mut end = end;
        while let Some((part, consumed)) = self.pop(end) {
            end = consumed;
            if self.stack.is_empty() {
                return part;
            }
            self.attach(part);
        }
        Part {
            header: 0..0,
            body: 0..end,
            children: PartChildren::None,
        }
    }

    fn attach(&mut self, part: Part) {
        if let Some(parent) = self.stack.last_mut() {
            match &mut parent.kind {
                Kind::Multipart(children) => children.push(part),
                Kind::Message(child) => *child = Some(Box::new(part)),
                Kind::Leaf => {}
            }
        }
    }

    /// The first boundary line at or after `pos` (which is a line start).
    fn find_boundary(&self, pos: usize) -> Option<Found> {
        if self.bounds.is_empty() || self.total >= MAX_TOTAL {
            return None;
        }
        if let Some(f) = self.find_boundary_at(pos) {
            return Some(f);
        }
        let hay = self.raw.get(pos..)?;
        memchr::memmem::find_iter(hay, b"\n--").find_map(|i| self.find_boundary_at(pos + i + 1))
    }

    /// Whether the line at `line` is a boundary line of an open multipart (Dovecot's
    /// `boundary_line_find` + `boundary_find`).
    fn find_boundary_at(&self, line: usize) -> Option<Found> {
        if self.bounds.is_empty() || self.total >= MAX_TOTAL {
            return None;
        }
        let raw = self.raw;
        let rest = raw.get(line..)?.strip_prefix(b"--")?;
        let wanted = match memchr::memchr(b'\n', rest) {
            Some(lf) => {
                let mut n = lf;
                if n > 0 && rest.get(n - 1) == Some(&b'\r') {
                    n -= 1;
                }
                if n > 2 && rest.get(n - 2..n) == Some(b"--") {
                    n -= 2;
                }
                n
            }
            None => rest.len().min(BOUNDARY_LINE_MAX),
        };
        let mut best: Option<usize> = None;
        for (i, b) in self.bounds.iter().enumerate().rev() {
            let better = best
                .and_then(|x| self.bounds.get(x))
                .is_none_or(|x| x.text.len() < b.text.len());
            if b.text.len() <= wanted && rest.starts_with(&b.text) && better {
                best = Some(i);
                if b.text.len() == wanted {
                    break;
                }
            }
        }
        let index = best?;
        let blen = self.bounds.get(index)?.text.len();
        let close = rest.get(blen..blen + 2) == Some(b"--");
        Some(Found { line, index, close })
    }
}

impl Open {
    fn new(start: usize, depth: usize, mime_child: bool, in_digest: bool) -> Self {
        Open {
            start,
            header_end: start,
            given: 0,
            depth,
            mime_child,
            in_digest,
            digest: false,
            kind: Kind::Leaf,
        }
    }

    fn finish(self, body_end: usize) -> Part {
        let children = match self.kind {
            Kind::Leaf => PartChildren::None,
            Kind::Multipart(c) => PartChildren::Multipart(c),
            Kind::Message(Some(mut c)) => {
                if self.given > 0 {
                    // The header ran into a boundary line, so the embedded message is empty;
                    // place it inside this part's (empty) body, where Dovecot counts it.
                    let at = self.header_end;
                    *c = Part {
                        header: at..at,
                        body: at..at,
                        children: PartChildren::None,
                    };
                }
                PartChildren::Message(c)
            }
            // A message/rfc822 part whose embedded message never started (cannot happen: the
            // child is pushed together with the kind) reads as a leaf.
            Kind::Message(None) => PartChildren::None,
        };
        Part {
            header: self.start..self.header_end,
            body: self.header_end..body_end,
            children,
        }
    }
}

/// The ranges of every part, depth first, for tests and assertions.
#[cfg(test)]
pub(crate) fn flatten(p: &Part, out: &mut Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>) {
    out.push((p.header.clone(), p.body.clone()));
    match &p.children {
        PartChildren::None => {}
        PartChildren::Multipart(c) => c.iter().for_each(|c| flatten(c, out)),
        PartChildren::Message(c) => flatten(c, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (header, body) of every part, depth first, as text.
    fn parts(raw: &str) -> Vec<(String, String)> {
        let mut ranges = Vec::new();
        flatten(&parse(raw.as_bytes()), &mut ranges);
        ranges
            .into_iter()
            .map(|(h, b)| (raw[h].to_string(), raw[b].to_string()))
            .collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(h, b)| (h.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn multipart_with_preamble_and_epilogue() {
        let raw = "Content-Type: multipart/mixed; boundary=b\n\npre\n--b\nA: 1\n\none\n--b\n\ntwo\n\n--b--\nepi\n";
        assert_eq!(
            parts(raw),
            pairs(&[
                (
                    "Content-Type: multipart/mixed; boundary=b\n\n",
                    "pre\n--b\nA: 1\n\none\n--b\n\ntwo\n\n--b--\nepi\n"
                ),
                ("A: 1\n\n", "one"),
                ("\n", "two\n"),
            ])
        );
    }

    #[test]
    fn innermost_and_longest_boundary_wins() {
        let raw = concat!(
            "Content-Type: multipart/mixed; boundary=a\n\n--a\n",
            "Content-Type: multipart/mixed; boundary=ab\n\n--ab\n\nx\n--a\n\ny\n--a--\n"
        );
        let p = parts(raw);
        // The inner multipart is closed by the outer boundary: its part "x" ends there.
        assert_eq!(p[2], ("\n".into(), "x".into()));
        assert_eq!(p[3], ("\n".into(), "y".into()));
        assert_eq!(p.len(), 4);
    }

    #[test]
    fn boundary_lines_cut_headers_short() {
        // A boundary line right after a header line ends the header there; one right after the
        // blank line takes that line's break as its own.
        let raw = "Content-Type: multipart/mixed; boundary=b\n\n--b\nA: 1\n--b\nB: 2\n\n--b--\n";
        assert_eq!(p_tail(raw), pairs(&[("A: 1", ""), ("B: 2\n", "")]));
    }

    fn p_tail(raw: &str) -> Vec<(String, String)> {
        parts(raw).into_iter().skip(1).collect()
    }

    #[test]
    fn missing_close_delimiter_and_lf_crlf() {
        let raw = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nlast\r\n";
        assert_eq!(p_tail(raw), pairs(&[("\r\n", "last\r\n")]));
    }

    #[test]
    fn message_rfc822_and_digest() {
        let raw = concat!(
            "Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: in\n\nbody\n",
            "--d\nContent-Type: message/rfc822\n\nSubject: two\n\n2\n--d--\n"
        );
        assert_eq!(
            p_tail(raw),
            pairs(&[
                ("\n", "Subject: in\n\nbody"),
                ("Subject: in\n\n", "body"),
                ("Content-Type: message/rfc822\n\n", "Subject: two\n\n2"),
                ("Subject: two\n\n", "2"),
            ])
        );
    }

    #[test]
    fn nesting_stops_at_the_limit() {
        let mut raw = String::new();
        for i in 0..150 {
            raw.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=\"n{i}x\"\n\n--n{i}x\n"
            ));
        }
        let mut ranges = Vec::new();
        flatten(&parse(raw.as_bytes()), &mut ranges);
        assert_eq!(ranges.len(), MAX_NESTED);
    }

    #[test]
    fn empty_and_headerless_input() {
        assert_eq!(parts(""), pairs(&[("", "")]));
        assert_eq!(parts("\r\nbody"), pairs(&[("\r\n", "body")]));
        assert_eq!(parts("Subject: x"), pairs(&[("Subject: x", "")]));
    }
}
