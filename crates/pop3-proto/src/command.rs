//! The POP3 commands and the parser for one command line.
//!
//! RFC 1939 3: a command is a case-insensitive keyword of three or four characters, possibly
//! followed by arguments, each separated by a single space and the whole ended by CRLF. The parser
//! is lenient where clients are known to be sloppy (runs of spaces, a trailing space) and strict
//! where leniency would change the meaning (a message number must be all digits).
//!
//! ```text
//! USER name              PASS string            APOP name digest      (RFC 1939 7)
//! STAT   LIST [msg]   RETR msg   DELE msg   NOOP   RSET   QUIT        (RFC 1939 5, 6)
//! TOP msg n              UIDL [msg]                                    (RFC 1939 7)
//! CAPA (RFC 2449 5)      STLS (RFC 2595 4)      AUTH [mechanism [initial-response]] (RFC 5034 4)
//! ```

use std::fmt;

/// One command, with its arguments checked for syntax (not for meaning: message number 0 or one
/// past the end parses fine; the session answers it).
#[derive(Clone, PartialEq, Eq)]
pub enum Command {
    /// `USER name` (RFC 1939 7). The rest of the line is the name.
    User(String),
    /// `PASS string` (RFC 1939 7). The rest of the line is the password, spaces included, as
    /// RFC 1939 allows; its bytes need not be UTF-8.
    Pass(Vec<u8>),
    /// `APOP name digest` (RFC 1939 7).
    Apop { name: String, digest: String },
    /// `AUTH [mechanism [initial-response]]` (RFC 5034 4). Without a mechanism, the client asks
    /// for the list of mechanisms (the RFC 1734 form many clients still send). The initial
    /// response is still base64 (`=` for an empty one): decoding is the session's business.
    Auth {
        mechanism: Option<String>,
        initial_response: Option<Vec<u8>>,
    },
    /// `STLS` (RFC 2595 4).
    Stls,
    /// `CAPA` (RFC 2449 5).
    Capa,
    /// `QUIT` (RFC 1939 5 and 6).
    Quit,
    /// `STAT` (RFC 1939 5).
    Stat,
    /// `LIST [msg]` (RFC 1939 5).
    List(Option<u32>),
    /// `RETR msg` (RFC 1939 5).
    Retr(u32),
    /// `DELE msg` (RFC 1939 5).
    Dele(u32),
    /// `NOOP` (RFC 1939 5).
    Noop,
    /// `RSET` (RFC 1939 5).
    Rset,
    /// `TOP msg n` (RFC 1939 7): the header and the first `lines` lines of the body.
    Top { msg: u32, lines: u32 },
    /// `UIDL [msg]` (RFC 1939 7).
    Uidl(Option<u32>),
}

impl Command {
    /// The command's keyword, upper case.
    pub fn name(&self) -> &'static str {
        match self {
            Command::User(_) => "USER",
            Command::Pass(_) => "PASS",
            Command::Apop { .. } => "APOP",
            Command::Auth { .. } => "AUTH",
            Command::Stls => "STLS",
            Command::Capa => "CAPA",
            Command::Quit => "QUIT",
            Command::Stat => "STAT",
            Command::List(_) => "LIST",
            Command::Retr(_) => "RETR",
            Command::Dele(_) => "DELE",
            Command::Noop => "NOOP",
            Command::Rset => "RSET",
            Command::Top { .. } => "TOP",
            Command::Uidl(_) => "UIDL",
        }
    }
}

/// Passwords and SASL responses never reach a log through `Debug`.
impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Pass(_) => f.write_str("Pass(<redacted>)"),
            Command::Auth {
                mechanism,
                initial_response,
            } => f
                .debug_struct("Auth")
                .field("mechanism", mechanism)
                .field(
                    "initial_response",
                    &initial_response.as_ref().map(|_| "<redacted>"),
                )
                .finish(),
            Command::User(name) => f.debug_tuple("User").field(name).finish(),
            Command::Apop { name, .. } => f
                .debug_struct("Apop")
                .field("name", name)
                .field("digest", &"<redacted>")
                .finish(),
            Command::List(n) => f.debug_tuple("List").field(n).finish(),
            Command::Retr(n) => f.debug_tuple("Retr").field(n).finish(),
            Command::Dele(n) => f.debug_tuple("Dele").field(n).finish(),
            Command::Uidl(n) => f.debug_tuple("Uidl").field(n).finish(),
            Command::Top { msg, lines } => f
                .debug_struct("Top")
                .field("msg", msg)
                .field("lines", lines)
                .finish(),
            other => f.write_str(other.name()),
        }
    }
}

