//! The backend references of the main index file, each coded against the one before it.
//!
//! A Maildir reference is a file name like `c1609459251.M39595P4001Q6.host,S=2760,W=2817:2,S`:
//! runs of digits that change a little from one message to the next (a timestamp, a counter,
//! sizes) between pieces of text that rarely change at all. A reference is cut into tokens —
//! numbers and the text between them — and each token is predicted from the token at the same
//! position in the previous reference: a number as the previous one plus the step the previous
//! reference took there, a text as the previous text. A bit mask says which tokens were
//! predicted right; only the others are written, a number as the zigzag varint of its distance
//! from the prediction, a text as its length and bytes. Whole references of the benchmark
//! corpus take about 10 bytes instead of 60.
//!
//! ```text
//! reference   [structure varint] [mask] tokens-not-predicted       (see `Encoder::encode`)
//! structure   0: literal, varint length + bytes (a reference of more than MAX_TOKENS tokens)
//!             1 + 2 * token count + (1 if the first token is a number)
//! mask        ceil(count / 8) bytes, bit i (low first) set when token i is as predicted;
//!             unused bits zero
//! number      zigzag varint of (value - predicted value), never 0
//! text        varint length (at least 1) + bytes, never the predicted text
//! ```
//!
//! The structure and the mask are left out when they are the previous reference's (two bits
//! of the record's header say so). The encoding is canonical: a number token is a maximal run
//! of 1 to 19 digits without a leading zero (other digit runs are text), and the reader refuses
//! anything the writer would not have produced — a text containing a number, a text ending in a
//! digit before a number, a "not predicted" token equal to its prediction, a structure or mask
//! written out that equals the previous one — so every accepted file re-encodes to its bytes.

use crate::codec::{Reader, put_varint, unzigzag, zigzag};

/// References cut into more tokens than this are stored whole.
pub(crate) const MAX_TOKENS: usize = 64;
/// Numbers have at most 19 digits, so they fit a u64.
const NUMBER_LIMIT: u64 = 10_000_000_000_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// A number and the step from the previous reference's number at this position.
    Num { value: u64, step: u64 },
    /// A text: where it is (in the reference for the encoder, in the arena for the decoder).
    Text { start: usize, len: usize },
}

/// The shape of a tokenized reference: token count and whether the first is a number.
type Structure = (usize, bool);

fn structure_of(tokens: &[Token]) -> Structure {
    (
        tokens.len(),
        matches!(tokens.first(), Some(Token::Num { .. })),
    )
}

/// Whether a maximal run of digits is a number token.
fn is_number(run: &[u8]) -> bool {
    !run.is_empty() && run.len() <= 19 && (run.len() == 1 || run[0] != b'0')
}

fn parse_number(run: &[u8]) -> u64 {
    run.iter()
        .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'))
}

/// The maximal digit runs of `bytes` that are number tokens (see [`is_number`]).
fn number_runs(bytes: &[u8]) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            if bytes[i].is_ascii_digit() {
                let start = i;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                if is_number(&bytes[start..i]) {
                    return Some(start..i);
                }
            } else {
                i += 1;
            }
        }
        None
    })
}

/// Cuts `name` into tokens (steps left zero): its number runs and the texts between them.
/// `false` when there are more than [`MAX_TOKENS`].
fn tokenize(name: &[u8], out: &mut Vec<Token>) -> bool {
    out.clear();
    let mut text_start = 0;
    for run in number_runs(name) {
        if run.start > text_start {
            out.push(Token::Text {
                start: text_start,
                len: run.start - text_start,
            });
        }
        out.push(Token::Num {
            value: parse_number(&name[run.clone()]),
            step: 0,
        });
        if out.len() > MAX_TOKENS {
            return false;
        }
        text_start = run.end;
    }
    if text_start < name.len() {
        out.push(Token::Text {
            start: text_start,
            len: name.len() - text_start,
        });
    }
    out.len() <= MAX_TOKENS
}

/// What the previous reference leaves for predicting the next.
#[derive(Debug, Default)]
struct Previous {
    /// `None` after a literal reference and before the first.
    structure: Option<Structure>,
    tokens: Vec<Token>,
    mask: Vec<u8>,
}

impl Previous {
    /// The predicted value of a number at position `i`, and the previous value it steps from.
    fn number(&self, i: usize) -> (u64, u64) {
        match self.tokens.get(i) {
            Some(Token::Num { value, step }) => (value.wrapping_add(*step), *value),
            _ => (0, 0),
        }
    }

    /// The predicted text at position `i` (a range of the previous reference's bytes).
    fn text(&self, i: usize) -> Option<(usize, usize)> {
        match self.tokens.get(i) {
            Some(Token::Text { start, len }) => Some((*start, *len)),
            _ => None,
        }
    }
}

/// Header bits of a record that belong to its reference.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Reuse {
    pub(crate) structure: bool,
    pub(crate) mask: bool,
}

/// Codes references in order.
#[derive(Debug, Default)]
pub(crate) struct Encoder {
    prev: Previous,
    /// The previous reference's bytes (text tokens point into it).
    prev_name: Vec<u8>,
    tokens: Vec<Token>,
    mask: Vec<u8>,
}

