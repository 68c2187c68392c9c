//! The command grammar (RFC 3501 9 and the extensions' ABNF), run over one complete command.
//!
//! The framer in [`crate::decoder`] collects a command's lines and literals into one buffer in
//! wire form (every literal header is followed by exactly `\r\n` and the literal bytes) and hands
//! it here once the command is complete. Parsing is a plain cursor walk with no recursion that
//! input can drive: the only nested grammar, SEARCH keys, is parsed with an explicit stack.

use std::borrow::Cow;
use std::num::NonZeroU32;

use mail_types::{Flag, SeqBound, SeqRange, SeqSet, is_atom_char};

use crate::command::*;
use crate::response::days_from_civil;

/// Deepest nesting of SEARCH keys (parentheses, NOT and OR together). Parentheses are also held
/// to [`crate::Limits::max_depth`] by the framer; this bound exists because NOT and OR nest
/// without parentheses, and every consumer of a [`SearchKey`] (drop included) recurses over it.
pub(crate) const MAX_SEARCH_NESTING: usize = 500;

/// Most criteria one SORT may list: there are nine keys, so more only repeats them.
const MAX_SORT_CRITERIA: usize = 32;

/// Most tags one CANCELUPDATE may name; a session holds far fewer update contexts.
const MAX_CANCELUPDATE_TAGS: usize = 100;

/// The longest command name echoed back in an error message.
const MAX_ECHO: usize = 64;

/// Why a command was refused: the text that follows `Error in IMAP command NAME: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fail(pub Cow<'static, str>);

pub(crate) type R<T> = Result<T, Fail>;

pub(crate) const INVALID_ARGUMENTS: &str = "Invalid arguments.";

fn invalid() -> Fail {
    Fail(Cow::Borrowed(INVALID_ARGUMENTS))
}

fn fail(msg: &'static str) -> Fail {
    Fail(Cow::Borrowed(msg))
}

/// `ASTRING-CHAR` (RFC 3501 9): `ATOM-CHAR / resp-specials`.
pub(crate) fn is_astring_char(b: u8) -> bool {
    b == b']' || is_atom_char(b)
}

/// `tag` (RFC 3501 9): any ASTRING-CHAR except `+`, which would be mistaken for a continuation.
pub(crate) fn is_tag_char(b: u8) -> bool {
    b != b'+' && is_astring_char(b)
}

/// `list-char` (RFC 3501 9): ATOM-CHAR, the wildcards `%` and `*`, and `]`.
pub(crate) fn is_list_char(b: u8) -> bool {
    b == b'%' || b == b'*' || is_astring_char(b)
}

/// Formats a BAD text the way Dovecot does, so clients and people see familiar wording.
pub(crate) fn bad_text(name: Option<&str>, detail: &str) -> String {
    match name {
        Some(name) => format!("Error in IMAP command {name}: {detail}"),
        None => format!("Error in IMAP command received by server: {detail}"),
    }
}

/// A word echoed from the client into a response: upper-cased, printable, bounded.
fn echo(raw: &[u8]) -> String {
    let mut s: String = raw
        .iter()
        .take(MAX_ECHO)
        .map(|&b| {
            if (0x21..0x7f).contains(&b) {
                char::from(b.to_ascii_uppercase())
            } else {
                '?'
            }
        })
        .collect();
    if raw.len() > MAX_ECHO {
        s.push_str("...");
    }
    s
}

pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn peek_at(&self, off: usize) -> Option<u8> {
        self.buf.get(self.pos + off).copied()
    }

    fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> R<()> {
        if self.eat(c) { Ok(()) } else { Err(invalid()) }
    }

    fn sp(&mut self) -> R<()> {
        self.expect(b' ')
    }

    fn end(&self) -> R<()> {
        if self.at_end() {
            Ok(())
        } else {
            Err(invalid())
        }
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        self.buf.get(start..self.pos).unwrap_or(&[])
    }

    /// `atom` (RFC 3501 9).
    fn atom(&mut self) -> R<&'a [u8]> {
        let a = self.take_while(is_atom_char);
        if a.is_empty() { Err(invalid()) } else { Ok(a) }
    }

    /// A keyword of the grammar (command, search key, fetch item): matched case-insensitively.
    /// Stops before `[` and `<` so `BODY[` and `BODY.PEEK[` split naturally.
    fn word(&mut self) -> R<String> {
        let w = self.take_while(|b| is_atom_char(b) && b != b'[' && b != b'<');
        if w.is_empty() {
            return Err(invalid());
        }
        Ok(String::from_utf8_lossy(w).to_ascii_uppercase())
    }

    /// Whether the next atom is `word` (case-insensitive) followed by something that ends it.
    fn at_word(&self, word: &[u8]) -> bool {
        let rest = self.rest();
        rest.len() >= word.len()
            && rest
                .get(..word.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(word))
            && !rest.get(word.len()).is_some_and(|&b| is_atom_char(b))
    }

    /// `astring` (RFC 3501 9).
    fn astring(&mut self) -> R<Cow<'a, [u8]>> {
        match self.peek() {
            Some(b'"') | Some(b'{') => self.string(),
            _ => {
                // 8-bit bytes are not ASTRING-CHARs, but clients such as Python's imaplib send
                // UTF-8 search strings bare (`SEARCH CHARSET UTF-8 SUBJECT Grüße`), and Dovecot
                // accepts them; CHARSET says how to read them.
                let a = self.take_while(|b| is_astring_char(b) || b >= 0x80);
                if a.is_empty() {
                    Err(invalid())
                } else {
                    Ok(Cow::Borrowed(a))
                }
            }
        }
    }

    /// `string` (RFC 3501 9): quoted or literal.
    fn string(&mut self) -> R<Cow<'a, [u8]>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal().map(Cow::Borrowed),
            _ => Err(invalid()),
        }
    }

    /// `quoted` (RFC 3501 9). Only `\"` and `\\` are escapes. 8-bit bytes are accepted although
    /// RFC 3501 TEXT-CHAR is 7-bit, as long as they are UTF-8 (RFC 6855 3 `uQUOTED-CHAR`, RFC
    /// 9051): UTF-8 clients and many others send them.
    fn quoted(&mut self) -> R<Cow<'a, [u8]>> {
        self.expect(b'"')?;
        let start = self.pos;
        let mut owned: Option<Vec<u8>> = None;
        loop {
            let b = self.peek().ok_or_else(invalid)?;
            self.pos += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let e = self.peek().ok_or_else(invalid)?;
                    if e != b'"' && e != b'\\' {
                        return Err(invalid());
                    }
                    self.pos += 1;
                    let o = owned.get_or_insert_with(|| {
                        self.buf.get(start..self.pos - 2).unwrap_or(&[]).to_vec()
                    });
                    o.push(e);
                }
                b'\r' | b'\n' | 0 => return Err(invalid()),
                _ => {
                    if let Some(o) = owned.as_mut() {
                        o.push(b);
                    }
                }
            }
        }
        let value = match owned {
            Some(o) => Cow::Owned(o),
            None => Cow::Borrowed(self.buf.get(start..self.pos - 1).unwrap_or(&[])),
        };
        // RFC 6855 3: 8-bit octets in a quoted string must be UTF-8, or the command is BAD.
        if !value.is_ascii() && std::str::from_utf8(&value).is_err() {
            return Err(invalid());
        }
        Ok(value)
    }

    /// `literal` (RFC 3501 9, with RFC 7888 `{n+}`). The framer guarantees that a literal header
    /// is followed by CRLF and the announced bytes; this is re-checked, never trusted.
    fn literal(&mut self) -> R<&'a [u8]> {
        self.expect(b'{')?;
        let n = self.number64()?;
        self.eat(b'+');
        self.expect(b'}')?;
        self.expect(b'\r')?;
        self.expect(b'\n')?;
        let n = usize::try_from(n).map_err(|_| invalid())?;
        let end = self.pos.checked_add(n).ok_or_else(invalid)?;
        let data = self.buf.get(self.pos..end).ok_or_else(invalid)?;
        self.pos = end;
        Ok(data)
    }

    fn digits(&mut self) -> R<&'a [u8]> {
        let d = self.take_while(|b| b.is_ascii_digit());
        if d.is_empty() { Err(invalid()) } else { Ok(d) }
    }

    /// `number` (RFC 3501 9): an unsigned 32-bit value; larger is an error, not a wrap.
    fn number(&mut self) -> R<u32> {
        let d = self.digits()?;
        parse_u64(d)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(invalid)
    }

    /// `number64` (RFC 9051 9), used for mod-sequences (RFC 7162 7).
    fn number64(&mut self) -> R<u64> {
        let d = self.digits()?;
        parse_u64(d).ok_or_else(invalid)
    }

    fn nz_number(&mut self) -> R<NonZeroU32> {
        NonZeroU32::new(self.number()?).ok_or_else(invalid)
    }

    /// `sequence-set` (RFC 3501 9). Zero and values beyond 2^32-1 are refused.
    fn seq_set(&mut self) -> R<SeqSet> {
        let mut ranges = Vec::new();
        loop {
            let start = self.seq_number()?;
            let end = if self.eat(b':') {
                self.seq_number()?
            } else {
                start
            };
            ranges.push(SeqRange { start, end });
            if !self.eat(b',') {
                break;
            }
        }
        // A set never reaches the end of the line mid-token: `1,` or `1:` are caught above.
        SeqSet::new(ranges).ok_or_else(invalid)
    }

    /// `sequence-set` extended with `$` (RFC 5182 3).
    fn message_set(&mut self) -> R<MessageSet> {
        if self.eat(b'$') {
            return Ok(MessageSet::SavedResult);
        }
        self.seq_set().map(MessageSet::Numbers)
    }

    fn seq_number(&mut self) -> R<SeqBound> {
        if self.eat(b'*') {
            return Ok(SeqBound::Star);
        }
        self.nz_number()
            .map(SeqBound::Value)
            .map_err(|_| fail("Invalid messageset"))
    }

    /// `mailbox` (RFC 3501 9): an astring, kept raw for the session to decode.
    fn mailbox(&mut self) -> R<MailboxArg> {
        Ok(MailboxArg(self.astring()?.into_owned()))
    }

    /// `list-mailbox` (RFC 3501 9). Used for the reference name too, which is formally a
    /// `mailbox`: clients do send wildcards there and the session decides what they mean.
    fn list_mailbox(&mut self) -> R<ListPattern> {
        match self.peek() {
            Some(b'"') | Some(b'{') => Ok(ListPattern(self.string()?.into_owned())),
            _ => {
                let a = self.take_while(is_list_char);
                if a.is_empty() {
                    Err(invalid())
                } else {
                    Ok(ListPattern(a.to_vec()))
                }
            }
        }
    }

    /// `flag` (RFC 3501 9) as STORE and APPEND take it. `\Recent` cannot be set by a client
    /// (RFC 3501 2.3.2) and unknown system flags are not extensible by clients, so both are BAD,
    /// worded as Dovecot does.
    fn flag(&mut self) -> R<Flag> {
        if self.eat(b'\\') {
            let a = self.atom()?;
            let name = String::from_utf8_lossy(a);
            return Flag::parse(&format!("\\{name}"))
                .map_err(|_| Fail(Cow::Owned(format!("Invalid system flag \\{}", echo(a)))));
        }
        let a = self.atom()?;
        let s = std::str::from_utf8(a).map_err(|_| invalid())?;
        Flag::parse(s).map_err(|_| fail("Invalid keyword"))
    }

    /// `flag-list` (RFC 3501 9): `"(" [flag *(SP flag)] ")"`.
    fn flag_list(&mut self) -> R<Vec<Flag>> {
        self.expect(b'(')?;
        let mut flags = Vec::new();
        if self.eat(b')') {
            return Ok(flags);
        }
        loop {
            flags.push(self.flag()?);
            if self.eat(b')') {
                return Ok(flags);
            }
            self.sp()?;
        }
    }

    /// `date` (RFC 3501 9): `date-text` or `DQUOTE date-text DQUOTE`, `d-Mon-yyyy`.
    fn date(&mut self) -> R<Date> {
        let quoted = self.eat(b'"');
        let day = self.small_digits(1, 2)?;
        self.expect(b'-')?;
        let month = self.month()?;
        self.expect(b'-')?;
        let year = self.small_digits(4, 4)?;
        if quoted {
            self.expect(b'"')?;
        }
        let year = u16::try_from(year).map_err(|_| invalid())?;
        if day == 0 || day > days_in_month(i64::from(year), month) {
            return Err(invalid());
        }
        Ok(Date {
            year,
            month: month as u8,
            day: day as u8,
        })
    }

    fn small_digits(&mut self, min: usize, max: usize) -> R<u32> {
        let start = self.pos;
        let mut v: u32 = 0;
        while self.pos - start < max {
            match self.peek() {
                Some(b) if b.is_ascii_digit() => {
                    v = v * 10 + u32::from(b - b'0');
                    self.pos += 1;
                }
                _ => break,
            }
        }
        if self.pos - start < min {
            return Err(invalid());
        }
        Ok(v)
    }

    fn month(&mut self) -> R<u32> {
        const MONTHS: [&[u8; 3]; 12] = [
            b"JAN", b"FEB", b"MAR", b"APR", b"MAY", b"JUN", b"JUL", b"AUG", b"SEP", b"OCT", b"NOV",
            b"DEC",
        ];
        let m = self.rest().get(..3).ok_or_else(invalid)?;
        let idx = MONTHS
            .iter()
            .position(|name| m.eq_ignore_ascii_case(&name[..]))
            .ok_or_else(invalid)?;
        self.pos += 3;
        Ok(idx as u32 + 1)
    }

    /// `date-time` (RFC 3501 9): `"dd-Mon-yyyy hh:mm:ss +zzzz"`; the day may be space-padded
    /// (`date-day-fixed`) and, leniently, a single digit.
    fn date_time(&mut self) -> R<DateTime> {
        self.expect(b'"')?;
        self.eat(b' ');
        let day = self.small_digits(1, 2)?;
        self.expect(b'-')?;
        let month = self.month()?;
        self.expect(b'-')?;
        let year = self.small_digits(4, 4)?;
        self.sp()?;
        let hour = self.small_digits(2, 2)?;
        self.expect(b':')?;
        let minute = self.small_digits(2, 2)?;
        self.expect(b':')?;
        let second = self.small_digits(2, 2)?;
        self.sp()?;
        let negative = match self.peek() {
            Some(b'+') => false,
            Some(b'-') => true,
            _ => return Err(invalid()),
        };
        self.pos += 1;
        let zh = self.small_digits(2, 2)?;
        let zm = self.small_digits(2, 2)?;
        self.expect(b'"')?;
        if day == 0
            || day > days_in_month(i64::from(year), month)
            || hour > 23
            || minute > 59
            || second > 60
            || zm > 59
        {
            return Err(invalid());
        }
        let offset = (zh * 60 + zm) as i16;
        let offset_minutes = if negative { -offset } else { offset };
        let days = days_from_civil(i64::from(year), month, day);
        let unix = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second)
            - i64::from(offset_minutes) * 60;
        Ok(DateTime {
            unix,
            offset_minutes,
        })
    }

    /// A literal header `{n}`, `{n+}` or `~{n}` (RFC 3516 literal8) that must end the buffer:
    /// the framer stopped right after it.
    fn literal_header_at_end(&mut self, allow_binary: bool) -> R<()> {
        if self.eat(b'~') && !allow_binary {
            return Err(invalid());
        }
        self.expect(b'{')?;
        self.digits()?;
        self.eat(b'+');
        self.expect(b'}')?;
        self.end()
    }
}

fn parse_u64(d: &[u8]) -> Option<u64> {
    d.iter().try_fold(0u64, |acc, &b| {
        acc.checked_mul(10)?
            .checked_add(u64::from(b.wrapping_sub(b'0')))
    })
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

/// What the start of a command says about itself: enough to answer BAD with the right tag and
/// name, and to decide how to treat a literal before the command is complete.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    pub tag: Option<Tag>,
    /// Upper-cased command name (`UID FETCH` for UID commands) when it could be read.
    pub name: Option<String>,
}

impl Head {
    pub(crate) fn bad(&self, detail: &str) -> (Option<Tag>, String) {
        (self.tag.clone(), bad_text(self.name.as_deref(), detail))
    }
}

