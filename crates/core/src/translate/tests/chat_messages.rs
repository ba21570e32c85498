//! OpenAI Chat clients, Anthropic Messages models.

use serde_json::{json, Value};

use super::*;

const C: ApiShape = ApiShape::ChatCompletions;
const A: Api = Api::AnthropicMessages;

fn req(body: Value) -> Value {
    request(C, A, &body).0
}

#[test]
fn openai_published_chat_example() {
    // platform.openai.com/docs/api-reference/chat/create, "Default".
    let (out, dropped) = request(
        C,
        A,
        &json!({
            "model": "gpt-4o",
            "messages": [
                {"role": "developer", "content": "You are a helpful assistant."},
                {"role": "user", "content": "Hello!"}
            ]
        }),
    );
    assert_eq!(
        out,
        json!({
            "model": "upstream-model",
            "max_tokens": 1024,
            "system": "You are a helpful assistant.",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello!"}]}],
        })
    );
    assert!(dropped.is_empty());
}

#[test]
fn request_mapping_rules() {
    let cases: Vec<(&str, Value, &str, Value)> = vec![
        (
            "max_completion_tokens wins",
            json!({"max_completion_tokens": 50, "max_tokens": 70}),
            "/max_tokens",
            json!(50),
        ),
        (
            "max_tokens",
            json!({"max_tokens": 70}),
            "/max_tokens",
            json!(70),
        ),
        (
            "stop string",
            json!({"stop": "END"}),
            "/stop_sequences",
            json!(["END"]),
        ),
        (
            "stop list",
            json!({"stop": ["a", "b"]}),
            "/stop_sequences",
            json!(["a", "b"]),
        ),
        (
            "temperature clamped",
            json!({"temperature": 1.7}),
            "/temperature",
            json!(1.0),
        ),
        (
            "temperature kept",
            json!({"temperature": 0.25}),
            "/temperature",
            json!(0.25),
        ),
        ("top_p", json!({"top_p": 0.9}), "/top_p", json!(0.9)),
        (
            "user",
            json!({"user": "u-1"}),
            "/metadata",
            json!({"user_id": "u-1"}),
        ),
        (
            "stream",
            json!({"stream": true, "stream_options": {"include_usage": true}}),
            "/stream",
            json!(true),
        ),
        (
            "json_schema",
            json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "strict": true, "schema": {"type": "object"}}}}),
            "/output_config",
            json!({"format": {"type": "json_schema", "schema": {"type": "object"}}}),
        ),
        (
            "tool_choice required",
            json!({"tools": [weather_tool()], "tool_choice": "required"}),
            "/tool_choice",
            json!({"type": "any"}),
        ),
        (
            "tool_choice none",
            json!({"tools": [weather_tool()], "tool_choice": "none"}),
            "/tool_choice",
            json!({"type": "none"}),
        ),
        (
            "tool_choice named",
            json!({"tools": [weather_tool()], "tool_choice": {"type": "function", "function": {"name": "get_current_weather"}}}),
            "/tool_choice",
            json!({"type": "tool", "name": "get_current_weather"}),
        ),
        (
            "parallel_tool_calls false",
            json!({"tools": [weather_tool()], "parallel_tool_calls": false}),
            "/tool_choice",
            json!({"type": "auto", "disable_parallel_tool_use": true}),
        ),
    ];
    for (name, extra, pointer, expected) in cases {
        let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let out = req(body);
        assert_eq!(out.pointer(pointer), Some(&expected), "{name}: {out}");
    }
}

fn weather_tool() -> Value {
    // The function-calling guide's example tool.
    json!({"type": "function", "function": {
        "name": "get_current_weather",
        "description": "Get the current weather in a given location",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["location"]}
    }})
}

#[test]
fn tools_and_a_tool_call_round_trip() {
    let out = req(json!({
        "model": "m",
        "tools": [weather_tool()],
        "messages": [
            {"role": "user", "content": "What's the weather like in Boston today?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_current_weather", "arguments": "{\"location\": \"Boston, MA\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "get_current_weather", "arguments": "{\"location\": \"Paris\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "22C"},
            {"role": "tool", "tool_call_id": "call_2", "content": "18C"},
            {"role": "user", "content": "thanks"}
        ]
    }));
    assert_eq!(
        out["tools"],
        json!([{
            "name": "get_current_weather",
            "description": "Get the current weather in a given location",
            "input_schema": weather_tool()["function"]["parameters"],
        }])
    );
    assert_eq!(
        out["messages"][1]["content"][0],
        json!({"type": "tool_use", "id": "call_1", "name": "get_current_weather", "input": {"location": "Boston, MA"}})
    );
    // Both results and the next user text: one user turn, results first.
    assert_eq!(out["messages"].as_array().unwrap().len(), 3);
    assert_eq!(
        out["messages"][2],
        json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "22C"},
            {"type": "tool_result", "tool_use_id": "call_2", "content": "18C"},
            {"type": "text", "text": "thanks"},
        ]})
    );
}