impl Encoder {
    /// Appends the coding of `name` to `out`; returns what the record's header must say.
    pub(crate) fn encode(&mut self, name: &[u8], out: &mut Vec<u8>) -> Reuse {
        let mut tokens = std::mem::take(&mut self.tokens);
        if !tokenize(name, &mut tokens) {
            put_varint(out, 0);
            put_varint(out, name.len() as u64);
            out.extend_from_slice(name);
            self.prev.structure = None;
            self.prev.tokens.clear();
            self.prev.mask.clear();
            self.tokens = tokens;
            return Reuse::default();
        }
        let structure = structure_of(&tokens);
        let mut reuse = Reuse {
            structure: self.prev.structure == Some(structure),
            mask: false,
        };
        if !reuse.structure {
            put_varint(out, 1 + 2 * structure.0 as u64 + u64::from(structure.1));
        }
        let mut mask = std::mem::take(&mut self.mask);
        mask.clear();
        mask.resize(structure.0.div_ceil(8), 0);
        // The tokens not predicted, written after the mask.
        let mut rest = Vec::new();
        for (i, tok) in tokens.iter_mut().enumerate() {
            let hit = match tok {
                Token::Num { value, step } => {
                    let (predicted, before) = self.prev.number(i);
                    *step = value.wrapping_sub(before);
                    if *value == predicted {
                        true
                    } else {
                        put_varint(&mut rest, zigzag(value.wrapping_sub(predicted) as i64));
                        false
                    }
                }
                Token::Text { start, len } => {
                    let text = &name[*start..*start + *len];
                    let predicted = self.prev.text(i).map(|(s, l)| &self.prev_name[s..s + l]);
                    if predicted == Some(text) {
                        true
                    } else {
                        put_varint(&mut rest, text.len() as u64);
                        rest.extend_from_slice(text);
                        false
                    }
                }
            };
            if hit {
                mask[i / 8] |= 1 << (i % 8);
            }
        }
        reuse.mask = reuse.structure && mask == self.prev.mask;
        if !reuse.mask {
            out.extend_from_slice(&mask);
        }
        out.extend_from_slice(&rest);
        self.prev.structure = Some(structure);
        self.tokens = std::mem::replace(&mut self.prev.tokens, tokens);
        self.mask = std::mem::replace(&mut self.prev.mask, mask);
        self.prev_name.clear();
        self.prev_name.extend_from_slice(name);
        reuse
    }
}

/// Decodes references in order, appending each to the arena's bytes.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    prev: Previous,
    tokens: Vec<Token>,
    mask: Vec<u8>,
}

