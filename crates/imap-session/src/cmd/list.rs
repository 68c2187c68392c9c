use std::collections::{BTreeMap, BTreeSet};

use imap_proto::response::write_mailbox;
use imap_proto::{ListPattern, ListReturn, ListSelect};
use mail_types::MailboxName;

use crate::names::ListMatcher;
use crate::session::{Reply, Session};

/// What LIST knows about one name in the hierarchy.
#[derive(Default, Clone, Copy)]
struct NameInfo {
    exists: bool,
    selectable: bool,
    has_children: bool,
    subscribed: bool,
    /// Some descendant is subscribed (RFC 5258 `CHILDINFO ("SUBSCRIBED")`).
    subscribed_child: bool,
}

impl Session {
    /// LIST (RFC 3501 6.3.8) in its basic form: the extended one with no options.
    pub(crate) fn cmd_list(&mut self, reference: &ListPattern, pattern: &ListPattern) -> Reply {
        self.cmd_list_extended(
            ListSelect::default(),
            reference,
            std::slice::from_ref(pattern),
            &ListReturn::default(),
        )
    }

    /// LIST with RFC 5258 selection and return options, several patterns, RFC 5819 `STATUS`
    /// and RFC 6154 special-use attributes. Attributes: `\HasChildren`/`\HasNoChildren` (RFC
    /// 3348) always, `\Noselect` for levels that exist only because something lies below them,
    /// `\NonExistent` for subscribed names that are not there, `\Subscribed` when asked for,
    /// and the special-use attribute of the configured names (always, as Dovecot does).
    pub(crate) fn cmd_list_extended(
        &mut self,
        select: ListSelect,
        reference: &ListPattern,
        patterns: &[ListPattern],
        returns: &ListReturn,
    ) -> Reply {
        if patterns.len() == 1 && patterns[0].0.is_empty() {
            // An empty pattern asks for the hierarchy delimiter and the root (RFC 3501 6.3.8).
            self.out
                .extend_from_slice(b"* LIST (\\Noselect) \"/\" \"\"\r\n");
            return Reply::ok("List completed.");
        }
        let mut matchers = Vec::with_capacity(patterns.len());
        for p in patterns.iter().filter(|p| !p.0.is_empty()) {
            match ListMatcher::new(reference, p, self.utf8) {
                Ok(m) => matchers.push(m),
                Err(reply) => return reply,
            }
        }
        let names = match self.hierarchy() {
            Ok(n) => n,
            Err(reply) => return reply,
        };
        let show_subscribed = select.subscribed || returns.subscribed;
        let mut shown: Vec<(MailboxName, Vec<&str>, bool)> = Vec::new();
        for (name, info) in &names {
            if !matchers.iter().any(|m| m.matches(name.as_str())) {
                continue;
            }
            let special = self.special_use(name);
            // RECURSIVEMATCH: a name that is not selected itself but has a selected descendant
            // is listed with CHILDINFO (RFC 5258 3.5).
            let mut child_info = false;
            let selected = if select.subscribed {
                if info.subscribed {
                    true
                } else {
                    child_info = select.recursive_match && info.subscribed_child;
                    child_info
                }
            } else if select.special_use {
                !special.is_empty()
            } else {
                info.exists
            };
            if !selected {
                continue;
            }
            let mut attrs = Vec::new();
            if !info.exists {
                attrs.push("\\NonExistent");
            } else if !info.selectable {
                attrs.push("\\Noselect");
            }
            if info.exists {
                attrs.push(if info.has_children {
                    "\\HasChildren"
                } else {
                    "\\HasNoChildren"
                });
            }
            if show_subscribed && info.subscribed {
                attrs.push("\\Subscribed");
            }
            attrs.extend(special);
            shown.push((name.clone(), attrs, child_info));
        }
        // INBOX first, then the rest in name order, as Dovecot lists them.
        shown.sort_by(|a, b| (!a.0.is_inbox(), &a.0).cmp(&(!b.0.is_inbox(), &b.0)));
        for (name, attrs, child_info) in shown {
            self.out.extend_from_slice(b"* LIST (");
            self.out.extend_from_slice(attrs.join(" ").as_bytes());
            self.out.extend_from_slice(b") \"/\" ");
            write_mailbox(&mut self.out, name.as_str(), self.utf8);
            if child_info {
                self.out
                    .extend_from_slice(b" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
            }
            self.out.extend_from_slice(b"\r\n");
            let selectable = names.get(&name).is_some_and(|i| i.exists && i.selectable);
            if let (Some(items), true) = (&returns.status, selectable) {
                // RFC 5819: a mailbox whose status cannot be had is listed without it.
                let _ = self.write_status(&name, items);
            }
        }
        Reply::ok("List completed.")
    }

    /// LSUB (RFC 3501 6.3.9): subscribed names matching the pattern; with a trailing `%`, an
    /// unsubscribed level that has subscribed children is returned as `\Noselect`.
    pub(crate) fn cmd_lsub(&mut self, reference: &ListPattern, pattern: &ListPattern) -> Reply {
        let matcher = match ListMatcher::new(reference, pattern, self.utf8) {
            Ok(m) => m,
            Err(reply) => return reply,
        };
        let names = match self.hierarchy() {
            Ok(n) => n,
            Err(reply) => return reply,
        };
        let mut shown = Vec::new();
        let mut partial: BTreeSet<MailboxName> = BTreeSet::new();
        for name in names.iter().filter(|(_, i)| i.subscribed).map(|(n, _)| n) {
            if matcher.matches(name.as_str()) {
                shown.push((name.clone(), ""));
            } else if matcher.ends_with_percent() {
                for ancestor in name.ancestors() {
                    let subscribed = names.get(&ancestor).is_some_and(|i| i.subscribed);
                    if !subscribed && matcher.matches(ancestor.as_str()) {
                        partial.insert(ancestor);
                    }
                }
            }
        }
        shown.extend(partial.into_iter().map(|n| (n, "\\Noselect")));
        shown.sort_by(|a, b| (!a.0.is_inbox(), &a.0).cmp(&(!b.0.is_inbox(), &b.0)));
        shown.dedup_by(|a, b| a.0 == b.0);
        for (name, attrs) in shown {
            self.out
                .extend_from_slice(format!("* LSUB ({attrs}) \"/\" ").as_bytes());
            write_mailbox(&mut self.out, name.as_str(), self.utf8);
            self.out.extend_from_slice(b"\r\n");
        }
        Reply::ok("Lsub completed.")
    }

    /// Every name LIST and LSUB may show: existing mailboxes, the levels implied above them, and
    /// subscribed names.
    fn hierarchy(&mut self) -> Result<BTreeMap<MailboxName, NameInfo>, Reply> {
        let Some(user) = self.user() else {
            return Err(Reply::bad("Please log in first."));
        };
        let (entries, subscriptions) = match (user.store.list(), user.store.subscriptions()) {
            (Ok(e), Ok(s)) => (e, s),
            (Err(e), _) | (_, Err(e)) => return Err(self.store_error(e)),
        };
        let mut names: BTreeMap<MailboxName, NameInfo> = BTreeMap::new();
        let inbox = names.entry(MailboxName::inbox()).or_default();
        inbox.exists = true;
        inbox.selectable = true;
        for entry in entries {
            for ancestor in entry.name.ancestors() {
                let a = names.entry(ancestor).or_default();
                a.has_children = true;
                a.exists = true;
            }
            let e = names.entry(entry.name).or_default();
            e.exists = true;
            e.selectable |= entry.selectable;
        }
        for sub in &subscriptions {
            for ancestor in sub.ancestors() {
                names.entry(ancestor).or_default().subscribed_child = true;
            }
            names.entry(sub.clone()).or_default().subscribed = true;
        }
        Ok(names)
    }

    /// The special-use attributes of `name` (RFC 6154 2): the one configured for its name and
    /// those it was created with (CREATE-SPECIAL-USE, RFC 6154 3), each once.
    fn special_use(&self, name: &MailboxName) -> Vec<&'static str> {
        let configured = self
            .ctx
            .settings
            .special_use
            .iter()
            .filter(|(n, _)| n == name.as_str())
            .map(|(_, attr)| attr.clone());
        let created = self
            .user()
            .map(|u| u.store.special_use(name))
            .unwrap_or_default();
        let mut attrs: Vec<&'static str> = Vec::new();
        for attr in configured.chain(created) {
            let known = SPECIAL_USE.iter().find(|a| a.eq_ignore_ascii_case(&attr));
            if let Some(&a) = known
                && !attrs.contains(&a)
            {
                attrs.push(a);
            }
        }
        attrs
    }
}

/// The attributes of RFC 6154 2.
pub(crate) const SPECIAL_USE: [&str; 7] = [
    "\\All",
    "\\Archive",
    "\\Drafts",
    "\\Flagged",
    "\\Junk",
    "\\Sent",
    "\\Trash",
];
