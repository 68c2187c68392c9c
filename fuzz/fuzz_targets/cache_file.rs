//! Any bytes as a cache file: opening, reading every value and appending must not panic, and
//! whatever is served must be what its checksum covers (re-reading gives the same bytes). The
//! first byte chooses between raw bytes and bytes after a valid header (so that the fuzzer gets
//! past the header checksum into the entries).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mail_index::MessageCache;
use mail_types::{Uid, UidValidity};

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else { return };
    let path = dir.path().join("cache");
    let (Some(uv), Some(one)) = (UidValidity::new(5), Uid::new(1)) else { return };
    let Some((&mode, data)) = data.split_first() else { return };
    if mode & 1 == 1 {
        drop(MessageCache::open(&path, uv));
        let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(&path) else { return };
        if std::io::Write::write_all(&mut f, data).is_err() {
            return;
        }
    } else if std::fs::write(&path, data).is_err() {
        return;
    }
    let (mut cache, _repairs) = MessageCache::open(&path, uv);
    for u in 1..8 {
        let Some(uid) = Uid::new(u) else { continue };
        for field in 0..3 {
            let first = cache.get(uid, field);
            assert_eq!(first, cache.get(uid, field));
        }
    }
    cache.put(one, 1, b"value");
    assert_eq!(cache.get(one, 1).as_deref(), Some(&b"value"[..]));
});
