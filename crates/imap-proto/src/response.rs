//! Response syntax (RFC 3501 7 and 9): status responses with their codes, and the primitives the
//! session layer uses to write data responses (strings, flag lists, dates, mailbox names).
//!
//! Every function appends to a `Vec<u8>`; the session layer decides when to flush it to the
//! client. Strings are written in the most compact form that is always correct: an atom where the
//! grammar allows one, a quoted string for short 7-bit text, a literal otherwise.

use std::fmt::Write as _;

use mail_types::{Flag, SeqSet};

use crate::command::{DateTime, Tag};
use mail_types::utf7;

/// The condition of a status response (RFC 3501 7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
    PreAuth,
    Bye,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::No => "NO",
            Status::Bad => "BAD",
            Status::PreAuth => "PREAUTH",
            Status::Bye => "BYE",
        }
    }
}

/// Response codes (RFC 3501 7.1, RFC 4315 3, RFC 5530 3, RFC 7162 3.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    Alert,
    BadCharset(Vec<String>),
    Capability(Vec<String>),
    Parse,
    /// Flags as already-formatted flag atoms (`\Seen`, `$Junk`, `\*`).
    PermanentFlags(Vec<String>),
    ReadOnly,
    ReadWrite,
    TryCreate,
    UidNext(u32),
    UidValidity(u32),
    Unseen(u32),
    AppendUid {
        uid_validity: u32,
        uids: SeqSet,
    },
    CopyUid {
        uid_validity: u32,
        source: SeqSet,
        destination: SeqSet,
    },
    Unavailable,
    AuthenticationFailed,
    AuthorizationFailed,
    Expired,
    PrivacyRequired,
    ContactAdmin,
    NoPerm,
    InUse,
    ExpungeIssued,
    Corruption,
    ServerBug,
    ClientBug,
    CanNot,
    Limit,
    OverQuota,
    AlreadyExists,
    NonExistent,
    Closed,
    TooBig,
    HighestModSeq(u64),
    NoModSeq,
    Modified(SeqSet),
    /// RFC 6154 3: the special use asked for cannot be given.
    UseAttr,
    /// RFC 8474 4.1, 4.2: the mailbox's `objectid`.
    MailboxId(String),
    /// RFC 3516 4.3: a transfer encoding the server cannot remove.
    UnknownCte,
    /// RFC 2221 3: the IMAP URL of the server to use instead (login referrals).
    Referral(String),
    /// RFC 5267 4.3.1: no updates for the search with this tag.
    NoUpdate(String),
    /// RFC 4469 4.1: the first CATENATE URL that could not be used, as the client sent it.
    BadUrl(Vec<u8>),
}

impl Code {
    fn write(&self, out: &mut String) {
        let simple = match self {
            Code::Alert => "ALERT",
            Code::Parse => "PARSE",
            Code::ReadOnly => "READ-ONLY",
            Code::ReadWrite => "READ-WRITE",
            Code::TryCreate => "TRYCREATE",
            Code::Unavailable => "UNAVAILABLE",
            Code::AuthenticationFailed => "AUTHENTICATIONFAILED",
            Code::AuthorizationFailed => "AUTHORIZATIONFAILED",
            Code::Expired => "EXPIRED",
            Code::PrivacyRequired => "PRIVACYREQUIRED",
            Code::ContactAdmin => "CONTACTADMIN",
            Code::NoPerm => "NOPERM",
            Code::InUse => "INUSE",
            Code::ExpungeIssued => "EXPUNGEISSUED",
            Code::Corruption => "CORRUPTION",
            Code::ServerBug => "SERVERBUG",
            Code::ClientBug => "CLIENTBUG",
            Code::CanNot => "CANNOT",
            Code::Limit => "LIMIT",
            Code::OverQuota => "OVERQUOTA",
            Code::AlreadyExists => "ALREADYEXISTS",
            Code::NonExistent => "NONEXISTENT",
            Code::Closed => "CLOSED",
            Code::TooBig => "TOOBIG",
            Code::NoModSeq => "NOMODSEQ",
            Code::UseAttr => "USEATTR",
            Code::UnknownCte => "UNKNOWN-CTE",
            _ => "",
        };
        if !simple.is_empty() {
            out.push_str(simple);
            return;
        }
        // Writing to a String cannot fail.
        let _ = match self {
            Code::BadCharset(list) => write!(out, "BADCHARSET ({})", list.join(" ")),
            Code::Capability(caps) => write!(out, "CAPABILITY {}", caps.join(" ")),
            Code::PermanentFlags(flags) => write!(out, "PERMANENTFLAGS ({})", flags.join(" ")),
            Code::UidNext(n) => write!(out, "UIDNEXT {n}"),
            Code::UidValidity(n) => write!(out, "UIDVALIDITY {n}"),
            Code::Unseen(n) => write!(out, "UNSEEN {n}"),
            Code::AppendUid { uid_validity, uids } => {
                write!(out, "APPENDUID {uid_validity} {uids}")
            }
            Code::CopyUid {
                uid_validity,
                source,
                destination,
            } => {
                write!(out, "COPYUID {uid_validity} {source} {destination}")
            }
            Code::HighestModSeq(n) => write!(out, "HIGHESTMODSEQ {n}"),
            Code::Modified(set) => write!(out, "MODIFIED {set}"),
            Code::MailboxId(id) => write!(out, "MAILBOXID ({id})"),
            Code::Referral(url) => write!(out, "REFERRAL {url}"),
            Code::NoUpdate(tag) => write!(out, "NOUPDATE \"{tag}\""),
            Code::BadUrl(url) => write!(out, "BADURL {}", crate::url::resp_text(url)),
            _ => Ok(()),
        };
    }
}

