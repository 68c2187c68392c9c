//! Limits on how many connections one user may hold from one address (Dovecot's
//! `mail_max_userip_connections`), counted by whichever process serves the user's sessions: the
//! single server process, or the user's own mail process when separated (all of a user's
//! connections go to the same one).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use session_api::{ConnectionSlot, TooManyConnections};

type Key = (&'static str, String, IpAddr);

#[derive(Clone)]
pub struct UserIpLimit {
    /// 0: no limit.
    max: usize,
    counts: Arc<Mutex<HashMap<Key, usize>>>,
}

impl UserIpLimit {
    pub fn new(max: usize) -> UserIpLimit {
        UserIpLimit {
            max,
            counts: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A place for one more connection of `user` from `remote` over `protocol`, or the refusal
    /// when they already hold `max` of them.
    pub fn claim(
        &self,
        protocol: &'static str,
        user: &str,
        remote: IpAddr,
    ) -> Result<Option<ConnectionSlot>, TooManyConnections> {
        if self.max == 0 {
            return Ok(None);
        }
        let key = (protocol, user.to_owned(), remote);
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(key.clone()).or_insert(0);
        if *count >= self.max {
            return Err(TooManyConnections { max: self.max });
        }
        *count += 1;
        Ok(Some(Box::new(Slot {
            key,
            counts: self.counts.clone(),
        })))
    }
}

struct Slot {
    key: Key,
    counts: Arc<Mutex<HashMap<Key, usize>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_protocol_user_and_address_and_gives_places_back() {
        let limit = UserIpLimit::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = limit.claim("imap", "alice", a).unwrap();
        let _second = limit.claim("imap", "alice", a).unwrap();
        assert_eq!(
            limit.claim("imap", "alice", a).err(),
            Some(TooManyConnections { max: 2 })
        );
        // Another address, user or protocol has its own count.
        assert!(limit.claim("imap", "alice", b).is_ok());
        assert!(limit.claim("imap", "bob", a).is_ok());
        assert!(limit.claim("pop3", "alice", a).is_ok());
        drop(first);
        assert!(limit.claim("imap", "alice", a).is_ok());
        assert!(UserIpLimit::new(0).claim("imap", "x", a).unwrap().is_none());
    }
}
