//! Learned routing: a linear classifier over the request's tokens that
//! returns a calibrated probability that the weak model fails. Compiled once
//! from its artifact (`artifact`), read by conditions `{"score": ...}`;
//! features in `features`, the `top_share` window in `window`. Scoring
//! allocates nothing per request: one weight lookup per token feature.

pub mod artifact;
pub mod drift;
pub mod features;
pub mod window;

use serde::Deserialize;

use crate::request::{RequestFacts, TokenVisitor};
use crate::tokens::{Encoding, TokenError};
use artifact::{Artifact, FORMAT, VERSION};
use features::{Extractor, DENSE, PROFILE};

/// Index of a classifier in `Policy::classifiers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClassifierId(pub usize);

/// Classifiers a policy may define (scores are cached per request in a fixed array).
pub const MAX_CLASSIFIERS: usize = 8;
/// Task one-hots an artifact may carry (dense features live on the stack).
pub const MAX_TASKS: usize = 11;
const MAX_DENSE: usize = DENSE.len() + MAX_TASKS + PROFILE.len();
/// Default `window` of a `top_share` condition: requests remembered.
pub const DEFAULT_WINDOW: usize = 100;

/// `classifiers.NAME` as written: a path to the artifact (read by the CLI,
/// relative to the policy file) or the artifact inline (what the filter reads).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClassifier {
    #[serde(default)]
    pub artifact: Option<String>,
    #[serde(default)]
    pub inline: Option<Inline>,
    /// Recent scores a `top_share` threshold is the quantile of.
    #[serde(default)]
    pub window: Option<usize>,
}

/// `classifiers.NAME.inline`: the artifact, parsed where it lies in the
/// policy text. Borrowed raw, then parsed on its own: the policy's
/// path-tracking deserializer would otherwise be instantiated for every
/// artifact type (~50 KB more `.wasm`), and a copy of the artifact text
/// (1 MB for 2^16 weights) would be the VM's memory peak. The policy must
/// therefore be deserialized from a string (`serde_json::from_str`).
#[derive(Debug)]
pub struct Inline(pub Artifact);

impl<'de> Deserialize<'de> for Inline {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Inline, D::Error> {
        let raw = <&serde_json::value::RawValue>::deserialize(d)?;
        parse_artifact(raw.get())
            .map(Inline)
            .map_err(serde::de::Error::custom)
    }
}

/// Kept out of the generic `Inline::deserialize`: one instance for all
/// deserializers. The message keeps serde_json's position (inside the
/// artifact), which the policy error reports.
fn parse_artifact(text: &str) -> Result<Artifact, String> {
    serde_json::from_str(text).map_err(|e| format!("not a classifier artifact: {e}"))
}

/// A classifier ready for the hot path.
#[derive(Debug, Clone)]
pub struct Classifier {
    pub name: String,
    pub extractor: Extractor,
    bias: f64,
    dense: Vec<f64>,
    dense_mean: Vec<f64>,
    /// 1 / standard deviation (0 for constant features).
    dense_scale: Vec<f64>,
    /// 2^hash_bits token weights.
    tokens: Vec<f32>,
    calibration: artifact::Calibration,
    /// Training score quantiles (seed of `top_share` windows).
    pub score_quantiles: Vec<f64>,
    pub window: usize,
    /// Hash of the artifact: names its shared window, so a new model
    /// starts from its own distribution.
    pub digest: u64,
}

/// A classifier the policy cannot use: its JSON path and the problem (the
/// policy compiler turns it into a `PolicyError`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    pub path: String,
    pub message: String,
}

impl Classifier {
    /// Compiles `raw` (`path` = `classifiers.NAME`).
    pub fn compile(name: &str, raw: RawClassifier, path: &str) -> Result<Classifier, CompileError> {
        let err = |at: &str, m: String| CompileError {
            path: format!("{path}{at}"),
            message: m,
        };
        let artifact = match (raw.inline, &raw.artifact) {
            (Some(Inline(a)), None) => a,
            (None, Some(file)) => {
                return Err(err(
                    ".artifact",
                    format!("{file:?}: the filter cannot read files; the model-router CLI (check, explain, eval, envoy) inlines artifacts, or set \"inline\""),
                ))
            }
            _ => return Err(err("", "set exactly one of artifact or inline".into())),
        };
        let window = raw.window.unwrap_or(DEFAULT_WINDOW);
        if !(10..=usize::from(u16::MAX)).contains(&window) {
            return Err(err(".window", "must be between 10 and 65535".into()));
        }
        Self::from_artifact(name, artifact, window)
            .map_err(|(at, m)| err(&format!(".inline{at}"), m))
    }

