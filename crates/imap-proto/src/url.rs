//! IMAP URLs (RFC 5092) naming one message or message part, as CATENATE's `URL` parts do
//! (RFC 4469 3), with `;PARTIAL=` (RFC 5092 6 `ipartial`, the URL-PARTIAL capability of
//! RFC 5550).
//!
//! Only the syntax lives here: whether the server and user of an absolute URL are this
//! session's, which mailbox a reference without one means, and what the message holds are the
//! session's to decide. URLAUTH (RFC 4467) is not supported, so a URL carrying `;URLAUTH=` or
//! `;EXPIRE=` is refused rather than half understood.

use std::num::NonZeroU32;

use mail_types::{Uid, UidValidity};

use crate::command::Section;
use crate::parser;

/// The longest URL accepted; a part URL is a mailbox name and a few numbers, far below this.
pub const MAX_URL_LEN: usize = 8192;

/// A parsed IMAP message or message-part URL, not yet resolved against a base (RFC 5092 6, 7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapUrl {
    /// `imap://iserver` or the network-path `//iserver`; `None` for an absolute-path reference
    /// (`/mailbox/;UID=n`) or a reference that starts with a parameter (`;UID=n`).
    pub server: Option<UrlServer>,
    /// The mailbox, percent-decoded (UTF-8, RFC 5092 8); `None` when the reference inherits the
    /// base URL's mailbox as a whole.
    pub mailbox: Option<String>,
    pub uid_validity: Option<UidValidity>,
    pub uid: Option<Uid>,
    pub section: Option<Section>,
    pub partial: Option<UrlPartial>,
}

/// `iserver` (RFC 5092 3): `[enc-user [";AUTH=" mech] "@"] host [":" port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlServer {
    /// Percent-decoded.
    pub user: Option<String>,
    /// Percent-decoded and lower-cased (host names compare without regard to case, RFC 3986
    /// 3.2.2); an IP literal keeps its brackets.
    pub host: String,
    pub port: Option<u16>,
}

/// `partial-range` (RFC 5092 11): `number ["." nz-number]`; without a length, the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlPartial {
    pub origin: u32,
    pub length: Option<NonZeroU32>,
}

/// Why a URL was refused; the text follows "Invalid IMAP URL: " in a `[BADURL]` reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("URL too long")]
    TooLong,
    #[error("not an IMAP URL")]
    Scheme,
    #[error("invalid character in URL")]
    Character,
    #[error("invalid percent-encoding")]
    Encoding,
    #[error("invalid server part")]
    Server,
    #[error("relative-path references are not accepted")]
    RelativePath,
    #[error("dot segments in the mailbox path")]
    DotSegment,
    #[error("a search URL names no single message")]
    Search,
    #[error("URLAUTH is not supported")]
    UrlAuth,
    #[error("invalid {0} parameter")]
    Param(&'static str),
    #[error("unknown or misplaced URL parameter")]
    Unknown,
}

impl ImapUrl {
    /// Parses an `imapurl` or a relative reference (`imapurl-rel`, RFC 5092 11) naming a
    /// message or part. Relative-path references other than the parameter-only forms are
    /// refused, as RFC 5092 7.2 requires.
    pub fn parse(raw: &[u8]) -> Result<ImapUrl, UrlError> {
        if raw.len() > MAX_URL_LEN {
            return Err(UrlError::TooLong);
        }
        // URLs are ASCII without spaces or controls (RFC 3986 2); anything else is percent-encoded.
        if raw.iter().any(|&b| !(0x21..0x7f).contains(&b)) {
            return Err(UrlError::Character);
        }
        let (server, path) = if starts_with_nocase(raw, b"imap://") {
            let (server, path) = split_authority(&raw[7..])?;
            (Some(server), path)
        } else if let Some(rest) = raw.strip_prefix(b"//") {
            let (server, path) = split_authority(rest)?;
            (Some(server), path)
        } else if let Some(rest) = raw.strip_prefix(b"/") {
            (None, Path::Absolute(rest))
        } else if raw.first() == Some(&b';') {
            (None, Path::Params(raw))
        } else if has_scheme(raw) {
            return Err(UrlError::Scheme);
        } else {
            return Err(UrlError::RelativePath);
        };
        let mut url = ImapUrl {
            server,
            mailbox: None,
            uid_validity: None,
            uid: None,
            section: None,
            partial: None,
        };
        match path {
            Path::Absolute(p) => url.parse_command(p)?,
            Path::Params(p) => url.parse_params(p, false, false)?,
        }
        Ok(url)
    }