impl Decoder {
    /// Reads one reference from `r` and appends it to `arena` (whose earlier bytes hold the
    /// previous references: the previous one's text tokens point there). `limit` is how long
    /// `arena` may become.
    pub(crate) fn decode(
        &mut self,
        r: &mut Reader<'_>,
        reuse: Reuse,
        arena: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), &'static str> {
        const TRUNCATED: &str = "backend reference truncated";
        let structure = if reuse.structure {
            self.prev
                .structure
                .ok_or("backend reference reuses a structure that is not there")?
        } else {
            let v = r.varint().ok_or(TRUNCATED)?;
            if v == 0 {
                if reuse.mask {
                    return Err("backend reference reuses a mask that is not there");
                }
                return self.literal(r, arena, limit);
            }
            let count = (v - 1) / 2;
            if count > MAX_TOKENS as u64 {
                return Err("backend reference has too many tokens");
            }
            let s = (count as usize, (v - 1) % 2 == 1);
            if (s.0 == 0 && s.1) || self.prev.structure == Some(s) {
                return Err("backend reference structure not canonical");
            }
            s
        };
        let (count, first_number) = structure;
        let mut mask = std::mem::take(&mut self.mask);
        mask.clear();
        if reuse.mask {
            if !reuse.structure {
                return Err("backend reference reuses a mask without its structure");
            }
            mask.extend_from_slice(&self.prev.mask);
        } else {
            let m = r.take(count.div_ceil(8)).ok_or(TRUNCATED)?;
            if count % 8 != 0 && m[m.len() - 1] >> (count % 8) != 0 {
                return Err("backend reference mask has unused bits set");
            }
            if reuse.structure && m == &self.prev.mask[..] {
                return Err("backend reference mask not canonical");
            }
            mask.extend_from_slice(m);
        }
        let mut tokens = std::mem::take(&mut self.tokens);
        tokens.clear();
        let start_len = arena.len();
        let result = (|| {
            for i in 0..count {
                let hit = mask[i / 8] & (1 << (i % 8)) != 0;
                let number = (i % 2 == 0) == first_number;
                if number {
                    let (predicted, before) = self.prev.number(i);
                    let value = if hit {
                        predicted
                    } else {
                        let delta = r.varint().ok_or(TRUNCATED)?;
                        if delta == 0 {
                            return Err("backend reference token not canonical");
                        }
                        predicted.wrapping_add(unzigzag(delta) as u64)
                    };
                    if value >= NUMBER_LIMIT {
                        return Err("backend reference number too large");
                    }
                    push_number(arena, value);
                    tokens.push(Token::Num {
                        value,
                        step: value.wrapping_sub(before),
                    });
                } else {
                    let predicted = self.prev.text(i);
                    let start = arena.len();
                    let len = if hit {
                        let (s, l) = predicted
                            .ok_or("backend reference predicts a text that is not there")?;
                        arena.extend_from_within(s..s + l);
                        l
                    } else {
                        let len = r.varint().ok_or(TRUNCATED)?;
                        let text = r.take(usize::try_from(len).map_err(|_| TRUNCATED)?);
                        let text = text.ok_or(TRUNCATED)?;
                        if text.is_empty()
                            || predicted.is_some_and(|(s, l)| &arena[s..s + l] == text)
                            || contains_number(text)
                        {
                            return Err("backend reference token not canonical");
                        }
                        arena.extend_from_slice(text);
                        text.len()
                    };
                    let text = &arena[start..start + len];
                    // A digit next to a number would have joined its run.
                    if (i > 0 && text[0].is_ascii_digit())
                        || (i + 1 < count && text[len - 1].is_ascii_digit())
                    {
                        return Err("backend reference token not canonical");
                    }
                    tokens.push(Token::Text { start, len });
                }
                if arena.len() > limit {
                    return Err("backend references longer than declared");
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            arena.truncate(start_len);
            self.tokens = tokens;
            self.mask = mask;
            return Err(e);
        }
        self.prev.structure = Some(structure);
        self.tokens = std::mem::replace(&mut self.prev.tokens, tokens);
        self.mask = std::mem::replace(&mut self.prev.mask, mask);
        Ok(())
    }

    fn literal(
        &mut self,
        r: &mut Reader<'_>,
        arena: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), &'static str> {
        let len = r.varint().ok_or("backend reference truncated")?;
        let name = usize::try_from(len)
            .ok()
            .and_then(|n| r.take(n))
            .ok_or("backend reference truncated")?;
        if tokenize(name, &mut self.tokens) {
            return Err("backend reference stored whole but has few tokens");
        }
        if arena.len().saturating_add(name.len()) > limit {
            return Err("backend references longer than declared");
        }
        arena.extend_from_slice(name);
        self.prev.structure = None;
        self.prev.tokens.clear();
        self.prev.mask.clear();
        Ok(())
    }
}

/// Whether `text` holds a digit run that would be a number token.
fn contains_number(text: &[u8]) -> bool {
    number_runs(text).next().is_some()
}

/// Appends `v` in decimal.
fn push_number(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(names: &[&[u8]]) -> usize {
        let mut enc = Encoder::default();
        let mut out = Vec::new();
        let mut reuses = Vec::new();
        for n in names {
            reuses.push(enc.encode(n, &mut out));
        }
        let mut dec = Decoder::default();
        let mut arena = Vec::new();
        let mut r = Reader::new(&out);
        let mut ends = Vec::new();
        for reuse in &reuses {
            dec.decode(&mut r, *reuse, &mut arena, usize::MAX).unwrap();
            ends.push(arena.len());
        }
        assert_eq!(r.pos, out.len());
        let mut start = 0;
        for (n, end) in names.iter().zip(ends) {
            assert_eq!(&arena[start..end], *n);
            start = end;
        }
        out.len()
    }

    #[test]
    fn maildir_names_shrink() {
        let names: Vec<String> = (0..1000u64)
            .map(|i| {
                format!(
                    "c{}.M{}P4001Q{}.bench.example,S={},W={}:2,{}",
                    1_609_459_251 + i * 97,
                    (i * 7919) % 1_000_000,
                    i + 1,
                    3000 + (i * 37) % 5000,
                    3100 + (i * 37) % 5000,
                    if i % 3 == 0 { "S" } else { "" }
                )
            })
            .collect();
        let refs: Vec<&[u8]> = names.iter().map(|n| n.as_bytes()).collect();
        let raw: usize = refs.iter().map(|r| r.len()).sum();
        let coded = round_trip(&refs);
        assert!(coded * 4 < raw, "{coded} of {raw}");
    }

    #[test]
    fn awkward_names_round_trip() {
        let long_number = b"x12345678901234567890y".to_vec();
        let many: Vec<u8> = (0..200)
            .flat_map(|i| format!("a{i}").into_bytes())
            .collect();
        round_trip(&[
            b"",
            b"",
            b"0",
            b"00",
            b"007",
            b"a0b00c007",
            &long_number,
            b"9999999999999999999",
            b"1000000000000000000",
            b"5",
            b"",
            &many,
            &many,
            b"c1.M2:2,S\0G1234",
            b"\xff\x00\x80",
            b"c1.M2:2,S\0G1234",
        ]);
    }

    proptest! {
        #[test]
        fn any_names_round_trip(names in proptest::collection::vec(
            proptest::collection::vec(prop_oneof![Just(b'0'), Just(b'1'), Just(b'9'), Just(b'a'), Just(b','), any::<u8>()], 0..30), 0..20)) {
            let refs: Vec<&[u8]> = names.iter().map(|n| &n[..]).collect();
            round_trip(&refs);
        }
    }
}
