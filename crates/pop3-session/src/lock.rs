//! The maildrop lock (RFC 1939 8: "the POP3 server acquires an exclusive-access lock on the
//! maildrop"), like Dovecot's `pop3_lock_session`.
//!
//! It is held from a successful login until the session ends, and only keeps out other POP3
//! sessions: IMAP sessions and deliveries go on, and the store keeps every view consistent.
//! The lock lives in this process (a table of user names), so it does not keep out a POP3
//! session of another server working on the same Maildir at the same time.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// Users whose maildrop a POP3 session holds.
#[derive(Debug, Default)]
pub struct MaildropLocks {
    held: Mutex<HashSet<String>>,
}

impl MaildropLocks {
    pub fn new() -> MaildropLocks {
        MaildropLocks::default()
    }

    /// Takes `user`'s lock, or `None` if another session holds it.
    pub fn try_lock(self: &Arc<Self>, user: &str) -> Option<MaildropGuard> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if !held.insert(user.to_owned()) {
            return None;
        }
        Some(MaildropGuard {
            locks: Arc::clone(self),
            user: user.to_owned(),
        })
    }

    pub fn is_locked(&self, user: &str) -> bool {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.contains(user)
    }
}

/// A held maildrop lock, released when dropped (the session ended, however it ended).
#[derive(Debug)]
pub struct MaildropGuard {
    locks: Arc<MaildropLocks>,
    user: String,
}

impl Drop for MaildropGuard {
    fn drop(&mut self) {
        let mut held = self.locks.held.lock().unwrap_or_else(|p| p.into_inner());
        held.remove(&self.user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_per_user_until_dropped() {
        let locks = Arc::new(MaildropLocks::new());
        let a = locks.try_lock("alice").expect("free");
        assert!(locks.try_lock("alice").is_none());
        let b = locks.try_lock("bob").expect("another user is independent");
        assert!(locks.is_locked("alice"));
        drop(a);
        assert!(!locks.is_locked("alice"));
        assert!(locks.try_lock("alice").is_some());
        drop(b);
    }
}
