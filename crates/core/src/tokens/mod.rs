//! Exact token counting with OpenAI's BPE encodings, counts identical to
//! tiktoken's `encode_ordinary`.
//!
//! Built for the filter's constraints (one copy per Envoy worker VM): each
//! vocabulary is a compact embedded asset ([`table`]), with its bytes → rank
//! hash index built once per process (once per wasm VM) on first use, and
//! only for the encodings a policy names. Text is split by a hand-written
//! matcher of OpenAI's pre-tokenizer regexes ([`pretokenize`]), then each
//! piece is merged by tiktoken's own algorithm ([`bpe`]).
//! `tests/token_tables.rs` checks the assets against tiktoken-rs, the unit
//! tests compare counts with tiktoken-rs on random and adversarial strings,
//! and `tests/token_parity` compares the CLI with OpenAI's Python tiktoken.

mod bpe;
pub mod cache;
mod classes;
mod pretokenize;
mod table;

use std::fmt;
use std::sync::OnceLock;

use classes::Classes;
use pretokenize::{Pattern, Pieces};
use table::Table;

/// A BPE encoding the router can count with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Encoding {
    /// GPT-4o, GPT-4.1, o-series.
    O200kBase,
    /// GPT-4, GPT-3.5-turbo, text-embedding-3.
    Cl100kBase,
}

impl Encoding {
    pub const ALL: [Encoding; 2] = [Encoding::O200kBase, Encoding::Cl100kBase];

    pub fn name(self) -> &'static str {
        match self {
            Encoding::O200kBase => "o200k_base",
            Encoding::Cl100kBase => "cl100k_base",
        }
    }

    pub fn from_name(name: &str) -> Option<Encoding> {
        Encoding::ALL.into_iter().find(|e| e.name() == name)
    }

    /// Position in per-encoding arrays.
    pub(crate) fn index(self) -> usize {
        match self {
            Encoding::O200kBase => 0,
            Encoding::Cl100kBase => 1,
        }
    }

    fn asset(self) -> &'static [u8] {
        match self {
            Encoding::O200kBase => {
                include_bytes!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../../assets/o200k_base.tokens"
                ))
            }
            Encoding::Cl100kBase => {
                include_bytes!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../../assets/cl100k_base.tokens"
                ))
            }
        }
    }

    fn pattern(self) -> Pattern {
        match self {
            Encoding::O200kBase => pretokenize::O200K,
            Encoding::Cl100kBase => pretokenize::CL100K,
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The encoding tables could not be built (never expected: they are embedded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenError(pub String);

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tokenizer unavailable: {}", self.0)
    }
}

impl std::error::Error for TokenError {}

/// One loaded encoding.
struct Tokenizer {
    encoding: Encoding,
    table: Table,
    classes: &'static Classes,
    pattern: Pattern,
}

static CLASSES: OnceLock<Result<Classes, TokenError>> = OnceLock::new();
static O200K: OnceLock<Result<Tokenizer, TokenError>> = OnceLock::new();
static CL100K: OnceLock<Result<Tokenizer, TokenError>> = OnceLock::new();

fn tokenizer(encoding: Encoding) -> Result<&'static Tokenizer, TokenError> {
    let cell = match encoding {
        Encoding::O200kBase => &O200K,
        Encoding::Cl100kBase => &CL100K,
    };
    let loaded = cell.get_or_init(|| {
        let classes = CLASSES
            .get_or_init(Classes::build)
            .as_ref()
            .map_err(Clone::clone)?;
        Ok(Tokenizer {
            encoding,
            table: Table::load(
                encoding.name(),
                encoding.asset(),
                Encoding::O200kBase.asset(),
            )?,
            classes,
            pattern: encoding.pattern(),
        })
    });
    loaded.as_ref().map_err(Clone::clone)
}

