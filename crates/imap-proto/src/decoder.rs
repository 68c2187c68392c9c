//! The streaming command decoder (RFC 3501 2.2 and 9, RFC 7888 literals).
//!
//! Decoding happens in two layers. The framer here reads lines and literals as they arrive,
//! whatever the fragmentation, and enforces every limit while doing so: it never buffers more
//! than [`Limits::max_line`] bytes of a line or [`Limits::max_command`] bytes of a command, and it
//! finds literal headers with a small per-byte state machine (outside quoted strings) instead of
//! rescanning. Once a command is complete, [`crate::parser`] runs the grammar over it in one go.
//! APPEND is the exception: the framer recognises its message literal and hands it to the caller
//! unread.

use std::collections::VecDeque;

use crate::command::{AppendHeader, Command, MailboxArg, ReplaceTarget, Tag};
use crate::parser::{
    self, AppendEnd, AppendPos, AppendPrefix, AppendSegment, CatenateItem, Cursor,
    INVALID_ARGUMENTS, bad_text,
};

/// Limits on what a client may send. Every one of them is enforced: a command beyond a limit is
/// answered with BAD (or the connection is closed when framing cannot be recovered).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Longest command line, excluding literal contents (RFC 7162 4 suggests at least 8192).
    pub max_line: usize,
    /// Largest literal inside an ordinary command (a password, a search string).
    pub max_literal: u64,
    /// Largest APPEND message literal.
    pub max_append: u64,
    /// Total bytes of one command including its literals (APPEND message excluded).
    pub max_command: usize,
    /// Deepest nesting of parentheses (SEARCH, FETCH lists).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line: 64 * 1024,
            max_literal: 64 * 1024,
            max_append: 64 * 1024 * 1024,
            max_command: 1024 * 1024,
            max_depth: 64,
        }
    }
}

/// What [`Decoder::decode`] found at the front of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A complete command, literals included.
    Command(Command),
    /// The client announced a synchronizing literal `{n}` and waits: send a continuation request
    /// (`+ ...`) and keep reading. Reported once per literal.
    NeedContinuation,
    /// APPEND (RFC 3501 6.3.11): everything before the message literal is parsed. The next `size`
    /// bytes of input are the message; the caller streams them to storage itself, removing them
    /// from the input, then calls [`Decoder::append_literal_done`] and goes on decoding, which yields
    /// [`Decoded::AppendDone`] at the end of the command (or another `AppendStart` for each further
    /// message of a MULTIAPPEND, RFC 3502).
    /// When `synchronizing`, the client waits for a continuation request before sending the
    /// literal; to refuse the message instead, reply with a tagged NO and call
    /// [`Decoder::reject_append`].
    AppendStart {
        tag: Tag,
        header: AppendHeader,
        size: u64,
        synchronizing: bool,
    },
    /// The APPEND command whose literal(s) were streamed is complete.
    AppendDone { tag: Tag },
    /// CATENATE (RFC 4469 3): a message built from parts begins, in place of a message literal
    /// (of an APPEND, of each MULTIAPPEND message, or of a REPLACE, RFC 8508 4.2). Its parts
    /// follow as [`Decoded::CatenateUrl`] and [`Decoded::CatenateText`], in the client's order,
    /// then [`Decoded::CatenateEnd`].
    CatenateStart { tag: Tag, header: AppendHeader },
    /// A `URL` part: the astring as sent, for the session to resolve.
    CatenateUrl { url: Vec<u8> },
    /// A `TEXT` part's literal of `size` bytes: streamed by the caller exactly like an
    /// [`Decoded::AppendStart`] message (then [`Decoder::append_literal_done`], or
    /// [`Decoder::reject_append`] to refuse it). `binary` for a literal8 (`~{n}`).
    CatenateText {
        size: u64,
        synchronizing: bool,
        binary: bool,
        /// The part came as RFC 6855 4's `UTF8 (~{n})`.
        utf8: bool,
    },
    /// The `)` ending the parts of the message begun by the last `CatenateStart`.
    CatenateEnd,
    /// A command that cannot be parsed: reply `tag BAD message` (untagged `* BAD` when the tag
    /// itself could not be read). The decoder has already skipped the rest of the command.
    Bad { tag: Option<Tag>, message: String },
    /// Framing cannot be recovered (for example a non-synchronizing literal above the limit, whose
    /// bytes are already on their way): reply `* BYE message` and close the connection.
    Fatal { message: String },
}