    /// Checks and compiles an artifact (its token weights become the
    /// classifier's table); errors are (JSON path inside it, message).
    pub fn from_artifact(
        name: &str,
        mut a: Artifact,
        window: usize,
    ) -> Result<Classifier, (String, String)> {
        let fail = |at: &str, m: &str| Err((at.to_string(), m.to_string()));
        if a.format != FORMAT {
            return fail(".format", &format!("expected {FORMAT:?}"));
        }
        if a.version != VERSION {
            return fail(
                ".version",
                &format!("artifact version {} is not {VERSION}, the version this build reads: retrain with this model-router", a.version),
            );
        }
        let spec = &a.features;
        let Some(encoding) = Encoding::from_name(&spec.encoding) else {
            return fail(
                ".features.encoding",
                "unknown encoding (expected o200k_base or cl100k_base)",
            );
        };
        if !(8..=20).contains(&spec.hash_bits) {
            return fail(".features.hash_bits", "must be between 8 and 20");
        }
        if spec.tasks.len() > MAX_TASKS {
            return fail(".features.tasks", &format!("at most {MAX_TASKS} tasks"));
        }
        if spec.max_tokens == 0 {
            return fail(".features.max_tokens", "must be greater than 0");
        }
        let extractor = Extractor {
            encoding,
            scan: spec.scan,
            hash_bits: spec.hash_bits,
            bigrams: spec.bigrams,
            max_tokens: spec.max_tokens,
            tasks: spec.tasks.clone(),
            profile: spec.profile,
        };
        let w = &a.weights;
        let n = extractor.dense_len();
        if w.dense.len() != n || w.dense_mean.len() != n || w.dense_std.len() != n {
            return fail(
                ".weights",
                &format!("dense, dense_mean and dense_std need {n} values each"),
            );
        }
        let finite = |v: &[f64]| v.iter().all(|x| x.is_finite());
        if !finite(&w.dense)
            || !finite(&w.dense_mean)
            || !finite(&w.dense_std)
            || !w.bias.is_finite()
        {
            return fail(".weights", "weights must be finite numbers");
        }
        let size = 1usize << spec.hash_bits;
        let digest = digest(&a);
        // Moved, not copied: the table is the largest part of the policy.
        let tokens = match std::mem::take(&mut a.weights.tokens).into_table(size) {
            Ok(t) => t,
            Err(i) => {
                return fail(
                    &format!(".weights.tokens[{i}]"),
                    "bucket out of range or weight not finite",
                )
            }
        };
        let w = &a.weights;
        let c = a.calibration;
        if !c.a.is_finite() || !c.b.is_finite() {
            return fail(".calibration", "a and b must be finite");
        }
        let q = &a.score_quantiles;
        if q.len() < 2
            || q.iter().any(|x| !(0.0..=1.0).contains(x))
            || q.windows(2).any(|p| p.first() > p.get(1))
        {
            return fail(
                ".score_quantiles",
                "must be ascending probabilities (0..=1), at least 2",
            );
        }
        Ok(Classifier {
            name: name.to_string(),
            extractor,
            bias: w.bias,
            dense: w.dense.clone(),
            dense_mean: w.dense_mean.clone(),
            dense_scale: w
                .dense_std
                .iter()
                .map(|s| if *s > 1e-12 { 1.0 / s } else { 0.0 })
                .collect(),
            tokens,
            calibration: c,
            score_quantiles: q.clone(),
            window,
            digest,
        })
    }

    pub fn encoding(&self) -> Encoding {
        self.extractor.encoding
    }

    /// The uncalibrated linear score of a request, tokenizing it for the
    /// features (a pass of its own: the decision path shares the counting
    /// pass instead, [`Classifier::scoring`]).
    pub fn linear(&self, facts: &RequestFacts, task: Option<&str>) -> Result<f64, TokenError> {
        let mut scoring = self.scoring(facts);
        let encoding = self.extractor.encoding;
        for (index, segment) in facts.content.iter().enumerate() {
            if scoring.segment(index) {
                crate::tokens::visit_ids_batched_while(encoding, &segment.text, |ids| {
                    scoring.ids(ids)
                })?;
            }
        }
        Ok(scoring.finish(task))
    }

    /// A linear score fed token ids by the caller (see [`features::Reader`]).
    pub fn scoring<'a>(&'a self, facts: &'a RequestFacts) -> Scoring<'a> {
        Scoring {
            classifier: self,
            reader: self.extractor.reader(facts),
            sum: 0.0,
        }
    }

    /// The calibrated probability that the weak model fails on this request.
    pub fn score(&self, facts: &RequestFacts, task: Option<&str>) -> Result<f64, TokenError> {
        Ok(self.calibrate(self.linear(facts, task)?))
    }

