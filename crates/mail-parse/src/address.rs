//! Address lists (RFC 5322 3.4, obsolete syntax of 4.4) into ENVELOPE addresses (RFC 3501
//! 7.4.2), read as Dovecot's `message-address.c` reads them with `FILL_MISSING`: what cannot be
//! read becomes `MISSING_MAILBOX`, `MISSING_DOMAIN`, `SYNTAX_ERROR` or `INVALID_ROUTE`, so a
//! client always gets a well-formed list.

use crate::Address;
use crate::header::{for_humans, nolf};
use crate::rfc822::Lexer;

#[derive(Default)]
struct Addr {
    name: Option<Vec<u8>>,
    route: Option<Vec<u8>>,
    mailbox: Option<Vec<u8>>,
    domain: Option<Vec<u8>>,
    invalid: bool,
}

struct Ctx<'a> {
    lx: Lexer<'a>,
    out: Vec<Address>,
    addr: Addr,
    s: Vec<u8>,
}

/// Parses an address-list field value (its full value, folding included).
pub(crate) fn parse_address_list(value: &[u8]) -> Vec<Address> {
    let mut lx = Lexer::new(value);
    lx.last_comment = Some(Vec::new());
    lx.replace_nuls = true;
    let mut c = Ctx {
        lx,
        out: Vec::new(),
        addr: Addr::default(),
        s: Vec::new(),
    };
    if c.lx.skip_lwsp() > 0 {
        c.address_list();
    }
    c.out
}

