//! A bounded per-VM (per-thread natively) cache of piece → token count.
//!
//! Prose repeats its words: most pieces the pre-tokenizer yields were seen
//! a few pieces earlier. A hit skips the piece's lookup in the 1 MB rank
//! index and, for a piece of several tokens, its byte-pair merges. The
//! cache is direct-mapped (one slot per hash, the newer piece wins), keeps
//! only pieces of up to [`MAX_PIECE`] bytes, and stores the bytes, so a hit
//! is exact: counts are the merge's, never an estimate. Fixed size, so a
//! VM's memory never grows with traffic: [`SLOTS`] × 24 bytes per encoding.

use std::cell::{Cell, RefCell};

use super::Encoding;

/// Longest piece kept (longer pieces are rare and cost their merge anyway).
pub(super) const MAX_PIECE: usize = 22;
/// Slots per encoding (a power of two).
const SLOTS: usize = 4096;

#[derive(Clone, Copy)]
struct Slot {
    /// 0: empty.
    len: u8,
    count: u8,
    bytes: [u8; MAX_PIECE],
}

const EMPTY: Slot = Slot {
    len: 0,
    count: 0,
    bytes: [0; MAX_PIECE],
};

struct Cache {
    slots: Vec<Slot>,
    hits: u64,
    misses: u64,
}

impl Cache {
    fn new() -> Cache {
        Cache {
            slots: vec![EMPTY; SLOTS],
            hits: 0,
            misses: 0,
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
fn slot_of(piece: &[u8]) -> usize {
    let mut h: u32 = 0x811c_9dc5;
    for &b in piece {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    (h >> 8) as usize & (SLOTS - 1)
}

/// The count of `piece` in `encoding`: from the cache, or from `count`
/// (then kept). Pieces longer than [`MAX_PIECE`] bytes, counts over 255,
/// and a cache that is busy (never expected: the VM is single-threaded) go
/// straight to `count`.
pub(super) fn count_cached(
    encoding: Encoding,
    piece: &[u8],
    count: impl FnOnce() -> usize,
) -> usize {
    if piece.len() > MAX_PIECE || piece.is_empty() || !ENABLED.with(Cell::get) {
        return count();
    }
    let slot = slot_of(piece);
    let found = CACHES.with(|caches| {
        let mut caches = caches.try_borrow_mut().ok()?;
        let cache = caches
            .get_mut(encoding.index())?
            .get_or_insert_with(Cache::new);
        let s = cache.slots.get(slot)?;
        let hit = usize::from(s.len) == piece.len() && s.bytes.get(..piece.len()) == Some(piece);
        if hit {
            cache.hits = cache.hits.saturating_add(1);
            Some(Some(usize::from(s.count)))
        } else {
            cache.misses = cache.misses.saturating_add(1);
            Some(None)
        }
    });
    match found {
        Some(Some(n)) => n,
        None => count(),
        Some(None) => {
            let n = count();
            store(encoding, slot, piece, n);
            n
        }
    }
}

fn store(encoding: Encoding, slot: usize, piece: &[u8], n: usize) {
    let (Ok(count), Ok(len)) = (u8::try_from(n), u8::try_from(piece.len())) else {
        return;
    };
    CACHES.with(|caches| {
        let Ok(mut caches) = caches.try_borrow_mut() else {
            return;
        };
        let Some(Some(cache)) = caches.get_mut(encoding.index()) else {
            return;
        };
        if let Some(s) = cache.slots.get_mut(slot) {
            s.len = len;
            s.count = count;
            if let Some(dst) = s.bytes.get_mut(..piece.len()) {
                dst.copy_from_slice(piece);
            }
        }
    });
}

/// (hits, misses) of this thread's cache for `encoding` since it was
/// created: the hit rate `scripts/bench` and the tests report.
pub fn stats(encoding: Encoding) -> (u64, u64) {
    CACHES.with(|caches| {
        caches
            .try_borrow()
            .ok()
            .and_then(|c| {
                c.get(encoding.index())
                    .and_then(|c| c.as_ref())
                    .map(|c| (c.hits, c.misses))
            })
            .unwrap_or((0, 0))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hit_returns_the_stored_count_and_a_collision_is_not_a_hit() {
        let e = Encoding::Cl100kBase;
        assert_eq!(count_cached(e, b" hello", || 1), 1);
        // Cached now: the closure is not called again.
        assert_eq!(count_cached(e, b" hello", unreachable_count), 1);
        let (hits, _) = stats(e);
        assert!(hits >= 1);
        // Same slot, different bytes: counted afresh, never the other's count.
        let other = (0u32..)
            .map(|i| format!(" w{i}"))
            .find(|w| slot_of(w.as_bytes()) == slot_of(b" hello") && w != " hello");
        let Some(other) = other else { return };
        assert_eq!(count_cached(e, other.as_bytes(), || 3), 3);
        assert_eq!(count_cached(e, b" hello", || 1), 1);
    }

    #[test]
    fn long_pieces_and_large_counts_are_not_kept() {
        let e = Encoding::O200kBase;
        let long = [b'x'; MAX_PIECE + 1];
        assert_eq!(count_cached(e, &long, || 7), 7);
        assert_eq!(count_cached(e, &long, || 8), 8);
        assert_eq!(count_cached(e, b"abc", || 300), 300);
        assert_eq!(count_cached(e, b"abc", || 2), 2);
    }

    fn unreachable_count() -> usize {
        usize::MAX // a hit never calls this; the assertion above would fail
    }
}