const TOO_LONG_LINE: &str = "Too long argument.";
const TOO_LONG_COMMAND: &str = "Too long command.";
const TOO_DEEP: &str = "Too deep parenthesis nesting.";
const LITERAL_TOO_LARGE: &str = "Literal size too large.";

/// Capacity kept in the command buffer between commands; a huge command's buffer is released.
const KEEP_CAPACITY: usize = 4096;

/// Incremental decoder. Feed it everything read from the client; it consumes from the front.
#[derive(Debug)]
pub struct Decoder {
    limits: Limits,
    state: State,
    /// The current command in wire form: its lines without line ends, each literal header
    /// followed by `\r\n` and the literal's bytes. During a MULTIAPPEND, just the current line.
    cmd: Vec<u8>,
    /// Bytes of the current line so far (also those skipped), without the line end.
    line_len: usize,
    /// Bytes of the current command so far, literals included, APPEND messages excluded.
    total: u64,
    scan: Scan,
    /// The last byte fed was a CR that may turn out to be half of the line's CRLF.
    pending_cr: bool,
    /// The command is already known to be bad; its remaining bytes are skipped, not kept.
    doomed: Option<Doomed>,
    /// Inside an APPEND whose first message literal was handed out.
    append: Option<AppendCtx>,
    /// Set once framing is lost; every later call reports it again.
    fatal: Option<String>,
    /// Items found together (the parts of a CATENATE read in one go), handed out one per call
    /// before any more input is consumed. Bounded by the command size limit.
    queue: VecDeque<Decoded>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a line of the command.
    Line,
    /// Reading (or, when `keep` is false, skipping) the bytes of a literal.
    Literal { remaining: u64, keep: bool },
    /// Waiting for the caller to consume an APPEND message literal.
    AppendData { size: u64, synchronizing: bool },
}

#[derive(Debug)]
struct Doomed {
    tag: Option<Tag>,
    message: String,
    /// The session already answered (a refused APPEND): skip without reporting.
    silent: bool,
    /// Largest non-synchronizing literal still skipped rather than closing the connection.
    skip_limit: u64,
}

#[derive(Debug)]
struct AppendCtx {
    tag: Tag,
    mailbox: MailboxArg,
    /// For a REPLACE (RFC 8508), which takes exactly one message: what it replaces.
    replace: Option<ReplaceTarget>,
    /// Where the command stands after the last literal.
    pos: AppendPos,
    /// Messages begun so far: only the first carries the REPLACE target.
    messages: usize,
}

impl AppendCtx {
    fn new(head: &parser::Head, mailbox: MailboxArg, replace: Option<ReplaceTarget>) -> Self {
        AppendCtx {
            tag: head.tag.clone().unwrap_or_else(|| Tag(String::new())),
            mailbox,
            replace,
            pos: AppendPos::First,
            messages: 0,
        }
    }

    /// The command name errors are reported under.
    fn name(&self) -> &'static str {
        if self.replace.is_some() {
            "REPLACE"
        } else {
            "APPEND"
        }
    }

    fn header(
        &mut self,
        flags: Vec<mail_types::Flag>,
        date: Option<crate::DateTime>,
        utf8: bool,
    ) -> AppendHeader {
        let replace = if self.messages == 0 {
            self.replace
        } else {
            None
        };
        self.messages += 1;
        AppendHeader {
            mailbox: self.mailbox.clone(),
            flags,
            date,
            replace,
            utf8,
        }
    }

    /// Turns parsed APPEND text into the items the caller sees, ending in the item for the
    /// literal that follows (`size` bytes), or in `AppendDone` when the command is complete.
    fn events(&mut self, segment: AppendSegment, size: u64, synchronizing: bool) -> Vec<Decoded> {
        let mut out = Vec::with_capacity(segment.items.len() + 1);
        for item in segment.items {
            out.push(match item {
                CatenateItem::Start { flags, date } => Decoded::CatenateStart {
                    tag: self.tag.clone(),
                    header: self.header(flags, date, false),
                },
                CatenateItem::Url(url) => Decoded::CatenateUrl { url },
                CatenateItem::End => Decoded::CatenateEnd,
            });
        }
        out.push(match segment.end {
            AppendEnd::Message { flags, date, utf8 } => Decoded::AppendStart {
                tag: self.tag.clone(),
                header: self.header(flags, date, utf8),
                size,
                synchronizing,
            },
            AppendEnd::Text { binary, utf8 } => Decoded::CatenateText {
                size,
                synchronizing,
                binary,
                utf8,
            },
            AppendEnd::Complete | AppendEnd::UrlLiteral => Decoded::AppendDone {
                tag: self.tag.clone(),
            },
        });
        self.pos = segment.pos;
        out
    }
}

