//! Any bytes as a transaction log (`columba.index.log`): the header is validated, the records
//! after it replayed into an empty index of the header's UIDVALIDITY. Nothing may panic; a
//! replay stops at a torn tail or reports damage; and whatever state it reaches is a valid
//! index: saved as a main index file, it loads back and answers the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mail_index::MailboxIndex;
use mail_index::log::{LOG_HEADER_SIZE, parse_header, replay_bytes};

fuzz_target!(|data: &[u8]| {
    let header = LOG_HEADER_SIZE as usize;
    let Ok((uid_validity, _generation)) = parse_header(data) else {
        return;
    };
    let mut ix = MailboxIndex::new(uid_validity);
    let body = data.get(header..).unwrap_or_default();
    let outcome = replay_bytes(&mut ix, body, LOG_HEADER_SIZE);
    if let Ok(out) = &outcome {
        assert!(out.consumed <= body.len() as u64);
        if let Some((at, _)) = out.torn {
            assert_eq!(at, LOG_HEADER_SIZE + out.consumed);
        }
    }
    // Replay goes through `apply`, so even a half-applied log leaves a consistent index.
    let bytes = ix.to_file_bytes(b"");
    let loaded = MailboxIndex::from_file_bytes(&bytes).expect("a replayed index must save and load");
    assert_eq!(loaded.index.changes_since(0), ix.changes_since(0));
    assert_eq!(loaded.index.header(), ix.header());
});
