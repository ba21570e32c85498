//! Anthropic Messages clients, OpenAI Chat models.

use serde_json::{json, Value};

use super::*;

const M: ApiShape = ApiShape::Messages;
const O: Api = Api::OpenaiChat;

#[test]
fn anthropic_published_example_request() {
    // docs.anthropic.com/en/api/messages, example request.
    let (out, dropped) = request(
        M,
        O,
        &json!({
            "model": "claude-sonnet-4-20250514",
            "max_tokens": 1024,
            "system": "You are a helpful assistant.",
            "messages": [{"role": "user", "content": "Hello, world"}]
        }),
    );
    assert_eq!(
        out,
        json!({
            "model": "upstream-model",
            "messages": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "Hello, world"}],
            "max_completion_tokens": 1024,
        })
    );
    assert!(dropped.is_empty());
}

#[test]
fn request_mapping_rules() {
    let cases: Vec<(&str, Value, &str, Value)> = vec![
        (
            "stop_sequences",
            json!({"stop_sequences": ["\n\nHuman:"]}),
            "/stop",
            json!(["\n\nHuman:"]),
        ),
        (
            "temperature",
            json!({"temperature": 0.3}),
            "/temperature",
            json!(0.3),
        ),
        ("top_p", json!({"top_p": 0.5}), "/top_p", json!(0.5)),
        (
            "user",
            json!({"metadata": {"user_id": "u-9"}}),
            "/user",
            json!("u-9"),
        ),
        (
            "stream asks for usage",
            json!({"stream": true}),
            "/stream_options",
            json!({"include_usage": true}),
        ),
        (
            "system blocks",
            json!({"system": [{"type": "text", "text": "Be brief."}]}),
            "/messages/0",
            json!({"role": "system", "content": "Be brief."}),
        ),
        (
            "structured output",
            json!({"output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}}}),
            "/response_format",
            json!({"type": "json_schema", "json_schema": {"name": "output", "schema": {"type": "object"}, "strict": true}}),
        ),
        (
            "tool_choice any",
            json!({"tools": [weather()], "tool_choice": {"type": "any"}}),
            "/tool_choice",
            json!("required"),
        ),
        (
            "tool_choice tool",
            json!({"tools": [weather()], "tool_choice": {"type": "tool", "name": "get_weather"}}),
            "/tool_choice",
            json!({"type": "function", "function": {"name": "get_weather"}}),
        ),
        (
            "disable_parallel_tool_use",
            json!({"tools": [weather()], "tool_choice": {"type": "auto", "disable_parallel_tool_use": true}}),
            "/parallel_tool_calls",
            json!(false),
        ),
    ];
    for (name, extra, pointer, expected) in cases {
        let mut body = json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (out, _) = request(M, O, &body);
        assert_eq!(out.pointer(pointer), Some(&expected), "{name}: {out}");
    }
}

fn weather() -> Value {
    // The tool-use guide's example tool.
    json!({"name": "get_weather", "description": "Get the current weather in a given location",
        "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}})
}

#[test]
fn tool_use_round_trip_and_images() {
    let (out, dropped) = request(
        M,
        O,
        &json!({"model": "m", "max_tokens": 10, "tools": [weather(), {"type": "web_search_20250305", "name": "web_search"}],
        "messages": [
            {"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
                {"type": "text", "text": "Weather where this is?"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"location": "SF"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": [{"type": "text", "text": "15C"}]},
                {"type": "text", "text": "and tomorrow?"}]}
        ]}),
    );
    assert_eq!(
        out["tools"],
        json!([{"type": "function", "function": {"name": "get_weather", "description": "Get the current weather in a given location",
        "parameters": weather()["input_schema"]}}])
    );
    assert_eq!(dropped, ["tools[].type=web_search_20250305"]);
    assert_eq!(
        out["messages"][0]["content"],
        json!([
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}},
        {"type": "text", "text": "Weather where this is?"}])
    );
    assert_eq!(
        out["messages"][1],
        json!({"role": "assistant", "content": "Checking.", "tool_calls": [
        {"id": "toolu_01", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"SF\"}"}}]})
    );
    assert_eq!(
        out["messages"][2],
        json!({"role": "tool", "tool_call_id": "toolu_01", "content": "15C"})
    );
    assert_eq!(
        out["messages"][3],
        json!({"role": "user", "content": "and tomorrow?"})
    );
}

#[test]
fn unknown_fields_are_dropped_and_named() {
    let (_, dropped) = request(
        M,
        O,
        &json!({"model": "m", "max_tokens": 5, "messages": [], "top_k": 5, "thinking": {"type": "enabled"}}),
    );
    assert_eq!(dropped, ["thinking", "top_k"]);
}

#[test]
fn openai_published_completion_becomes_a_message() {
    // platform.openai.com/docs/api-reference/chat/object.
    let out = response(
        M,
        O,
        200,
        &json!({
            "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", "object": "chat.completion", "created": 1741570283, "model": "gpt-4o-2024-08-06",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "The image shows a wooden boardwalk.", "refusal": null, "annotations": []}, "logprobs": null, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1117, "completion_tokens": 46, "total_tokens": 1163, "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0}}
        }),
    );
    assert_eq!(
        out,
        json!({"id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", "type": "message", "role": "assistant", "model": "gpt-4o-2024-08-06",
        "content": [{"type": "text", "text": "The image shows a wooden boardwalk."}], "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 1117, "output_tokens": 46, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}})
    );
}

#[test]
fn tool_calls_and_finish_reasons() {
    let out = response(
        M,
        O,
        200,
        &json!({"id": "c", "choices": [{"message": {"role": "assistant", "content": null,
        "tool_calls": [{"id": "call_abc", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"Boston\"}"}}]}, "finish_reason": "tool_calls"}]}),
    );
    assert_eq!(
        out["content"],
        json!([{"type": "tool_use", "id": "call_abc", "name": "get_weather", "input": {"location": "Boston"}}])
    );
    assert_eq!(out["stop_reason"], "tool_use");
    for (finish, stop) in [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("content_filter", "refusal"),
    ] {
        let out = response(
            M,
            O,
            200,
            &json!({"choices": [{"message": {"content": "x"}, "finish_reason": finish}]}),
        );
        assert_eq!(out["stop_reason"], stop);
    }
}

#[test]
fn errors_become_anthropic_errors() {
    for (status, kind) in [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (529, "overloaded_error"),
    ] {
        let out = response(
            M,
            O,
            status,
            &json!({"error": {"message": "nope", "type": "x", "code": null}}),
        );
        assert_eq!(
            out,
            json!({"type": "error", "error": {"type": kind, "message": "nope"}})
        );
    }
}
