//! Any bytes as a main index file: the reader must reject or accept without panicking, and what
//! it accepts must save back to the same bytes (nothing is half-understood).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mail_index::MailboxIndex;

fn check(data: &[u8]) {
    if let Ok(loaded) = MailboxIndex::from_file_bytes(data) {
        let again = loaded.index.to_file_bytes(&loaded.backend_state);
        assert_eq!(again, data, "an accepted file must re-encode identically");
        let _ = loaded.index.changes_since(0);
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    // Most changes stop at a checksum; with both recomputed the header and records are decoded.
    let mut fixed = data.to_vec();
    mail_index::fix_index_checksums(&mut fixed);
    check(&fixed);
});
