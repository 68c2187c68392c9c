//! QUOTA (RFC 9208) with the STORAGE and MESSAGE resources: one quota root per user, named
//! as Dovecot names it, whose limits come from the user's `quota_rule` fields as Dovecot's
//! userdb gives them (`*:storage=1G`, `*:messages=10000`; a storage figure without a unit is
//! in kilobytes, as Dovecot reads it). Usage is the sum over the user's mailboxes. Limits and
//! usage are `session_api::quota`'s, which delivery (LMTP, `columba deliver`) enforces too. APPEND
//! (every message of a MULTIAPPEND counted), REPLACE and COPY are refused with
//! `NO [OVERQUOTA]` when they would go over a limit; MOVE between the user's own mailboxes
//! changes nothing and is not checked. Limits are not settable over IMAP (no QUOTASET).

use imap_proto::MailboxArg;
use imap_proto::response::{Code, write_astring, write_mailbox};
use mail_store::Mailbox;
use mail_types::SystemFlags;
use session_api::quota::{QUOTA_EXCEEDED_MESSAGE, QuotaLimits, usage};

use crate::session::{Reply, Session};

/// The quota root every mailbox of a user belongs to (Dovecot's default name).
pub(crate) const QUOTA_ROOT: &str = "User quota";

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

impl Session {
    /// The `NO [OVERQUOTA]` for adding `bytes` in `messages` messages, if that goes over a
    /// limit (RFC 9208 4.3); `None` when it fits or the user has no limits.
    pub(crate) fn quota_refusal(&self, bytes: u64, messages: u64) -> Option<Reply> {
        let user = self.user()?;
        let limits = QuotaLimits::of(&user.record);
        match limits.would_exceed(user.store.as_ref(), bytes, messages) {
            Ok(false) => None,
            Ok(true) => Some(Reply::no(QUOTA_EXCEEDED_MESSAGE).with_code(Code::OverQuota)),
            Err(e) => Some(self.store_error(e)),
        }
    }

    /// `* QUOTA "User quota" (STORAGE used limit MESSAGE used limit)`, the resources that have
    /// a limit, STORAGE in units of 1024 octets rounded up (RFC 9208 5.1).
    fn write_quota(&mut self, limits: QuotaLimits) -> Result<(), Reply> {
        let Some(user) = self.user() else {
            return Err(Reply::bad("Please log in first."));
        };
        let used = usage(user.store.as_ref()).map_err(|e| self.store_error(e))?;
        let (bytes, messages) = (used.bytes, used.messages);
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
