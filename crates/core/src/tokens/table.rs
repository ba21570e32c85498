//! An encoding's vocabulary: every token's bytes stored once, in rank order,
//! in a binary asset embedded in the filter, and an open-addressing hash
//! index from bytes to rank built when the encoding is loaded.
//!
//! Asset formats (`assets/<encoding>.tokens`, written by
//! `tests/token_tables.rs` from tiktoken-rs's vocabularies; integers are
//! little-endian):
//! - `MRTOKEN1`, the token count `n` (u32), the count `m` (u32) of tokens
//!   longer than 15 bytes, `n` lengths packed two to a byte (low nibble
//!   first; 0 means "the next of the long lengths"), the `m` long lengths (one
//!   byte each), then the tokens' bytes, concatenated (o200k_base: 1.50 MB).
//!   Offsets are summed from the lengths at load (4 bytes per token).
//! - `MRTOKEN2`, `n` (u32), `n` spans (u32: length in the low 8 bits, byte
//!   offset in the next 23, and the top bit set when the bytes are in the
//!   *base* asset's bytes rather than in this one's), then this asset's own
//!   bytes. cl100k_base shares 85% of its tokens with o200k_base, so it
//!   points into o200k_base's bytes for those: 0.53 MB instead of 0.74 MB,
//!   and nothing to compute at load.
//!
//! Memory once loaded: the hash index, 4 bytes per slot (about 1.25 slots
//! per token, rounded up to a power of two), and the MRTOKEN1 offsets.

use super::TokenError;

const SUMMED: &[u8; 8] = b"MRTOKEN1";
const SPANNED: &[u8; 8] = b"MRTOKEN2";
const SPAN_LEN_BITS: u32 = 8;
const SPAN_OFFSET_MASK: u32 = (1 << 23) - 1;
const SPAN_IN_BASE: u32 = 1 << 31;
/// Ranks fit in the low bits of a slot; the rest hold a tag of the hash.
const RANK_BITS: u32 = 18;
const RANK_MASK: u32 = (1 << RANK_BITS) - 1;
const EMPTY: u32 = u32::MAX;

pub(super) type Rank = u32;

/// Where each token's bytes are.
enum Index {
    /// Start of each token in `bytes`, and the end of the last one (MRTOKEN1).
    Offsets(Vec<u32>),
    /// The asset's spans (MRTOKEN2), 4 bytes per token.
    Spans(&'static [u8]),
}

pub(super) struct Table {
    bytes: &'static [u8],
    /// The base asset's bytes, which MRTOKEN2 spans may point into.
    base: &'static [u8],
    index: Index,
    slots: Vec<u32>,
    /// `64 - log2(slots.len())`: the hash's top bits pick the slot.
    shift: u32,
}

impl Table {
    /// Loads `asset`; `base` is the MRTOKEN1 asset an MRTOKEN2 one points into.
    pub(super) fn load(
        name: &str,
        asset: &'static [u8],
        base: &'static [u8],
    ) -> Result<Table, TokenError> {
        let bad = |what: &str| TokenError(format!("{name}: token table {what}"));
        let (magic, rest) = asset
            .split_first_chunk::<8>()
            .ok_or_else(|| bad("is truncated"))?;
        let (count, rest) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| bad("is truncated"))?;
        let n = u32::from_le_bytes(*count) as usize;
        if n == 0 || n > RANK_MASK as usize {
            return Err(bad("has an unsupported token count"));
        }
        let (bytes, base, index) = if magic == SUMMED {
            let (lengths, longs, bytes) =
                Table::summed_parts(rest, n).ok_or_else(|| bad("is truncated"))?;
            let mut offsets = Vec::with_capacity(n.saturating_add(1));
            let mut at = 0u32;
            offsets.push(0);
            let mut longs = longs.iter();
            for i in 0..n {
                let nibble =
                    lengths
                        .get(i / 2)
                        .map_or(0, |b| if i % 2 == 0 { b & 0x0f } else { b >> 4 });
                let len = if nibble == 0 {
                    *longs
                        .next()
                        .ok_or_else(|| bad("has too few long lengths"))?
                } else {
                    nibble
                };
                at = at
                    .checked_add(u32::from(len))
                    .ok_or_else(|| bad("is too large"))?;
                offsets.push(at);
            }
            if at as usize != bytes.len() || longs.next().is_some() {
                return Err(bad("lengths do not match its bytes"));
            }
            (bytes, &[][..], Index::Offsets(offsets))
        } else if magic == SPANNED {
            let (spans, bytes) = rest
                .split_at_checked(n.saturating_mul(4))
                .ok_or_else(|| bad("is truncated"))?;
            let base = Table::summed_bytes(base).ok_or_else(|| bad("has no valid base"))?;
            (bytes, base, Index::Spans(spans))
        } else {
            return Err(bad("has an unknown format"));
        };
        let slots_len = n.saturating_add(n / 4).next_power_of_two();
        let shift = 64u32.saturating_sub(slots_len.trailing_zeros());
        let mut table = Table {
            bytes,
            base,
            index,
            slots: vec![EMPTY; slots_len],
            shift,
        };
        let mask = slots_len.saturating_sub(1);
        for rank in 0..n as u32 {
            let token = table.token(rank).ok_or_else(|| bad("is inconsistent"))?;
            let (mut i, tag) = table.place(token);
            while table.slots.get(i).is_some_and(|&s| s != EMPTY) {
                i = i.wrapping_add(1) & mask;
            }
            if let Some(slot) = table.slots.get_mut(i) {
                *slot = rank | tag;
            }
        }
        Ok(table)
    }

