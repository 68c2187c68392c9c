//! The LMTP server session (RFC 2033): LHLO, the mail transaction (MAIL, RCPT, DATA) with one
//! reply per accepted recipient after the message, each success sent only once the message is
//! durable in that recipient's mailbox; the trace headers Dovecot's LMTP adds (`Return-Path:`,
//! `Delivered-To:`, `Received:`); the limits on lines, message size and recipients.
//!
//! It talks to users and mail only through [`DeliveryBackend`], which the binary implements
//! (in this process over the store, or by running the delivery as each user in the separated
//! process model). It knows no file paths, mailbox formats, password databases, sockets or
//! TLS, and nothing of IMAP or POP3.

mod session;
mod trace;

use std::sync::Arc;
use std::time::Duration;

use auth::UserRecord;
pub use session::serve;
pub use session_api::ConnectionInfo;

/// What the binary configures.
#[derive(Debug, Clone)]
pub struct LmtpSettings {
    /// Named in the greeting, LHLO's reply and `Received:` headers.
    pub hostname: String,
    /// Longest command line, without its line end.
    pub max_line: usize,
    /// Largest message accepted (advertised as `SIZE`, RFC 1870).
    pub max_message_size: u64,
    /// Recipients accepted in one transaction; more get `452 4.5.3` (RFC 5321 4.5.3.1.10).
    pub max_recipients: usize,
    /// Silence after which the connection is closed.
    pub timeout: Duration,
    /// Characters that separate a local part from its detail (`bob+lists`; Dovecot's
    /// `recipient_delimiter`); empty for none. The detail is dropped: mail goes to INBOX, as
    /// Dovecot's default `lmtp_save_to_detail_mailbox = no` does.
    pub recipient_delimiter: String,
    /// Check the quota at RCPT already (Dovecot's `lmtp_rcpt_check_quota`).
    pub rcpt_check_quota: bool,
    /// Over quota is a temporary failure (`452 4.2.2`) instead of `552 5.2.2`.
    pub quota_full_tempfail: bool,
    /// Unknown and failed commands allowed before the connection is closed.
    pub max_bad_commands: u32,
}

impl Default for LmtpSettings {
    fn default() -> LmtpSettings {
        LmtpSettings {
            hostname: "localhost".to_owned(),
            max_line: 4096,
            max_message_size: 64 * 1024 * 1024,
            max_recipients: 100,
            timeout: Duration::from_secs(300),
            recipient_delimiter: "+".to_owned(),
            rcpt_check_quota: false,
            quota_full_tempfail: false,
            max_bad_commands: 10,
        }
    }
}

/// Why one recipient's delivery failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryFailure {
    /// The message would take the user over quota.
    OverQuota,
    /// Anything else (disk, locks, a delivery process that failed): the MTA tries again.
    Temporary(String),
}

/// Finds users and stores mail for the session. Every call may block (user databases, disk,
/// fsync): the session runs them off its async threads.
pub trait DeliveryBackend: Send + Sync {
    /// The user a recipient's user name (`bob@example.com`, or `bob`) names; `Ok(None)` when
    /// nobody, `Err` when the lookup failed (the MTA should try again).
    fn lookup(&self, username: &str) -> Result<Option<UserRecord>, String>;

    /// Whether `user` is already at a quota limit (for the check at RCPT); the default knows
    /// of no quota.
    fn over_quota(&self, user: &UserRecord) -> Result<bool, String> {
        let _ = user;
        Ok(false)
    }

    /// Stores `message` (CRLF line ends, trace headers included) in `user`'s INBOX and
    /// returns once it is durable (fsynced).
    fn deliver(&self, user: &UserRecord, message: &[u8]) -> Result<(), DeliveryFailure>;
}

/// What every session of one listener shares.
pub struct SessionContext {
    pub settings: LmtpSettings,
    pub backend: Arc<dyn DeliveryBackend>,
}
