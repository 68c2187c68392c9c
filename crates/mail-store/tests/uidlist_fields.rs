//! `dovecot-uidlist` extension fields survive Columba (issue 7): the record fields Dovecot
//! writes (`W` virtual size, `S` physical size, `G` GUID, `P` POP3 UIDL, `O` POP3 order — see
//! Dovecot's `maildir-uidlist.h`, `enum maildir_uidlist_rec_ext_key`) and any other capital
//! letter a newer Dovecot may add (`M`, `X`...) stay exactly as written on every surviving
//! record, whether Columba appends to the file or rewrites it, and so do unknown header fields.

use std::fs;
use std::path::Path;

use mail_store::maildir::{MaildirStore, release_idle_mailboxes};
use mail_store::{FlagChange, MailStore, Mailbox};
use mail_types::{Flags, MailboxName, SystemFlags, Uid};

const GUID: &str = "0123456789abcdef0123456789abcdef";

/// Messages 1..=8, each record with its own mix of fields, as a Dovecot that migrated POP3
/// UIDLs (P, O) and keeps sizes and GUIDs would write them.
fn records() -> Vec<(u32, String, String)> {
    (1..=8)
        .map(|n| {
            let base = format!("16000000{n:02}.M{n}P1.host");
            let ext = match n % 4 {
                0 => format!("W{} S{} G{GUID}", 100 + n, 98 + n),
                1 => format!("P+2Bold+22uidl{n} O{n} W{}", 100 + n),
                2 => format!("M{n}x Xfuture-{n} Pxyz{n}"),
                _ => String::new(),
            };
            (n, ext, base)
        })
        .collect()
}

fn write_tree(root: &Path) {
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(root.join(sub)).unwrap();
    }
    let mut uidlist = format!("3 V1700000000 N9 G{GUID} Zheader-field Q7\n");
    for (uid, ext, base) in records() {
        fs::write(
            root.join("cur").join(format!("{base}:2,S")),
            "Subject: x\n\nbody\n",
        )
        .unwrap();
        if ext.is_empty() {
            uidlist.push_str(&format!("{uid} :{base}\n"));
        } else {
            uidlist.push_str(&format!("{uid} {ext} :{base}\n"));
        }
    }
    fs::write(root.join("dovecot-uidlist"), uidlist).unwrap();
}

/// The record line of each listed UID, by UID.
fn lines(root: &Path) -> (String, Vec<(u32, String)>) {
    let text = fs::read_to_string(root.join("dovecot-uidlist")).unwrap();
    let mut it = text.lines();
    let header = it.next().unwrap().to_owned();
    let recs = it
        .map(|l| (l.split(' ').next().unwrap().parse().unwrap(), l.to_owned()))
        .collect();
    (header, recs)
}

fn append(inbox: &dyn Mailbox) -> Uid {
    let mut w = inbox.begin_append().unwrap();
    w.write(b"Subject: new\r\n\r\nnew\r\n").unwrap();
    w.commit(Flags::new(SystemFlags::empty(), []), None)
        .unwrap()
}

fn expunge(inbox: &dyn Mailbox, uids: &[u32]) {
    let uids: Vec<Uid> = uids.iter().map(|&u| Uid::new(u).unwrap()).collect();
    let deleted = FlagChange::Add(Flags::new(SystemFlags::DELETED, []));
    inbox.store_flags(&uids, &deleted).unwrap();
    assert_eq!(inbox.expunge(Some(&uids)).unwrap(), uids);
}

/// Every surviving original record is still the line Dovecot wrote, and the header keeps its
/// unknown fields. Records of the `gone` messages may stay until the file is next rewritten
/// (as in Dovecot), unchanged; `rewritten` says that must have happened.
fn assert_fields_kept(root: &Path, gone: &[u32], rewritten: bool) {
    let (header, recs) = lines(root);
    assert!(
        header.starts_with("3 V1700000000 ") && header.ends_with(" Zheader-field Q7"),
        "{header}"
    );
    assert!(header.contains(&format!(" G{GUID}")), "{header}");
    for (uid, ext, base) in records() {
        let line = recs
            .iter()
            .find(|(u, _)| *u == uid)
            .map(|(_, l)| l.as_str());
        if gone.contains(&uid) && (rewritten || line.is_none()) {
            assert_eq!(line, None, "UID {uid} was expunged");
            continue;
        }
        let want = if ext.is_empty() {
            format!("{uid} :{base}")
        } else {
            format!("{uid} {ext} :{base}")
        };
        assert_eq!(line, Some(want.as_str()));
    }
}

#[test]
fn extension_fields_survive_appends_expunges_and_rewrites() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("Maildir");
    write_tree(&root);
    let store = MaildirStore::new(root.clone()).unwrap();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    assert_eq!(
        inbox.stored_uidl(Uid::new(1).unwrap()).as_deref(),
        Some("+2Bold+22uidl1")
    );
    assert_eq!(
        inbox.stored_uidl(Uid::new(2).unwrap()).as_deref(),
        Some("xyz2")
    );

    // Appends go at the end of the file: the old lines are untouched.
    let first = append(&*inbox);
    assert_eq!(first.get(), 9);
    assert_fields_kept(&root, &[], false);
    // Flag changes rename files; the records keep their fields.
    let seen_off = FlagChange::Remove(Flags::new(SystemFlags::SEEN, []));
    let all: Vec<Uid> = (1..=8).map(|u| Uid::new(u).unwrap()).collect();
    inbox.store_flags(&all, &seen_off).unwrap();
    // Expunges: the file is rewritten once enough of it is dead weight.
    expunge(&*inbox, &[3]);
    append(&*inbox);
    expunge(&*inbox, &[6, 7]);
    append(&*inbox);
    assert_fields_kept(&root, &[3, 6, 7], true);
    // A cold restart reads the fields back from the file and keeps them on the next rewrite.
    drop(inbox);
    drop(store);
    release_idle_mailboxes(&root);
    fs::remove_file(root.join("columba.index")).unwrap();
    let store = MaildirStore::new(root.clone()).unwrap();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    expunge(&*inbox, &[2, 4]);
    append(&*inbox);
    assert_fields_kept(&root, &[2, 3, 4, 6, 7], false);
    assert_eq!(
        inbox.stored_uidl(Uid::new(5).unwrap()).as_deref(),
        Some("+2Bold+22uidl5")
    );
}

#[test]
fn a_damaged_file_is_rewritten_with_the_fields_of_its_good_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("Maildir");
    write_tree(&root);
    // A torn last line forces a rewrite instead of an append.
    let mut text = fs::read_to_string(root.join("dovecot-uidlist")).unwrap();
    text.push_str("12 W5 :torn");
    fs::write(root.join("dovecot-uidlist"), text).unwrap();
    let store = MaildirStore::new(root.clone()).unwrap();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    let uid = append(&*inbox);
    // The torn line's UID is never handed out again.
    assert!(uid.get() > 12, "{uid}");
    assert_fields_kept(&root, &[], true);
    assert!(
        !fs::read_to_string(root.join("dovecot-uidlist"))
            .unwrap()
            .contains("torn")
    );
}