/// Reads `tag SP name` from the front of a command; `complete` says whether `buf` is all of it
/// (a tag running into the end of a partial buffer may not be finished yet).
pub(crate) fn head(buf: &[u8], complete: bool) -> Head {
    let mut c = Cursor::new(buf);
    let t = c.take_while(is_tag_char);
    let tag = Some(Tag(String::from_utf8_lossy(t).into_owned()));
    if complete && !t.is_empty() && c.at_end() {
        return Head { tag, name: None };
    }
    if t.is_empty() || c.peek() != Some(b' ') {
        return Head {
            tag: None,
            name: None,
        };
    }
    c.pos += 1;
    let n = c.take_while(is_atom_char);
    if n.is_empty() {
        return Head { tag, name: None };
    }
    let mut name = echo(n);
    if name == "UID" && c.eat(b' ') {
        let sub = c.take_while(is_atom_char);
        if !sub.is_empty() {
            name = format!("UID {}", echo(sub));
        }
    }
    Head {
        tag,
        name: Some(name),
    }
}

/// Whether a command name is one this grammar knows (so a literal inside it is worth accepting).
pub(crate) fn is_known_command(name: &str) -> bool {
    matches!(
        name,
        "CAPABILITY"
            | "NOOP"
            | "LOGOUT"
            | "ID"
            | "STARTTLS"
            | "AUTHENTICATE"
            | "LOGIN"
            | "SELECT"
            | "EXAMINE"
            | "CREATE"
            | "DELETE"
            | "RENAME"
            | "SUBSCRIBE"
            | "UNSUBSCRIBE"
            | "LIST"
            | "LSUB"
            | "STATUS"
            | "APPEND"
            | "REPLACE"
            | "NAMESPACE"
            | "COMPRESS"
            | "GETQUOTA"
            | "GETQUOTAROOT"
            | "SETQUOTA"
            | "ENABLE"
            | "IDLE"
            | "CHECK"
            | "CLOSE"
            | "UNSELECT"
            | "CANCELUPDATE"
            | "EXPUNGE"
            | "SEARCH"
            | "FETCH"
            | "STORE"
            | "COPY"
            | "MOVE"
            | "UID"
            | "UID FETCH"
            | "UID SEARCH"
            | "UID STORE"
            | "UID COPY"
            | "UID MOVE"
            | "UID EXPUNGE"
            | "UID REPLACE"
            | "SORT"
            | "THREAD"
            | "UID SORT"
            | "UID THREAD"
    )
}

/// Checks the front of a command before a literal inside it is accepted: refusing a literal of a
/// command that is already known to be bad spares the client sending it (RFC 3501 7.5).
pub(crate) fn check_head(buf: &[u8], complete: bool) -> Result<Head, (Option<Tag>, String)> {
    let h = head(buf, complete);
    if h.tag.is_none() {
        return Err((None, bad_text(None, "Invalid tag.")));
    }
    match &h.name {
        None => Err(h.bad("Missing command name.")),
        Some(name) if !is_known_command(name) => Err(h.bad("Unknown command.")),
        Some(_) => Ok(h),
    }
}

/// What the start of an APPEND (or `[UID] REPLACE n`, RFC 8508 5) read so far says.
pub(crate) enum AppendPrefix {
    /// The mailbox name itself is sent as a literal: an ordinary literal.
    Mailbox,
    /// The mailbox and what follows it up to the end of the text.
    Parsed {
        mailbox: MailboxArg,
        replace: Option<ReplaceTarget>,
        segment: AppendSegment,
    },
}

/// Reads `buf`, the start of an APPEND or REPLACE command up to its first message literal, its
/// first CATENATE `TEXT` literal, a literal inside its arguments, or its end.
pub(crate) fn append_prefix(buf: &[u8]) -> R<AppendPrefix> {
    let mut c = Cursor::new(buf);
    c.take_while(is_tag_char);
    c.sp()?;
    let name = c.take_while(is_atom_char).to_ascii_uppercase();
    let uid = name == b"UID";
    if uid {
        c.sp()?;
        c.take_while(is_atom_char);
    }
    let replace = if uid || name == b"REPLACE" {
        c.sp()?;
        Some(ReplaceTarget {
            uid,
            message: c.seq_number()?,
        })
    } else {
        None
    };
    c.sp()?;
    if c.peek() == Some(b'{') {
        let mut probe = Cursor { buf, pos: c.pos };
        if probe.literal_header_at_end(false).is_ok() {
            return Ok(AppendPrefix::Mailbox);
        }
    }
    let mailbox = c.mailbox()?;
    // RFC 8508 4.7: REPLACE has no MULTIAPPEND form.
    let segment = append_segment(&mut c, AppendPos::First, replace.is_some())?;
    Ok(AppendPrefix::Parsed {
        mailbox,
        replace,
        segment,
    })
}

/// Where an APPEND stands between two of its literals (RFC 3502 3, RFC 4469 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AppendPos {
    /// No message yet: one must follow.
    First,
    /// After a complete message: another one (MULTIAPPEND) or the end of the command.
    Between,
    /// Just inside `CATENATE (`: a part must follow.
    CatenateFirst,
    /// Inside `CATENATE (...` after a part: another part or `)`.
    CatenateNext,
    /// After the literal of a message's `UTF8 (` (RFC 6855 4): its `)`, then as `Between`.
    Utf8Close,
    /// After the literal of a CATENATE part's `UTF8 (`: its `)`, then as `CatenateNext`.
    Utf8CloseInCatenate,
}

/// What the text of an APPEND between two literals says, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CatenateItem {
    /// `[flag-list] [date-time] CATENATE (`: a message made of parts begins.
    Start {
        flags: Vec<Flag>,
        date: Option<DateTime>,
    },
    /// `URL astring`
    Url(Vec<u8>),
    /// The `)` that ends a CATENATE list.
    End,
}

/// How the text of an APPEND between two literals ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AppendEnd {
    /// With the command: no literal follows.
    Complete,
    /// With a message literal (`{n}`, or `~{n}` for BINARY), after its options; `utf8` for
    /// RFC 6855 4's `UTF8 (~{n})`.
    Message {
        flags: Vec<Flag>,
        date: Option<DateTime>,
        utf8: bool,
    },
    /// With a CATENATE `TEXT` literal; `binary` for a literal8 (`~{n}`), which RFC 4469 5's
    /// `text-literal` does not name but BINARY's `append-data` (RFC 4466 2.3) does, as
    /// Dovecot accepts it.
    /// `utf8`: the part came as RFC 6855 4's `UTF8 (~{n})`.
    Text { binary: bool, utf8: bool },
    /// With the header of a literal that is a URL's astring: an ordinary literal.
    UrlLiteral,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AppendSegment {
    pub items: Vec<CatenateItem>,
    /// Where the APPEND stands after this text.
    pub pos: AppendPos,
    pub end: AppendEnd,
}

/// Parses the text of an APPEND from `pos` to the end of `c`: RFC 3502's `append-opts`
/// (`[SP flag-list] [SP date-time] SP append-data`) for each message, where `append-data` is a
/// literal or RFC 4469 5's `"CATENATE" SP "(" cat-part *(SP cat-part) ")"`. `single` allows one
/// message only (REPLACE).
pub(crate) fn append_segment(
    c: &mut Cursor<'_>,
    mut pos: AppendPos,
    single: bool,
) -> R<AppendSegment> {
    let mut items = Vec::new();
    loop {
        match pos {
            AppendPos::First | AppendPos::Between => {
                if pos == AppendPos::Between && c.at_end() {
                    return Ok(AppendSegment {
                        items,
                        pos,
                        end: AppendEnd::Complete,
                    });
                }
                if pos == AppendPos::Between && single {
                    return Err(invalid());
                }
                let (flags, date) = append_opts(c)?;
                if utf8_literal(c)? {
                    return Ok(AppendSegment {
                        items,
                        pos: AppendPos::Utf8Close,
                        end: AppendEnd::Message {
                            flags,
                            date,
                            utf8: true,
                        },
                    });
                }
                if c.at_word(b"CATENATE") {
                    c.pos += 8;
                    c.sp()?;
                    c.expect(b'(')?;
                    items.push(CatenateItem::Start { flags, date });
                    pos = AppendPos::CatenateFirst;
                    continue;
                }
                c.literal_header_at_end(true)?;
                return Ok(AppendSegment {
                    items,
                    pos: AppendPos::Between,
                    end: AppendEnd::Message {
                        flags,
                        date,
                        utf8: false,
                    },
                });
            }
            AppendPos::Utf8Close | AppendPos::Utf8CloseInCatenate => {
                c.expect(b')')?;
                pos = if pos == AppendPos::Utf8Close {
                    AppendPos::Between
                } else {
                    AppendPos::CatenateNext
                };
            }
            AppendPos::CatenateFirst | AppendPos::CatenateNext => {
                if pos == AppendPos::CatenateNext {
                    if c.eat(b')') {
                        items.push(CatenateItem::End);
                        pos = AppendPos::Between;
                        continue;
                    }
                    c.sp()?;
                }
                match c.word()?.as_str() {
                    "URL" => {
                        c.sp()?;
                        if c.peek() == Some(b'{') {
                            let mut probe = Cursor {
                                buf: c.buf,
                                pos: c.pos,
                            };
                            if probe.literal_header_at_end(false).is_ok() {
                                return Ok(AppendSegment {
                                    items,
                                    pos,
                                    end: AppendEnd::UrlLiteral,
                                });
                            }
                        }
                        items.push(CatenateItem::Url(c.astring()?.into_owned()));
                        pos = AppendPos::CatenateNext;
                    }
                    "TEXT" => {
                        c.sp()?;
                        let binary = c.peek() == Some(b'~');
                        c.literal_header_at_end(true)?;
                        return Ok(AppendSegment {
                            items,
                            pos: AppendPos::CatenateNext,
                            end: AppendEnd::Text {
                                binary,
                                utf8: false,
                            },
                        });
                    }
                    // RFC 6855 4: `cat-part =/ utf8-literal`.
                    "UTF8" => {
                        c.pos -= 4;
                        utf8_literal(c)?;
                        return Ok(AppendSegment {
                            items,
                            pos: AppendPos::Utf8CloseInCatenate,
                            end: AppendEnd::Text {
                                binary: true,
                                utf8: true,
                            },
                        });
                    }
                    _ => return Err(invalid()),
                }
            }
        }
    }
}

