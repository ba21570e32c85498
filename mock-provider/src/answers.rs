//! Deterministic answers: the text a model "writes", its token counts, and
//! the JSON bodies and server-sent events of each API.
//!
//! The text is `[NAME] MODEL says:` followed by filler words, each a single
//! token. It is described by a [`TextPlan`] (a prefix and a number of words)
//! and produced piece by piece, so a stream of a million chunks never holds
//! its whole text in memory, and its token count is known up front: pieces
//! split where the BPE pre-tokenizer splits, so the tokens of the text are
//! the sum of the tokens of its pieces.

use std::borrow::Cow;
use std::collections::VecDeque;

use bytes::Bytes;
use model_router_core::request::{self, ApiShape};
use model_router_core::tokens::{self, Encoding, TokenError};
use serde_json::{json, Value};

/// The API a request speaks, from its path suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// OpenAI `.../chat/completions`.
    ChatCompletions,
    /// OpenAI legacy `.../completions`.
    Completions,
    /// OpenAI Responses `.../responses`.
    Responses,
    /// Anthropic Messages `.../v1/messages`.
    Messages,
}

impl Api {
    /// The API served at `path`: the router's own path dispatch
    /// (`ApiShape::from_path`), so the mock answers exactly what the router routes.
    pub fn from_path(path: &str) -> Option<Api> {
        Some(match ApiShape::from_path(path)? {
            ApiShape::ChatCompletions => Api::ChatCompletions,
            ApiShape::Completions => Api::Completions,
            ApiShape::Responses => Api::Responses,
            ApiShape::Messages => Api::Messages,
        })
    }
}

/// What an answer needs to know about a request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Prompt {
    pub model: Option<String>,
    pub stream: bool,
    pub include_usage: bool,
    /// `max_completion_tokens`/`max_tokens`/`max_output_tokens`.
    pub max_output_tokens: Option<u64>,
    /// Billed prompt tokens.
    pub prompt_tokens: u64,
}

/// Reads a request body, or says why it is not a valid request.
///
/// Every API uses model-router's own parser and billing rule (chat: OpenAI's
/// cookbook rule; Responses: the equivalent chat request; Messages: chat
/// framing, tool definitions as JSON plus Anthropic's tool-use system prompt;
/// images by each provider's formula), counted with the mock's encoding as
/// the model's own tokenizer, so the mock bills exactly what the router
/// predicts for a model without an `estimate`.
pub fn read_request(api: Api, body: &[u8], encoding: Encoding) -> Result<Prompt, String> {
    let shape = match api {
        Api::ChatCompletions => ApiShape::ChatCompletions,
        Api::Completions => ApiShape::Completions,
        Api::Responses => ApiShape::Responses,
        Api::Messages => ApiShape::Messages,
    };
    let facts = request::parse_shape(shape, body).map_err(|e| e.to_string())?;
    let prompt_tokens = facts.prompt_tokens(encoding).map_err(|e| e.to_string())?;
    Ok(Prompt {
        model: facts.requested_model,
        stream: facts.stream,
        include_usage: facts.stream_include_usage,
        max_output_tokens: facts.max_output_tokens,
        prompt_tokens,
    })
}

/// Words appended after the prefix, cycled. Each is one token in o200k_base
/// and cl100k_base (checked by a test), with its leading space.
pub const FILLER: [&str; 24] = [
    " the", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", " and",
    " then", " runs", " back", " to", " its", " home", " in", " a", " small", " green", " field",
    " while", " birds", " sing",
];

fn filler_word(index: u64) -> &'static str {
    let len = FILLER.len() as u64;
    FILLER
        .get(usize::try_from(index % len).unwrap_or(0))
        .copied()
        .unwrap_or(" the")
}

/// Token counts of the filler words in one encoding.
#[derive(Debug, Clone)]
pub struct Filler {
    encoding: Encoding,
    counts: Vec<u64>,
    cycle: u64,
    /// Tokens of the first word without its leading space.
    first_trimmed: u64,
}

impl Filler {
    pub fn new(encoding: Encoding) -> Result<Filler, TokenError> {
        let mut counts = Vec::with_capacity(FILLER.len());
        for word in FILLER {
            counts.push(tokens::count(encoding, word)? as u64);
        }
        let cycle = counts.iter().sum();
        let first_trimmed = tokens::count(encoding, filler_word(0).trim_start())? as u64;
        Ok(Filler {
            encoding,
            counts,
            cycle,
            first_trimmed,
        })
    }

    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// Tokens of the first `n` filler words (cycled).
    fn words_tokens(&self, n: u64) -> u64 {
        let len = self.counts.len() as u64;
        let rest = usize::try_from(n % len).unwrap_or(0);
        let partial: u64 = self.counts.iter().take(rest).sum();
        (n / len).saturating_mul(self.cycle).saturating_add(partial)
    }
}

