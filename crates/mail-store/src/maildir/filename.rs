//! Maildir file names as Dovecot writes and reads them (`maildir-filename.c`,
//! `maildir-filename-flags.c`): `<unique>,S=<size>,W=<vsize>:2,<flags>`.
//!
//! The *base name* is everything before the first `:`; it identifies a message for its whole life
//! (flag changes only rewrite the part after `:2,`), and it is what `dovecot-uidlist` records.

use std::cmp::Ordering;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use mail_types::SystemFlags;

/// Separates the base name from the info part (Maildir spec, `MAILDIR_INFO_SEP`).
pub const INFO_SEP: u8 = b':';
/// The standard info prefix for flags.
pub const FLAGS_PREFIX: &str = ":2,";

/// Keyword letters are `a`..=`z`, 26 per mailbox (`MAILDIR_MAX_KEYWORDS`).
pub const MAX_KEYWORD_LETTERS: usize = 26;

/// A set of keyword letters, bit 0 = `a`.
pub type LetterSet = u32;

/// The base name: up to (not including) the first `:`.
pub fn base(fname: &str) -> &str {
    match memchr::memchr(INFO_SEP, fname.as_bytes()) {
        // `:` is ASCII, so this is a char boundary.
        Some(i) => &fname[..i],
        None => fname,
    }
}

/// The value of the `,<key>=<digits>` field of a file name (`S` for the stored size, `W` for the
/// size with CRLF line endings), as `maildir_filename_get_size` reads it.
pub fn size_field(fname: &str, key: u8) -> Option<u64> {
    let bytes = fname.as_bytes();
    let mut i = 0;
    while i + 2 < bytes.len() {
        if bytes[i] == b',' && bytes[i + 1] == key && bytes[i + 2] == b'=' {
            let digits = &bytes[i + 3..];
            let end = digits
                .iter()
                .position(|b| !b.is_ascii_digit())
                .unwrap_or(digits.len());
            if !matches!(digits.get(end), None | Some(b':') | Some(b',')) {
                return None;
            }
            let mut value: u64 = 0;
            for d in &digits[..end] {
                value = value.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            }
            return Some(value);
        }
        if bytes[i] == INFO_SEP {
            break;
        }
        i += 1;
    }
    None
}

/// The flags of a file name: system flags and keyword letters. Dovecot's mapping
/// (`maildir_filename_flags_get`): `D` draft, `F` flagged, `R` replied = `\Answered`, `S` seen,
/// `T` trashed = `\Deleted`; `P` (passed) and other letters have no IMAP meaning and are kept in
/// the name untouched.
pub fn flags(fname: &str) -> (SystemFlags, LetterSet) {
    let mut system = SystemFlags::empty();
    let mut letters: LetterSet = 0;
    let Some(at) = fname.rfind(':') else {
        return (system, letters);
    };
    let Some(info) = fname[at..].strip_prefix(FLAGS_PREFIX) else {
        return (system, letters);
    };
    for b in info.bytes() {
        match b {
            b',' => break,
            b'D' => system.insert(SystemFlags::DRAFT),
            b'F' => system.insert(SystemFlags::FLAGGED),
            b'R' => system.insert(SystemFlags::ANSWERED),
            b'S' => system.insert(SystemFlags::SEEN),
            b'T' => system.insert(SystemFlags::DELETED),
            b'a'..=b'z' => letters |= 1 << (b - b'a'),
            _ => {}
        }
    }
    (system, letters)
}

