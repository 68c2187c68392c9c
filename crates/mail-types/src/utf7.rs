//! Modified UTF-7 for mailbox names (RFC 3501 5.1.3): the IMAP wire form of a name, and also
//! how Dovecot (and so Columba) spells non-ASCII folder names in Maildir++ directory names.
//!
//! INTERFACE CONTRACT — implementation pending (see the helper task).

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Utf7Error {
    #[error("mailbox name is not valid modified UTF-7")]
    Invalid,
}

/// Encodes a Unicode mailbox name for the wire.
pub fn encode(name: &str) -> String {
    let _ = name;
    todo!("utf7")
}

/// Decodes a mailbox name from the wire. Strict: non-canonical encodings (a shift sequence for
/// printable ASCII, `&-` not used for `&`, unterminated or badly padded base64, 8-bit bytes) are
/// refused so that one mailbox has exactly one wire name.
pub fn decode(raw: &[u8]) -> Result<String, Utf7Error> {
    let _ = raw;
    todo!("utf7")
}