/// The text of one answer, as pieces: an optional prefix, then filler words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextPlan {
    prefix: Option<String>,
    words: u64,
    /// No prefix: the first word loses its leading space.
    trim_first: bool,
    completion_tokens: u64,
}

/// Completion length when the request does not ask for one (raised so the
/// default text always holds the whole prefix and two words).
pub const DEFAULT_COMPLETION_TOKENS: u64 = 12;

impl TextPlan {
    fn prefix(name: &str, model: &str) -> String {
        format!("[{name}] {model} says:")
    }

    /// The default length: `DEFAULT_COMPLETION_TOKENS`, or the prefix and
    /// two words when that is longer.
    pub fn default_tokens(filler: &Filler, name: &str, model: &str) -> Result<u64, TokenError> {
        let prefix = tokens::count(filler.encoding, &TextPlan::prefix(name, model))? as u64;
        Ok(DEFAULT_COMPLETION_TOKENS.max(prefix + 2))
    }

    /// A text of `target` tokens: the prefix and filler words, or only
    /// filler words when the prefix alone is longer than `target`.
    pub fn with_tokens(
        filler: &Filler,
        name: &str,
        model: &str,
        target: u64,
    ) -> Result<TextPlan, TokenError> {
        let prefix = TextPlan::prefix(name, model);
        let prefix_tokens = tokens::count(filler.encoding, &prefix)? as u64;
        Ok(if target >= prefix_tokens {
            let words = target - prefix_tokens;
            TextPlan {
                prefix: Some(prefix),
                words,
                trim_first: false,
                completion_tokens: prefix_tokens.saturating_add(filler.words_tokens(words)),
            }
        } else {
            let completion_tokens = if target == 0 {
                0
            } else {
                filler
                    .words_tokens(target)
                    .saturating_sub(filler.counts.first().copied().unwrap_or(0))
                    .saturating_add(filler.first_trimmed)
            };
            TextPlan {
                prefix: None,
                words: target,
                trim_first: true,
                completion_tokens,
            }
        })
    }

    /// A text of exactly `chunks` pieces: the prefix, then `chunks - 1` words.
    pub fn with_pieces(
        filler: &Filler,
        name: &str,
        model: &str,
        chunks: u64,
    ) -> Result<TextPlan, TokenError> {
        if chunks == 0 {
            return TextPlan::with_tokens(filler, name, model, 0);
        }
        let prefix = TextPlan::prefix(name, model);
        let prefix_tokens = tokens::count(filler.encoding, &prefix)? as u64;
        let words = chunks - 1;
        Ok(TextPlan {
            prefix: Some(prefix),
            words,
            trim_first: false,
            completion_tokens: prefix_tokens.saturating_add(filler.words_tokens(words)),
        })
    }

    /// Tokens of the whole text.
    pub fn completion_tokens(&self) -> u64 {
        self.completion_tokens
    }

    pub fn piece_count(&self) -> u64 {
        self.words + u64::from(self.prefix.is_some())
    }

    /// Piece `index` (< `piece_count()`).
    pub fn piece(&self, index: u64) -> Cow<'_, str> {
        match &self.prefix {
            Some(prefix) if index == 0 => Cow::Borrowed(prefix.as_str()),
            Some(_) => Cow::Borrowed(filler_word(index - 1)),
            None if index == 0 && self.trim_first => Cow::Borrowed(filler_word(0).trim_start()),
            None => Cow::Borrowed(filler_word(index)),
        }
    }

    /// The whole text (for non-streamed answers).
    pub fn text(&self) -> String {
        let mut text = String::new();
        for index in 0..self.piece_count() {
            text.push_str(&self.piece(index));
        }
        text
    }
}

/// One answer to render, as JSON or as events.
#[derive(Debug, Clone)]
pub struct Answer {
    pub api: Api,
    /// Sequence number making ids unique in the process.
    pub serial: u64,
    /// Unix seconds.
    pub created: u64,
    pub model: String,
    pub prompt_tokens: u64,
    /// Chat and completions streams: add the usage chunk.
    pub include_usage: bool,
    pub plan: TextPlan,
    /// Prompt tokens the usage reports as cache reads and writes.
    pub cache: CacheUsage,
}

/// Prompt-cache activity to report (`x-mock-cache: read=N,write=N,write_1h=N`),
/// each in the API's own usage fields: OpenAI `prompt_tokens_details.cached_tokens`,
/// Responses `input_tokens_details.cached_tokens`, Anthropic
/// `cache_read_input_tokens`, `cache_creation_input_tokens` and its
/// `cache_creation.ephemeral_{5m,1h}_input_tokens` breakdown. Counts are
/// parts of the prompt (cut to it); OpenAI APIs report no writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheUsage {
    pub read: u64,
    pub write: u64,
    pub write_1h: u64,
}

