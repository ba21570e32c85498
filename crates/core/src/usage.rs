//! Billed usage read from LLM API responses as their bytes pass through.
//!
//! The filter hands each response body chunk to a [`UsageReader`] and asks for
//! the result at the end of the stream. Two body formats:
//!
//! - **JSON** (`application/json` and anything that is not an event stream):
//!   the body is copied up to a limit and parsed once at the end.
//! - **Server-Sent Events** (`text/event-stream`): parsed line by line as the
//!   bytes arrive, across arbitrary chunk boundaries, keeping only the current
//!   unfinished line and event (each capped) plus a bounded buffer of
//!   streamed text. Memory stays flat however long the stream is.
//!
//! The usage objects of OpenAI Chat Completions and (legacy) Completions,
//! OpenAI Responses and Anthropic Messages are recognised by their shape
//! wherever they occur (`usage`, `response.usage`, `message.usage`); later
//! values override earlier ones field by field. When a response carries no
//! usage, the completion text it returned is tokenized with the configured
//! encoding instead ([`ReadUsage::CountedText`], an estimate).

use serde_json::{Map, Value};

use crate::cost::Usage;
use crate::tokens::{self, Encoding};

/// Streamed text is tokenized in pieces once this much of it is buffered.
const TEXT_FLUSH_BYTES: usize = 16 * 1024;
/// A parser buffer that grew past this for one large event is released after it.
const SHRINK_ABOVE: usize = 64 * 1024;
/// A UTF-8 byte order mark, dropped from the start of an event stream.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// How a response body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFormat {
    /// One JSON document.
    Json,
    /// Server-Sent Events (`text/event-stream`), one JSON document per event.
    EventStream,
}

impl ResponseFormat {
    /// `text/event-stream` (any case, any parameters) is an event stream;
    /// everything else, including a missing content type, is read as JSON.
    pub fn from_content_type(ct: &str) -> ResponseFormat {
        let media_type = ct.split(';').next().unwrap_or_default().trim();
        if media_type.eq_ignore_ascii_case("text/event-stream") {
            ResponseFormat::EventStream
        } else {
            ResponseFormat::Json
        }
    }
}

/// What a response says about its billed usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadUsage {
    /// The provider's usage object(s).
    Reported(Usage),
    /// No usage in the response, but text was streamed/returned: completion
    /// tokens counted by us with the given encoding. An estimate: the prompt
    /// is unknown here, reasoning and tool-call tokens are not seen, and long
    /// streams are tokenized in pieces (see [`UsageReader`]).
    CountedText { completion_tokens: u64 },
    /// Nothing usable (error body, non-JSON, cut-off, over the limits).
    Missing,
}

/// Reads the billed usage of one response, fed chunk by chunk.
///
/// Never panics and never holds more than about `json_limit` bytes (JSON) or
/// `max_event_bytes` plus 16 KiB of text plus the last text delta (event
/// streams).
///
/// Streamed text without usage is tokenized whenever more than 16 KiB of it is
/// buffered: everything before the last whitespace character is counted and
/// only the rest is kept. Token merges across such a cut (and across the
/// deltas of different choices or content blocks, which are joined) can make
/// the total differ from tokenizing the whole text at once by about a token
/// per cut, so the count is an estimate.
#[derive(Debug)]
pub struct UsageReader {
    body: Body,
}

#[derive(Debug)]
enum Body {
    Json(JsonBody),
    EventStream(Box<EventStream>),
}