    /// The token bytes of an MRTOKEN1 asset.
    fn summed_bytes(asset: &'static [u8]) -> Option<&'static [u8]> {
        let rest = asset.strip_prefix(SUMMED.as_slice())?;
        let (count, rest) = rest.split_first_chunk::<4>()?;
        Table::summed_parts(rest, u32::from_le_bytes(*count) as usize).map(|(_, _, bytes)| bytes)
    }

    /// An MRTOKEN1 asset after its count: the packed lengths, the long
    /// lengths and the token bytes.
    fn summed_parts(
        rest: &'static [u8],
        n: usize,
    ) -> Option<(&'static [u8], &'static [u8], &'static [u8])> {
        let (longs_count, rest) = rest.split_first_chunk::<4>()?;
        let (lengths, rest) = rest.split_at_checked(n.div_ceil(2))?;
        let (longs, bytes) = rest.split_at_checked(u32::from_le_bytes(*longs_count) as usize)?;
        Some((lengths, longs, bytes))
    }

    /// Number of tokens.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.slots.iter().filter(|&&s| s != EMPTY).count()
    }

    /// The bytes of the token of rank `rank`.
    #[inline]
    pub(super) fn token(&self, rank: Rank) -> Option<&'static [u8]> {
        let r = rank as usize;
        match &self.index {
            Index::Offsets(offsets) => {
                let start = *offsets.get(r)? as usize;
                let end = *offsets.get(r.checked_add(1)?)? as usize;
                self.bytes.get(start..end)
            }
            Index::Spans(spans) => {
                let at = r.checked_mul(4)?;
                let span = spans
                    .get(at..at.checked_add(4)?)
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .map(u32::from_le_bytes)?;
                let len = (span & ((1 << SPAN_LEN_BITS) - 1)) as usize;
                let start = ((span >> SPAN_LEN_BITS) & SPAN_OFFSET_MASK) as usize;
                let source = if span & SPAN_IN_BASE != 0 {
                    self.base
                } else {
                    self.bytes
                };
                source.get(start..start.checked_add(len)?)
            }
        }
    }

    /// The first slot to probe for `bytes`, and the tag its slot carries.
    #[inline]
    fn place(&self, bytes: &[u8]) -> (usize, u32) {
        let h = hash(bytes);
        ((h >> self.shift) as usize, (h as u32) & !RANK_MASK)
    }

    /// The rank of the token whose bytes are `bytes`, if there is one.
    #[inline]
    pub(super) fn rank(&self, bytes: &[u8]) -> Option<Rank> {
        let (mut i, tag) = self.place(bytes);
        let mask = self.slots.len().saturating_sub(1);
        loop {
            let slot = *self.slots.get(i)?;
            if slot == EMPTY {
                return None;
            }
            if slot & !RANK_MASK == tag {
                let rank = slot & RANK_MASK;
                if self.token(rank) == Some(bytes) {
                    return Some(rank);
                }
            }
            i = i.wrapping_add(1) & mask;
        }
    }
}

/// A fast 64-bit hash of a short byte string (8 bytes per round, then a
/// final mix so that both the top bits (slot) and low bits (tag) vary).
#[inline]
fn hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = (bytes.len() as u64).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let word = <[u8; 8]>::try_from(chunk).map_or(0, u64::from_le_bytes);
        h = (h.rotate_left(26) ^ word).wrapping_mul(K);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut word = [0u8; 8];
        if let Some(dst) = word.get_mut(..tail.len()) {
            dst.copy_from_slice(tail);
        }
        h = (h.rotate_left(26) ^ u64::from_le_bytes(word)).wrapping_mul(K);
    }
    h ^= h >> 29;
    h = h.wrapping_mul(K);
    h ^ (h >> 32)
}
