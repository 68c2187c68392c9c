//! CONTEXT=SEARCH (RFC 5267 4): `SEARCH RETURN (UPDATE)` keeps a search alive while the mailbox
//! stays selected, and the session tells the client how its result changes with
//! `* ESEARCH (TAG "t") [UID] ADDTO (0 set)` and `REMOVEFROM (0 set)`; CANCELUPDATE ends that.
//!
//! A context keeps its result as UIDs and the highest mod-sequence it has looked at. Every
//! change to a message (arrival, flag change) gives it a new mod-sequence, so bringing a
//! context up to date re-checks only the messages above that mark and drops the expunged ones:
//! a quiet mailbox costs nothing, a busy one the messages that changed. The search keys that
//! depend on the moment of the command — message numbers, `*`, `$` — are turned into the UIDs
//! they named then ("evaluated at the time the command is received", 4.3), so a later change
//! of numbering never moves the result. OLDER and YOUNGER (RFC 5032) are re-checked only for
//! messages that change; time passing alone sends no update.
//!
//! Updates are written around the view's own untagged responses as 4.3.3 and 4.3.4 require:
//! REMOVEFROM before the EXPUNGE that removes a message (with the numbers valid then), ADDTO
//! after the EXISTS that announces one. Contexts are for SEARCH and UID SEARCH; CONTEXT=SORT is
//! not offered, so a SORT asking for UPDATE gets `NO [NOUPDATE]` (4.3.1) and its result.

use imap_proto::response::{Code, Status, status_line};
use imap_proto::{SearchKey, SearchReturn, Tag};
use mail_store::{MailboxView, ViewEvent};
use mail_types::{SeqSet, Uid};

use crate::cmd::search::matching_where;
use crate::session::{Reply, Session, State};

/// Update contexts one session may hold; RFC 5267 4.3.1 asks for at least one.
pub(crate) const MAX_CONTEXTS: usize = 16;

/// One `SEARCH RETURN (UPDATE)` still being kept up to date.
#[derive(Debug)]
pub(crate) struct SearchContext {
    tag: String,
    /// UID SEARCH: updates carry UIDs; otherwise message numbers.
    uid: bool,
    /// The keys with every moment-bound set replaced by the UIDs it named.
    criteria: SearchKey,
    /// Matching UIDs, ascending.
    results: Vec<Uid>,
    /// Messages with a mod-sequence up to this have been checked.
    checked_modseq: u64,
}

/// What the contexts have to say about one sync, written around its untagged responses.
#[derive(Default)]
pub(crate) struct ContextUpdates {
    /// REMOVEFROM lines, numbered as before the sync: written first.
    pub before: Vec<u8>,
    /// ADDTO lines, numbered as after it: written last.
    pub after: Vec<u8>,
}

impl Session {
    /// Starts keeping `found` (ascending UIDs) up to date for the SEARCH tagged `tag`; when the
    /// session holds too many contexts, writes an untagged `NO [NOUPDATE]` instead (4.3.1). The
    /// caller has refused a tag already in use ([`Session::context_tag_in_use`]).
    pub(crate) fn start_search_context(
        &mut self,
        tag: &Tag,
        uid: bool,
        criteria: &SearchKey,
        found: &[Uid],
    ) {
        if self.search_contexts.len() >= MAX_CONTEXTS {
            refuse_update(&mut self.out, tag, "Too many search contexts.");
            return;
        }
        let State::Selected(_, selected) = &self.state else {
            return;
        };
        let view = &selected.view;
        self.search_contexts.push(SearchContext {
            tag: tag.0.clone(),
            uid,
            criteria: freeze(criteria, view, &self.saved_result),
            results: found.to_vec(),
            checked_modseq: view.highest_modseq().get(),
        });
    }

    /// RFC 5267 4.3: a second UPDATE under the tag of a live context is refused.
    pub(crate) fn context_tag_in_use(&self, tag: &Tag) -> bool {
        self.search_contexts.iter().any(|c| c.tag == tag.0)
    }

    /// CANCELUPDATE (RFC 5267 4.3.5): no more updates for the contexts of these tags. A tag
    /// that names no context is the client's mistake, told as BAD (as Dovecot does); none of
    /// the tags is cancelled then.
    pub(crate) fn cmd_cancelupdate(&mut self, tags: &[String]) -> Reply {
        if let Some(unknown) = tags
            .iter()
            .find(|t| !self.search_contexts.iter().any(|c| &c.tag == *t))
        {
            return Reply::bad(format!("Unknown search UPDATE tag {unknown:?}."));
        }
        self.search_contexts.retain(|c| !tags.contains(&c.tag));
        Reply::ok("No further updates.")
    }
}

/// A SORT or THREAD asking for UPDATE, or a context over the limit: the search is answered,
/// but without updates (4.3.1).
pub(crate) fn refuse_update(out: &mut Vec<u8>, tag: &Tag, text: &str) {
    out.extend_from_slice(&status_line(
        None,
        Status::No,
        Some(&Code::NoUpdate(tag.0.clone())),
        text,
    ));
}

/// Whether a command's return options ask for updates.
pub(crate) fn wants_update(returns: Option<&[SearchReturn]>) -> bool {
    returns.is_some_and(|r| r.contains(&SearchReturn::Update))
}