    /// `icommand` after the `/` that follows the server (or starts an absolute path).
    fn parse_command(&mut self, p: &[u8]) -> Result<(), UrlError> {
        if p.contains(&b'?') {
            return Err(UrlError::Search);
        }
        if p.is_empty() {
            return Ok(());
        }
        let end = p.iter().position(|&b| b == b';').unwrap_or(p.len());
        let (mailbox, params) = p.split_at(end);
        let (mailbox, slash) = match mailbox.strip_suffix(b"/") {
            Some(m) if !params.is_empty() => (m, true),
            _ => (mailbox, false),
        };
        if mailbox.is_empty() {
            return Err(UrlError::Param("mailbox"));
        }
        if mailbox
            .split(|&b| b == b'/')
            .any(|seg| seg == b"." || seg == b"..")
        {
            // RFC 5092 7: such names are percent-encoded; raw ones would be dot segments.
            return Err(UrlError::DotSegment);
        }
        let decoded = percent_decode(mailbox, is_bchar)?;
        self.mailbox = Some(String::from_utf8(decoded).map_err(|_| UrlError::Encoding)?);
        self.parse_params(params, true, slash)
    }

    /// The `;NAME=value` parameters in their grammar's order: `[uidvalidity] iuid [isection]
    /// [ipartial]`, each after `/` but UIDVALIDITY, which belongs to the mailbox (RFC 5092 5).
    /// `after_mailbox`: a mailbox precedes; `slash`: the text before the first `;` ended in `/`.
    fn parse_params(
        &mut self,
        params: &[u8],
        after_mailbox: bool,
        mut slash: bool,
    ) -> Result<(), UrlError> {
        if params.is_empty() {
            return Ok(());
        }
        let pieces: Vec<&[u8]> = params.split(|&b| b == b';').skip(1).collect();
        let mut stage = 0u8;
        let count = pieces.len();
        for (i, piece) in pieces.into_iter().enumerate() {
            let last = i + 1 == count;
            let (body, next_slash) = match piece.strip_suffix(b"/") {
                Some(_) if last => return Err(UrlError::Unknown),
                Some(b) => (b, true),
                None => (piece, false),
            };
            let (name, value) = split_param(body)?;
            // Without a mailbox the reference starts with its first parameter, no `/` before it.
            let separated = slash || (!after_mailbox && i == 0);
            let next = match name.as_slice() {
                b"UIDVALIDITY" if after_mailbox && i == 0 && !slash => {
                    self.uid_validity = Some(
                        digits_u32(value)
                            .and_then(UidValidity::new)
                            .ok_or(UrlError::Param("UIDVALIDITY"))?,
                    );
                    1
                }
                b"UID" if separated => {
                    self.uid = Some(
                        digits_u32(value)
                            .and_then(Uid::new)
                            .ok_or(UrlError::Param("UID"))?,
                    );
                    2
                }
                b"SECTION" if separated => {
                    self.section = Some(section(value)?);
                    3
                }
                b"PARTIAL" if separated => {
                    self.partial = Some(partial(value).ok_or(UrlError::Param("PARTIAL"))?);
                    4
                }
                b"URLAUTH" | b"EXPIRE" => return Err(UrlError::UrlAuth),
                _ => return Err(UrlError::Unknown),
            };
            if next <= stage {
                return Err(UrlError::Unknown);
            }
            stage = next;
            slash = next_slash;
        }
        Ok(())
    }
}

