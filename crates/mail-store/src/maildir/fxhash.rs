//! A fast hasher for the maps a Maildir scan builds over file base names (a million entries for
//! a million-message mailbox, built on every cold open).
//!
//! std's SipHash-1-3 resists hash flooding, and costs a third of the time of those maps. Here
//! the keys are names of files in the user's own Maildir and lines of its `dovecot-uidlist`:
//! only the mailbox's owner (their MUA, their deliveries' unique names) chooses them, so a
//! flood would only slow down their own mailbox. The hash is FxHash's word-at-a-time
//! multiply (as rustc uses) with a final avalanche, so that hashbrown's bucket bits (the low
//! ones) and control bits (the top seven) both depend on every byte of the name.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// FxHash's multiplier (from Firefox, used by rustc's `FxHasher`).
const K: u64 = 0x517c_c1b7_2722_0a95;

#[derive(Debug, Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            // The length keeps "a" and "a\0" apart.
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // The multiply only carries upwards: fold the high half into the low bits and mix again.
        let h = (self.hash ^ (self.hash >> 32)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^ (h >> 29)
    }
}

pub type FxBuild = BuildHasherDefault<FxHasher>;
pub type FxHashMap<K, V> = HashMap<K, V, FxBuild>;

/// An empty map with room for `n` entries.
pub fn map_with_capacity<K, V>(n: usize) -> FxHashMap<K, V> {
    HashMap::with_capacity_and_hasher(n, FxBuild::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    fn h(s: &str) -> u64 {
        FxBuild::default().hash_one(s)
    }

    #[test]
    fn names_differing_anywhere_hash_apart() {
        let base = "1609459251.M0P4001Q1.bench.example,S=5232,W=5328";
        let mut seen = std::collections::HashSet::new();
        assert!(seen.insert(h(base)));
        for i in 0..base.len() {
            let mut b = base.as_bytes().to_vec();
            b[i] ^= 1;
            let s = String::from_utf8(b).unwrap();
            assert!(seen.insert(h(&s)), "{s}");
        }
        assert_ne!(h("a"), h("a\0"));
        assert_ne!(h(""), h("\0"));
    }

    #[test]
    fn sequential_names_spread_over_buckets() {
        // Names as a delivery agent makes them, differing in a few middle digits: the low bits
        // (hashbrown's bucket index) must still spread.
        let buckets = 1 << 12;
        let mut used = vec![0u32; buckets];
        for i in 0..buckets as u32 {
            let name = format!("1609459251.M{i}P4001Q{i}.bench.example,S=5232,W=5328");
            used[(h(&name) as usize) & (buckets - 1)] += 1;
        }
        let empty = used.iter().filter(|&&n| n == 0).count();
        // A uniform hash leaves about 1/e (37 %) of the buckets empty.
        assert!(
            empty < buckets * 45 / 100,
            "{empty} of {buckets} buckets empty"
        );
        assert!(used.iter().all(|&n| n < 12));
    }
}