/// RFC 6855 4 `utf8-literal = "UTF8" SP "(" literal8 ")"` up to its literal header, which
/// must end the text; `false` (nothing consumed) when the text does not start with `UTF8`.
fn utf8_literal(c: &mut Cursor<'_>) -> R<bool> {
    if !c.at_word(b"UTF8") {
        return Ok(false);
    }
    c.pos += 4;
    c.sp()?;
    c.expect(b'(')?;
    if c.peek() != Some(b'~') {
        return Err(invalid());
    }
    c.literal_header_at_end(true)?;
    Ok(true)
}

/// `[SP flag-list] [SP date-time] SP`, what precedes each message of an APPEND (RFC 3501
/// 6.3.11, RFC 3502 append-opts).
fn append_opts(c: &mut Cursor<'_>) -> R<(Vec<Flag>, Option<DateTime>)> {
    c.sp()?;
    let mut flags = Vec::new();
    let mut date = None;
    if c.peek() == Some(b'(') {
        flags = c.flag_list()?;
        c.sp()?;
    }
    if c.peek() == Some(b'"') {
        date = Some(c.date_time()?);
        c.sp()?;
    }
    Ok((flags, date))
}

/// A `section-spec` (RFC 3501 9) on its own, as an IMAP URL's `;SECTION=` carries it
/// (RFC 5092 6); `None` unless all of `spec` is one.
pub(crate) fn section_spec(spec: &[u8]) -> Option<Section> {
    let mut wrapped = Vec::with_capacity(spec.len() + 2);
    wrapped.push(b'[');
    wrapped.extend_from_slice(spec);
    wrapped.push(b']');
    let mut c = Cursor::new(&wrapped);
    let parsed = section(&mut c).ok()?;
    c.at_end().then_some(parsed)
}

/// Parses one complete command (RFC 3501 9 `command`). The error is the tag, if readable, and
/// the full BAD text.
pub(crate) fn parse_command(buf: &[u8]) -> Result<Command, (Option<Tag>, String)> {
    let h = check_head(buf, true)?;
    let mut c = Cursor::new(buf);
    c.take_while(is_tag_char);
    c.pos += 1;
    let name = c.word().map_err(|_| h.bad(INVALID_ARGUMENTS))?;
    let tag = h.tag.clone().unwrap_or_else(|| Tag(String::new()));
    match body(&mut c, &name).and_then(|b| c.end().map(|()| b)) {
        Ok(body) => Ok(Command { tag, body }),
        Err(Fail(detail)) => Err(h.bad(&detail)),
    }
}

fn body(c: &mut Cursor<'_>, name: &str) -> R<CommandBody> {
    Ok(match name {
        "CAPABILITY" => CommandBody::Capability,
        "NOOP" => CommandBody::Noop,
        "LOGOUT" => CommandBody::Logout,
        "STARTTLS" => CommandBody::StartTls,
        "NAMESPACE" => CommandBody::Namespace,
        // RFC 4978 3: `COMPRESS SP algorithm`.
        "COMPRESS" => {
            c.sp()?;
            CommandBody::Compress {
                mechanism: c.word()?,
            }
        }
        "IDLE" => CommandBody::Idle,
        "CHECK" => CommandBody::Check,
        "CLOSE" => CommandBody::Close,
        "UNSELECT" => CommandBody::Unselect,
        "CANCELUPDATE" => {
            // RFC 5267 5: `"CANCELUPDATE" 1*(SP quoted)`.
            let mut tags = Vec::new();
            while c.eat(b' ') {
                let tag = c.quoted()?;
                tags.push(String::from_utf8(tag.into_owned()).map_err(|_| invalid())?);
                if tags.len() > MAX_CANCELUPDATE_TAGS {
                    return Err(invalid());
                }
            }
            if tags.is_empty() {
                return Err(invalid());
            }
            CommandBody::CancelUpdate(tags)
        }
        "EXPUNGE" => CommandBody::Expunge,
        "ID" => {
            c.sp()?;
            CommandBody::Id(id_params(c)?)
        }
        "AUTHENTICATE" => authenticate(c)?,
        "LOGIN" => {
            c.sp()?;
            let username = c.astring()?.into_owned();
            c.sp()?;
            let password = c.astring()?.into_owned();
            CommandBody::Login { username, password }
        }
        "SELECT" | "EXAMINE" => {
            c.sp()?;
            let mailbox = c.mailbox()?;
            let params = select_params(c)?;
            if name == "SELECT" {
                CommandBody::Select { mailbox, params }
            } else {
                CommandBody::Examine { mailbox, params }
            }
        }
        "CREATE" | "DELETE" | "SUBSCRIBE" | "UNSUBSCRIBE" => {
            c.sp()?;
            let mailbox = c.mailbox()?;
            match name {
                "CREATE" => CommandBody::Create {
                    mailbox,
                    uses: create_params(c)?,
                },
                "DELETE" => CommandBody::Delete { mailbox },
                "SUBSCRIBE" => CommandBody::Subscribe { mailbox },
                _ => CommandBody::Unsubscribe { mailbox },
            }
        }
        "RENAME" => {
            c.sp()?;
            let from = c.mailbox()?;
            c.sp()?;
            let to = c.mailbox()?;
            CommandBody::Rename { from, to }
        }
        "LIST" => list(c)?,
        "LSUB" => {
            c.sp()?;
            let reference = c.list_mailbox()?;
            c.sp()?;
            let pattern = c.list_mailbox()?;
            CommandBody::Lsub { reference, pattern }
        }
        "STATUS" => {
            c.sp()?;
            let mailbox = c.mailbox()?;
            c.sp()?;
            CommandBody::Status {
                mailbox,
                items: status_items(c)?,
            }
        }
        // A complete APPEND never reaches here with its literal: the framer reports those with
        // AppendStart. What is left is an APPEND without a message.
        // Like APPEND, these end in a message literal, which the decoder hands out itself.
        "APPEND" | "REPLACE" => return Err(invalid()),
        // RFC 9208 7.
        "GETQUOTA" => {
            c.sp()?;
            CommandBody::GetQuota {
                root: c.astring()?.into_owned(),
            }
        }
        "GETQUOTAROOT" => {
            c.sp()?;
            CommandBody::GetQuotaRoot {
                mailbox: c.mailbox()?,
            }
        }
        "SETQUOTA" => {
            c.sp()?;
            let root = c.astring()?.into_owned();
            c.sp()?;
            c.expect(b'(')?;
            let mut limits = Vec::new();
            while !c.eat(b')') {
                if !limits.is_empty() {
                    c.sp()?;
                }
                let name = c.word()?;
                c.sp()?;
                limits.push((name, c.number64()?));
            }
            CommandBody::SetQuota { root, limits }
        }
        "ENABLE" => {
            let mut caps = Vec::new();
            while c.eat(b' ') {
                caps.push(String::from_utf8_lossy(c.atom()?).to_ascii_uppercase());
            }
            if caps.is_empty() {
                return Err(invalid());
            }
            CommandBody::Enable(caps)
        }
        "SEARCH" => search(c, false)?,
        "SORT" => sort(c, false)?,
        "THREAD" => thread(c, false)?,
        "FETCH" => fetch(c, false)?,
        "STORE" => store(c, false)?,
        "COPY" | "MOVE" => copy_move(c, false, name == "MOVE")?,
        "UID" => {
            c.sp()?;
            let sub = c.word()?;
            match sub.as_str() {
                "SEARCH" => search(c, true)?,
                "SORT" => sort(c, true)?,
                "THREAD" => thread(c, true)?,
                "FETCH" => fetch(c, true)?,
                "STORE" => store(c, true)?,
                "COPY" | "MOVE" => copy_move(c, true, sub == "MOVE")?,
                // RFC 4315 2.1
                "EXPUNGE" => {
                    c.sp()?;
                    CommandBody::UidExpunge(c.message_set()?)
                }
                "REPLACE" => return Err(invalid()),
                _ => return Err(fail("Unknown command.")),
            }
        }
        _ => return Err(fail("Unknown command.")),
    })
}