/// A complete status response line, CRLF included: `tag OK [CODE] text`, or untagged with `*`.
/// Control characters in `text` are replaced so a message can never break the line.
pub fn status_line(tag: Option<&Tag>, status: Status, code: Option<&Code>, text: &str) -> Vec<u8> {
    let mut line = String::with_capacity(32 + text.len());
    line.push_str(tag.map_or("*", Tag::as_str));
    line.push(' ');
    line.push_str(status.as_str());
    if let Some(code) = code {
        line.push_str(" [");
        code.write(&mut line);
        line.push(']');
    }
    line.push(' ');
    if text.is_empty() {
        // resp-text requires text after a code (RFC 3501 9); an empty one is tolerated by few.
        line.push_str(status.as_str());
    } else {
        line.extend(text.chars().map(|c| if c.is_control() { ' ' } else { c }));
    }
    line.push_str("\r\n");
    line.into_bytes()
}

/// A continuation request (RFC 3501 7.5): `+ text` or `+ base64`.
pub fn continuation(text: &str) -> Vec<u8> {
    format!("+ {text}\r\n").into_bytes()
}

fn is_quotable(bytes: &[u8]) -> bool {
    bytes.len() <= 1024
        && bytes
            .iter()
            .all(|&b| b != 0 && b != b'\r' && b != b'\n' && b < 0x80)
}

fn is_astring_atom(bytes: &[u8]) -> bool {
    // ASTRING-CHAR = ATOM-CHAR / resp-specials (`]`), RFC 3501 9.
    !bytes.is_empty()
        && !bytes.eq_ignore_ascii_case(b"NIL")
        && bytes
            .iter()
            .all(|&b| b == b']' || mail_types::is_atom_char(b))
}

