//! QUOTA (RFC 9208) with the STORAGE and MESSAGE resources: one quota root per user, named
//! as Dovecot names it, whose limits come from the user's `quota_rule` fields as Dovecot's
//! userdb gives them (`*:storage=1G`, `*:messages=10000`; a storage figure without a unit is
//! in kilobytes, as Dovecot reads it). Usage is the sum over the user's mailboxes. APPEND
//! (every message of a MULTIAPPEND counted), REPLACE and COPY are refused with
//! `NO [OVERQUOTA]` when they would go over a limit; MOVE between the user's own mailboxes
//! changes nothing and is not checked. Limits are not settable over IMAP (no QUOTASET).

use auth::UserRecord;
use imap_proto::MailboxArg;
use imap_proto::response::{Code, write_astring, write_mailbox};
use mail_store::{MailStore, Mailbox};
use mail_types::{MailboxName, SystemFlags};

use crate::session::{Reply, Session};

/// The quota root every mailbox of a user belongs to (Dovecot's default name).
pub(crate) const QUOTA_ROOT: &str = "User quota";

/// A user's limits; `None` is no limit.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QuotaLimits {
    pub storage_bytes: Option<u64>,
    pub messages: Option<u64>,
}

impl QuotaLimits {
    /// From the userdb fields `quota_rule`, `quota_rule2`, ... (also with the `userdb_`
    /// prefix of passwd-file extras). Only rules for all mailboxes (`*:`) count; a rule that
    /// cannot be read is ignored rather than read as a smaller limit.
    pub(crate) fn of(user: &UserRecord) -> QuotaLimits {
        let mut limits = QuotaLimits::default();
        for (key, value) in &user.extra {
            let key = key.strip_prefix("userdb_").unwrap_or(key);
            if !key.starts_with("quota_rule") {
                continue;
            }
            let Some(rule) = value.trim().strip_prefix("*:") else {
                continue;
            };
            for setting in rule.split([':', ' ']) {
                match setting.split_once('=') {
                    Some(("storage" | "bytes", v)) => {
                        if let Some(n) = parse_storage(v) {
                            limits.storage_bytes = Some(n);
                        }
                    }
                    Some(("messages", v)) => {
                        if let Ok(n) = v.parse() {
                            limits.messages = Some(n);
                        }
                    }
                    _ => {}
                }
            }
        }
        limits
    }

    fn any(&self) -> bool {
        self.storage_bytes.is_some() || self.messages.is_some()
    }
}

