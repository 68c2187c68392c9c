//! Helpers the unit tests of several modules share.

use mail_types::{Flags, ModSeq, Uid};

use crate::{MailboxIndex, NewRecord, Op};

/// Appends a message with no flags, date or size, as a test that cares only for UIDs needs.
pub(crate) fn append_bare(
    ix: &mut MailboxIndex,
    uid: u32,
    recent: bool,
    backend: &[u8],
) -> Option<ModSeq> {
    ix.apply(Op::Append(NewRecord {
        uid: Uid::new(uid).unwrap(),
        flags: &Flags::default(),
        internal_date: None,
        size: None,
        recent,
        backend,
    }))
    .unwrap()
}

/// Everything observable of an index, to compare a loaded or replayed one with the original.
pub(crate) fn observable(ix: &MailboxIndex) -> String {
    let mut out = format!(
        "{:?} kw={:?} recent={:?}\n",
        ix.header(),
        ix.keywords(),
        ix.unclaimed_recent()
    );
    for r in ix.records() {
        out.push_str(&format!(
            "{:?} {:?} {:?} {:?}\n",
            r.snapshot(),
            r.internal_date(),
            r.size(),
            String::from_utf8_lossy(r.backend())
        ));
    }
    out.push_str(&format!("{:?}\n", ix.changes_since(0)));
    out.push_str(&format!("{:?}", ix.expunged_since(3)));
    out
}