/// Brings every context up to date with `view` after a sync that produced `events`. Every
/// change a context can see (arrival, flag change, expunge) took a mod-sequence, so a context
/// whose mark is the view's HIGHESTMODSEQ has nothing to say and costs nothing.
pub(crate) fn update_contexts(
    contexts: &mut [SearchContext],
    view: &MailboxView,
    saved: &[Uid],
    events: &[ViewEvent],
) -> ContextUpdates {
    let mut updates = ContextUpdates::default();
    let highest = view.highest_modseq().get();
    // The messages this sync's EXPUNGE responses remove, for numbering REMOVEFROM as the
    // client knew the mailbox before them.
    let mut gone: Vec<Uid> = events
        .iter()
        .filter_map(|e| match e {
            ViewEvent::Expunge(_, uid) => Some(*uid),
            _ => None,
        })
        .collect();
    gone.sort_unstable();
    let number_before_sync = |uid: Uid| -> u32 {
        let remaining_below = view.messages().first_at_or_above(uid) as u32;
        let gone_below = gone.partition_point(|g| *g < uid) as u32;
        remaining_below + gone_below + 1
    };
    for ctx in contexts {
        let since = ctx.checked_modseq;
        if highest <= since {
            continue;
        }
        let changed: Vec<Uid> =
            matching_where(view, saved, &ctx.criteria, |m| m.modseq.get() > since)
                .into_iter()
                .map(|(_, m)| m.uid)
                .collect();
        // Messages that left the result: expunged (gone from the view or waiting to be
        // announced), or changed and no longer matching.
        let mut removed = Vec::new();
        let mut kept = Vec::with_capacity(ctx.results.len());
        for &uid in &ctx.results {
            let present = view
                .seq_of(uid)
                .and_then(|seq| view.get(seq))
                .filter(|m| !m.expunged);
            let still = match present {
                None => false,
                Some(m) if m.modseq.get() > since => changed.binary_search(&uid).is_ok(),
                Some(_) => true,
            };
            if still {
                kept.push(uid);
            } else {
                removed.push(uid);
            }
        }
        let added: Vec<Uid> = changed
            .iter()
            .filter(|uid| ctx.results.binary_search(uid).is_err())
            .copied()
            .collect();
        if !removed.is_empty() {
            let numbers = removed.iter().map(|&uid| {
                if ctx.uid {
                    uid.get()
                } else {
                    number_before_sync(uid)
                }
            });
            write_update(&mut updates.before, ctx, "REMOVEFROM", numbers);
        }
        if !added.is_empty() {
            let numbers = added.iter().filter_map(|&uid| {
                if ctx.uid {
                    Some(uid.get())
                } else {
                    view.seq_of(uid).map(|s| s.get())
                }
            });
            write_update(&mut updates.after, ctx, "ADDTO", numbers);
        }
        kept.extend(added);
        kept.sort_unstable();
        ctx.results = kept;
        ctx.checked_modseq = highest;
    }
    updates
}

/// `* ESEARCH (TAG "t") [UID] ADDTO (0 set)`: position 0, the set in mailbox order (4.3.3).
fn write_update(
    out: &mut Vec<u8>,
    ctx: &SearchContext,
    item: &str,
    numbers: impl Iterator<Item = u32>,
) {
    let Some(set) = SeqSet::from_values(numbers) else {
        return;
    };
    let uid = if ctx.uid { " UID" } else { "" };
    out.extend_from_slice(
        format!("* ESEARCH (TAG \"{}\"){uid} {item} (0 {set})\r\n", ctx.tag).as_bytes(),
    );
}

/// The keys with message numbers, `*` and `$` replaced by the UIDs they name in `view` now.
fn freeze(key: &SearchKey, view: &MailboxView, saved: &[Uid]) -> SearchKey {
    // As the search itself reads them: `*` is the last message, numbers past it name nothing.
    let max_seq = view.exists();
    let max_uid = view.messages().last().map_or(0, |m| m.uid.get());
    let uids = |set: &SeqSet, by_uid: bool| -> SearchKey {
        let named = view.messages().iter().enumerate().filter(|(i, m)| {
            let seq = *i as u32 + 1;
            !m.expunged
                && if by_uid {
                    set.contains(m.uid.get(), max_uid)
                } else {
                    set.contains(seq, max_seq)
                }
        });
        uid_key(named.map(|(_, m)| m.uid.get()))
    };
    match key {
        SearchKey::SequenceSet(set) => uids(set, false),
        SearchKey::Uid(set) => uids(set, true),
        SearchKey::SavedResult => uid_key(saved.iter().map(|u| u.get())),
        SearchKey::Not(k) => SearchKey::Not(Box::new(freeze(k, view, saved))),
        SearchKey::Or(a, b) => SearchKey::Or(
            Box::new(freeze(a, view, saved)),
            Box::new(freeze(b, view, saved)),
        ),
        SearchKey::And(keys) => {
            SearchKey::And(keys.iter().map(|k| freeze(k, view, saved)).collect())
        }
        other => other.clone(),
    }
}

/// A key matching exactly these UIDs; none matches nothing.
fn uid_key(uids: impl IntoIterator<Item = u32>) -> SearchKey {
    match SeqSet::from_values(uids) {
        Some(set) => SearchKey::Uid(set),
        None => SearchKey::Not(Box::new(SearchKey::All)),
    }
}
