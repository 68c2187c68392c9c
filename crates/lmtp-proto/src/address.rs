//! Envelope addresses: the `Reverse-path` of MAIL and the `Forward-path` of RCPT
//! (RFC 5321 4.1.2), parsed strictly enough that what a session logs, looks up or writes into
//! a `Received:` header is a plain address and never a second header line.

use std::fmt;

/// Longest path, angle brackets included (RFC 5321 4.5.3.1.3).
pub const MAX_PATH: usize = 256;

/// A mailbox `local-part@domain`, or a bare local part (`<postmaster>`, RFC 5321 4.1.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// The local part as sent: a dot-string, or a quoted-string with its quotes.
    local_raw: String,
    /// The local part with quoting undone: what a user database is asked about.
    local: String,
    domain: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("path not enclosed in angle brackets")]
    NoBrackets,
    #[error("path too long")]
    TooLong,
    #[error("invalid local part")]
    LocalPart,
    #[error("invalid domain")]
    Domain,
}

impl Address {
    /// The local part, unquoted.
    pub fn local_part(&self) -> &str {
        &self.local
    }

    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    /// The local part without its `+detail` (the part from the first of `delimiters` on), as
    /// Dovecot's `recipient_delimiter` strips it; the whole local part when `delimiters` is
    /// empty or none occurs.
    pub fn local_part_without_detail(&self, delimiters: &str) -> &str {
        match self.local.find(|c| delimiters.contains(c)) {
            Some(at) if !delimiters.is_empty() => &self.local[..at],
            _ => &self.local,
        }
    }

    /// Parses `<local@domain>` (also `<postmaster>`); a source route (`<@a,@b:x@y>`, RFC 5321
    /// Appendix C) is accepted and dropped. `<>` is not an address: see [`parse_reverse_path`].
    pub fn parse_path(path: &str) -> Result<Address, AddressError> {
        if path.len() > MAX_PATH {
            return Err(AddressError::TooLong);
        }
        let inner = path
            .strip_prefix('<')
            .and_then(|p| p.strip_suffix('>'))
            .ok_or(AddressError::NoBrackets)?;
        let inner = match inner.strip_prefix('@') {
            Some(route) => route.split_once(':').ok_or(AddressError::Domain)?.1,
            None => inner,
        };
        Address::parse_mailbox(inner)
    }

    /// Parses `local@domain` or a bare local part, without brackets.
    pub fn parse_mailbox(text: &str) -> Result<Address, AddressError> {
        let (local_raw, local, rest) = if let Some(quoted) = text.strip_prefix('"') {
            let mut local = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    '\\' => match chars.next() {
                        Some((_, q)) if (' '..='~').contains(&q) => local.push(q),
                        _ => return Err(AddressError::LocalPart),
                    },
                    ' '..='~' => local.push(c),
                    _ => return Err(AddressError::LocalPart),
                }
            }
            let end = end.ok_or(AddressError::LocalPart)?;
            let raw = &text[..end + 2];
            (raw.to_owned(), local, &quoted[end + 1..])
        } else {
            let end = text.find('@').unwrap_or(text.len());
            let local = &text[..end];
            if !is_dot_string(local) {
                return Err(AddressError::LocalPart);
            }
            (local.to_owned(), local.to_owned(), &text[end..])
        };
        let domain = match rest {
            "" => None,
            _ => {
                let domain = rest.strip_prefix('@').ok_or(AddressError::LocalPart)?;
                if !is_domain(domain) {
                    return Err(AddressError::Domain);
                }
                Some(domain.to_owned())
            }
        };
        Ok(Address {
            local_raw,
            local,
            domain,
        })
    }
}

/// The reverse-path of MAIL FROM: `None` for the null path `<>` (bounces, RFC 5321 4.5.5).
pub fn parse_reverse_path(path: &str) -> Result<Option<Address>, AddressError> {
    if path == "<>" {
        return Ok(None);
    }
    Address::parse_path(path).map(Some)
}

impl fmt::Display for Address {
    /// The address as SMTP writes it, without brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.local_raw)?;
        if let Some(domain) = &self.domain {
            write!(f, "@{domain}")?;
        }
        Ok(())
    }
}

/// RFC 5321 `atext` (RFC 5322 3.2.3).
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c)
}

/// `Dot-string = Atom *("."  Atom)`.
fn is_dot_string(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(is_atext))
}

/// A domain name (`sub-domain *("." sub-domain)`) or an address literal (`[192.0.2.1]`,
/// `[IPv6:...]`).
fn is_domain(s: &str) -> bool {
    if let Some(literal) = s.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
        return !literal.is_empty()
            && literal
                .chars()
                .all(|c| c.is_ascii_graphic() && !"[]\\".contains(c));
    }
    !s.is_empty()
        && s.len() <= 255
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let a = Address::parse_path("<bob+lists@Example.COM>").unwrap();
        assert_eq!(a.local_part(), "bob+lists");
        assert_eq!(a.domain(), Some("Example.COM"));
        assert_eq!(a.local_part_without_detail("+"), "bob");
        assert_eq!(a.local_part_without_detail("-+"), "bob");
        assert_eq!(a.local_part_without_detail(""), "bob+lists");
        assert_eq!(a.to_string(), "bob+lists@Example.COM");

        let q = Address::parse_path("<\"john doe\\\"x\"@[192.0.2.1]>").unwrap();
        assert_eq!(q.local_part(), "john doe\"x");
        assert_eq!(q.to_string(), "\"john doe\\\"x\"@[192.0.2.1]");

        let p = Address::parse_path("<postmaster>").unwrap();
        assert_eq!((p.local_part(), p.domain()), ("postmaster", None));
        let routed = Address::parse_path("<@a.example,@b.example:u@c.example>").unwrap();
        assert_eq!(routed.to_string(), "u@c.example");

        assert_eq!(parse_reverse_path("<>"), Ok(None));
        for (bad, why) in [
            ("bob@example.com", AddressError::NoBrackets),
            ("<bob@example.com", AddressError::NoBrackets),
            ("<>", AddressError::LocalPart),
            ("<.bob@x>", AddressError::LocalPart),
            ("<bo..b@x>", AddressError::LocalPart),
            ("<bob@>", AddressError::Domain),
            ("<bob@-x.example>", AddressError::Domain),
            ("<bob@x\r\nBcc: y>", AddressError::Domain),
            ("<b\rob@x>", AddressError::LocalPart),
            ("<\"unterminated@x>", AddressError::LocalPart),
            ("<\"a\"b@x>", AddressError::LocalPart),
        ] {
            assert_eq!(Address::parse_path(bad), Err(why), "{bad:?}");
        }
        let long = format!("<{}@example.com>", "a".repeat(250));
        assert_eq!(Address::parse_path(&long), Err(AddressError::TooLong));
    }
}
