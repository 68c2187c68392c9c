//! Helpers the unit tests of both backends share.

use mail_types::{Flags, Uid};

use crate::Mailbox;

/// Asserts that `mailbox` holds exactly the messages of `want` — UID, flags, body — in order.
pub(crate) fn assert_holds(mailbox: &dyn Mailbox, want: &[(Uid, Flags, String)]) {
    let got: Vec<(Uid, Flags)> = mailbox
        .snapshot(false)
        .unwrap()
        .messages
        .iter()
        .map(|m| (m.uid, m.flags.clone()))
        .collect();
    let expected: Vec<(Uid, Flags)> = want.iter().map(|(u, f, _)| (*u, f.clone())).collect();
    assert_eq!(got, expected);
    for (u, _, body) in want {
        assert_eq!(
            mailbox.read_message(*u).unwrap(),
            body.as_bytes(),
            "UID {u}"
        );
    }
}
