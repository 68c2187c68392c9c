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
const RECORDS_LEN_AT: usize = 8 + 4 * 4 + 8 * 2 + 4 * 4;
const BACKEND_BYTES_AT: usize = RECORDS_LEN_AT + 16;

/// `file` (a valid index file with no expunges) with its records replaced by `count` records
/// coded as `section`, whose references add up to `backend_bytes`; checksums fixed.
fn with_records(file: &[u8], count: u32, section: &[u8], backend_bytes: u64) -> Vec<u8> {
    let ix = MailboxIndex::from_file_bytes(file).unwrap();
    assert!(ix.index.expunges.is_empty());
    let records_len =
        u64::from_le_bytes(file[RECORDS_LEN_AT..RECORDS_LEN_AT + 8].try_into().unwrap());
    let records_start = file.len() - TRAILER_SIZE - records_len as usize;
    let mut out = file[..records_start].to_vec();
    out.extend_from_slice(section);
    out.extend_from_slice(&file[file.len() - TRAILER_SIZE..]);
    out[RECORD_COUNT_AT..RECORD_COUNT_AT + 4].copy_from_slice(&count.to_le_bytes());
    out[RECORDS_LEN_AT..RECORDS_LEN_AT + 8].copy_from_slice(&(section.len() as u64).to_le_bytes());
    out[BACKEND_BYTES_AT..BACKEND_BYTES_AT + 8].copy_from_slice(&backend_bytes.to_le_bytes());
    fix_index_checksums(&mut out);
    out
}

/// A file whose checksums are right but whose content is inconsistent or not written the one
/// way the writer writes it: the structural checks catch it (a bug or a hostile writer, not
/// bit rot).
#[test]
fn inconsistent_content_with_valid_checksums_is_rejected() {
    let mut ix = MailboxIndex::new(UidValidity::new(77).unwrap());
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
    let file = ix.to_file_bytes(b"");
    // Each record: head1, head2 (uid and created are the previous + 1), then the reference:
    // structure 3 (one text token), mask 0, length 1, "x".
    let x = [3u8, 0, 1, b'x'];
    let rec = |h1: u8, h2: u8, fields: &[u8], name: &[u8]| {
        let mut v = vec![h1, h2];
        v.extend_from_slice(fields);
        v.extend_from_slice(name);
        v
    };
    let good = rec(0, H2_UID_NEXT | H2_CREATED_NEXT, &[], &x);
    assert!(MailboxIndex::from_file_bytes(&with_records(&file, 1, &good, 1)).is_ok());
    let cases: Vec<(&str, Vec<u8>, u64)> = vec![
        ("unknown header bits", rec(0, 0x43, &[], &x), 1),
        (
            "UID at or above UIDNEXT",
            rec(0, 0x02, &[0xe7, 0x07], &x),
            1,
        ),
        (
            "keywords written as none",
            rec(H1_KEYWORDS, 0x03, &[0], &x),
            1,
        ),
        (
            "keyword without a name",
            rec(H1_KEYWORDS, 0x03, &[2], &x),
            1,
        ),
        (
            "modseq written as created",
            rec(H1_MODSEQ, 0x03, &[0], &x),
            1,
        ),
        ("modseq above highest", rec(H1_MODSEQ, 0x03, &[0x7e], &x), 1),
        ("created above modseq", rec(H1_MODSEQ, 0x03, &[0x01], &x), 1),
        ("created written as the next", rec(0, 0x01, &[0], &x), 1),
        ("overlong varint", rec(0, 0x02, &[0x80, 0x00], &x), 1),
        (
            "size written as unknown",
            rec(
                0,
                0x0b,
                &[0xff; 9].iter().copied().chain([1]).collect::<Vec<_>>(),
                &x,
            ),
            1,
        ),
        (
            "reference with a number in its text",
            rec(0, 0x03, &[], &[3, 0, 2, b'x', b'5']),
            2,
        ),
        (
            "reference written whole",
            rec(0, 0x03, &[], &[0, 1, b'x']),
            1,
        ),
        (
            "reference reusing nothing",
            rec(0, 0x13, &[], &[1, b'x']),
            1,
        ),
        (
            "reference mask with unused bits",
            rec(0, 0x03, &[], &[3, 2, 1, b'x']),
            1,
        ),
        (
            "reference predicting nothing",
            rec(0, 0x03, &[], &[3, 1]),
            1,
        ),
        ("reference longer than declared", good.clone(), 0),
        ("reference shorter than declared", good.clone(), 2),
        ("trailing bytes", [&good[..], &[0]].concat(), 1),
    ];
    for (what, section, backend) in cases {
        let result = MailboxIndex::from_file_bytes(&with_records(&file, 1, &section, backend));
        assert!(
            matches!(
                result,
                Err(IndexFileError::Record { index: 0, .. } | IndexFileError::Header(_))
            ),
            "{what}: {result:?}"
        );
    }
    // A second record beyond UIDNEXT (one that does not ascend cannot be written at all).
    let two = [good.clone(), rec(0, 0x02, &[0xe6, 0x07], &[1, 0])].concat();
    let result = MailboxIndex::from_file_bytes(&with_records(&file, 2, &two, 2));
    assert!(
        matches!(result, Err(IndexFileError::Record { index: 1, .. })),
        "{result:?}"
    );
    // A huge declared count with a matching header checksum is refused before allocating.
    let mut huge = file.clone();
    huge[RECORD_COUNT_AT..RECORD_COUNT_AT + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    fix_index_checksums(&mut huge);
    assert!(matches!(
        MailboxIndex::from_file_bytes(&huge),
        Err(IndexFileError::Header(_))
    ));
    // References declared far longer than their records could code is refused before
    // decoding (a small file must not make the reader allocate gigabytes).
    let result = MailboxIndex::from_file_bytes(&with_records(&file, 1, &good, 64 * 6 + 1));
    assert!(
        matches!(
            result,
            Err(IndexFileError::Header(
                "backend references too long for their records"
            ))
        ),
        "{result:?}"
    );
    let mut long = file.clone();
    long[RECORDS_LEN_AT..RECORDS_LEN_AT + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    fix_index_checksums(&mut long);
    assert!(matches!(
        MailboxIndex::from_file_bytes(&long),
        Err(IndexFileError::Size { .. })
    ));
}

/// A file of the previous format (fixed-size records) is refused by its version, which the
/// backends treat as a missing index: rebuilt from the mail files.
#[test]
fn version_1_files_are_refused_by_version() {
    let mut old = sample(10).to_file_bytes(b"");
    old[8..12].copy_from_slice(&1u32.to_le_bytes());
    fix_index_checksums(&mut old);
    assert!(matches!(
        MailboxIndex::from_file_bytes(&old),
        Err(IndexFileError::Version(1))
    ));
}

/// Maildir-like names shrink to a fraction: the point of this format.
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
        bytes.len() < n as usize * 16,
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
    /// read (the fuzz target's property).
    #[test]
    fn changed_files_are_refused_or_canonical(n in 0u32..30, changes in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        let mut bytes = sample(n).to_file_bytes(b"st");
        for (at, v) in changes {
            let at = HEADER_SIZE + at % (bytes.len() - HEADER_SIZE - TRAILER_SIZE);
            bytes[at] = v;
        }
        fix_index_checksums(&mut bytes);
        if let Ok(loaded) = MailboxIndex::from_file_bytes(&bytes) {
            prop_assert_eq!(loaded.index.to_file_bytes(&loaded.backend_state), bytes);
        }
    }

    /// Arbitrary bytes never panic the reader.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = MailboxIndex::from_file_bytes(&bytes);
    }
}
