use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

fn uid(n: u32) -> Uid {
    Uid::new(n).unwrap()
}

fn uv(n: u32) -> UidValidity {
    UidValidity::new(n).unwrap()
}

fn open(path: &Path) -> (MessageCache, Vec<CacheRepair>) {
    MessageCache::open(path, uv(5))
}

#[test]
fn values_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("columba.index.cache");
    let (mut c, repairs) = open(&path);
    assert!(repairs.is_empty(), "{repairs:?}");
    c.put(uid(1), 1, b"(envelope one)");
    c.put(uid(1), 2, b"(bodystructure one)");
    c.put(uid(7), 1, b"");
    c.put(uid(1), 1, b"(envelope one, again)");
    assert_eq!(c.get(uid(1), 1).unwrap(), b"(envelope one, again)");
    assert_eq!(c.get(uid(2), 1), None);
    drop(c);
    let (mut c, repairs) = open(&path);
    assert!(repairs.is_empty(), "{repairs:?}");
    assert_eq!(c.len(), 3);
    assert_eq!(c.get(uid(1), 1).unwrap(), b"(envelope one, again)");
    assert_eq!(c.get(uid(1), 2).unwrap(), b"(bodystructure one)");
    assert_eq!(c.get(uid(7), 1).unwrap(), b"");
    // Envelopes and subjects are the mail owner's alone, whatever the umask.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn another_process_sees_new_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache");
    let (mut a, _) = open(&path);
    let (mut b, _) = open(&path);
    a.put(uid(3), 1, b"from a");
    assert_eq!(b.get(uid(3), 1).unwrap(), b"from a");
    b.put(uid(4), 1, b"from b");
    a.put(uid(5), 1, b"from a again");
    assert_eq!(a.get(uid(4), 1).unwrap(), b"from b");
    assert_eq!(b.get(uid(5), 1).unwrap(), b"from a again");
    // A compaction by one is followed by the other.
    a.forget(&[uid(3)]);
    a.compact();
    assert_eq!(b.get(uid(4), 1).unwrap(), b"from b");
    b.put(uid(6), 1, b"after compaction");
    assert_eq!(a.get(uid(6), 1).unwrap(), b"after compaction");
}

#[test]
fn a_torn_tail_is_cut_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache");
    let (mut c, _) = open(&path);
    c.put(uid(1), 1, b"kept");
    c.put(uid(2), 1, b"torn");
    drop(c);
    let len = std::fs::metadata(&path).unwrap().len();
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len - 2).unwrap();
    drop(f);
    let (mut c, repairs) = open(&path);
    assert_eq!(repairs.len(), 1, "{repairs:?}");
    assert!(repairs[0].what.contains("truncated"), "{repairs:?}");
    assert_eq!(c.get(uid(1), 1).unwrap(), b"kept");
    assert_eq!(c.get(uid(2), 1), None);
    c.put(uid(2), 1, b"again");
    drop(c);
    let (mut c, repairs) = open(&path);
    assert!(repairs.is_empty(), "{repairs:?}");
    assert_eq!(c.get(uid(2), 1).unwrap(), b"again");
}

#[test]
fn damage_after_opening_is_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache");
    let (mut c, _) = open(&path);
    c.put(uid(1), 1, b"value one");
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    let len = f.metadata().unwrap().len();
    f.write_all_at(b"X", len - 1).unwrap();
    assert_eq!(c.get(uid(1), 1), None);
}

#[test]
fn every_flipped_byte_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache");
    let (mut c, _) = open(&path);
    c.put(uid(1), 1, b"alpha");
    c.put(uid(2), 2, b"beta");
    drop(c);
    let good = std::fs::read(&path).unwrap();
    for at in 0..good.len() {
        let mut bad = good.clone();
        bad[at] ^= 0x10;
        std::fs::write(&path, &bad).unwrap();
        let (mut c, repairs) = open(&path);
        assert!(!repairs.is_empty(), "flip at {at} not noticed");
        // Whatever survived is exactly what was stored.
        for (u, f, v) in [(1, 1, &b"alpha"[..]), (2, 2, b"beta")] {
            if let Some(got) = c.get(uid(u), f) {
                assert_eq!(got, v, "flip at {at}");
            }
        }
    }
}

