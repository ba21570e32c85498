//! Table-driven tests of the translators, one file per direction, with the
//! providers' published examples where they exist.

mod chat_messages;
mod messages_chat;
mod responses_chat;
mod streams;

use serde_json::Value;

use super::*;

pub fn target() -> Target<'static> {
    Target {
        provider_model: "upstream-model",
        default_max_tokens: 1024,
    }
}

/// The translated request as JSON, and the dropped fields.
pub fn request(client: ApiShape, upstream: Api, body: &Value) -> (Value, Vec<String>) {
    let t = translator(client, upstream).unwrap();
    let out = t.request(body.to_string().as_bytes(), &target()).unwrap();
    (serde_json::from_slice(&out.body).unwrap(), out.dropped)
}

pub fn refused(client: ApiShape, upstream: Api, body: &Value) -> String {
    let t = translator(client, upstream).unwrap();
    t.request(body.to_string().as_bytes(), &target())
        .unwrap_err()
        .message
}

pub fn response(client: ApiShape, upstream: Api, status: u32, body: &Value) -> Value {
    let t = translator(client, upstream).unwrap();
    let out = t.response(
        status,
        body.to_string().as_bytes(),
        &ResponseContext::default(),
    );
    serde_json::from_slice(&out).unwrap()
}

/// A whole upstream stream translated in one chunk, then chunked every
/// `step` bytes: both must give the same client bytes.
pub fn stream(client: ApiShape, upstream: Api, include_usage: bool, input: &str) -> String {
    let t = translator(client, upstream).unwrap();
    let ctx = ResponseContext { include_usage };
    let mut whole = t.stream(&ctx);
    let mut expected = whole.feed(input.as_bytes());
    expected.extend(whole.finish());
    for step in [1, 2, 7, 64] {
        let mut s = t.stream(&ctx);
        let mut got = Vec::new();
        for chunk in input.as_bytes().chunks(step) {
            got.extend(s.feed(chunk));
        }
        got.extend(s.finish());
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&expected),
            "step {step}"
        );
    }
    String::from_utf8(expected).unwrap()
}

/// The `data` JSON of each event of an event stream (`[DONE]` as a string), with its name.
pub fn events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let mut name = String::new();
            let mut data = String::new();
            for line in e.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_string();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = d.to_string();
                }
            }
            let v = serde_json::from_str(&data).unwrap_or(Value::String(data));
            (name, v)
        })
        .collect()
}

#[test]
fn translators_exist_only_across_apis() {
    assert!(translator(ApiShape::ChatCompletions, Api::AnthropicMessages).is_some());
    assert!(translator(ApiShape::Messages, Api::OpenaiChat).is_some());
    assert!(translator(ApiShape::Responses, Api::OpenaiChat).is_some());
    assert!(translator(ApiShape::Responses, Api::AnthropicMessages).is_some());
    assert!(translator(ApiShape::ChatCompletions, Api::OpenaiChat).is_none());
    assert!(translator(ApiShape::Completions, Api::AnthropicMessages).is_none());
    assert!(translator(ApiShape::Messages, Api::OpenaiResponses).is_none());
}

#[test]
fn a_model_is_served_natively_first_then_through_a_translator() {
    let chat = ApiSet::of(Api::OpenaiChat);
    let messages = ApiSet::of(Api::AnthropicMessages);
    let cases = [
        (ApiShape::ChatCompletions, chat, true, Ok(None)),
        (
            ApiShape::ChatCompletions,
            messages,
            true,
            Ok(Some(Api::AnthropicMessages)),
        ),
        (ApiShape::ChatCompletions, messages, false, Err(())),
        (ApiShape::Messages, chat, true, Ok(Some(Api::OpenaiChat))),
        (
            ApiShape::Messages,
            chat.with(Api::AnthropicMessages),
            true,
            Ok(None),
        ),
        (
            ApiShape::Responses,
            messages,
            true,
            Ok(Some(Api::AnthropicMessages)),
        ),
        (
            ApiShape::Responses,
            chat.with(Api::AnthropicMessages),
            true,
            Ok(Some(Api::OpenaiChat)),
        ),
        (ApiShape::Completions, messages, true, Err(())),
        (
            ApiShape::Messages,
            ApiSet::of(Api::OpenaiResponses),
            true,
            Err(()),
        ),
    ];
    for (shape, apis, translate, expected) in cases {
        assert_eq!(
            upstream_api(shape, apis, translate),
            expected,
            "{shape:?} {apis}"
        );
    }
    assert_eq!(reachable_apis(chat), ApiSet::ALL);
    assert_eq!(reachable_apis(messages), ApiSet::ALL);
    assert_eq!(
        reachable_apis(ApiSet::of(Api::OpenaiResponses)),
        ApiSet::of(Api::OpenaiResponses)
    );
}

#[test]
fn paths_keep_their_prefix() {
    let cases = [
        (
            "/v1/chat/completions",
            ApiShape::ChatCompletions,
            Api::AnthropicMessages,
            "/v1/messages",
        ),
        (
            "/openai/v1/chat/completions?x=1",
            ApiShape::ChatCompletions,
            Api::AnthropicMessages,
            "/openai/v1/messages",
        ),
        (
            "/v1/messages?beta=true",
            ApiShape::Messages,
            Api::OpenaiChat,
            "/v1/chat/completions",
        ),
        (
            "/v1/responses",
            ApiShape::Responses,
            Api::OpenaiChat,
            "/v1/chat/completions",
        ),
    ];
    for (path, shape, api, expected) in cases {
        assert_eq!(upstream_path(path, shape, api), expected);
    }
}
