//! The backend references of a loaded index file, kept coded and decoded a block at a time the
//! first time one of the block is asked for.
//!
//! Decoding every reference when a file is opened was most of the cost of opening a large
//! mailbox (a million Maildir names: well over half of the 187 ms it took), and a SELECT, a
//! flag sync or a FETCH of cached fields needs none of them. So the file codes references in blocks of
//! [`BLOCK`], each coded against the one before it as `refs.rs` describes but starting afresh
//! at each block, with a table of where each block starts and how long it is decoded. A
//! reference costs a block's decoding (at most [`BLOCK`] names) the first time it is read;
//! the block then stays decoded for as long as the index holds references into it.
//!
//! ```text
//! section   block table | coded references
//! table     per block: offset of its first coded reference u32 | decoded length u32
//! reference reuse u8 (bit 0: the previous structure, bit 1: the previous mask) | coding
//! ```
//!
//! The table is checked when the file is read (offsets ascending, inside the section, decoded
//! lengths bounded by what the coded bytes can stand for); the coding of each block is checked
//! when it is decoded. A block that does not decode (a file with right checksums written wrong:
//! a bug or a hostile writer, not bit rot) reads as empty references and is remembered as the
//! index's [`damage`](FileNames::damage), which the backend answers by rebuilding.

use std::sync::OnceLock;

use crate::codec::{Reader, len_u32, put_u32};
use crate::refs::{self, Reuse};

/// References per block: decoding one costs a few microseconds, and restarting the prediction
/// at each block start costs about a byte a message.
pub(crate) const BLOCK: usize = 64;
/// At most this many bytes of references decoded per coded byte (names are predicted from
/// the previous one, so a few bytes can stand for a long name; real Maildir names take 6).
const MAX_EXPANSION: u64 = 64;
const REUSE_STRUCTURE: u8 = 1;
const REUSE_MASK: u8 = 2;

/// Codes references in file order for the section above.
#[derive(Default)]
pub(crate) struct BlockWriter {
    encoder: refs::Encoder,
    /// Per block: offset, decoded length.
    table: Vec<(u32, u32)>,
    coded: Vec<u8>,
    in_block: usize,
    scratch: Vec<u8>,
}

impl BlockWriter {
    pub(crate) fn push(&mut self, name: &[u8]) {
        if self.table.is_empty() || self.in_block == BLOCK {
            self.encoder = refs::Encoder::default();
            self.table.push((len_u32(self.coded.len()), 0));
            self.in_block = 0;
        }
        self.in_block += 1;
        if let Some(last) = self.table.last_mut() {
            last.1 = last.1.saturating_add(len_u32(name.len()));
        }
        self.scratch.clear();
        let reuse = self.encoder.encode(name, &mut self.scratch);
        let mut bits = 0;
        if reuse.structure {
            bits |= REUSE_STRUCTURE;
        }
        if reuse.mask {
            bits |= REUSE_MASK;
        }
        self.coded.push(bits);
        self.coded.extend_from_slice(&self.scratch);
    }

    /// The section's bytes.
    pub(crate) fn finish(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.table.len() * 8 + self.coded.len());
        for (offset, len) in &self.table {
            put_u32(&mut out, *offset);
            put_u32(&mut out, *len);
        }
        out.extend_from_slice(&self.coded);
        out
    }
}

#[derive(Debug, Clone, Copy)]
struct BlockSpan {
    start: u32,
    end: u32,
    decoded_len: u32,
}

/// A decoded block: its references' bytes one after the other, and where each ends.
#[derive(Debug, Default)]
pub(crate) struct Block {
    bytes: Vec<u8>,
    ends: Vec<u32>,
}

impl Block {
    fn get(&self, i: usize) -> &[u8] {
        let start = match i.checked_sub(1) {
            Some(p) => self.ends.get(p).copied().unwrap_or(0),
            None => 0,
        } as usize;
        let end = self.ends.get(i).copied().unwrap_or(0) as usize;
        self.bytes.get(start..end).unwrap_or(&[])
    }
}

/// A block decoded for one pass over the references (the index file's writer), so that writing
/// a file does not leave every block decoded.
#[derive(Default)]
pub(crate) struct Scratch {
    block: Option<(usize, Block)>,
}

/// The references of a loaded index file (see the module documentation).
#[derive(Debug)]
pub(crate) struct FileNames {
    /// The section as read: block table, then the coded references from `coded_at`.
    section: Vec<u8>,
    coded_at: usize,
    blocks: Box<[BlockSpan]>,
    count: usize,
    decoded: Box<[OnceLock<Block>]>,
    damage: OnceLock<String>,
}

