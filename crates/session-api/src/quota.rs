//! A user's quota (RFC 9208 STORAGE and MESSAGE resources) as IMAP reports and enforces it and
//! as delivery (LMTP, `columba deliver`) enforces it: the limits come from the user's
//! `quota_rule` fields as Dovecot's userdb gives them (`*:storage=1G`, `*:messages=10000`; a
//! storage figure without a unit is in kilobytes, as Dovecot reads it), the usage is the sum
//! over the user's mailboxes. One place, so that a message IMAP APPEND would refuse is refused
//! at delivery too.

use auth::UserRecord;
use mail_store::MailStore;
use mail_types::MailboxName;

/// What a client or an MTA is told when a message does not fit (Dovecot's default
/// `quota_exceeded_message`, which administrators and scripts look for).
pub const QUOTA_EXCEEDED_MESSAGE: &str = "Quota exceeded (mailbox for user is full)";

/// A user's limits; `None` is no limit.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct QuotaLimits {
    pub storage_bytes: Option<u64>,
    pub messages: Option<u64>,
}

/// What the user's mailboxes hold.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct QuotaUsage {
    /// Octets, as the sum of the messages' RFC822.SIZE.
    pub bytes: u64,
    pub messages: u64,
}

impl QuotaLimits {
    /// From the userdb fields `quota_rule`, `quota_rule2`, ... (also with the `userdb_`
    /// prefix of passwd-file extras). Only rules for all mailboxes (`*:`) count; a rule that
    /// cannot be read is ignored rather than read as a smaller limit.
    pub fn of(user: &UserRecord) -> QuotaLimits {
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

    /// Whether any resource is limited.
    pub fn any(&self) -> bool {
        self.storage_bytes.is_some() || self.messages.is_some()
    }

    /// Whether adding `bytes` in `messages` messages to `usage` goes over a limit.
    pub fn exceeded_by(&self, usage: QuotaUsage, bytes: u64, messages: u64) -> bool {
        let over_storage = self
            .storage_bytes
            .is_some_and(|limit| usage.bytes.saturating_add(bytes) > limit);
        let over_messages = self
            .messages
            .is_some_and(|limit| usage.messages.saturating_add(messages) > limit);
        over_storage || over_messages
    }

    /// [`QuotaLimits::exceeded_by`] against what `store` holds now; no store is read for a
    /// user without limits.
    pub fn would_exceed(
        &self,
        store: &dyn MailStore,
        bytes: u64,
        messages: u64,
    ) -> mail_store::Result<bool> {
        if !self.any() {
            return Ok(false);
        }
        Ok(self.exceeded_by(usage(store)?, bytes, messages))
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

/// What the user's selectable mailboxes hold (INBOX counted even before it exists on disk).
pub fn usage(store: &dyn MailStore) -> mail_store::Result<QuotaUsage> {
    let mut names: Vec<MailboxName> = store
        .list()?
        .into_iter()
        .filter(|e| e.selectable)
        .map(|e| e.name)
        .collect();
    if !names.iter().any(MailboxName::is_inbox) {
        names.push(MailboxName::inbox());
    }
    let mut usage = QuotaUsage::default();
    for name in &names {
        let status = store.open(name)?.status()?;
        usage.bytes = usage.bytes.saturating_add(status.size);
        usage.messages = usage.messages.saturating_add(u64::from(status.messages));
    }
    Ok(usage)
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

    #[test]
    fn limits_are_inclusive() {
        let l = QuotaLimits {
            storage_bytes: Some(100),
            messages: Some(2),
        };
        let used = QuotaUsage {
            bytes: 50,
            messages: 1,
        };
        assert!(!l.exceeded_by(used, 50, 1));
        assert!(l.exceeded_by(used, 51, 1));
        assert!(l.exceeded_by(used, 1, 2));
        assert!(!QuotaLimits::default().exceeded_by(used, u64::MAX, u64::MAX));
    }
}
