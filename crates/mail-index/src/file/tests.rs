use mail_types::{Flags, ModSeq, Uid};
use proptest::prelude::*;

use super::*;
use crate::testing::{append_bare, observable};
use crate::{NewRecord, Op};

fn sample(n: u32) -> MailboxIndex {
    let mut ix = MailboxIndex::new(UidValidity::new(77).unwrap());
    let junk = Flags::new(SystemFlags::SEEN, [Keyword::new("$Junk").unwrap()]);
    for u in 1..=n {
        let flags = if u % 3 == 0 {
            junk.clone()
        } else {
            Flags::default()
        };
        ix.apply(Op::Append(NewRecord {
            uid: Uid::new(u * 2).unwrap(),
            flags: &flags,
            internal_date: (u % 5 != 0).then_some(1_600_000_000 + i64::from(u)),
            size: (u % 7 != 0).then_some(u64::from(u) * 100),
            recent: u % 4 == 0,
            backend: format!("{u}.M1P2.host,S={u}:2,").as_bytes(),
        }))
        .unwrap();
    }
    let gone: Vec<Uid> = (1..=n)
        .filter(|u| u % 10 == 1)
        .map(|u| Uid::new(u * 2).unwrap())
        .collect();
    ix.apply(Op::Expunge(&gone)).unwrap();
    ix
}

#[test]
fn round_trip_keeps_everything() {
    let ix = sample(200);
    let bytes = ix.to_file_bytes(b"backend state");
    let loaded = MailboxIndex::from_file_bytes(&bytes).unwrap();
    assert_eq!(loaded.backend_state, b"backend state");
    assert_eq!(observable(&loaded.index), observable(&ix));
    // And it keeps working: the loaded index accepts the next ops like the original.
    let mut a = ix.clone();
    let mut b = loaded.index;
    for ix in [&mut a, &mut b] {
        append_bare(ix, 1000, true, b"new");
        ix.claim_recent();
    }
    assert_eq!(observable(&a), observable(&b));
}

#[test]
fn empty_index_round_trips() {
    let ix = MailboxIndex::new(UidValidity::new(1).unwrap());
    let loaded = MailboxIndex::from_file_bytes(&ix.to_file_bytes(&[])).unwrap();
    assert_eq!(observable(&loaded.index), observable(&ix));
}

#[test]
fn every_truncation_is_detected() {
    let bytes = sample(40).to_file_bytes(b"state");
    for len in 0..bytes.len() {
        assert!(
            MailboxIndex::from_file_bytes(&bytes[..len]).is_err(),
            "truncated at {len}"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(MailboxIndex::from_file_bytes(&longer).is_err());
}

#[test]
fn every_flipped_byte_is_detected() {
    let bytes = sample(40).to_file_bytes(b"state");
    for at in 0..bytes.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = bytes.clone();
            bad[at] ^= bit;
            assert!(
                MailboxIndex::from_file_bytes(&bad).is_err(),
                "flip {bit:#x} at {at}"
            );
        }
    }
}

#[test]
fn zeroes_and_garbage_are_rejected() {
    let len = sample(40).to_file_bytes(b"").len();
    assert!(matches!(
        MailboxIndex::from_file_bytes(&vec![0; len]),
        Err(IndexFileError::BadMagic)
    ));
    assert!(MailboxIndex::from_file_bytes(b"").is_err());
    let garbage: Vec<u8> = (0..len).map(|i| (i * 7919 % 251) as u8).collect();
    assert!(MailboxIndex::from_file_bytes(&garbage).is_err());
}

/// Header offsets of the fields the tests rewrite.
const RECORD_COUNT_AT: usize = 8 + 4 * 3;
const KEYWORDS_LEN_AT: usize = 8 + 4 * 4 + 8 * 2 + 4 * 2;
const EXTRA_COUNT_AT: usize = KEYWORDS_LEN_AT + 8;
const ZERO_AT: usize = EXTRA_COUNT_AT + 4;

fn u32_at(file: &[u8], at: usize) -> usize {
    u32::from_le_bytes(file[at..at + 4].try_into().unwrap()) as usize
}

/// Where the extras of `file` start (after the keywords and the backend state).
fn extras_at(file: &[u8]) -> usize {
    HEADER_SIZE + u32_at(file, KEYWORDS_LEN_AT) + u32_at(file, KEYWORDS_LEN_AT + 4)
}