/// Line-level lexical state, advanced one byte at a time so that arbitrary fragmentation gives
/// the same result as one read and no byte is ever looked at twice.
#[derive(Debug, Default, Clone, Copy)]
struct Scan {
    in_quote: bool,
    escape: bool,
    depth: usize,
    lit: LitScan,
}

/// Recognises a literal header (`{n}`, `{n+}`, `~{n}`) ending the bytes seen so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum LitScan {
    #[default]
    None,
    Tilde,
    Open {
        tilde: bool,
        digits: bool,
        value: u64,
        plus: bool,
    },
    Closed {
        tilde: bool,
        value: u64,
        plus: bool,
    },
}

impl LitScan {
    fn step(self, b: u8) -> LitScan {
        match (self, b) {
            (_, b'~') => LitScan::Tilde,
            (prev, b'{') => LitScan::Open {
                tilde: prev == LitScan::Tilde,
                digits: false,
                value: 0,
                plus: false,
            },
            (
                LitScan::Open {
                    tilde,
                    value,
                    plus: false,
                    ..
                },
                b'0'..=b'9',
            ) => LitScan::Open {
                tilde,
                digits: true,
                // Saturation keeps an absurd size absurd: it is refused as too large.
                value: value.saturating_mul(10).saturating_add(u64::from(b - b'0')),
                plus: false,
            },
            (
                LitScan::Open {
                    tilde,
                    digits: true,
                    value,
                    plus: false,
                },
                b'+',
            ) => LitScan::Open {
                tilde,
                digits: true,
                value,
                plus: true,
            },
            (
                LitScan::Open {
                    tilde,
                    digits: true,
                    value,
                    plus,
                },
                b'}',
            ) => LitScan::Closed { tilde, value, plus },
            _ => LitScan::None,
        }
    }
}

impl Scan {
    /// Advances over one line byte; true when this byte opens one parenthesis too many.
    /// Quoted strings (RFC 3501 4.3) are tracked so that `"{5}"` or `"("` mean nothing here.
    fn step(&mut self, b: u8, max_depth: usize) -> bool {
        if self.in_quote {
            self.lit = LitScan::None;
            if self.escape {
                self.escape = false;
            } else if b == b'\\' {
                self.escape = true;
            } else if b == b'"' {
                self.in_quote = false;
            }
            return false;
        }
        match b {
            b'"' => {
                self.in_quote = true;
                self.lit = LitScan::None;
            }
            b'(' => {
                self.lit = LitScan::None;
                self.depth = self.depth.saturating_add(1);
                return self.depth > max_depth;
            }
            b')' => {
                self.lit = LitScan::None;
                self.depth = self.depth.saturating_sub(1);
            }
            _ => self.lit = self.lit.step(b),
        }
        false
    }

    /// Quoted strings cannot span lines, so each line starts outside one.
    fn new_line(&mut self) {
        self.in_quote = false;
        self.escape = false;
        self.lit = LitScan::None;
    }
}

/// What a literal header at the end of a line turned out to introduce.
enum LiteralKind {
    Ordinary,
    /// An APPEND message or CATENATE `TEXT` literal, handed to the caller: the items before
    /// it, the last one announcing it.
    Streamed {
        events: Vec<Decoded>,
        ctx: AppendCtx,
    },
    Invalid {
        tag: Option<Tag>,
        message: String,
    },
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(Limits::default())
    }
}

