//! IMAP wire protocol: a streaming command decoder, the command values it produces, and the
//! primitives the session layer writes responses with (RFC 3501 9, RFC 9051 9 and the extensions).
//!
//! This crate turns bytes into values and values into bytes, nothing more. It owns framing
//! (lines, synchronizing and non-synchronizing literals, limits on every size and on nesting),
//! modified UTF-7 and the exact response syntax. It knows nothing of sockets, TLS, async runtimes,
//! storage or MIME: the APPEND message literal is handed to the caller as a byte count to stream
//! elsewhere, never buffered here.

pub mod command;
pub mod decoder;
pub mod encode;
mod parser;
pub mod response;
pub mod url;
pub use mail_types::utf7;

pub use command::*;
pub use decoder::{Decoded, Decoder, Limits, LineRead, take_line};
pub use encode::append_to_wire;