/// Where record `i` of `file` starts (after the extras).
fn record_at(file: &[u8], i: usize) -> usize {
    extras_at(file) + u32_at(file, EXTRA_COUNT_AT) * EXTRA_SIZE + i * RECORD_SIZE
}

/// `file` with `bytes` written at `at` and its checksums fixed.
fn patched(file: &[u8], at: usize, bytes: &[u8]) -> Vec<u8> {
    let mut out = file.to_vec();
    out[at..at + bytes.len()].copy_from_slice(bytes);
    fix_index_checksums(&mut out);
    out
}

/// A file whose checksums are right but whose content is inconsistent or not written the one
/// way the writer writes it: the structural checks catch it (a bug or a hostile writer, not
/// bit rot).
#[test]
fn inconsistent_content_with_valid_checksums_is_rejected() {
    let mut ix = MailboxIndex::new(UidValidity::new(77).unwrap());
    // Record 0 has a keyword (so an extra), record 1 none, record 2 is \Recent.
    ix.apply(Op::Append(NewRecord {
        uid: Uid::new(1).unwrap(),
        flags: &Flags::new(SystemFlags::SEEN, [Keyword::new("$Junk").unwrap()]),
        internal_date: None,
        size: None,
        recent: false,
        backend: b"x",
    }))
    .unwrap();
    append_bare(&mut ix, 1000, false, b"x");
    append_bare(&mut ix, 1001, true, b"y");
    let file = ix.to_file_bytes(b"");
    assert!(MailboxIndex::from_file_bytes(&file).is_ok());
    let (r0, r1, r2) = (
        record_at(&file, 0),
        record_at(&file, 1),
        record_at(&file, 2),
    );
    let extra = extras_at(&file);
    let cases: Vec<(&str, Vec<u8>, usize)> = vec![
        (
            "UIDs not ascending",
            patched(&file, r1, &1u32.to_le_bytes()),
            1,
        ),
        (
            "UID at UIDNEXT",
            patched(&file, r2, &1002u32.to_le_bytes()),
            2,
        ),
        ("unknown system flag", patched(&file, r1 + 4, &[0x80]), 1),
        ("unknown bits", patched(&file, r1 + 5, &[0x04]), 1),
        ("reserved not zero", patched(&file, r1 + 7, &[1]), 1),
        (
            "modseq zero",
            patched(&file, r1 + 8, &0u64.to_le_bytes()),
            1,
        ),
        (
            "modseq above highest",
            patched(&file, r1 + 8, &9u64.to_le_bytes()),
            1,
        ),
        (
            "created above modseq",
            patched(&file, r1 + 16, &4u64.to_le_bytes()),
            1,
        ),
        ("date beside an extra", patched(&file, r0 + 24, &[1]), 0),
        (
            "extra not needed",
            patched(&file, extra, &0u64.to_le_bytes()),
            0,
        ),
        (
            "keyword without a name",
            patched(&file, extra, &2u64.to_le_bytes()),
            0,
        ),
        ("extra missing", patched(&file, r2 + 5, &[0x03]), 2),
    ];
    for (what, bytes, index) in cases {
        let result = MailboxIndex::from_file_bytes(&bytes);
        assert!(
            matches!(result, Err(IndexFileError::Record { index: i, .. }) if i == index),
            "{what}: {result:?}"
        );
    }
    // An extra no record claims; more extras than records; the reserved header field.
    let unclaimed = patched(&file, r0 + 5, &[0]);
    let too_many = patched(&file, EXTRA_COUNT_AT, &9u32.to_le_bytes());
    let reserved = patched(&file, ZERO_AT, &1u32.to_le_bytes());
    for bytes in [unclaimed, too_many, reserved] {
        let result = MailboxIndex::from_file_bytes(&bytes);
        assert!(
            matches!(
                result,
                Err(IndexFileError::Header(_) | IndexFileError::Size { .. })
            ),
            "{result:?}"
        );
    }
    // A huge declared count with a matching header checksum is refused before allocating.
    let huge = patched(&file, RECORD_COUNT_AT, &u32::MAX.to_le_bytes());
    assert!(matches!(
        MailboxIndex::from_file_bytes(&huge),
        Err(IndexFileError::Size { .. })
    ));
}

