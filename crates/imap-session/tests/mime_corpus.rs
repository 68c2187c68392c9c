//! The MIME corpus: tricky messages in `tests/mime-corpus/` with hand-checked ENVELOPE, BODY and
//! BODYSTRUCTURE answers (`NAME.expected`, exact wire bytes) and some BODY[section] answers
//! (`NAME.sections`). Every message is parsed with `mail-parse`, encoded with
//! `fetch::structure`, checked against the RFC 3501 section 9 grammar and compared with the
//! expected files. When Dovecot is installed, every message is also APPENDed to a real Dovecot
//! 2.3 and its FETCH answers (including BODY[section] for every part) compared with ours; any
//! difference must be listed, with the reason ours is right, in `mime-corpus/ALLOWLIST`.
//!
//! `MIME_CORPUS_BLESS=1` rewrites the expected files from our output (review the diff!).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use imap_session::fetch::structure::{write_body_structure, write_envelope};
use mail_parse::{BodyStructure, ParsedMessage, Part, PartChildren, SectionSpec};
use test_support::Dovecot;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mime-corpus")
}

fn messages() -> Vec<(String, Vec<u8>)> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("corpus directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|p| {
            let name = p
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read(&p).expect("read message"))
        })
        .collect()
}

/// Our three answers, as the session would send them.
fn answers(raw: &[u8]) -> [(&'static str, Vec<u8>); 3] {
    let parsed = ParsedMessage::parse(raw);
    let mut env = Vec::new();
    write_envelope(&mut env, &parsed.envelope(raw));
    let bs = parsed.body_structure(raw);
    let (mut body, mut bodystructure) = (Vec::new(), Vec::new());
    write_body_structure(&mut body, &bs, false);
    write_body_structure(&mut bodystructure, &bs, true);
    [
        ("ENVELOPE", env),
        ("BODY", body),
        ("BODYSTRUCTURE", bodystructure),
    ]
}

/// An independent implementation of the response grammar (imap-codec) reads our ENVELOPE, BODY
/// and BODYSTRUCTURE of every corpus message and of random ones, inside a whole FETCH response.
#[test]
fn answers_parse_with_imap_codec() {
    use imap_codec::ResponseCodec;
    use imap_codec::decode::Decoder as _;
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut all: Vec<(String, Vec<u8>)> = messages();
    for i in 0..200 {
        all.push((format!("random {i}"), random_message(&mut rng)));
    }
    let mut failures = Vec::new();
    let mut skipped = 0;
    for (name, raw) in all {
        let mut line = b"* 1 FETCH (".to_vec();
        for (i, (item, value)) in answers(&raw).iter().enumerate() {
            if i > 0 {
                line.push(b' ');
            }
            line.extend_from_slice(item.as_bytes());
            line.push(b' ');
            line.extend_from_slice(value);
        }
        line.extend_from_slice(b")\r\n");
        // imap-codec stops at a nesting depth of its own choosing; the grammar has no limit, and
        // these structures (as deep as Dovecot's, see `part_limit_matches_dovecot`) are checked
        // against the grammar by `corpus_matches_expected_files_and_grammar`.
        if paren_depth(&line) > IMAP_CODEC_MAX_DEPTH {
            skipped += 1;
            continue;
        }
        match ResponseCodec::default().decode(&line) {
            Ok(([], _)) => {}
            Ok((rest, _)) => {
                failures.push(format!("{name}: left {:?}", String::from_utf8_lossy(rest)))
            }
            Err(e) => failures.push(format!("{name}: refused {e:?}")),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(skipped <= 3, "{skipped} responses too deep for imap-codec");
}

/// Parenthesis nesting at which imap-codec gives up; deeper responses are not checked with it.
const IMAP_CODEC_MAX_DEPTH: usize = 12;

/// The deepest parenthesis nesting outside quoted strings.
fn paren_depth(line: &[u8]) -> usize {
    let (mut depth, mut max, mut quoted, mut escaped) = (0usize, 0usize, false, false);
    for &b in line {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b'(' if !quoted => {
                depth += 1;
                max = max.max(depth);
            }
            b')' if !quoted => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

#[test]
fn corpus_matches_expected_files_and_grammar() {
    let bless = std::env::var_os("MIME_CORPUS_BLESS").is_some();
    let messages = messages();
    assert!(
        messages.len() >= 25,
        "the corpus has {} messages",
        messages.len()
    );
    let mut failures = Vec::new();
    for (name, raw) in &messages {
        let ours = answers(raw);
        for (item, bytes) in &ours {
            let v = parse_value(bytes).unwrap_or_else(|e| panic!("{name} {item}: unparsable: {e}"));
            let checked = match *item {
                "ENVELOPE" => check_envelope(&v),
                "BODY" => check_body(&v, false),
                _ => check_body(&v, true),
            };
            if let Err(e) = checked {
                failures.push(format!(
                    "{name} {item} violates RFC 3501 9: {e}\n  {}",
                    String::from_utf8_lossy(bytes)
                ));
            }
        }

        let mut text = Vec::new();
        for (item, bytes) in &ours {
            text.extend_from_slice(item.as_bytes());
            text.push(b' ');
            text.extend_from_slice(bytes);
            text.push(b'\n');
        }
        let path = corpus_dir().join(format!("{name}.expected"));
        if bless {
            std::fs::write(&path, &text).expect("write expected");
        } else {
            match std::fs::read(&path) {
                Ok(expected) if expected == text => {}
                Ok(expected) => failures.push(format!(
                    "{name}: differs from {name}.expected\n--- expected\n{}--- ours\n{}",
                    String::from_utf8_lossy(&expected),
                    String::from_utf8_lossy(&text)
                )),
                Err(_) => failures.push(format!(
                    "{name}: no {name}.expected (run with MIME_CORPUS_BLESS=1)"
                )),
            }
        }

        // The same message with CRLF line endings has the same structure (sizes are of the CRLF
        // form either way).
        let crlf = to_crlf(raw);
        if crlf != *raw {
            let other = answers(&crlf);
            if other != ours {
                failures.push(format!("{name}: LF and CRLF forms give different answers"));
            }
        }

        for (spec, expected) in section_expectations(name) {
            let got = our_section(raw, &spec);
            if got != expected {
                let show = |v: &Option<Vec<u8>>| {
                    v.as_ref().map(|g| String::from_utf8_lossy(g).into_owned())
                };
                failures.push(format!(
                    "{name} BODY[{spec}]: expected {:?}, got {:?}",
                    show(&expected),
                    show(&got)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn corpus_matches_dovecot() {
    let Some(dovecot) = Dovecot::start() else {
        return;
    };
    let messages = messages();
    let mut client = dovecot.connect().expect("login");
    for (name, raw) in &messages {
        let r = client.append("INBOX", raw).expect("append");
        assert!(r.is_ok(), "APPEND {name}: {} {}", r.status, r.text);
    }
    client
        .command("SELECT INBOX")
        .expect("select")
        .ok()
        .expect("select OK");

    let allow = allowlist();
    let mut differences = BTreeSet::new();
    let mut report = Vec::new();
    for (i, (name, raw)) in messages.iter().enumerate() {
        let seq = i + 1;
        for (item, ours) in answers(raw) {
            let theirs = fetch(&mut client, seq, item);
            let ours = parse_value(&ours).expect("our answer parses");
            if Some(&ours) != theirs.as_ref() {
                differences.insert(format!("{name} {item}"));
                report.push(format!(
                    "{name} {item}\n  ours:    {}\n  dovecot: {}",
                    render(&ours),
                    theirs.as_ref().map_or("(none)".into(), render)
                ));
            }
        }
        let mut specs: Vec<String> = section_expectations(name)
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        specs.extend(standard_sections(raw));
        for spec in specs {
            let ours = to_crlf(&our_section(raw, &spec).unwrap_or_default());
            let theirs = match fetch(&mut client, seq, &format!("BODY.PEEK[{spec}]")) {
                Some(Value::Str(s)) => s,
                _ => Vec::new(),
            };
            if ours != theirs {
                differences.insert(format!("{name} BODY[{spec}]"));
                report.push(format!(
                    "{name} BODY[{spec}]\n  ours:    {:?}\n  dovecot: {:?}",
                    String::from_utf8_lossy(&ours),
                    String::from_utf8_lossy(&theirs)
                ));
            }
        }
    }
    let unexplained: Vec<&String> = differences.iter().filter(|d| !allow.contains(*d)).collect();
    let stale: Vec<&String> = allow.iter().filter(|a| !differences.contains(*a)).collect();
    assert!(
        unexplained.is_empty() && stale.is_empty(),
        "unexplained differences from Dovecot: {unexplained:?}\nstale ALLOWLIST entries: {stale:?}\n\n{}",
        report.join("\n")
    );
}

/// Limits that a corpus file would be too big for: more parts than Dovecot parses (10,000).
#[test]
fn part_limit_matches_dovecot() {
    let mut msg = String::from(
        "Subject: many parts\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=p\r\n\r\n",
    );
    for i in 0..10_005 {
        let _ = write!(msg, "--p\r\nContent-Type: text/plain\r\n\r\n{i}\r\n");
    }
    msg.push_str("--p--\r\n");
    let raw = msg.as_bytes();
    let parsed = ParsedMessage::parse(raw);
    let bs = parsed.body_structure(raw);
    let BodyStructure::Multipart { parts, .. } = &bs else {
        panic!("not a multipart")
    };
    // The root counts: 9,999 parts, the last of which runs to the end of the message.
    assert_eq!(parts.len(), mail_parse::MAX_TOTAL - 1);

    let Some(dovecot) = Dovecot::start() else {
        return;
    };
    let mut client = dovecot.connect().expect("login");
    client
        .append("INBOX", raw)
        .expect("append")
        .ok()
        .expect("append OK");
    client
        .command("SELECT INBOX")
        .expect("select")
        .ok()
        .expect("select OK");
    let mut ours = Vec::new();
    write_body_structure(&mut ours, &bs, true);
    let theirs = fetch(&mut client, 1, "BODYSTRUCTURE");
    assert!(
        parse_value(&ours).ok() == theirs,
        "BODYSTRUCTURE of a 10,005-part message differs from Dovecot's"
    );
    let last = format!("{}", mail_parse::MAX_TOTAL - 1);
    let ours = to_crlf(&our_section(raw, &last).unwrap_or_default());
    assert_eq!(
        Some(Value::Str(ours)),
        fetch(&mut client, 1, &format!("BODY.PEEK[{last}]"))
    );
}

/// Differential testing against Dovecot on random, often broken, MIME messages: 200 of them
/// (a few seconds), or as many as `MIME_DIFFERENTIAL` says, from the seed
/// `MIME_DIFFERENTIAL_SEED`. A failure prints the first differing message: add it to the corpus.
#[test]
fn random_messages_match_dovecot() {
    let count = std::env::var("MIME_DIFFERENTIAL")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(200);
    let seed = std::env::var("MIME_DIFFERENTIAL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut rng = Rng(seed);
    let messages: Vec<Vec<u8>> = (0..count).map(|_| random_message(&mut rng)).collect();
    compare_with_dovecot(&messages);
}

/// Compares every message of the directory `MIME_COMPARE_DIR` (a Maildir's `cur/`, say) with
/// Dovecot; a way to check real mail. Does nothing without that variable.
#[test]
fn directory_matches_dovecot() {
    let Some(dir) = std::env::var_os("MIME_COMPARE_DIR") else {
        return;
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("MIME_COMPARE_DIR")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    let messages: Vec<Vec<u8>> = paths
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .filter(|m| !m.is_empty())
        .collect();
    compare_with_dovecot(&messages);
}

/// APPENDs `messages` to a fresh Dovecot and compares ENVELOPE, BODY, BODYSTRUCTURE and the
/// standard sections of each with ours; panics with the first differing message.
fn compare_with_dovecot(messages: &[Vec<u8>]) {
    let Some(dovecot) = Dovecot::start() else {
        return;
    };
    let mut client = dovecot.connect().expect("login");
    for m in messages {
        client
            .append("INBOX", m)
            .expect("append")
            .ok()
            .expect("append OK");
    }
    client
        .command("SELECT INBOX")
        .expect("select")
        .ok()
        .expect("select OK");
    let mut report = Vec::new();
    for (i, raw) in messages.iter().enumerate() {
        let seq = i + 1;
        for (item, ours) in answers(raw) {
            let theirs = fetch(&mut client, seq, item);
            if parse_value(&ours).ok() != theirs {
                report.push(format!(
                    "message {seq} {item}\n  ours:    {}\n  dovecot: {}",
                    String::from_utf8_lossy(&ours),
                    theirs.as_ref().map_or("(none)".into(), render)
                ));
            }
        }
        for spec in standard_sections(raw) {
            // HEADER.FIELDS of embedded messages: Dovecot reads past the part (see ALLOWLIST).
            if spec.starts_with(|c: char| c.is_ascii_digit()) && spec.contains("HEADER.FIELDS") {
                continue;
            }
            let ours = to_crlf(&our_section(raw, &spec).unwrap_or_default());
            let theirs = match fetch(&mut client, seq, &format!("BODY.PEEK[{spec}]")) {
                Some(Value::Str(s)) => s,
                _ => Vec::new(),
            };
            if ours != theirs {
                report.push(format!(
                    "message {seq} BODY[{spec}]\n  ours:    {:?}\n  dovecot: {:?}",
                    String::from_utf8_lossy(&ours),
                    String::from_utf8_lossy(&theirs)
                ));
            }
        }
        if report.len() > 20 {
            break;
        }
    }
    if !report.is_empty() {
        let first: usize = report[0]
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        panic!(
            "{} differences; first message:\n{}\n\n{}",
            report.len(),
            String::from_utf8_lossy(&messages[first - 1]),
            report.join("\n")
        );
    }
}

/// xorshift64*: deterministic, dependency-free randomness for the differential test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

fn random_message(rng: &mut Rng) -> Vec<u8> {
    // Dovecot refuses empty messages.
    let mut out = String::from("X-Random: 1\n");
    out.push_str(rng.pick(&[
        "From: a@b\n",
        "From: \"A  B\" <a@b>, g: c@d;\n",
        "",
        "From: x\nTo: <@r:y@z>\n",
        "From: (c) <a@b> (d)\nSender: ,, <>\n",
        "From: \"unterminated <a@b>\nReply-To: g:;\n",
        "To: a@b., a.@b, @b, a@, <a@b\nCc: x y z <q@r> extra\n",
        "From: J\u{fc}rgen <j@x>\nBcc: \"\\\"q\\\"\" <a@b>, (only comment)\n",
        "To: g: a@b, (c) ;, h: ;\nCc:\n x@y\n",
        "From: <a@b> <c@d>\nTo: a@b c@d\n",
    ]));
    out.push_str(rng.pick(&[
        "",
        "Date: Mon, 7 Feb 1994 21:52:25 -0800\n",
        "In-Reply-To: <a>\n\t<b>\nMessage-ID:\n",
    ]));
    if rng.below(2) == 0 {
        // Address lists made of random tokens, to shake the address parser.
        let tokens = [
            "a",
            "b",
            ".",
            "@",
            "<",
            ">",
            "\"",
            "\\",
            "(",
            ")",
            ",",
            ":",
            ";",
            " ",
            "[",
            "]",
            "\u{e9}",
            "=?x?q?y?=",
        ];
        let n = rng.below(24);
        let list: String = (0..n).map(|_| rng.pick(&tokens)).collect();
        out.push_str(&format!("Cc: {list}\n"));
    }
    out.push_str(rng.pick(&[
        "Subject: s\n",
        "Subject:\n  folded\ttab\n",
        "",
        "Subject: =?utf-8?q?x?=\n",
    ]));
    out.push_str(rng.pick(&["MIME-Version: 1.0\n", "", "Mime-Version: 1.0 (c)\n"]));
    random_entity(rng, &mut out, 0, &[]);
    let bytes = out.into_bytes();
    if rng.below(3) == 0 {
        bytes
    } else {
        to_crlf(&bytes)
    }
}

/// One MIME entity (header fields, blank line, body), `outer` being the open boundaries.
fn random_entity(rng: &mut Rng, out: &mut String, depth: usize, outer: &[String]) {
    let kind = if depth > 4 {
        rng.below(3)
    } else {
        rng.below(7)
    };
    match kind {
        0..=2 => {
            out.push_str(rng.pick(&[
                "",
                "Content-Type: text/plain; charset=utf-8\n",
                "Content-Type: TEXT/html; Charset=\"x\"\nContent-Transfer-Encoding: QUOTED-printable\n",
                "Content-Type: application/pdf; name*0=a; name*1*=%41; name*=x\nContent-Disposition: attachment; filename=\"f\"\n",
                "Content-Type: text\n",
                "Content-Type: text/plain garbage\n",
                "Content-Language: en,de\nContent-Location: x\nContent-MD5: m\nContent-ID: <i>\nContent-Description: d\n",
                "Content-Transfer-Encoding: base64\n",
                "Content-Type: message/global\n",
                "Content-Type: text/plain; a*0*=x; a*1=y%; a*3=z; b*=; c=\"q\\\"\"\n",
                "Content-Disposition: inline\nContent-Disposition: attachment; x=y\nContent-Type: image/gif; (c) n=v\n",
                "Content-Type: text/plain;\n charset=iso-8859-1;\n\tformat=flowed\nContent-Transfer-Encoding: 8bit (c)\n",
                "Content-Type:\n multipart/mixed\n",
                "content-type: Text/Plain; CHARSET=US-ASCII\ncontent-language: (x) en-GB , fr\n",
            ]));
            if rng.below(8) != 0 {
                out.push('\n');
            }
            out.push_str(rng.pick(&["body\n", "", "x", "two\nlines\n", "\n\n", "-- \nsig\n"]));
        }
        3..=4 => {
            let b = format!("{}{}", rng.pick(&["b", "bb", "b-", "outer"]), rng.below(3));
            let sub = rng.pick(&["mixed", "alternative", "digest", "related"]);
            out.push_str(&format!(
                "Content-Type: multipart/{sub}; boundary=\"{b}\"\n"
            ));
            if rng.below(10) != 0 {
                out.push('\n');
            }
            if rng.below(3) == 0 {
                out.push_str("preamble\n");
            }
            let mut inner: Vec<String> = outer.to_vec();
            inner.push(b.clone());
            for _ in 0..rng.below(4) {
                out.push_str(&format!("--{b}{}\n", rng.pick(&["", "", " ", "  junk"])));
                random_entity(rng, out, depth + 1, &inner);
                if !out.ends_with('\n') {
                    out.push('\n');
                }
            }
            match rng.below(4) {
                0 => {}
                1 if !outer.is_empty() => {
                    out.push_str(&format!("--{}\n", outer[rng.below(outer.len())]))
                }
                _ => out.push_str(&format!("--{b}--\n{}", rng.pick(&["", "epilogue\n"]))),
            }
        }
        5 => {
            out.push_str("Content-Type: message/rfc822\n");
            if rng.below(8) != 0 {
                out.push('\n');
            }
            out.push_str(rng.pick(&["Subject: inner\n", "From: i@j\nMIME-Version: 1.0\n", ""]));
            random_entity(rng, out, depth + 1, outer);
        }
        _ => {
            if !outer.is_empty() {
                out.push_str(&format!("--{}\n", outer[rng.below(outer.len())]));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sections

/// `SPEC<TAB>bytes` lines of `NAME.sections`; bytes use `\r`, `\n`, `\t`, `\\` and `\xNN`, and
/// `!none` means that the part does not exist.
fn section_expectations(name: &str) -> Vec<(String, Option<Vec<u8>>)> {
    let Ok(text) = std::fs::read_to_string(corpus_dir().join(format!("{name}.sections"))) else {
        return Vec::new();
    };
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (spec, value) = l.split_once('\t').unwrap_or((l, ""));
            (
                spec.to_string(),
                (value != "!none").then(|| unescape(value)),
            )
        })
        .collect()
}

fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        i += 1;
        if c != b'\\' {
            out.push(c);
            continue;
        }
        match b.get(i) {
            Some(b'r') => out.push(b'\r'),
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'x') => {
                let hex =
                    std::str::from_utf8(b.get(i + 1..i + 3).unwrap_or_default()).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).expect("\\xNN"));
                i += 2;
            }
            Some(&other) => out.push(other),
            None => {}
        }
        i += 1;
    }
    out
}

/// Parses a section spec (`1.2.HEADER.FIELDS (A B)`) and asks `mail-parse` for it.
fn our_section(raw: &[u8], spec: &str) -> Option<Vec<u8>> {
    let mut path = Vec::new();
    let mut rest = spec;
    while rest.starts_with(|c: char| c.is_ascii_digit()) {
        let end = rest.find('.').unwrap_or(rest.len());
        path.push(rest[..end].parse::<u32>().expect("part number"));
        rest = rest.get(end + 1..).unwrap_or("");
    }
    let names: Vec<String> = rest
        .split_once('(')
        .map(|(_, n)| {
            n.trim_end_matches(')')
                .split_whitespace()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let upper = rest.to_ascii_uppercase();
    let spec = match upper.split(' ').next().unwrap_or("") {
        "" => SectionSpec::Full,
        "HEADER" => SectionSpec::Header,
        "TEXT" => SectionSpec::Text,
        "MIME" => SectionSpec::Mime,
        "HEADER.FIELDS" => SectionSpec::HeaderFields(&names),
        "HEADER.FIELDS.NOT" => SectionSpec::HeaderFieldsNot(&names),
        other => panic!("bad section {other}"),
    };
    ParsedMessage::parse(raw)
        .section(raw, &path, spec)
        .map(|c| c.into_owned())
}

/// Sections compared with Dovecot for every message: the top-level ones, and for every part its
/// body and MIME header (and HEADER/TEXT for message/rfc822 parts), plus one part too many.
fn standard_sections(raw: &[u8]) -> Vec<String> {
    let mut out: Vec<String> = [
        "",
        "HEADER",
        "TEXT",
        "HEADER.FIELDS (From Subject X-Missing)",
        "HEADER.FIELDS.NOT (From Subject)",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    fn walk(p: &Part, prefix: &str, out: &mut Vec<String>, depth: usize) {
        if depth > 6 {
            return;
        }
        let children: Vec<&Part> = match &p.children {
            PartChildren::Multipart(c) => c.iter().collect(),
            PartChildren::Message(m) => match &m.children {
                PartChildren::Multipart(c) => c.iter().collect(),
                _ => vec![&**m],
            },
            PartChildren::None => Vec::new(),
        };
        for (i, c) in children.iter().enumerate() {
            let n = format!("{prefix}{}", i + 1);
            out.push(n.clone());
            out.push(format!("{n}.MIME"));
            if matches!(c.children, PartChildren::Message(_)) {
                out.push(format!("{n}.HEADER"));
                out.push(format!("{n}.TEXT"));
                out.push(format!("{n}.HEADER.FIELDS (Subject)"));
                out.push(format!("{n}.HEADER.FIELDS.NOT (Subject)"));
            }
            if !std::ptr::eq(*c, p) {
                walk(c, &format!("{n}."), out, depth + 1);
            }
        }
        out.push(format!("{prefix}{}", children.len() + 1));
    }
    let parsed = ParsedMessage::parse(raw);
    match &parsed.root.children {
        PartChildren::None => {
            out.extend(["1", "1.MIME", "2", "1.1"].map(String::from));
        }
        _ => walk(&parsed.root, "", &mut out, 0),
    }
    out
}

fn to_crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 32);
    for (i, &c) in raw.iter().enumerate() {
        if c == b'\n' && (i == 0 || raw[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(c);
    }
    out
}

fn allowlist() -> BTreeSet<String> {
    let text = std::fs::read_to_string(corpus_dir().join("ALLOWLIST")).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            l.split_once(" -- ")
                .map(|(what, _why)| what.trim().to_string())
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// IMAP values

#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Nil,
    Num(u64),
    Str(Vec<u8>),
    Atom(String),
    List(Vec<Value>),
}

/// One response item from Dovecot: the value following `item` in `* N FETCH (item value)`.
fn fetch(client: &mut test_support::ImapClient, seq: usize, item: &str) -> Option<Value> {
    let r = client.command(&format!("FETCH {seq} ({item})")).ok()?;
    let line = r
        .untagged
        .iter()
        .find(|l| l.windows(6).any(|w| w == b" FETCH"))?;
    let start = line.iter().position(|&c| c == b'(')?;
    let Value::List(items) = parse_value(line.get(start..)?).ok()? else {
        return None;
    };
    let key = item.replace(".PEEK", "").to_ascii_uppercase();
    let mut it = items.into_iter();
    while let Some(k) = it.next() {
        let v = it.next()?;
        if matches!(&k, Value::Atom(a) if a.to_ascii_uppercase() == key) {
            return Some(v);
        }
    }
    None
}

fn parse_value(bytes: &[u8]) -> Result<Value, String> {
    let mut pos = 0;
    let v = parse_at(bytes, &mut pos)?;
    Ok(v)
}

fn parse_at(b: &[u8], pos: &mut usize) -> Result<Value, String> {
    while b.get(*pos) == Some(&b' ') {
        *pos += 1;
    }
    match b.get(*pos) {
        None => Err("unexpected end".into()),
        Some(b'(') => {
            *pos += 1;
            let mut items = Vec::new();
            loop {
                while b.get(*pos) == Some(&b' ') {
                    *pos += 1;
                }
                match b.get(*pos) {
                    Some(b')') => {
                        *pos += 1;
                        return Ok(Value::List(items));
                    }
                    None => return Err("unclosed list".into()),
                    _ => items.push(parse_at(b, pos)?),
                }
            }
        }
        Some(b'"') => {
            *pos += 1;
            let mut s = Vec::new();
            loop {
                match b.get(*pos) {
                    None => return Err("unclosed quoted string".into()),
                    Some(b'"') => {
                        *pos += 1;
                        return Ok(Value::Str(s));
                    }
                    Some(b'\\') => {
                        let c = *b.get(*pos + 1).ok_or("bad escape")?;
                        if c != b'"' && c != b'\\' {
                            return Err("bad escape".into());
                        }
                        s.push(c);
                        *pos += 2;
                    }
                    Some(b'\r' | b'\n') => return Err("CR/LF in quoted string".into()),
                    Some(&c) => {
                        s.push(c);
                        *pos += 1;
                    }
                }
            }
        }
        Some(b'{') => {
            let close = b[*pos..]
                .iter()
                .position(|&c| c == b'}')
                .ok_or("bad literal")?
                + *pos;
            let n: usize = std::str::from_utf8(&b[*pos + 1..close])
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or("bad literal size")?;
            if b.get(close + 1..close + 3) != Some(b"\r\n") {
                return Err("literal without CRLF".into());
            }
            let start = close + 3;
            let s = b.get(start..start + n).ok_or("short literal")?.to_vec();
            *pos = start + n;
            Ok(Value::Str(s))
        }
        Some(_) => {
            let start = *pos;
            let mut depth = 0;
            while let Some(&c) = b.get(*pos) {
                match c {
                    b'[' => depth += 1,
                    b']' => depth -= 1,
                    b' ' | b'(' | b')' if depth == 0 => break,
                    _ => {}
                }
                *pos += 1;
            }
            let atom = String::from_utf8_lossy(&b[start..*pos]).into_owned();
            if atom.eq_ignore_ascii_case("NIL") {
                Ok(Value::Nil)
            } else if !atom.is_empty() && atom.bytes().all(|c| c.is_ascii_digit()) {
                atom.parse()
                    .map(Value::Num)
                    .map_err(|_| "number too big".into())
            } else if atom.is_empty() {
                Err("empty atom".into())
            } else {
                Ok(Value::Atom(atom))
            }
        }
    }
}

fn render(v: &Value) -> String {
    match v {
        Value::Nil => "NIL".into(),
        Value::Num(n) => n.to_string(),
        Value::Atom(a) => a.clone(),
        Value::Str(s) => format!("{:?}", String::from_utf8_lossy(s)),
        Value::List(items) => format!(
            "({})",
            items.iter().map(render).collect::<Vec<_>>().join(" ")
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// RFC 3501 section 9 grammar

fn nstring(v: &Value) -> Result<(), String> {
    match v {
        Value::Nil | Value::Str(_) => Ok(()),
        other => Err(format!("expected nstring, got {}", render(other))),
    }
}

fn string(v: &Value) -> Result<&[u8], String> {
    match v {
        Value::Str(s) => Ok(s),
        other => Err(format!("expected string, got {}", render(other))),
    }
}

fn number(v: &Value) -> Result<(), String> {
    match v {
        Value::Num(_) => Ok(()),
        other => Err(format!("expected number, got {}", render(other))),
    }
}

fn list(v: &Value) -> Result<&[Value], String> {
    match v {
        Value::List(l) => Ok(l),
        other => Err(format!("expected list, got {}", render(other))),
    }
}

/// `envelope`: ten fields, the address lists being NIL or `1*address`.
fn check_envelope(v: &Value) -> Result<(), String> {
    let f = list(v)?;
    if f.len() != 10 {
        return Err(format!("envelope has {} fields", f.len()));
    }
    nstring(&f[0])?;
    nstring(&f[1])?;
    for a in &f[2..8] {
        if *a == Value::Nil {
            continue;
        }
        let addrs = list(a)?;
        if addrs.is_empty() {
            return Err("empty address list".into());
        }
        for addr in addrs {
            let parts = list(addr)?;
            if parts.len() != 4 {
                return Err("address needs 4 fields".into());
            }
            parts.iter().try_for_each(nstring)?;
        }
    }
    nstring(&f[8])?;
    nstring(&f[9])
}

/// `body-fld-param`: NIL or a list of string pairs.
fn params(v: &Value) -> Result<(), String> {
    if *v == Value::Nil {
        return Ok(());
    }
    let l = list(v)?;
    if l.is_empty() || l.len() % 2 != 0 {
        return Err("parameter list must hold pairs".into());
    }
    l.iter().try_for_each(|s| string(s).map(|_| ()))
}

/// `body-fld-dsp SP body-fld-lang SP body-fld-loc`
fn dsp_lang_loc(f: &[Value]) -> Result<(), String> {
    let [dsp, lang, loc] = f else {
        return Err(format!("expected dsp lang loc, got {} fields", f.len()));
    };
    if *dsp != Value::Nil {
        let d = list(dsp)?;
        let [kind, p] = d else {
            return Err("body-fld-dsp needs 2 fields".into());
        };
        string(kind)?;
        params(p)?;
    }
    match lang {
        Value::Nil | Value::Str(_) => {}
        other => {
            let l = list(other)?;
            if l.is_empty() {
                return Err("empty language list".into());
            }
            l.iter().try_for_each(|s| string(s).map(|_| ()))?;
        }
    }
    nstring(loc)
}

/// `body`, with (`BODYSTRUCTURE`) or without (`BODY`) extension data; we always send all of it.
fn check_body(v: &Value, ext: bool) -> Result<(), String> {
    let f = list(v)?;
    let nparts = f.iter().take_while(|x| matches!(x, Value::List(_))).count();
    if nparts > 0 {
        // body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]
        for p in &f[..nparts] {
            check_body(p, ext)?;
        }
        let rest = &f[nparts..];
        let subtype = rest.first().ok_or("multipart without subtype")?;
        string(subtype)?;
        if ext {
            let [p, tail @ ..] = &rest[1..] else {
                return Err("multipart without extension data".into());
            };
            params(p)?;
            dsp_lang_loc(tail)
        } else if rest.len() != 1 {
            Err("BODY multipart has extension data".into())
        } else {
            Ok(())
        }
    } else {
        // body-type-1part: body-fields (type subtype param id desc enc octets) + specific
        if f.len() < 7 {
            return Err("single part needs body-fields".into());
        }
        let media = string(&f[0])?.to_ascii_lowercase();
        let sub = string(&f[1])?.to_ascii_lowercase();
        params(&f[2])?;
        nstring(&f[3])?;
        nstring(&f[4])?;
        string(&f[5])?;
        number(&f[6])?;
        let mut i = 7;
        if media == b"text" {
            number(f.get(i).ok_or("text part without lines")?)?;
            i += 1;
        } else if media == b"message" && sub == b"rfc822" {
            check_envelope(f.get(i).ok_or("message part without envelope")?)?;
            check_body(f.get(i + 1).ok_or("message part without body")?, ext)?;
            number(f.get(i + 2).ok_or("message part without lines")?)?;
            i += 3;
        }
        let rest = &f[i..];
        if ext {
            let [md5, tail @ ..] = rest else {
                return Err("single part without extension data".into());
            };
            nstring(md5)?;
            dsp_lang_loc(tail)
        } else if !rest.is_empty() {
            Err("BODY part has extension data".into())
        } else {
            Ok(())
        }
    }
}
