//! The base subject (RFC 5256 2.1), which SORT SUBJECT compares and THREAD groups by, extracted
//! as Dovecot's `imap-base-subject.c` does so that both servers sort and thread alike.

use super::keys::casemap;

/// The base subject of a decoded Subject value, case-mapped, and whether the subject marked a
/// reply or forward (`Re:`, `Fw:`, `Fwd:`, a `(fwd)` trailer, a `[fwd: ...]` wrapper).
///
/// Step (1) — RFC 2047 decoding — is the caller's (the value comes decoded); here every run of
/// tabs, line breaks and spaces becomes one space, then steps (2) to (6) repeat until nothing
/// more comes off.
pub(crate) fn base_subject(decoded: &str) -> (String, bool) {
    let text = pack_whitespace(&casemap(decoded));
    let b = text.as_bytes();
    let mut reply = false;
    let mut start = 0;
    let mut end = b.len();
    loop {
        // (2) subj-trailer: "(fwd)" / WSP, from the end.
        while end > start {
            if b[end - 1] == b' ' {
                end -= 1;
            } else if end - start >= 5 && &b[end - 5..end] == b"(FWD)" {
                reply = true;
                end -= 5;
            } else {
                break;
            }
        }
        // (3)-(5): leaders and blobs until none is left.
        loop {
            let leader = remove_leader(b, &mut start, end, &mut reply);
            let blob = remove_blob_if_nonempty(b, &mut start, end);
            if !leader && !blob {
                break;
            }
        }
        // (6) subj-fwd: "[fwd:" subject "]", then again from (2).
        if end - start > 5 && b[start..].starts_with(b"[FWD:") && b[end - 1] == b']' {
            reply = true;
            start += 5;
            end -= 1;
            continue;
        }
        break;
    }
    // Every cut is next to an ASCII byte, so the bounds are character boundaries.
    (text.get(start..end).unwrap_or_default().to_owned(), reply)
}

/// Tabs, CR, LF and spaces, in runs, become one space.
fn pack_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last_space = false;
    for c in s.chars() {
        if matches!(c, ' ' | '\t' | '\r' | '\n') {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
        } else {
            out.push(c);
            last_space = false;
        }
    }
    out
}

/// A `subj-blob` (`"[" *BLOBCHAR "]"` and a space) at `*pos`: moves past it.
fn remove_blob(b: &[u8], pos: &mut usize, end: usize) -> bool {
    if *pos >= end || b[*pos] != b'[' {
        return false;
    }
    let mut p = *pos + 1;
    while p < end && b[p] != b'[' && b[p] != b']' {
        p += 1;
    }
    if p >= end || b[p] != b']' {
        return false;
    }
    p += 1;
    if p < end && b[p] == b' ' {
        p += 1;
    }
    *pos = p;
    true
}

/// (3) `subj-leader`: a leading space, or `*subj-blob subj-refwd` with
/// `subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"`.
fn remove_leader(b: &[u8], start: &mut usize, end: usize, reply: &mut bool) -> bool {
    let mut removed = false;
    if *start < end && b[*start] == b' ' {
        *start += 1;
        removed = true;
    }
    let mut p = *start;
    while p < end && b[p] == b'[' {
        if !remove_blob(b, &mut p, end) {
            return removed;
        }
    }
    let rest = &b[p..end];
    if rest.starts_with(b"RE") {
        p += 2;
    } else if rest.starts_with(b"FWD") {
        p += 3;
    } else if rest.starts_with(b"FW") {
        p += 2;
    } else {
        return removed;
    }
    if p < end && b[p] == b' ' {
        p += 1;
    }
    if p < end && b[p] == b'[' && !remove_blob(b, &mut p, end) {
        return removed;
    }
    if p >= end || b[p] != b':' {
        return removed;
    }
    *start = p + 1;
    *reply = true;
    true
}

/// (4) A leading `subj-blob`, when something is left after it.
fn remove_blob_if_nonempty(b: &[u8], start: &mut usize, end: usize) -> bool {
    let mut p = *start;
    if remove_blob(b, &mut p, end) && p < end {
        *start = p;
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5256_base_subjects() {
        for (subject, base, reply) in [
            // Plain subjects are only case-mapped and tidied.
            ("", "", false),
            ("Hello World", "HELLO WORLD", false),
            ("  hello \t\r\n  world  ", "HELLO WORLD", false),
            // (3) subj-refwd in all its spellings, repeated, with blobs.
            ("Re: test", "TEST", true),
            ("re:test", "TEST", true),
            ("RE: Re: rE: test", "TEST", true),
            ("Fwd: test", "TEST", true),
            ("Fw: test", "TEST", true),
            ("FWD : test", "TEST", true),
            ("Re[2]: test", "TEST", true),
            ("Re [2]: test", "TEST", true),
            ("[list] Re: test", "TEST", true),
            ("Re: [list] Re: test", "TEST", true),
            ("[a][b] Fwd: [c] test", "TEST", true),
            // (4) a blob alone goes only when something is left.
            ("[PATCH] test", "TEST", false),
            ("[PATCH 1/2] [RFC] test", "TEST", false),
            ("[blob]", "[BLOB]", false),
            ("Re: [blob]", "[BLOB]", true),
            ("[blob] ", "[BLOB]", false),
            // (2) trailers.
            ("test (fwd)", "TEST", true),
            ("test (FWD) (fwd)  ", "TEST", true),
            ("test(fwd)", "TEST", true),
            ("(fwd)", "", true),
            // (6) the [fwd: ...] wrapper, then everything again.
            ("[Fwd: test]", "TEST", true),
            ("[fwd: Re: test (fwd)]", "TEST", true),
            ("Re: [Fwd: [Fwd: test]]", "TEST", true),
            ("[Fwd: test", "[FWD: TEST", false),
            ("[Fwd:]", "", true),
            // Not leaders: no colon, or more before it.
            ("Reply: x", "REPLY: X", false),
            ("Re x", "RE X", false),
            ("Ref: x", "REF: X", false),
            ("Re", "RE", false),
            ("Re:", "", true),
            ("[unclosed Re: x", "[UNCLOSED RE: X", false),
            ("[a[b]] x", "[A[B]] X", false),
            // Other scripts are case-mapped too.
            ("Re: Grüße", "GRU\u{308}ßE", true),
            ("AW: Привет", "AW: ПРИВЕТ", false),
        ] {
            assert_eq!(
                base_subject(subject),
                (base.to_owned(), reply),
                "{subject:?}"
            );
        }
    }

    #[test]
    fn never_panics_on_junk() {
        let pieces = [
            "[", "]", "Re", ":", " ", "(fwd)", "[fwd:", "ü", "Fw", "d", "\t", "x",
        ];
        let mut state = 0x2545_f491_u32;
        for _ in 0..5000 {
            let mut s = String::new();
            for _ in 0..(state % 9) {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                s.push_str(pieces[state as usize % pieces.len()]);
            }
            let (base, _) = base_subject(&s);
            assert!(base.len() <= casemap(&s).len() + 1, "{s:?}");
        }
    }
}