impl FileNames {
    /// Takes the section of a file holding `count` references (kept as it is, not copied),
    /// checking its block table.
    pub(crate) fn parse(section: Vec<u8>, count: usize) -> Result<FileNames, &'static str> {
        let block_count = count.div_ceil(BLOCK);
        let coded_at = block_count
            .checked_mul(8)
            .filter(|n| *n <= section.len())
            .ok_or("reference block table longer than its section")?;
        let coded_len =
            u32::try_from(section.len() - coded_at).map_err(|_| "references section too long")?;
        let mut r = Reader::new(&section[..coded_at]);
        let mut table = Vec::with_capacity(block_count);
        for _ in 0..block_count {
            let start = r.u32().ok_or("reference block table truncated")?;
            let decoded_len = r.u32().ok_or("reference block table truncated")?;
            table.push((start, decoded_len));
        }
        let mut blocks = Vec::with_capacity(block_count);
        for (b, &(start, decoded_len)) in table.iter().enumerate() {
            let end = table.get(b + 1).map_or(coded_len, |next| next.0);
            let refs_in_block = (count - b * BLOCK).min(BLOCK) as u64;
            // Each reference takes at least its reuse byte.
            let coded = u64::from(end)
                .checked_sub(u64::from(start))
                .filter(|n| *n >= refs_in_block && (b > 0 || start == 0))
                .ok_or("reference blocks out of order")?;
            if u64::from(decoded_len) > coded.saturating_mul(MAX_EXPANSION) {
                return Err("reference block longer than its coding can be");
            }
            blocks.push(BlockSpan {
                start,
                end,
                decoded_len,
            });
        }
        if block_count == 0 && coded_len != 0 {
            return Err("references section has trailing bytes");
        }
        Ok(FileNames {
            section,
            coded_at,
            blocks: blocks.into(),
            count,
            decoded: (0..block_count).map(|_| OnceLock::new()).collect(),
            damage: OnceLock::new(),
        })
    }

    /// Reference number `ordinal` of the file (empty past the end or in a damaged block).
    pub(crate) fn get(&self, ordinal: u32) -> &[u8] {
        let i = ordinal as usize;
        let Some(cell) = self.decoded.get(i / BLOCK) else {
            return &[];
        };
        cell.get_or_init(|| self.decode_or_note(i / BLOCK))
            .get(i % BLOCK)
    }

    /// Calls `f` with reference `ordinal`, decoding its block into `scratch` rather than
    /// keeping it when it was not decoded already.
    pub(crate) fn with<R>(
        &self,
        ordinal: u32,
        scratch: &mut Scratch,
        f: impl FnOnce(&[u8]) -> R,
    ) -> R {
        let i = ordinal as usize;
        let b = i / BLOCK;
        if let Some(block) = self.decoded.get(b).and_then(OnceLock::get) {
            return f(block.get(i % BLOCK));
        }
        if scratch.block.as_ref().is_none_or(|(held, _)| *held != b) {
            scratch.block = Some((b, self.decode_or_note(b)));
        }
        match &scratch.block {
            Some((_, block)) => f(block.get(i % BLOCK)),
            None => f(&[]),
        }
    }

    fn decode_or_note(&self, b: usize) -> Block {
        self.decode(b).unwrap_or_else(|what| {
            let _ = self.damage.set(format!("reference block {b}: {what}"));
            Block::default()
        })
    }

    /// Decodes block `b`, checking its coding.
    fn decode(&self, b: usize) -> Result<Block, &'static str> {
        let span = self.blocks.get(b).ok_or("no such reference block")?;
        let coded = self
            .section
            .get(self.coded_at + span.start as usize..self.coded_at + span.end as usize)
            .ok_or("reference block outside its section")?;
        let n = (self.count - b * BLOCK).min(BLOCK);
        let limit = span.decoded_len as usize;
        let mut r = Reader::new(coded);
        let mut decoder = refs::Decoder::default();
        let mut block = Block {
            bytes: Vec::with_capacity(limit),
            ends: Vec::with_capacity(n),
        };
        for _ in 0..n {
            let bits = r.u8().ok_or("backend reference truncated")?;
            if bits & !(REUSE_STRUCTURE | REUSE_MASK) != 0 {
                return Err("backend reference has unknown bits");
            }
            let reuse = Reuse {
                structure: bits & REUSE_STRUCTURE != 0,
                mask: bits & REUSE_MASK != 0,
            };
            decoder.decode(&mut r, reuse, &mut block.bytes, limit)?;
            block.ends.push(len_u32(block.bytes.len()));
        }
        if r.pos != r.buf.len() {
            return Err("reference block has trailing bytes");
        }
        if block.bytes.len() != limit {
            return Err("reference block shorter than declared");
        }
        Ok(block)
    }

    /// Decodes every block without keeping them: `Err` names the first that does not decode.
    pub(crate) fn check(&self) -> Result<(), String> {
        for b in 0..self.blocks.len() {
            if self.decoded[b].get().is_none() {
                self.decode(b)
                    .map_err(|what| format!("reference block {b}: {what}"))?;
            }
        }
        match self.damage.get() {
            Some(d) => Err(d.clone()),
            None => Ok(()),
        }
    }

    /// What was wrong with the first block that did not decode, if one did not.
    pub(crate) fn damage(&self) -> Option<&str> {
        self.damage.get().map(String::as_str)
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        let decoded: usize = self
            .decoded
            .iter()
            .filter_map(OnceLock::get)
            .map(|b| b.bytes.capacity() + b.ends.capacity() * 4)
            .sum();
        self.section.len() + self.blocks.len() * std::mem::size_of::<BlockSpan>() + decoded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| format!("c{}.M{i}P7.host,S={}:2,S", 1_600_000_000 + i * 3, 4000 + i).into())
            .collect()
    }

    fn section(names: &[Vec<u8>]) -> Vec<u8> {
        let mut w = BlockWriter::default();
        for n in names {
            w.push(n);
        }
        w.finish()
    }

    #[test]
    fn every_reference_reads_back_in_any_order() {
        for n in [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 5 * BLOCK + 7] {
            let all = names(n);
            let file = FileNames::parse(section(&all), n).unwrap();
            for i in (0..n).rev() {
                assert_eq!(file.get(i as u32), &all[i][..], "{n} names, #{i}");
            }
            assert_eq!(file.get(n as u32), b"");
            assert!(file.check().is_ok());
            assert!(file.damage().is_none());
        }
    }

    #[test]
    fn a_pass_with_scratch_decodes_nothing_for_keeps() {
        let all = names(3 * BLOCK);
        let file = FileNames::parse(section(&all), all.len()).unwrap();
        let kept = file.heap_bytes();
        let mut scratch = Scratch::default();
        for (i, name) in all.iter().enumerate() {
            file.with(i as u32, &mut scratch, |got| assert_eq!(got, &name[..]));
        }
        assert_eq!(file.heap_bytes(), kept);
        file.get(0);
        assert!(file.heap_bytes() > kept);
    }

    #[test]
    fn a_bad_table_is_refused() {
        let all = names(2 * BLOCK + 1);
        let good = section(&all);
        assert!(FileNames::parse(good.clone(), all.len()).is_ok());
        // Too many references for the table, a second block starting before the first, a
        // first block not at 0, a decoded length no coding could reach.
        assert!(FileNames::parse(good.clone(), 40 * BLOCK).is_err());
        let mut bad = good.clone();
        bad[8..12].copy_from_slice(&0u32.to_le_bytes());
        assert!(FileNames::parse(bad, all.len()).is_err());
        let mut bad = good.clone();
        bad[0..4].copy_from_slice(&1u32.to_le_bytes());
        assert!(FileNames::parse(bad, all.len()).is_err());
        let mut bad = good.clone();
        bad[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(FileNames::parse(bad, all.len()).is_err());
        assert!(FileNames::parse(vec![1], 0).is_err());
    }

    #[test]
    fn a_block_that_does_not_decode_reads_empty_and_is_reported() {
        let all = names(2 * BLOCK);
        let mut bytes = section(&all);
        // The second block's declared length is one more than its names.
        let len = u32::from_le_bytes(bytes[12..16].try_into().unwrap());
        bytes[12..16].copy_from_slice(&(len + 1).to_le_bytes());
        let file = FileNames::parse(bytes, all.len()).unwrap();
        assert_eq!(file.get(1), &all[1][..]);
        assert!(file.damage().is_none());
        assert!(file.check().is_err());
        assert_eq!(file.get(BLOCK as u32 + 1), b"");
        assert!(
            file.damage().unwrap().contains("block 1"),
            "{:?}",
            file.damage()
        );
    }
}