impl CacheUsage {
    /// `read=N,write=N,write_1h=N`, any subset, any order.
    pub fn parse(spec: &str) -> Result<CacheUsage, String> {
        let mut cache = CacheUsage::default();
        for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| format!("cache item {item:?} is not KEY=N"))?;
            let n: u64 = value
                .trim()
                .parse()
                .map_err(|_| format!("cache item {item:?}: not a non-negative integer"))?;
            match key.trim() {
                "read" => cache.read = n,
                "write" => cache.write = n,
                "write_1h" => cache.write_1h = n,
                other => {
                    return Err(format!(
                        "unknown cache item {other:?} (read, write, write_1h)"
                    ))
                }
            }
        }
        Ok(cache)
    }
}

impl Answer {
    pub(crate) fn id(&self) -> String {
        match self.api {
            Api::ChatCompletions => format!("chatcmpl-mock{}", self.serial),
            Api::Completions => format!("cmpl-mock{}", self.serial),
            Api::Responses => format!("resp_mock{}", self.serial),
            Api::Messages => format!("msg_mock{}", self.serial),
        }
    }

    pub(crate) fn completion_tokens(&self) -> u64 {
        self.plan.completion_tokens()
    }

    fn openai_usage(&self) -> Value {
        let completion = self.completion_tokens();
        let mut usage = json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens.saturating_add(completion),
        });
        if let (true, Some(map)) = (self.cache != CacheUsage::default(), usage.as_object_mut()) {
            map.insert(
                "prompt_tokens_details".into(),
                json!({"cached_tokens": self.cached_read(), "audio_tokens": 0}),
            );
        }
        usage
    }

    /// Cached reads, cut to the prompt.
    fn cached_read(&self) -> u64 {
        self.cache.read.min(self.prompt_tokens)
    }

    /// Anthropic's usage of the prompt: uncached input after the last cache
    /// breakpoint, cache reads, and the 5-minute and 1-hour writes.
    fn anthropic_usage(&self, output_tokens: u64) -> Value {
        if self.cache == CacheUsage::default() {
            return json!({"input_tokens": self.prompt_tokens, "output_tokens": output_tokens});
        }
        let read = self.cached_read();
        let left = self.prompt_tokens.saturating_sub(read);
        let write_1h = self.cache.write_1h.min(left);
        let write = self.cache.write.min(left.saturating_sub(write_1h));
        let input = left.saturating_sub(write_1h).saturating_sub(write);
        json!({
            "input_tokens": input,
            "cache_read_input_tokens": read,
            "cache_creation_input_tokens": write.saturating_add(write_1h),
            "cache_creation": {
                "ephemeral_5m_input_tokens": write,
                "ephemeral_1h_input_tokens": write_1h,
            },
            "output_tokens": output_tokens,
        })
    }

    fn responses_usage(&self) -> Value {
        let output = self.completion_tokens();
        json!({
            "input_tokens": self.prompt_tokens,
            "input_tokens_details": {"cached_tokens": self.cached_read()},
            "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": self.prompt_tokens.saturating_add(output),
        })
    }

    fn message_item_id(&self) -> String {
        format!("msg_mock{}", self.serial)
    }

    fn responses_item(&self, text: &str, done: bool) -> Value {
        let status = if done { "completed" } else { "in_progress" };
        let content = if done {
            json!([{"type": "output_text", "text": text, "annotations": []}])
        } else {
            json!([])
        };
        json!({
            "id": self.message_item_id(),
            "type": "message",
            "status": status,
            "role": "assistant",
            "content": content,
        })
    }

    fn responses_object(&self, text: Option<&str>) -> Value {
        let (status, output, usage) = match text {
            Some(text) => (
                "completed",
                json!([self.responses_item(text, true)]),
                self.responses_usage(),
            ),
            None => ("in_progress", json!([]), Value::Null),
        };
        json!({
            "id": self.id(),
            "object": "response",
            "created_at": self.created,
            "status": status,
            "model": self.model,
            "output": output,
            "usage": usage,
        })
    }

    fn anthropic_message(&self, text: Option<&str>, output_tokens: u64) -> Value {
        let (content, stop_reason) = match text {
            Some(text) => (json!([{"type": "text", "text": text}]), json!("end_turn")),
            None => (json!([]), Value::Null),
        };
        json!({
            "id": self.id(),
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": null,
            "usage": self.anthropic_usage(output_tokens),
        })
    }

    /// The non-streamed JSON body.
    pub fn json(&self) -> Value {
        let text = self.plan.text();
        match self.api {
            Api::ChatCompletions => json!({
                "id": self.id(),
                "object": "chat.completion",
                "created": self.created,
                "model": self.model,
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": null},
                    "logprobs": null,
                    "finish_reason": "stop",
                }],
                "usage": self.openai_usage(),
            }),
            Api::Completions => json!({
                "id": self.id(),
                "object": "text_completion",
                "created": self.created,
                "model": self.model,
                "choices": [{
                    "text": text,
                    "index": 0,
                    "logprobs": null,
                    "finish_reason": "stop",
                }],
                "usage": self.openai_usage(),
            }),
            Api::Responses => self.responses_object(Some(&text)),
            Api::Messages => self.anthropic_message(Some(&text), self.completion_tokens()),
        }
    }

    /// The non-streamed body, serialized.
    pub fn json_bytes(&self) -> Bytes {
        Bytes::from(self.json().to_string())
    }

    /// The streamed body, event by event.
    pub fn events(self) -> Events {
        Events::new(self)
    }
}

