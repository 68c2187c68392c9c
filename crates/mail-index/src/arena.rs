//! One byte arena for the variable-length backend references of all records, so that a mailbox of
//! 100,000 messages holds one allocation of file names instead of 100,000 `String`s.

/// Where a value lives in the arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    offset: u32,
    len: u32,
}

/// Append-only bytes; replaced values become garbage until [`Arena::compact`] runs.
#[derive(Debug, Default, Clone)]
pub(crate) struct Arena {
    bytes: Vec<u8>,
    garbage: usize,
}

impl Arena {
    pub(crate) fn push(&mut self, value: &[u8]) -> Span {
        // A single reference beyond 4 GiB or an arena beyond 4 GiB cannot happen with file names;
        // saturating keeps the arithmetic total without a panic path.
        let offset = u32::try_from(self.bytes.len()).unwrap_or(u32::MAX);
        let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
        self.bytes.extend_from_slice(value);
        Span { offset, len }
    }

    /// An arena of `bytes` that nothing refers to yet: spans are made with [`Arena::span`]
    /// over ranges of them (the index file's reader decodes references straight into it).
    pub(crate) fn from_bytes(bytes: Vec<u8>) -> Arena {
        Arena { bytes, garbage: 0 }
    }

    /// The span of `start..end` of the bytes given to [`Arena::from_bytes`].
    pub(crate) fn span(start: usize, end: usize) -> Span {
        Span {
            offset: u32::try_from(start).unwrap_or(u32::MAX),
            len: u32::try_from(end.saturating_sub(start)).unwrap_or(u32::MAX),
        }
    }

    pub(crate) fn get(&self, span: Span) -> &[u8] {
        let start = span.offset as usize;
        let end = start.saturating_add(span.len as usize);
        self.bytes.get(start..end).unwrap_or(&[])
    }

    /// Marks a value as no longer referenced.
    pub(crate) fn release(&mut self, span: Span) {
        self.garbage += span.len as usize;
    }

    /// Worth compacting when at least half of the bytes are garbage.
    pub(crate) fn wants_compaction(&self) -> bool {
        self.garbage > 4096 && self.garbage * 2 > self.bytes.len()
    }

    /// Rewrites the arena keeping only the values `spans` point to, and updates them.
    pub(crate) fn compact<'a>(&mut self, spans: impl Iterator<Item = &'a mut Span>) {
        let mut fresh = Vec::with_capacity(self.bytes.len() - self.garbage.min(self.bytes.len()));
        for span in spans {
            let start = span.offset as usize;
            let end = start.saturating_add(span.len as usize);
            let value = self.bytes.get(start..end).unwrap_or(&[]);
            span.offset = u32::try_from(fresh.len()).unwrap_or(u32::MAX);
            fresh.extend_from_slice(value);
        }
        self.bytes = fresh;
        self.garbage = 0;
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_survive_compaction() {
        let mut a = Arena::default();
        let mut spans = vec![a.push(b"one"), a.push(b"two"), a.push(b"three")];
        a.release(spans[1]);
        spans.remove(1);
        a.compact(spans.iter_mut());
        assert_eq!(a.get(spans[0]), b"one");
        assert_eq!(a.get(spans[1]), b"three");
        assert_eq!(a.bytes.len(), 8);
    }
}
