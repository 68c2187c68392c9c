//! Any bytes as a main index file: the reader must reject or accept without panicking, and what
//! it accepts, once its references (decoded when first read) are checked too, must save back to
//! the same bytes (nothing is half-understood). Reading every reference finds a damaged block
//! exactly when the check does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mail_index::MailboxIndex;

fn check(data: &[u8]) {
    if let Ok(loaded) = MailboxIndex::from_file_bytes(data) {
        // References are decoded when first read: a block that does not decode is found here.
        let references_ok = loaded.index.check_references().is_ok();
        let again = loaded.index.to_file_bytes(&loaded.backend_state);
        if references_ok {
            assert_eq!(again, data, "an accepted file must re-encode identically");
        }
        let names: usize = loaded.index.records().map(|r| r.backend().len()).sum();
        assert_eq!(
            references_ok,
            loaded.index.reference_damage().is_none(),
            "{names} bytes of names read; check and reading must agree"
        );
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
