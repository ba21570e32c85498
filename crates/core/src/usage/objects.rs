//! The usage objects of each provider, recognised by their shape and merged field by field.

use serde_json::{Map, Value};

use crate::cost::Usage;

/// Only the members of a response document that can hold usage objects
/// (see [`RawUsage::observe`]); serde skips every other member without
/// building it, so a reported usage costs no copy of the answer's text.
/// A document of another shape fails to read as this, and is read whole.
#[derive(Debug, serde::Deserialize)]
pub(super) struct Usages {
    #[serde(default)]
    usage: Option<Value>,
    #[serde(default)]
    response: Option<Nested>,
    #[serde(default)]
    message: Option<Nested>,
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct Nested {
    #[serde(default)]
    usage: Option<Value>,
}

/// The usage fields seen so far, as the provider named them. Kept raw so that
/// values from different events override each other field by field.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct RawUsage {
    /// OpenAI Chat/Completions `prompt_tokens` (includes cached tokens).
    prompt_tokens: Option<u64>,
    /// Responses or Anthropic `input_tokens`.
    input_tokens: Option<u64>,
    /// `completion_tokens` or `output_tokens`.
    output_tokens: Option<u64>,
    /// `prompt_tokens_details.cached_tokens` / `input_tokens_details.cached_tokens`.
    cached_tokens: Option<u64>,
    /// Anthropic `cache_read_input_tokens`.
    cache_read: Option<u64>,
    /// Anthropic `cache_creation_input_tokens` (all cache writes), or an
    /// OpenAI-compatible gateway's `prompt_tokens_details.cache_write_tokens`.
    cache_creation: Option<u64>,
    /// Anthropic `cache_creation.ephemeral_5m_input_tokens`.
    write_5m: Option<u64>,
    /// Anthropic `cache_creation.ephemeral_1h_input_tokens`.
    write_1h: Option<u64>,
    /// DeepSeek `prompt_cache_hit_tokens` (part of its `prompt_tokens`).
    cache_hit: Option<u64>,
}

impl RawUsage {
    /// Merges every usage object of one JSON document: top-level `usage`
    /// (Chat, Completions, Responses and Anthropic bodies, Anthropic
    /// `message_delta`), `response.usage` (Responses `response.completed`),
    /// `message.usage` (Anthropic `message_start`). `null` is ignored.
    pub(super) fn observe(&mut self, value: &Value) {
        let nested = |key: &str| value.get(key).and_then(|v| v.get("usage"));
        self.observe_each([value.get("usage"), nested("response"), nested("message")]);
    }

    /// [`RawUsage::observe`] of a document read as [`Usages`]: the same
    /// objects, without building the rest of the document.
    pub(super) fn observe_usages(&mut self, usages: &Usages) {
        fn nested(n: &Option<Nested>) -> Option<&Value> {
            n.as_ref().and_then(|n| n.usage.as_ref())
        }
        self.observe_each([
            usages.usage.as_ref(),
            nested(&usages.response),
            nested(&usages.message),
        ]);
    }

    fn observe_each(&mut self, objects: [Option<&Value>; 3]) {
        for usage in objects {
            if let Some(usage) = usage.and_then(Value::as_object) {
                self.merge(usage);
            }
        }
    }

    fn merge(&mut self, usage: &Map<String, Value>) {
        let field = |key: &str| usage.get(key).and_then(token_count);
        let set = |slot: &mut Option<u64>, value: Option<u64>| {
            if value.is_some() {
                *slot = value;
            }
        };
        set(&mut self.prompt_tokens, field("prompt_tokens"));
        set(&mut self.input_tokens, field("input_tokens"));
        set(
            &mut self.output_tokens,
            field("completion_tokens").or_else(|| field("output_tokens")),
        );
        let details = usage
            .get("prompt_tokens_details")
            .or_else(|| usage.get("input_tokens_details"));
        set(
            &mut self.cached_tokens,
            details
                .and_then(|d| d.get("cached_tokens"))
                .and_then(token_count),
        );
        set(&mut self.cache_read, field("cache_read_input_tokens"));
        set(
            &mut self.cache_creation,
            field("cache_creation_input_tokens").or_else(|| {
                details
                    .and_then(|d| d.get("cache_write_tokens"))
                    .and_then(token_count)
            }),
        );
        let breakdown = usage.get("cache_creation");
        let ttl = |key: &str| breakdown.and_then(|b| b.get(key)).and_then(token_count);
        set(&mut self.write_5m, ttl("ephemeral_5m_input_tokens"));
        set(&mut self.write_1h, ttl("ephemeral_1h_input_tokens"));
        set(&mut self.cache_hit, field("prompt_cache_hit_tokens"));
    }