impl UsageReader {
    /// `json_limit`: max bytes of a JSON (non-stream) body kept to parse at
    /// the end; beyond it, give up (Missing).
    /// `max_event_bytes`: max size of one SSE event (its joined `data` values
    /// and `event` name plus the line being read); a longer event is skipped
    /// (counted in [`UsageReader::oversized_events`]), memory stays bounded.
    /// Over-long comment, `id` or `retry` lines are dropped without skipping
    /// their event.
    pub fn new(
        format: ResponseFormat,
        json_limit: usize,
        max_event_bytes: usize,
        encoding: Encoding,
    ) -> UsageReader {
        let body = match format {
            ResponseFormat::Json => Body::Json(JsonBody {
                bytes: Vec::new(),
                limit: json_limit,
                over_limit: false,
                encoding,
            }),
            ResponseFormat::EventStream => Body::EventStream(Box::new(EventStream {
                parser: SseParser::new(max_event_bytes),
                tally: Tally::new(encoding),
            })),
        };
        UsageReader { body }
    }

    /// Feeds the next chunk of the response body.
    pub fn feed(&mut self, chunk: &[u8]) {
        match &mut self.body {
            Body::Json(json) => json.feed(chunk),
            Body::EventStream(stream) => {
                let EventStream { parser, tally } = &mut **stream;
                parser.feed(chunk, &mut |name, data| tally.observe_event(name, data));
            }
        }
    }

    /// The usage, once the whole body has been fed. An event stream's
    /// unfinished last event (no closing blank line) is discarded, as the SSE
    /// specification requires.
    pub fn finish(self) -> ReadUsage {
        match self.body {
            Body::Json(json) => json.finish(),
            Body::EventStream(stream) => stream.tally.finish(),
        }
    }

    /// Bytes currently held (for tests and the memory-flatness claim): the
    /// capacity of every buffer the reader owns.
    pub fn retained_bytes(&self) -> usize {
        match &self.body {
            Body::Json(json) => json.bytes.capacity(),
            Body::EventStream(stream) => stream
                .parser
                .retained_bytes()
                .saturating_add(stream.tally.text.pending.capacity()),
        }
    }

    pub fn format(&self) -> ResponseFormat {
        match self.body {
            Body::Json(_) => ResponseFormat::Json,
            Body::EventStream(_) => ResponseFormat::EventStream,
        }
    }

    /// Events skipped for exceeding `max_event_bytes` (always 0 for JSON).
    pub fn oversized_events(&self) -> u64 {
        match &self.body {
            Body::Json(_) => 0,
            Body::EventStream(stream) => stream.parser.oversized_events,
        }
    }

    /// Whether a JSON body outgrew `json_limit` and was given up on.
    pub fn over_json_limit(&self) -> bool {
        match &self.body {
            Body::Json(json) => json.over_limit,
            Body::EventStream(_) => false,
        }
    }
}

// ---------------------------------------------------------------------------
// JSON bodies

#[derive(Debug)]
struct JsonBody {
    bytes: Vec<u8>,
    limit: usize,
    over_limit: bool,
    encoding: Encoding,
}

impl JsonBody {
    fn feed(&mut self, chunk: &[u8]) {
        if self.over_limit || chunk.is_empty() {
            return;
        }
        let len = self.bytes.len().saturating_add(chunk.len());
        if len > self.limit {
            self.over_limit = true;
            self.bytes = Vec::new();
            return;
        }
        if len > self.bytes.capacity() {
            // Grow geometrically, but never past the limit.
            let target = self
                .bytes
                .capacity()
                .saturating_mul(2)
                .max(len)
                .min(self.limit);
            self.bytes
                .reserve_exact(target.saturating_sub(self.bytes.len()));
        }
        self.bytes.extend_from_slice(chunk);
    }

    fn finish(self) -> ReadUsage {
        if self.over_limit {
            return ReadUsage::Missing;
        }
        let Ok(value) = serde_json::from_slice::<Value>(&self.bytes) else {
            return ReadUsage::Missing;
        };
        let mut usage = RawUsage::default();
        usage.observe(&value);
        if let Some(usage) = usage.reported() {
            return ReadUsage::Reported(usage);
        }
        // Each piece (choice, content block, output part) is tokenized on its
        // own: they are separate texts.
        let mut total: Option<u64> = None;
        let mut failed = false;
        body_texts(&value, &mut |text| match count(self.encoding, text) {
            Some(n) => total = Some(total.unwrap_or(0).saturating_add(n)),
            None => failed = true,
        });
        match total {
            Some(completion_tokens) if !failed => ReadUsage::CountedText { completion_tokens },
            _ => ReadUsage::Missing,
        }
    }
}

