//! Everything a condition can look at for one request, with token counts
//! computed on demand and cached per encoding.

use serde::Deserialize;

use crate::classifier::{
    Classifier, ClassifierId, ScoreQuantiles, Scoring, TrainingQuantiles, MAX_CLASSIFIERS,
};
use crate::headers::Headers;
use crate::ids::TaskId;
use crate::range::Range;
use crate::request::{Ratio, RequestFacts, TokenVisitor};
use crate::tokens::{Encoding, TokenError};

/// How much of a prompt the router tokenizes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenCounting {
    /// Every prompt is counted exactly with the default encoding and each
    /// candidate's: decisions, metrics, headers and audit records all carry it.
    #[default]
    Always,
    /// Only what the decision needs: a threshold stops counting once it is
    /// decided (or is decided from the body's size alone), a context-window
    /// fit is settled from an upper bound when it can be, and exact counts
    /// are taken only for costs (tier order, budgets) and overflows.
    AsNeeded,
}

/// What counting needs to know of the policy.
#[derive(Debug, Clone, Copy)]
pub struct Counting {
    pub default_encoding: Encoding,
    /// Prompt tokens of an image whose size is unknown (policy default).
    pub default_image_tokens: Option<u64>,
    pub mode: TokenCounting,
}

/// Several classifiers fed by one pass: each reads what it scans.
struct Each<'s, 'a>(&'s mut [Option<Scoring<'a>>; MAX_CLASSIFIERS]);

impl TokenVisitor for Each<'_, '_> {
    fn segment(&mut self, index: usize) -> bool {
        // Every scoring starts the segment (none may skip it): any reads it.
        self.0
            .iter_mut()
            .flatten()
            .fold(false, |any, s| s.segment(index) | any)
    }

    fn ids(&mut self, ids: &[u32]) -> bool {
        self.0
            .iter_mut()
            .flatten()
            .fold(false, |any, s| s.ids(ids) | any)
    }
}

/// How a model bills prompt tokens: its encoding, and for a model whose
/// tokenizer is not public, a ratio over that encoding's count.
pub trait Tokenizer {
    fn encoding(&self) -> Encoding;
    fn estimate(&self) -> Option<Ratio>;
}

pub struct Signals<'a> {
    pub facts: &'a RequestFacts,
    pub path: &'a str,
    pub headers: &'a Headers,
    pub task: Option<TaskId>,
    default_encoding: Encoding,
    default_image_tokens: Option<u64>,
    counting: TokenCounting,
    /// Exact text tokens per encoding (`RequestFacts::text_tokens`), once counted.
    counts: [Option<u64>; 2],
    classifiers: &'a [Classifier],
    task_name: Option<&'a str>,
    quantiles: &'a dyn ScoreQuantiles,
    /// Each classifier's score, once a condition asked for it.
    scores: [Option<f64>; MAX_CLASSIFIERS],
    /// Each classifier's linear score, once computed (perhaps in a counting
    /// pass before any condition asked).
    linear: [Option<f64>; MAX_CLASSIFIERS],
}

