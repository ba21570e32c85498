//! Everything a condition can look at for one request, with token counts
//! computed on demand and cached per encoding.

use crate::condition::Range;
use crate::headers::Headers;
use crate::policy::{Model, Policy, TaskId};
use crate::request::RequestFacts;
use crate::tokens::{Encoding, TokenError};

pub struct Signals<'a> {
    pub facts: &'a RequestFacts,
    pub path: &'a str,
    pub headers: &'a Headers,
    pub task: Option<TaskId>,
    default_encoding: Encoding,
    default_image_tokens: Option<u64>,
    /// Text tokens per encoding (`RequestFacts::text_tokens`).
    counts: [Option<u64>; 2],
}

impl<'a> Signals<'a> {
    pub fn new(
        policy: &Policy,
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
            counts: [None; 2],
        }
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

    pub fn prompt_tokens_in(&mut self, range: &Range) -> Result<bool, TokenError> {
        Ok(range.contains(self.default_prompt_tokens()?))
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
