//! Request bodies → `RequestFacts`: everything routing needs to know about a
//! request, extracted once. One file per API shape: `chat` (OpenAI Chat
//! Completions), `completions` (legacy), `responses` (OpenAI Responses),
//! `messages` (Anthropic Messages).
//!
//! Prompt tokens are what the provider bills for the body as sent: the
//! shape's text with its framing (counted with an encoding, and scaled by a
//! model's estimate ratio when its tokenizer is not public), plus tokens
//! known without an encoding: images, priced by the provider's formula
//! (`images`), and fixed overheads such as Anthropic's tool-use system prompt.
//! Context the provider keeps server-side (a Responses `previous_response_id`
//! or `conversation`, stored prompts, uploaded files) is not in the body and
//! is not counted.

mod api;
mod chat;
mod completions;
pub mod images;
mod messages;
mod responses;
mod shape;
mod tools;
pub mod top_level;

pub use api::{Api, ApiSet};
pub use shape::{ShapeSpec, SHAPES};

use std::fmt;
use std::ops::Range;

use serde_json::value::RawValue;

use crate::tokens::{self, Encoding, TokenError};
use images::Detail;
use top_level::TopLevel;

/// The API a request speaks, known from its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiShape {
    /// OpenAI `/v1/chat/completions`.
    ChatCompletions,
    /// OpenAI legacy `/v1/completions`.
    Completions,
    /// OpenAI Responses `/v1/responses`.
    Responses,
    /// Anthropic Messages `/v1/messages`.
    Messages,
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

/// Reads the token ids of content segments while they are counted
/// ([`RequestFacts::text_tokens_visiting`]): the classifier's features.
pub trait TokenVisitor {
    /// Starts `content[index]` (segments in order): whether its ids are wanted.
    fn segment(&mut self, index: usize) -> bool;
    /// The segment's next token ids, in order (those of a few pieces at a
    /// time): whether more are wanted.
    fn ids(&mut self, ids: &[u32]) -> bool;
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
    /// Messages of the conversation, a system prompt (`system`,
    /// `instructions`) counting as one; 0 for legacy completions.
    pub messages: u64,
    /// The output limit: chat `max_completion_tokens` else `max_tokens`,
    /// Responses `max_output_tokens`, Messages `max_tokens`.
    pub max_output_tokens: Option<u64>,
    pub stream: bool,
    /// The stream will carry usage without the router asking: the client set
    /// `stream_options.include_usage` (chat, completions), or the API always
    /// sends it (Responses, Messages).
    pub stream_include_usage: bool,
    /// A JSON output format is asked for: chat `response_format`, Responses
    /// `text.format`, Messages `output_config.format` (or the beta
    /// `output_format`) of type `json_object` or `json_schema`.
    pub structured_output: bool,
    /// Tool (or legacy function) definitions are present.
    pub tools: bool,
    /// Image inputs.
    pub images: u64,
    /// Content text, for task detection and token counts.
    pub content: Vec<Segment>,
    /// Text billed as prompt but not content (roles, names, tool definitions).
    pub(crate) counted_only: Vec<String>,
    /// Tokens known without an encoding (per-message framing, token-array prompts).
    pub(crate) fixed_tokens: i64,
    /// Tool functions defined; their framing cost depends on the encoding.
    pub(crate) tool_functions: u64,
    /// Tokens of the images whose price is known (size read, or `detail: low`).
    pub(crate) image_tokens: u64,
    /// Images whose size is unknown (remote URLs, file ids): priced at a default.
    pub(crate) unsized_images: u64,
    /// Tokens the provider adds that no tokenizer ratio applies to (Anthropic's
    /// tool-use system prompt).
    pub(crate) exact_tokens: u64,
}

impl RequestFacts {
    /// The index of the last message with user content: what `last_user`
    /// scans (task detection, classifier features) read.
    pub fn last_user_message(&self) -> Option<usize> {
        self.content
            .iter()
            .filter(|s| s.role == Role::User)
            .map(|s| s.message)
            .max()
    }

    /// The prompt tokens the provider bills, with `encoding` as the model's
    /// own tokenizer and images of unknown size at the shape's default.
    pub fn prompt_tokens(&self, encoding: Encoding) -> Result<u64, TokenError> {
        Ok(self.prompt_tokens_from(self.text_tokens(encoding)?, None, None))
    }

    /// Tokens of the text and its framing with `encoding`: the part of the
    /// prompt a tokenizer counts (and an estimate ratio scales).
    pub fn text_tokens(&self, encoding: Encoding) -> Result<u64, TokenError> {
        self.text_tokens_up_to(encoding, u64::MAX)
    }

    /// `min(text_tokens(encoding), limit)`, counting only until `limit` is
    /// reached (every text adds a count of zero or more, so once the running
    /// total reaches `limit` the rest cannot bring it back under).
    pub fn text_tokens_up_to(&self, encoding: Encoding, limit: u64) -> Result<u64, TokenError> {
        let limit_i64 = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut total = self.framing_tokens(encoding);
        let texts = self
            .content
            .iter()
            .map(|s| s.text.as_str())
            .chain(self.counted_only.iter().map(String::as_str));
        for text in texts {
            let room = limit_i64.saturating_sub(total);
            if room <= 0 {
                break; // already at the limit
            }
            // usize is 32 bits in the filter (wasm32): a larger room is "no limit".
            let room = usize::try_from(room).unwrap_or(usize::MAX);
            let n = tokens::count_up_to(encoding, text, room)?;
            total = total.saturating_add(i64::try_from(n).unwrap_or(i64::MAX));
        }
        Ok(u64::try_from(total).unwrap_or(0).min(limit))
    }

