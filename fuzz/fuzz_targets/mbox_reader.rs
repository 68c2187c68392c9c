//! Any bytes as an mbox file through the reader: scanning must not panic, the messages it finds
//! must tile the file, what a client sees must not show the metadata headers, and a message
//! written back with mboxrd quoting must read back as the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mail_store::mbox::parse::{self, scan, visible};
use mail_store::mbox::write::{MetaOut, Quoting, new_message};
use mail_types::Flags;

fuzz_target!(|data: &[u8]| {
    let Ok(messages) = scan(data, 0) else {
        return;
    };
    let mut expect_from = 0u64;
    for m in &messages {
        assert_eq!(m.from, expect_from, "messages must tile the file");
        assert!(m.from < m.header || m.header as usize == data.len());
        assert!(m.header <= m.body && m.body <= m.end && m.end <= m.next);
        expect_from = m.next;
        let bytes = &data[m.header as usize..m.end as usize];
        let shown = visible(bytes, (m.body - m.header) as usize, m.verbatim);
        // No hidden field among the header lines a client sees.
        for line in shown.split(|&b| b == b'\n') {
            if line.is_empty() {
                break;
            }
            if !matches!(line.first(), Some(b' ' | b'\t')) {
                assert!(
                    !parse::field_name(line).is_some_and(parse::is_hidden),
                    "hidden field shown: {:?}",
                    String::from_utf8_lossy(line)
                );
            }
        }
        round_trip(&shown);
    }
    assert_eq!(expect_from, data.len() as u64);
});

/// A message as the store keeps it (LF only, a header, ending with a newline) written with
/// mboxrd quoting reads back unchanged.
fn round_trip(message: &[u8]) {
    let well_formed = message.ends_with(b"\n")
        && !message.contains(&b'\r')
        && !message.starts_with(b"\n")
        && memchr::memmem::find(message, b"\n\n").is_some();
    if !well_formed {
        return;
    }
    let flags = Flags::default();
    let mut file = Vec::new();
    new_message(
        &mut file,
        "From MAILER-DAEMON  Thu Jan  1 00:00:00 1970",
        message,
        Quoting::Mboxrd,
        &MetaOut {
            uid: 1,
            flags: &flags,
            old: false,
            base: None,
        },
    );
    let again = scan(&file, 0).expect("what the writer wrote must scan");
    assert_eq!(again.len(), 1, "one message written, {} read", again.len());
    let m = &again[0];
    let shown = visible(
        &file[m.header as usize..m.end as usize],
        (m.body - m.header) as usize,
        m.verbatim,
    );
    assert_eq!(shown, message, "written and read back differ");
}
