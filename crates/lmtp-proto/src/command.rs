//! LMTP commands (RFC 2033 4; the SMTP commands of RFC 5321 4.1.1 that LMTP keeps) as values,
//! parsed from one command line without its line end.

use crate::address::{self, Address, AddressError};

/// `BODY=` of MAIL (RFC 6152).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    SevenBit,
    EightBitMime,
}

/// The parameters of MAIL FROM this server knows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailParams {
    /// `SIZE=` (RFC 1870 6): the client's estimate of the message size.
    pub size: Option<u64>,
    pub body: Option<Body>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `LHLO domain` (RFC 2033 4.1).
    Lhlo(String),
    /// `HELO`/`EHLO`: SMTP's greetings, which an LMTP server must not accept (RFC 2033 4.1).
    SmtpHello,
    /// `MAIL FROM:<path> [params]`; `None` is the null reverse-path `<>`.
    Mail {
        from: Option<Address>,
        params: MailParams,
    },
    /// `RCPT TO:<path>`.
    Rcpt(Address),
    Data,
    Rset,
    Noop,
    Quit,
    /// `VRFY string` (RFC 5321 4.1.1.6).
    Vrfy,
}

/// Why a line is not a command; each maps to one reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("unknown command")]
    Unknown,
    #[error("invalid command syntax")]
    Syntax,
    #[error("invalid address: {0}")]
    Address(AddressError),
    /// A MAIL or RCPT parameter this server does not offer (RFC 5321 4.1.1.11: 555).
    #[error("unsupported parameter {0}")]
    UnsupportedParameter(String),
    #[error("invalid parameter value {0}")]
    InvalidParameter(String),
}

impl Command {
    /// Parses one line (without CRLF). Verbs are case-insensitive (RFC 5321 2.4).
    pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
        let line = std::str::from_utf8(line).map_err(|_| ParseError::Syntax)?;
        let (verb, rest) = match line.split_once(' ') {
            Some((v, r)) => (v, r),
            None => (line, ""),
        };
        let verb = verb.to_ascii_uppercase();
        match verb.as_str() {
            "LHLO" => {
                // A domain or an address literal (RFC 5321 4.1.1.1); it goes into Received:
                // headers, so nothing but printable ASCII.
                let domain = rest.trim();
                let valid = !domain.is_empty()
                    && domain.len() <= 255
                    && domain.bytes().all(|b| b.is_ascii_graphic());
                if !valid {
                    return Err(ParseError::Syntax);
                }
                Ok(Command::Lhlo(domain.to_owned()))
            }
            "HELO" | "EHLO" => Ok(Command::SmtpHello),
            "MAIL" => {
                let (path, params) = path_argument(rest, "FROM:")?;
                let from = address::parse_reverse_path(path).map_err(ParseError::Address)?;
                Ok(Command::Mail {
                    from,
                    params: mail_params(params)?,
                })
            }
            "RCPT" => {
                let (path, params) = path_argument(rest, "TO:")?;
                if let Some(param) = params.split_whitespace().next() {
                    return Err(ParseError::UnsupportedParameter(param.to_owned()));
                }
                Ok(Command::Rcpt(
                    Address::parse_path(path).map_err(ParseError::Address)?,
                ))
            }
            "DATA" => no_argument(rest, Command::Data),
            "RSET" => no_argument(rest, Command::Rset),
            "QUIT" => no_argument(rest, Command::Quit),
            // NOOP may carry a string, which is ignored (RFC 5321 4.1.1.9).
            "NOOP" => Ok(Command::Noop),
            "VRFY" if !rest.trim().is_empty() => Ok(Command::Vrfy),
            "VRFY" => Err(ParseError::Syntax),
            _ => Err(ParseError::Unknown),
        }
    }
}

fn no_argument(rest: &str, command: Command) -> Result<Command, ParseError> {
    if rest.trim().is_empty() {
        Ok(command)
    } else {
        Err(ParseError::Syntax)
    }
}