/// `1G`, `500M`, `100k`, `42b`; a bare number is kilobytes.
fn parse_storage(v: &str) -> Option<u64> {
    let v = v.trim();
    let (digits, unit) = match v.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => v.split_at(at),
        None => (v, "k"),
    };
    let n: u64 = digits.parse().ok()?;
    let factor: u64 = match unit.to_ascii_lowercase().as_str() {
        "b" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// The octets of a mailbox's messages flagged `\Deleted` (RFC 9208 4.2 DELETED-STORAGE:
/// "the sum of the RFC822.SIZE of the messages with the \Deleted flag set").
pub(crate) fn deleted_storage(mailbox: &dyn Mailbox) -> mail_store::Result<u64> {
    let snapshot = mailbox.snapshot(false)?;
    let deleted = snapshot
        .messages
        .iter()
        .filter(|m| m.flags.system.contains(SystemFlags::DELETED));
    Ok(deleted
        .filter_map(|m| mailbox.message_info(m.uid).ok())
        .map(|info| info.size)
        .sum())
}

/// What the user's mailboxes hold: octets (RFC822.SIZE) and messages.
fn usage(store: &dyn MailStore) -> mail_store::Result<(u64, u64)> {
    let mut names: Vec<MailboxName> = store
        .list()?
        .into_iter()
        .filter(|e| e.selectable)
        .map(|e| e.name)
        .collect();
    if !names.iter().any(MailboxName::is_inbox) {
        names.push(MailboxName::inbox());
    }
    let mut bytes = 0u64;
    let mut messages = 0u64;
    for name in &names {
        let status = store.open(name)?.status()?;
        bytes = bytes.saturating_add(status.size);
        messages = messages.saturating_add(u64::from(status.messages));
    }
    Ok((bytes, messages))
}

impl Session {
    /// The `NO [OVERQUOTA]` for adding `bytes` in `messages` messages, if that goes over a
    /// limit (RFC 9208 4.3); `None` when it fits or the user has no limits.
    pub(crate) fn quota_refusal(&self, bytes: u64, messages: u64) -> Option<Reply> {
        let user = self.user()?;
        let limits = QuotaLimits::of(&user.record);
        if !limits.any() {
            return None;
        }
        let (used_bytes, used_messages) = match usage(user.store.as_ref()) {
            Ok(u) => u,
            Err(e) => return Some(self.store_error(e)),
        };
        let over_storage = limits
            .storage_bytes
            .is_some_and(|limit| used_bytes.saturating_add(bytes) > limit);
        let over_messages = limits
            .messages
            .is_some_and(|limit| used_messages.saturating_add(messages) > limit);
        (over_storage || over_messages).then(|| {
            Reply::no("Quota exceeded (mailbox for user is full)").with_code(Code::OverQuota)
        })
    }

    /// `* QUOTA "User quota" (STORAGE used limit MESSAGE used limit)`, the resources that have
    /// a limit, STORAGE in units of 1024 octets rounded up (RFC 9208 5.1).
    fn write_quota(&mut self, limits: QuotaLimits) -> Result<(), Reply> {
        let Some(user) = self.user() else {
            return Err(Reply::bad("Please log in first."));
        };
        let (bytes, messages) = usage(user.store.as_ref()).map_err(|e| self.store_error(e))?;
        let mut resources = Vec::new();
        if let Some(limit) = limits.storage_bytes {
            resources.push(format!("STORAGE {} {}", bytes.div_ceil(1024), limit / 1024));
        }
        if let Some(limit) = limits.messages {
            resources.push(format!("MESSAGE {messages} {limit}"));
        }
        self.out.extend_from_slice(b"* QUOTA ");
        write_astring(&mut self.out, QUOTA_ROOT.as_bytes());
        self.out
            .extend_from_slice(format!(" ({})\r\n", resources.join(" ")).as_bytes());
        Ok(())
    }

    fn quota_limits(&self) -> QuotaLimits {
        self.user()
            .map(|u| QuotaLimits::of(&u.record))
            .unwrap_or_default()
    }

    /// GETQUOTAROOT (RFC 9208 4.1.2): the user's root for any mailbox name, existing or not,
    /// with its QUOTA; no root at all for a user without limits.
    pub(crate) fn cmd_getquotaroot(&mut self, arg: &MailboxArg) -> Reply {
        let name = match self.mailbox_name(arg) {
            Ok(n) => n,
            Err(reply) => return reply,
        };
        let limits = self.quota_limits();
        self.out.extend_from_slice(b"* QUOTAROOT ");
        write_mailbox(&mut self.out, name.as_str(), self.utf8);
        if limits.any() {
            self.out.push(b' ');
            write_astring(&mut self.out, QUOTA_ROOT.as_bytes());
            self.out.extend_from_slice(b"\r\n");
            if let Err(reply) = self.write_quota(limits) {
                return reply;
            }
        } else {
            self.out.extend_from_slice(b"\r\n");
        }
        Reply::ok("Getquotaroot completed.")
    }

    /// GETQUOTA (RFC 9208 4.1.1).
    pub(crate) fn cmd_getquota(&mut self, root: &[u8]) -> Reply {
        let limits = self.quota_limits();
        if root != QUOTA_ROOT.as_bytes() || !limits.any() {
            return Reply::no("Quota root doesn't exist.").with_code(Code::NonExistent);
        }
        match self.write_quota(limits) {
            Ok(()) => Reply::ok("Getquota completed."),
            Err(reply) => reply,
        }
    }

    /// SETQUOTA (RFC 9208 4.1.3): limits are the administrator's; QUOTASET is not offered.
    pub(crate) fn cmd_setquota(&mut self) -> Reply {
        Reply::no("Quota limits are set by the administrator.").with_code(Code::NoPerm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(fields: &[(&str, &str)]) -> QuotaLimits {
        let mut user = UserRecord::named("u");
        user.extra = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        QuotaLimits::of(&user)
    }

    #[test]
    fn rules_read_as_dovecot_writes_them() {
        assert_eq!(limits(&[]), QuotaLimits::default());
        assert_eq!(
            limits(&[
                ("userdb_quota_rule", "*:storage=1G"),
                ("quota_rule2", "*:messages=100")
            ]),
            QuotaLimits {
                storage_bytes: Some(1 << 30),
                messages: Some(100)
            }
        );
        assert_eq!(
            limits(&[("quota_rule", "*:storage=2048")]).storage_bytes,
            Some(2048 * 1024)
        );
        assert_eq!(
            limits(&[("quota_rule", "*:storage=10M:messages=5")]),
            QuotaLimits {
                storage_bytes: Some(10 << 20),
                messages: Some(5)
            }
        );
        // Per-mailbox rules and unreadable values set nothing.
        assert_eq!(
            limits(&[
                ("quota_rule", "Trash:storage=1M"),
                ("quota_rule2", "*:storage=lots")
            ]),
            QuotaLimits::default()
        );
    }
}
