//! OBJECTID (RFC 8474): MAILBOXID is the store's mailbox identifier; EMAILID is derived from
//! what is immutable about a message — its bytes and its INTERNALDATE (5.1) — so a COPY or
//! MOVE keeps it (the copy has the same bytes and date) and it survives restarts and a lost
//! cache alike; THREADID is not computed, so it is NIL and matches nothing (5.2).

use mail_store::{CacheField, Mailbox};
use mail_types::Uid;
use sha2::{Digest, Sha256};

/// Hex digits of the digest kept in an EMAILID: 128 bits.
const EMAILID_HEX: usize = 32;

/// The message's EMAILID (`M` and 32 hex digits), from the cache or computed and offered to
/// it; `None` when the message is gone.
pub(crate) fn email_id(mailbox: &dyn Mailbox, uid: Uid) -> Option<String> {
    if let Some(cached) = mailbox.cached(uid, CacheField::EmailId)
        && let Ok(id) = std::str::from_utf8(&cached)
    {
        return Some(id.to_owned());
    }
    let info = mailbox.message_info(uid).ok()?;
    let raw = mailbox.read_message(uid).ok()?;
    let id = derive_email_id(info.internal_date, &raw);
    mailbox.cache(uid, CacheField::EmailId, id.as_bytes());
    Some(id)
}

/// SHA-256 over the INTERNALDATE and the message's CRLF bytes: messages that differ in
/// anything immutable get different ids, and nobody can make two such messages collide.
fn derive_email_id(internal_date: i64, raw: &[u8]) -> String {
    let mut digest = Sha256::new();
    digest.update(internal_date.to_be_bytes());
    digest.update(raw);
    let mut id = String::with_capacity(1 + EMAILID_HEX);
    id.push('M');
    for byte in digest.finalize().iter().take(EMAILID_HEX / 2) {
        id.push_str(&format!("{byte:02x}"));
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_ids_follow_content_and_date() {
        let a = derive_email_id(1, b"Subject: a\r\n\r\nx\r\n");
        assert_eq!(a.len(), 33);
        assert!(a.starts_with('M'));
        assert!(a[1..].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(a, derive_email_id(1, b"Subject: a\r\n\r\nx\r\n"));
        assert_ne!(a, derive_email_id(2, b"Subject: a\r\n\r\nx\r\n"));
        assert_ne!(a, derive_email_id(1, b"Subject: b\r\n\r\nx\r\n"));
    }
}