/// `FROM:<path> params` or `TO:<path> params`: the path and what follows it. Spaces between
/// the colon and the path are tolerated, as most servers (and Dovecot's workaround) do.
fn path_argument<'a>(rest: &'a str, keyword: &str) -> Result<(&'a str, &'a str), ParseError> {
    let head = rest.get(..keyword.len()).ok_or(ParseError::Syntax)?;
    if !head.eq_ignore_ascii_case(keyword) {
        return Err(ParseError::Syntax);
    }
    let after = rest[keyword.len()..].trim_start();
    if !after.starts_with('<') {
        return Err(ParseError::Address(AddressError::NoBrackets));
    }
    // The path ends at the first '>' outside a quoted local part.
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in after.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '>' if !quoted => {
                let params = &after[i + 1..];
                if !params.is_empty() && !params.starts_with(' ') {
                    return Err(ParseError::Syntax);
                }
                return Ok((&after[..=i], params.trim()));
            }
            _ => {}
        }
    }
    Err(ParseError::Address(AddressError::NoBrackets))
}

fn mail_params(params: &str) -> Result<MailParams, ParseError> {
    let mut out = MailParams::default();
    for param in params.split_whitespace() {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        match key.to_ascii_uppercase().as_str() {
            "SIZE" => {
                let size = value
                    .parse()
                    .map_err(|_| ParseError::InvalidParameter(param.to_owned()))?;
                out.size = Some(size);
            }
            "BODY" => {
                out.body = Some(match value.to_ascii_uppercase().as_str() {
                    "7BIT" => Body::SevenBit,
                    "8BITMIME" => Body::EightBitMime,
                    _ => return Err(ParseError::InvalidParameter(param.to_owned())),
                });
            }
            _ => return Err(ParseError::UnsupportedParameter(param.to_owned())),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Command, ParseError> {
        Command::parse(line.as_bytes())
    }

    #[test]
    fn commands() {
        assert_eq!(
            parse("lhlo mx.example"),
            Ok(Command::Lhlo("mx.example".into()))
        );
        assert_eq!(parse("LHLO"), Err(ParseError::Syntax));
        assert_eq!(
            parse("LHLO [192.0.2.1]"),
            Ok(Command::Lhlo("[192.0.2.1]".into()))
        );
        for bad in ["LHLO a b", "LHLO a\u{0}b", "LHLO caf\u{e9}.example"] {
            assert_eq!(parse(bad), Err(ParseError::Syntax), "{bad:?}");
        }
        assert_eq!(parse("EHLO mx.example"), Ok(Command::SmtpHello));
        assert_eq!(parse("DATA"), Ok(Command::Data));
        assert_eq!(parse("data x"), Err(ParseError::Syntax));
        assert_eq!(parse("NOOP anything"), Ok(Command::Noop));
        assert_eq!(parse("VRFY bob"), Ok(Command::Vrfy));
        assert_eq!(parse("BDAT 10 LAST"), Err(ParseError::Unknown));
        assert_eq!(parse("\u{e9}"), Err(ParseError::Unknown));
        assert_eq!(
            Command::parse(b"MAIL \xff"),
            Err(ParseError::Syntax),
            "not UTF-8"
        );
    }

    #[test]
    fn mail_and_rcpt() {
        let Ok(Command::Mail { from, params }) =
            parse("MAIL FROM:<a@example.com> SIZE=1000 BODY=8BITMIME")
        else {
            panic!("MAIL not parsed");
        };
        assert_eq!(
            from.map(|a| a.to_string()).as_deref(),
            Some("a@example.com")
        );
        assert_eq!(params.size, Some(1000));
        assert_eq!(params.body, Some(Body::EightBitMime));
        assert!(matches!(
            parse("mail from: <>"),
            Ok(Command::Mail { from: None, .. })
        ));
        assert_eq!(
            parse("MAIL FROM:<a@example.com> SIZE=big"),
            Err(ParseError::InvalidParameter("SIZE=big".into()))
        );
        assert_eq!(
            parse("MAIL FROM:<a@example.com> SMTPUTF8"),
            Err(ParseError::UnsupportedParameter("SMTPUTF8".into()))
        );
        assert_eq!(parse("MAIL TO:<a@example.com>"), Err(ParseError::Syntax));
        assert_eq!(parse("MAIL FROM:<a@example.com>x"), Err(ParseError::Syntax));
        assert!(matches!(
            parse("RCPT TO:<\"a>b\"@example.com>"),
            Ok(Command::Rcpt(a)) if a.local_part() == "a>b"
        ));
        assert_eq!(
            parse("RCPT TO:<b@example.com> NOTIFY=NEVER"),
            Err(ParseError::UnsupportedParameter("NOTIFY=NEVER".into()))
        );
        assert_eq!(
            parse("RCPT TO:b@example.com"),
            Err(ParseError::Address(AddressError::NoBrackets))
        );
        assert_eq!(parse("RCPT"), Err(ParseError::Syntax));
    }
}
