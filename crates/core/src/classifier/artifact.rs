//! The classifier artifact: the versioned JSON file `model-router train`
//! writes and a policy names (`classifiers.NAME.artifact`) or inlines
//! (`classifiers.NAME.inline`). Everything scoring needs travels in it:
//! the feature spec, the weights, the calibration, the training score
//! distribution (which seeds `top_share` windows), and, for people, where
//! the data came from and how well the model did on groups it never saw.

use serde::Deserialize;
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
    /// Non-zero token weights: `[bucket, weight]`.
    pub tokens: Vec<(u32, f32)>,
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
