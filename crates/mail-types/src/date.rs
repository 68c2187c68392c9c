//! Calendar arithmetic on days since 1970-01-01 in the proleptic Gregorian calendar (Howard
//! Hinnant's algorithms), for INTERNALDATE, for the timestamps that tie a client's error
//! message to a log line, and for the dates of trace headers. No time zones beyond what
//! callers add themselves.

/// Days since 1970-01-01 to (year, month, day).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) to days since 1970-01-01; the inverse of [`civil_from_days`].
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of a Unix time.
pub fn utc_timestamp(unix: i64) -> String {
    let (y, m, d) = civil_from_days(unix.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02} {}", time_of_day(unix))
}

/// `Sun, 29 Nov 2026 11:09:19 +0000`: an RFC 5322 3.3 date-time in UTC, as trace headers
/// (`Received:`) carry it.
pub fn rfc5322_utc(unix: i64) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix.div_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{}, {d} {} {y:04} {} +0000",
        WEEKDAYS[days.rem_euclid(7) as usize],
        MONTHS[(m as usize).clamp(1, 12) - 1],
        time_of_day(unix)
    )
}

/// `HH:MM:SS` (UTC).
fn time_of_day(unix: i64) -> String {
    let s = unix.rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_day_round_trip() {
        for days in [-719_468, -1, 0, 59, 365, 11_016, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn timestamps() {
        assert_eq!(utc_timestamp(0), "1970-01-01 00:00:00");
        assert_eq!(utc_timestamp(1_234_567_890), "2009-02-13 23:31:30");
        assert_eq!(utc_timestamp(-1), "1969-12-31 23:59:59");
        assert_eq!(rfc5322_utc(0), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_utc(1_234_567_890),
            "Fri, 13 Feb 2009 23:31:30 +0000"
        );
        assert_eq!(
            rfc5322_utc(1_795_950_559),
            "Sun, 29 Nov 2026 11:09:19 +0000"
        );
        assert_eq!(rfc5322_utc(-1), "Wed, 31 Dec 1969 23:59:59 +0000");
    }
}
