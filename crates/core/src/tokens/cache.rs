//! A bounded per-VM (per-thread natively) cache of piece → token count and
//! token ids.
//!
//! Prose repeats its words: most pieces the pre-tokenizer yields were seen
//! a few pieces earlier. A hit skips the piece's lookup in the 1 MB rank
//! index and, for a piece of several tokens, its byte-pair merges. The
//! cache is direct-mapped (one slot per hash, the newer piece wins), keeps
//! only pieces of up to [`MAX_PIECE`] bytes, and stores the bytes, so a hit
//! is exact: counts and ids are the merge's, never an estimate.
//!
//! Both passes share the slots: the counting pass ([`Pass::count`]) and the
//! id pass a classifier needs ([`Pass::hit`], [`Pass::miss`]). A slot holds the piece's
//! count and, when it is at most [`MAX_IDS`] tokens (nearly every piece of
//! up to 22 bytes), its ids inline. A miss in the id pass merges the piece
//! once and keeps both; a miss in the counting pass keeps the count, and
//! the id of a one-token piece (most pieces: the lookup that counts it
//! finds its id). A piece of several tokens first seen by the counting
//! pass is merged once more when the id pass first wants it (its ids
//! would cost the counting pass a lookup per token, which a policy without
//! a classifier never reads); a piece of more than [`MAX_IDS`] tokens keeps
//! only its count, and the id pass merges it every time.
//!
//! Fixed size, so a VM's memory never grows with traffic: [`SLOTS`] × 40
//! bytes (160 KiB) per encoding used, allocated on its first text.

use std::cell::{Cell, RefCell};

use super::Encoding;

/// Longest piece kept (longer pieces are rare and cost their merge anyway).
pub(super) const MAX_PIECE: usize = 22;
/// Most token ids a slot holds (a piece of more keeps only its count).
pub(super) const MAX_IDS: usize = 4;
/// Slots per encoding (a power of two).
const SLOTS: usize = 4096;

/// A piece's token count and, when `known`, its ids (`ids[..count]`): what
/// a merge hands the cache.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub(super) struct Ids {
    pub count: usize,
    pub ids: [u32; MAX_IDS],
    pub known: bool,
}

impl Ids {
    /// A count without its ids.
    pub fn of_count(count: usize) -> Ids {
        Ids {
            count,
            ids: [0; MAX_IDS],
            known: false,
        }
    }

    /// A piece of one token.
    pub fn one(id: u32) -> Ids {
        Ids::of_slice(&[id])
    }

    /// The count of `ids`, and the ids themselves when they fit a slot.
    pub fn of_slice(ids: &[u32]) -> Ids {
        let mut out = Ids::of_count(ids.len());
        if let Some(first) = out.ids.get_mut(..ids.len()) {
            first.copy_from_slice(ids);
            out.known = true;
        }
        out
    }
}

/// A slot's count byte: the count, and this bit when its ids are not kept.
const IDS_UNKNOWN: u8 = 0x80;

#[derive(Clone, Copy)]
struct Slot {
    /// 0: empty.
    len: u8,
    /// Tokens of the piece (at most 22: a token is at least a byte), with
    /// [`IDS_UNKNOWN`] unless `ids[..count]` are its ids.
    count: u8,
    bytes: [u8; MAX_PIECE],
    ids: [u32; MAX_IDS],
}

impl Slot {
    fn count(&self) -> usize {
        usize::from(self.count & !IDS_UNKNOWN)
    }
}

const EMPTY: Slot = Slot {
    len: 0,
    count: 0,
    bytes: [0; MAX_PIECE],
    ids: [0; MAX_IDS],
};

/// Served from the cache / not, per pass.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Counting pass, pieces of up to [`MAX_PIECE`] bytes.
    pub hits: u64,
    pub misses: u64,
    /// Id pass, every piece: a miss is a piece merged (not kept, not in
    /// the cache, or of more than [`MAX_IDS`] tokens).
    pub id_hits: u64,
    pub id_misses: u64,
}

struct Cache {
    slots: Vec<Slot>,
    stats: Stats,
}

impl Cache {
    fn new() -> Cache {
        Cache {
            slots: vec![EMPTY; SLOTS],
            stats: Stats::default(),
        }
    }

    /// The slot of `piece` if it holds `piece`.
    fn find(&self, slot: usize, piece: &[u8]) -> Option<&Slot> {
        self.slots.get(slot).filter(|s| {
            usize::from(s.len) == piece.len() && s.bytes.get(..piece.len()) == Some(piece)
        })
    }