/// `fname` with its flags replaced, exactly as `maildir_filename_flags_full_set` builds it: the
/// known flags are placed in ASCII order among the unknown ones, which are kept; keyword letters
/// follow, sorted; a second flag set after `,` is kept verbatim.
pub fn with_flags(fname: &str, system: SystemFlags, letters: LetterSet) -> String {
    let (stem, old) = match fname.rfind(':') {
        Some(at) => (
            &fname[..at],
            fname[at..].strip_prefix(FLAGS_PREFIX).unwrap_or(""),
        ),
        None => (fname, ""),
    };
    let mut out = String::with_capacity(fname.len() + 8);
    out.push_str(stem);
    out.push_str(FLAGS_PREFIX);
    let known = [
        (b'D', SystemFlags::DRAFT),
        (b'F', SystemFlags::FLAGGED),
        (b'R', SystemFlags::ANSWERED),
        (b'S', SystemFlags::SEEN),
        (b'T', SystemFlags::DELETED),
    ];
    let mut left = system;
    let mut letters_left = letters != 0;
    let old = old.as_bytes();
    let mut i = 0;
    loop {
        // Skip the flags we manage; they are re-emitted from `system` and `letters`.
        while i < old.len() && (matches!(old[i], b'D' | b'F' | b'R' | b'S' | b'T' | b'a'..=b'z')) {
            i += 1;
        }
        let next: u16 = match old.get(i) {
            None | Some(b',') => 256,
            Some(&c) => u16::from(c),
        };
        for (c, bit) in known {
            if left.contains(bit) && next > u16::from(c) {
                out.push(char::from(c));
                left.remove(bit);
            }
        }
        if letters_left && next > u16::from(b'a') {
            for n in 0..MAX_KEYWORD_LETTERS as u8 {
                if letters & (1 << n) != 0 {
                    out.push(char::from(b'a' + n));
                }
            }
            letters_left = false;
        }
        match old.get(i) {
            None => break,
            Some(b',') => {
                // Another flag set we know nothing of: keep it.
                out.push_str(&String::from_utf8_lossy(&old[i..]));
                break;
            }
            Some(&c) => {
                out.push(char::from(c));
                i += 1;
            }
        }
    }
    out
}

/// Whether the name carries any flags at all (a name without `:2,` flags belongs in `new/`).
pub fn has_info(fname: &str) -> bool {
    fname.contains(':')
}

/// Dovecot's order for assigning UIDs to new files (`maildir_filename_sort_cmp`): by the leading
/// timestamp, then by the microseconds after `M` in the second field, then by base name. A name
/// without microseconds sorts before one with them in the same second (Dovecot compares the
/// base names then; that is not a total order, which a sort must have).
pub fn sort_cmp(a: &str, b: &str) -> Ordering {
    SortKey::of(a).cmp(&SortKey::of(b))
}

/// A file name's place in [`sort_cmp`]'s order, parsed once: sorting a million new files
/// compares about twenty million pairs, and parsing both names at each was most of a cold
/// index build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SortKey<'a> {
    secs: u64,
    usecs: Option<u64>,
    base: &'a str,
}

impl<'a> SortKey<'a> {
    pub fn of(fname: &'a str) -> SortKey<'a> {
        let (secs, rest) = leading_number(fname);
        SortKey {
            secs,
            usecs: usecs(rest),
            base: base(rest),
        }
    }
}

fn leading_number(s: &str) -> (u64, &str) {
    let end = s
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    let n = s[..end].bytes().fold(0u64, |acc, d| {
        acc.wrapping_mul(10).wrapping_add(u64::from(d - b'0'))
    });
    (n, &s[end..])
}

/// The number after the first `M` of the field following the timestamp (`.M<usecs>P<pid>`).
fn usecs(rest: &str) -> Option<u64> {
    let field = rest.strip_prefix('.')?;
    for (i, b) in field.bytes().enumerate() {
        match b {
            b'.' | b':' => return None,
            b'M' => return Some(leading_number(&field[i + 1..]).0),
            _ => {}
        }
    }
    None
}

/// A new unique base name, `<secs>.M<usecs>P<pid>.<host>` like `maildir_filename_generate`:
/// seconds and microseconds keep growing within this process, so two calls never collide.
pub fn generate() -> String {
    static LAST: Mutex<(u64, u32)> = Mutex::new((0, 0));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut tv = (now.as_secs(), now.subsec_micros());
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if tv <= *last {
        tv = *last;
        tv.1 += 1;
        if tv.1 >= 1_000_000 {
            tv = (tv.0 + 1, 0);
        }
    }
    *last = tv;
    drop(last);
    format!("{}.M{}P{}.{}", tv.0, tv.1, std::process::id(), hostname())
}

/// The host name as it may appear in a Maildir file name: `/` and `:` would break the name, so
/// they are written as `\057` and `\072` (the Maildir specification's advice).
pub fn hostname() -> &'static str {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| raw_hostname().replace('/', "\\057").replace(':', "\\072"))
}

