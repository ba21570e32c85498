//! Request bodies → `RequestFacts`: everything routing needs to know about a
//! request, extracted once. One file per API shape.

mod chat;
mod completions;
mod tools;
mod top_level;

use std::fmt;
use std::ops::Range;

use serde_json::value::RawValue;

use crate::tokens::{self, Encoding, TokenError};
use top_level::TopLevel;

/// The API a request speaks, known from its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiShape {
    /// OpenAI `/v1/chat/completions`.
    ChatCompletions,
    /// OpenAI legacy `/v1/completions`.
    Completions,
}

impl ApiShape {
    /// The shape served at `path` (query string ignored; any prefix allowed,
    /// e.g. `/openai/v1/chat/completions`), or None for paths the router
    /// leaves alone.
    pub fn from_path(path: &str) -> Option<ApiShape> {
        let path = path.split(['?', '#']).next().unwrap_or(path);
        let path = path.trim_end_matches('/');
        if path.ends_with("/chat/completions") {
            Some(ApiShape::ChatCompletions)
        } else if path.ends_with("/completions") {
            Some(ApiShape::Completions)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ApiShape::ChatCompletions => "chat_completions",
            ApiShape::Completions => "completions",
        }
    }
}

/// Who wrote a piece of prompt text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    Developer,
    User,
    Assistant,
    Tool,
    Other,
}

impl Role {
    fn from_name(name: &str) -> Role {
        match name {
            "system" => Role::System,
            "developer" => Role::Developer,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            "tool" | "function" => Role::Tool,
            _ => Role::Other,
        }
    }
}

/// Prompt text a human or program wrote, scanned by task detection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub role: Role,
    /// Index of the message it belongs to.
    pub message: usize,
    pub text: String,
}

/// What the router knows about one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFacts {
    pub shape: Option<ApiShape>,
    /// The body's `model` value, when it is a string.
    pub requested_model: Option<String>,
    /// Byte ranges of every top-level `model` value in the body.
    pub model_spans: Vec<Range<usize>>,
    /// Byte range of the (last) top-level `stream_options` value.
    pub stream_options_span: Option<Range<usize>>,
    /// Message count (chat), 0 for legacy completions.
    pub messages: u64,
    /// `max_completion_tokens`, else `max_tokens`.
    pub max_output_tokens: Option<u64>,
    pub stream: bool,
    pub stream_include_usage: bool,
    /// `response_format` asks for `json_object` or `json_schema`.
    pub structured_output: bool,
    /// Tool (or legacy function) definitions are present.
    pub tools: bool,
    /// Image content parts.
    pub images: u64,
    /// Content text, for task detection and token counts.
    pub content: Vec<Segment>,
    /// Text billed as prompt but not content (roles, names, tool definitions).
    pub(crate) counted_only: Vec<String>,
    /// Tokens known without an encoding (per-message framing, token-array prompts).
    pub(crate) fixed_tokens: i64,
    /// Tool functions defined; their framing cost depends on the encoding.
    pub(crate) tool_functions: u64,
}

impl RequestFacts {
    /// The prompt tokens the provider bills, with `encoding`.
    pub fn prompt_tokens(&self, encoding: Encoding) -> Result<u64, TokenError> {
        let mut total = self.fixed_tokens;
        for segment in &self.content {
            total = total.saturating_add(count_i64(encoding, &segment.text)?);
        }
        for text in &self.counted_only {
            total = total.saturating_add(count_i64(encoding, text)?);
        }
        let per_function = tools::function_framing_tokens(encoding);
        total = total.saturating_add(per_function.saturating_mul(self.tool_functions as i64));
        Ok(u64::try_from(total).unwrap_or(0))
    }
}

fn count_i64(encoding: Encoding, text: &str) -> Result<i64, TokenError> {
    Ok(i64::try_from(tokens::count(encoding, text)?).unwrap_or(i64::MAX))
}

/// Why a body is not a request the router can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    pub message: String,
}

impl RequestError {
    pub(crate) fn new(message: impl Into<String>) -> RequestError {
        RequestError {
            message: message.into(),
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RequestError {}

/// Reads a request body sent to `path`. Paths of no known shape are an error:
/// callers check `ApiShape::from_path` first to decide whether to route.
pub fn parse(path: &str, body: &[u8]) -> Result<RequestFacts, RequestError> {
    let shape = ApiShape::from_path(path)
        .ok_or_else(|| RequestError::new(format!("no LLM API is served at path {path:?}")))?;
    parse_shape(shape, body)
}

/// Reads a request body of a known shape.
pub fn parse_shape(shape: ApiShape, body: &[u8]) -> Result<RequestFacts, RequestError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| RequestError::new(format!("body is not valid UTF-8: {e}")))?;
    let top = TopLevel::parse(text)
        .map_err(|e| RequestError::new(format!("body is not a JSON object: {e}")))?;
    let mut facts = RequestFacts {
        shape: Some(shape),
        model_spans: top.spans(text, "model"),
        stream_options_span: top.spans(text, "stream_options").pop(),
        ..RequestFacts::default()
    };
    if let Some(model) = top.get("model") {
        facts.requested_model = Some(field::<String>(model, "model")?);
    }
    facts.stream = optional::<bool>(&top, "stream")?.unwrap_or(false);
    if let Some(options) = top.get("stream_options") {
        let options: serde_json::Value = field(options, "stream_options")?;
        facts.stream_include_usage = options
            .get("include_usage")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
    }
    facts.max_output_tokens = match optional::<u64>(&top, "max_completion_tokens")? {
        Some(n) => Some(n),
        None => optional::<u64>(&top, "max_tokens")?,
    };
    match shape {
        ApiShape::ChatCompletions => chat::read(&top, &mut facts)?,
        ApiShape::Completions => completions::read(&top, &mut facts)?,
    }
    Ok(facts)
}

/// Byte ranges of the top-level `model` values of a JSON object body.
pub fn model_spans(body: &[u8]) -> Result<Vec<Range<usize>>, RequestError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| RequestError::new(format!("body is not valid UTF-8: {e}")))?;
    let top = TopLevel::parse(text)
        .map_err(|e| RequestError::new(format!("body is not a JSON object: {e}")))?;
    Ok(top.spans(text, "model"))
}

/// Parses one member, naming it in the error.
pub(crate) fn field<T: serde::de::DeserializeOwned>(
    raw: &RawValue,
    name: &str,
) -> Result<T, RequestError> {
    serde_json::from_str(raw.get())
        .map_err(|e| RequestError::new(format!("`{name}` has the wrong type: {e}")))
}

/// Parses an optional member; `null` counts as absent.
pub(crate) fn optional<T: serde::de::DeserializeOwned>(
    top: &TopLevel<'_>,
    name: &str,
) -> Result<Option<T>, RequestError> {
    match top.get(name) {
        None => Ok(None),
        Some(raw) if raw.get() == "null" => Ok(None),
        Some(raw) => field(raw, name).map(Some),
    }
}

#[cfg(test)]
mod tests;
