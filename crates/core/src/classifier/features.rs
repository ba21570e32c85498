//! Features of one request, from what the filter already has: the token ids
//! of the scanned messages (unigrams and hashed bigrams), the log of their
//! count, the message count, tools / images / structured-output flags and
//! the task category. Training and scoring both read requests through
//! [`visit`], so a model is scored on exactly the features it learned.
//!
//! Token features are hashed counts scaled by 1/sqrt(total): a request's
//! token vector has (close to) unit length whatever its size, and scoring
//! needs no per-request allocation: each token adds one weight.

use crate::request::{RequestFacts, Segment};
use crate::task::Scan;
use crate::tokens::{self, Encoding, TokenError};

/// The dense features, in weight order (task one-hots follow).
pub const DENSE: [&str; 5] = [
    "log_tokens",
    "log_messages",
    "tools",
    "images",
    "structured_output",
];

/// The text-profile features (`profile: true`), after the task one-hots:
/// what transfers to subjects never seen in training better than which
/// tokens occur. Shares of the scanned tokens by rank (BPE ranks follow
/// merge order, so a high rank is a rarer piece of text), the share of
/// digits and of mathematical symbols in the scanned text, and its bytes
/// per token (technical text splits into more tokens per byte).
pub const PROFILE: [&str; 6] = [
    "rank_under_1k",
    "rank_1k_to_10k",
    "rank_over_50k",
    "digit_share",
    "symbol_share",
    "bytes_per_token",
];

/// How a compiled spec reads a request.
#[derive(Debug, Clone)]
pub struct Extractor {
    pub encoding: Encoding,
    pub scan: Scan,
    pub hash_bits: u32,
    pub bigrams: bool,
    pub max_tokens: usize,
    pub tasks: Vec<String>,
    /// Whether the [`PROFILE`] features follow the task one-hots.
    pub profile: bool,
}

/// Distinguishes bigram buckets from unigram buckets.
pub(super) const BIGRAM_SEED: u64 = 0x5bd1_e995_9e37_79b9;

/// splitmix64's finaliser: a fast, well-mixed 64-bit hash of an integer.
pub(super) fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Extractor {
    pub fn dense_len(&self) -> usize {
        let profile = if self.profile { PROFILE.len() } else { 0 };
        DENSE
            .len()
            .saturating_add(self.tasks.len())
            .saturating_add(profile)
    }

    /// Calls `token` with the bucket of every token feature (repeats
    /// repeat), fills `dense` (raw, not standardised; `dense_len` long) and
    /// returns the number of token features.
    pub fn visit(
        &self,
        facts: &RequestFacts,
        task: Option<&str>,
        dense: &mut [f64],
        mut token: impl FnMut(u32),
    ) -> Result<u64, TokenError> {
        let mut reader = self.reader(facts);
        for (index, segment) in facts.content.iter().enumerate() {
            if reader.segment(index) {
                tokens::visit_ids_batched_while(self.encoding, &segment.text, |ids| {
                    reader.ids(ids, &mut token)
                })?;
            }
        }
        Ok(reader.finish(task, dense))
    }

    /// A [`Reader`] of `facts`' features, fed token ids by the caller.
    pub fn reader<'a>(&'a self, facts: &'a RequestFacts) -> Reader<'a> {
        Reader {
            extractor: self,
            facts,
            last_user: facts.last_user_message(),
            scanned: false,
            previous: None,
            left: self.max_tokens,
            runs: 0,
            // hash_bits is in 8..=20 (checked when compiled): in range.
            shift: 64u32.saturating_sub(self.hash_bits),
            profile: Profile::default(),
        }
    }

    fn scans(&self, segment: &Segment, last_user: Option<usize>) -> bool {
        self.scan.covers(segment, last_user)
    }
}

