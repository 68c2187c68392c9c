//! A Maildir that Courier-IMAP served (`courierimapuiddb`, no `dovecot-uidlist`) opens with
//! Courier's UIDVALIDITY and UIDs, as Dovecot takes such a tree over, and from then on has a
//! `dovecot-uidlist` that says the same; its `courierimapsubscribed` names stay subscribed.

use mail_store::MailStore;
use mail_store::maildir::MaildirStore;
use mail_types::{MailboxName, SystemFlags};

#[test]
fn courier_uids_and_uidvalidity_carry_over() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    let message = |subject: &str| format!("Subject: {subject}\n\nbody\n");
    std::fs::write(root.join("cur/1600000001.M1P1.host:2,S"), message("one")).unwrap();
    std::fs::write(root.join("cur/1600000002.M2P1.host:2,F"), message("two")).unwrap();
    std::fs::write(root.join("new/1600000003.M3P1.host"), message("three")).unwrap();
    // Courier's file: version 1, UIDVALIDITY 1234567, next UID 40; the third message arrived
    // after Courier last looked.
    std::fs::write(
        root.join("courierimapuiddb"),
        "1 1234567 40\n7 1600000001.M1P1.host\n31 1600000002.M2P1.host\n",
    )
    .unwrap();

    let store = MaildirStore::new(root.clone()).unwrap();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    assert_eq!(inbox.uid_validity().get(), 1_234_567);
    let snapshot = inbox.snapshot(false).unwrap();
    let found: Vec<(u32, bool, bool)> = snapshot
        .messages
        .iter()
        .map(|m| {
            let sys = m.flags.system;
            (
                m.uid.get(),
                sys.contains(SystemFlags::SEEN),
                sys.contains(SystemFlags::FLAGGED),
            )
        })
        .collect();
    assert_eq!(
        found,
        [(7, true, false), (31, false, true), (40, false, false)]
    );

    let uidlist = std::fs::read_to_string(root.join("dovecot-uidlist")).unwrap();
    let header = uidlist.lines().next().unwrap();
    assert!(header.starts_with("3 V1234567 N41"), "{uidlist}");
    let uid_of = |base: &str| {
        uidlist
            .lines()
            .find(|l| l.ends_with(&format!(":{base}")))
            .and_then(|l| l.split(' ').next())
            .map(str::to_owned)
    };
    assert_eq!(
        uid_of("1600000001.M1P1.host").as_deref(),
        Some("7"),
        "{uidlist}"
    );
    assert_eq!(
        uid_of("1600000003.M3P1.host").as_deref(),
        Some("40"),
        "{uidlist}"
    );
    // Courier's own file is left for Courier.
    assert!(root.join("courierimapuiddb").exists());
}

#[test]
fn courier_subscriptions_carry_over() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("Maildir");
    for dir in ["", ".Sent", ".Lists.rust"] {
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(root.join(dir).join(sub)).unwrap();
        }
    }
    std::fs::write(
        root.join("courierimapsubscribed"),
        "INBOX\nINBOX.Sent\nINBOX.Lists.rust\n",
    )
    .unwrap();
    let store = MaildirStore::new(root.clone()).unwrap();
    let names = |store: &MaildirStore| -> Vec<String> {
        store
            .subscriptions()
            .unwrap()
            .iter()
            .map(|n| n.as_str().to_owned())
            .collect()
    };
    assert_eq!(names(&store), ["INBOX", "Sent", "Lists/rust"]);
    // A change writes them into Columba's (Dovecot's) own file, with the change.
    store
        .set_subscribed(&MailboxName::new("Sent").unwrap(), false)
        .unwrap();
    assert_eq!(names(&store), ["INBOX", "Lists/rust"]);
    let ours = std::fs::read_to_string(root.join("subscriptions")).unwrap();
    assert!(ours.contains("Lists\trust"), "{ours:?}");
}
