//! Translation between API families, so that a model can serve requests of
//! an API its endpoint does not speak.
//!
//! One file per direction, named `<client>_<upstream>` (the request's API,
//! then the API of the model's endpoint), each behind [`Translator`]: the
//! request body, the response body (JSON, success or error) and the response
//! stream (Server-Sent Events, event by event). Directions:
//!
//! - `chat_messages`: OpenAI Chat Completions clients, Anthropic Messages models;
//! - `messages_chat`: Anthropic Messages clients, OpenAI Chat models;
//! - `responses_chat`: OpenAI Responses clients (the stateless subset), OpenAI Chat models;
//! - Responses clients on Messages models go through Chat (`Chained`).
//!
//! Everything here is a function of bytes: no proxy-wasm types. Streams are
//! translated as they pass, holding only the unfinished event (see
//! [`StreamTranslator`]).

mod chat_messages;
mod json;
mod messages_chat;
mod responses_chat;
mod stream;

#[cfg(test)]
mod tests;

use std::fmt;

use crate::request::{Api, ApiSet, ApiShape};

pub use stream::{EventSink, StreamTranslator, MAX_TRANSLATED_EVENT_BYTES};

/// What the translation of a request needs to know about the model.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// Written into the translated body's `model`.
    pub provider_model: &'a str,
    /// Output tokens to ask for when the request sets none and the upstream
    /// API requires a value (Anthropic's `max_tokens`).
    pub default_max_tokens: u64,
}

/// A translated request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translated {
    pub body: Vec<u8>,
    /// Request fields with no counterpart upstream, dropped (JSON names,
    /// `tools[2].type` style for nested ones), in the order met.
    pub dropped: Vec<String>,
}

/// What the response translation needs to know about the request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResponseContext {
    /// The client asked for a usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
}

/// A request that cannot be translated: answered with a 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslateError {
    pub message: String,
}

impl TranslateError {
    pub fn new(message: impl Into<String>) -> TranslateError {
        TranslateError {
            message: message.into(),
        }
    }
}

impl fmt::Display for TranslateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// One direction of translation.
pub trait Translator: Sync {
    /// The request's (client's) shape.
    fn client(&self) -> ApiShape;
    /// The API of the model's endpoint.
    fn upstream(&self) -> Api;
    /// The client's request body → the upstream request body.
    fn request(&self, body: &[u8], target: &Target<'_>) -> Result<Translated, TranslateError>;
    /// The upstream's JSON response body (any status) → the client's. A body
    /// that cannot be read is returned as an error body of the client's API.
    fn response(&self, status: u32, body: &[u8], ctx: &ResponseContext) -> Vec<u8>;
    /// The event translator of an upstream event stream.
    fn events(&self, ctx: &ResponseContext) -> Box<dyn EventSink>;

    /// A stream translator: framing plus [`Translator::events`].
    fn stream(&self, ctx: &ResponseContext) -> StreamTranslator {
        StreamTranslator::new(self.events(ctx), MAX_TRANSLATED_EVENT_BYTES)
    }
}

static CHAT_MESSAGES: chat_messages::ChatToMessages = chat_messages::ChatToMessages;
static MESSAGES_CHAT: messages_chat::MessagesToChat = messages_chat::MessagesToChat;
static RESPONSES_CHAT: responses_chat::ResponsesToChat = responses_chat::ResponsesToChat;
static RESPONSES_MESSAGES: Chained = Chained {
    first: &RESPONSES_CHAT,
    second: &CHAT_MESSAGES,
};

/// The translator from requests of `client` to an endpoint speaking
/// `upstream`, if there is one (never for the same API, nor for legacy
/// Completions, whose prompt has no message structure).
pub fn translator(client: ApiShape, upstream: Api) -> Option<&'static dyn Translator> {
    match (client, upstream) {
        (ApiShape::ChatCompletions, Api::AnthropicMessages) => Some(&CHAT_MESSAGES),
        (ApiShape::Messages, Api::OpenaiChat) => Some(&MESSAGES_CHAT),
        (ApiShape::Responses, Api::OpenaiChat) => Some(&RESPONSES_CHAT),
        (ApiShape::Responses, Api::AnthropicMessages) => Some(&RESPONSES_MESSAGES),
        _ => None,
    }
}

