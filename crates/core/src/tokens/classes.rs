//! Character classes of OpenAI's pre-tokenizer regexes, one byte of flags
//! per code point, built from regex-syntax's Unicode tables: the tables the
//! `regex` crate (already in the filter) and fancy-regex (tiktoken's engine)
//! match `\p{L}`, `\p{N}` and `\s` with, so the classes agree by construction.

use std::collections::HashMap;

use regex_syntax::hir::{Class, HirKind};

use super::TokenError;

/// `\p{L}`
pub(super) const LETTER: u8 = 1;
/// `\p{N}`
pub(super) const NUMBER: u8 = 2;
/// `\s` (Unicode White_Space)
pub(super) const SPACE: u8 = 4;
/// `[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]` (o200k's "upper")
pub(super) const UPPER: u8 = 8;
/// `[\p{Ll}\p{Lm}\p{Lo}\p{M}]` (o200k's "lower")
pub(super) const LOWER: u8 = 16;
/// The ASCII space ` ` alone.
pub(super) const BLANK: u8 = 32;
/// `\r` or `\n`
pub(super) const NEWLINE: u8 = 64;
/// `/`
pub(super) const SLASH: u8 = 128;

const BLOCK: usize = 256;
const BLOCKS: usize = 0x11_0000 / BLOCK;
/// Offset of the last code point of a block.
const BLOCK_LAST: u32 = BLOCK as u32 - 1;

/// Flags of every code point: a two-level table (blocks of 256 code points,
/// identical blocks stored once; about 100 KB).
pub(super) struct Classes {
    /// The flags of ASCII, the common case, without the two-level lookup.
    ascii: [u8; 128],
    index: Vec<u16>,
    blocks: Vec<u8>,
}

impl Classes {
    pub(super) fn build() -> Result<Classes, TokenError> {
        let mut sets: Vec<(u8, Vec<(u32, u32)>)> = Vec::new();
        for (flag, pattern) in [
            (LETTER, r"\p{L}"),
            (NUMBER, r"\p{N}"),
            (SPACE, r"\s"),
            (UPPER, r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]"),
            (LOWER, r"[\p{Ll}\p{Lm}\p{Lo}\p{M}]"),
            (BLANK, r" "),
            (NEWLINE, r"[\r\n]"),
            (SLASH, r"/"),
        ] {
            sets.push((flag, ranges(pattern)?));
        }
        let mut index = Vec::with_capacity(BLOCKS);
        let mut blocks: Vec<u8> = Vec::new();
        let mut seen: HashMap<[u8; BLOCK], u16> = HashMap::new();
        let mut cursors = vec![0usize; sets.len()];
        for b in 0..BLOCKS {
            let lo = u32::try_from(b.saturating_mul(BLOCK)).unwrap_or(u32::MAX);
            let hi = lo.saturating_add(BLOCK_LAST);
            let mut block = [0u8; BLOCK];
            for ((flag, set), cursor) in sets.iter().zip(cursors.iter_mut()) {
                // Ranges are sorted and disjoint: skip those wholly below this block.
                while set.get(*cursor).is_some_and(|&(_, end)| end < lo) {
                    *cursor = cursor.saturating_add(1);
                }
                for &(start, end) in set.get(*cursor..).unwrap_or_default() {
                    if start > hi {
                        break;
                    }
                    let from = start.max(lo).saturating_sub(lo) as usize;
                    let to = end.min(hi).saturating_sub(lo) as usize;
                    for cell in block.get_mut(from..=to).unwrap_or_default() {
                        *cell |= flag;
                    }
                }
            }
            let next = u16::try_from(seen.len())
                .map_err(|_| TokenError("too many distinct Unicode blocks".to_string()))?;
            let id = *seen.entry(block).or_insert_with(|| {
                blocks.extend_from_slice(&block);
                next
            });
            index.push(id);
        }
        let mut ascii = [0u8; 128];
        for (flags, block) in ascii.iter_mut().zip(blocks.iter()) {
            *flags = *block; // block 0 holds U+0000..U+00FF, stored first
        }
        Ok(Classes {
            ascii,
            index,
            blocks,
        })
    }

    /// Flags of `c`.
    #[inline]
    pub(super) fn of(&self, c: char) -> u8 {
        let c = c as usize;
        if let Some(&flags) = self.ascii.get(c) {
            return flags;
        }
        let block = self.index.get(c / BLOCK).copied().unwrap_or(0) as usize;
        self.blocks
            .get(block.saturating_mul(BLOCK).saturating_add(c % BLOCK))
            .copied()
            .unwrap_or(0)
    }
}

/// The code point ranges of a one-class pattern.
fn ranges(pattern: &str) -> Result<Vec<(u32, u32)>, TokenError> {
    let hir = regex_syntax::parse(pattern)
        .map_err(|e| TokenError(format!("character class {pattern}: {e}")))?;
    match hir.kind() {
        HirKind::Class(Class::Unicode(class)) => Ok(class
            .ranges()
            .iter()
            .map(|r| (r.start() as u32, r.end() as u32))
            .collect()),
        HirKind::Literal(lit) => {
            let c = std::str::from_utf8(&lit.0)
                .ok()
                .and_then(|s| s.chars().next())
                .ok_or_else(|| TokenError(format!("character class {pattern}: not a char")))?;
            Ok(vec![(c as u32, c as u32)])
        }
        _ => Err(TokenError(format!(
            "character class {pattern}: not a class"
        ))),
    }
}