impl Decoder {
    pub fn new(limits: Limits) -> Self {
        Decoder {
            limits,
            state: State::Line,
            cmd: Vec::new(),
            line_len: 0,
            total: 0,
            scan: Scan::default(),
            pending_cr: false,
            doomed: None,
            append: None,
            fatal: None,
            queue: VecDeque::new(),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Bytes of an unfinished command held inside the decoder: never more than the limits
    /// allow, whatever the client sends (for tests and metrics).
    pub fn buffered_len(&self) -> usize {
        self.cmd.len()
    }

    /// Decodes the next item from the front of `input`, removing the bytes it consumed. `None`
    /// means more input is needed (what was consumed so far is kept inside the decoder).
    ///
    /// Bytes after a complete item stay in `input`, so that the caller can read non-command
    /// lines (AUTHENTICATE responses, IDLE's `DONE`) with [`take_line`] or stream an APPEND
    /// message. While an APPEND message is outstanding (between [`Decoded::AppendStart`] and
    /// [`Decoder::append_literal_done`] or [`Decoder::reject_append`]) nothing is consumed.
    pub fn decode(&mut self, input: &mut Vec<u8>) -> Option<Decoded> {
        if let Some(item) = self.queue.pop_front() {
            return Some(item);
        }
        if let Some(message) = &self.fatal {
            return Some(Decoded::Fatal {
                message: message.clone(),
            });
        }
        let mut pos = 0;
        let out = self.step(input, &mut pos);
        input.drain(..pos.min(input.len()));
        if let Some(Decoded::Fatal { message }) = &out {
            self.fatal = Some(message.clone());
        }
        out
    }

    /// The caller has consumed the whole message literal announced by `AppendStart`.
    /// Decoding continues with the rest of the APPEND command (RFC 3502: more messages or CRLF).
    pub fn append_literal_done(&mut self) {
        if let State::AppendData { .. } = self.state {
            self.state = State::Line;
            self.clear_cmd();
            self.line_len = 0;
            self.scan = Scan::default();
        }
    }

    /// The caller refused a synchronizing APPEND literal (or CATENATE `TEXT` literal) and
    /// replied NO; the client sends no literal, so the decoder resumes at the next command.
    ///
    /// Called after a non-synchronizing `AppendStart`, whose bytes are on their way regardless
    /// (RFC 7888 4), the literal and the rest of the command are skipped without a report.
    pub fn reject_append(&mut self) {
        self.queue.clear();
        match self.state {
            State::AppendData {
                synchronizing: true,
                ..
            } => self.reset(),
            State::AppendData {
                size,
                synchronizing: false,
            } => {
                let tag = self.append.take().map(|ctx| ctx.tag);
                self.doomed = Some(Doomed {
                    tag,
                    message: String::new(),
                    silent: true,
                    skip_limit: self.limits.max_append,
                });
                self.clear_cmd();
                self.scan = Scan::default();
                self.state = State::Literal {
                    remaining: size,
                    keep: false,
                };
            }
            _ => {}
        }
    }

    fn step(&mut self, input: &[u8], pos: &mut usize) -> Option<Decoded> {
        loop {
            let avail = input.get(*pos..).unwrap_or(&[]);
            match self.state {
                State::AppendData { .. } => return None,
                State::Literal { remaining, keep } => {
                    let n = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(avail.len());
                    if keep {
                        self.cmd.extend_from_slice(avail.get(..n).unwrap_or(&[]));
                    }
                    *pos += n;
                    let left = remaining - n as u64;
                    if left > 0 {
                        self.state = State::Literal {
                            remaining: left,
                            keep,
                        };
                        return None;
                    }
                    self.state = State::Line;
                    self.line_len = 0;
                    self.scan.new_line();
                }
                State::Line => {
                    if avail.is_empty() {
                        return None;
                    }
                    if self.pending_cr {
                        self.pending_cr = false;
                        if avail.first() != Some(&b'\n') {
                            self.feed(b"\r");
                        }
                    }
                    match avail.iter().position(|&b| b == b'\n') {
                        None => {
                            // A trailing CR may be the first half of CRLF: hold it back.
                            let (body, cr) = match avail.split_last() {
                                Some((b'\r', body)) => (body, true),
                                _ => (avail, false),
                            };
                            self.feed(body);
                            self.pending_cr = cr;
                            *pos += avail.len();
                            return None;
                        }
                        Some(lf) => {
                            let line = avail.get(..lf).unwrap_or(&[]);
                            self.feed(line.strip_suffix(b"\r").unwrap_or(line));
                            *pos += lf + 1;
                            let more = *pos < input.len();
                            if let Some(out) = self.end_of_line(more) {
                                return Some(out);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Takes bytes of the current line (never a line end). Limits are checked at the exact byte
    /// that crosses them, so the part of the command kept for the error report (its tag and
    /// name) does not depend on how the input was fragmented.
    fn feed(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let mut cut: Option<(usize, &'static str)> = None;
        let max_depth = self.limits.max_depth;
        for (i, &b) in bytes.iter().enumerate() {
            if self.scan.step(b, max_depth) && cut.is_none() {
                cut = Some((i, TOO_DEEP));
            }
        }
        let len = bytes.len();
        if self.doomed.is_none() {
            let line_room = self.limits.max_line.saturating_sub(self.line_len);
            if len > line_room && cut.is_none_or(|(i, _)| line_room < i) {
                cut = Some((line_room, TOO_LONG_LINE));
            }
            let cmd_room =
                usize::try_from((self.limits.max_command as u64).saturating_sub(self.total))
                    .unwrap_or(usize::MAX);
            if len > cmd_room && cut.is_none_or(|(i, _)| cmd_room < i) {
                cut = Some((cmd_room, TOO_LONG_COMMAND));
            }
            match cut {
                None => self.cmd.extend_from_slice(bytes),
                Some((i, detail)) => {
                    self.cmd.extend_from_slice(bytes.get(..i).unwrap_or(bytes));
                    self.doom(detail);
                }
            }
        }
        self.line_len = self.line_len.saturating_add(len);
        self.total = self.total.saturating_add(len as u64);
    }

    /// Marks the current command as bad; its remaining bytes are skipped, not buffered.
    fn doom(&mut self, detail: &str) {
        let (tag, message, is_append) = match &self.append {
            Some(ctx) => (
                Some(ctx.tag.clone()),
                bad_text(Some("APPEND"), detail),
                true,
            ),
            None => {
                let h = parser::head(&self.cmd, false);
                let is_append = h.name.as_deref() == Some("APPEND");
                let (tag, message) = h.bad(detail);
                (tag, message, is_append)
            }
        };
        self.set_doomed(tag, message, is_append);
    }

    fn set_doomed(&mut self, tag: Option<Tag>, message: String, is_append: bool) {
        // A bad APPEND's literal may be the message: skip as much of it as APPEND allows.
        let skip_limit = if is_append || self.append.is_some() {
            self.limits.max_append
        } else {
            self.limits.max_literal
        };
        self.doomed = Some(Doomed {
            tag,
            message,
            silent: false,
            skip_limit,
        });
        self.append = None;
        self.clear_cmd();
    }

    /// A line ended. Either the command is complete, or the line ended with a literal header
    /// (RFC 3501 4.3, RFC 7888) and the command goes on after the literal.
    fn end_of_line(&mut self, more: bool) -> Option<Decoded> {
        let lit = self.scan.lit;
        self.scan.new_line();
        let LitScan::Closed {
            tilde,
            value: size,
            plus,
        } = lit
        else {
            return self.end_of_command();
        };
        let synchronizing = !plus;
        if let Some(doomed) = &self.doomed {
            if synchronizing {
                // The client waits for a continuation that will not come: the command ends.
                return self.finish_doomed();
            }
            if size > doomed.skip_limit {
                return Some(fatal(LITERAL_TOO_LARGE));
            }
            self.state = State::Literal {
                remaining: size,
                keep: false,
            };
            return None;
        }
        match self.classify_literal(tilde, size, synchronizing) {
            LiteralKind::Streamed { events, ctx } => {
                if !synchronizing && size > self.limits.max_append {
                    return Some(fatal(LITERAL_TOO_LARGE));
                }
                self.append = Some(ctx);
                self.state = State::AppendData {
                    size,
                    synchronizing,
                };
                self.clear_cmd();
                self.queue.extend(events);
                self.queue.pop_front()
            }
            LiteralKind::Ordinary => {
                // The CRLF after the header is kept in `cmd` too, so it counts.
                let fits = size <= self.limits.max_literal
                    && self.total.saturating_add(size).saturating_add(2)
                        <= self.limits.max_command as u64;
                if !fits {
                    if synchronizing {
                        let (tag, message) = parser::head(&self.cmd, false).bad(LITERAL_TOO_LARGE);
                        self.reset();
                        return Some(Decoded::Bad { tag, message });
                    }
                    return Some(fatal(LITERAL_TOO_LARGE));
                }
                self.cmd.extend_from_slice(b"\r\n");
                self.total = self.total.saturating_add(size).saturating_add(2);
                self.state = State::Literal {
                    remaining: size,
                    keep: true,
                };
                // A client that already sent the literal is not waiting for permission.
                (synchronizing && !more).then_some(Decoded::NeedContinuation)
            }
            LiteralKind::Invalid { tag, message } => {
                let is_append = parser::head(&self.cmd, false).name.as_deref() == Some("APPEND");
                self.set_doomed(tag, message, is_append);
                if synchronizing {
                    return self.finish_doomed();
                }
                if self.doomed.as_ref().is_some_and(|d| size > d.skip_limit) {
                    return Some(fatal(LITERAL_TOO_LARGE));
                }
                self.state = State::Literal {
                    remaining: size,
                    keep: false,
                };
                None
            }
        }
    }

    /// Decides what the literal whose header ends `cmd` is, before its bytes are accepted.
    fn classify_literal(&mut self, tilde: bool, size: u64, synchronizing: bool) -> LiteralKind {
        if let Some(mut ctx) = self.append.take() {
            // RFC 3502 3 / RFC 4469 5: more messages, or more parts of a CATENATE.
            let mut c = Cursor::new(&self.cmd);
            let detail = match parser::append_segment(&mut c, ctx.pos, ctx.replace.is_some()) {
                Ok(seg) if seg.end == AppendEnd::UrlLiteral => {
                    self.append = Some(ctx);
                    return LiteralKind::Ordinary;
                }
                Ok(seg) if seg.end != AppendEnd::Complete => {
                    let events = ctx.events(seg, size, synchronizing);
                    return LiteralKind::Streamed { events, ctx };
                }
                Ok(_) => INVALID_ARGUMENTS.into(),
                Err(parser::Fail(detail)) => detail,
            };
            let invalid = LiteralKind::Invalid {
                tag: Some(ctx.tag.clone()),
                message: bad_text(Some(ctx.name()), &detail),
            };
            // Kept so that the rest of the command is skipped as an APPEND's.
            self.append = Some(ctx);
            return invalid;
        }
        let head = match parser::check_head(&self.cmd, false) {
            Ok(h) => h,
            Err((tag, message)) => return LiteralKind::Invalid { tag, message },
        };
        let invalid = |detail: &str| {
            let (tag, message) = head.bad(detail);
            LiteralKind::Invalid { tag, message }
        };
        if is_append_name(head.name.as_deref()) {
            match parser::append_prefix(&self.cmd) {
                Ok(AppendPrefix::Mailbox) => {}
                Ok(AppendPrefix::Parsed { segment, .. })
                    if segment.end == AppendEnd::UrlLiteral => {}
                Ok(AppendPrefix::Parsed { segment, .. }) if segment.end == AppendEnd::Complete => {
                    return invalid(INVALID_ARGUMENTS);
                }
                Ok(AppendPrefix::Parsed {
                    mailbox,
                    replace,
                    segment,
                }) => {
                    let mut ctx = AppendCtx::new(&head, mailbox, replace);
                    let events = ctx.events(segment, size, synchronizing);
                    return LiteralKind::Streamed { events, ctx };
                }
                Err(parser::Fail(detail)) => return invalid(&detail),
            }
        }
        if tilde {
            // literal8 (RFC 3516) is only meaningful for APPEND's message and CATENATE's TEXT.
            return invalid(INVALID_ARGUMENTS);
        }
        LiteralKind::Ordinary
    }

    /// The command is complete: parse it, or report why it was skipped.
    fn end_of_command(&mut self) -> Option<Decoded> {
        if self.doomed.is_some() {
            return self.finish_doomed();
        }
        if let Some(mut ctx) = self.append.take() {
            // The rest of the line after the last literal: CATENATE parts, URL-only messages
            // or nothing at all.
            let mut c = Cursor::new(&self.cmd);
            let parsed = parser::append_segment(&mut c, ctx.pos, ctx.replace.is_some());
            let out = match parsed {
                Ok(seg) if seg.end == AppendEnd::Complete => {
                    self.queue.extend(ctx.events(seg, 0, false));
                    self.queue.pop_front()
                }
                Ok(_) => Some(Decoded::Bad {
                    message: bad_text(Some(ctx.name()), INVALID_ARGUMENTS),
                    tag: Some(ctx.tag),
                }),
                Err(parser::Fail(detail)) => Some(Decoded::Bad {
                    message: bad_text(Some(ctx.name()), &detail),
                    tag: Some(ctx.tag),
                }),
            };
            self.reset();
            return out;
        }
        if self.cmd.is_empty() {
            // An empty line between commands is ignored, as most servers do.
            self.reset();
            return None;
        }
        let head = parser::head(&self.cmd, true);
        if is_append_name(head.name.as_deref()) {
            // An APPEND whose messages are all made of CATENATE URLs has no literal at all.
            let out = match parser::append_prefix(&self.cmd) {
                Ok(AppendPrefix::Parsed {
                    mailbox,
                    replace,
                    segment,
                }) if segment.end == AppendEnd::Complete => {
                    let mut ctx = AppendCtx::new(&head, mailbox, replace);
                    self.queue.extend(ctx.events(segment, 0, false));
                    self.queue.pop_front()
                }
                Ok(_) => {
                    let (tag, message) = head.bad(INVALID_ARGUMENTS);
                    Some(Decoded::Bad { tag, message })
                }
                Err(parser::Fail(detail)) => {
                    let (tag, message) = head.bad(&detail);
                    Some(Decoded::Bad { tag, message })
                }
            };
            self.reset();
            return out;
        }
        let parsed = parser::parse_command(&self.cmd);
        self.reset();
        Some(match parsed {
            Ok(cmd) => Decoded::Command(cmd),
            Err((tag, message)) => Decoded::Bad { tag, message },
        })
    }

    fn finish_doomed(&mut self) -> Option<Decoded> {
        let doomed = self.doomed.take();
        self.reset();
        match doomed {
            Some(d) if !d.silent => Some(Decoded::Bad {
                tag: d.tag,
                message: d.message,
            }),
            _ => None,
        }
    }

    fn clear_cmd(&mut self) {
        self.cmd.clear();
        self.cmd.shrink_to(KEEP_CAPACITY);
    }

    /// Back to the start of a command.
    fn reset(&mut self) {
        self.state = State::Line;
        self.clear_cmd();
        self.line_len = 0;
        self.total = 0;
        self.scan = Scan::default();
        self.pending_cr = false;
        self.doomed = None;
        self.append = None;
    }
}

fn is_append_name(name: Option<&str>) -> bool {
    matches!(name, Some("APPEND" | "REPLACE" | "UID REPLACE"))
}

fn fatal(message: &str) -> Decoded {
    Decoded::Fatal {
        message: message.to_owned(),
    }
}

/// Result of [`take_line`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineRead {
    /// A line without its CRLF (a bare LF is accepted as a line end too).
    Line(Vec<u8>),
    NeedMore,
    /// The line is longer than allowed; the bytes seen so far were discarded.
    TooLong,
}

/// Takes one raw line from the front of `input`: for AUTHENTICATE responses (RFC 3501 6.2.2) and
/// IDLE's `DONE` (RFC 2177), which are not commands.
///
/// `max` bounds the line without its line end. After `TooLong` the rest of that line may still
/// arrive; callers end the exchange (BAD for AUTHENTICATE, closing for IDLE) rather than read on.
pub fn take_line(input: &mut Vec<u8>, max: usize) -> LineRead {
    match input.iter().position(|&b| b == b'\n') {
        Some(lf) => {
            let line = input.get(..lf).unwrap_or(&[]);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let out = if line.len() > max {
                LineRead::TooLong
            } else {
                LineRead::Line(line.to_vec())
            };
            input.drain(..=lf);
            out
        }
        None => {
            let content = input.strip_suffix(b"\r").unwrap_or(input).len();
            if content > max {
                input.clear();
                LineRead::TooLong
            } else {
                LineRead::NeedMore
            }
        }
    }
}
