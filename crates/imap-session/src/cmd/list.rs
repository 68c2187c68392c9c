use std::collections::{BTreeMap, BTreeSet};

use imap_proto::ListPattern;
use imap_proto::response::write_mailbox;
use mail_types::MailboxName;

use crate::names::ListMatcher;
use crate::session::{Reply, Session};

/// What LIST knows about one name in the hierarchy.
#[derive(Default, Clone, Copy)]
struct NameInfo {
    selectable: bool,
    has_children: bool,
    subscribed: bool,
}

impl Session {
    /// LIST and LSUB (RFC 3501 6.3.8, 6.3.9), with `\HasChildren`/`\HasNoChildren` (RFC 3348).
    /// Hierarchy levels that exist only because something lies below them are `\Noselect`.
    pub(crate) fn cmd_list(
        &mut self,
        reference: &ListPattern,
        pattern: &ListPattern,
        lsub: bool,
    ) -> Reply {
        let verb = if lsub { "LSUB" } else { "LIST" };
        if pattern.0.is_empty() && !lsub {
            // An empty pattern asks for the hierarchy delimiter and the root (RFC 3501 6.3.8).
            self.out
                .extend_from_slice(b"* LIST (\\Noselect) \"/\" \"\"\r\n");
            return Reply::ok("List completed.");
        }
        let matcher = match ListMatcher::new(reference, pattern) {
            Ok(m) => m,
            Err(reply) => return reply,
        };
        let Some(user) = self.user() else {
            return Reply::bad("Please log in first.");
        };
        let (entries, subscriptions) = match (user.store.list(), user.store.subscriptions()) {
            (Ok(e), Ok(s)) => (e, s),
            (Err(e), _) | (_, Err(e)) => return self.store_error(e),
        };
        let mut names: BTreeMap<MailboxName, NameInfo> = BTreeMap::new();
        names.entry(MailboxName::inbox()).or_default().selectable = true;
        for entry in entries {
            for ancestor in entry.name.ancestors() {
                names.entry(ancestor).or_default().has_children = true;
            }
            names.entry(entry.name).or_default().selectable |= entry.selectable;
        }
        for sub in &subscriptions {
            names.entry(sub.clone()).or_default().subscribed = true;
        }
        let mut shown = Vec::new();
        if lsub {
            // LSUB lists subscribed names; with a trailing `%`, an unsubscribed level that has
            // subscribed children is returned as `\Noselect` (RFC 3501 6.3.9).
            let mut partial: BTreeSet<MailboxName> = BTreeSet::new();
            for sub in &subscriptions {
                if matcher.matches(sub.as_str()) {
                    shown.push((sub.clone(), "".to_owned()));
                } else if matcher.ends_with_percent() {
                    for ancestor in sub.ancestors() {
                        let subscribed = names.get(&ancestor).is_some_and(|i| i.subscribed);
                        if !subscribed && matcher.matches(ancestor.as_str()) {
                            partial.insert(ancestor);
                        }
                    }
                }
            }
            shown.extend(partial.into_iter().map(|n| (n, "\\Noselect".to_owned())));
        } else {
            for (name, info) in &names {
                if !matcher.matches(name.as_str()) || (!info.selectable && !info.has_children) {
                    continue;
                }
                let mut attrs = Vec::new();
                if !info.selectable {
                    attrs.push("\\Noselect");
                }
                attrs.push(if info.has_children {
                    "\\HasChildren"
                } else {
                    "\\HasNoChildren"
                });
                shown.push((name.clone(), attrs.join(" ")));
            }
        }
        // INBOX first, then the rest in name order, as Dovecot lists them.
        shown.sort_by(|a, b| (!a.0.is_inbox(), &a.0).cmp(&(!b.0.is_inbox(), &b.0)));
        shown.dedup_by(|a, b| a.0 == b.0);
        for (name, attrs) in shown {
            self.out
                .extend_from_slice(format!("* {verb} ({attrs}) \"/\" ").as_bytes());
            write_mailbox(&mut self.out, name.as_str(), false);
            self.out.extend_from_slice(b"\r\n");
        }
        if lsub {
            Reply::ok("Lsub completed.")
        } else {
            Reply::ok("List completed.")
        }
    }
}