/// The features of one request, fed the token ids of its content segments
/// in order (`RequestFacts::content`), a pre-tokenizer piece at a time. One
/// pass of the tokenizer can feed a reader while it counts the prompt (the
/// decision's signals), or a reader can be fed on its own
/// ([`Extractor::visit`]): both see the same features.
pub struct Reader<'a> {
    extractor: &'a Extractor,
    facts: &'a RequestFacts,
    last_user: Option<usize>,
    /// Whether the segment being read is scanned.
    scanned: bool,
    /// Its last token read (the first of the next bigram).
    previous: Option<u32>,
    /// Tokens the features may still read (`max_tokens` minus those read).
    left: usize,
    /// Segments of which at least one token was read: each has one bigram
    /// fewer than tokens, so the feature count needs no count per token.
    runs: usize,
    /// A hash's top `hash_bits` bits are its bucket.
    shift: u32,
    profile: Profile,
}

/// Counts behind the [`PROFILE`] features.
#[derive(Default)]
struct Profile {
    /// Scanned tokens with rank < 1,000, < 10,000, and ≥ 50,000.
    ranks: [u64; 3],
    bytes: u64,
    digits: u64,
    symbols: u64,
}

impl Profile {
    fn text(&mut self, text: &str) {
        for b in text.bytes() {
            self.digits = self.digits.saturating_add(u64::from(b.is_ascii_digit()));
            let symbol = matches!(
                b,
                b'=' | b'+' | b'*' | b'/' | b'^' | b'<' | b'>' | b'$' | b'\\'
            );
            self.symbols = self.symbols.saturating_add(u64::from(symbol));
        }
        self.bytes = self.bytes.saturating_add(text.len() as u64);
    }

    fn id(&mut self, id: u32) {
        let slot = match id {
            0..1_000 => self.ranks.get_mut(0),
            1_000..10_000 => self.ranks.get_mut(1),
            10_000..50_000 => None,
            _ => self.ranks.get_mut(2),
        };
        if let Some(n) = slot {
            *n = n.saturating_add(1);
        }
    }

    fn values(&self, tokens: usize) -> [f64; 6] {
        let share = |n: u64, of: f64| if of > 0.0 { n as f64 / of } else { 0.0 };
        let (t, b) = (tokens as f64, self.bytes as f64);
        let [r0, r1, r2] = self.ranks;
        [
            share(r0, t),
            share(r1, t),
            share(r2, t),
            share(self.digits, b),
            share(self.symbols, b),
            if t > 0.0 { (b / t).ln_1p() } else { 0.0 },
        ]
    }
}