impl Ctx<'_> {
    fn add(&mut self) {
        let a = std::mem::take(&mut self.addr);
        let clean = |v: Option<Vec<u8>>| v.map(nolf);
        self.out.push(Address {
            name: a.name.map(|n| for_humans(&n)),
            adl: clean(a.route),
            mailbox: clean(a.mailbox),
            host: clean(a.domain),
        });
    }

    fn add_fixed(&mut self) {
        if self.addr.mailbox.is_none() {
            self.addr.mailbox = Some(b"MISSING_MAILBOX".to_vec());
            self.addr.invalid = true;
        }
        if self.addr.domain.as_ref().is_none_or(|d| d.is_empty()) {
            self.addr.domain = Some(b"MISSING_DOMAIN".to_vec());
            self.addr.invalid = true;
        }
        self.add();
    }

    fn local_part(&mut self) -> i32 {
        if self.lx.at_end() {
            return -1;
        }
        self.s.clear();
        let ret = if self.lx.peek() == b'"' {
            self.lx.parse_quoted_string(&mut self.s)
        } else {
            self.nonstrict_dot_atom()
        };
        if ret < 0 {
            return -1;
        }
        self.addr.mailbox = Some(self.s.clone());
        ret
    }

    /// A local part whose dots need not separate atoms (`a..b`, `.a`, `a.`), which mailers
    /// produce and Dovecot accepts (its `NON_STRICT_DOTS` reading).
    fn nonstrict_dot_atom(&mut self) -> i32 {
        let mut ret = -1;
        loop {
            while !self.lx.at_end() && self.lx.peek() == b'.' {
                self.s.push(b'.');
                self.lx.pos += 1;
                if self.lx.at_end() {
                    // The local part parsed; the @domain is missing.
                    return 0;
                }
                ret = 1;
            }
            if self.lx.peek() == b'@' {
                break;
            }
            ret = self.lx.parse_atom(&mut self.s);
            if ret <= 0 || self.lx.peek() != b'.' {
                break;
            }
        }
        ret
    }

    fn domain(&mut self) -> i32 {
        self.s.clear();
        let ret = self.lx.parse_domain(&mut self.s);
        if ret < 0 {
            return -1;
        }
        self.addr.domain = Some(self.s.clone());
        ret
    }

    /// `obs-domain-list` (RFC 5322 4.4), the source route of `<@a,@b:user@host>`.
    fn domain_list(&mut self) -> i32 {
        self.s.clear();
        loop {
            if self.lx.at_end() {
                return 0;
            }
            if self.lx.peek() != b'@' {
                break;
            }
            if !self.s.is_empty() {
                self.s.push(b',');
            }
            self.s.push(b'@');
            let ret = self.lx.parse_domain(&mut self.s);
            if ret <= 0 {
                return ret;
            }
            while self.lx.skip_lwsp() > 0 && self.lx.peek() == b',' {
                self.lx.pos += 1;
            }
        }
        self.addr.route = Some(self.s.clone());
        1
    }

    fn angle_addr(&mut self) -> i32 {
        self.lx.pos += 1;
        if self.lx.skip_lwsp() <= 0 {
            return -1;
        }
        if self.lx.peek() == b'@' {
            if self.domain_list() > 0 && self.lx.peek() == b':' {
                self.lx.pos += 1;
            } else {
                self.addr.route = Some(b"INVALID_ROUTE".to_vec());
                if self.lx.at_end() {
                    return -1;
                }
            }
            if self.lx.skip_lwsp() <= 0 {
                return -1;
            }
        }
        if self.lx.peek() != b'>' {
            if self.local_part() <= 0 {
                return -1;
            }
            if self.lx.peek() == b'@' && self.domain() <= 0 {
                return -1;
            }
        }
        if self.lx.peek() != b'>' {
            return -1;
        }
        self.lx.pos += 1;
        self.lx.skip_lwsp()
    }

    fn name_addr(&mut self) -> i32 {
        self.s.clear();
        if self.lx.parse_phrase(&mut self.s) <= 0 || self.lx.peek() != b'<' {
            return -1;
        }
        self.addr.name = (!self.s.is_empty()).then(|| self.s.clone());
        if self.angle_addr() < 0 {
            self.addr.domain = Some(b"SYNTAX_ERROR".to_vec());
            self.addr.invalid = true;
        }
        if self.lx.at_end() { 0 } else { 1 }
    }

    fn addr_spec(&mut self) -> i32 {
        if self.lx.at_end() {
            return -1;
        }
        if let Some(c) = self.lx.last_comment.as_mut() {
            c.clear();
        }
        let quoted = self.lx.peek() == b'"';
        let mut ret = self.local_part();
        if ret <= 0 {
            self.addr.invalid = true;
        }
        let mut ret2 = -2;
        if ret != 0 && !self.lx.at_end() && self.lx.peek() == b'@' {
            ret2 = self.domain();
            if ret2 <= 0 {
                ret = ret2;
            }
        }
        let comment = self.lx.last_comment.clone().unwrap_or_default();
        if !comment.is_empty() {
            self.addr.name = Some(comment);
        } else if ret2 == -2 {
            // A lone word is a mailbox without domain; more words make it a display name.
            self.s.push(b' ');
            let before = self.s.len();
            self.lx.parse_phrase(&mut self.s);
            if self.s.len() != before {
                self.addr.mailbox = None;
                self.addr.name = Some(self.s.clone());
            } else if !quoted {
                self.addr.domain = Some(Vec::new());
            }
            self.addr.invalid = true;
            ret = -1;
        }
        ret
    }

    fn mailbox(&mut self) -> i32 {
        let start = self.lx.pos;
        let mut ret = self.name_addr();
        if ret < 0 {
            self.lx.pos = start;
            ret = self.addr_spec();
            let a = &mut self.addr;
            if a.invalid && a.name.is_none() && a.mailbox.is_some() && a.domain.is_none() {
                a.name = a.mailbox.take();
            }
        }
        if ret < 0 {
            self.addr.invalid = true;
        }
        self.add_fixed();
        ret
    }

    /// `group` (RFC 5322 3.4): a start marker carrying the name, the members, an end marker.
    fn group(&mut self) -> i32 {
        self.s.clear();
        if self.lx.parse_phrase(&mut self.s) <= 0 || self.lx.peek() != b':' {
            return -1;
        }
        self.lx.pos += 1;
        let mut ret = self.lx.skip_lwsp();
        if ret <= 0 {
            self.addr.invalid = true;
        }
        self.addr.mailbox = Some(self.s.clone());
        self.add();
        if ret > 0 && self.lx.peek() != b';' {
            loop {
                self.mailbox();
                if self.lx.at_end() || self.lx.peek() != b',' {
                    break;
                }
                self.lx.pos += 1;
                if self.lx.skip_lwsp() <= 0 {
                    ret = -1;
                    break;
                }
            }
        }
        if ret >= 0 {
            if self.lx.at_end() || self.lx.peek() != b';' {
                ret = -1;
            } else {
                self.lx.pos += 1;
                ret = self.lx.skip_lwsp();
            }
        }
        self.addr = Addr::default();
        self.add();
        if ret == 0 { 0 } else { 1 }
    }

    fn address(&mut self) -> i32 {
        let start = self.lx.pos;
        let ret = self.group();
        if ret >= 0 {
            return ret;
        }
        self.lx.pos = start;
        self.mailbox()
    }

    fn address_list(&mut self) {
        loop {
            if self.address() == 0 {
                break;
            }
            if self.lx.at_end() || self.lx.peek() != b',' {
                break;
            }
            self.lx.pos += 1;
            let ret = self.lx.skip_lwsp();
            if ret <= 0 {
                if ret < 0 {
                    self.add_fixed();
                }
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(v: &str) -> String {
        let s = |x: &Option<Vec<u8>>| match x {
            None => "NIL".to_string(),
            Some(v) => format!("{:?}", String::from_utf8_lossy(v)),
        };
        parse_address_list(v.as_bytes())
            .iter()
            .map(|a| {
                format!(
                    "({} {} {} {})",
                    s(&a.name),
                    s(&a.adl),
                    s(&a.mailbox),
                    s(&a.host)
                )
            })
            .collect()
    }

    #[test]
    fn common_forms() {
        assert_eq!(show("a@b"), r#"(NIL NIL "a" "b")"#);
        assert_eq!(
            show("\"Joe Q. Public\" <john.q.public@example.com>"),
            r#"("Joe Q. Public" NIL "john.q.public" "example.com")"#
        );
        assert_eq!(
            show("Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>"),
            r#"("Pete" NIL "pete" "silly.test")"#
        );
        assert_eq!(
            show("jdoe@example.org (John Doe)"),
            r#"("John Doe" NIL "jdoe" "example.org")"#
        );
        assert_eq!(show("<@r1,@r2:x@y>"), r#"(NIL "@r1,@r2" "x" "y")"#);
        assert_eq!(show("<a@[1.2.3.4]>"), r#"(NIL NIL "a" "[1.2.3.4]")"#);
    }

    #[test]
    fn lenient_dots() {
        assert_eq!(
            show("a..b@c, .a@b"),
            r#"(NIL NIL "a..b" "c")(NIL NIL ".a" "b")"#
        );
        assert_eq!(show("a.@b"), r#"(NIL NIL "a." "b")"#);
        // Dovecot gives up on the rest of the list after this one.
        assert_eq!(
            show("a. b@c, d@e"),
            r#"("a. b" NIL "MISSING_MAILBOX" "MISSING_DOMAIN")"#
        );
    }

    #[test]
    fn groups() {
        assert_eq!(
            show("undisclosed-recipients:;"),
            r#"(NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)"#
        );
        assert_eq!(
            show("A Group:Ed Jones <c@a.test>,joe@where.test;, x@y"),
            r#"(NIL NIL "A Group" NIL)("Ed Jones" NIL "c" "a.test")(NIL NIL "joe" "where.test")(NIL NIL NIL NIL)(NIL NIL "x" "y")"#
        );
    }

    #[test]
    fn broken_forms_are_filled() {
        assert_eq!(show("foo"), r#"(NIL NIL "foo" "MISSING_DOMAIN")"#);
        assert_eq!(
            show("foo bar"),
            r#"("foo bar" NIL "MISSING_MAILBOX" "MISSING_DOMAIN")"#
        );
        assert_eq!(show("Name <bad"), r#"("Name" NIL "bad" "SYNTAX_ERROR")"#);
        assert_eq!(show(""), "");
        assert_eq!(show("  (only a comment) "), "");
        assert_eq!(
            show("<>"),
            r#"(NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN")"#
        );
    }

    #[test]
    fn never_panics_on_junk() {
        for s in [
            "\"", "<", "@", ",,,", ":;", "a:b:c;", "<@", "<@a", "(", "\\", "a@", "a.@b", "\"a\\",
            "<a@b", "g: a@b,",
        ] {
            let _ = parse_address_list(s.as_bytes());
        }
    }
}