    fn store(&mut self, slot: usize, piece: &[u8], ids: &Ids) {
        let (Ok(count), Ok(len)) = (u8::try_from(ids.count), u8::try_from(piece.len())) else {
            return;
        };
        if count >= IDS_UNKNOWN {
            return; // never for a piece of up to MAX_PIECE bytes
        }
        if let Some(s) = self.slots.get_mut(slot) {
            s.len = len;
            s.count = if ids.known {
                count
            } else {
                count | IDS_UNKNOWN
            };
            if let Some(dst) = s.bytes.get_mut(..piece.len()) {
                dst.copy_from_slice(piece);
            }
            s.ids = ids.ids;
        }
    }
}

thread_local! {
    static CACHES: RefCell<[Option<Cache>; 2]> = const { RefCell::new([None, None]) };
    static ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Turns this thread's cache off (or on again): for measuring what it saves
/// (`examples/count_file.rs`), never needed otherwise.
#[doc(hidden)]
pub fn set_enabled(enabled: bool) {
    ENABLED.with(|e| e.set(enabled));
}

/// FNV-1a over the piece: cheap for short pieces, spreads words well enough
/// for a direct-mapped table.
pub(super) fn slot_of(piece: &[u8]) -> usize {
    let mut h: u32 = 0x811c_9dc5;
    for &b in piece {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    (h >> 8) as usize & (SLOTS - 1)
}

/// One text's pass over `encoding`'s cache, borrowed once for the whole
/// text rather than per piece. Without a cache (turned off, or busy: never
/// expected, the VM is single-threaded) every piece is merged.
pub(super) struct Pass<'c> {
    cache: Option<&'c mut Cache>,
}

/// Runs `f` with a [`Pass`] over this thread's cache for `encoding`.
pub(super) fn with<R>(encoding: Encoding, f: impl FnOnce(&mut Pass<'_>) -> R) -> R {
    let enabled = ENABLED.with(Cell::get);
    CACHES.with(|caches| {
        let mut guard = if enabled {
            caches.try_borrow_mut().ok()
        } else {
            None
        };
        let cache = guard
            .as_mut()
            .and_then(|c| c.get_mut(encoding.index()))
            .map(|c| c.get_or_insert_with(Cache::new));
        f(&mut Pass { cache })
    })
}

impl Pass<'_> {
    /// The count of `piece`: from the cache, or from `merge` (then kept,
    /// with the ids it hands over).
    pub fn count(&mut self, piece: &[u8], merge: impl FnOnce() -> Ids) -> usize {
        let Some(cache) = self.cache.as_deref_mut() else {
            return merge().count;
        };
        if piece.len() > MAX_PIECE || piece.is_empty() {
            return merge().count;
        }
        let slot = slot_of(piece);
        if let Some(s) = cache.find(slot, piece) {
            let n = s.count();
            cache.stats.hits = cache.stats.hits.saturating_add(1);
            return n;
        }
        cache.stats.misses = cache.stats.misses.saturating_add(1);
        let ids = merge();
        cache.store(slot, piece, &ids);
        ids.count
    }

    /// The ids of `piece` if a slot holds them: a copy of the slot's
    /// (16 bytes), and how many of them are the piece's. The id pass
    /// ([`super::Tokenizer::visit`]) asks this first, then [`Pass::miss`].
    #[inline(always)]
    pub fn hit(&mut self, piece: &[u8]) -> Option<([u32; MAX_IDS], usize)> {
        let cache = self.cache.as_deref_mut()?;
        if piece.len() > MAX_PIECE || piece.is_empty() {
            return None;
        }
        let s = cache.find(slot_of(piece), piece)?;
        if s.count & IDS_UNKNOWN != 0 {
            return None;
        }
        let found = (s.ids, usize::from(s.count));
        cache.stats.id_hits = cache.stats.id_hits.saturating_add(1);
        Some(found)
    }

    /// Merges `piece` into `buffer`, and keeps its ids if it is not kept
    /// yet or they fit its slot.
    #[inline(never)]
    pub fn miss(
        &mut self,
        piece: &[u8],
        merge: &mut impl FnMut(&[u8], &mut Vec<u32>),
        buffer: &mut Vec<u32>,
    ) {
        buffer.clear();
        merge(piece, buffer);
        let Some(cache) = self.cache.as_deref_mut() else {
            return;
        };
        cache.stats.id_misses = cache.stats.id_misses.saturating_add(1);
        if piece.len() > MAX_PIECE || piece.is_empty() {
            return;
        }
        let slot = slot_of(piece);
        // Present: counted only, or more ids than a slot holds.
        let present = cache.find(slot, piece).is_some();
        let seen = Ids::of_slice(buffer);
        if !present || seen.known {
            cache.store(slot, piece, &seen);
        }
    }
}

/// This thread's cache statistics for `encoding` since it was created: the
/// hit rates `scripts/bench`, `examples/decide_file.rs` and the tests report.
pub fn stats(encoding: Encoding) -> Stats {
    CACHES.with(|caches| {
        caches
            .try_borrow()
            .ok()
            .and_then(|c| {
                c.get(encoding.index())
                    .and_then(|c| c.as_ref())
                    .map(|c| c.stats)
            })
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The counting pass's merge hands over the id of a one-token piece only.
    fn count(e: Encoding, piece: &[u8], list: &[u32]) -> usize {
        let merged = match list {
            [one] => Ids::one(*one),
            _ => Ids::of_count(list.len()),
        };
        with(e, |pass| pass.count(piece, || merged))
    }

    /// The ids the id pass finds for `piece` and whether `merge` was called.
    fn visit(e: Encoding, piece: &[u8], list: &[u32]) -> (Vec<u32>, bool) {
        with(e, |pass| match pass.hit(piece) {
            Some((ids, n)) => (ids[..n].to_vec(), false),
            None => {
                let mut out = Vec::new();
                pass.miss(piece, &mut |_, ids| ids.extend_from_slice(list), &mut out);
                (out, true)
            }
        })
    }

    fn same_slot_as(piece: &str) -> String {
        (0u32..)
            .map(|i| format!(" w{i}"))
            .find(|w| slot_of(w.as_bytes()) == slot_of(piece.as_bytes()) && w != piece)
            .unwrap()
    }

    #[test]
    fn a_hit_returns_the_stored_count_and_a_collision_is_not_a_hit() {
        let e = Encoding::Cl100kBase;
        assert_eq!(count(e, b" hello", &[1]), 1);
        // Cached now: the merge's (wrong, on purpose) answer is not asked for.
        let before = stats(e);
        assert_eq!(count(e, b" hello", &[7, 7, 7]), 1);
        assert_eq!(stats(e).hits, before.hits + 1);
        // Same slot, different bytes: counted afresh, never the other's count.
        let other = same_slot_as(" hello");
        assert_eq!(count(e, other.as_bytes(), &[3, 4, 5]), 3);
        assert_eq!(count(e, b" hello", &[1]), 1);
    }

    #[test]
    fn a_counted_piece_is_an_id_hit_and_a_visited_piece_a_count_hit() {
        let e = Encoding::O200kBase;
        // One token: the counting pass keeps its id.
        assert_eq!(count(e, b" one", &[10]), 1);
        assert_eq!(visit(e, b" one", &[99]), (vec![10], false));
        // Several: counted only; the first id pass merges it and keeps the ids.
        assert_eq!(count(e, b" counted", &[10, 11]), 2);
        assert_eq!(visit(e, b" counted", &[10, 11]), (vec![10, 11], true));
        assert_eq!(visit(e, b" counted", &[99]), (vec![10, 11], false));
        assert_eq!(count(e, b" counted", &[99]), 2);
        assert_eq!(
            visit(e, b" visited", &[20, 21, 22]),
            (vec![20, 21, 22], true)
        );
        assert_eq!(count(e, b" visited", &[1]), 3);
        assert_eq!(visit(e, b" visited", &[1]), (vec![20, 21, 22], false));
        // A collision evicts: the next visit merges again.
        let other = same_slot_as(" visited");
        assert_eq!(visit(e, other.as_bytes(), &[5]), (vec![5], true));
        assert_eq!(
            visit(e, b" visited", &[20, 21, 22]),
            (vec![20, 21, 22], true)
        );
    }

    #[test]
    fn a_piece_of_more_ids_than_a_slot_holds_keeps_its_count_and_merges_for_ids() {
        let e = Encoding::O200kBase;
        let many: Vec<u32> = (100..100 + MAX_IDS as u32 + 2).collect();
        assert_eq!(count(e, b"qzxjvkw", &many), many.len());
        assert_eq!(count(e, b"qzxjvkw", &[1]), many.len()); // count hit
        assert_eq!(visit(e, b"qzxjvkw", &many), (many.clone(), true));
        assert_eq!(visit(e, b"qzxjvkw", &many), (many.clone(), true));
        let exactly: Vec<u32> = (200..200 + MAX_IDS as u32).collect();
        assert_eq!(visit(e, b"vkwqzx", &exactly), (exactly.clone(), true));
        assert_eq!(visit(e, b"vkwqzx", &[]), (exactly, false));
    }

    #[test]
    fn long_pieces_and_large_counts_are_not_kept() {
        let e = Encoding::O200kBase;
        let long = [b'x'; MAX_PIECE + 1];
        assert_eq!(count(e, &long, &[7; 7]), 7);
        assert_eq!(count(e, &long, &[8; 8]), 8);
        assert_eq!(visit(e, &long, &[1, 2]), (vec![1, 2], true));
        let large = vec![3u32; 300];
        assert_eq!(count(e, b"abc", &large), 300);
        assert_eq!(count(e, b"abc", &[2, 2]), 2);
        assert_eq!(visit(e, b"abd", &large).0.len(), 300);
        assert_eq!(visit(e, b"abd", &[4]), (vec![4], true));
    }

    #[test]
    fn a_slot_is_40_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 40);
    }
}
