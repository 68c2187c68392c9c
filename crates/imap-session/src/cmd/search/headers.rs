//! The header values SEARCH asks for most — FROM, TO, CC, BCC, SUBJECT and the sent date
//! (RFC 3501 6.4.4) — derived from a message once and kept in the store's cache, so that the next
//! SEARCH on them reads no mail file (Dovecot answers these from its cache file as well).

use mail_parse::ParsedMessage;

/// The fields kept, in their encoding order.
pub(super) const FIELDS: [&str; 5] = ["From", "To", "Cc", "Bcc", "Subject"];

/// Encoding version: a cache entry written by another version is ignored and derived again.
const VERSION: u8 = 2;

/// Decoded, case-folded header values of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SearchHeaders {
    /// For each of [`FIELDS`], the values of every occurrence of the field.
    pub values: [Vec<String>; 5],
    /// Days since the epoch of the Date header in its own zone; `None` without a usable Date.
    pub sent_day: Option<i64>,
}

impl SearchHeaders {
    pub fn derive(raw: &[u8], parsed: &ParsedMessage) -> SearchHeaders {
        let values = FIELDS.map(|f| {
            parsed
                .header_values(raw, f)
                .iter()
                .map(|v| super::fold(v))
                .collect()
        });
        let sent_day = parsed.date(raw).map(|(unix, offset_minutes)| {
            (unix + i64::from(offset_minutes) * 60).div_euclid(86_400)
        });
        SearchHeaders { values, sent_day }
    }

    /// Which of [`FIELDS`] `name` is, ignoring case.
    pub fn field(name: &str) -> Option<usize> {
        FIELDS.iter().position(|f| f.eq_ignore_ascii_case(name))
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![VERSION];
        for values in &self.values {
            out.extend_from_slice(&(values.len().min(u16::MAX as usize) as u16).to_le_bytes());
            for v in values.iter().take(u16::MAX as usize) {
                out.extend_from_slice(&(v.len() as u32).to_le_bytes());
                out.extend_from_slice(v.as_bytes());
            }
        }
        match self.sent_day {
            Some(d) => {
                out.push(1);
                out.extend_from_slice(&d.to_le_bytes());
            }
            None => out.push(0),
        }
        out
    }

    /// `None` for anything that is not exactly what [`encode`](Self::encode) writes.
    pub fn decode(bytes: &[u8]) -> Option<SearchHeaders> {
        let (&version, mut rest) = bytes.split_first()?;
        if version != VERSION {
            return None;
        }
        let mut take = |n: usize| -> Option<&[u8]> {
            let (head, tail) = (rest.get(..n)?, rest.get(n..)?);
            rest = tail;
            Some(head)
        };
        let mut values: [Vec<String>; 5] = Default::default();
        for slot in &mut values {
            let count = u16::from_le_bytes(take(2)?.try_into().ok()?);
            for _ in 0..count {
                let len = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
                slot.push(String::from_utf8(take(len)?.to_vec()).ok()?);
            }
        }
        let sent_day = match take(1)?[0] {
            0 => None,
            1 => Some(i64::from_le_bytes(take(8)?.try_into().ok()?)),
            _ => return None,
        };
        if !rest.is_empty() {
            return None;
        }
        Some(SearchHeaders { values, sent_day })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_damage() {
        let raw = b"From: =?UTF-8?Q?J=C3=BCrgen?= <j@example.de>\r\nTo: a@example.com\r\nTo: b@example.com\r\nSubject: Hello World\r\nDate: Mon, 15 Mar 2021 23:30:00 -0200\r\n\r\nbody\r\n";
        let parsed = ParsedMessage::parse(raw);
        let h = SearchHeaders::derive(raw, &parsed);
        assert_eq!(h.values[0], ["JU\u{308}RGEN <J@EXAMPLE.DE>"]);
        assert_eq!(h.values[1].len(), 2);
        assert!(h.values[2].is_empty());
        assert_eq!(h.values[4], ["HELLO WORLD"]);
        // 23:30 at -0200 is still the 15th in its own zone.
        assert_eq!(h.sent_day, Some(18_701));
        let bytes = h.encode();
        assert_eq!(SearchHeaders::decode(&bytes), Some(h));
        for len in 0..bytes.len() {
            assert_eq!(SearchHeaders::decode(&bytes[..len]), None, "cut at {len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(SearchHeaders::decode(&longer), None);
        let mut other = bytes;
        other[0] = 9;
        assert_eq!(SearchHeaders::decode(&other), None);
    }
}
