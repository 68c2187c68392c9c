//! POP3 wire protocol: the streaming command decoder with its line limit, the command values it
//! produces (RFC 1939 3-7, RFC 2449 5, RFC 5034 4, RFC 2595 4), and the response syntax: status
//! lines with RFC 2449/3206 response codes, SASL continuations and dot-stuffed multi-line bodies.
//!
//! This crate turns bytes into values and values into bytes, nothing more. It knows nothing of
//! sockets, TLS, async runtimes, mail storage, authentication or MIME, and nothing of IMAP: what a
//! command means (message numbers, deletion marks, UIDLs) is the session layer's business.

pub mod command;
pub mod decoder;
pub mod response;

pub use command::{Command, ParseError};
pub use decoder::{Decoded, Decoder, LineRead, take_line};
pub use response::{Code, DotStuffer};