/// `gethostname(2)`, as Dovecot's `my_hostname` (also written into lock files).
pub fn raw_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".to_owned();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).into_owned();
    if name.is_empty() {
        "localhost".to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEEN: SystemFlags = SystemFlags::SEEN;

    #[test]
    fn base_and_sizes() {
        let n = "1795919202.M525959P26540.vm,S=24,W=28:2,Sab";
        assert_eq!(base(n), "1795919202.M525959P26540.vm,S=24,W=28");
        assert_eq!(size_field(n, b'S'), Some(24));
        assert_eq!(size_field(n, b'W'), Some(28));
        assert_eq!(size_field("1.M1P1.h:2,S", b'S'), None);
        assert_eq!(size_field("1.M1P1.h,S=12x:2,", b'S'), None);
        assert_eq!(size_field("1.M1P1.h,W=5", b'W'), Some(5));
        // A size in the info part does not count.
        assert_eq!(size_field("1.M1P1.h:2,S,S=9", b'S'), None);
        assert_eq!(base("plain"), "plain");
    }

    #[test]
    fn flags_map_like_dovecot() {
        let cases: &[(&str, SystemFlags, LetterSet)] = &[
            ("x:2,S", SEEN, 0),
            ("x:2,DFPRST", SystemFlags::ALL, 0),
            ("x:2,Sab", SEEN, 0b11),
            ("x:2,z", SystemFlags::empty(), 1 << 25),
            ("x:2,P", SystemFlags::empty(), 0),
            ("x", SystemFlags::empty(), 0),
            ("x:1,S", SystemFlags::empty(), 0),
            ("x:2,S,T", SEEN, 0),
        ];
        for (name, system, letters) in cases {
            assert_eq!(flags(name), (*system, *letters), "{name}");
        }
    }

    #[test]
    fn setting_flags_sorts_and_keeps_unknown_ones() {
        let f = SystemFlags::SEEN.union(SystemFlags::DRAFT);
        assert_eq!(with_flags("b,S=1,W=2", f, 0), "b,S=1,W=2:2,DS");
        assert_eq!(with_flags("b:2,", SystemFlags::ALL, 0b101), "b:2,DFRSTac");
        // P (passed) stays where ASCII order puts it.
        assert_eq!(with_flags("b:2,PS", SystemFlags::ALL, 0), "b:2,DFPRST");
        assert_eq!(with_flags("b:2,PS", SystemFlags::empty(), 0), "b:2,P");
        assert_eq!(with_flags("b:2,FSa", SEEN, 0b10), "b:2,Sb");
        // An unknown uppercase flag after the keyword letters' place.
        assert_eq!(with_flags("b:2,Z", SEEN, 1), "b:2,SZa");
        // A second flag set is kept.
        assert_eq!(with_flags("b:2,S,X", SystemFlags::FLAGGED, 0), "b:2,F,X");
        // No flags at all still gets the info part (files in cur/ carry it).
        assert_eq!(with_flags("b", SystemFlags::empty(), 0), "b:2,");
        // Round trip.
        for n in ["q:2,DFPRSTabz", "q:2,", "q:2,Sc"] {
            let (s, l) = flags(n);
            assert_eq!(with_flags(n, s, l), n);
        }
    }

    #[test]
    fn dovecot_sort_order() {
        let mut names = vec![
            "1700000001.M5P1.h",
            "1700000000.M20P1.h",
            "1700000000.M3P9.h:2,S",
            "1699999999.abc.h",
            "1700000000.M3P1.h",
        ];
        names.sort_by(|a, b| sort_cmp(a, b));
        assert_eq!(
            names,
            [
                "1699999999.abc.h",
                "1700000000.M3P1.h",
                "1700000000.M3P9.h:2,S",
                "1700000000.M20P1.h",
                "1700000001.M5P1.h",
            ]
        );
    }

    proptest::proptest! {
        /// A sort needs a total order (Rust's may panic on one that is not): names with and
        /// without microseconds in the same second must still compare consistently.
        #[test]
        fn the_order_is_total(names in proptest::collection::vec("[0-9]{1,2}(\\.M?[0-9]{0,2}P?[0-9]?)?\\.[ab](:2,S?)?", 3..12)) {
            for a in &names {
                proptest::prop_assert_eq!(sort_cmp(a, a), Ordering::Equal);
                for b in &names {
                    proptest::prop_assert_eq!(sort_cmp(a, b), sort_cmp(b, a).reverse());
                    for c in &names {
                        if sort_cmp(a, b) != Ordering::Greater && sort_cmp(b, c) != Ordering::Greater {
                            proptest::prop_assert_ne!(sort_cmp(a, c), Ordering::Greater, "{} {} {}", a, b, c);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn generated_names_are_unique_and_parse() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert_eq!(sort_cmp(&a, &b), Ordering::Less);
        assert!(!a.contains('/') && !a.contains(':'));
        assert!(a.contains(&format!("P{}.", std::process::id())));
    }
}