/// References are decoded when first read, so a block whose coding is wrong is found then: its
/// references read as empty and the index reports the damage (the backend rebuilds);
/// `check_references` finds it without reading.
#[test]
fn a_reference_block_that_does_not_decode_is_reported() {
    let ix = sample(40);
    let file = ix.to_file_bytes(b"");
    let loaded = MailboxIndex::from_file_bytes(&file).unwrap();
    assert!(loaded.index.check_references().is_ok());
    assert!(loaded.index.reference_damage().is_none());
    // The block table follows the records: its first decoded length, one too long.
    let table = record_at(&file, ix.len());
    let len = u32::from_le_bytes(file[table + 4..table + 8].try_into().unwrap());
    let bad = patched(&file, table + 4, &(len + 1).to_le_bytes());
    let loaded = MailboxIndex::from_file_bytes(&bad).unwrap();
    assert!(loaded.index.check_references().is_err());
    assert!(loaded.index.reference_damage().is_none());
    let first = loaded.index.records().next().unwrap();
    assert_eq!(first.backend(), b"");
    assert!(loaded.index.reference_damage().is_some());
    // A table pointing outside its section is refused when the file is read.
    let bad = patched(&file, table, &1u32.to_le_bytes());
    assert!(matches!(
        MailboxIndex::from_file_bytes(&bad),
        Err(IndexFileError::Header(_))
    ));
}

/// Files of the previous formats are refused by their version, which the backends treat as a
/// missing index: rebuilt from the mail files.
#[test]
fn older_versions_are_refused_by_version() {
    for version in [1u32, 2] {
        let mut old = sample(10).to_file_bytes(b"");
        old[8..12].copy_from_slice(&version.to_le_bytes());
        fix_index_checksums(&mut old);
        assert!(matches!(
            MailboxIndex::from_file_bytes(&old),
            Err(IndexFileError::Version(v)) if v == version
        ));
    }
}

/// Maildir-like names shrink to a fraction, beside 32 bytes of record.
#[test]
fn a_maildir_index_is_small() {
    let mut ix = MailboxIndex::new(UidValidity::new(1).unwrap());
    let n = 10_000u32;
    let mut raw = 0;
    for u in 1..=n {
        let name = format!(
            "c{}.M{}P4001Q{u}.bench.example,S={},W={}:2,{}",
            1_609_459_251 + u64::from(u) * 97,
            (u64::from(u) * 7919) % 1_000_000,
            3000 + u % 5000,
            3100 + u % 5000,
            if u % 3 == 0 { "S" } else { "" }
        );
        raw += name.len();
        let flags = if u % 3 == 0 {
            Flags::new(SystemFlags::SEEN, [])
        } else {
            Flags::default()
        };
        ix.apply(Op::Append(NewRecord {
            uid: Uid::new(u).unwrap(),
            flags: &flags,
            internal_date: None,
            size: Some(u64::from(3100 + u % 5000)),
            recent: false,
            backend: name.as_bytes(),
        }))
        .unwrap();
    }
    let bytes = ix.to_file_bytes(b"");
    assert!(
        bytes.len() < n as usize * (32 + 16),
        "{} bytes for {n} records ({raw} of names)",
        bytes.len()
    );
    let loaded = MailboxIndex::from_file_bytes(&bytes).unwrap();
    assert_eq!(observable(&loaded.index), observable(&ix));
}

/// The fuzz target's seeds (`fuzz/seeds/index_file`) are files of the current format, written
/// by this test from sample states: `COLUMBA_WRITE_SEEDS=1` rewrites them after a format change.
#[test]
fn fuzz_seeds_are_current_files() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/index_file");
    let seeds = [
        MailboxIndex::new(UidValidity::new(1).unwrap()).to_file_bytes(b""),
        sample(3).to_file_bytes(b"st"),
        sample(25).to_file_bytes(b"state"),
    ];
    for (i, bytes) in seeds.iter().enumerate() {
        let path = dir.join(format!("seed{i}"));
        if std::env::var_os("COLUMBA_WRITE_SEEDS").is_some() {
            std::fs::write(&path, bytes).unwrap();
        }
        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(
            &on_disk,
            bytes,
            "{} is stale: rerun with COLUMBA_WRITE_SEEDS=1",
            path.display()
        );
        let loaded = MailboxIndex::from_file_bytes(&on_disk).unwrap();
        assert_eq!(loaded.index.to_file_bytes(&loaded.backend_state), on_disk);
    }
}

