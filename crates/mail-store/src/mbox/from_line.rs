//! The `From ` line that starts every message of an mbox: `From <sender> <asctime date>`.
//!
//! Writers disagree on the details (UW-IMAP and Dovecot write two spaces after the sender, some
//! programs add a time zone before or after the year, old ones leave out the seconds), so the
//! date is found by its shape from the end of the line, as c-client's `VALID` macro does. A line
//! whose date does not parse is not a separator: that is what keeps an unquoted `From ` line in
//! a body from splitting a message.

use mail_types::date::{civil_from_days, days_from_civil};

/// What a valid `From ` line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromLine {
    /// The envelope sender (may be empty or contain spaces).
    pub sender: String,
    /// The delivery time, seconds since the epoch (INTERNALDATE). A date without a zone is
    /// taken as UTC.
    pub date: i64,
}

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Parses one line (without its newline; a trailing CR is ignored). `None` unless it starts
/// with `From ` and ends with a date.
pub fn parse(line: &[u8]) -> Option<FromLine> {
    let rest = line.strip_prefix(b"From ")?;
    let rest = rest.strip_suffix(b"\r").unwrap_or(rest);
    let text = std::str::from_utf8(rest).ok()?;
    let tokens: Vec<(usize, &str)> = tokens_with_offsets(text);
    // The rightmost weekday that starts a valid date wins: a sender may contain a day name.
    for i in (0..tokens.len()).rev() {
        if !WEEKDAYS.contains(&tokens[i].1) {
            continue;
        }
        if let Some(date) = parse_date(&tokens[i + 1..]) {
            let sender = text[..tokens[i].0].trim_end().to_owned();
            return Some(FromLine { sender, date });
        }
    }
    None
}

/// Whether `line` (without its newline) is a message separator.
pub fn is_separator(line: &[u8]) -> bool {
    line.starts_with(b"From ") && parse(line).is_some()
}

/// The line Columba writes for a message saved with `date`, without its newline:
/// `From MAILER-DAEMON  Sun Nov 29 08:42:00 2026` (sender and double space as UW-IMAP and
/// Dovecot write them; the date in UTC, which is how [`parse`] reads a zone-less date back).
pub fn format(sender: &str, date: i64) -> String {
    let days = date.div_euclid(86_400);
    let secs = date.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    // 1970-01-01 was a Thursday.
    let weekday = WEEKDAYS[(days + 4).rem_euclid(7) as usize];
    let sender = if sender.is_empty() || sender.contains(char::is_whitespace) {
        "MAILER-DAEMON"
    } else {
        sender
    };
    format!(
        "From {sender}  {weekday} {} {d:2} {:02}:{:02}:{:02} {y}",
        MONTHS[(m - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn tokens_with_offsets(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_ascii_whitespace(), start) {
            (true, Some(s)) => {
                out.push((s, &text[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, &text[s..]));
    }
    out
}

/// `Mon dd hh:mm[:ss] [zone] yyyy [zone]` with nothing after it.
fn parse_date(tokens: &[(usize, &str)]) -> Option<i64> {
    let mut it = tokens.iter().map(|t| t.1);
    let month_name = it.next()?;
    let month = MONTHS.iter().position(|m| *m == month_name)? as u32 + 1;
    let day: u32 = it.next()?.parse().ok().filter(|d| (1..=31).contains(d))?;
    let time = parse_time(it.next()?)?;
    let mut zone = 0i64;
    let mut year = None;
    for token in it {
        if year.is_none()
            && token.len() == 4
            && let Ok(y) = token.parse::<i64>()
        {
            year = Some(y);
        } else if let Some(offset) = parse_zone(token) {
            zone = offset;
        } else {
            return None;
        }
    }
    // Two-digit years exist in ancient files; `From ` lines of this century have four.
    let year = year?;
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + time - zone)
}

fn parse_time(token: &str) -> Option<i64> {
    let mut parts = token.split(':');
    let h: i64 = parts.next()?.parse().ok().filter(|h| (0..24).contains(h))?;
    let m: i64 = parts.next()?.parse().ok().filter(|m| (0..60).contains(m))?;
    let s: i64 = match parts.next() {
        Some(s) => s.parse().ok().filter(|s| (0..61).contains(s))?,
        None => 0,
    };
    if parts.next().is_some() {
        return None;
    }
    Some(h * 3600 + m * 60 + s)
}

/// `+0100`, `-0800`, or a zone name (taken as UTC: its offset is not knowable).
fn parse_zone(token: &str) -> Option<i64> {
    let bytes = token.as_bytes();
    if bytes.len() == 5 && (bytes[0] == b'+' || bytes[0] == b'-') {
        let digits: i64 = token[1..].parse().ok()?;
        let offset = (digits / 100) * 3600 + (digits % 100) * 60;
        return Some(if bytes[0] == b'-' { -offset } else { offset });
    }
    (bytes.len() <= 5 && !bytes.is_empty() && bytes.iter().all(u8::is_ascii_uppercase)).then_some(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_written_by_real_programs_parse() {
        // (line, sender, date)
        let cases: &[(&str, &str, i64)] = &[
            // Dovecot
            (
                "From nobody@vm  Sun Nov 29 08:42:00 2026",
                "nobody@vm",
                1_795_941_720,
            ),
            // mutt, procmail (one space)
            (
                "From a@b.example Sun Nov 29 08:42:00 2026",
                "a@b.example",
                1_795_941_720,
            ),
            // zone after the year, no seconds
            ("From x Sun Nov 29 09:42 2026 +0100", "x", 1_795_941_720),
            // zone name before the year
            ("From x Sun Nov 29 08:42:00 UTC 2026", "x", 1_795_941_720),
            // a sender with spaces, single-digit day with two spaces
            ("From \"a b\"@c  Thu Jan  1 00:00:00 1970", "\"a b\"@c", 0),
            // empty sender
            ("From  Thu Jan  1 00:00:01 1970", "", 1),
        ];
        for (line, sender, date) in cases {
            let parsed = parse(line.as_bytes()).unwrap_or_else(|| panic!("{line}"));
            assert_eq!(parsed.sender, *sender, "{line}");
            assert_eq!(parsed.date, *date, "{line}");
        }
    }

    #[test]
    fn body_lines_are_not_separators() {
        for line in [
            "From here on, we go",
            "From: a@b",
            "From a Sun Nov 29 08:42:00",
            "From a Sun Nov 32 08:42:00 2026",
            "From a Sun Nov 29 08:42:00 2026 and more",
            "from a Sun Nov 29 08:42:00 2026",
        ] {
            assert!(!is_separator(line.as_bytes()), "{line}");
        }
    }

    #[test]
    fn written_lines_parse_back() {
        for date in [0, 1, 951_782_400, 1_795_941_720, 4_102_444_799] {
            let line = format("MAILER-DAEMON", date);
            let parsed = parse(line.as_bytes()).unwrap_or_else(|| panic!("{line}"));
            assert_eq!(parsed.date, date, "{line}");
            assert_eq!(parsed.sender, "MAILER-DAEMON");
        }
        assert_eq!(
            format("nobody@vm", 1_795_941_720),
            "From nobody@vm  Sun Nov 29 08:42:00 2026"
        );
        // A sender that would not parse back is replaced.
        assert!(format("a b", 0).starts_with("From MAILER-DAEMON  Thu Jan  1 "));
    }
}
