//! LMTP wire protocol (RFC 2033, on the syntax of SMTP, RFC 5321): the streaming decoder of
//! command lines (with its line limit) and of the DATA section (dot-unstuffing, the end-of-data
//! line, a size limit that does not make the server buffer what it refuses), the command
//! values with their envelope addresses and parameters (RFC 1870 SIZE, RFC 6152 BODY), and
//! replies with RFC 2034/3463 enhanced status codes.
//!
//! This crate turns bytes into values and values into bytes, nothing more. It knows nothing
//! of sockets, async runtimes, users, quotas or mail storage, and nothing of IMAP or POP3:
//! what a recipient means and where a message goes is the session layer's business.

pub mod address;
pub mod command;
pub mod decoder;
pub mod reply;

pub use address::{Address, AddressError};
pub use command::{Body, Command, MailParams, ParseError};
pub use decoder::{DataEnd, Decoded, Decoder};
pub use reply::Reply;