enum Path<'a> {
    /// After the `/` that ends the server or starts an absolute path.
    Absolute(&'a [u8]),
    /// A reference that starts with `;`.
    Params(&'a [u8]),
}

fn starts_with_nocase(raw: &[u8], prefix: &[u8]) -> bool {
    raw.get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

/// RFC 3986 3.1: `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":"` before any `/`.
fn has_scheme(raw: &[u8]) -> bool {
    let end = raw.iter().position(|&b| b == b':');
    end.is_some_and(|end| {
        let scheme = &raw[..end];
        scheme.first().is_some_and(u8::is_ascii_alphabetic)
            && scheme
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    })
}

/// `iserver` up to the `/` that starts the path (RFC 5092 3, RFC 3986 3.2).
fn split_authority(rest: &[u8]) -> Result<(UrlServer, Path<'_>), UrlError> {
    let end = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let path = path.strip_prefix(b"/").unwrap_or(path);
    Ok((server(authority)?, Path::Absolute(path)))
}

fn server(authority: &[u8]) -> Result<UrlServer, UrlError> {
    let mut parts = authority.split(|&b| b == b'@');
    let (userinfo, hostport) = match (parts.next(), parts.next(), parts.next()) {
        (Some(hp), None, _) => (None, hp),
        (Some(ui), Some(hp), None) => (Some(ui), hp),
        _ => return Err(UrlError::Server),
    };
    let user = match userinfo {
        None => None,
        Some(ui) => {
            // `enc-user [iauth] / [enc-user] iauth`: the mechanism is irrelevant to a session
            // that is already logged in, but its syntax is still checked.
            let (user, auth) = match ui.iter().position(|&b| b == b';') {
                Some(i) => (&ui[..i], Some(&ui[i + 1..])),
                None => (ui, None),
            };
            if let Some(auth) = auth {
                let mech = auth
                    .get(..5)
                    .filter(|p| p.eq_ignore_ascii_case(b"AUTH="))
                    .map(|_| &auth[5..])
                    .ok_or(UrlError::Server)?;
                if mech != b"*" {
                    percent_decode(mech, is_achar).map_err(|_| UrlError::Server)?;
                    if mech.is_empty() {
                        return Err(UrlError::Server);
                    }
                }
            }
            if user.is_empty() {
                if auth.is_none() {
                    return Err(UrlError::Server);
                }
                None
            } else {
                let decoded = percent_decode(user, is_achar)?;
                Some(String::from_utf8(decoded).map_err(|_| UrlError::Encoding)?)
            }
        }
    };
    let (host, port) = if hostport.first() == Some(&b'[') {
        let close = hostport
            .iter()
            .position(|&b| b == b']')
            .ok_or(UrlError::Server)?;
        let (host, after) = hostport.split_at(close + 1);
        let inner = &host[1..host.len() - 1];
        if inner.is_empty()
            || !inner
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.'))
        {
            return Err(UrlError::Server);
        }
        (host.to_vec(), after)
    } else {
        let end = hostport
            .iter()
            .position(|&b| b == b':')
            .unwrap_or(hostport.len());
        let (host, after) = hostport.split_at(end);
        let host = percent_decode(host, is_reg_name_char).map_err(|_| UrlError::Server)?;
        (host, after)
    };
    if host.is_empty() {
        return Err(UrlError::Server);
    }
    let port = match port.strip_prefix(b":") {
        None if port.is_empty() => None,
        None => return Err(UrlError::Server),
        // RFC 3986 3.2.3: an empty port is the same as none.
        Some([]) => None,
        Some(digits) => Some(
            std::str::from_utf8(digits)
                .ok()
                .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|d| d.parse::<u16>().ok())
                .ok_or(UrlError::Server)?,
        ),
    };
    let host = String::from_utf8(host).map_err(|_| UrlError::Encoding)?;
    Ok(UrlServer {
        user,
        host: host.to_ascii_lowercase(),
        port,
    })
}

/// `NAME=value` with the name upper-cased (the grammar's literal strings are case-insensitive).
fn split_param(body: &[u8]) -> Result<(Vec<u8>, &[u8]), UrlError> {
    let eq = body
        .iter()
        .position(|&b| b == b'=')
        .ok_or(UrlError::Unknown)?;
    Ok((body[..eq].to_ascii_uppercase(), &body[eq + 1..]))
}

fn digits_u32(d: &[u8]) -> Option<u32> {
    if d.is_empty() || !d.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(d).ok()?.parse().ok()
}

fn nz_number(d: &[u8]) -> Option<NonZeroU32> {
    NonZeroU32::new(digits_u32(d)?)
}

fn partial(value: &[u8]) -> Option<UrlPartial> {
    let (origin, length) = match value.iter().position(|&b| b == b'.') {
        Some(dot) => (&value[..dot], Some(nz_number(&value[dot + 1..])?)),
        None => (value, None),
    };
    Some(UrlPartial {
        origin: digits_u32(origin)?,
        length,
    })
}

/// `enc-section`: a percent-encoded `section-spec` (RFC 3501 9), read by the FETCH grammar.
fn section(value: &[u8]) -> Result<Section, UrlError> {
    let decoded = percent_decode(value, is_bchar)?;
    if decoded.is_empty() {
        return Err(UrlError::Param("SECTION"));
    }
    parser::section_spec(&decoded).ok_or(UrlError::Param("SECTION"))
}

/// Decodes `%XX` escapes; every other byte must satisfy `allowed`.
fn percent_decode(raw: &[u8], allowed: fn(u8) -> bool) -> Result<Vec<u8>, UrlError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        if b == b'%' {
            let hex = raw.get(i + 1..i + 3).ok_or(UrlError::Encoding)?;
            let s = std::str::from_utf8(hex).map_err(|_| UrlError::Encoding)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return Err(UrlError::Encoding);
            }
            out.push(u8::from_str_radix(s, 16).map_err(|_| UrlError::Encoding)?);
            i += 3;
        } else if allowed(b) {
            out.push(b);
            i += 1;
        } else {
            return Err(UrlError::Character);
        }
    }
    Ok(out)
}

