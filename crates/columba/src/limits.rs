//! Limits on connections: how many one user may hold from one address once logged in
//! (Dovecot's `mail_max_userip_connections`), counted by whichever process serves the user's
//! sessions (the single server process, or the user's own mail process when separated: all of
//! a user's connections go to the same one); and how many one address may hold before login,
//! counted where clients are accepted.

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

/// Connections from one address that have not logged in yet. Before login a client has proved
/// nothing, yet its TLS handshake, buffers and login timeout cost the server: one address
/// opening thousands of them is refused at accept, while its logged-in connections fall under
/// [`UserIpLimit`] instead.
pub struct PreLoginLimit {
    /// 0: no limit.
    max: usize,
    state: Mutex<PreLogin>,
}

#[derive(Default)]
struct PreLogin {
    per_address: HashMap<IpAddr, usize>,
    /// Session id -> address, for the connections still counted.
    open: HashMap<String, IpAddr>,
}

impl PreLoginLimit {
    pub fn new(max: usize) -> Arc<PreLoginLimit> {
        Arc::new(PreLoginLimit {
            max,
            state: Mutex::new(PreLogin::default()),
        })
    }

    /// Counts a new connection, or `None` when its address already has `max` waiting.
    pub fn admit(self: &Arc<Self>, remote: IpAddr, session_id: &str) -> Option<PreLoginTicket> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let count = state.per_address.entry(remote).or_insert(0);
        if self.max > 0 && *count >= self.max {
            return None;
        }
        *count += 1;
        state.open.insert(session_id.to_owned(), remote);
        Some(PreLoginTicket {
            limit: self.clone(),
            session_id: session_id.to_owned(),
        })
    }

    /// The connection `session_id` logged in: it no longer counts (a second call does nothing).
    pub fn logged_in(&self, session_id: &str) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(remote) = state.open.remove(session_id) else {
            return;
        };
        if let Some(count) = state.per_address.get_mut(&remote) {
            *count -= 1;
            if *count == 0 {
                state.per_address.remove(&remote);
            }
        }
    }
}

/// A connection's place among its address's pre-login connections, given back when the
/// connection ends if it never logged in.
pub struct PreLoginTicket {
    limit: Arc<PreLoginLimit>,
    session_id: String,
}

impl Drop for PreLoginTicket {
    fn drop(&mut self) {
        self.limit.logged_in(&self.session_id);
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

    #[test]
    fn pre_login_connections_count_until_login_or_end() {
        let limit = PreLoginLimit::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = limit.admit(a, "s1").unwrap();
        let _second = limit.admit(a, "s2").unwrap();
        assert!(limit.admit(a, "s3").is_none());
        assert!(limit.admit(b, "s4").is_some());
        // Logging in frees the place; the ticket's end later changes nothing more.
        limit.logged_in("s1");
        let _third = limit.admit(a, "s5").unwrap();
        assert!(limit.admit(a, "s6").is_none());
        drop(first);
        assert!(limit.admit(a, "s7").is_none());
        // Ending without login frees it too.
        drop(_second);
        assert!(limit.admit(a, "s8").is_some());
    }
}
