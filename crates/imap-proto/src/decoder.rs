//! The streaming command decoder (RFC 3501 2.2 and 9, RFC 7888 literals).
//!
//! INTERFACE CONTRACT — implementation pending (see the helper task).

use crate::command::{AppendHeader, Command, Tag};

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
    /// A command that cannot be parsed: reply `tag BAD message` (untagged `* BAD` when the tag
    /// itself could not be read). The decoder has already skipped the rest of the command.
    Bad { tag: Option<Tag>, message: String },
    /// Framing cannot be recovered (for example a non-synchronizing literal above the limit, whose
    /// bytes are already on their way): reply `* BYE message` and close the connection.
    Fatal { message: String },
}

/// Incremental decoder. Feed it everything read from the client; it consumes from the front.
#[derive(Debug)]
pub struct Decoder {
    limits: Limits,
}

impl Decoder {
    pub fn new(limits: Limits) -> Self {
        Decoder { limits }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Decodes the next item from the front of `input`, removing the bytes it consumed. `None`
    /// means more input is needed (what was consumed so far is kept inside the decoder).
    pub fn decode(&mut self, input: &mut Vec<u8>) -> Option<Decoded> {
        let _ = input;
        todo!("decoder")
    }

    /// The caller has consumed the whole message literal announced by `AppendStart`.
    pub fn append_literal_done(&mut self) {
        todo!("decoder")
    }

    /// The caller refused a synchronizing APPEND literal (and replied NO); the client sends no
    /// literal, so the decoder resumes at the next command.
    pub fn reject_append(&mut self) {
        todo!("decoder")
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
pub fn take_line(input: &mut Vec<u8>, max: usize) -> LineRead {
    let _ = (input, max);
    todo!("decoder")
}