/// Writes a `quoted` string. Callers must have checked [`is_quotable`] (or know the bytes hold
/// no CR, LF or NUL).
pub(crate) fn write_quoted(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    for &b in bytes {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// Writes a synchronizing-literal form `{n}\r\n...` (servers always use `{n}`, RFC 3501 4.3).
pub fn write_literal(out: &mut Vec<u8>, bytes: &[u8]) {
    write_literal_header(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Writes just `{n}\r\n`, for callers that stream the literal body themselves.
pub fn write_literal_header(out: &mut Vec<u8>, len: u64) {
    out.extend_from_slice(format!("{{{len}}}\r\n").as_bytes());
}

/// `string` (RFC 3501 9): quoted when safe, literal otherwise.
pub fn write_string(out: &mut Vec<u8>, bytes: &[u8]) {
    if is_quotable(bytes) {
        write_quoted(out, bytes);
    } else {
        write_literal(out, bytes);
    }
}

/// `nstring`: NIL for `None`.
pub fn write_nstring(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(b) => write_string(out, b),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// `astring`: an atom where possible.
pub fn write_astring(out: &mut Vec<u8>, bytes: &[u8]) {
    if is_astring_atom(bytes) {
        out.extend_from_slice(bytes);
    } else {
        write_string(out, bytes);
    }
}

/// A mailbox name: modified UTF-7 (RFC 3501 5.1.3) unless the client enabled UTF-8 names
/// (RFC 6855 3 / RFC 9051), in which case UTF-8 is sent as is. Always quoted for readability by
/// clients that mis-parse atoms with special characters; literal if it must be.
pub fn write_mailbox(out: &mut Vec<u8>, name: &str, utf8: bool) {
    if utf8 {
        if name.bytes().all(|b| b >= 0x20 && b != 0x7f)
            && name.len() <= 1024
            && !name.contains(['\r', '\n'])
        {
            write_quoted(out, name.as_bytes());
        } else {
            write_literal(out, name.as_bytes());
        }
    } else {
        write_string(out, utf7::encode(name).as_bytes());
    }
}

/// A flag list `(\Seen $Label1)`, with `\Recent` appended when `recent`.
pub fn write_flag_list(out: &mut Vec<u8>, flags: impl IntoIterator<Item = Flag>, recent: bool) {
    out.push(b'(');
    let mut first = true;
    for f in flags {
        if !first {
            out.push(b' ');
        }
        first = false;
        out.extend_from_slice(f.as_str().as_bytes());
    }
    if recent {
        if !first {
            out.push(b' ');
        }
        out.extend_from_slice(b"\\Recent");
    }
    out.push(b')');
}

/// A number in decimal, without the allocation `format!` makes: a FETCH of every message's
/// flags writes a few of them per message.
pub fn write_number(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `date-time` (RFC 3501 9): `"dd-Mon-yyyy hh:mm:ss +zzzz"`, in the zone it was given in.
pub fn write_date_time(out: &mut Vec<u8>, dt: DateTime) {
    let local = dt.unix + i64::from(dt.offset_minutes) * 60;
    let days = local.div_euclid(86_400);
    let secs = local.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let sign = if dt.offset_minutes < 0 { '-' } else { '+' };
    let off = i32::from(dt.offset_minutes).abs();
    let month = MONTHS[(m as usize).saturating_sub(1).min(11)];
    let s = format!(
        "\"{d:02}-{month}-{y:04} {:02}:{:02}:{:02} {sign}{:02}{:02}\"",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60,
        off / 60,
        off % 60
    );
    out.extend_from_slice(s.as_bytes());
}

/// Calendar arithmetic lives in `mail-types` (POP3 needs it too); re-exported for existing users.
pub use mail_types::date::{civil_from_days, days_from_civil};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_in_decimal() {
        for n in [0u64, 7, 10, 99, 1_000_000, u64::from(u32::MAX), u64::MAX] {
            let mut out = b"x".to_vec();
            write_number(&mut out, n);
            assert_eq!(out, format!("x{n}").into_bytes());
        }
    }

    #[test]
    fn status_lines() {
        let tag = Tag("a1".into());
        assert_eq!(
            status_line(Some(&tag), Status::Ok, None, "LOGIN completed"),
            b"a1 OK LOGIN completed\r\n"
        );
        assert_eq!(
            status_line(None, Status::Ok, Some(&Code::UidValidity(42)), "UIDs valid"),
            b"* OK [UIDVALIDITY 42] UIDs valid\r\n"
        );
        assert_eq!(
            status_line(Some(&tag), Status::No, Some(&Code::TryCreate), "no\r\nsuch"),
            b"a1 NO [TRYCREATE] no  such\r\n"
        );
        let set = SeqSet::from_values([1, 2, 3, 7]).unwrap();
        let code = Code::CopyUid {
            uid_validity: 9,
            source: set.clone(),
            destination: set,
        };
        assert_eq!(
            status_line(Some(&tag), Status::Ok, Some(&code), "done"),
            b"a1 OK [COPYUID 9 1:3,7 1:3,7] done\r\n"
        );
    }

    #[test]
    fn strings_pick_the_right_form() {
        let mut out = Vec::new();
        write_astring(&mut out, b"INBOX");
        out.push(b' ');
        write_astring(&mut out, b"nil");
        out.push(b' ');
        write_astring(&mut out, b"a b\"c\\");
        out.push(b' ');
        write_nstring(&mut out, None);
        out.push(b' ');
        write_string(&mut out, b"two\r\nlines");
        out.push(b' ');
        write_string(&mut out, "caf\u{e9}".as_bytes());
        assert_eq!(
            String::from_utf8_lossy(&out),
            "INBOX \"nil\" \"a b\\\"c\\\\\" NIL {10}\r\ntwo\r\nlines {5}\r\ncaf\u{e9}"
        );
    }

    #[test]
    fn date_time_is_formatted_in_its_zone() {
        let mut out = Vec::new();
        // 2009-02-13 23:31:30 UTC, shown at +0100 and at -0730.
        write_date_time(
            &mut out,
            DateTime {
                unix: 1_234_567_890,
                offset_minutes: 60,
            },
        );
        out.push(b' ');
        write_date_time(
            &mut out,
            DateTime {
                unix: 1_234_567_890,
                offset_minutes: -450,
            },
        );
        assert_eq!(
            String::from_utf8_lossy(&out),
            "\"14-Feb-2009 00:31:30 +0100\" \"13-Feb-2009 16:01:30 -0730\""
        );
    }

    #[test]
    fn flag_lists() {
        let mut out = Vec::new();
        write_flag_list(&mut out, [Flag::Seen, Flag::parse("$Junk").unwrap()], true);
        assert_eq!(out, b"(\\Seen $Junk \\Recent)");
        out.clear();
        write_flag_list(&mut out, [], false);
        assert_eq!(out, b"()");
    }
}
