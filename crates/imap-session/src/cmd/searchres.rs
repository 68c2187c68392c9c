//! SEARCHRES (RFC 5182): `SEARCH RETURN (SAVE)` keeps its result in the selected mailbox's
//! state, and `$` names it in later commands. The result is kept as UIDs, so an EXPUNGE simply
//! makes its message drop out (2.1: "automatically removed from the list") and `$` can mean
//! sequence numbers or UIDs, whichever the later command takes.

use imap_proto::{MessageSet, SearchReturn};
use mail_store::MailboxView;
use mail_store::view::InvalidSeq;
use mail_types::{SeqNum, Uid, UidRuns};

use crate::session::Session;

/// The messages a command's message set names, ascending, as (sequence number, UID): the
/// numbers as written (see [`MailboxView::resolve`]), or for `$` the saved messages still in
/// the view. An empty `$` is "a valid, but non-matching list" (RFC 5182 2.1): no messages, no
/// error.
pub(crate) fn resolve(
    view: &MailboxView,
    saved: &[Uid],
    set: &MessageSet,
    by_uid: bool,
) -> Result<Vec<(SeqNum, Uid)>, InvalidSeq> {
    match set {
        MessageSet::Numbers(numbers) => view.resolve(numbers, by_uid),
        MessageSet::SavedResult => Ok(saved
            .iter()
            .filter_map(|&uid| view.seq_of(uid).map(|seq| (seq, uid)))
            .collect()),
    }
}

/// A UID message set as sorted, merged inclusive ranges (`max_uid` is what `*` means).
pub(crate) fn uid_ranges(set: &MessageSet, saved: &[Uid], max_uid: u32) -> Vec<(u32, u32)> {
    match set {
        MessageSet::Numbers(numbers) => numbers.normalized(max_uid),
        MessageSet::SavedResult => {
            let mut sorted = saved.to_vec();
            sorted.sort_unstable();
            UidRuns::from_ascending(sorted).runs().to_vec()
        }
    }
}

/// What `$` holds after a SEARCH or SORT with SAVE (RFC 5182 2.4): with only MIN and/or MAX
/// beside SAVE, just those messages; otherwise every message found. `found` is in result order
/// (ascending for SEARCH, sort order for SORT), whose first and last are what MIN and MAX report.
pub(crate) fn saved_value(options: &[SearchReturn], found: &[Uid]) -> Vec<Uid> {
    let everything = options
        .iter()
        .any(|o| matches!(o, SearchReturn::All | SearchReturn::Count))
        || !options
            .iter()
            .any(|o| matches!(o, SearchReturn::Min | SearchReturn::Max));
    let mut kept: Vec<Uid> = if everything {
        found.to_vec()
    } else {
        let min = options.contains(&SearchReturn::Min).then(|| found.first());
        let max = options.contains(&SearchReturn::Max).then(|| found.last());
        min.flatten()
            .into_iter()
            .chain(max.flatten())
            .copied()
            .collect()
    };
    kept.sort_unstable();
    kept.dedup();
    kept
}

/// True when SAVE is the only return option that could return anything: the result is kept
/// and nothing is returned (RFC 9051 6.4.4.1: no ESEARCH response then). CONTEXT and UPDATE
/// beside it ask for no data (RFC 5267 4.2, 4.3).
pub(crate) fn only_saves(options: &[SearchReturn]) -> bool {
    options.contains(&SearchReturn::Save) && !options.iter().any(crate::cmd::search::returns_data)
}

impl Session {
    /// Keeps a SEARCH or SORT result for `$` when the command asked for SAVE: `found` (UIDs in
    /// result order) on success, `None` for a command that failed with NO, which empties `$`
    /// (RFC 5182 2.1). Commands without SAVE leave `$` alone.
    pub(crate) fn save_search_result(
        &mut self,
        returns: Option<&[SearchReturn]>,
        found: Option<&[Uid]>,
    ) {
        let Some(options) = returns.filter(|o| o.contains(&SearchReturn::Save)) else {
            return;
        };
        self.saved_result = found.map_or_else(Vec::new, |f| saved_value(options, f));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uids(v: &[u32]) -> Vec<Uid> {
        v.iter().filter_map(|&n| Uid::new(n)).collect()
    }

    /// RFC 5182 2.4's table, with the result order of a SORT (not ascending).
    #[test]
    fn saved_value_follows_the_return_options() {
        use SearchReturn::*;
        let found = uids(&[21, 2, 10, 11, 15]);
        assert_eq!(saved_value(&[Save], &found), uids(&[2, 10, 11, 15, 21]));
        assert_eq!(saved_value(&[Save, Min], &found), uids(&[21]));
        assert_eq!(saved_value(&[Max, Save], &found), uids(&[15]));
        assert_eq!(saved_value(&[Max, Save, Min], &found), uids(&[15, 21]));
        assert_eq!(
            saved_value(&[Max, Save, Min, Count], &found),
            uids(&[2, 10, 11, 15, 21])
        );
        assert_eq!(
            saved_value(&[All, Save, Min], &found),
            uids(&[2, 10, 11, 15, 21])
        );
        assert_eq!(saved_value(&[Save, Min, Max], &[]), Vec::<Uid>::new());
    }

    #[test]
    fn only_save_returns_nothing() {
        use SearchReturn::*;
        assert!(only_saves(&[Save]));
        assert!(!only_saves(&[Save, Count]));
        assert!(!only_saves(&[]));
        assert!(only_saves(&[Update, Save, Context]));
        assert!(!only_saves(&[Update]));
    }
}
