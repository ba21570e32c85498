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
//!
//! One file per concern (in `usage/`): [`json`] reads whole JSON bodies, [`sse`] splits an
//! event stream into events, [`tally`] collects what the events say,
//! [`objects`] recognises the providers' usage objects, [`text`] tokenizes
//! completion text with bounded memory.

use serde_json::Value;

use crate::cost::Usage;
use crate::tokens::Encoding;

mod json;
mod objects;
mod sse;
mod tally;
mod text;

use json::JsonBody;
pub(crate) use sse::SseParser;
use tally::Tally;

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
            ResponseFormat::Json => Body::Json(JsonBody::new(json_limit, encoding)),
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
            Body::Json(json) => json.retained_bytes(),
            Body::EventStream(stream) => stream
                .parser
                .retained_bytes()
                .saturating_add(stream.tally.retained_bytes()),
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
            Body::Json(json) => json.over_limit(),
            Body::EventStream(_) => false,
        }
    }
}

#[derive(Debug)]
struct EventStream {
    parser: SseParser,
    tally: Tally,
}

/// The elements of an optional JSON array (none when it is not an array).
fn array(value: Option<&Value>) -> &[Value] {
    value.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

#[cfg(test)]
mod tests;
