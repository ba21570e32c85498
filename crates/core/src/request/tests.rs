use super::*;
use crate::tokens::Encoding::{Cl100kBase, O200kBase};
use base64::Engine as _;

const CHAT: &str = "/v1/chat/completions";

fn chat(body: &str) -> RequestFacts {
    parse(CHAT, body.as_bytes()).unwrap()
}

fn error(path: &str, body: &[u8]) -> String {
    parse(path, body).unwrap_err().message
}

/// The example conversation of OpenAI's cookbook "How to count tokens with
/// tiktoken"; the API billed 129 prompt tokens on gpt-3.5-turbo / gpt-4
/// (cl100k_base) and 124 on gpt-4o (o200k_base).
const COOKBOOK_MESSAGES: &str = r#"{"model":"gpt-4o","messages":[
 {"role":"system","content":"You are a helpful, pattern-following assistant that translates corporate jargon into plain English."},
 {"role":"system","name":"example_user","content":"New synergies will help drive top-line growth."},
 {"role":"system","name":"example_assistant","content":"Things working well together will increase revenue."},
 {"role":"system","name":"example_user","content":"Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage."},
 {"role":"system","name":"example_assistant","content":"Let's talk later when we're less busy about how to do better."},
 {"role":"user","content":"This late pivot means we don't have time to boil the ocean for the client deliverable."}
]}"#;

#[test]
fn chat_prompt_tokens_match_the_cookbook() {
    let facts = chat(COOKBOOK_MESSAGES);
    assert_eq!(facts.prompt_tokens(Cl100kBase).unwrap(), 129);
    assert_eq!(facts.prompt_tokens(O200kBase).unwrap(), 124);
    assert_eq!(facts.messages, 6);
}

/// The cookbook's tool example: 105 tokens on gpt-4 / gpt-3.5-turbo, 101 on gpt-4o.
#[test]
fn tool_definitions_match_the_cookbook() {
    let body = r#"{"model":"gpt-4o","messages":[
      {"role":"system","content":"You are a helpful assistant that can answer to questions about the weather."},
      {"role":"user","content":"What's the weather like in San Francisco?"}],
     "tools":[{"type":"function","function":{"name":"get_current_weather",
       "description":"Get the current weather in a given location",
       "parameters":{"type":"object","properties":{
         "location":{"type":"string","description":"The city and state, e.g. San Francisco, CA"},
         "unit":{"type":"string","description":"The unit of temperature to return","enum":["celsius","fahrenheit"]}},
       "required":["location"]}}}]}"#;
    let facts = chat(body);
    assert!(facts.tools);
    assert_eq!(facts.prompt_tokens(Cl100kBase).unwrap(), 105);
    assert_eq!(facts.prompt_tokens(O200kBase).unwrap(), 101);
}