    /// `text_tokens(encoding)`, handing `visitor` the token ids of the
    /// content segments it wants on the way: one tokenizer pass gives the
    /// count and the classifier's features. Segments it does not want, and
    /// the rest of a segment once it wants no more, are only counted.
    pub fn text_tokens_visiting(
        &self,
        encoding: Encoding,
        visitor: &mut impl TokenVisitor,
    ) -> Result<u64, TokenError> {
        // Summed as `text_tokens_up_to` sums (framing may be negative).
        let mut total = self.framing_tokens(encoding);
        for (index, segment) in self.content.iter().enumerate() {
            let n = if visitor.segment(index) {
                tokens::visit_ids_batched(encoding, &segment.text, |ids| visitor.ids(ids))?
            } else {
                tokens::count(encoding, &segment.text)?
            };
            total = total.saturating_add(i64::try_from(n).unwrap_or(i64::MAX));
        }
        for text in &self.counted_only {
            let n = tokens::count(encoding, text)?;
            total = total.saturating_add(i64::try_from(n).unwrap_or(i64::MAX));
        }
        Ok(u64::try_from(total).unwrap_or(0))
    }

    /// An upper bound on `text_tokens(encoding)` known without counting:
    /// every token is at least one byte, so a text has at most as many
    /// tokens as bytes.
    pub fn text_tokens_upper_bound(&self, encoding: Encoding) -> u64 {
        let bytes = self
            .content
            .iter()
            .map(|s| s.text.len())
            .chain(self.counted_only.iter().map(String::len))
            .fold(0i64, |sum, n| {
                sum.saturating_add(i64::try_from(n).unwrap_or(i64::MAX))
            });
        u64::try_from(self.framing_tokens(encoding).saturating_add(bytes)).unwrap_or(0)
    }

    /// Tokens that do not depend on the texts: fixed framing and tool functions.
    fn framing_tokens(&self, encoding: Encoding) -> i64 {
        let per_function = tools::function_framing_tokens(encoding);
        let functions = i64::try_from(self.tool_functions).unwrap_or(i64::MAX);
        self.fixed_tokens
            .saturating_add(per_function.saturating_mul(functions))
    }

    /// The whole prompt from its `text` tokens: scaled by `ratio` when the
    /// model's tokenizer is estimated, plus images (those of unknown size at
    /// `default_image_tokens`, else the shape's default) and fixed overheads.
    pub fn prompt_tokens_from(
        &self,
        text: u64,
        ratio: Option<Ratio>,
        default_image_tokens: Option<u64>,
    ) -> u64 {
        let text = ratio.map_or(text, |r| r.apply(text));
        text.saturating_add(self.image_tokens(default_image_tokens))
            .saturating_add(self.exact_tokens)
    }

    /// Prompt tokens of the images.
    pub fn image_tokens(&self, default_image_tokens: Option<u64>) -> u64 {
        let each = default_image_tokens.unwrap_or_else(|| {
            self.shape
                .unwrap_or(ApiShape::ChatCompletions)
                .image_pricing()
                .default_tokens()
        });
        self.image_tokens
            .saturating_add(self.unsized_images.saturating_mul(each))
    }

    /// Records one image of `size` (None: unknown) priced the shape's way.
    pub(crate) fn add_image(&mut self, size: Option<(u32, u32)>, detail: Detail) {
        self.images = self.images.saturating_add(1);
        let pricing = self
            .shape
            .unwrap_or(ApiShape::ChatCompletions)
            .image_pricing();
        match pricing.tokens(size, detail) {
            Some(tokens) => self.image_tokens = self.image_tokens.saturating_add(tokens),
            None => self.unsized_images = self.unsized_images.saturating_add(1),
        }
    }

    /// Records an image given by URL (a `data:` URL's size is read from it).
    pub(crate) fn add_image_url(&mut self, url: Option<&str>, detail: Detail) {
        self.add_image(url.and_then(images::data_url_size), detail);
    }
}

/// A tokenizer estimate: a public encoding's count times a calibrated ratio,
/// for models whose own tokenizer is not public (Claude, Llama, Mistral,
/// Gemini). Kept in millionths so that `ceil(count × ratio)` is exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ratio {
    millionths: u64,
}

impl Ratio {
    const ONE: u64 = 1_000_000;

    /// The ratio nearest `ratio` in millionths; None unless finite and in (0, 1000].
    pub fn new(ratio: f64) -> Option<Ratio> {
        if !ratio.is_finite() || ratio <= 0.0 || ratio > 1000.0 {
            return None;
        }
        // In (0, 1e9] after the check: the cast is exact.
        let millionths = (ratio * 1e6).round() as u64;
        (millionths > 0).then_some(Ratio { millionths })
    }

    /// `ceil(tokens × ratio)`.
    pub fn apply(self, tokens: u64) -> u64 {
        let scaled = u128::from(tokens)
            .saturating_mul(u128::from(self.millionths))
            .div_ceil(u128::from(Ratio::ONE));
        u64::try_from(scaled).unwrap_or(u64::MAX)
    }

    pub fn value(self) -> f64 {
        self.millionths as f64 / 1e6
    }
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
    let spec = shape.spec();
    if spec.stream_always_has_usage {
        facts.stream_include_usage = true; // nothing to ask for
    } else if let Some(options) = top.get("stream_options") {
        let options: serde_json::Value = field(options, "stream_options")?;
        facts.stream_include_usage = options
            .get("include_usage")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
    }
    for name in spec.output_limit_fields {
        if let Some(n) = optional::<u64>(&top, name)? {
            facts.max_output_tokens = Some(n);
            break;
        }
    }
    (spec.read)(&top, &mut facts)?;
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
