//! One byte arena for the variable-length backend references of all records, so that a mailbox of
//! 100,000 messages holds one allocation of file names instead of 100,000 `String`s.
//!
//! References loaded from the index file stay in the file's coding ([`FileNames`]) until one is
//! read: a span may name reference number `n` of that file instead of a range of the arena.

use std::sync::Arc;

use crate::file_names::{FileNames, Scratch};

/// The `len` of a span that names a reference of the loaded file by its number.
const IN_FILE: u32 = u32::MAX;

/// Where a value lives: a range of the arena, or a reference of the loaded index file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    offset: u32,
    len: u32,
}

impl Span {
    /// Reference number `ordinal` of the loaded index file.
    pub(crate) fn in_file(ordinal: u32) -> Span {
        Span {
            offset: ordinal,
            len: IN_FILE,
        }
    }

    fn is_in_file(self) -> bool {
        self.len == IN_FILE
    }
}

/// Append-only bytes; replaced values become garbage until [`Arena::compact`] runs.
#[derive(Debug, Default, Clone)]
pub(crate) struct Arena {
    bytes: Vec<u8>,
    garbage: usize,
    /// The loaded file's references, shared by clones, dropped once no span names one.
    file: Option<Arc<FileNames>>,
    in_file: usize,
}

impl Arena {
    pub(crate) fn push(&mut self, value: &[u8]) -> Span {
        // A single reference beyond 4 GiB or an arena beyond 4 GiB cannot happen with file names;
        // saturating keeps the arithmetic total without a panic path (and below `IN_FILE`).
        let offset = u32::try_from(self.bytes.len()).unwrap_or(u32::MAX);
        let len = u32::try_from(value.len())
            .unwrap_or(IN_FILE - 1)
            .min(IN_FILE - 1);
        self.bytes.extend_from_slice(value);
        Span { offset, len }
    }

    /// An arena whose values are the `count` references of `file`, named by
    /// [`Span::in_file`].
    pub(crate) fn from_file(file: FileNames, count: usize) -> Arena {
        Arena {
            bytes: Vec::new(),
            garbage: 0,
            file: (count > 0).then(|| Arc::new(file)),
            in_file: count,
        }
    }

    pub(crate) fn get(&self, span: Span) -> &[u8] {
        if span.is_in_file() {
            return match &self.file {
                Some(file) => file.get(span.offset),
                None => &[],
            };
        }
        let start = span.offset as usize;
        let end = start.saturating_add(span.len as usize);
        self.bytes.get(start..end).unwrap_or(&[])
    }

    /// Calls `f` with the value of `span`; a reference of the file whose block was not decoded
    /// yet is decoded into `scratch` instead of kept (for one pass over all of them).
    pub(crate) fn with<R>(
        &self,
        span: Span,
        scratch: &mut Scratch,
        f: impl FnOnce(&[u8]) -> R,
    ) -> R {
        match (&self.file, span.is_in_file()) {
            (Some(file), true) => file.with(span.offset, scratch, f),
            _ => f(self.get(span)),
        }
    }

    /// The loaded file's references, while any value is one of them.
    pub(crate) fn file(&self) -> Option<&FileNames> {
        self.file.as_deref()
    }

    /// Marks a value as no longer referenced.
    pub(crate) fn release(&mut self, span: Span) {
        if span.is_in_file() {
            self.in_file = self.in_file.saturating_sub(1);
            if self.in_file == 0 {
                self.file = None;
            }
        } else {
            self.garbage += span.len as usize;
        }
    }

    /// Worth compacting when at least half of the bytes are garbage.
    pub(crate) fn wants_compaction(&self) -> bool {
        self.garbage > 4096 && self.garbage * 2 > self.bytes.len()
    }

    /// Rewrites the arena keeping only the values `spans` point to, and updates them.
    pub(crate) fn compact<'a>(&mut self, spans: impl Iterator<Item = &'a mut Span>) {
        let mut fresh = Vec::with_capacity(self.bytes.len() - self.garbage.min(self.bytes.len()));
        for span in spans {
            if span.is_in_file() {
                continue;
            }
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
        self.bytes.capacity() + self.file.as_ref().map_or(0, |f| f.heap_bytes())
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
