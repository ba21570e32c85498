//! Compiled rule conditions and their evaluation.

use regex::Regex;

use crate::classifier::ClassifierId;
use crate::ids::TaskId;
use crate::request::ApiSet;
use crate::signals::Signals;
use crate::tokens::TokenError;

pub use crate::range::Range;

#[derive(Debug, Clone)]
pub enum HeaderTest {
    Equals(String),
    In(Vec<String>),
    Present(bool),
    Matches(Regex),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathTest {
    Equals(String),
    Prefix(String),
}

#[derive(Debug, Clone)]
pub enum Condition {
    /// A rule without `when`.
    Always,
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
    PromptTokens(Range),
    /// False when the request sets no output limit.
    MaxOutputTokens(Range),
    Messages(Range),
    Task(Vec<TaskId>),
    Header {
        name: String,
        test: HeaderTest,
    },
    RequestedModel(Vec<String>),
    Path(PathTest),
    StructuredOutput(bool),
    Tools(bool),
    Stream(bool),
    Images(bool),
    /// The request's API is one of these.
    Api(ApiSet),
    /// A classifier's score passes a test.
    Score {
        classifier: ClassifierId,
        test: ScoreTest,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScoreTest {
    /// Probability above a fixed value.
    Gt(f64),
    Lt(f64),
    /// Among the top `share` of recent scores (a sliding-window quantile).
    TopShare(f64),
}

impl Condition {
    /// Evaluates the condition. Token counts are computed lazily and at most
    /// once per encoding, whatever the number of rules that ask.
    pub fn holds(&self, signals: &mut Signals<'_>) -> Result<bool, TokenError> {
        Ok(match self {
            Condition::Always => true,
            Condition::All(all) => {
                for c in all {
                    if !c.holds(signals)? {
                        return Ok(false);
                    }
                }
                true
            }
            Condition::Any(any) => {
                for c in any {
                    if c.holds(signals)? {
                        return Ok(true);
                    }
                }
                false
            }
            Condition::Not(inner) => !inner.holds(signals)?,
            Condition::PromptTokens(range) => signals.prompt_tokens_in(range)?,
            Condition::MaxOutputTokens(range) => signals
                .facts
                .max_output_tokens
                .is_some_and(|n| range.contains(n)),
            Condition::Messages(range) => range.contains(signals.facts.messages),
            Condition::Task(tasks) => signals.task.is_some_and(|t| tasks.contains(&t)),
            Condition::Header { name, test } => {
                let value = signals.headers.get(name);
                match test {
                    HeaderTest::Present(present) => value.is_some() == *present,
                    HeaderTest::Equals(expected) => value == Some(expected.as_str()),
                    HeaderTest::In(values) => value.is_some_and(|v| values.iter().any(|e| e == v)),
                    HeaderTest::Matches(regex) => value.is_some_and(|v| regex.is_match(v)),
                }
            }
            Condition::RequestedModel(models) => signals
                .facts
                .requested_model
                .as_ref()
                .is_some_and(|m| models.contains(m)),
            Condition::Path(PathTest::Equals(path)) => signals.path_without_query() == path,
            Condition::Path(PathTest::Prefix(prefix)) => {
                signals.path_without_query().starts_with(prefix.as_str())
            }
            Condition::StructuredOutput(want) => signals.facts.structured_output == *want,
            Condition::Tools(want) => signals.facts.tools == *want,
            Condition::Stream(want) => signals.facts.stream == *want,
            Condition::Images(want) => (signals.facts.images > 0) == *want,
            Condition::Api(apis) => signals.facts.shape.is_some_and(|s| apis.contains(s.api())),
            Condition::Score { classifier, test } => {
                let score = signals.score(*classifier)?;
                match test {
                    ScoreTest::Gt(v) => score > *v,
                    ScoreTest::Lt(v) => score < *v,
                    ScoreTest::TopShare(share) => {
                        score > signals.share_threshold(*classifier, *share)
                    }
                }
            }
        })
    }

    /// The least prompt-token count under which this condition can hold, as
    /// far as a simple reading tells (used to refuse rules whose targets can
    /// never fit).
    pub fn min_prompt_tokens(&self) -> u64 {
        match self {
            Condition::PromptTokens(range) => range.min,
            Condition::All(all) => all
                .iter()
                .map(Condition::min_prompt_tokens)
                .max()
                .unwrap_or(0),
            _ => 0,
        }
    }
}