impl Reader<'_> {
    /// Tokens of segment `index` the features may read: 0 when it is not
    /// scanned or `max_tokens` is reached.
    pub fn room(&self, index: usize) -> usize {
        match self.facts.content.get(index) {
            Some(s) if self.extractor.scans(s, self.last_user) => self.left,
            _ => 0,
        }
    }

    /// Starts segment `index` (segments in order): whether its tokens are
    /// read (it is scanned and `max_tokens` is not reached). Per segment,
    /// so that per token nothing is decided that a segment settles.
    pub fn segment(&mut self, index: usize) -> bool {
        self.previous = None;
        self.scanned = self.room(index) > 0;
        if self.scanned && self.extractor.profile {
            if let Some(s) = self.facts.content.get(index) {
                self.profile.text(&s.text);
            }
        }
        self.scanned
    }

    /// The next token ids of the segment started last (a batch of
    /// pieces'): calls `token` with the buckets they add, in order (a
    /// token's unigram, then its bigram with the token before it in the
    /// segment). Returns whether more tokens may be read. Inlined into the
    /// tokenizer's call with `token`: one loop over the batch, its state in
    /// registers; what is decided per segment (scanned? room?) or per
    /// batch (profile? bigrams?) is not decided per token.
    #[inline(always)]
    pub fn ids(&mut self, ids: &[u32], mut token: impl FnMut(u32)) -> bool {
        if !self.scanned {
            return false;
        }
        let ids = ids.get(..self.left).unwrap_or(ids);
        // ids.len() <= left: never saturates.
        self.left = self.left.saturating_sub(ids.len());
        let e = self.extractor;
        if e.profile {
            for &id in ids {
                self.profile.id(id);
            }
        }
        let shift = self.shift;
        let bucket = |key: u64| (mix(key) >> shift) as u32; // < 2^hash_bits
        if !e.bigrams {
            for &id in ids {
                token(bucket(u64::from(id)));
            }
            return self.left > 0;
        }
        let (mut previous, rest) = match (self.previous, ids.split_first()) {
            (Some(p), _) => (p, ids),
            (None, Some((&first, rest))) => {
                token(bucket(u64::from(first)));
                self.runs = self.runs.saturating_add(1);
                (first, rest)
            }
            (None, None) => return self.left > 0,
        };
        for &id in rest {
            token(bucket(u64::from(id)));
            token(bucket(
                (u64::from(previous) << 32 | u64::from(id)) ^ BIGRAM_SEED,
            ));
            previous = id;
        }
        self.previous = Some(previous);
        self.left > 0
    }

    /// Tokens read.
    fn tokens_read(&self) -> usize {
        self.extractor.max_tokens.saturating_sub(self.left)
    }

    /// Token features read: a unigram per token, and with bigrams one per
    /// token but the first of each segment.
    fn features(&self) -> u64 {
        let tokens = self.tokens_read();
        let bigrams = if self.extractor.bigrams {
            tokens.saturating_sub(self.runs)
        } else {
            0
        };
        tokens.saturating_add(bigrams) as u64
    }

    /// Fills `dense` (raw; `dense_len` long) and returns the number of
    /// token features read.
    pub fn finish(self, task: Option<&str>, dense: &mut [f64]) -> u64 {
        let facts = self.facts;
        let values = [
            (self.tokens_read() as f64).ln_1p(),
            (facts.messages as f64).ln_1p(),
            f64::from(u8::from(facts.tools)),
            f64::from(u8::from(facts.images > 0)),
            f64::from(u8::from(facts.structured_output)),
        ];
        for (slot, v) in dense.iter_mut().zip(values) {
            *slot = v;
        }
        for (i, name) in self.extractor.tasks.iter().enumerate() {
            if let Some(slot) = dense.get_mut(DENSE.len().saturating_add(i)) {
                *slot = f64::from(u8::from(task == Some(name.as_str())));
            }
        }
        if self.extractor.profile {
            let at = DENSE.len().saturating_add(self.extractor.tasks.len());
            let values = self.profile.values(self.tokens_read());
            for (slot, v) in dense.iter_mut().skip(at).zip(values) {
                *slot = v;
            }
        }
        self.features()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extractor(scan: Scan, bigrams: bool) -> Extractor {
        Extractor {
            encoding: Encoding::O200kBase,
            scan,
            hash_bits: 16,
            bigrams,
            max_tokens: 4096,
            tasks: vec!["code".into()],
            profile: false,
        }
    }

    fn facts(body: &str) -> RequestFacts {
        crate::request::parse("/v1/chat/completions", body.as_bytes()).unwrap()
    }

    fn buckets(e: &Extractor, body: &str, task: Option<&str>) -> (Vec<u32>, Vec<f64>) {
        let mut dense = vec![0.0; e.dense_len()];
        let mut out = Vec::new();
        let n = e
            .visit(&facts(body), task, &mut dense, |b| out.push(b))
            .unwrap();
        assert_eq!(n as usize, out.len());
        (out, dense)
    }

    #[test]
    fn unigrams_and_bigrams_of_the_scanned_tokens() {
        let body = r#"{"messages":[{"role":"user","content":"hello world"}]}"#;
        let ids: Vec<u32> = {
            let mut v = Vec::new();
            tokens::visit_ids(Encoding::O200kBase, "hello world", |i| v.push(i)).unwrap();
            v
        };
        assert_eq!(ids.len(), 2);
        let (uni, dense) = buckets(&extractor(Scan::All, false), body, None);
        assert_eq!(uni.len(), 2);
        let (both, _) = buckets(&extractor(Scan::All, true), body, None);
        assert_eq!(both.len(), 3, "two unigrams and one bigram");
        assert_eq!(both.first(), uni.first());
        assert!(both.iter().all(|b| *b < 1 << 16));
        assert!((dense[0] - 2f64.ln_1p()).abs() < 1e-12);
        assert!((dense[1] - 1f64.ln_1p()).abs() < 1e-12);
        // Same token, same bucket; order of the pair matters for the bigram.
        let (swapped, _) = buckets(
            &extractor(Scan::All, true),
            r#"{"messages":[{"role":"user","content":" world hello"}]}"#,
            None,
        );
        assert_ne!(swapped.get(2), both.get(2));
    }

    #[test]
    fn scan_selects_messages_and_flags_and_task_fill_dense() {
        let body = r#"{"messages":[
            {"role":"system","content":"you are terse"},
            {"role":"user","content":"first question"},
            {"role":"assistant","content":"answer"},
            {"role":"user","content":"second"}],
            "tools":[{"type":"function","function":{"name":"f","parameters":{}}}],
            "response_format":{"type":"json_object"}}"#;
        let (last, dense) = buckets(&extractor(Scan::LastUser, false), body, Some("code"));
        let (all_user, _) = buckets(&extractor(Scan::AllUser, false), body, None);
        let (all, _) = buckets(&extractor(Scan::All, false), body, None);
        assert_eq!(last.len(), 1, "\"second\" is one token");
        assert!(all_user.len() > last.len() && all.len() > all_user.len());
        assert_eq!(&dense[1..], &[4f64.ln_1p(), 1.0, 0.0, 1.0, 1.0]);
        let (_, dense) = buckets(&extractor(Scan::LastUser, false), body, Some("other"));
        assert_eq!(dense[5], 0.0);
    }

    #[test]
    fn long_prompts_are_read_up_to_max_tokens() {
        let mut e = extractor(Scan::All, true);
        e.max_tokens = 10;
        let text = "word ".repeat(100);
        let body = format!(r#"{{"messages":[{{"role":"user","content":"{text}"}}]}}"#);
        let (b, dense) = buckets(&e, &body, None);
        assert_eq!(b.len(), 10 + 9);
        assert!((dense[0] - 10f64.ln_1p()).abs() < 1e-12);
    }

    #[test]
    fn the_profile_follows_the_tasks_and_reads_only_scanned_text() {
        let mut e = extractor(Scan::LastUser, false);
        e.profile = true;
        assert_eq!(e.dense_len(), DENSE.len() + 1 + PROFILE.len());
        let body = r#"{"messages":[
            {"role":"user","content":"the cat sat"},
            {"role":"user","content":"x = 12 + 3^4"}]}"#;
        let (b, dense) = buckets(&e, body, Some("code"));
        let ids: Vec<u32> = {
            let mut v = Vec::new();
            tokens::visit_ids(Encoding::O200kBase, "x = 12 + 3^4", |i| v.push(i)).unwrap();
            v
        };
        assert_eq!(b.len(), ids.len());
        let profile = &dense[DENSE.len() + 1..];
        let t = ids.len() as f64;
        let under_1k = ids.iter().filter(|i| **i < 1000).count() as f64;
        assert!((profile[0] - under_1k / t).abs() < 1e-12);
        // "x = 12 + 3^4": 12 bytes, 4 digits, 3 symbols (=, +, ^).
        assert!((profile[3] - 4.0 / 12.0).abs() < 1e-12, "{profile:?}");
        assert!((profile[4] - 3.0 / 12.0).abs() < 1e-12, "{profile:?}");
        assert!((profile[5] - (12.0 / t).ln_1p()).abs() < 1e-12);
        assert_eq!(
            dense[DENSE.len()],
            1.0,
            "the task one-hot stays in its place"
        );
        // Without a profile the dense features are what they were.
        let (_, plain) = buckets(&extractor(Scan::LastUser, false), body, Some("code"));
        assert_eq!(plain.len(), DENSE.len() + 1);
        assert_eq!(&plain[..], &dense[..DENSE.len() + 1]);
    }
}