#[test]
fn images_data_urls_and_remote_urls() {
    let out = req(
        json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is in this image?"},
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
            {"type": "image_url", "image_url": {"url": "https://upload.wikimedia.org/x.jpg", "detail": "high"}},
        ]}]}),
    );
    assert_eq!(
        out["messages"][0]["content"],
        json!([
            {"type": "text", "text": "What is in this image?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
            {"type": "image", "source": {"type": "url", "url": "https://upload.wikimedia.org/x.jpg"}},
        ])
    );
}

#[test]
fn system_messages_join_and_multi_turn_keeps_order() {
    let out = req(json!({"model": "m", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": [{"type": "text", "text": "Be kind."}]},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi!"},
        {"role": "user", "content": "How are you?"},
    ]}));
    assert_eq!(out["system"], "Be brief.\n\nBe kind.");
    let roles: Vec<&str> = out["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "user"]);
    assert_eq!(
        out["messages"][1]["content"],
        json!([{"type": "text", "text": "Hi!"}])
    );
}

#[test]
fn fields_without_counterpart_are_dropped_and_named() {
    let (out, dropped) = request(
        C,
        A,
        &json!({"model": "m", "messages": [{"role": "user", "content": "hi", "name": "bob"}],
        "frequency_penalty": 0.5, "seed": 3, "logprobs": true, "response_format": {"type": "json_object"}, "n": 1}),
    );
    assert_eq!(
        dropped,
        [
            "messages[].name",
            "response_format.type=json_object",
            "frequency_penalty",
            "logprobs",
            "seed"
        ]
    );
    assert!(out.get("seed").is_none() && out.get("n").is_none());
}

#[test]
fn n_above_one_is_refused() {
    let msg = refused(C, A, &json!({"model": "m", "n": 2, "messages": []}));
    assert!(msg.contains("n = 2"), "{msg}");
    assert!(refused(C, A, &json!([1])).contains("not a JSON object"));
}

#[test]
fn anthropic_published_message_becomes_a_chat_completion() {
    // docs.anthropic.com/en/api/messages, example response.
    let out = response(
        C,
        A,
        200,
        &json!({
            "content": [{"text": "Hi! My name is Claude.", "type": "text"}],
            "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
            "model": "claude-sonnet-4-20250514",
            "role": "assistant",
            "stop_reason": "end_turn",
            "stop_sequence": null,
            "type": "message",
            "usage": {"input_tokens": 2095, "output_tokens": 503, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 5}
        }),
    );
    assert_eq!(out["object"], "chat.completion");
    assert_eq!(out["id"], "msg_013Zva2CMHLNnXjNJJKqJ2EF");
    assert_eq!(
        out["choices"][0]["message"],
        json!({"role": "assistant", "content": "Hi! My name is Claude."})
    );
    assert_eq!(out["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        out["usage"],
        json!({"prompt_tokens": 2200, "completion_tokens": 503, "total_tokens": 2703, "prompt_tokens_details": {"cached_tokens": 100}})
    );
}

#[test]
fn stop_reasons_and_tool_use() {
    for (stop, finish) in [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ] {
        let out = response(
            C,
            A,
            200,
            &json!({"id": "m", "content": [], "stop_reason": stop, "usage": {}}),
        );
        assert_eq!(out["choices"][0]["finish_reason"], finish, "{stop}");
    }
    let out = response(
        C,
        A,
        200,
        &json!({"id": "m", "stop_reason": "tool_use", "usage": {"input_tokens": 1, "output_tokens": 2},
        "content": [{"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather", "input": {"location": "San Francisco, CA"}}]}),
    );
    assert_eq!(out["choices"][0]["message"]["content"], Value::Null);
    assert_eq!(
        out["choices"][0]["message"]["tool_calls"],
        json!([{"id": "toolu_01A09q90qw90lq917835lq9", "type": "function",
        "function": {"name": "get_weather", "arguments": "{\"location\":\"San Francisco, CA\"}"}}])
    );
}

#[test]
fn errors_keep_the_status_and_become_openai_errors() {
    let cases = [
        (
            529,
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
            "server_error",
            "overloaded_error",
        ),
        (
            429,
            json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}),
            "rate_limit_error",
            "rate_limit_error",
        ),
        (
            400,
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}}),
            "invalid_request_error",
            "invalid_request_error",
        ),
    ];
    for (status, body, kind, code) in cases {
        let out = response(C, A, status, &body);
        assert_eq!(out["error"]["type"], kind);
        assert_eq!(out["error"]["code"], code);
        assert_eq!(out["error"]["message"], body["error"]["message"]);
    }
    let t = translator(C, A).unwrap();
    let out: Value =
        serde_json::from_slice(&t.response(502, b"<html>bad gateway", &ResponseContext::default()))
            .unwrap();
    assert_eq!(out["error"]["message"], "upstream error (HTTP 502)");
}
