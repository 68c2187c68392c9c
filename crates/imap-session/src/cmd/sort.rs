//! SORT and UID SORT (RFC 5256 3), with RFC 5957's DISPLAYFROM/DISPLAYTO and RFC 5267 ESORT's
//! `RETURN (MIN MAX ALL COUNT)`.
//!
//! The messages are those SEARCH would find (the same evaluation, `search::matching`); their
//! keys come from the store's cache (`keys.rs`), so a warm SORT reads no mail file. Strings
//! compare case-mapped, byte by byte; dates are sent dates with INTERNALDATE standing in for a
//! missing or unreadable Date (RFC 5256 2.2); ties fall to the next key and finally to the
//! sequence number, never reversed — as Dovecot orders them.

use std::cmp::Ordering;

use imap_proto::{SearchKey, SearchReturn, SortCriterion, SortKey, Tag};
use mail_parse::ParsedMessage;
use mail_store::{CacheField, Mailbox, ViewMessage};
use mail_types::Uid;

use crate::cmd::search::{esearch_line, reported_modseq};
use crate::session::{Reply, Session};

mod decompose;
mod keys;
pub(crate) mod subject;

pub(crate) use keys::SortKeys;

/// One message to order, with what its keys need.
pub(crate) struct Row {
    pub seq: u32,
    pub uid: u32,
    /// INTERNALDATE (0 when unknown).
    pub arrival: i64,
    /// RFC822.SIZE.
    pub size: u64,
    /// The sent date, INTERNALDATE when there is none.
    pub date: i64,
    pub keys: SortKeys,
}

/// What to load for each message.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Needs {
    /// INTERNALDATE and size from the index.
    pub info: bool,
    /// The cached (or derived) [`SortKeys`].
    pub keys: bool,
}

impl Needs {
    fn of(criteria: &[SortCriterion]) -> Needs {
        let mut needs = Needs::default();
        for c in criteria {
            match c.key {
                SortKey::Arrival | SortKey::Size => needs.info = true,
                // DATE needs INTERNALDATE only where the Date header is missing.
                _ => needs.keys = true,
            }
        }
        needs
    }
}

/// Rows for the found messages, in sequence order. A message that cannot be read (expunged by
/// another session meanwhile) sorts with empty keys, as Dovecot treats it.
pub(crate) fn load_rows(
    mailbox: &dyn Mailbox,
    found: &[(u32, &ViewMessage)],
    needs: Needs,
) -> Vec<Row> {
    found
        .iter()
        .map(|&(seq, msg)| {
            let keys = if needs.keys {
                sort_keys(mailbox, msg.uid).unwrap_or_default()
            } else {
                SortKeys::default()
            };
            let info = if needs.info || (needs.keys && keys.sent.is_none()) {
                mailbox.message_info(msg.uid).ok()
            } else {
                None
            };
            let arrival = info.map_or(0, |i| i.internal_date);
            Row {
                seq,
                uid: msg.uid.get(),
                arrival,
                size: info.map_or(0, |i| i.size),
                date: keys.sent.unwrap_or(arrival),
                keys,
            }
        })
        .collect()
}

/// A message's sort keys: from the store's cache, or derived from its header and offered to
/// the cache for next time.
fn sort_keys(mailbox: &dyn Mailbox, uid: Uid) -> Option<SortKeys> {
    if let Some(keys) = mailbox
        .cached(uid, CacheField::SortKeys)
        .and_then(|b| SortKeys::decode(&b))
    {
        return Some(keys);
    }
    let raw = mailbox.read_message(uid).ok()?;
    // Only the header matters: the body is not parsed.
    let header = match raw.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(end) => raw.get(..end + 4).unwrap_or(&raw),
        None => &raw,
    };
    let keys = SortKeys::derive(header, &ParsedMessage::parse(header));
    mailbox.cache(uid, CacheField::SortKeys, &keys.encode());
    Some(keys)
}

/// Orders rows by the criteria, then by sequence number.
pub(crate) fn sort_rows(rows: &mut [Row], criteria: &[SortCriterion]) {
    rows.sort_unstable_by(|a, b| compare(a, b, criteria));
}

fn compare(a: &Row, b: &Row, criteria: &[SortCriterion]) -> Ordering {
    for c in criteria {
        let o = match c.key {
            SortKey::Arrival => a.arrival.cmp(&b.arrival),
            SortKey::Date => a.date.cmp(&b.date),
            SortKey::Size => a.size.cmp(&b.size),
            SortKey::Subject => subject(a).cmp(subject(b)),
            SortKey::From => a.keys.from.cmp(&b.keys.from),
            SortKey::To => a.keys.to.cmp(&b.keys.to),
            SortKey::Cc => a.keys.cc.cmp(&b.keys.cc),
            SortKey::DisplayFrom => a.keys.display_from.cmp(&b.keys.display_from),
            SortKey::DisplayTo => a.keys.display_to.cmp(&b.keys.display_to),
        };
        let o = if c.reverse { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.seq.cmp(&b.seq)
}

/// The base subject, empty for a message without one.
pub(crate) fn subject(r: &Row) -> &str {
    r.keys.subject.as_deref().unwrap_or("")
}

impl Session {
    /// SORT and UID SORT (RFC 5256 3); with `RETURN`, ESORT's `* ESEARCH` (RFC 5267 4.2).
    pub(crate) fn cmd_sort(
        &mut self,
        tag: &Tag,
        uid_command: bool,
        returns: Option<&[SearchReturn]>,
        criteria: &[SortCriterion],
        charset: &str,
        search: &SearchKey,
    ) -> Reply {
        let (view, found) = match self.matching(Some(charset), search) {
            Ok(m) => m,
            Err(reply) => return reply,
        };
        let modseq = reported_modseq(search, &found);
        let mut rows = load_rows(view.mailbox().as_ref(), &found, Needs::of(criteria));
        sort_rows(&mut rows, criteria);
        let numbers: Vec<u32> = rows
            .iter()
            .map(|r| if uid_command { r.uid } else { r.seq })
            .collect();
        match returns {
            None => {
                let mut line = String::with_capacity(8 + numbers.len() * 7);
                line.push_str("* SORT");
                for n in &numbers {
                    line.push(' ');
                    line.push_str(&n.to_string());
                }
                // RFC 7162 3.1.5 applies to SORT too (its `sort-data` has the same modifier).
                if let Some(m) = modseq {
                    line.push_str(&format!(" (MODSEQ {m})"));
                }
                line.push_str("\r\n");
                self.out.extend_from_slice(line.as_bytes());
            }
            Some(options) => {
                let line = esearch_line(tag, uid_command, options, &numbers, modseq);
                self.out.extend_from_slice(line.as_bytes());
            }
        }
        Reply::ok("Sort completed.")
    }
}
