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

#[cfg(test)]
pub(crate) use keys::MAX_REFERENCES;
pub(crate) use keys::{SortKeys, Want, casemap};

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
    /// Which cached (or derived) [`SortKeys`] strings; `None` loads no keys at all.
    pub keys: Option<Want>,
}

impl Needs {
    fn of(criteria: &[SortCriterion]) -> Needs {
        let mut needs = Needs::default();
        for c in criteria {
            let want = needs.keys.get_or_insert_with(Want::default);
            match c.key {
                SortKey::Arrival | SortKey::Size => needs.info = true,
                // DATE needs INTERNALDATE only where the Date header is missing.
                SortKey::Date => {}
                SortKey::Subject => want.subject = true,
                SortKey::From => want.from = true,
                SortKey::To => want.to = true,
                SortKey::Cc => want.cc = true,
                SortKey::DisplayFrom => want.display_from = true,
                SortKey::DisplayTo => want.display_to = true,
            }
        }
        if !criteria
            .iter()
            .any(|c| c.key != SortKey::Arrival && c.key != SortKey::Size)
        {
            needs.keys = None;
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
    /// Cached keys are read this many messages at a time.
    const BATCH: usize = 4096;
    let mut rows = Vec::with_capacity(found.len());
    for chunk in found.chunks(BATCH) {
        let cached = match needs.keys {
            Some(_) => {
                let uids: Vec<Uid> = chunk.iter().map(|(_, m)| m.uid).collect();
                mailbox.cached_many(&uids, CacheField::SortKeys)
            }
            None => Vec::new(),
        };
        for (i, &(seq, msg)) in chunk.iter().enumerate() {
            let keys = match needs.keys {
                Some(want) => cached
                    .get(i)
                    .and_then(Option::as_ref)
                    .and_then(|b| SortKeys::decode_only(b, want))
                    .or_else(|| derive_keys(mailbox, msg.uid))
                    .unwrap_or_default(),
                None => SortKeys::default(),
            };
            let info = if needs.info || (needs.keys.is_some() && keys.sent.is_none()) {
                mailbox.message_info(msg.uid).ok()
            } else {
                None
            };
            let arrival = info.map_or(0, |i| i.internal_date);
            rows.push(Row {
                seq,
                uid: msg.uid.get(),
                arrival,
                size: info.map_or(0, |i| i.size),
                date: keys.sent.unwrap_or(arrival),
                keys,
            });
        }
    }
    rows
}

/// A message's sort keys derived from its header, and offered to the cache for next time.
fn derive_keys(mailbox: &dyn Mailbox, uid: Uid) -> Option<SortKeys> {
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

/// The order of `rows` by the criteria, then by sequence number, as indexes into `rows`.
///
/// Rows are big and sorting moves what it sorts, so what is sorted is a small pair per row:
/// the first key condensed into a `u64` that orders as the key does (a number, or the first
/// eight bytes of a string), and the row's index; only pairs that tie there compare the rows.
pub(crate) fn sort_order(rows: &[Row], criteria: &[SortCriterion]) -> Vec<usize> {
    let prefix = |s: &str| {
        let mut b = [0u8; 8];
        for (d, c) in b.iter_mut().zip(s.bytes()) {
            *d = c;
        }
        u64::from_be_bytes(b)
    };
    // i64 to u64 keeping the order.
    let num = |n: i64| (n as u64) ^ (1 << 63);
    let first = criteria.first().copied();
    let mut order: Vec<(u64, usize)> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let key = match first.map(|c| c.key) {
                None => 0,
                Some(SortKey::Arrival) => num(r.arrival),
                Some(SortKey::Date) => num(r.date),
                Some(SortKey::Size) => r.size,
                Some(SortKey::Subject) => prefix(subject(r)),
                Some(SortKey::From) => prefix(&r.keys.from),
                Some(SortKey::To) => prefix(&r.keys.to),
                Some(SortKey::Cc) => prefix(&r.keys.cc),
                Some(SortKey::DisplayFrom) => prefix(&r.keys.display_from),
                Some(SortKey::DisplayTo) => prefix(&r.keys.display_to),
            };
            let reverse = first.is_some_and(|c| c.reverse);
            (if reverse { !key } else { key }, i)
        })
        .collect();
    order.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| match (rows.get(a.1), rows.get(b.1)) {
                (Some(x), Some(y)) => compare(x, y, criteria),
                _ => Ordering::Equal,
            })
    });
    order.into_iter().map(|(_, i)| i).collect()
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
            Err(reply) => {
                self.save_search_result(returns, None);
                return reply;
            }
        };
        let modseq = reported_modseq(search, &found);
        let rows = load_rows(view.mailbox().as_ref(), &found, Needs::of(criteria));
        let sorted: Vec<&Row> = sort_order(&rows, criteria)
            .into_iter()
            .filter_map(|i| rows.get(i))
            .collect();
        let numbers: Vec<u32> = sorted
            .iter()
            .map(|r| if uid_command { r.uid } else { r.seq })
            .collect();
        let sorted_uids: Vec<Uid> = sorted.iter().filter_map(|r| Uid::new(r.uid)).collect();
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
        self.save_search_result(returns, Some(&sorted_uids));
        if crate::cmd::search_context::wants_update(returns) {
            // CONTEXT=SORT is not offered: the result, but no updates (RFC 5267 4.3.1).
            crate::cmd::search_context::refuse_update(
                &mut self.out,
                tag,
                "Updates are not kept for SORT.",
            );
        }
        Reply::ok("Sort completed.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: u32, date: i64, subject: &str, from: &str) -> Row {
        Row {
            seq,
            uid: seq * 10,
            arrival: 0,
            size: u64::from(100 - seq),
            date,
            keys: SortKeys {
                subject: Some(subject.to_owned()),
                from: from.to_owned(),
                ..SortKeys::default()
            },
        }
    }

    fn order(rows: &[Row], criteria: &[(bool, SortKey)]) -> Vec<u32> {
        let criteria: Vec<SortCriterion> = criteria
            .iter()
            .map(|&(reverse, key)| SortCriterion { reverse, key })
            .collect();
        sort_order(rows, &criteria)
            .into_iter()
            .map(|i| rows[i].seq)
            .collect()
    }

    #[test]
    fn orders_by_keys_then_sequence_number() {
        let rows = [
            row(1, 50, "ABCDEFGHZ", "B"),
            row(2, -5, "ABCDEFGHA", "A"),
            row(3, 50, "ABCDEFGH", "B"),
            row(4, i64::MIN, "", "A"),
            row(5, i64::MAX, "ABCDEFGHA", "A"),
        ];
        use SortKey::*;
        // Dates before the epoch and the extremes keep their order.
        assert_eq!(order(&rows, &[(false, Date)]), [4, 2, 1, 3, 5]);
        // REVERSE reverses the key, never the sequence-number tie-break.
        assert_eq!(order(&rows, &[(true, Date)]), [5, 1, 3, 2, 4]);
        // Strings sharing their first eight bytes are told apart by the rest.
        assert_eq!(order(&rows, &[(false, Subject)]), [4, 3, 2, 5, 1]);
        assert_eq!(order(&rows, &[(true, Subject)]), [1, 2, 5, 3, 4]);
        assert_eq!(
            order(&rows, &[(false, From), (true, Date)]),
            [5, 2, 4, 1, 3]
        );
        assert_eq!(order(&rows, &[(true, Size)]), [1, 2, 3, 4, 5]);
        assert_eq!(order(&rows, &[]), [1, 2, 3, 4, 5]);
    }
}
