//! Everything a condition can look at for one request, with token counts
//! computed on demand and cached per encoding.

use crate::classifier::{ClassifierId, ScoreQuantiles, TrainingQuantiles, MAX_CLASSIFIERS};
use crate::condition::Range;
use crate::headers::Headers;
use crate::policy::{Model, Policy, TaskId, TokenCounting};
use crate::request::RequestFacts;
use crate::tokens::{Encoding, TokenError};

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
    policy: &'a Policy,
    quantiles: &'a dyn ScoreQuantiles,
    /// Each classifier's score, once computed.
    scores: [Option<f64>; MAX_CLASSIFIERS],
}

impl<'a> Signals<'a> {
    pub fn new(
        policy: &'a Policy,
        facts: &'a RequestFacts,
        path: &'a str,
        headers: &'a Headers,
    ) -> Signals<'a> {
        let task = detect_task(policy, facts, headers);
        Signals {
            facts,
            path,
            headers,
            task,
            default_encoding: policy.default_encoding,
            default_image_tokens: policy.default_image_tokens,
            counting: policy.token_counting,
            counts: [None; 2],
            policy,
            quantiles: &TrainingQuantiles,
            scores: [None; MAX_CLASSIFIERS],
        }
    }

    /// `top_share` thresholds from `quantiles` instead of the training distributions.
    pub fn with_quantiles(mut self, quantiles: &'a dyn ScoreQuantiles) -> Signals<'a> {
        self.quantiles = quantiles;
        self
    }

    /// The classifier's probability that the weak model fails, computed once.
    pub fn score(&mut self, id: ClassifierId) -> Result<f64, TokenError> {
        if let Some(Some(score)) = self.scores.get(id.0) {
            return Ok(*score);
        }
        let Some(classifier) = self.policy.classifiers.get(id.0) else {
            return Ok(0.0);
        };
        let task = self
            .task
            .and_then(|t| self.policy.task(t))
            .map(|t| t.name.as_str());
        let score = classifier.score(self.facts, task)?;
        if let Some(slot) = self.scores.get_mut(id.0) {
            *slot = Some(score);
        }
        Ok(score)
    }

    /// The score above which the top `share` of recent requests lies.
    pub fn share_threshold(&self, id: ClassifierId, share: f64) -> f64 {
        match self.policy.classifiers.get(id.0) {
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
        let n = self.facts.text_tokens(encoding)?;
        *slot = Some(n);
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
    pub fn model_prompt_tokens(&mut self, model: &Model) -> Result<u64, TokenError> {
        let text = self.text_tokens(model.encoding)?;
        Ok(self
            .facts
            .prompt_tokens_from(text, model.estimate, self.default_image_tokens))
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
    pub fn counted_model_prompt_tokens(&self, model: &Model) -> Option<u64> {
        self.cached(model.encoding).map(|text| {
            self.facts
                .prompt_tokens_from(text, model.estimate, self.default_image_tokens)
        })
    }

    /// An upper bound on `model`'s prompt count, known without counting.
    pub fn model_prompt_tokens_upper_bound(&self, model: &Model) -> u64 {
        self.facts.prompt_tokens_from(
            self.facts.text_tokens_upper_bound(model.encoding),
            model.estimate,
            self.default_image_tokens,
        )
    }

    pub fn path_without_query(&self) -> &str {
        self.path.split('?').next().unwrap_or(self.path)
    }
}

/// The trusted task header wins when it names a known task; otherwise the
/// first task (in policy order) whose detectors match.
fn detect_task(policy: &Policy, facts: &RequestFacts, headers: &Headers) -> Option<TaskId> {
    if let Some(name) = policy.headers.task.as_deref() {
        if let Some(value) = headers.get(name) {
            if let Some(i) = policy.tasks.iter().position(|t| t.name == value.trim()) {
                return Some(TaskId(i));
            }
        }
    }
    policy
        .tasks
        .iter()
        .position(|t| t.matches(facts))
        .map(TaskId)
}
