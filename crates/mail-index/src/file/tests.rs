use mail_types::{Flags, ModSeq, Uid};
use proptest::prelude::*;

use super::*;
use crate::testing::observable;
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
        ix.apply(Op::Append(NewRecord {
            uid: Uid::new(1000).unwrap(),
            flags: &Flags::default(),
            internal_date: None,
            size: None,
            recent: true,
            backend: b"new",
        }))
        .unwrap();
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

/// A file whose checksums are right but whose content is inconsistent: the structural checks
/// catch it (a bug or a hostile writer, not bit rot).
#[test]
fn inconsistent_content_with_valid_checksums_is_rejected() {
    let bytes = sample(10).to_file_bytes(b"");
    let first_record = HEADER_SIZE + 1 + "$Junk".len();
    let cases: [(&str, usize, &[u8]); 5] = [
        ("UIDs not ascending", first_record, &5000u32.to_le_bytes()),
        ("UID zero", first_record, &0u32.to_le_bytes()),
        ("unknown system flag bits", first_record + 4, &[0x40]),
        ("unknown state bits", first_record + 5, &[0x02]),
        (
            "modseq above highest",
            first_record + 14,
            &u64::MAX.to_le_bytes(),
        ),
    ];
    for (what, at, patch) in cases {
        let mut bad = bytes.clone();
        bad[at..at + patch.len()].copy_from_slice(patch);
        let body_end = bad.len() - TRAILER_SIZE;
        let crc = crc32c::crc32c(&bad[HEADER_SIZE..body_end]);
        bad[body_end..body_end + 4].copy_from_slice(&crc.to_le_bytes());
        let result = MailboxIndex::from_file_bytes(&bad);
        assert!(
            matches!(result, Err(IndexFileError::Record { index: 0, .. })),
            "{what}: {result:?}"
        );
    }
    // A huge declared count with a matching header checksum is refused before allocating.
    let mut huge = bytes.clone();
    huge[8 + 4 + 8..8 + 4 + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    let crc = crc32c::crc32c(&huge[..HEADER_SIZE - 4]);
    huge[HEADER_SIZE - 4..HEADER_SIZE].copy_from_slice(&crc.to_le_bytes());
    assert!(matches!(
        MailboxIndex::from_file_bytes(&huge),
        Err(IndexFileError::Size { .. })
    ));
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

    /// Arbitrary bytes never panic the reader.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = MailboxIndex::from_file_bytes(&bytes);
    }
}