impl<'a> Signals<'a> {
    /// `task` is the request's detected task category, if any.
    pub fn new(
        counting: Counting,
        task: Option<TaskId>,
        facts: &'a RequestFacts,
        path: &'a str,
        headers: &'a Headers,
    ) -> Signals<'a> {
        Signals {
            facts,
            path,
            headers,
            task,
            default_encoding: counting.default_encoding,
            default_image_tokens: counting.default_image_tokens,
            counting: counting.mode,
            counts: [None; 2],
            classifiers: &[],
            task_name: None,
            quantiles: &TrainingQuantiles,
            scores: [None; MAX_CLASSIFIERS],
            linear: [None; MAX_CLASSIFIERS],
        }
    }

    /// The policy's classifiers, the task's name (a feature) and where
    /// `top_share` thresholds come from.
    pub fn with_classifiers(
        mut self,
        classifiers: &'a [Classifier],
        task_name: Option<&'a str>,
        quantiles: &'a dyn ScoreQuantiles,
    ) -> Signals<'a> {
        self.classifiers = classifiers;
        self.task_name = task_name;
        self.quantiles = quantiles;
        self
    }

    /// The classifier's probability that the weak model fails, computed once.
    pub fn score(&mut self, id: ClassifierId) -> Result<f64, TokenError> {
        if let Some(Some(score)) = self.scores.get(id.0) {
            return Ok(*score);
        }
        let Some(classifier) = self.classifiers.get(id.0) else {
            return Ok(0.0);
        };
        let encoding = classifier.encoding();
        if self.linear_of(id).is_none()
            && self.cached(encoding).is_none()
            && self.counting == TokenCounting::Always
            && encoding == self.default_encoding
        {
            // The prompt is counted with this encoding for every request:
            // one pass counts it and reads the features.
            self.text_tokens(encoding)?;
        }
        let z = match self.linear_of(id) {
            Some(z) => z,
            None => {
                let z = classifier.linear(self.facts, self.task_name)?;
                if let Some(slot) = self.linear.get_mut(id.0) {
                    *slot = Some(z);
                }
                z
            }
        };
        let score = classifier.calibrate(z);
        if let Some(slot) = self.scores.get_mut(id.0) {
            *slot = Some(score);
        }
        Ok(score)
    }

    fn linear_of(&self, id: ClassifierId) -> Option<f64> {
        self.linear.get(id.0).copied().flatten()
    }

    /// The score above which the top `share` of recent requests lies.
    pub fn share_threshold(&self, id: ClassifierId, share: f64) -> f64 {
        match self.classifiers.get(id.0) {
            Some(c) => self.quantiles.threshold(c, id, share),
            None => 1.0,
        }
    }

    /// The scores computed for this request, by classifier.
    pub fn scores(&self) -> Vec<(ClassifierId, f64)> {
        self.scores
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((ClassifierId(i), (*s)?)))
            .collect()
    }

    /// Tokens of the text with `encoding`, counted at most once.
    fn text_tokens(&mut self, encoding: Encoding) -> Result<u64, TokenError> {
        let Some(slot) = self.counts.get_mut(encoding.index()) else {
            return self.facts.text_tokens(encoding);
        };
        if let Some(n) = *slot {
            return Ok(n);
        }
        let n = self.count_and_read(encoding)?;
        if let Some(slot) = self.counts.get_mut(encoding.index()) {
            *slot = Some(n);
        }
        Ok(n)
    }

    /// Text tokens with `encoding`, and in the same tokenizer pass the
    /// linear scores of the classifiers that read this encoding and have
    /// none yet: the BPE merges are the cost, a weight lookup per token is
    /// not, so a classifier never tokenizes the prompt a second time.
    fn count_and_read(&mut self, encoding: Encoding) -> Result<u64, TokenError> {
        let facts = self.facts;
        let (classifiers, linear) = (self.classifiers, &self.linear);
        let mut scorings: [Option<Scoring<'a>>; MAX_CLASSIFIERS] = std::array::from_fn(|i| {
            let pending = linear.get(i).is_some_and(Option::is_none);
            classifiers
                .get(i)
                .filter(|c| pending && c.encoding() == encoding)
                .map(|c| c.scoring(facts))
        });
        let mut live = scorings.iter_mut().flatten();
        let n = match (live.next(), live.next()) {
            (None, _) => return facts.text_tokens(encoding),
            // The usual case, one classifier: fed without a loop per piece.
            (Some(only), None) => facts.text_tokens_visiting(encoding, only)?,
            _ => facts.text_tokens_visiting(encoding, &mut Each(&mut scorings))?,
        };
        for (slot, s) in self.linear.iter_mut().zip(scorings) {
            if let Some(s) = s {
                *slot = Some(s.finish(self.task_name));
            }
        }
        Ok(n)
    }

    /// Billed prompt tokens with `encoding` as the tokenizer, images included.
    pub fn prompt_tokens(&mut self, encoding: Encoding) -> Result<u64, TokenError> {
        let text = self.text_tokens(encoding)?;
        Ok(self
            .facts
            .prompt_tokens_from(text, None, self.default_image_tokens))
    }

    /// Prompt tokens as `model` bills them: its encoding, scaled by its
    /// estimate ratio when its tokenizer is not public.
    pub fn model_prompt_tokens(&mut self, model: &impl Tokenizer) -> Result<u64, TokenError> {
        let text = self.text_tokens(model.encoding())?;
        Ok(self
            .facts
            .prompt_tokens_from(text, model.estimate(), self.default_image_tokens))
    }

    /// Prompt tokens with the policy's default encoding.
    pub fn default_prompt_tokens(&mut self) -> Result<u64, TokenError> {
        self.prompt_tokens(self.default_encoding)
    }

    /// Whether the default-encoding prompt count is in `range`. Under
    /// `token_counting: as_needed`, settled from bounds when they agree, else
    /// by counting only up to the point past which the answer cannot change.
    pub fn prompt_tokens_in(&mut self, range: &Range) -> Result<bool, TokenError> {
        let encoding = self.default_encoding;
        if self.counting == TokenCounting::Always || self.cached(encoding).is_some() {
            return Ok(range.contains(self.default_prompt_tokens()?));
        }
        // Images and other tokens no tokenizer counts: the least the prompt can be.
        let fixed = self
            .facts
            .prompt_tokens_from(0, None, self.default_image_tokens);
        let ceiling = self.facts.prompt_tokens_from(
            self.facts.text_tokens_upper_bound(encoding),
            None,
            self.default_image_tokens,
        );
        if range.contains(fixed) && range.contains(ceiling) {
            return Ok(true); // a range is an interval: all of [fixed, ceiling] is in it
        }
        if ceiling < range.min || fixed > range.max {
            return Ok(false);
        }
        // Beyond `limit` every count answers alike: past max (false) or at
        // least min with no max (true).
        let limit = if range.max == u64::MAX {
            range.min
        } else {
            range.max.saturating_add(1)
        };
        let text_limit = limit.saturating_sub(fixed);
        let text = self.facts.text_tokens_up_to(encoding, text_limit)?;
        if text < text_limit {
            // Below the limit the count is exact: keep it.
            if let Some(slot) = self.counts.get_mut(encoding.index()) {
                *slot = Some(text);
            }
        }
        Ok(range.contains(
            self.facts
                .prompt_tokens_from(text, None, self.default_image_tokens),
        ))
    }

    /// Counts are taken only where a decision needs them (`as_needed`).
    pub fn counts_as_needed(&self) -> bool {
        self.counting == TokenCounting::AsNeeded
    }

    fn cached(&self, encoding: Encoding) -> Option<u64> {
        self.counts.get(encoding.index()).copied().flatten()
    }

    /// The default-encoding prompt count if it was counted exactly.
    pub fn counted_default_prompt_tokens(&self) -> Option<u64> {
        self.cached(self.default_encoding).map(|text| {
            self.facts
                .prompt_tokens_from(text, None, self.default_image_tokens)
        })
    }

    /// `model`'s prompt count if its encoding was counted exactly.
    pub fn counted_model_prompt_tokens(&self, model: &impl Tokenizer) -> Option<u64> {
        self.cached(model.encoding()).map(|text| {
            self.facts
                .prompt_tokens_from(text, model.estimate(), self.default_image_tokens)
        })
    }

    /// An upper bound on `model`'s prompt count, known without counting.
    pub fn model_prompt_tokens_upper_bound(&self, model: &impl Tokenizer) -> u64 {
        self.facts.prompt_tokens_from(
            self.facts.text_tokens_upper_bound(model.encoding()),
            model.estimate(),
            self.default_image_tokens,
        )
    }

    pub fn path_without_query(&self) -> &str {
        self.path.split('?').next().unwrap_or(self.path)
    }
}