/// `uchar` without its `pct-encoded` (RFC 5092 11): unreserved and `sub-delims-sh`.
fn is_uchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'_' | b'~' | b'!' | b'$' | b'\'' | b'(' | b')' | b'*' | b'+' | b','
        )
}

/// `achar`: `uchar / "&" / "="`.
fn is_achar(b: u8) -> bool {
    is_uchar(b) || b == b'&' || b == b'='
}

/// `bchar`: `achar / ":" / "@" / "/"`.
fn is_bchar(b: u8) -> bool {
    is_achar(b) || matches!(b, b':' | b'@' | b'/')
}

/// RFC 3986 `reg-name` (percent-encoding handled by the caller) without `;`, which no host
/// name holds and which would otherwise swallow a misplaced `;UID=` into the host.
fn is_reg_name_char(b: u8) -> bool {
    is_uchar(b) || matches!(b, b'&' | b'=')
}

/// Writes `url` for a `[BADURL url]` response code (RFC 4469 5 `url-resp-text`: any TEXT-CHAR
/// but `]`), percent-encoding what may not appear there, so the code never breaks the line.
pub fn resp_text(url: &[u8]) -> String {
    if url.is_empty() {
        // The code needs at least one character; an empty string is shown as one.
        return "\"\"".to_owned();
    }
    let mut out = String::with_capacity(url.len().min(MAX_URL_LEN));
    for &b in url.iter().take(MAX_URL_LEN) {
        if (0x21..0x7f).contains(&b) && b != b']' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::SectionText;

    fn nz(n: u32) -> Option<NonZeroU32> {
        NonZeroU32::new(n)
    }

    #[test]
    fn rfc4469_example_absolute_path() {
        let url = ImapUrl::parse(b"/Drafts;UIDVALIDITY=385759045/;UID=20/;section=1.2").unwrap();
        assert_eq!(url.server, None);
        assert_eq!(url.mailbox.as_deref(), Some("Drafts"));
        assert_eq!(url.uid_validity, UidValidity::new(385759045));
        assert_eq!(url.uid, Uid::new(20));
        assert_eq!(
            url.section,
            Some(Section {
                part: vec![1, 2],
                text: None
            })
        );
        assert_eq!(url.partial, None);
    }

    #[test]
    fn absolute_url_with_user_host_port_and_partial() {
        let url = ImapUrl::parse(
            b"imap://alice;AUTH=*@Mail.Example.COM:143/Work/Gr%C3%BC%C3%9Fe;UIDVALIDITY=7/;UID=3/;SECTION=HEADER/;PARTIAL=10.20",
        )
        .unwrap();
        let server = url.server.unwrap();
        assert_eq!(server.user.as_deref(), Some("alice"));
        assert_eq!(server.host, "mail.example.com");
        assert_eq!(server.port, Some(143));
        assert_eq!(url.mailbox.as_deref(), Some("Work/Grüße"));
        assert_eq!(url.uid_validity, UidValidity::new(7));
        assert_eq!(url.uid, Uid::new(3));
        assert_eq!(url.section.unwrap().text, Some(SectionText::Header));
        assert_eq!(
            url.partial,
            Some(UrlPartial {
                origin: 10,
                length: nz(20)
            })
        );
    }

    #[test]
    fn parameter_only_references() {
        let url = ImapUrl::parse(b";UID=5/;PARTIAL=3").unwrap();
        assert_eq!(url.mailbox, None);
        assert_eq!(url.uid, Uid::new(5));
        assert_eq!(
            url.partial,
            Some(UrlPartial {
                origin: 3,
                length: None
            })
        );
        let url = ImapUrl::parse(b";SECTION=2.MIME").unwrap();
        assert_eq!(url.uid, None);
        assert_eq!(
            url.section,
            Some(Section {
                part: vec![2],
                text: Some(SectionText::Mime)
            })
        );
        let url = ImapUrl::parse(b";section=HEADER.FIELDS%20(From%20To)").unwrap();
        assert_eq!(
            url.section.unwrap().text,
            Some(SectionText::HeaderFields(vec!["From".into(), "To".into()]))
        );
    }

    #[test]
    fn network_path_and_mailbox_only() {
        let url = ImapUrl::parse(b"//bob@localhost/INBOX").unwrap();
        assert_eq!(url.server.unwrap().user.as_deref(), Some("bob"));
        assert_eq!(url.mailbox.as_deref(), Some("INBOX"));
        assert_eq!(url.uid, None);
        let url = ImapUrl::parse(b"imap://[::1]:993/").unwrap();
        assert_eq!(url.server.unwrap().host, "[::1]");
        assert_eq!(url.mailbox, None);
    }

    #[test]
    fn refused() {
        let cases: &[(&[u8], UrlError)] = &[
            (b"http://host/INBOX/;UID=1", UrlError::Scheme),
            (b"INBOX/;UID=1", UrlError::RelativePath),
            (b"", UrlError::RelativePath),
            (b"/INBOX/;UID=0", UrlError::Param("UID")),
            (b"/INBOX/;UID=4294967296", UrlError::Param("UID")),
            (b"/INBOX/;UID=-1", UrlError::Param("UID")),
            (b"/INBOX/;UID=1/;PARTIAL=1.0", UrlError::Param("PARTIAL")),
            (b"/INBOX/;UID=1/;PARTIAL=.5", UrlError::Param("PARTIAL")),
            (
                b"/INBOX/;UID=1/;SECTION=1.BOGUS",
                UrlError::Param("SECTION"),
            ),
            (b"/INBOX/;UID=1/;SECTION=", UrlError::Param("SECTION")),
            (b"/INBOX/;UID=1/;SECTION=TEXT]", UrlError::Character),
            (b"/INBOX;UID=1", UrlError::Unknown),
            (b"/INBOX/;UIDVALIDITY=1/;UID=1", UrlError::Unknown),
            (b"/INBOX/;SECTION=1/;UID=1", UrlError::Unknown),
            (b"/INBOX/;UID=1/;UID=2", UrlError::Unknown),
            (b"/INBOX/;UID=1/;FOO=2", UrlError::Unknown),
            (b"/INBOX/;UID=1/", UrlError::Unknown),
            (
                b"/INBOX/;UID=1;URLAUTH=anonymous:internal:0",
                UrlError::UrlAuth,
            ),
            (b"/INBOX?SUBJECT%20x", UrlError::Search),
            (b"/a/../INBOX/;UID=1", UrlError::DotSegment),
            (b"/IN%ZZBOX/;UID=1", UrlError::Encoding),
            (b"/IN%FFBOX/;UID=1", UrlError::Encoding),
            (b"/IN BOX/;UID=1", UrlError::Character),
            (b"/INBOX/;UID=1\xff", UrlError::Character),
            (b"/;UID=1", UrlError::Param("mailbox")),
            (b"imap://a@b@c/INBOX/;UID=1", UrlError::Server),
            (b"imap://host:99999/INBOX/;UID=1", UrlError::Server),
            (b"imap://@host/INBOX/;UID=1", UrlError::Server),
            (b"imap://host;UID=1", UrlError::Server),
            (b"imap://[zz]/INBOX", UrlError::Server),
        ];
        for (raw, want) in cases {
            assert_eq!(
                ImapUrl::parse(raw).as_ref().err(),
                Some(want),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        let long = vec![b'a'; MAX_URL_LEN + 1];
        assert_eq!(ImapUrl::parse(&long), Err(UrlError::TooLong));
    }

    #[test]
    fn badurl_text_cannot_break_the_code() {
        assert_eq!(resp_text(b"/a]b c\r\n"), "/a%5Db%20c%0D%0A");
    }

    /// Percent-encodes everything but unreserved characters and `/`, as a client would.
    fn encode(name: &str) -> String {
        name.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }

    proptest::proptest! {
        /// A URL written from its parts reads back as those parts.
        #[test]
        fn written_urls_read_back(
            segments in proptest::collection::vec("[^/]{1,12}", 1..4),
            validity in proptest::option::of(1u32..),
            uid in 1u32..,
            part in proptest::collection::vec(1u32..50, 0..4),
            text in proptest::option::of(proptest::sample::select(vec!["HEADER", "TEXT", "MIME"])),
            partial in proptest::option::of((proptest::prelude::any::<u32>(), proptest::option::of(1u32..))),
        ) {
            let name = segments.join("/");
            proptest::prop_assume!(!segments.iter().any(|s| s == "." || s == ".."));
            let text = text.filter(|t| *t != "MIME" || !part.is_empty());
            let mut spec: Vec<String> = part.iter().map(u32::to_string).collect();
            spec.extend(text.map(str::to_owned));
            let mut url = format!("/{}", encode(&name));
            if let Some(v) = validity {
                url.push_str(&format!(";UIDVALIDITY={v}"));
            }
            url.push_str(&format!("/;UID={uid}"));
            if !spec.is_empty() {
                url.push_str(&format!("/;SECTION={}", spec.join(".")));
            }
            if let Some((origin, length)) = partial {
                url.push_str(&format!("/;PARTIAL={origin}"));
                if let Some(l) = length {
                    url.push_str(&format!(".{l}"));
                }
            }
            let parsed = ImapUrl::parse(url.as_bytes());
            proptest::prop_assert!(parsed.is_ok(), "{url}: {parsed:?}");
            let parsed = parsed.unwrap();
            proptest::prop_assert_eq!(parsed.mailbox.as_deref(), Some(name.as_str()));
            proptest::prop_assert_eq!(parsed.uid_validity, validity.and_then(UidValidity::new));
            proptest::prop_assert_eq!(parsed.uid, Uid::new(uid));
            let section = parsed.section.map(|s| (s.part, s.text));
            let want_text = text.map(|t| match t {
                "HEADER" => SectionText::Header,
                "TEXT" => SectionText::Text,
                _ => SectionText::Mime,
            });
            proptest::prop_assert_eq!(section, (!spec.is_empty()).then_some((part, want_text)));
            proptest::prop_assert_eq!(
                parsed.partial.map(|p| (p.origin, p.length.map(NonZeroU32::get))),
                partial
            );
        }

        #[test]
        fn never_panics(raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = ImapUrl::parse(&raw);
        }

        #[test]
        fn url_shaped_input_never_panics(
            raw in "(imap://|//|/|;)[a-zA-Z0-9;=/%.@:\\[\\]()~-]{0,80}"
        ) {
            if let Ok(url) = ImapUrl::parse(raw.as_bytes()) {
                // Whatever parses names its parts in the grammar's order and within range.
                if let Some(p) = url.partial {
                    proptest::prop_assert!(p.length.is_none_or(|l| l.get() > 0));
                }
            }
        }
    }
}