/// RFC 2971 3: `"ID" SP id-params-list`, `id-params-list ::= "(" #(string SP nstring) ")" / nil`.
/// Field names are accepted as astrings too: some clients send atoms.
/// The ID parameter list as [`CommandBody::Id`] holds it.
type IdParams = Option<Vec<(String, Option<String>)>>;

fn id_params(c: &mut Cursor<'_>) -> R<IdParams> {
    if c.at_word(b"NIL") {
        c.pos += 3;
        return Ok(None);
    }
    c.expect(b'(')?;
    let mut out = Vec::new();
    if c.eat(b')') {
        return Ok(Some(out));
    }
    loop {
        let key = lossy(c.astring()?);
        c.sp()?;
        let value = if c.at_word(b"NIL") {
            c.pos += 3;
            None
        } else {
            Some(lossy(c.astring()?))
        };
        out.push((key, value));
        if c.eat(b')') {
            return Ok(Some(out));
        }
        c.sp()?;
    }
}

fn lossy(b: Cow<'_, [u8]>) -> String {
    String::from_utf8_lossy(&b).into_owned()
}

/// RFC 3501 6.2.2 with RFC 4959 SASL-IR: `AUTHENTICATE SP auth-type [SP (base64 / "=")]`.
fn authenticate(c: &mut Cursor<'_>) -> R<CommandBody> {
    c.sp()?;
    let mechanism = String::from_utf8_lossy(c.atom()?).to_ascii_uppercase();
    let initial_response = if c.eat(b' ') {
        if c.eat(b'=') {
            Some(Vec::new())
        } else {
            let b =
                c.take_while(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=');
            if !is_base64(b) {
                return Err(invalid());
            }
            Some(b.to_vec())
        }
    } else {
        None
    };
    Ok(CommandBody::Authenticate {
        mechanism,
        initial_response,
    })
}

/// `base64` (RFC 3501 9): groups of four, `=` padding only at the end.
fn is_base64(b: &[u8]) -> bool {
    if b.is_empty() || !b.len().is_multiple_of(4) {
        return false;
    }
    let body = b.len() - b.iter().rev().take_while(|&&x| x == b'=').count();
    b.len() - body <= 2 && b.get(..body).is_some_and(|s| !s.contains(&b'='))
}

/// RFC 4466 2.1 select-params; RFC 7162 3.1.8 defines CONDSTORE, the only one Columba knows.
fn select_params(c: &mut Cursor<'_>) -> R<SelectParams> {
    let mut params = SelectParams::default();
    if !c.eat(b' ') {
        return Ok(params);
    }
    c.expect(b'(')?;
    if c.eat(b')') {
        return Ok(params);
    }
    loop {
        let p = c.word()?;
        match p.as_str() {
            "CONDSTORE" => params.condstore = true,
            // RFC 7162 3.2.5: QRESYNC SP "(" uidvalidity SP mod-sequence-value [SP known-uids]
            // [SP seq-match-data] ")"; seq-match-data = "(" known-sequence-set SP known-uid-set ")".
            "QRESYNC" => {
                c.sp()?;
                c.expect(b'(')?;
                let uid_validity = c.number()?;
                c.sp()?;
                let modseq = c.number64()?;
                let mut known_uids = None;
                let mut seq_match = None;
                if c.eat(b' ') {
                    if c.peek() != Some(b'(') {
                        known_uids = Some(c.seq_set()?);
                        if c.eat(b' ') {
                            seq_match = Some(seq_match_data(c)?);
                        }
                    } else {
                        seq_match = Some(seq_match_data(c)?);
                    }
                }
                c.expect(b')')?;
                if uid_validity == 0 || modseq == 0 {
                    return Err(invalid());
                }
                params.qresync = Some(QresyncParams {
                    uid_validity,
                    modseq,
                    known_uids,
                    seq_match,
                });
            }
            _ => return Err(invalid()),
        }
        if c.eat(b')') {
            return Ok(params);
        }
        c.sp()?;
    }
}

/// `"(" known-sequence-set SP known-uid-set ")"` (RFC 7162 3.2.5).
fn seq_match_data(c: &mut Cursor<'_>) -> R<(SeqSet, SeqSet)> {
    c.expect(b'(')?;
    let seqs = c.seq_set()?;
    c.sp()?;
    let uids = c.seq_set()?;
    c.expect(b')')?;
    Ok((seqs, uids))
}

/// LIST (RFC 3501 6.3.8) and its extended form (RFC 5258 6):
/// `LIST [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]`.
/// Unknown options are BAD (RFC 5258 3), and so is `RECURSIVEMATCH` alone (3.1).
fn list(c: &mut Cursor<'_>) -> R<CommandBody> {
    c.sp()?;
    let mut select = ListSelect::default();
    let mut extended = false;
    if c.eat(b'(') {
        extended = true;
        if !c.eat(b')') {
            loop {
                match c.word()?.as_str() {
                    "SUBSCRIBED" => select.subscribed = true,
                    "REMOTE" => select.remote = true,
                    "RECURSIVEMATCH" => select.recursive_match = true,
                    "SPECIAL-USE" => select.special_use = true,
                    _ => return Err(invalid()),
                }
                if c.eat(b')') {
                    break;
                }
                c.sp()?;
            }
        }
        if select.recursive_match && !select.subscribed && !select.special_use {
            return Err(invalid());
        }
        c.sp()?;
    }
    let reference = c.list_mailbox()?;
    c.sp()?;
    let mut patterns = Vec::new();
    if c.eat(b'(') {
        extended = true;
        loop {
            patterns.push(c.list_mailbox()?);
            if c.eat(b')') {
                break;
            }
            c.sp()?;
        }
    } else {
        patterns.push(c.list_mailbox()?);
    }
    let mut returns = ListReturn::default();
    if c.peek() == Some(b' ') {
        c.sp()?;
        if c.word()? != "RETURN" {
            return Err(invalid());
        }
        c.sp()?;
        c.expect(b'(')?;
        extended = true;
        if !c.eat(b')') {
            loop {
                match c.word()?.as_str() {
                    "SUBSCRIBED" => returns.subscribed = true,
                    "CHILDREN" => returns.children = true,
                    "SPECIAL-USE" => returns.special_use = true,
                    "STATUS" => {
                        c.sp()?;
                        returns.status = Some(status_items(c)?);
                    }
                    _ => return Err(invalid()),
                }
                if c.eat(b')') {
                    break;
                }
                c.sp()?;
            }
        }
    }
    if !extended && patterns.len() == 1 {
        let pattern = patterns.remove(0);
        return Ok(CommandBody::List { reference, pattern });
    }
    Ok(CommandBody::ListExtended {
        select,
        reference,
        patterns,
        returns,
    })
}

/// `"(" status-att *(SP status-att) ")"` (RFC 3501 9, RFC 7162 3.1.9, RFC 8438, RFC 9051).
fn status_items(c: &mut Cursor<'_>) -> R<Vec<StatusItem>> {
    c.expect(b'(')?;
    let mut items = Vec::new();
    loop {
        items.push(match c.word()?.as_str() {
            "MESSAGES" => StatusItem::Messages,
            "RECENT" => StatusItem::Recent,
            "UIDNEXT" => StatusItem::UidNext,
            "UIDVALIDITY" => StatusItem::UidValidity,
            "UNSEEN" => StatusItem::Unseen,
            "HIGHESTMODSEQ" => StatusItem::HighestModSeq,
            "SIZE" => StatusItem::Size,
            "DELETED" => StatusItem::Deleted,
            "APPENDLIMIT" => StatusItem::AppendLimit,
            "MAILBOXID" => StatusItem::MailboxId,
            "DELETED-STORAGE" => StatusItem::DeletedStorage,
            _ => return Err(invalid()),
        });
        if c.eat(b')') {
            return Ok(items);
        }
        c.sp()?;
    }
}

/// CREATE's parameters (RFC 4466 2.2): only `USE (attr ...)` of RFC 6154 3 is known.
fn create_params(c: &mut Cursor<'_>) -> R<Vec<String>> {
    let mut uses = Vec::new();
    if !c.eat(b' ') {
        return Ok(uses);
    }
    c.expect(b'(')?;
    loop {
        if c.word()? != "USE" {
            return Err(fail("Unknown CREATE parameter."));
        }
        c.sp()?;
        c.expect(b'(')?;
        let mut first = true;
        while !c.eat(b')') {
            if !first {
                c.sp()?;
            }
            first = false;
            c.expect(b'\\')?;
            let attr = c.atom()?;
            uses.push(format!("\\{}", String::from_utf8_lossy(attr)));
        }
        if c.eat(b')') {
            return Ok(uses);
        }
        c.sp()?;
    }
}

fn copy_move(c: &mut Cursor<'_>, uid: bool, is_move: bool) -> R<CommandBody> {
    c.sp()?;
    let set = c.message_set()?;
    c.sp()?;
    let mailbox = c.mailbox()?;
    Ok(if is_move {
        CommandBody::Move { uid, set, mailbox }
    } else {
        CommandBody::Copy { uid, set, mailbox }
    })
}

/// `store` (RFC 3501 9): `STORE SP sequence-set SP ["+"/"-"] "FLAGS" [".SILENT"] SP
/// (flag-list / (flag *(SP flag)))`.
fn store(c: &mut Cursor<'_>, uid: bool) -> R<CommandBody> {
    c.sp()?;
    let set = c.message_set()?;
    c.sp()?;
    // RFC 4466 2.5 store-modifiers; RFC 7162 3.1.3 defines UNCHANGEDSINCE, the only one known.
    let mut unchanged_since = None;
    if c.eat(b'(') {
        loop {
            match c.word()?.as_str() {
                "UNCHANGEDSINCE" => {
                    c.sp()?;
                    unchanged_since = Some(c.number64()?);
                }
                _ => return Err(invalid()),
            }
            if c.eat(b')') {
                break;
            }
            c.sp()?;
        }
        c.sp()?;
    }
    let action = if c.eat(b'+') {
        StoreAction::Add
    } else if c.eat(b'-') {
        StoreAction::Remove
    } else {
        StoreAction::Replace
    };
    let silent = match c.word()?.as_str() {
        "FLAGS" => false,
        "FLAGS.SILENT" => true,
        _ => return Err(invalid()),
    };
    c.sp()?;
    let flags = if c.peek() == Some(b'(') {
        c.flag_list()?
    } else {
        let mut flags = vec![c.flag()?];
        while c.eat(b' ') {
            flags.push(c.flag()?);
        }
        flags
    };
    Ok(CommandBody::Store {
        uid,
        set,
        action,
        silent,
        flags,
        unchanged_since,
    })
}

/// `fetch` (RFC 3501 6.4.5 and 9): a macro, one item, or a parenthesized list of items.
fn fetch(c: &mut Cursor<'_>, uid: bool) -> R<CommandBody> {
    c.sp()?;
    let set = c.message_set()?;
    c.sp()?;
    let items = if c.eat(b'(') {
        let mut items = Vec::new();
        loop {
            items.push(fetch_att(c)?);
            if c.eat(b')') {
                break;
            }
            c.sp()?;
        }
        items
    } else if c.at_word(b"ALL") {
        c.pos += 3;
        vec![
            FetchAttr::Flags,
            FetchAttr::InternalDate,
            FetchAttr::Rfc822Size,
            FetchAttr::Envelope,
        ]
    } else if c.at_word(b"FAST") {
        c.pos += 4;
        vec![
            FetchAttr::Flags,
            FetchAttr::InternalDate,
            FetchAttr::Rfc822Size,
        ]
    } else if c.at_word(b"FULL") {
        c.pos += 4;
        vec![
            FetchAttr::Flags,
            FetchAttr::InternalDate,
            FetchAttr::Rfc822Size,
            FetchAttr::Envelope,
            FetchAttr::Body,
        ]
    } else {
        vec![fetch_att(c)?]
    };
    // RFC 4466 2.4 fetch-modifiers: CHANGEDSINCE (RFC 7162 3.1.4.1) and, for UID FETCH with
    // CHANGEDSINCE, VANISHED (3.2.6).
    let mut changed_since = None;
    let mut vanished = false;
    if c.eat(b' ') {
        c.expect(b'(')?;
        loop {
            match c.word()?.as_str() {
                "CHANGEDSINCE" => {
                    c.sp()?;
                    let n = c.number64()?;
                    if n == 0 {
                        return Err(invalid());
                    }
                    changed_since = Some(n);
                }
                "VANISHED" => vanished = true,
                _ => return Err(invalid()),
            }
            if c.eat(b')') {
                break;
            }
            c.sp()?;
        }
        if vanished && (!uid || changed_since.is_none()) {
            return Err(invalid());
        }
    }
    Ok(CommandBody::Fetch {
        uid,
        set,
        items,
        changed_since,
        vanished,
    })
}

/// `fetch-att` (RFC 3501 9, RFC 7162 3.1.4.1 MODSEQ).
fn fetch_att(c: &mut Cursor<'_>) -> R<FetchAttr> {
    let name = c.word()?;
    Ok(match name.as_str() {
        "ENVELOPE" => FetchAttr::Envelope,
        "FLAGS" => FetchAttr::Flags,
        "INTERNALDATE" => FetchAttr::InternalDate,
        "RFC822" => FetchAttr::Rfc822,
        "RFC822.HEADER" => FetchAttr::Rfc822Header,
        "RFC822.SIZE" => FetchAttr::Rfc822Size,
        "RFC822.TEXT" => FetchAttr::Rfc822Text,
        "BODYSTRUCTURE" => FetchAttr::BodyStructure,
        "UID" => FetchAttr::Uid,
        "MODSEQ" => FetchAttr::ModSeq,
        "SAVEDATE" => FetchAttr::SaveDate,
        "EMAILID" => FetchAttr::EmailId,
        "THREADID" => FetchAttr::ThreadId,
        // RFC 8970 4.1: LAZY is the only modifier; FUZZY and LAZY=FUZZY are the draft's
        // (Dovecot's PREVIEW=FUZZY and SNIPPET=FUZZY), answered in the draft's form.
        "PREVIEW" | "SNIPPET" => {
            let modifiers = preview_modifiers(c);
            let fuzzy = name == "SNIPPET" || modifiers.fuzzy;
            if fuzzy {
                FetchAttr::FuzzyPreview {
                    snippet: name == "SNIPPET",
                    lazy: modifiers.lazy,
                }
            } else {
                FetchAttr::Preview {
                    lazy: modifiers.lazy,
                }
            }
        }
        // RFC 3516 7: `section-binary = "[" [section-part] "]"`.
        "BINARY" | "BINARY.PEEK" => {
            let part = section_part_only(c)?;
            FetchAttr::Binary {
                peek: name == "BINARY.PEEK",
                part,
                partial: partial(c)?,
            }
        }
        "BINARY.SIZE" => FetchAttr::BinarySize {
            part: section_part_only(c)?,
        },
        "BODY" if c.peek() != Some(b'[') => FetchAttr::Body,
        "BODY" | "BODY.PEEK" => {
            let section = section(c)?;
            let partial = partial(c)?;
            FetchAttr::BodySection {
                peek: name == "BODY.PEEK",
                section,
                partial,
            }
        }
        _ => return Err(invalid()),
    })
}

/// What follows PREVIEW or SNIPPET in parentheses.
#[derive(Default)]
struct PreviewModifiers {
    lazy: bool,
    fuzzy: bool,
}

/// ` (LAZY)`, ` (FUZZY)`, ` (LAZY=FUZZY)` and combinations after PREVIEW or SNIPPET; taken
/// only when every word in the parentheses is one of these, so that a FETCH modifier list
/// (`FETCH 1 PREVIEW (CHANGEDSINCE 5)`) stays for the FETCH.
fn preview_modifiers(c: &mut Cursor<'_>) -> PreviewModifiers {
    let mut found = PreviewModifiers::default();
    let rest = c.rest();
    let Some(inner) = rest.strip_prefix(b" (") else {
        return found;
    };
    let Some(close) = inner.iter().position(|&b| b == b')') else {
        return found;
    };
    for word in inner[..close].split(|&b| b == b' ') {
        match word.to_ascii_uppercase().as_slice() {
            b"LAZY" => found.lazy = true,
            b"FUZZY" => found.fuzzy = true,
            b"LAZY=FUZZY" => {
                found.lazy = true;
                found.fuzzy = true;
            }
            _ => return PreviewModifiers::default(),
        }
    }
    c.pos += 2 + close + 1;
    found
}

/// `[partial]` after a section: `"<" number "." nz-number ">"`.
fn partial(c: &mut Cursor<'_>) -> R<Option<Partial>> {
    if !c.eat(b'<') {
        return Ok(None);
    }
    let origin = c.number()?;
    c.expect(b'.')?;
    let length = c.nz_number()?.get();
    c.expect(b'>')?;
    Ok(Some(Partial { origin, length }))
}

/// `section-binary` (RFC 3516 7): `"[" [section-part] "]"`, part numbers only.
fn section_part_only(c: &mut Cursor<'_>) -> R<Vec<u32>> {
    c.expect(b'[')?;
    let mut part = Vec::new();
    if c.eat(b']') {
        return Ok(part);
    }
    loop {
        part.push(c.nz_number()?.get());
        if c.eat(b']') {
            return Ok(part);
        }
        c.expect(b'.')?;
    }
}

/// `section` (RFC 3501 9): `"[" [section-spec] "]"`.
fn section(c: &mut Cursor<'_>) -> R<Section> {
    c.expect(b'[')?;
    let mut part = Vec::new();
    let mut text = None;
    if c.eat(b']') {
        return Ok(Section { part, text });
    }
    if c.peek().is_some_and(|b| b.is_ascii_digit()) {
        loop {
            part.push(c.nz_number()?.get());
            if !(c.peek() == Some(b'.') && c.peek_at(1).is_some_and(|b| b.is_ascii_digit())) {
                break;
            }
            c.pos += 1;
        }
        if c.eat(b'.') {
            text = Some(section_text(c, true)?);
        }
    } else {
        text = Some(section_text(c, false)?);
    }
    c.expect(b']')?;
    Ok(Section { part, text })
}

/// `section-text` / `section-msgtext` (RFC 3501 9); MIME only after a part number.
fn section_text(c: &mut Cursor<'_>, after_part: bool) -> R<SectionText> {
    let w = c.take_while(|b| b.is_ascii_alphanumeric() || b == b'.');
    let w = String::from_utf8_lossy(w).to_ascii_uppercase();
    Ok(match w.as_str() {
        "HEADER" => SectionText::Header,
        "TEXT" => SectionText::Text,
        "MIME" if after_part => SectionText::Mime,
        "HEADER.FIELDS" | "HEADER.FIELDS.NOT" => {
            c.sp()?;
            c.expect(b'(')?;
            let mut fields = Vec::new();
            loop {
                fields.push(lossy(c.astring()?));
                if c.eat(b')') {
                    break;
                }
                c.sp()?;
            }
            if w == "HEADER.FIELDS" {
                SectionText::HeaderFields(fields)
            } else {
                SectionText::HeaderFieldsNot(fields)
            }
        }
        _ => return Err(invalid()),
    })
}

/// An open construct of the SEARCH grammar while its operands are being read.
enum Frame {
    Not,
    OrFirst,
    OrSecond(SearchKey),
    Paren(Vec<SearchKey>),
}

/// `search` (RFC 3501 6.4.4 and 9, RFC 7162 3.1.5): `[CHARSET astring] 1*(SP search-key)`.
fn search(c: &mut Cursor<'_>, uid: bool) -> R<CommandBody> {
    c.sp()?;
    let returns = search_returns(c)?;
    let charset = if c.at_word(b"CHARSET") {
        c.pos += 7;
        c.sp()?;
        let cs = lossy(c.astring()?);
        c.sp()?;
        Some(cs)
    } else {
        None
    };
    let criteria = search_keys(c)?;
    Ok(CommandBody::Search {
        uid,
        returns,
        charset,
        criteria,
    })
}

/// `sort` (RFC 5256 5, RFC 5267 3.2, RFC 5957 3): `[RETURN (...) SP] "(" sort-criterion
/// *(SP sort-criterion) ")" SP charset 1*(SP search-key)`.
fn sort(c: &mut Cursor<'_>, uid: bool) -> R<CommandBody> {
    c.sp()?;
    let returns = search_returns(c)?;
    c.expect(b'(')?;
    if c.peek() == Some(b')') {
        return Err(fail("Empty sort program."));
    }
    let mut criteria = Vec::new();
    loop {
        let mut reverse = false;
        let mut name = c.word()?;
        if name == "REVERSE" {
            reverse = true;
            if c.peek() == Some(b')') {
                return Err(fail("Sort list ends with REVERSE."));
            }
            c.sp()?;
            name = c.word()?;
        }
        let key = match name.as_str() {
            "ARRIVAL" => SortKey::Arrival,
            "CC" => SortKey::Cc,
            "DATE" => SortKey::Date,
            "FROM" => SortKey::From,
            "SIZE" => SortKey::Size,
            "SUBJECT" => SortKey::Subject,
            "TO" => SortKey::To,
            "DISPLAYFROM" => SortKey::DisplayFrom,
            "DISPLAYTO" => SortKey::DisplayTo,
            _ => {
                return Err(Fail(Cow::Owned(format!(
                    "Unknown sort argument: {}",
                    echo(name.as_bytes())
                ))));
            }
        };
        criteria.push(SortCriterion { reverse, key });
        if criteria.len() > MAX_SORT_CRITERIA {
            return Err(fail("Too many sort criteria."));
        }
        if c.eat(b')') {
            break;
        }
        c.sp()?;
    }
    c.sp()?;
    let charset = lossy(c.astring()?);
    c.sp()?;
    let search = search_keys(c)?;
    Ok(CommandBody::Sort {
        uid,
        returns,
        criteria,
        charset,
        search,
    })
}

/// `thread` (RFC 5256 5): `thread-alg SP charset 1*(SP search-key)`.
fn thread(c: &mut Cursor<'_>, uid: bool) -> R<CommandBody> {
    c.sp()?;
    let algorithm = match c.word()?.as_str() {
        "ORDEREDSUBJECT" => ThreadAlgorithm::OrderedSubject,
        "REFERENCES" => ThreadAlgorithm::References,
        "REFS" => ThreadAlgorithm::Refs,
        _ => return Err(fail("Unknown thread algorithm.")),
    };
    c.sp()?;
    let charset = lossy(c.astring()?);
    c.sp()?;
    let search = search_keys(c)?;
    Ok(CommandBody::Thread {
        uid,
        algorithm,
        charset,
        search,
    })
}

/// `[RETURN (...) SP]` of SEARCH (RFC 4731 3.1) and SORT (RFC 5267 3.2):
/// `"RETURN" SP "(" [search-return-opt *(SP search-return-opt)] ")"`.
fn search_returns(c: &mut Cursor<'_>) -> R<Option<Vec<SearchReturn>>> {
    let returns = if c.at_word(b"RETURN") {
        c.pos += 6;
        c.sp()?;
        c.expect(b'(')?;
        let mut opts = Vec::new();
        if !c.eat(b')') {
            loop {
                let opt = match c.word()?.as_str() {
                    "MIN" => SearchReturn::Min,
                    "MAX" => SearchReturn::Max,
                    "ALL" => SearchReturn::All,
                    "COUNT" => SearchReturn::Count,
                    "SAVE" => SearchReturn::Save,
                    "CONTEXT" => SearchReturn::Context,
                    "UPDATE" => SearchReturn::Update,
                    "PARTIAL" => {
                        // RFC 5267 5: `partial-range = nz-number ":" nz-number`, either way
                        // round.
                        c.sp()?;
                        let a = c.nz_number()?.get();
                        c.expect(b':')?;
                        let b = c.nz_number()?.get();
                        SearchReturn::Partial {
                            first: a.min(b),
                            last: a.max(b),
                        }
                    }
                    _ => return Err(invalid()),
                };
                // RFC 5267 4.4: one PARTIAL or one ALL at most.
                let is_range = |o: &SearchReturn| {
                    matches!(o, SearchReturn::All | SearchReturn::Partial { .. })
                };
                if is_range(&opt) && opts.iter().any(|o| is_range(o) && *o != opt) {
                    return Err(invalid());
                }
                if !opts.contains(&opt) {
                    opts.push(opt);
                }
                if c.eat(b')') {
                    break;
                }
                c.sp()?;
            }
        }
        c.sp()?;
        Some(opts)
    } else {
        None
    };
    Ok(returns)
}

/// The keys of a SEARCH, iteratively: nesting is bounded by [`MAX_SEARCH_NESTING`], never by
/// the call stack. A parenthesized list is always `And` (even of one key) so that encoding a
/// key and decoding it again gives it back; the top-level list is `And` only with several keys.
fn search_keys(c: &mut Cursor<'_>) -> R<SearchKey> {
    let mut top: Vec<SearchKey> = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    loop {
        if stack.len() > MAX_SEARCH_NESTING {
            return Err(fail("Too deep search key nesting."));
        }
        let mut value = match c.peek() {
            Some(b'(') => {
                c.pos += 1;
                stack.push(Frame::Paren(Vec::new()));
                continue;
            }
            Some(b) if b.is_ascii_digit() || b == b'*' => SearchKey::SequenceSet(c.seq_set()?),
            Some(b'$') => {
                c.pos += 1;
                SearchKey::SavedResult
            }
            _ => {
                let start = c.pos;
                let name = c.word()?;
                match name.as_str() {
                    "NOT" => {
                        c.sp()?;
                        stack.push(Frame::Not);
                        continue;
                    }
                    "OR" => {
                        c.sp()?;
                        stack.push(Frame::OrFirst);
                        continue;
                    }
                    _ => match simple_key(c, &name)? {
                        Some(k) => k,
                        None => {
                            let raw = c.buf.get(start..c.pos).unwrap_or(&[]);
                            return Err(Fail(Cow::Owned(format!(
                                "Unknown argument {}",
                                echo(raw)
                            ))));
                        }
                    },
                }
            }
        };
        // Close every construct the key just read completes.
        loop {
            match stack.pop() {
                None => {
                    top.push(value);
                    if c.eat(b' ') {
                        break;
                    }
                    return Ok(if top.len() == 1 {
                        top.pop().unwrap_or(SearchKey::All)
                    } else {
                        SearchKey::And(top)
                    });
                }
                Some(Frame::Not) => value = SearchKey::Not(Box::new(value)),
                Some(Frame::OrFirst) => {
                    c.sp()?;
                    stack.push(Frame::OrSecond(value));
                    break;
                }
                Some(Frame::OrSecond(first)) => {
                    value = SearchKey::Or(Box::new(first), Box::new(value));
                }
                Some(Frame::Paren(mut keys)) => {
                    keys.push(value);
                    if c.eat(b' ') {
                        stack.push(Frame::Paren(keys));
                        break;
                    }
                    c.expect(b')')?;
                    value = SearchKey::And(keys);
                }
            }
        }
    }
}

/// A search key without nested keys, or `None` if `name` is no key at all.
fn simple_key(c: &mut Cursor<'_>, name: &str) -> R<Option<SearchKey>> {
    use SearchKey as K;
    let string = |c: &mut Cursor<'_>| -> R<String> {
        c.sp()?;
        Ok(lossy(c.astring()?))
    };
    let date = |c: &mut Cursor<'_>| -> R<Date> {
        c.sp()?;
        c.date()
    };
    Ok(Some(match name {
        "ALL" => K::All,
        "ANSWERED" => K::Answered,
        "DELETED" => K::Deleted,
        "DRAFT" => K::Draft,
        "FLAGGED" => K::Flagged,
        "NEW" => K::New,
        "OLD" => K::Old,
        "RECENT" => K::Recent,
        "SEEN" => K::Seen,
        "UNANSWERED" => K::Unanswered,
        "UNDELETED" => K::Undeleted,
        "UNDRAFT" => K::Undraft,
        "UNFLAGGED" => K::Unflagged,
        "UNSEEN" => K::Unseen,
        "BCC" => K::Bcc(string(c)?),
        "BODY" => K::Body(string(c)?),
        "CC" => K::Cc(string(c)?),
        "FROM" => K::From(string(c)?),
        "SUBJECT" => K::Subject(string(c)?),
        "TEXT" => K::Text(string(c)?),
        "TO" => K::To(string(c)?),
        "HEADER" => {
            let field = string(c)?;
            K::Header(field, string(c)?)
        }
        "BEFORE" => K::Before(date(c)?),
        "ON" => K::On(date(c)?),
        "SINCE" => K::Since(date(c)?),
        "SENTBEFORE" => K::SentBefore(date(c)?),
        "SENTON" => K::SentOn(date(c)?),
        "SENTSINCE" => K::SentSince(date(c)?),
        // RFC 8514 4.3
        "SAVEDBEFORE" => K::SavedBefore(date(c)?),
        "SAVEDON" => K::SavedOn(date(c)?),
        "SAVEDSINCE" => K::SavedSince(date(c)?),
        "SAVEDATESUPPORTED" => K::SaveDateSupported,
        // RFC 8474 6: `objectid` is 1*255 of ALPHA, DIGIT, "_" and "-".
        "EMAILID" => {
            c.sp()?;
            K::EmailId(object_id(c)?)
        }
        "THREADID" => {
            c.sp()?;
            K::ThreadId(object_id(c)?)
        }
        "KEYWORD" => K::Keyword(keyword_arg(c)?),
        "UNKEYWORD" => K::Unkeyword(keyword_arg(c)?),
        "LARGER" => {
            c.sp()?;
            K::Larger(c.number()?)
        }
        "SMALLER" => {
            c.sp()?;
            K::Smaller(c.number()?)
        }
        "UID" => {
            c.sp()?;
            match c.message_set()? {
                MessageSet::Numbers(set) => K::Uid(set),
                MessageSet::SavedResult => K::SavedResult,
            }
        }
        // RFC 5032 3
        "OLDER" => {
            c.sp()?;
            K::Older(c.nz_number()?.get())
        }
        "YOUNGER" => {
            c.sp()?;
            K::Younger(c.nz_number()?.get())
        }
        // RFC 7162 3.1.5: MODSEQ [SP entry-name SP entry-type-req] SP mod-sequence-valzer.
        // The entry name only narrows which flag's modseq is meant; Columba keeps one per
        // message, so it is read and ignored.
        "MODSEQ" => {
            c.sp()?;
            if c.peek() == Some(b'"') || c.peek() == Some(b'{') {
                c.string()?;
                c.sp()?;
                match c.word()?.as_str() {
                    "PRIV" | "SHARED" | "ALL" => {}
                    _ => return Err(invalid()),
                }
                c.sp()?;
            }
            K::ModSeq(c.number64()?)
        }
        _ => return Ok(None),
    }))
}

/// `objectid` (RFC 8474 7): 1 to 255 letters, digits, `_` and `-`.
fn object_id(c: &mut Cursor<'_>) -> R<String> {
    let id = c.take_while(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if id.is_empty() || id.len() > 255 {
        return Err(invalid());
    }
    Ok(String::from_utf8_lossy(id).into_owned())
}

/// KEYWORD's argument: RFC 3501 says `flag-keyword` (an atom); system-flag spellings and
/// strings are taken too and simply match nothing later, as the contract documents.
fn keyword_arg(c: &mut Cursor<'_>) -> R<String> {
    c.sp()?;
    if c.eat(b'\\') {
        let a = c.atom()?;
        return Ok(format!("\\{}", String::from_utf8_lossy(a)));
    }
    Ok(lossy(c.astring()?))
}