/// The completion texts of a whole (non-stream) response:
/// Chat `choices[].message.content`, Completions `choices[].text`,
/// Responses `output[].content[].text`, Anthropic `content[].text`.
fn body_texts<'a>(value: &'a Value, out: &mut impl FnMut(&'a str)) {
    for choice in array(value.get("choices")) {
        let content = choice.get("message").and_then(|m| m.get("content"));
        if let Some(text) = content.and_then(Value::as_str) {
            out(text);
        }
        if let Some(text) = choice.get("text").and_then(Value::as_str) {
            out(text);
        }
    }
    for item in array(value.get("output")) {
        for part in array(item.get("content")) {
            if let Some(text) = part.get("text").and_then(Value::as_str) {
                out(text);
            }
        }
    }
    for block in array(value.get("content")) {
        if let Some(text) = block.get("text").and_then(Value::as_str) {
            out(text);
        }
    }
}

fn array(value: Option<&Value>) -> &[Value] {
    value.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn count(encoding: Encoding, text: &str) -> Option<u64> {
    let n = tokens::count(encoding, text).ok()?;
    u64::try_from(n).ok()
}

// ---------------------------------------------------------------------------
// Usage objects

/// The usage fields seen so far, as the provider named them. Kept raw so that
/// values from different events override each other field by field.
#[derive(Debug, Default, Clone, Copy)]
struct RawUsage {
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
    /// Anthropic `cache_creation_input_tokens`.
    cache_creation: Option<u64>,
}

impl RawUsage {
    /// Merges every usage object of one JSON document: top-level `usage`
    /// (Chat, Completions, Responses and Anthropic bodies, Anthropic
    /// `message_delta`), `response.usage` (Responses `response.completed`),
    /// `message.usage` (Anthropic `message_start`). `null` is ignored.
    fn observe(&mut self, value: &Value) {
        let nested = |key: &str| value.get(key).and_then(|v| v.get("usage"));
        for usage in [value.get("usage"), nested("response"), nested("message")] {
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
            field("cache_creation_input_tokens"),
        );
    }

    /// The billed usage, if the provider reported prompt or completion tokens.
    ///
    /// - OpenAI Chat/Completions: prompt = `prompt_tokens`, which already
    ///   includes `prompt_tokens_details.cached_tokens` = cached.
    /// - OpenAI Responses: prompt = `input_tokens` (includes cached),
    ///   cached = `input_tokens_details.cached_tokens`.
    /// - Anthropic Messages: `input_tokens` counts only the uncached tokens
    ///   after the last cache breakpoint, so
    ///   prompt = `input_tokens + cache_read_input_tokens + cache_creation_input_tokens`
    ///   and cached = `cache_read_input_tokens`. Cache writes are billed as
    ///   prompt tokens at the input price (their premium is not modelled).
    ///   Anthropic is recognised by `input_tokens` appearing with a `cache_*`
    ///   field; an OpenAI-style `prompt_tokens` (which OpenAI-compatible
    ///   gateways send alongside `cache_read_input_tokens`) already includes
    ///   the cache and is never added to.
    fn reported(&self) -> Option<Usage> {
        let anthropic = self.cache_read.is_some() || self.cache_creation.is_some();
        let (prompt, cached) = match (self.prompt_tokens, self.input_tokens) {
            (Some(prompt), _) => (Some(prompt), self.cached_tokens.or(self.cache_read)),
            (None, Some(input)) if anthropic => (
                Some(
                    input
                        .saturating_add(self.cache_read.unwrap_or(0))
                        .saturating_add(self.cache_creation.unwrap_or(0)),
                ),
                self.cache_read,
            ),
            (None, input) => (input, self.cached_tokens),
        };
        if prompt.is_none() && self.output_tokens.is_none() {
            return None;
        }
        let prompt_tokens = prompt.unwrap_or(0);
        Some(Usage {
            prompt_tokens,
            completion_tokens: self.output_tokens.unwrap_or(0),
            cached_tokens: cached.unwrap_or(0).min(prompt_tokens),
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

// ---------------------------------------------------------------------------
// Event streams

#[derive(Debug)]
struct EventStream {
    parser: SseParser,
    tally: Tally,
}

/// What the events of a stream said so far.
#[derive(Debug)]
struct Tally {
    usage: RawUsage,
    text: TextCounter,
}

impl Tally {
    fn new(encoding: Encoding) -> Tally {
        Tally {
            usage: RawUsage::default(),
            text: TextCounter::new(encoding),
        }
    }

    /// One dispatched event. `[DONE]` and data that is not JSON are ignored.
    fn observe_event(&mut self, name: &[u8], data: &[u8]) {
        if data.trim_ascii() == b"[DONE]" {
            return;
        }
        let Ok(value) = serde_json::from_slice::<Value>(data) else {
            return;
        };
        self.usage.observe(&value);
        if self.usage.reported().is_some() {
            // Reported usage wins: the text is no longer needed.
            self.text.abandon();
            return;
        }
        // The JSON `type` names the event (Anthropic, Responses); the SSE
        // `event:` name is only a fallback.
        let kind = match value.get("type").and_then(Value::as_str) {
            Some(kind) => kind,
            None => std::str::from_utf8(name).unwrap_or_default(),
        };
        let text = &mut self.text;
        event_texts(&value, kind, &mut |piece| text.push(piece));
    }

    fn finish(self) -> ReadUsage {
        if let Some(usage) = self.usage.reported() {
            return ReadUsage::Reported(usage);
        }
        match self.text.finish() {
            Some(completion_tokens) => ReadUsage::CountedText { completion_tokens },
            None => ReadUsage::Missing,
        }
    }
}

/// The completion text deltas of one stream event: Chat
/// `choices[].delta.content`, Completions `choices[].text`, Responses
/// `response.output_text.delta` / `response.refusal.delta` `delta`, Anthropic
/// `content_block_delta` `delta.text`.
fn event_texts<'a>(value: &'a Value, kind: &str, out: &mut impl FnMut(&'a str)) {
    for choice in array(value.get("choices")) {
        let content = choice.get("delta").and_then(|d| d.get("content"));
        if let Some(text) = content.and_then(Value::as_str) {
            out(text);
        }
        if let Some(text) = choice.get("text").and_then(Value::as_str) {
            out(text);
        }
    }
    match value.get("delta") {
        Some(Value::String(text))
            if matches!(
                kind,
                "response.output_text.delta" | "response.refusal.delta"
            ) =>
        {
            out(text)
        }
        Some(Value::Object(delta)) => {
            if let Some(text) = delta.get("text").and_then(Value::as_str) {
                out(text);
            }
        }
        _ => {}
    }
}

/// Tokenizes streamed text with bounded memory.
#[derive(Debug)]
struct TextCounter {
    encoding: Encoding,
    /// Some text (possibly empty) was seen.
    seen: bool,
    /// Tokenizing failed once: the count is unusable.
    failed: bool,
    /// Tokens of the text already tokenized and dropped.
    counted: u64,
    /// Text not tokenized yet.
    pending: String,
}

impl TextCounter {
    fn new(encoding: Encoding) -> TextCounter {
        TextCounter {
            encoding,
            seen: false,
            failed: false,
            counted: 0,
            pending: String::new(),
        }
    }

    fn push(&mut self, text: &str) {
        self.seen = true;
        if self.failed {
            return;
        }
        self.pending.push_str(text);
        if self.pending.len() > TEXT_FLUSH_BYTES {
            self.flush_prefix();
        }
    }

    /// Tokenizes the pending text up to its last whitespace character (which
    /// starts the kept rest, as BPE pre-tokenizers attach a space to the word
    /// after it), or all of it when there is no whitespace past the start.
    fn flush_prefix(&mut self) {
        let cut = match self
            .pending
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_whitespace())
        {
            Some((at, _)) if at > 0 => at,
            _ => self.pending.len(),
        };
        let head = self.pending.get(..cut).unwrap_or_default();
        self.add(count(self.encoding, head));
        if self.pending.is_char_boundary(cut) {
            self.pending.drain(..cut);
        } else {
            self.pending.clear();
        }
        if self.pending.capacity() > SHRINK_ABOVE {
            self.pending.shrink_to(TEXT_FLUSH_BYTES.saturating_mul(2));
        }
    }

    fn add(&mut self, tokens: Option<u64>) {
        match tokens {
            Some(n) => self.counted = self.counted.saturating_add(n),
            None => {
                self.failed = true;
                self.pending = String::new();
            }
        }
    }

    /// Drops the text for good (usage was reported).
    fn abandon(&mut self) {
        if self.pending.capacity() > 0 {
            self.pending = String::new();
        }
    }

    /// Tokens of all the text, or None if there was none or tokenizing failed.
    fn finish(mut self) -> Option<u64> {
        if !self.seen {
            return None;
        }
        let rest = std::mem::take(&mut self.pending);
        self.add(count(self.encoding, &rest));
        (!self.failed).then_some(self.counted)
    }
}

/// An incremental Server-Sent Events parser (the WHATWG "event stream
/// interpretation", minus `id` and `retry`, which usage does not need).
///
/// Holds only the unfinished line and the fields of the unfinished event,
/// together at most `max_event_bytes`; an event that would need more is
/// skipped up to its closing blank line. An over-long line of a field that is
/// not read (comment, `id`, `retry`, unknown) is dropped alone.
#[derive(Debug)]
pub(crate) struct SseParser {
    max_event_bytes: usize,
    /// The unfinished line, without its terminator.
    line: Vec<u8>,
    /// The unfinished line has at least one byte (kept or dropped).
    line_started: bool,
    /// The rest of the unfinished line is dropped.
    discarding_line: bool,
    /// The last byte seen was a `\r`: a `\n` right after it ends no line.
    after_cr: bool,
    /// No line has ended yet (a leading BOM is dropped from the first one).
    at_start: bool,
    /// `data` values of the unfinished event, joined with `\n`.
    data: Vec<u8>,
    /// The unfinished event has a `data` field (possibly empty).
    has_data: bool,
    /// `event` name of the unfinished event.
    event_name: Vec<u8>,
    /// The unfinished event outgrew the limit and is skipped.
    skipping_event: bool,
    oversized_events: u64,
}

impl SseParser {
    pub(crate) fn new(max_event_bytes: usize) -> SseParser {
        SseParser {
            max_event_bytes,
            line: Vec::new(),
            line_started: false,
            discarding_line: false,
            after_cr: false,
            at_start: true,
            data: Vec::new(),
            has_data: false,
            event_name: Vec::new(),
            skipping_event: false,
            oversized_events: 0,
        }
    }

    pub(crate) fn retained_bytes(&self) -> usize {
        self.line
            .capacity()
            .saturating_add(self.data.capacity())
            .saturating_add(self.event_name.capacity())
    }

    /// Feeds bytes; `on_event(name, data)` is called for each complete event.
    pub(crate) fn feed<F: FnMut(&[u8], &[u8])>(&mut self, chunk: &[u8], on_event: &mut F) {
        // Lines end with "\r\n", "\n" or "\r".
        for piece in chunk.split_inclusive(|&b| b == b'\n' || b == b'\r') {
            let piece = if std::mem::take(&mut self.after_cr) {
                // The "\n" of a "\r\n" split by the previous piece or chunk.
                piece.strip_prefix(b"\n").unwrap_or(piece)
            } else {
                piece
            };
            match piece.split_last() {
                None => {}
                Some((&end, line)) if end == b'\n' || end == b'\r' => {
                    self.push_line_bytes(line);
                    self.end_line(on_event);
                    self.after_cr = end == b'\r';
                }
                Some(_) => self.push_line_bytes(piece),
            }
        }
    }

    fn push_line_bytes(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.line_started = true;
        if self.discarding_line {
            return;
        }
        if self.skipping_event {
            self.discarding_line = true;
            return;
        }
        let held = self
            .line
            .len()
            .saturating_add(bytes.len())
            .saturating_add(self.data.len())
            .saturating_add(self.event_name.len());
        if held > self.max_event_bytes {
            if self.line_is_read(bytes) {
                self.skip_event();
            }
            self.line.clear();
            release_if_large(&mut self.line);
            self.discarding_line = true;
            return;
        }
        self.line.extend_from_slice(bytes);
    }

    /// Whether the unfinished line (kept part + `more`) is, or may still
    /// become, a `data` or `event` field.
    fn line_is_read(&self, more: &[u8]) -> bool {
        let head: Vec<u8> = self
            .line
            .iter()
            .chain(more)
            .copied()
            .take(BOM.len().saturating_add(6))
            .collect();
        let head = if self.at_start {
            head.strip_prefix(BOM).unwrap_or(&head)
        } else {
            &head
        };
        let may_be = |name: &[u8]| {
            if head.len() <= name.len() {
                name.starts_with(head)
            } else {
                head.starts_with(name) && head.get(name.len()) == Some(&b':')
            }
        };
        may_be(b"data") || may_be(b"event")
    }

    fn skip_event(&mut self) {
        self.oversized_events = self.oversized_events.saturating_add(1);
        self.skipping_event = true;
        self.reset_event();
    }

    fn end_line<F: FnMut(&[u8], &[u8])>(&mut self, on_event: &mut F) {
        if !self.line_started {
            // A blank line ends the event.
            if self.skipping_event {
                self.skipping_event = false;
            } else if self.has_data {
                on_event(&self.event_name, &self.data);
            }
            self.reset_event();
        } else if !self.discarding_line {
            let line = std::mem::take(&mut self.line);
            self.field(&line);
            self.line = line;
        }
        self.line.clear();
        self.line_started = false;
        self.discarding_line = false;
        self.at_start = false;
    }

    /// One complete non-blank line: a field, or a comment.
    fn field(&mut self, line: &[u8]) {
        let line = if self.at_start {
            line.strip_prefix(BOM).unwrap_or(line)
        } else {
            line
        };
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(0) => return, // a comment
            Some(colon) => {
                let value = line.get(colon.saturating_add(1)..).unwrap_or_default();
                (
                    line.get(..colon).unwrap_or_default(),
                    value.strip_prefix(b" ").unwrap_or(value),
                )
            }
            None => (line, &[][..]),
        };
        match name {
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => {
                self.event_name.clear();
                self.event_name.extend_from_slice(value);
            }
            _ => {} // id, retry and unknown fields
        }
    }

    fn reset_event(&mut self) {
        self.data.clear();
        self.has_data = false;
        self.event_name.clear();
        release_if_large(&mut self.data);
        release_if_large(&mut self.event_name);
    }
}

/// Frees an emptied buffer that grew large for one big event or line.
fn release_if_large(buffer: &mut Vec<u8>) {
    if buffer.capacity() > SHRINK_ABOVE {
        *buffer = Vec::new();
    }
}

#[cfg(test)]
mod tests;
