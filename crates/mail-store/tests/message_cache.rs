//! The Maildir store's cache of derived values: kept across reopening, dropped with expunged
//! messages, rebuilt when damaged, and never served for another UIDVALIDITY.

use std::sync::Arc;

use mail_store::maildir::MaildirStore;
use mail_store::{CacheField, FlagChange, MailStore, Mailbox};
use mail_types::{Flags, MailboxName, SystemFlags, Uid};

fn append(mb: &Arc<dyn Mailbox>, text: &str) -> Uid {
    let mut w = mb.begin_append().unwrap();
    w.write(text.as_bytes()).unwrap();
    w.commit(Flags::default(), None).unwrap()
}

/// Opens INBOX as a restarted process would: nothing kept in memory from earlier opens.
fn open(root: &std::path::Path) -> Arc<dyn Mailbox> {
    mail_store::maildir::release_idle_mailboxes(root);
    MaildirStore::new(root.to_owned())
        .unwrap()
        .open(&MailboxName::inbox())
        .unwrap()
}

#[test]
fn cached_values_survive_reopening_and_go_with_expunges() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("Maildir");
    let (one, two) = {
        let inbox = open(&root);
        let one = append(&inbox, "Subject: one\r\n\r\nbody\r\n");
        let two = append(&inbox, "Subject: two\r\n\r\nbody\r\n");
        assert_eq!(inbox.cached(one, CacheField::Envelope), None);
        inbox.cache(one, CacheField::Envelope, b"(envelope one)");
        inbox.cache(two, CacheField::BodyStructure, b"(structure two)");
        assert_eq!(
            inbox.cached(one, CacheField::Envelope).as_deref(),
            Some(&b"(envelope one)"[..])
        );
        assert_eq!(inbox.cached(one, CacheField::BodyStructure), None);
        (one, two)
    };
    // Every handle is gone, so this is a fresh open, as after a restart.
    let inbox = open(&root);
    assert_eq!(
        inbox.cached(one, CacheField::Envelope).as_deref(),
        Some(&b"(envelope one)"[..])
    );
    assert_eq!(
        inbox.cached(two, CacheField::BodyStructure).as_deref(),
        Some(&b"(structure two)"[..])
    );
    inbox
        .store_flags(
            &[one],
            &FlagChange::Add(Flags::new(SystemFlags::DELETED, [])),
        )
        .unwrap();
    assert_eq!(inbox.expunge(None).unwrap(), vec![one]);
    assert_eq!(inbox.cached(one, CacheField::Envelope), None);
    drop(inbox);
    let inbox = open(&root);
    assert_eq!(inbox.cached(one, CacheField::Envelope), None);
    assert_eq!(
        inbox.cached(two, CacheField::BodyStructure).as_deref(),
        Some(&b"(structure two)"[..])
    );
}

#[test]
fn a_damaged_cache_file_is_rebuilt_and_mail_is_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("Maildir");
    let uid = {
        let inbox = open(&root);
        let uid = append(&inbox, "Subject: kept\r\n\r\nbody\r\n");
        inbox.cache(uid, CacheField::Envelope, b"(envelope)");
        uid
    };
    let cache = root.join("columba.index.cache");
    for damage in [vec![0u8; 64], b"garbage".to_vec(), Vec::new()] {
        std::fs::write(&cache, &damage).unwrap();
        let inbox = open(&root);
        assert_eq!(inbox.cached(uid, CacheField::Envelope), None);
        assert_eq!(
            inbox.read_message(uid).unwrap(),
            b"Subject: kept\r\n\r\nbody\r\n"
        );
        inbox.cache(uid, CacheField::Envelope, b"(again)");
        assert_eq!(
            inbox.cached(uid, CacheField::Envelope).as_deref(),
            Some(&b"(again)"[..])
        );
    }
}

#[test]
fn a_new_uidvalidity_empties_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("Maildir");
    let uid = {
        let inbox = open(&root);
        let uid = append(&inbox, "Subject: a\r\n\r\nbody\r\n");
        inbox.cache(uid, CacheField::Envelope, b"(old)");
        uid
    };
    // Losing dovecot-uidlist and our index means new UIDs under a new UIDVALIDITY: old values
    // must not leak. (Released first: closing saves the index.)
    mail_store::maildir::release_idle_mailboxes(&root);
    std::fs::remove_file(root.join("dovecot-uidlist")).unwrap();
    std::fs::remove_file(root.join("columba.index")).unwrap();
    let inbox = open(&root);
    let uid_now = inbox.snapshot(false).unwrap().messages[0].uid;
    assert_eq!(inbox.cached(uid_now, CacheField::Envelope), None);
    assert_eq!(inbox.cached(uid, CacheField::Envelope), None);
}