#[test]
fn foreign_or_broken_files_start_over() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache");
    let (mut c, _) = MessageCache::open(&path, uv(1));
    c.put(uid(1), 1, b"old mailbox");
    drop(c);
    let (mut c, repairs) = MessageCache::open(&path, uv(2));
    assert!(repairs[0].what.contains("UIDVALIDITY"), "{repairs:?}");
    assert_eq!(c.get(uid(1), 1), None);
    for junk in [
        vec![],
        vec![0u8; 100],
        b"garbage that is long enough to hold a header".to_vec(),
    ] {
        std::fs::write(&path, &junk).unwrap();
        let (mut c, repairs) = MessageCache::open(&path, uv(2));
        assert_eq!(repairs.len(), 1, "{junk:?}");
        assert!(c.is_empty());
        c.put(uid(9), 1, b"works");
        assert_eq!(c.get(uid(9), 1).unwrap(), b"works");
    }
}

#[test]
fn compaction_drops_garbage_and_keeps_live_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache");
    let (mut c, _) = open(&path);
    let big = vec![b'x'; 64 * 1024];
    for n in 1..=40 {
        c.put(uid(n), 1, &big);
    }
    c.forget(&(1..=30).map(uid).collect::<Vec<_>>());
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(len < 12 * 65 * 1024, "compacted to {len}");
    assert_eq!(c.sizes().1, 0);
    for n in 31..=40 {
        assert_eq!(c.get(uid(n), 1).unwrap().len(), big.len());
    }
    assert_eq!(c.get(uid(1), 1), None);
    drop(c);
    let (c, repairs) = open(&path);
    assert!(repairs.is_empty());
    assert_eq!(c.len(), 10);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The cache agrees with a map, across reopenings. As in a mailbox, an expunged UID is
    /// never used again; after a reopen the owner drops what the file still holds of them.
    #[test]
    fn behaves_like_a_map(ops in proptest::collection::vec((0u8..4, 1u32..20, 0u8..3, proptest::collection::vec(any::<u8>(), 0..40)), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache");
        let (mut c, _) = open(&path);
        let mut model: HashMap<(u32, u8), Vec<u8>> = HashMap::new();
        let mut expunged = std::collections::HashSet::new();
        for (kind, u, f, v) in ops {
            if expunged.contains(&u) {
                continue;
            }
            match kind {
                0 | 1 => { c.put(uid(u), f, &v); model.insert((u, f), v); }
                2 => { c.forget(&[uid(u)]); model.retain(|(mu, _), _| *mu != u); expunged.insert(u); }
                _ => {
                    drop(c);
                    c = open(&path).0;
                    c.retain(|u| !expunged.contains(&u.get()));
                }
            }
        }
        c.compact();
        for u in 1..20 {
            for f in 0..3 {
                prop_assert_eq!(c.get(uid(u), f), model.get(&(u, f)).cloned());
            }
        }
    }
}

#[test]
fn another_mailboxs_file_copied_in_is_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join("ours");
    let theirs = dir.path().join("theirs");
    let (mut a, _) = MessageCache::open(&ours, uv(1));
    let (mut b, _) = MessageCache::open(&theirs, uv(2));
    // Same UIDs, fields and value sizes: the entries sit at the same offsets in both files.
    a.put(uid(1), 1, b"our value");
    b.put(uid(1), 1, b"THE VALUE");
    // Copied over ours while we have it open (same inode, content replaced).
    std::fs::write(&ours, std::fs::read(&theirs).unwrap()).unwrap();
    assert_eq!(a.get(uid(1), 1), None);
    // And after reopening: the header names the other UIDVALIDITY.
    drop(a);
    let (mut a, repairs) = MessageCache::open(&ours, uv(1));
    assert!(repairs[0].what.contains("UIDVALIDITY"), "{repairs:?}");
    assert_eq!(a.get(uid(1), 1), None);
}

/// `get_many` gives what `get` gives, entry by entry, whatever the spacing of the entries in
/// the file, and sees what another process added.
#[test]
fn many_at_once_match_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache");
    let (mut c, _) = open(&path);
    let big = vec![b'x'; 100 * 1024];
    for n in 1..=300u32 {
        c.put(uid(n), 5, format!("sort keys {n}").as_bytes());
        if n % 50 == 0 {
            // A gap too wide to read across.
            c.put(uid(n), 1, &big);
        }
    }
    c.put(uid(7), 5, b"replaced");
    let (mut other, _) = open(&path);
    other.put(uid(301), 5, b"from another process");
    let uids: Vec<Uid> = [301, 7, 1, 300, 150, 999, 2].map(uid).to_vec();
    let many = c.get_many(&uids, 5);
    let one: Vec<Option<Vec<u8>>> = uids.iter().map(|&u| c.get(u, 5)).collect();
    assert_eq!(many, one);
    assert_eq!(many[0].as_deref(), Some(&b"from another process"[..]));
    assert_eq!(many[1].as_deref(), Some(&b"replaced"[..]));
    assert_eq!(many[5], None);
    assert_eq!(c.get_many(&[], 5), Vec::<Option<Vec<u8>>>::new());
}
