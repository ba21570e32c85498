//! Byte-pair merging of one piece, counting the tokens it becomes.
//!
//! The same algorithm as tiktoken's `byte_pair_encode`, and the same choice
//! between its two forms (pieces under 100 bytes: a vector scanned for the
//! lowest-ranked pair; longer ones: a heap over a linked list), so the merges,
//! and therefore the counts, are tiktoken's: repeatedly merge the adjacent
//! pair whose concatenation has the lowest rank, the leftmost on ties.

use std::collections::BinaryHeap;

use super::cache::Ids;
use super::table::{Rank, Table};

const NONE: Rank = Rank::MAX;
/// tiktoken switches to the heap form at this length.
const LARGE: usize = 100;

/// Reusable buffers for [`count_piece`] and [`visit_piece`].
#[derive(Default)]
pub(super) struct Scratch {
    parts: Vec<(usize, Rank)>,
}

/// Tokens `piece` becomes, with its rank when it is one token (free: the
/// first lookup finds it), for the piece cache. The ids of a piece of
/// several tokens cost a lookup each: the counting pass leaves them to the
/// id pass, which merges such a piece once more when it first wants them.
pub(super) fn count_piece(table: &Table, piece: &[u8], scratch: &mut Scratch) -> Ids {
    if piece.is_empty() {
        return Ids::of_count(0);
    }
    if let Some(rank) = table.rank(piece) {
        return Ids::one(rank);
    }
    Ids::of_count(if piece.len() < LARGE {
        merge_small(table, piece, &mut scratch.parts)
    } else {
        merge_large(table, piece)
    })
}

/// Calls `visit` with the rank of each token `piece` becomes, in order:
/// the same merges as [`count_piece`], for the classifier's token features.
pub(super) fn visit_piece(
    table: &Table,
    piece: &[u8],
    scratch: &mut Scratch,
    visit: &mut impl FnMut(Rank),
) {
    if piece.is_empty() {
        return;
    }
    if let Some(rank) = table.rank(piece) {
        visit(rank);
        return;
    }
    let rank_of = |from: usize, to: usize| piece.get(from..to).and_then(|b| table.rank(b));
    if piece.len() < LARGE {
        merge_small(table, piece, &mut scratch.parts);
        for pair in scratch.parts.windows(2) {
            if let [(from, _), (to, _)] = pair {
                visit(rank_of(*from, *to).unwrap_or(NONE));
            }
        }
    } else {
        let state = merge_large_parts(table, piece);
        let mut i = 0;
        while let Some(s) = state.get(i) {
            visit(rank_of(i, s.end).unwrap_or(NONE));
            i = s.end;
        }
    }
}

/// tiktoken's `_byte_pair_merge`: `parts[i] = (start, rank of merging part i
/// with part i + 1)`.
fn merge_small(table: &Table, piece: &[u8], parts: &mut Vec<(usize, Rank)>) -> usize {
    let rank_of = |from: usize, to: usize| piece.get(from..to).and_then(|b| table.rank(b));
    parts.clear();
    let mut min = (NONE, usize::MAX);
    for i in 0..piece.len().saturating_sub(1) {
        let rank = rank_of(i, i.saturating_add(2)).unwrap_or(NONE);
        if rank < min.0 {
            min = (rank, i);
        }
        parts.push((i, rank));
    }
    parts.push((piece.len().saturating_sub(1), NONE));
    parts.push((piece.len(), NONE));

    // Rank of merging part i with part i + 1, i.e. bytes from part i's start
    // to part i + 2's (i + 3 while part i + 1 is still in the vector).
    let pair_rank = |parts: &[(usize, Rank)], i: usize, skip: usize| -> Rank {
        match (
            parts.get(i),
            parts.get(i.saturating_add(2).saturating_add(skip)),
        ) {
            (Some(&(from, _)), Some(&(to, _))) => rank_of(from, to).unwrap_or(NONE),
            _ => NONE,
        }
    };

    while min.0 != NONE {
        let i = min.1;
        if let Some(before) = i.checked_sub(1) {
            let r = pair_rank(parts, before, 1);
            if let Some(p) = parts.get_mut(before) {
                p.1 = r;
            }
        }
        let r = pair_rank(parts, i, 1);
        if let Some(p) = parts.get_mut(i) {
            p.1 = r;
        }
        let after = i.saturating_add(1);
        if after < parts.len() {
            parts.remove(after);
        }
        min = (NONE, usize::MAX);
        for (j, &(_, rank)) in parts.iter().take(parts.len().saturating_sub(1)).enumerate() {
            if rank < min.0 {
                min = (rank, j);
            }
        }
    }
    parts.len().saturating_sub(1)
}