/// Why a command line was refused. The `Display` text is what the client is told after `-ERR `
/// (the session adds the final period).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("Empty command")]
    Empty,
    /// The keyword names no command; it is carried printable and cut short, for the reply.
    #[error("Unknown command: {0}")]
    UnknownCommand(String),
    #[error("{0} needs an argument")]
    MissingArgument(&'static str),
    #[error("Too many arguments for {0}")]
    TooManyArguments(&'static str),
    /// Not a decimal number (carried printable and cut short).
    #[error("Invalid message number: {0}")]
    InvalidNumber(String),
    #[error("Invalid number of lines: {0}")]
    InvalidLineCount(String),
    #[error("User name is not valid UTF-8")]
    InvalidUserName,
}

/// Longest keyword or argument echoed back in an error reply.
const ECHO_MAX: usize = 40;

/// Parses one command line (without its line end).
pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    let (keyword, rest) = match memchr_space(line) {
        Some(i) => (&line[..i], Some(&line[i + 1..])),
        None => (line, None),
    };
    if keyword.is_empty() {
        return Err(ParseError::Empty);
    }
    let mut upper = [0u8; 4];
    if keyword.len() > 4 || !keyword.iter().all(u8::is_ascii_alphabetic) {
        return Err(ParseError::UnknownCommand(printable(keyword)));
    }
    for (u, k) in upper.iter_mut().zip(keyword) {
        *u = k.to_ascii_uppercase();
    }
    let keyword_upper = &upper[..keyword.len()];
    // USER and PASS take the rest of the line verbatim (RFC 1939 7, PASS: "a POP3 server may
    // treat spaces in the argument as part of the password").
    match keyword_upper {
        b"USER" => {
            let name = rest_argument(rest, "USER")?;
            let name = std::str::from_utf8(name).map_err(|_| ParseError::InvalidUserName)?;
            return Ok(Command::User(name.to_owned()));
        }
        b"PASS" => return Ok(Command::Pass(rest_argument(rest, "PASS")?.to_vec())),
        _ => {}
    }
    let args: Vec<&[u8]> = rest
        .unwrap_or_default()
        .split(|&b| b == b' ')
        .filter(|a| !a.is_empty())
        .collect();
    let command = match keyword_upper {
        b"APOP" => {
            let [name, digest] = exact::<2>(&args, "APOP")?;
            Command::Apop {
                name: std::str::from_utf8(name)
                    .map_err(|_| ParseError::InvalidUserName)?
                    .to_owned(),
                digest: printable(digest),
            }
        }
        b"AUTH" => match args.as_slice() {
            [] => Command::Auth {
                mechanism: None,
                initial_response: None,
            },
            [mech] => Command::Auth {
                mechanism: Some(printable(mech)),
                initial_response: None,
            },
            [mech, initial] => Command::Auth {
                mechanism: Some(printable(mech)),
                initial_response: Some(initial.to_vec()),
            },
            _ => return Err(ParseError::TooManyArguments("AUTH")),
        },
        b"STLS" => none(&args, Command::Stls)?,
        b"CAPA" => none(&args, Command::Capa)?,
        b"QUIT" => none(&args, Command::Quit)?,
        b"STAT" => none(&args, Command::Stat)?,
        b"NOOP" => none(&args, Command::Noop)?,
        b"RSET" => none(&args, Command::Rset)?,
        b"LIST" => Command::List(optional_number(&args, "LIST")?),
        b"UIDL" => Command::Uidl(optional_number(&args, "UIDL")?),
        b"RETR" => {
            let [msg] = exact::<1>(&args, "RETR")?;
            Command::Retr(message_number(msg)?)
        }
        b"DELE" => {
            let [msg] = exact::<1>(&args, "DELE")?;
            Command::Dele(message_number(msg)?)
        }
        b"TOP" => {
            let [msg, lines] = exact::<2>(&args, "TOP")?;
            Command::Top {
                msg: message_number(msg)?,
                lines: line_count(lines)?,
            }
        }
        _ => return Err(ParseError::UnknownCommand(printable(keyword))),
    };
    Ok(command)
}

fn memchr_space(line: &[u8]) -> Option<usize> {
    line.iter().position(|&b| b == b' ')
}

fn rest_argument<'a>(
    rest: Option<&'a [u8]>,
    command: &'static str,
) -> Result<&'a [u8], ParseError> {
    match rest {
        Some(arg) if !arg.is_empty() => Ok(arg),
        _ => Err(ParseError::MissingArgument(command)),
    }
}

fn none(args: &[&[u8]], command: Command) -> Result<Command, ParseError> {
    if args.is_empty() {
        Ok(command)
    } else {
        Err(ParseError::TooManyArguments(command.name()))
    }
}

fn exact<'a, const N: usize>(
    args: &[&'a [u8]],
    command: &'static str,
) -> Result<[&'a [u8]; N], ParseError> {
    if args.len() < N {
        return Err(ParseError::MissingArgument(command));
    }
    <[&[u8]; N]>::try_from(args).map_err(|_| ParseError::TooManyArguments(command))
}

fn optional_number(args: &[&[u8]], command: &'static str) -> Result<Option<u32>, ParseError> {
    match args {
        [] => Ok(None),
        [msg] => message_number(msg).map(Some),
        _ => Err(ParseError::TooManyArguments(command)),
    }
}