/// `event: NAME\ndata: JSON\n\n`.
pub(crate) fn named_event(name: &str, json: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {json}\n\n"))
}

fn json_string(text: &str) -> String {
    Value::String(text.to_string()).to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Prologue,
    Pieces,
    Epilogue,
    Finished,
}

/// The events of a streamed answer, generated lazily.
#[derive(Debug)]
pub struct Events {
    answer: Answer,
    stage: Stage,
    queue: VecDeque<Bytes>,
    next_piece: u64,
    /// Chat/completions chunks: the JSON up to and including `"choices":[`.
    common: String,
    /// Chat/completions chunks: `,"usage":null` when the stream ends with usage.
    usage_null: &'static str,
    /// Responses: the text so far (its final events repeat it).
    text: String,
    sequence: u64,
}

impl Events {
    fn new(answer: Answer) -> Events {
        let usage_null = if answer.include_usage {
            ",\"usage\":null"
        } else {
            ""
        };
        let object = match answer.api {
            Api::Completions => "text_completion",
            _ => "chat.completion.chunk",
        };
        let common = format!(
            "{{\"id\":{},\"object\":\"{object}\",\"created\":{},\"model\":{},\"choices\":[",
            json_string(&answer.id()),
            answer.created,
            json_string(&answer.model),
        );
        Events {
            answer,
            stage: Stage::Prologue,
            queue: VecDeque::new(),
            next_piece: 0,
            common,
            usage_null,
            text: String::new(),
            sequence: 0,
        }
    }

    /// A chat/completions chunk with one choice (JSON text).
    fn openai_chunk(&self, choice: &str) -> Bytes {
        let mut out = String::with_capacity(self.common.len() + choice.len() + 32);
        out.push_str("data: ");
        out.push_str(&self.common);
        out.push_str(choice);
        out.push(']');
        out.push_str(self.usage_null);
        out.push_str("}\n\n");
        Bytes::from(out)
    }

    /// The chat/completions chunk carrying a piece of text.
    fn openai_piece(&self, piece: &str, first: bool) -> Bytes {
        let piece = json_string(piece);
        let choice = match self.answer.api {
            Api::Completions => {
                format!("{{\"text\":{piece},\"index\":0,\"logprobs\":null,\"finish_reason\":null}}")
            }
            _ => {
                let role = if first { "\"role\":\"assistant\"," } else { "" };
                format!(
                    "{{\"index\":0,\"delta\":{{{role}\"content\":{piece}}},\
                     \"logprobs\":null,\"finish_reason\":null}}"
                )
            }
        };
        self.openai_chunk(&choice)
    }

    fn next_sequence(&mut self) -> u64 {
        let sequence = self.sequence;
        self.sequence += 1;
        sequence
    }

    fn responses_event(&mut self, name: &str, mut data: Value) -> Bytes {
        if let Value::Object(map) = &mut data {
            map.insert("type".to_string(), json!(name));
            map.insert("sequence_number".to_string(), json!(self.next_sequence()));
        }
        named_event(name, &data)
    }

    fn prologue(&mut self) {
        match self.answer.api {
            Api::ChatCompletions => {
                if self.answer.plan.piece_count() == 0 {
                    let chunk = self.openai_piece("", true);
                    self.queue.push_back(chunk);
                }
            }
            Api::Completions => {}
            Api::Responses => {
                let created = self.responses_event(
                    "response.created",
                    json!({"response": self.answer.responses_object(None)}),
                );
                let item = self.responses_event(
                    "response.output_item.added",
                    json!({"output_index": 0, "item": self.answer.responses_item("", false)}),
                );
                let part = self.responses_event(
                    "response.content_part.added",
                    json!({
                        "item_id": self.answer.message_item_id(),
                        "output_index": 0,
                        "content_index": 0,
                        "part": {"type": "output_text", "text": "", "annotations": []},
                    }),
                );
                self.queue.extend([created, item, part]);
            }
            Api::Messages => {
                let start = named_event(
                    "message_start",
                    &json!({
                        "type": "message_start",
                        "message": self.answer.anthropic_message(None, 1),
                    }),
                );
                let block = named_event(
                    "content_block_start",
                    &json!({
                        "type": "content_block_start",
                        "index": 0,
                        "content_block": {"type": "text", "text": ""},
                    }),
                );
                let ping = named_event("ping", &json!({"type": "ping"}));
                self.queue.extend([start, block, ping]);
            }
        }
    }

