//! OpenAI Responses clients, OpenAI Chat models.

use serde_json::{json, Value};

use super::*;

const R: ApiShape = ApiShape::Responses;
const O: Api = Api::OpenaiChat;

#[test]
fn published_text_input_example() {
    // platform.openai.com/docs/api-reference/responses/create, "Text input".
    let (out, dropped) = request(
        R,
        O,
        &json!({"model": "gpt-4.1", "input": "Tell me a three sentence bedtime story about a unicorn."}),
    );
    assert_eq!(
        out,
        json!({"model": "upstream-model", "messages": [{"role": "user", "content": "Tell me a three sentence bedtime story about a unicorn."}]})
    );
    assert!(dropped.is_empty());
}

#[test]
fn request_mapping_rules() {
    let cases: Vec<(&str, Value, &str, Value)> = vec![
        (
            "instructions",
            json!({"instructions": "Talk like a pirate."}),
            "/messages/0",
            json!({"role": "system", "content": "Talk like a pirate."}),
        ),
        (
            "max_output_tokens",
            json!({"max_output_tokens": 64}),
            "/max_completion_tokens",
            json!(64),
        ),
        (
            "stream",
            json!({"stream": true}),
            "/stream_options",
            json!({"include_usage": true}),
        ),
        (
            "json_schema",
            json!({"text": {"format": {"type": "json_schema", "name": "ev", "schema": {"type": "object"}, "strict": true}}}),
            "/response_format",
            json!({"type": "json_schema", "json_schema": {"name": "ev", "schema": {"type": "object"}, "strict": true}}),
        ),
        (
            "json_object",
            json!({"text": {"format": {"type": "json_object"}}}),
            "/response_format",
            json!({"type": "json_object"}),
        ),
        (
            "function tool",
            json!({"tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}, "strict": true}]}),
            "/tools",
            json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}, "strict": true}}]),
        ),
        (
            "tool_choice named",
            json!({"tools": [{"type": "function", "name": "f"}], "tool_choice": {"type": "function", "name": "f"}}),
            "/tool_choice",
            json!({"type": "function", "function": {"name": "f"}}),
        ),
        (
            "reasoning effort",
            json!({"reasoning": {"effort": "low"}}),
            "/reasoning_effort",
            json!("low"),
        ),
    ];
    for (name, extra, pointer, expected) in cases {
        let mut body = json!({"model": "m", "input": "hi"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (out, _) = request(R, O, &body);
        assert_eq!(out.pointer(pointer), Some(&expected), "{name}: {out}");
    }
}

#[test]
fn input_items_with_images_and_a_function_call_round_trip() {
    let (out, dropped) = request(
        R,
        O,
        &json!({"model": "m", "tools": [{"type": "web_search_preview"}], "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "what is in this image?"},
                {"type": "input_image", "image_url": "https://example.com/x.jpg", "detail": "low"}]},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "{\"t\":18}"},
            {"type": "reasoning", "summary": []}
        ]}),
    );
    assert_eq!(
        out["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "what is in this image?"}, {"type": "image_url", "image_url": {"url": "https://example.com/x.jpg", "detail": "low"}}]},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "{\"t\":18}"},
        ])
    );
    assert_eq!(
        dropped,
        ["input[].type=reasoning", "tools[].type=web_search_preview"]
    );
}

#[test]
fn stored_state_is_refused() {
    for key in ["previous_response_id", "conversation", "prompt"] {
        let mut body = json!({"model": "m", "input": "hi"});
        body[key] = json!("resp_123");
        assert!(refused(R, O, &body).starts_with(key));
    }
}

#[test]
fn completion_becomes_a_response() {
    let out = response(
        R,
        O,
        200,
        &json!({"id": "chatcmpl-9", "created": 1741570283, "model": "gpt-4o-mini",
        "choices": [{"message": {"role": "assistant", "content": "Once upon a time",
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 36, "completion_tokens": 87, "total_tokens": 123}}),
    );
    assert_eq!(out["object"], "response");
    assert_eq!(out["id"], "resp_9");
    assert_eq!(out["status"], "completed");
    assert_eq!(out["created_at"], 1741570283);
    assert_eq!(
        out["output"][0]["content"][0],
        json!({"type": "output_text", "text": "Once upon a time", "annotations": []})
    );
    assert_eq!(out["output"][1]["type"], "function_call");
    assert_eq!(out["output"][1]["call_id"], "call_1");
    assert_eq!(out["usage"]["total_tokens"], 123);
    let err = response(
        R,
        O,
        429,
        &json!({"error": {"message": "slow", "type": "rate_limit_error", "code": "rate_limit_exceeded"}}),
    );
    assert_eq!(err["error"]["message"], "slow");
}

#[test]
fn responses_to_messages_goes_through_chat() {
    let (out, _) = request(
        R,
        Api::AnthropicMessages,
        &json!({"model": "m", "instructions": "Be brief.", "input": "hi", "max_output_tokens": 20}),
    );
    assert_eq!(
        out,
        json!({"model": "upstream-model", "max_tokens": 20, "system": "Be brief.", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]})
    );
    let back = response(
        R,
        Api::AnthropicMessages,
        200,
        &json!({"id": "msg_1", "model": "claude", "content": [{"type": "text", "text": "Hello"}],
        "stop_reason": "end_turn", "usage": {"input_tokens": 3, "output_tokens": 1}}),
    );
    assert_eq!(back["output"][0]["content"][0]["text"], "Hello");
    assert_eq!(back["usage"]["input_tokens"], 3);
}