    /// All cache writes and the 1-hour ones among them: Anthropic's total
    /// `cache_creation_input_tokens`, split by its `cache_creation` breakdown
    /// when present; without one, every write has the default 5-minute
    /// lifetime.
    fn cache_writes(&self) -> (u64, u64) {
        let total = self.cache_creation.unwrap_or_else(|| {
            self.write_5m
                .unwrap_or(0)
                .saturating_add(self.write_1h.unwrap_or(0))
        });
        (total, self.write_1h.unwrap_or(0).min(total))
    }

    /// The billed usage, if the provider reported prompt or completion tokens.
    ///
    /// - OpenAI Chat/Completions (and Gemini's and DeepSeek's OpenAI-compatible
    ///   endpoints): prompt = `prompt_tokens`, which already includes the
    ///   cached `prompt_tokens_details.cached_tokens` (DeepSeek:
    ///   `prompt_cache_hit_tokens`).
    /// - OpenAI Responses: prompt = `input_tokens` (includes cached),
    ///   cached = `input_tokens_details.cached_tokens`.
    /// - Anthropic Messages: `input_tokens` counts only the uncached tokens
    ///   after the last cache breakpoint, so
    ///   prompt = `input_tokens + cache_read_input_tokens + cache_creation_input_tokens`,
    ///   cached = `cache_read_input_tokens`, and the cache writes are
    ///   `cache_creation_input_tokens`, split into 5-minute and 1-hour writes
    ///   by `cache_creation.ephemeral_{5m,1h}_input_tokens`.
    ///   Anthropic is recognised by `input_tokens` appearing with a cache
    ///   field; an OpenAI-style `prompt_tokens` (which OpenAI-compatible
    ///   gateways send alongside `cache_read_input_tokens`) already includes
    ///   the cache and is never added to.
    pub(super) fn reported(&self) -> Option<Usage> {
        let anthropic = self.cache_read.is_some()
            || self.cache_creation.is_some()
            || self.write_5m.is_some()
            || self.write_1h.is_some();
        let (writes, writes_1h) = self.cache_writes();
        let (prompt, cached) = match (self.prompt_tokens, self.input_tokens) {
            (Some(prompt), _) => (
                Some(prompt),
                self.cached_tokens.or(self.cache_read).or(self.cache_hit),
            ),
            (None, Some(input)) if anthropic => (
                Some(
                    input
                        .saturating_add(self.cache_read.unwrap_or(0))
                        .saturating_add(writes),
                ),
                self.cache_read,
            ),
            (None, input) => (input, self.cached_tokens),
        };
        if prompt.is_none() && self.output_tokens.is_none() {
            return None;
        }
        let prompt_tokens = prompt.unwrap_or(0);
        let cached_tokens = cached.unwrap_or(0).min(prompt_tokens);
        let room = prompt_tokens.saturating_sub(cached_tokens);
        let cache_write_1h_tokens = writes_1h.min(room);
        let cache_write_tokens = writes
            .saturating_sub(writes_1h)
            .min(room.saturating_sub(cache_write_1h_tokens));
        Some(Usage {
            prompt_tokens,
            completion_tokens: self.output_tokens.unwrap_or(0),
            cached_tokens,
            cache_write_tokens,
            cache_write_1h_tokens,
        })
    }
}

/// A non-negative integer token count (`12` or `12.0`).
fn token_count(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| {
        let f = value.as_f64()?;
        (f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f < 1e18).then_some(f as u64)
    })
}