#[test]
fn files_are_replaced_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("columba.index");
    assert!(MailboxIndex::read_file(&path).unwrap().is_none());
    let ix = sample(30);
    ix.write_file(&path, b"one").unwrap();
    let loaded = MailboxIndex::read_file(&path).unwrap().unwrap();
    assert_eq!(observable(&loaded.index), observable(&ix));
    sample(5).write_file(&path, b"two").unwrap();
    let loaded = MailboxIndex::read_file(&path).unwrap().unwrap();
    assert_eq!(loaded.backend_state, b"two");
    // Nothing but the index is left in the directory.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["columba.index"]);
    // Readable by the mail's owner only, whatever the umask.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any sequence of ops gives an index that saves and loads to the same observable state.
    #[test]
    fn any_state_round_trips(ops in proptest::collection::vec((0u8..5, 1u32..40, 0u8..32, any::<bool>()), 0..80)) {
        let mut ix = MailboxIndex::new(UidValidity::new(9).unwrap());
        let names = ["$Work", "$Junk", "todo"];
        for (kind, n, bits, flag) in ops {
            let uid = Uid::new(ix.header().uid_next.get() + n % 3).unwrap();
            let kws: Vec<Keyword> = names.iter().enumerate().filter(|(i, _)| bits & (1 << i) != 0).map(|(_, k)| Keyword::new(k).unwrap()).collect();
            let flags = Flags::new(SystemFlags::from_bits_truncate(bits), kws);
            let existing: Vec<Uid> = ix.records().map(|r| r.uid()).collect();
            let pick = existing.get(n as usize % existing.len().max(1)).copied();
            let _ = match (kind, pick) {
                (0, _) | (_, None) => ix.apply(Op::Append(NewRecord { uid, flags: &flags, internal_date: flag.then_some(i64::from(n)), size: Some(u64::from(n)), recent: flag, backend: &[n as u8; 3] })),
                (1, Some(u)) => ix.apply(Op::Expunge(&[u])),
                (2, Some(u)) => ix.apply(Op::SetFlags { uid: u, flags: &flags }),
                (3, Some(u)) => ix.apply(Op::SetBackend { uid: u, backend: format!("renamed{n}").as_bytes() }),
                (_, Some(_)) => { ix.claim_recent(); Ok(None::<ModSeq>) }
            };
        }
        let loaded = MailboxIndex::from_file_bytes(&ix.to_file_bytes(b"s")).unwrap();
        prop_assert_eq!(observable(&loaded.index), observable(&ix));
    }

    /// A valid file with bytes changed and its checksums fixed (what a buggy writer could
    /// produce): refused, or accepted only if it is exactly what the writer makes of what was
    /// read (the fuzz target's property) — once its references, decoded when first read, are
    /// checked too.
    #[test]
    fn changed_files_are_refused_or_canonical(n in 0u32..30, changes in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        let mut bytes = sample(n).to_file_bytes(b"st");
        for (at, v) in changes {
            let at = HEADER_SIZE + at % (bytes.len() - HEADER_SIZE - TRAILER_SIZE);
            bytes[at] = v;
        }
        fix_index_checksums(&mut bytes);
        if let Ok(loaded) = MailboxIndex::from_file_bytes(&bytes)
            && loaded.index.check_references().is_ok()
        {
            prop_assert_eq!(loaded.index.to_file_bytes(&loaded.backend_state), bytes);
        }
    }

    /// Arbitrary bytes never panic the reader.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = MailboxIndex::from_file_bytes(&bytes);
    }
}

/// Bit rot in a record is reported as what it is, a checksum mismatch, although the record is
/// read (and found wrong) before the checksum at the end of the file is.
#[test]
fn a_flipped_record_byte_is_a_checksum_mismatch() {
    let ix = sample(300);
    let file = ix.to_file_bytes(b"state");
    for at in [
        record_at(&file, 0),
        record_at(&file, 150) + 9,
        record_at(&file, 269),
    ] {
        let mut bad = file.clone();
        bad[at] ^= 0x40;
        assert!(
            matches!(
                MailboxIndex::from_file_bytes(&bad),
                Err(IndexFileError::BodyChecksum)
            ),
            "flip at {at}"
        );
    }
    // Read from a file, in chunks, the same way.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("columba.index");
    std::fs::write(&path, &file).unwrap();
    let loaded = MailboxIndex::read_file(&path).unwrap().unwrap();
    assert_eq!(observable(&loaded.index), observable(&ix));
    std::fs::write(&path, &file[..file.len() - 1]).unwrap();
    assert!(MailboxIndex::read_file(&path).is_err());
}
