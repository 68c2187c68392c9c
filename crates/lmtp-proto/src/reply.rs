//! Replies (RFC 5321 4.2): a three-digit code, an enhanced status code (RFC 2034, RFC 3463)
//! on every reply but the greeting and LHLO's (RFC 2034 3), and one or more text lines.

/// One reply, possibly multi-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// `x.y.z`, written before the text of each line.
    pub enhanced: Option<&'static str>,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn new(code: u16, enhanced: &'static str, text: impl Into<String>) -> Reply {
        Reply {
            code,
            enhanced: Some(enhanced),
            lines: vec![text.into()],
        }
    }

    /// A reply without an enhanced code (the greeting, LHLO).
    pub fn plain(code: u16, lines: Vec<String>) -> Reply {
        Reply {
            code,
            enhanced: None,
            lines,
        }
    }

    /// Whether the code is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// Appends the reply to `out`: `250-` on every line but the last, `250 ` on it. Control
    /// characters in the text are replaced, so a reply is never more lines than it has.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let last = self.lines.len().saturating_sub(1);
        for (i, line) in self.lines.iter().enumerate() {
            out.extend_from_slice(self.code.to_string().as_bytes());
            out.push(if i == last { b' ' } else { b'-' });
            if let Some(enhanced) = self.enhanced {
                out.extend_from_slice(enhanced.as_bytes());
                out.push(b' ');
            }
            out.extend(
                line.bytes()
                    .map(|b| if b.is_ascii_control() { b'?' } else { b }),
            );
            out.extend_from_slice(b"\r\n");
        }
        if self.lines.is_empty() {
            out.extend_from_slice(format!("{} \r\n", self.code).as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(reply: &Reply) -> String {
        let mut out = Vec::new();
        reply.encode(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn single_and_multi_line() {
        assert_eq!(text(&Reply::new(250, "2.0.0", "OK")), "250 2.0.0 OK\r\n");
        assert_eq!(
            text(&Reply::plain(250, vec!["host".into(), "PIPELINING".into()])),
            "250-host\r\n250 PIPELINING\r\n"
        );
        assert_eq!(
            text(&Reply::new(550, "5.1.1", "<a\r\nb> no")),
            "550 5.1.1 <a??b> no\r\n"
        );
        assert!(Reply::new(252, "2.3.3", "x").is_success());
    }
}