#[cfg(test)]
thread_local! {
    /// Texts tokenized on this thread: lets tests prove a decision
    /// tokenizes each text once.
    pub(crate) static PASSES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

#[cfg(test)]
fn count_pass() {
    PASSES.with(|p| p.set(p.get().saturating_add(1)));
}

#[cfg(not(test))]
fn count_pass() {}

impl Tokenizer {
    /// Tokens of `text`, stopping as soon as `limit` is reached.
    fn count(&self, text: &str, limit: usize) -> usize {
        count_pass();
        let mut scratch = bpe::Scratch::default();
        cache::with(self.encoding, |pass| {
            let mut total = 0usize;
            for piece in Pieces::new(text, self.classes, self.pattern) {
                let bytes = piece.as_bytes();
                let n = pass.count(bytes, || bpe::count_piece(&self.table, bytes, &mut scratch));
                total = total.saturating_add(n);
                if total >= limit {
                    return limit;
                }
            }
            total
        })
    }

    /// `total` plus the tokens of the rest of a text's `pieces`, once its
    /// ids are no longer wanted. (Not shared with [`Tokenizer::count`]:
    /// LLVM compiles that loop better on its own.)
    #[inline(never)]
    fn count_rest(
        &self,
        pass: &mut cache::Pass<'_>,
        pieces: Pieces<'_>,
        scratch: &mut bpe::Scratch,
        mut total: usize,
    ) -> usize {
        for piece in pieces {
            let bytes = piece.as_bytes();
            let n = pass.count(bytes, || bpe::count_piece(&self.table, bytes, scratch));
            total = total.saturating_add(n);
        }
        total
    }

    /// Calls `visit` with the token ids of `text`, in order and in
    /// batches (the ids of consecutive pieces, [`BATCH`] or so at a time),
    /// until it returns false; then counts the rest of the text if
    /// `count_rest`. Returns the tokens visited (and counted). Repeated
    /// pieces come from the cache, as in [`Tokenizer::count`]. Batches,
    /// not a call per piece: most pieces are one token, and a reader's
    /// loop over many ids keeps its state in registers, where a call per
    /// piece reloads and stores it every time.
    fn visit(&self, text: &str, count_rest: bool, visit: &mut impl FnMut(&[u32]) -> bool) -> usize {
        count_pass();
        let mut scratch = bpe::Scratch::default();
        let mut merged = Vec::new();
        cache::with(self.encoding, |pass| {
            let mut pieces = Pieces::new(text, self.classes, self.pattern);
            let mut merge = |piece: &[u8], ids: &mut Vec<u32>| {
                bpe::visit_piece(&self.table, piece, &mut scratch, &mut |id| ids.push(id));
            };
            let mut batch = Batch::default();
            let mut seen = 0usize;
            let mut more = true;
            for piece in pieces.by_ref() {
                let bytes = piece.as_bytes();
                if let Some((ids, n)) = pass.hit(bytes) {
                    seen = seen.saturating_add(n);
                    if batch.push(ids, n) {
                        more = batch.flush(visit);
                    }
                } else {
                    pass.miss(bytes, &mut merge, &mut merged);
                    seen = seen.saturating_add(merged.len());
                    // In order: the batch so far, then this piece's ids.
                    more = batch.flush(visit) && visit(&merged);
                }
                if !more {
                    break;
                }
            }
            if more {
                batch.flush(visit);
            } else if count_rest {
                return self.count_rest(pass, pieces, &mut scratch, seen);
            }
            seen
        })
    }
}

/// Ids a batch holds before it is handed over.
const BATCH: usize = 64;

/// Token ids of consecutive pieces, gathered for one call of a visitor.
struct Batch {
    /// `ids[..len]`; room for a slot's ids past [`BATCH`].
    ids: [u32; BATCH + cache::MAX_IDS],
    len: usize,
}

impl Default for Batch {
    fn default() -> Batch {
        Batch {
            ids: [0; BATCH + cache::MAX_IDS],
            len: 0,
        }
    }
}

impl Batch {
    /// Adds the first `n` of a slot's `ids` (n ≤ MAX_IDS): whether the
    /// batch is full.
    #[inline(always)]
    fn push(&mut self, ids: [u32; cache::MAX_IDS], n: usize) -> bool {
        // len < BATCH between pushes (a full batch is flushed): in range.
        if let Some(room) = self
            .ids
            .get_mut(self.len..self.len.saturating_add(cache::MAX_IDS))
        {
            room.copy_from_slice(&ids);
        }
        self.len = self.len.saturating_add(n);
        self.len >= BATCH
    }

    /// Hands the batch to `visit` (if not empty) and empties it: what
    /// `visit` returned.
    #[inline(always)]
    fn flush(&mut self, visit: &mut impl FnMut(&[u32]) -> bool) -> bool {
        let ids = self.ids.get(..self.len).unwrap_or_default();
        self.len = 0;
        ids.is_empty() || visit(ids)
    }
}

/// Calls `visit` with the id (rank) of each token of `text`, in order:
/// tiktoken's `encode_ordinary`, without collecting them. Returns how many
/// there were: [`count`], from the same pass.
pub fn visit_ids(
    encoding: Encoding,
    text: &str,
    mut visit: impl FnMut(u32),
) -> Result<usize, TokenError> {
    Ok(tokenizer(encoding)?.visit(text, false, &mut |ids| {
        ids.iter().for_each(|&id| visit(id));
        true
    }))
}

/// Calls `visit` with the ids of [`visit_ids`] in batches (slices of a
/// few pieces' ids, in order) until it returns false, and counts the rest:
/// returns [`count`] of the whole text.
pub fn visit_ids_batched(
    encoding: Encoding,
    text: &str,
    mut visit: impl FnMut(&[u32]) -> bool,
) -> Result<usize, TokenError> {
    Ok(tokenizer(encoding)?.visit(text, true, &mut visit))
}

/// [`visit_ids_batched`] that stops where `visit` returns false: for a
/// reader that needs no count.
pub fn visit_ids_batched_while(
    encoding: Encoding,
    text: &str,
    mut visit: impl FnMut(&[u32]) -> bool,
) -> Result<(), TokenError> {
    tokenizer(encoding)?.visit(text, false, &mut visit);
    Ok(())
}

/// Builds the tables of `encoding` now, so the first request does not pay for it.
pub fn preload(encoding: Encoding) -> Result<(), TokenError> {
    tokenizer(encoding).map(|_| ())
}

/// Tokens of `text` as ordinary text: special-token markers such as
/// `<|endoftext|>` count as the plain characters they are, as the API bills
/// user content.
pub fn count(encoding: Encoding, text: &str) -> Result<usize, TokenError> {
    Ok(tokenizer(encoding)?.count(text, usize::MAX))
}

/// `min(count(encoding, text), limit)`, reading only as much of `text` as it
/// takes to reach `limit`: for tests like "is the prompt over N tokens" that
/// do not need the exact count of a long prompt.
pub fn count_up_to(encoding: Encoding, text: &str, limit: usize) -> Result<usize, TokenError> {
    Ok(tokenizer(encoding)?.count(text, limit))
}

/// Builds `encoding`'s tables afresh, bypassing the per-process cache, and
/// drops them: what loading costs, for the benchmarks.
#[doc(hidden)]
pub fn load_uncached(encoding: Encoding) -> Result<(), TokenError> {
    Table::load(
        encoding.name(),
        encoding.asset(),
        Encoding::O200kBase.asset(),
    )
    .map(drop)
}

#[cfg(test)]
mod tests;