#[derive(PartialEq, Eq, Clone, Copy)]
struct Merge {
    start: usize,
    rank: Rank,
}

impl Ord for Merge {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // BinaryHeap is a max-heap: lowest rank first, then leftmost.
        other
            .rank
            .cmp(&self.rank)
            .then_with(|| other.start.cmp(&self.start))
    }
}

impl PartialOrd for Merge {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Clone, Copy)]
struct State {
    prev: usize,
    end: usize,
    next_end: usize,
    next_rank: Rank,
}

/// tiktoken's `_byte_pair_merge_large`, counting instead of collecting.
fn merge_large(table: &Table, piece: &[u8]) -> usize {
    let state = merge_large_parts(table, piece);
    let mut count = 0usize;
    let mut i = 0;
    while let Some(s) = state.get(i) {
        count = count.saturating_add(1);
        i = s.end;
    }
    count
}

/// The merged parts of a long piece: from part 0, `state[i].end` is where
/// the part starting at `i` ends (and the next begins).
fn merge_large_parts(table: &Table, piece: &[u8]) -> Vec<State> {
    let len = piece.len();
    let rank_of = |from: usize, to: usize| piece.get(from..to).and_then(|b| table.rank(b));
    let mut state: Vec<State> = (0..len)
        .map(|i| State {
            prev: i.wrapping_sub(1),
            end: i.saturating_add(1),
            next_end: i.saturating_add(2),
            next_rank: NONE,
        })
        .collect();
    let mut heap = BinaryHeap::with_capacity(len);
    for (i, s) in state.iter_mut().enumerate().take(len.saturating_sub(1)) {
        if let Some(rank) = rank_of(i, i.saturating_add(2)) {
            heap.push(Merge { start: i, rank });
            s.next_rank = rank;
        }
    }

    // Sets the merge of the part starting at `start` with the part ending at `next_end`.
    let potential =
        |state: &mut [State], heap: &mut BinaryHeap<Merge>, start: usize, next_end: usize| {
            let rank = if next_end <= len {
                rank_of(start, next_end)
            } else {
                None
            };
            if let Some(s) = state.get_mut(start) {
                s.next_end = next_end;
                s.next_rank = rank.unwrap_or(NONE);
            }
            if let Some(rank) = rank {
                heap.push(Merge { start, rank });
            }
        };

    while let Some(left) = heap.pop() {
        let Some(&l) = state.get(left.start) else {
            break;
        };
        if left.rank != l.next_rank {
            continue; // invalidated
        }
        let right_start = l.end;
        let right_end = l.next_end;
        let right_next_end = state
            .get(right_start)
            .map_or(len.saturating_add(1), |s| s.next_end);
        if let Some(s) = state.get_mut(left.start) {
            s.end = right_end;
        }
        potential(&mut state, &mut heap, left.start, right_next_end);
        if let Some(s) = state.get_mut(right_end) {
            s.prev = left.start;
        }
        if left.start > 0 {
            let prev_start = l.prev;
            potential(&mut state, &mut heap, prev_start, right_end);
        }
        if let Some(s) = state.get_mut(right_start) {
            s.next_rank = NONE;
        }
    }
    state
}
