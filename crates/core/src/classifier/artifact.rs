//! The classifier artifact: the versioned JSON file `model-router train`
//! writes and a policy names (`classifiers.NAME.artifact`) or inlines
//! (`classifiers.NAME.inline`). Everything scoring needs travels in it:
//! the feature spec, the weights, the calibration, the training score
//! distribution (which seeds `top_share` windows), and, for people, where
//! the data came from and how well the model did on groups it never saw.

use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
// Only the CLI writes artifacts: the filter carries no serializer for them.
#[cfg(not(target_arch = "wasm32"))]
use serde::Serialize;

use crate::task::Scan;

/// `format` of every artifact.
pub const FORMAT: &str = "model-router-classifier";
/// The artifact layout this build reads and writes.
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(Serialize))]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    pub format: String,
    pub version: u32,
    pub features: FeatureSpec,
    pub weights: Weights,
    pub calibration: Calibration,
    /// 101 quantiles (0%, 1%, …, 100%) of the calibrated probabilities of
    /// the training rows, scored out of fold.
    pub score_quantiles: Vec<f64>,
    /// Where the data came from (rows, groups, digest, lambda): for people.
    #[serde(default)]
    pub training: Notes,
    /// Held-out figures: for people.
    #[serde(default)]
    pub metrics: Notes,
}

/// Free-form notes: JSON for the CLI; skipped unread by the filter, which
/// needs no JSON tree builder for them.
#[cfg(not(target_arch = "wasm32"))]
pub type Notes = serde_json::Value;
#[cfg(target_arch = "wasm32")]
pub type Notes = serde::de::IgnoredAny;

/// What the features are and how they are read from a request.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(Serialize))]
#[serde(deny_unknown_fields)]
pub struct FeatureSpec {
    /// Tokenizer of the token features (`o200k_base`, `cl100k_base`).
    pub encoding: String,
    /// Which messages' text is tokenized (as a task's `scan`).
    pub scan: Scan,
    /// Token features (unigrams and bigrams of token ids) are hashed into
    /// 2^hash_bits weights.
    pub hash_bits: u32,
    pub bigrams: bool,
    /// Tokens read per request at most (the rest of a long prompt is not scored).
    pub max_tokens: usize,
    /// Task categories with a weight each, by name (the policy's `tasks`).
    #[serde(default)]
    pub tasks: Vec<String>,
    /// The text-profile features (`features::PROFILE`) after the tasks'.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub profile: bool,
}

/// A linear model over standardised dense features and L2-normalised
/// hashed token counts.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(Serialize))]
#[serde(deny_unknown_fields)]
pub struct Weights {
    pub bias: f64,
    /// One per `DENSE` feature then one per task, in order.
    pub dense: Vec<f64>,
    /// Mean and standard deviation of each dense feature on the training set.
    pub dense_mean: Vec<f64>,
    pub dense_std: Vec<f64>,
    /// Non-zero token weights, written `[[bucket, weight], ...]`.
    pub tokens: TokenWeights,
}

/// Buckets an artifact may have at most (`hash_bits` ≤ 20).
const MAX_BUCKETS: usize = 1 << 20;
/// The table's first size: `train`'s default 2^16 buckets, so the usual
/// artifact never reallocates the table while it is read.
const FIRST_TABLE: usize = 1 << 16;

/// The token weights, read from the artifact's `[bucket, weight]` list
/// straight into the table scoring looks up: in the filter, memory never
/// shrinks after its peak, and a list of pairs next to the table (or the
/// table's reallocations) would be that peak. The checks that need
/// `hash_bits` come after, in [`TokenWeights::into_table`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TokenWeights {
    /// Weight per bucket (0 where none is listed); as long as the largest
    /// bucket read needs, rounded up to a power of two.
    table: Vec<f32>,
    /// Index in the list of the first entry that cannot be a weight
    /// (bucket ≥ 2^20 or weight not finite): it is not in `table`.
    bad: Option<usize>,
    /// The largest bucket read and the index of its first entry.
    largest: Option<(u32, usize)>,
    /// Entries read.
    len: usize,
}

impl TokenWeights {
    pub fn from_pairs(pairs: impl IntoIterator<Item = (u32, f32)>) -> TokenWeights {
        let mut t = TokenWeights::default();
        for (bucket, weight) in pairs {
            t.push(bucket, weight);
        }
        t
    }

    /// Adds entry `[bucket, weight]` (a later entry of a bucket wins).
    pub fn push(&mut self, bucket: u32, weight: f32) {
        let index = self.len;
        self.len = self.len.saturating_add(1);
        let at = bucket as usize;
        if at >= MAX_BUCKETS || !weight.is_finite() {
            self.bad = self.bad.or(Some(index));
            return;
        }
        if self.largest.is_none_or(|(b, _)| bucket > b) {
            self.largest = Some((bucket, index));
        }
        if at >= self.table.len() {
            let size = at.saturating_add(1).next_power_of_two().max(FIRST_TABLE);
            self.table.resize(size.min(MAX_BUCKETS), 0.0);
        }
        if let Some(slot) = self.table.get_mut(at) {
            *slot = weight;
        }
    }

    /// The non-zero weights by ascending bucket: the list `train` writes
    /// (and, for its artifacts, the list as read).
    pub fn pairs(&self) -> impl Iterator<Item = (u32, f32)> + '_ {
        (0u32..)
            .zip(self.table.iter().copied())
            .filter(|(_, w)| w.to_bits() != 0)
    }

    /// The table of `size` buckets scoring reads, or the index of an entry
    /// that does not fit it (bucket out of range or weight not finite).
    pub fn into_table(self, size: usize) -> Result<Vec<f32>, usize> {
        let outside = self.largest.filter(|(b, _)| *b as usize >= size);
        match (self.bad, outside) {
            (Some(i), Some((_, j))) => return Err(i.min(j)),
            (Some(i), None) | (None, Some((_, i))) => return Err(i),
            (None, None) => {}
        }
        let mut table = self.table;
        table.resize(size, 0.0);
        table.shrink_to_fit();
        Ok(table)
    }
}

impl FromIterator<(u32, f32)> for TokenWeights {
    fn from_iter<I: IntoIterator<Item = (u32, f32)>>(pairs: I) -> TokenWeights {
        TokenWeights::from_pairs(pairs)
    }
}

impl<'de> Deserialize<'de> for TokenWeights {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<TokenWeights, D::Error> {
        d.deserialize_seq(TokenList)
    }
}

struct TokenList;

impl<'de> Visitor<'de> for TokenList {
    type Value = TokenWeights;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of [bucket, weight]")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TokenWeights, A::Error> {
        let mut t = TokenWeights::default();
        while let Some((bucket, weight)) = seq.next_element::<(u32, f32)>()? {
            t.push(bucket, weight);
        }
        Ok(t)
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Serialize for TokenWeights {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.pairs())
    }
}

/// Platt scaling of the linear score into a probability that the weak
/// model fails: `p = 1 / (1 + exp(-(a × z + b)))`, fitted out of fold.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(Serialize))]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    pub method: CalibrationMethod,
    pub a: f64,
    pub b: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(Serialize))]
#[serde(rename_all = "snake_case")]
pub enum CalibrationMethod {
    Platt,
}
