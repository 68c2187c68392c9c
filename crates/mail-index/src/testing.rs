//! Helpers the unit tests of several modules share.

use crate::MailboxIndex;

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