    fn piece_event(&mut self, index: u64) -> Bytes {
        let piece = self.answer.plan.piece(index).into_owned();
        match self.answer.api {
            Api::ChatCompletions | Api::Completions => self.openai_piece(&piece, index == 0),
            Api::Responses => {
                self.text.push_str(&piece);
                self.responses_event(
                    "response.output_text.delta",
                    json!({
                        "item_id": self.answer.message_item_id(),
                        "output_index": 0,
                        "content_index": 0,
                        "delta": piece,
                    }),
                )
            }
            Api::Messages => named_event(
                "content_block_delta",
                &json!({
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": piece},
                }),
            ),
        }
    }

    fn epilogue(&mut self) {
        match self.answer.api {
            Api::ChatCompletions | Api::Completions => {
                let finish = if self.answer.api == Api::ChatCompletions {
                    "{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}"
                } else {
                    "{\"text\":\"\",\"index\":0,\"logprobs\":null,\"finish_reason\":\"stop\"}"
                };
                let finish = self.openai_chunk(finish);
                self.queue.push_back(finish);
                if self.answer.include_usage {
                    let usage = format!(
                        "data: {}],\"usage\":{}}}\n\n",
                        self.common,
                        self.answer.openai_usage(),
                    );
                    self.queue.push_back(Bytes::from(usage));
                }
                self.queue
                    .push_back(Bytes::from_static(b"data: [DONE]\n\n"));
            }
            Api::Responses => {
                let text = std::mem::take(&mut self.text);
                let item_id = self.answer.message_item_id();
                let text_done = self.responses_event(
                    "response.output_text.done",
                    json!({
                        "item_id": item_id,
                        "output_index": 0,
                        "content_index": 0,
                        "text": text,
                    }),
                );
                let part_done = self.responses_event(
                    "response.content_part.done",
                    json!({
                        "item_id": item_id,
                        "output_index": 0,
                        "content_index": 0,
                        "part": {"type": "output_text", "text": text, "annotations": []},
                    }),
                );
                let item_done = self.responses_event(
                    "response.output_item.done",
                    json!({"output_index": 0, "item": self.answer.responses_item(&text, true)}),
                );
                let completed = self.responses_event(
                    "response.completed",
                    json!({"response": self.answer.responses_object(Some(&text))}),
                );
                self.queue
                    .extend([text_done, part_done, item_done, completed]);
            }
            Api::Messages => {
                let stop = named_event(
                    "content_block_stop",
                    &json!({"type": "content_block_stop", "index": 0}),
                );
                let delta = named_event(
                    "message_delta",
                    &json!({
                        "type": "message_delta",
                        "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                        "usage": {"output_tokens": self.answer.completion_tokens()},
                    }),
                );
                let end = named_event("message_stop", &json!({"type": "message_stop"}));
                self.queue.extend([stop, delta, end]);
            }
        }
    }
}

impl Iterator for Events {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Some(event);
            }
            match self.stage {
                Stage::Prologue => {
                    self.prologue();
                    self.stage = Stage::Pieces;
                }
                Stage::Pieces => {
                    if self.next_piece < self.answer.plan.piece_count() {
                        let index = self.next_piece;
                        self.next_piece += 1;
                        return Some(self.piece_event(index));
                    }
                    self.stage = Stage::Epilogue;
                }
                Stage::Epilogue => {
                    self.epilogue();
                    self.stage = Stage::Finished;
                }
                Stage::Finished => return None,
            }
        }
    }
}

/// An error body in the API's own shape.
pub fn error_json(api: Option<Api>, status: u16, message: &str) -> Value {
    if api == Some(Api::Messages) {
        let kind = match status {
            400 | 413 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            429 => "rate_limit_error",
            529 => "overloaded_error",
            _ => "api_error",
        };
        return json!({"type": "error", "error": {"type": kind, "message": message}});
    }
    let (kind, code) = match status {
        429 => ("rate_limit_error", json!("rate_limit_exceeded")),
        401 => ("authentication_error", json!("invalid_api_key")),
        400..=499 => ("invalid_request_error", Value::Null),
        _ => ("server_error", Value::Null),
    };
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::expect_used)]
mod tests {
    use super::*;

    fn filler() -> Filler {
        Filler::new(Encoding::O200kBase).unwrap()
    }

    fn answer(api: Api, plan: TextPlan, include_usage: bool) -> Answer {
        Answer {
            api,
            serial: 7,
            created: 1_700_000_000,
            model: "gpt-4o".to_string(),
            prompt_tokens: 11,
            include_usage,
            plan,
            cache: CacheUsage::default(),
        }
    }