    pub fn calibrate(&self, z: f64) -> f64 {
        sigmoid(self.calibration.a * z + self.calibration.b)
    }

    /// The threshold that sends the top `share` of the training distribution.
    pub fn training_threshold(&self, share: f64) -> f64 {
        window::ScoreWindow::seeded(self.window, &self.score_quantiles).threshold(share)
    }
}

/// A linear score being summed: one weight lookup per token feature.
pub struct Scoring<'a> {
    classifier: &'a Classifier,
    reader: features::Reader<'a>,
    sum: f64,
}

impl TokenVisitor for Scoring<'_> {
    /// Starts content segment `index` (in order): whether it is read.
    fn segment(&mut self, index: usize) -> bool {
        self.reader.segment(index)
    }

    /// The segment's next token ids: adds their weights, in feature order
    /// (the sum is bit-identical to adding them one by one). The sum is a
    /// local while the ids are read, so it stays in a register.
    #[inline(always)]
    fn ids(&mut self, ids: &[u32]) -> bool {
        // The table has 2^hash_bits weights and a bucket is below that, so
        // `b & mask` is `b`; it lets the compiler see the lookup is in range.
        let tokens = self.classifier.tokens.as_slice();
        let mask = tokens.len().wrapping_sub(1);
        let tokens = tokens.get(..=mask).unwrap_or_default();
        let mut sum = self.sum;
        let more = self.reader.ids(ids, |b| {
            sum += f64::from(tokens.get(b as usize & mask).copied().unwrap_or(0.0));
        });
        self.sum = sum;
        more
    }
}

impl Scoring<'_> {
    /// The uncalibrated linear score of what was fed.
    pub fn finish(self, task: Option<&str>) -> f64 {
        let c = self.classifier;
        let mut dense = [0f64; MAX_DENSE];
        let n = self.reader.finish(task, &mut dense);
        let mut z = c.bias;
        if n > 0 {
            z += self.sum / (n as f64).sqrt();
        }
        for (i, x) in dense.iter().take(c.dense.len()).enumerate() {
            let (w, m, s) = (
                c.dense.get(i).copied().unwrap_or(0.0),
                c.dense_mean.get(i).copied().unwrap_or(0.0),
                c.dense_scale.get(i).copied().unwrap_or(0.0),
            );
            z += w * (x - m) * s;
        }
        z
    }
}

pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// FNV-1a over the artifact's weights and calibration.
fn digest(a: &Artifact) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325_u64;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(&a.weights.bias.to_le_bytes());
    // As listed, for the ascending non-zero list `train` writes.
    for (i, w) in a.weights.tokens.pairs() {
        eat(&i.to_le_bytes());
        eat(&w.to_le_bytes());
    }
    for v in a.weights.dense.iter().chain(&a.score_quantiles) {
        eat(&v.to_le_bytes());
    }
    eat(&a.calibration.a.to_le_bytes());
    eat(&a.calibration.b.to_le_bytes());
    h
}

/// Where `top_share` thresholds come from: the core asks, the host answers
/// (the filter from a window in shared data, `eval` from an in-process one).
pub trait ScoreQuantiles {
    /// The score above which the top `share` of recent scores of `classifier` lies.
    fn threshold(&self, classifier: &Classifier, id: ClassifierId, share: f64) -> f64;
}

/// Thresholds from each classifier's training distribution: what `explain`
/// and `check` use, and the filter's starting point.
pub struct TrainingQuantiles;

impl ScoreQuantiles for TrainingQuantiles {
    fn threshold(&self, classifier: &Classifier, _id: ClassifierId, share: f64) -> f64 {
        classifier.training_threshold(share)
    }
}

/// In-process sliding windows, one per classifier (replays, tests).
pub struct LocalWindows {
    pub windows: Vec<window::ScoreWindow>,
}

impl LocalWindows {
    pub fn new(classifiers: &[Classifier]) -> LocalWindows {
        LocalWindows {
            windows: classifiers
                .iter()
                .map(|c| window::ScoreWindow::seeded(c.window, &c.score_quantiles))
                .collect(),
        }
    }

    /// Records a decision's scores of the classifiers that have windows.
    pub fn record(&mut self, scores: &[(ClassifierId, f64)], windowed: &[bool]) {
        for (id, score) in scores {
            if windowed.get(id.0).copied().unwrap_or(false) {
                if let Some(w) = self.windows.get_mut(id.0) {
                    w.push(*score);
                }
            }
        }
    }
}

impl ScoreQuantiles for LocalWindows {
    fn threshold(&self, classifier: &Classifier, id: ClassifierId, share: f64) -> f64 {
        self.windows.get(id.0).map_or_else(
            || classifier.training_threshold(share),
            |w| w.threshold(share),
        )
    }
}

#[cfg(test)]
mod tests;