#[test]
fn reads_chat_signals() {
    let facts = chat(
        r#"{"model":"auto","stream":true,"stream_options":{"include_usage":true},
            "max_tokens":50,"max_completion_tokens":70,
            "response_format":{"type":"json_schema","json_schema":{}},
            "messages":[{"role":"user","content":[
                {"type":"text","text":"describe"},
                {"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}"#,
    );
    assert_eq!(facts.shape, Some(ApiShape::ChatCompletions));
    assert_eq!(facts.requested_model.as_deref(), Some("auto"));
    assert!(facts.stream && facts.stream_include_usage && facts.structured_output);
    assert_eq!(facts.max_output_tokens, Some(70));
    assert_eq!(facts.images, 1);
    assert!(!facts.tools);
    assert_eq!(facts.content.len(), 1);
    assert_eq!(facts.content[0].role, Role::User);
}

#[test]
fn text_mode_response_format_is_not_structured() {
    let facts =
        chat(r#"{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"text"}}"#);
    assert!(!facts.structured_output);
    assert_eq!(facts.requested_model, None);
    assert!(facts.model_spans.is_empty());
}

#[test]
fn legacy_completions_prompts() {
    let facts = parse(
        "/v1/completions",
        br#"{"model":"m","prompt":"hello world"}"#,
    )
    .unwrap();
    assert_eq!(facts.prompt_tokens(O200kBase).unwrap(), 2);
    assert_eq!(facts.messages, 0);
    let facts = parse("/v1/completions", br#"{"prompt":[[1,2,3],[4]]}"#).unwrap();
    assert_eq!(facts.prompt_tokens(O200kBase).unwrap(), 4);
    let facts = parse("/v1/completions", br#"{"prompt":["hello world","hello"]}"#).unwrap();
    assert_eq!(facts.prompt_tokens(Cl100kBase).unwrap(), 3);
}

#[test]
fn shapes_from_paths() {
    assert_eq!(
        ApiShape::from_path("/v1/chat/completions"),
        Some(ApiShape::ChatCompletions)
    );
    assert_eq!(
        ApiShape::from_path("/openai/v1/chat/completions?x=1"),
        Some(ApiShape::ChatCompletions)
    );
    assert_eq!(
        ApiShape::from_path("/v1/completions"),
        Some(ApiShape::Completions)
    );
    assert_eq!(ApiShape::from_path("/v1/models"), None);
    assert_eq!(ApiShape::from_path("/v1/embeddings"), None);
    assert_eq!(
        ApiShape::from_path("/v1/responses"),
        Some(ApiShape::Responses)
    );
    assert_eq!(
        ApiShape::from_path("/openai/v1/responses/"),
        Some(ApiShape::Responses)
    );
    assert_eq!(
        ApiShape::from_path("/v1/messages?beta=true"),
        Some(ApiShape::Messages)
    );
    assert_eq!(
        ApiShape::from_path("/anthropic/v1/messages"),
        Some(ApiShape::Messages)
    );
    // Other APIs' resources with these names are left alone.
    assert_eq!(ApiShape::from_path("/v1/threads/t1/messages"), None);
    assert_eq!(ApiShape::from_path("/v1/messages/count_tokens"), None);
    assert_eq!(ApiShape::from_path("/v1/responses/resp_1/cancel"), None);
}

#[test]
fn invalid_bodies_are_named() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "not a JSON object"),
        (b"not json", "not a JSON object"),
        (b"{\"messages\":[", "not a JSON object"),
        (b"[1,2]", "not a JSON object"),
        (b"\"text\"", "not a JSON object"),
        (b"{\"model\":\"x\"}", "`messages` is missing"),
        (b"{\"messages\":\"hi\"}", "`messages` has the wrong type"),
        (b"{\"messages\":[]}", "`messages` is empty"),
        (b"{\"messages\":[1]}", "`messages[0]` is not an object"),
        (
            b"{\"messages\":[{\"content\":\"x\"}]}",
            "`messages[0].role`",
        ),
        (
            b"{\"messages\":[{\"role\":\"user\",\"content\":5}]}",
            "`messages[0].content`",
        ),
        (
            b"{\"model\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
            "`model` has the wrong type",
        ),
        (
            b"{\"stream\":\"yes\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
            "`stream` has the wrong type",
        ),
        (
            b"{\"max_tokens\":-1,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
            "`max_tokens` has the wrong type",
        ),
        (
            b"{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\"}]}",
            "not valid UTF-8",
        ),
    ];
    for (body, expected) in cases {
        let message = error(CHAT, body);
        assert!(
            message.contains(expected),
            "{:?}: {message:?} lacks {expected:?}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn nesting_beyond_the_parser_limit_is_invalid() {
    // Inside a field the router reads, serde_json's recursion limit (128) applies.
    let deep = format!(
        "{{\"messages\":[{{\"role\":\"user\",\"content\":\"x\",\"x\":{}{}}}]}}",
        "[".repeat(500),
        "]".repeat(500)
    );
    assert!(error(CHAT, deep.as_bytes()).contains("`messages` has the wrong type"));
}

#[test]
fn deep_nesting_in_fields_the_router_ignores_is_skipped_without_recursion() {
    // Skipping a value is iterative in serde_json: no stack overflow, the
    // request stays routable and the field passes through untouched.
    let deep = format!(
        "{{\"messages\":[{{\"role\":\"user\",\"content\":\"x\"}}],\"x\":{}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert_eq!(chat(&deep).messages, 1);
}

#[test]
fn unknown_roles_still_count() {
    let facts = chat(r#"{"messages":[{"role":"critic","content":"hello world"}]}"#);
    assert_eq!(facts.content[0].role, Role::Other);
    // 3 reply priming + 3 per message + "critic" + "hello world"
    let role = crate::tokens::count(O200kBase, "critic").unwrap() as u64;
    assert_eq!(facts.prompt_tokens(O200kBase).unwrap(), 3 + 3 + role + 2);
}

mod images;
mod messages;
mod properties;
mod responses;

/// Base64 of the first bytes of a PNG of the given size (all the router reads).
fn png_base64(width: u32, height: u32) -> String {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    bytes.extend_from_slice(&width.to_be_bytes());
    bytes.extend_from_slice(&height.to_be_bytes());
    bytes.extend_from_slice(b"\x08\x02\0\0\0\0\0\0\0");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn png_data_url(width: u32, height: u32) -> String {
    format!("data:image/png;base64,{}", png_base64(width, height))
}

/// Facts of a body sent to `path`.
fn facts_at(path: &str, body: &serde_json::Value) -> RequestFacts {
    parse(path, body.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn count(encoding: crate::tokens::Encoding, text: &str) -> u64 {
    crate::tokens::count(encoding, text).unwrap() as u64
}