    #[test]
    fn cache_usage_in_each_api_s_own_fields() {
        assert_eq!(
            CacheUsage::parse("read=5, write=3,write_1h=2").unwrap(),
            CacheUsage {
                read: 5,
                write: 3,
                write_1h: 2
            }
        );
        assert!(CacheUsage::parse("reads=5").is_err() && CacheUsage::parse("read=x").is_err());
        let with_cache = |api| Answer {
            cache: CacheUsage {
                read: 5,
                write: 3,
                write_1h: 2,
            },
            ..answer(
                api,
                TextPlan::with_pieces(&filler(), "m", "gpt-4o", 2).unwrap(),
                true,
            )
        };
        let chat = with_cache(Api::ChatCompletions).json();
        assert_eq!(chat["usage"]["prompt_tokens"], 11);
        assert_eq!(chat["usage"]["prompt_tokens_details"]["cached_tokens"], 5);
        let responses = with_cache(Api::Responses).json();
        assert_eq!(
            responses["usage"]["input_tokens_details"]["cached_tokens"],
            5
        );
        let messages = with_cache(Api::Messages).json();
        let usage = &messages["usage"];
        // 11 prompt tokens = 1 uncached + 5 read + 3 + 2 written.
        assert_eq!(usage["input_tokens"], 1);
        assert_eq!(usage["cache_read_input_tokens"], 5);
        assert_eq!(usage["cache_creation_input_tokens"], 5);
        assert_eq!(usage["cache_creation"]["ephemeral_5m_input_tokens"], 3);
        assert_eq!(usage["cache_creation"]["ephemeral_1h_input_tokens"], 2);
    }

    fn sse_data(events: &[Bytes]) -> Vec<String> {
        events
            .iter()
            .map(|e| {
                let text = std::str::from_utf8(e).unwrap();
                assert!(text.ends_with("\n\n"), "{text:?}");
                let data = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
                data.to_string()
            })
            .collect()
    }

    #[test]
    fn paths() {
        assert_eq!(
            Api::from_path("/v1/chat/completions"),
            Some(Api::ChatCompletions)
        );
        assert_eq!(
            Api::from_path("/openai/v1/chat/completions?x=1"),
            Some(Api::ChatCompletions)
        );
        assert_eq!(Api::from_path("/v1/completions/"), Some(Api::Completions));
        assert_eq!(Api::from_path("/v1/responses"), Some(Api::Responses));
        assert_eq!(
            Api::from_path("/anthropic/v1/messages"),
            Some(Api::Messages)
        );
        assert_eq!(Api::from_path("/v1/models"), None);
        assert_eq!(Api::from_path("/"), None);
    }

    #[test]
    fn filler_words_are_single_tokens() {
        for encoding in Encoding::ALL {
            for word in FILLER {
                assert_eq!(
                    tokens::count(encoding, word).unwrap(),
                    1,
                    "{word:?} {encoding}"
                );
            }
        }
    }

    #[test]
    fn plan_token_counts_match_the_tokenizer() {
        for encoding in Encoding::ALL {
            let filler = Filler::new(encoding).unwrap();
            for target in [0, 1, 2, 3, 5, 8, 12, 13, 40, 100, 1000] {
                for (name, model) in [("p1", "gpt-4o"), ("openai-east", "claude-3-5-sonnet")] {
                    let plan = TextPlan::with_tokens(&filler, name, model, target).unwrap();
                    let real = tokens::count(encoding, &plan.text()).unwrap() as u64;
                    assert_eq!(plan.completion_tokens(), real, "{target} {name} {model}");
                    assert_eq!(real, target, "{encoding} {target} {:?}", plan.text());
                }
            }
            for chunks in [0, 1, 2, 25, 100] {
                let plan = TextPlan::with_pieces(&filler, "p", "gpt-4o", chunks).unwrap();
                assert_eq!(plan.piece_count(), chunks);
                let real = tokens::count(encoding, &plan.text()).unwrap() as u64;
                assert_eq!(plan.completion_tokens(), real);
            }
        }
    }

    #[test]
    fn default_length_keeps_the_prefix() {
        let f = filler();
        assert_eq!(TextPlan::default_tokens(&f, "p1", "gpt-4o").unwrap(), 12);
        let long = TextPlan::default_tokens(&f, "provider-one", "claude-3-5-sonnet-20241022");
        let long = long.unwrap();
        assert!(long > 12);
        let plan = TextPlan::with_tokens(&f, "provider-one", "claude-3-5-sonnet-20241022", long);
        assert!(plan.unwrap().text().ends_with("says: the quick"));
    }

    #[test]
    fn default_text_starts_with_the_prefix() {
        let plan = TextPlan::with_tokens(&filler(), "p1", "gpt-4o", 12).unwrap();
        assert!(
            plan.text().starts_with("[p1] gpt-4o says: the quick"),
            "{}",
            plan.text()
        );
        let short = TextPlan::with_tokens(&filler(), "p1", "gpt-4o", 2).unwrap();
        assert_eq!(short.text(), "the quick");
    }

