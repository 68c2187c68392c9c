//! Any bytes as a main index file: the reader must reject or accept without panicking, and what
//! it accepts must save back to the same bytes (nothing is half-understood).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mail_index::MailboxIndex;

fuzz_target!(|data: &[u8]| {
    if let Ok(loaded) = MailboxIndex::from_file_bytes(data) {
        let again = loaded.index.to_file_bytes(&loaded.backend_state);
        assert_eq!(again, data, "an accepted file must re-encode identically");
        let _ = loaded.index.changes_since(0);
    }
});
