//! POP3 UIDLs that a migration stored in `dovecot-uidlist`: the `P` field of a message's record
//! (Dovecot's `MAILDIR_UIDLIST_REC_EXT_POP3_UIDL`). The index keeps each record's extension
//! fields beside the file name, so this reads no file.

use mail_types::Uid;

use super::mailbox::MaildirMailbox;
use super::state::Location;
use super::uidlist;

impl MaildirMailbox {
    /// The UIDL stored for `uid`, if its uidlist record has a non-empty `P` field.
    pub fn uidlist_pop3_uidl(&self, uid: Uid) -> Option<String> {
        let st = self.lock();
        let rec = st.index.get(uid)?;
        let loc = Location::decode(rec.backend())?;
        uidlist::ext_value(loc.ext, b'P')
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use mail_types::{MailboxName, Uid};

    use crate::MailStore;
    use crate::maildir::MaildirStore;

    #[test]
    fn uidls_from_the_uidlist_p_field() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("Maildir");
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        for name in ["1000.M1P1.h,S=6,W=7:2,", "1001.M1P1.h,S=6,W=7:2,S"] {
            std::fs::write(root.join("cur").join(name), "a: b\n\n").unwrap();
        }
        std::fs::write(
            root.join("dovecot-uidlist"),
            "3 V1234 N3 G0123456789abcdef0123456789abcdef\n\
             1 W7 Pold-server-uidl-1 :1000.M1P1.h,S=6,W=7\n\
             2 W7 :1001.M1P1.h,S=6,W=7\n",
        )
        .unwrap();
        let store = MaildirStore::new(root).unwrap();
        let inbox = store.open(&MailboxName::inbox()).unwrap();
        let uid = |n| Uid::new(n).unwrap();
        assert_eq!(
            inbox.stored_uidl(uid(1)).as_deref(),
            Some("old-server-uidl-1")
        );
        assert_eq!(inbox.stored_uidl(uid(2)), None);
        assert_eq!(inbox.stored_uidl(uid(3)), None);
    }
}