    #[test]
    fn chat_json_shape() {
        let plan = TextPlan::with_tokens(&filler(), "p1", "gpt-4o", 12).unwrap();
        let text = plan.text();
        let body = answer(Api::ChatCompletions, plan, false).json();
        assert_eq!(body["object"], "chat.completion");
        assert_eq!(body["id"], "chatcmpl-mock7");
        assert_eq!(body["model"], "gpt-4o");
        assert_eq!(body["choices"][0]["message"]["role"], "assistant");
        assert_eq!(body["choices"][0]["message"]["content"], text.as_str());
        assert_eq!(body["choices"][0]["finish_reason"], "stop");
        assert_eq!(body["usage"]["prompt_tokens"], 11);
        assert_eq!(body["usage"]["completion_tokens"], 12);
        assert_eq!(body["usage"]["total_tokens"], 23);
    }

    #[test]
    fn completions_json_shape() {
        let plan = TextPlan::with_tokens(&filler(), "p1", "gpt-4o", 14).unwrap();
        let body = answer(Api::Completions, plan, false).json();
        assert_eq!(body["object"], "text_completion");
        assert!(body["choices"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("[p1]"));
        assert_eq!(body["usage"]["completion_tokens"], 14);
    }

    fn chat_stream(include_usage: bool, pieces: u64) -> (Vec<Value>, Vec<String>) {
        let plan = TextPlan::with_pieces(&filler(), "p1", "gpt-4o", pieces).unwrap();
        let events: Vec<Bytes> = answer(Api::ChatCompletions, plan, include_usage)
            .events()
            .collect();
        let data = sse_data(&events);
        let chunks = data
            .iter()
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        (chunks, data)
    }

    #[test]
    fn chat_stream_without_usage() {
        let (chunks, data) = chat_stream(false, 5);
        assert_eq!(data.last().unwrap(), "[DONE]");
        assert_eq!(chunks.len(), 6); // 5 content + finish
        let mut text = String::new();
        for chunk in &chunks[..5] {
            assert_eq!(chunk["object"], "chat.completion.chunk");
            assert!(chunk["choices"][0]["finish_reason"].is_null());
            assert!(chunk.get("usage").is_none());
            text.push_str(chunk["choices"][0]["delta"]["content"].as_str().unwrap());
        }
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(chunks[5]["choices"][0]["finish_reason"], "stop");
        assert!(text.starts_with("[p1] gpt-4o says: the quick"));
    }

    #[test]
    fn chat_stream_with_usage() {
        let (chunks, data) = chat_stream(true, 5);
        assert_eq!(data.last().unwrap(), "[DONE]");
        assert_eq!(chunks.len(), 7);
        assert!(chunks[0]["usage"].is_null());
        let usage_chunk = &chunks[6];
        assert_eq!(usage_chunk["choices"], json!([]));
        let text = "[p1] gpt-4o says: the quick brown fox";
        let expected = tokens::count(Encoding::O200kBase, text).unwrap() as u64;
        assert_eq!(usage_chunk["usage"]["completion_tokens"], expected);
        assert_eq!(usage_chunk["usage"]["prompt_tokens"], 11);
        assert_eq!(usage_chunk["usage"]["total_tokens"], 11 + expected);
    }

    #[test]
    fn empty_chat_stream_still_has_role_and_finish() {
        let (chunks, _) = chat_stream(false, 0);
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0]["choices"][0]["delta"]["content"], "");
    }

    #[test]
    fn completions_stream() {
        let plan = TextPlan::with_pieces(&filler(), "p1", "m", 3).unwrap();
        let events: Vec<Bytes> = answer(Api::Completions, plan, true).events().collect();
        let data = sse_data(&events);
        assert_eq!(data.len(), 3 + 1 + 1 + 1);
        let first: Value = serde_json::from_str(&data[0]).unwrap();
        assert_eq!(first["object"], "text_completion");
        assert_eq!(first["choices"][0]["text"], "[p1] m says:");
        let usage: Value = serde_json::from_str(&data[4]).unwrap();
        assert_eq!(usage["choices"], json!([]));
        assert!(usage["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    }

    #[test]
    fn responses_json_and_stream() {
        let plan = TextPlan::with_tokens(&filler(), "p1", "gpt-4o", 12).unwrap();
        let text = plan.text();
        let a = answer(Api::Responses, plan, false);
        let body = a.json();
        assert_eq!(body["object"], "response");
        assert_eq!(body["status"], "completed");
        assert_eq!(body["output"][0]["content"][0]["text"], text.as_str());
        assert_eq!(body["usage"]["input_tokens"], 11);
        assert_eq!(body["usage"]["output_tokens"], 12);
        let events: Vec<Bytes> = a.events().collect();
        let first = std::str::from_utf8(&events[0]).unwrap();
        assert!(first.starts_with("event: response.created\n"));
        let last = std::str::from_utf8(events.last().unwrap()).unwrap();
        assert!(last.starts_with("event: response.completed\n"));
        let data: Value = serde_json::from_str(&sse_data(&events).pop().unwrap()).unwrap();
        assert_eq!(data["response"]["usage"]["output_tokens"], 12);
        assert_eq!(
            data["response"]["output"][0]["content"][0]["text"],
            text.as_str()
        );
        let sequences: Vec<u64> = sse_data(&events)
            .iter()
            .map(|d| {
                serde_json::from_str::<Value>(d).unwrap()["sequence_number"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(sequences, (0..events.len() as u64).collect::<Vec<_>>());
    }

    #[test]
    fn messages_json_and_stream() {
        let plan = TextPlan::with_tokens(&filler(), "p1", "claude", 10).unwrap();
        let a = answer(Api::Messages, plan, false);
        let body = a.json();
        assert_eq!(body["type"], "message");
        assert_eq!(body["content"][0]["type"], "text");
        assert_eq!(body["stop_reason"], "end_turn");
        assert_eq!(body["usage"]["input_tokens"], 11);
        assert_eq!(body["usage"]["output_tokens"], 10);
        let events: Vec<Bytes> = a.events().collect();
        let names: Vec<&str> = events
            .iter()
            .map(|e| {
                std::str::from_utf8(e)
                    .unwrap()
                    .lines()
                    .next()
                    .unwrap()
                    .strip_prefix("event: ")
                    .unwrap()
            })
            .collect();
        assert_eq!(names[0], "message_start");
        assert_eq!(names[names.len() - 2], "message_delta");
        assert_eq!(names[names.len() - 1], "message_stop");
        assert!(names.contains(&"content_block_delta"));
        let data = sse_data(&events);
        let start: Value = serde_json::from_str(&data[0]).unwrap();
        assert_eq!(start["message"]["usage"]["input_tokens"], 11);
        let delta: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
        assert_eq!(delta["usage"]["output_tokens"], 10);
    }

    #[test]
    fn reads_chat_requests_with_router_billing() {
        let body = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"hello world"}],
            "stream":true,"stream_options":{"include_usage":true},"max_tokens":5}"#;
        let prompt = read_request(Api::ChatCompletions, body, Encoding::O200kBase).unwrap();
        assert_eq!(prompt.model.as_deref(), Some("gpt-4o"));
        assert!(prompt.stream && prompt.include_usage);
        assert_eq!(prompt.max_output_tokens, Some(5));
        // "user" 1 + "hello world" 2 + 3 per message + 3 priming.
        assert_eq!(prompt.prompt_tokens, 9);
    }

    #[test]
    fn rejects_invalid_requests() {
        for (api, body) in [
            (Api::ChatCompletions, &b"not json"[..]),
            (Api::ChatCompletions, br#"{"model":"m"}"#),
            (Api::ChatCompletions, br#"{"model":"m","messages":[]}"#),
            (Api::Completions, br#"{"model":"m"}"#),
            (Api::Messages, br#"{"model":"m"}"#),
            (Api::Messages, br#"[]"#),
            (Api::Responses, br#"{"model":5,"input":"x"}"#),
        ] {
            assert!(
                read_request(api, body, Encoding::O200kBase).is_err(),
                "{body:?}"
            );
        }
    }

    #[test]
    fn reads_responses_and_messages_with_router_billing() {
        let body =
            br#"{"model":"gpt-4o","input":"hello world","max_output_tokens":7,"stream":true}"#;
        let prompt = read_request(Api::Responses, body, Encoding::O200kBase).unwrap();
        // 3 priming + 3 per message + "user" 1 + "hello world" 2.
        assert_eq!(prompt.prompt_tokens, 3 + 3 + 1 + 2);
        assert_eq!(prompt.max_output_tokens, Some(7));
        assert!(prompt.stream);
        let body = br#"{"model":"claude","max_tokens":9,"system":"hello world",
            "messages":[{"role":"user","content":"hello world"}]}"#;
        let prompt = read_request(Api::Messages, body, Encoding::O200kBase).unwrap();
        // 3 priming + system (3 + 2) + message (3 + "user" 1 + 2).
        assert_eq!(prompt.prompt_tokens, 3 + (3 + 2) + (3 + 1 + 2));
        assert_eq!(prompt.max_output_tokens, Some(9));
    }

    #[test]
    fn error_shapes() {
        let e = error_json(Some(Api::ChatCompletions), 429, "slow down");
        assert_eq!(e["error"]["type"], "rate_limit_error");
        assert_eq!(e["error"]["message"], "slow down");
        let e = error_json(None, 400, "bad");
        assert_eq!(e["error"]["type"], "invalid_request_error");
        let e = error_json(Some(Api::Messages), 529, "busy");
        assert_eq!(e["type"], "error");
        assert_eq!(e["error"]["type"], "overloaded_error");
    }
}