/// How a model whose endpoint speaks `apis` serves a request of `client`:
/// natively when it can (None), else through the first API of `apis` (in
/// `Api::ALL` order) a translator reaches. `Err(())` when it cannot.
#[allow(clippy::result_unit_err)]
pub fn upstream_api(client: ApiShape, apis: ApiSet, translate: bool) -> Result<Option<Api>, ()> {
    if apis.contains(client.api()) {
        return Ok(None);
    }
    if !translate {
        return Err(());
    }
    apis.iter()
        .find(|api| translator(client, *api).is_some())
        .map(Some)
        .ok_or(())
}

/// The APIs whose requests (of some shape) a model speaking `apis` can be
/// sent, with translation: for the compiler's coverage checks.
pub fn reachable_apis(apis: ApiSet) -> ApiSet {
    let shapes = [
        ApiShape::ChatCompletions,
        ApiShape::Responses,
        ApiShape::Messages,
    ];
    shapes
        .into_iter()
        .filter(|s| upstream_api(*s, apis, true).is_ok())
        .map(ApiShape::api)
        .fold(apis, ApiSet::with)
}

/// `path` (the client's, for `client`) with its API suffix replaced by
/// `upstream`'s, keeping any prefix and the query: `/openai/v1/chat/completions`
/// → `/openai/v1/messages`.
pub fn upstream_path(path: &str, client: ApiShape, upstream: Api) -> String {
    // Query parameters are API-specific (Anthropic's `beta=true`): not carried over.
    let bare = path
        .split(['?', '#'])
        .next()
        .unwrap_or(path)
        .trim_end_matches('/');
    let suffix = match client {
        ApiShape::ChatCompletions => "/v1/chat/completions",
        ApiShape::Completions => "/v1/completions",
        ApiShape::Responses => "/v1/responses",
        ApiShape::Messages => "/v1/messages",
    };
    let prefix = bare
        .strip_suffix(suffix)
        .or_else(|| bare.strip_suffix(suffix.trim_start_matches("/v1")))
        .unwrap_or_default();
    format!("{prefix}{}", upstream.path())
}

/// Two translations in a row: the client's API → an intermediate one → the
/// upstream's (requests through `first` then `second`, responses back
/// through `second` then `first`).
struct Chained {
    first: &'static dyn Translator,
    second: &'static dyn Translator,
}

impl Translator for Chained {
    fn client(&self) -> ApiShape {
        self.first.client()
    }

    fn upstream(&self) -> Api {
        self.second.upstream()
    }

    fn request(&self, body: &[u8], target: &Target<'_>) -> Result<Translated, TranslateError> {
        let mid = self.first.request(body, target)?;
        let mut last = self.second.request(&mid.body, target)?;
        let mut dropped = mid.dropped;
        dropped.append(&mut last.dropped);
        last.dropped = dropped;
        Ok(last)
    }

    fn response(&self, status: u32, body: &[u8], ctx: &ResponseContext) -> Vec<u8> {
        // The intermediate request always asks for usage.
        let mid_ctx = ResponseContext {
            include_usage: true,
        };
        let mid = self.second.response(status, body, &mid_ctx);
        self.first.response(status, &mid, ctx)
    }

    fn events(&self, ctx: &ResponseContext) -> Box<dyn EventSink> {
        let mid_ctx = ResponseContext {
            include_usage: true,
        };
        Box::new(stream::ChainedSink {
            inner: self.second.events(&mid_ctx),
            outer: self.first.stream(ctx),
            scratch: Vec::new(),
        })
    }
}