/// `msg`: a decimal number (RFC 1939 5). Zero and numbers past the end are syntactically fine.
fn message_number(arg: &[u8]) -> Result<u32, ParseError> {
    digits(arg)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ParseError::InvalidNumber(printable(arg)))
}

/// TOP's line count: any non-negative number; one too large for `u32` asks for every line anyway.
fn line_count(arg: &[u8]) -> Result<u32, ParseError> {
    let s = digits(arg).ok_or_else(|| ParseError::InvalidLineCount(printable(arg)))?;
    Ok(s.parse().unwrap_or(u32::MAX))
}

fn digits(arg: &[u8]) -> Option<&str> {
    if arg.is_empty() || !arg.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(arg).ok()
}

/// Client bytes made safe to echo in a reply: printable ASCII only, at most [`ECHO_MAX`].
fn printable(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(ECHO_MAX)
        .map(|&b| {
            if (0x21..0x7f).contains(&b) {
                b as char
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_case_insensitively() {
        let rows: &[(&[u8], Command)] = &[
            (b"user alice", Command::User("alice".into())),
            (b"PASS two words ", Command::Pass(b"two words ".to_vec())),
            (b"Stat", Command::Stat),
            (b"LIST", Command::List(None)),
            (b"list 3", Command::List(Some(3))),
            (b"LIST  3 ", Command::List(Some(3))),
            (b"RETR 1", Command::Retr(1)),
            (b"DELE 0", Command::Dele(0)),
            (b"TOP 2 0", Command::Top { msg: 2, lines: 0 }),
            (
                b"TOP 2 99999999999999",
                Command::Top {
                    msg: 2,
                    lines: u32::MAX,
                },
            ),
            (b"UIDL", Command::Uidl(None)),
            (b"uidl 7", Command::Uidl(Some(7))),
            (b"NOOP", Command::Noop),
            (b"RSET", Command::Rset),
            (b"QUIT", Command::Quit),
            (b"CAPA", Command::Capa),
            (b"STLS", Command::Stls),
            (
                b"AUTH",
                Command::Auth {
                    mechanism: None,
                    initial_response: None,
                },
            ),
            (
                b"AUTH PLAIN AGFsaWNlAHNlY3JldA==",
                Command::Auth {
                    mechanism: Some("PLAIN".into()),
                    initial_response: Some(b"AGFsaWNlAHNlY3JldA==".to_vec()),
                },
            ),
            (
                b"APOP mrose c4c9334bac560ecc979e58001b3e22fb",
                Command::Apop {
                    name: "mrose".into(),
                    digest: "c4c9334bac560ecc979e58001b3e22fb".into(),
                },
            ),
        ];
        for (line, want) in rows {
            assert_eq!(
                parse(line).as_ref(),
                Ok(want),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn bad_lines_say_why() {
        let rows: &[(&[u8], ParseError)] = &[
            (b"", ParseError::Empty),
            (b" STAT", ParseError::Empty),
            (b"FOO", ParseError::UnknownCommand("FOO".into())),
            (b"LAST", ParseError::UnknownCommand("LAST".into())),
            (b"STATUS", ParseError::UnknownCommand("STATUS".into())),
            (b"ST\x01T", ParseError::UnknownCommand("ST?T".into())),
            (b"USER", ParseError::MissingArgument("USER")),
            (b"USER ", ParseError::MissingArgument("USER")),
            (b"USER \xff", ParseError::InvalidUserName),
            (b"PASS", ParseError::MissingArgument("PASS")),
            (b"RETR", ParseError::MissingArgument("RETR")),
            (b"RETR x", ParseError::InvalidNumber("x".into())),
            (b"RETR -1", ParseError::InvalidNumber("-1".into())),
            (b"RETR 1 2", ParseError::TooManyArguments("RETR")),
            (
                b"DELE 99999999999",
                ParseError::InvalidNumber("99999999999".into()),
            ),
            (b"LIST 1 2", ParseError::TooManyArguments("LIST")),
            (b"TOP 1", ParseError::MissingArgument("TOP")),
            (b"TOP 1 x", ParseError::InvalidLineCount("x".into())),
            (b"STAT 1", ParseError::TooManyArguments("STAT")),
            (b"AUTH A B C", ParseError::TooManyArguments("AUTH")),
        ];
        for (line, want) in rows {
            assert_eq!(
                parse(line).as_ref(),
                Err(want),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn echoed_keywords_are_short_and_printable() {
        let long = [b'A'; 4].repeat(30);
        match parse(&long) {
            Err(ParseError::UnknownCommand(k)) => assert_eq!(k.len(), ECHO_MAX),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn debug_hides_secrets() {
        let shown = format!("{:?}", parse(b"PASS hunter2").unwrap());
        assert!(!shown.contains("hunter2"), "{shown}");
        let shown = format!("{:?}", parse(b"AUTH PLAIN c2VjcmV0").unwrap());
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
    }
}
