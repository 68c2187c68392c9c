//! The cost of a failed login, per source IP address, shared by every connection of every
//! protocol (an IMAP failure makes the next POP3 attempt from that address wait too).
//!
//! A wrong password is answered only after a delay that starts at `base` and doubles with every
//! further failure from the same address (up to `max`), like Dovecot's `auth_failure_delay` and
//! auth penalty. Because the count is per address and shared, opening more connections does not
//! buy an attacker faster guesses. A success from the address clears its record.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures older than this are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Bound on the table so a flood of addresses cannot grow it without limit.
const MAX_TRACKED: usize = 100_000;

pub struct LoginPenalty {
    base: Duration,
    max: Duration,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl LoginPenalty {
    pub fn new(base: Duration, max: Duration) -> Self {
        LoginPenalty {
            base,
            max,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Records a failure from `ip` and returns how long to wait before answering it.
    pub fn record_failure(&self, ip: IpAddr) -> Duration {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED {
            map.retain(|_, (_, at)| now.duration_since(*at) < FORGET_AFTER);
        }
        let entry = map.entry(ip).or_insert((0, now));
        if now.duration_since(entry.1) >= FORGET_AFTER {
            entry.0 = 0;
        }
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
        let factor = 1u32
            .checked_shl(entry.0.saturating_sub(1).min(16))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// Failures currently counted against `ip`.
    pub fn failures(&self, ip: IpAddr) -> u32 {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&ip)
            .filter(|(_, at)| at.elapsed() < FORGET_AFTER)
            .map_or(0, |(n, _)| *n)
    }

    pub fn record_success(&self, ip: IpAddr) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_doubles_per_address_up_to_the_cap() {
        let p = LoginPenalty::new(Duration::from_secs(2), Duration::from_secs(15));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let delays: Vec<u64> = (0..5).map(|_| p.record_failure(a).as_secs()).collect();
        assert_eq!(delays, [2, 4, 8, 15, 15]);
        assert_eq!(
            p.record_failure(b).as_secs(),
            2,
            "another address starts afresh"
        );
        assert_eq!(p.failures(a), 5);
        p.record_success(a);
        assert_eq!(p.failures(a), 0);
        assert_eq!(p.record_failure(a).as_secs(), 2);
    }

    #[test]
    fn many_failures_do_not_overflow() {
        let p = LoginPenalty::new(Duration::from_secs(2), Duration::from_secs(15));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..100 {
            assert!(p.record_failure(a) <= Duration::from_secs(15));
        }
    }
}
