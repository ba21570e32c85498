use proptest::prelude::*;
use serde_json::json;

use super::text::TEXT_FLUSH_BYTES;
use super::*;
use crate::tokens;

mod sse;

use sse::parse;

const ENC: Encoding = Encoding::O200kBase;
const JSON_LIMIT: usize = 1 << 20;
const MAX_EVENT: usize = 64 * 1024;

fn reader(format: ResponseFormat) -> UsageReader {
    UsageReader::new(format, JSON_LIMIT, MAX_EVENT, ENC)
}

fn read(format: ResponseFormat, body: &[u8]) -> ReadUsage {
    let mut r = reader(format);
    r.feed(body);
    r.finish()
}

fn read_in_chunks(format: ResponseFormat, body: &[u8], cuts: &[usize]) -> ReadUsage {
    let mut r = reader(format);
    for piece in split_at(body, cuts) {
        r.feed(piece);
    }
    r.finish()
}

/// `body` cut at each of `cuts` (sorted, deduplicated, clamped to its length).
fn split_at<'a>(body: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(body.len())).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut pieces = Vec::new();
    let mut start = 0;
    for cut in cuts {
        pieces.push(&body[start..cut]);
        start = cut;
    }
    pieces.push(&body[start..]);
    pieces
}

fn tokens(text: &str) -> u64 {
    tokens::count(ENC, text).unwrap() as u64
}

fn reported(prompt: u64, completion: u64, cached: u64) -> ReadUsage {
    with_writes(prompt, completion, cached, 0, 0)
}

/// Reported usage with 5-minute and 1-hour cache writes.
fn with_writes(
    prompt: u64,
    completion: u64,
    cached: u64,
    write_5m: u64,
    write_1h: u64,
) -> ReadUsage {
    ReadUsage::Reported(Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        cached_tokens: cached,
        cache_write_tokens: write_5m,
        cache_write_1h_tokens: write_1h,
    })
}

fn counted(text: &str) -> ReadUsage {
    ReadUsage::CountedText {
        completion_tokens: tokens(text),
    }
}

/// An event stream of `data:` events, LF line endings.
fn sse(events: &[serde_json::Value]) -> String {
    events.iter().map(|e| format!("data: {e}\n\n")).collect()
}

/// An event stream with `event:` names (Anthropic, Responses).
fn named_sse(events: &[serde_json::Value]) -> String {
    events
        .iter()
        .map(|e| format!("event: {}\ndata: {e}\n\n", e["type"].as_str().unwrap()))
        .collect()
}

fn with_line_endings(stream: &str, ending: &str) -> String {
    stream.replace('\n', ending)
}

// ---------------------------------------------------------------------------
// Sample payloads

fn openai_chat_json() -> serde_json::Value {
    json!({
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": 1741569952,
        "model": "gpt-4o-2024-08-06",
        "choices": [{
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello! How can I assist you today?",
                "refusal": null,
                "annotations": []
            },
            "logprobs": null,
            "finish_reason": "stop"
        }],
        "usage": {
            "prompt_tokens": 1117,
            "completion_tokens": 9,
            "total_tokens": 1126,
            "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0
            }
        },
        "service_tier": "default",
        "system_fingerprint": "fp_fc9f1d7035"
    })
}

fn openai_completions_json() -> serde_json::Value {
    json!({
        "id": "cmpl-uqkvlQyYK7bGYrRHQ0eXlWi7",
        "object": "text_completion",
        "created": 1589478378,
        "model": "gpt-3.5-turbo-instruct",
        "system_fingerprint": "fp_44709d6fcb",
        "choices": [{
            "text": "\n\nThis is indeed a test",
            "index": 0,
            "logprobs": null,
            "finish_reason": "length"
        }],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
    })
}

fn responses_json() -> serde_json::Value {
    json!({
        "id": "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b",
        "object": "response",
        "created_at": 1741476542,
        "status": "completed",
        "error": null,
        "incomplete_details": null,
        "instructions": null,
        "max_output_tokens": null,
        "model": "gpt-4.1-2025-04-14",
        "output": [{
            "type": "message",
            "id": "msg_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b",
            "status": "completed",
            "role": "assistant",
            "content": [{
                "type": "output_text",
                "text": "In a peaceful grove beneath a silver moon, a unicorn named Lumina discovered a hidden pool.",
                "annotations": []
            }]
        }],
        "parallel_tool_calls": true,
        "previous_response_id": null,
        "reasoning": {"effort": null, "summary": null},
        "store": true,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": {
            "input_tokens": 1536,
            "input_tokens_details": {"cached_tokens": 1280},
            "output_tokens": 87,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 1623
        },
        "user": null,
        "metadata": {}
    })
}

fn anthropic_json() -> serde_json::Value {
    json!({
        "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-20250514",
        "content": [{"type": "text", "text": "Hi! My name is Claude."}],
        "stop_reason": "end_turn",
        "stop_sequence": null,
        "usage": {
            "input_tokens": 12,
            "cache_creation_input_tokens": 248,
            "cache_read_input_tokens": 2000,
            "cache_creation": {"ephemeral_5m_input_tokens": 248, "ephemeral_1h_input_tokens": 0},
            "output_tokens": 10,
            "service_tier": "standard"
        }
    })
}

fn without_usage(mut body: serde_json::Value) -> serde_json::Value {
    body.as_object_mut().unwrap().remove("usage");
    body
}

fn chat_chunk(delta: serde_json::Value, finish: Option<&str>) -> serde_json::Value {
    json!({
        "id": "chatcmpl-7QyqpwdfhqwajicIEznoc6Q47XAyW",
        "object": "chat.completion.chunk",
        "created": 1694268190,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_44709d6fcb",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        "usage": null
    })
}

/// An OpenAI Chat stream of `pieces`, with the final usage chunk if given.
fn openai_chat_stream(pieces: &[&str], usage: Option<serde_json::Value>) -> String {
    let mut events = vec![chat_chunk(
        json!({"role": "assistant", "content": "", "refusal": null}),
        None,
    )];
    events.extend(
        pieces
            .iter()
            .map(|p| chat_chunk(json!({"content": p}), None)),
    );
    events.push(chat_chunk(json!({}), Some("stop")));
    if let Some(usage) = usage {
        events.push(json!({
            "id": "chatcmpl-7QyqpwdfhqwajicIEznoc6Q47XAyW",
            "object": "chat.completion.chunk",
            "created": 1694268190,
            "model": "gpt-4o-mini-2024-07-18",
            "system_fingerprint": "fp_44709d6fcb",
            "choices": [],
            "usage": usage
        }));
    }
    sse(&events) + "data: [DONE]\n\n"
}

fn openai_usage() -> serde_json::Value {
    json!({
        "prompt_tokens": 19,
        "completion_tokens": 10,
        "total_tokens": 29,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
    })
}

fn completions_stream(pieces: &[&str]) -> String {
    let events: Vec<_> = pieces
        .iter()
        .map(|p| {
            json!({
                "id": "cmpl-8mN2", "object": "text_completion", "created": 1700000000,
                "model": "gpt-3.5-turbo-instruct",
                "choices": [{"text": p, "index": 0, "logprobs": null, "finish_reason": null}]
            })
        })
        .collect();
    sse(&events) + "data: [DONE]\n\n"
}

const MSG_ID: &str = "msg_67c9fdcf37fc8190ba82116e33fb28c507b8b0ad4e5eb654";

fn responses_object(
    status: &str,
    text: Option<&str>,
    usage: serde_json::Value,
) -> serde_json::Value {
    let output = match text {
        Some(text) => json!([{
            "id": MSG_ID, "type": "message", "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}]
        }]),
        None => json!([]),
    };
    json!({
        "id": "resp_67c9fdcecf488190bdd9a0409de3a1ec07b8b0ad4e5eb654",
        "object": "response",
        "created_at": 1741290958,
        "status": status,
        "error": null,
        "model": "gpt-4.1-2025-04-14",
        "output": output,
        "usage": usage
    })
}

/// A Responses API stream of `pieces`; `completed` adds `response.completed`.
fn responses_stream(pieces: &[&str], completed: bool) -> String {
    let text: String = pieces.concat();
    let mut events = vec![
        json!({"type": "response.created", "sequence_number": 0,
            "response": responses_object("in_progress", None, json!(null))}),
        json!({"type": "response.in_progress", "sequence_number": 1,
            "response": responses_object("in_progress", None, json!(null))}),
        json!({"type": "response.output_item.added", "sequence_number": 2, "output_index": 0,
            "item": {"id": MSG_ID, "type": "message", "status": "in_progress",
                "role": "assistant", "content": []}}),
        json!({"type": "response.content_part.added", "sequence_number": 3, "item_id": MSG_ID,
            "output_index": 0, "content_index": 0,
            "part": {"type": "output_text", "text": "", "annotations": []}}),
    ];
    for (i, piece) in pieces.iter().enumerate() {
        events.push(
            json!({"type": "response.output_text.delta", "sequence_number": 4 + i,
            "item_id": MSG_ID, "output_index": 0, "content_index": 0, "delta": piece}),
        );
    }
    events.push(
        json!({"type": "response.output_text.done", "item_id": MSG_ID,
        "output_index": 0, "content_index": 0, "text": text}),
    );
    events.push(
        json!({"type": "response.content_part.done", "item_id": MSG_ID,
        "output_index": 0, "content_index": 0,
        "part": {"type": "output_text", "text": text, "annotations": []}}),
    );
    if completed {
        events.push(json!({"type": "response.completed",
        "response": responses_object("completed", Some(&text), json!({
            "input_tokens": 37,
            "output_tokens": 11,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 48,
            "input_tokens_details": {"cached_tokens": 0}
        }))}));
    }
    named_sse(&events)
}

/// An Anthropic Messages stream of `pieces`; `usage` adds the usage objects.
fn anthropic_stream(pieces: &[&str], usage: bool) -> String {
    let mut message = json!({
        "id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY",
        "type": "message", "role": "assistant", "content": [],
        "model": "claude-sonnet-4-20250514", "stop_reason": null, "stop_sequence": null
    });
    if usage {
        message["usage"] = json!({"input_tokens": 25, "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 100, "output_tokens": 1, "service_tier": "standard"});
    }
    let mut events = vec![
        json!({"type": "message_start", "message": message}),
        json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}}),
        json!({"type": "ping"}),
    ];
    for piece in pieces {
        events.push(json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": piece}}));
    }
    events.push(json!({"type": "content_block_stop", "index": 0}));
    let mut delta = json!({"type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": null}});
    if usage {
        delta["usage"] = json!({"output_tokens": 15});
    }
    events.push(delta);
    events.push(json!({"type": "message_stop"}));
    named_sse(&events)
}

const GREETING: [&str; 8] = [
    "Hello", "!", " How", " can", " I", " help", " you", " today?",
];
/// Multi-byte characters, some deltas ending inside a word.
const INTERNATIONAL: [&str; 7] = ["Grü", "ße, ", "世界", "! 👋🏽", " Ça", " va", "? Ωμέγα."];

// ---------------------------------------------------------------------------
// Content types

#[test]
fn content_type_selects_the_format() {
    let cases = [
        ("text/event-stream", ResponseFormat::EventStream),
        (
            "text/event-stream; charset=utf-8",
            ResponseFormat::EventStream,
        ),
        (
            "  Text/Event-Stream ;charset=UTF-8",
            ResponseFormat::EventStream,
        ),
        ("application/json", ResponseFormat::Json),
        ("application/json; charset=utf-8", ResponseFormat::Json),
        ("text/plain", ResponseFormat::Json),
        ("", ResponseFormat::Json),
    ];
    for (ct, want) in cases {
        assert_eq!(ResponseFormat::from_content_type(ct), want, "{ct:?}");
    }
}

// ---------------------------------------------------------------------------
// JSON bodies

#[test]
fn json_bodies() {
    use ResponseFormat::Json;
    let gateway = json!({
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}}],
        "usage": {"prompt_tokens": 2100, "completion_tokens": 3,
            "prompt_tokens_details": {"cached_tokens": 2000},
            "cache_read_input_tokens": 2000, "cache_creation_input_tokens": 50}
    });
    let anthropic_content = json!({
        "type": "message", "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "Let me think.", "signature": "abc"},
            {"type": "text", "text": "The answer is 42."},
            {"type": "tool_use", "id": "toolu_01", "name": "calc", "input": {"x": 1}},
            {"type": "text", "text": " Anything else?"}
        ]
    });
    let two_choices = json!({"choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Yes."}},
        {"index": 1, "message": {"role": "assistant", "content": "No, never."}}
    ]});
    let cases: Vec<(&str, String, ReadUsage)> = vec![
        (
            "openai chat usage with cached prompt tokens",
            openai_chat_json().to_string(),
            reported(1117, 9, 1024),
        ),
        (
            "openai completions usage",
            openai_completions_json().to_string(),
            reported(5, 7, 0),
        ),
        (
            "responses usage with cached input tokens",
            responses_json().to_string(),
            reported(1536, 87, 1280),
        ),
        (
            "anthropic prompt adds cache reads and writes to input tokens",
            anthropic_json().to_string(),
            with_writes(12 + 2000 + 248, 10, 2000, 248, 0),
        ),
        (
            "gateway prompt_tokens already include the anthropic cache fields",
            gateway.to_string(),
            with_writes(2100, 3, 2000, 50, 0),
        ),
        (
            "anthropic 1-hour writes are split out by the cache_creation breakdown",
            json!({"type": "message", "content": [],
                "usage": {"input_tokens": 7, "cache_read_input_tokens": 1000,
                    "cache_creation_input_tokens": 500,
                    "cache_creation": {"ephemeral_5m_input_tokens": 200, "ephemeral_1h_input_tokens": 300},
                    "output_tokens": 9}})
            .to_string(),
            with_writes(7 + 1000 + 500, 9, 1000, 200, 300),
        ),
        (
            "anthropic cache_creation_input_tokens without a breakdown are 5-minute writes",
            json!({"usage": {"input_tokens": 3, "cache_creation_input_tokens": 40, "output_tokens": 1}})
                .to_string(),
            with_writes(43, 1, 0, 40, 0),
        ),
        (
            "gemini's openai-compatible cached tokens",
            json!({"object": "chat.completion", "model": "gemini-2.5-flash",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}}],
                "usage": {"prompt_tokens": 1469, "completion_tokens": 744, "total_tokens": 2496,
                    "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": null},
                    "completion_tokens_details": {"reasoning_tokens": 283}}})
            .to_string(),
            reported(1469, 744, 1024),
        ),
        (
            "gemini's null prompt_tokens_details is no cache",
            json!({"usage": {"prompt_tokens": 12, "completion_tokens": 3, "prompt_tokens_details": null}})
                .to_string(),
            reported(12, 3, 0),
        ),
        (
            "deepseek prompt_cache_hit_tokens are cached reads",
            json!({"usage": {"prompt_tokens": 1000, "completion_tokens": 5,
                "prompt_cache_hit_tokens": 896, "prompt_cache_miss_tokens": 104}})
                .to_string(),
            reported(1000, 5, 896),
        ),
        (
            "openai chat without usage counts the message content",
            without_usage(openai_chat_json()).to_string(),
            counted("Hello! How can I assist you today?"),
        ),
        (
            "null usage counts the message content",
            json!({"choices": [{"message": {"content": "Hello there"}}], "usage": null})
                .to_string(),
            counted("Hello there"),
        ),
        (
            "completions without usage counts the choice text",
            without_usage(openai_completions_json()).to_string(),
            counted("\n\nThis is indeed a test"),
        ),
        (
            "responses without usage counts the output text",
            without_usage(responses_json()).to_string(),
            counted(
                "In a peaceful grove beneath a silver moon, a unicorn named Lumina discovered a hidden pool.",
            ),
        ),
        (
            "anthropic without usage counts each text block",
            anthropic_content.to_string(),
            ReadUsage::CountedText {
                completion_tokens: tokens("The answer is 42.") + tokens(" Anything else?"),
            },
        ),
        (
            "several choices are counted separately",
            two_choices.to_string(),
            ReadUsage::CountedText {
                completion_tokens: tokens("Yes.") + tokens("No, never."),
            },
        ),
        (
            "empty content is zero counted tokens",
            json!({"choices": [{"message": {"role": "assistant", "content": ""}}]}).to_string(),
            ReadUsage::CountedText { completion_tokens: 0 },
        ),
        (
            "integral float token counts are accepted",
            json!({"usage": {"prompt_tokens": 12.0, "completion_tokens": 3}}).to_string(),
            reported(12, 3, 0),
        ),
        (
            "malformed usage fields are ignored",
            json!({"choices": [{"message": {"content": "ok"}}],
                "usage": {"prompt_tokens": "12", "completion_tokens": -1}})
            .to_string(),
            counted("ok"),
        ),
        (
            "tool calls without content and usage are missing",
            json!({"choices": [{"message": {"role": "assistant", "content": null,
                "tool_calls": [{"id": "call_1", "type": "function",
                    "function": {"name": "f", "arguments": "{}"}}]}}]})
            .to_string(),
            ReadUsage::Missing,
        ),
        (
            "openai error body is missing",
            json!({"error": {"message": "Rate limit reached", "type": "requests",
                "param": null, "code": "rate_limit_exceeded"}})
            .to_string(),
            ReadUsage::Missing,
        ),
        (
            "anthropic error body is missing",
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
                .to_string(),
            ReadUsage::Missing,
        ),
        (
            "non-json body is missing",
            "<html><body><h1>502 Bad Gateway</h1></body></html>".to_owned(),
            ReadUsage::Missing,
        ),
        ("empty body is missing", String::new(), ReadUsage::Missing),
        (
            "truncated json is missing",
            openai_chat_json().to_string()[..200].to_owned(),
            ReadUsage::Missing,
        ),
        (
            "an event stream read as json is missing",
            openai_chat_stream(&GREETING, Some(openai_usage())),
            ReadUsage::Missing,
        ),
    ];
    for (name, body, want) in cases {
        assert_eq!(read(Json, body.as_bytes()), want, "{name}");
        let cuts: Vec<usize> = (0..body.len()).step_by(7).collect();
        assert_eq!(
            read_in_chunks(Json, body.as_bytes(), &cuts),
            want,
            "{name} in chunks"
        );
    }
}

#[test]
fn json_at_the_limit_is_read_and_over_it_is_missing() {
    let body = openai_chat_json().to_string();
    let len = body.len();

    let mut at = UsageReader::new(ResponseFormat::Json, len, MAX_EVENT, ENC);
    for piece in body.as_bytes().chunks(100) {
        at.feed(piece);
        assert!(at.retained_bytes() <= len);
    }
    assert!(!at.over_json_limit());
    assert_eq!(at.finish(), reported(1117, 9, 1024));

    let mut over = UsageReader::new(ResponseFormat::Json, len - 1, MAX_EVENT, ENC);
    for piece in body.as_bytes().chunks(100) {
        over.feed(piece);
    }
    assert!(over.over_json_limit());
    assert_eq!(
        over.retained_bytes(),
        0,
        "the body is released on giving up"
    );
    over.feed(b"more");
    assert_eq!(over.retained_bytes(), 0);
    assert_eq!(over.finish(), ReadUsage::Missing);
}

// ---------------------------------------------------------------------------
// Event streams

#[test]
fn event_streams() {
    use ResponseFormat::EventStream;
    let greeting = GREETING.concat();
    let anthropic_cumulative = anthropic_stream(&GREETING, true).replace(
        r#""usage":{"output_tokens":15}"#,
        r#""usage":{"input_tokens":25,"cache_creation_input_tokens":30,"cache_read_input_tokens":100,"output_tokens":15}"#,
    );
    assert!(anthropic_cumulative.contains("\"cache_creation_input_tokens\":30"));
    let continuous_usage: String = sse(&[
        json!({"choices": [{"index": 0, "delta": {"content": "a"}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 1}}),
        json!({"choices": [{"index": 0, "delta": {"content": "b"}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 2}}),
        json!({"choices": [{"index": 0, "delta": {}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 3,
                "prompt_tokens_details": {"cached_tokens": 8}}}),
    ]);
    let cut_off_usage = {
        let mut s = openai_chat_stream(&GREETING, Some(openai_usage()));
        let end = s.rfind("data: {").unwrap();
        let usage_line_end = s[end..].find('\n').unwrap() + end + 1;
        s.truncate(usage_line_end); // the usage event never gets its blank line
        s
    };
    let multi_line = "event: message\n\
        data: {\"choices\": [{\"index\": 0,\n\
        data:   \"delta\": {\"content\": \"multi\"}}],\n\
        data:  \"usage\": {\"prompt_tokens\": 4, \"completion_tokens\": 1}}\n\n\
        data: [DONE]\n\n"
        .to_owned();
    let commented = format!(
        ": OPENROUTER PROCESSING\n\n: keep-alive\n{}",
        openai_chat_stream(&GREETING, Some(openai_usage()))
    );
    let cases: Vec<(&str, String, ReadUsage)> = vec![
        (
            "openai chat stream with include_usage",
            openai_chat_stream(&GREETING, Some(openai_usage())),
            reported(19, 10, 0),
        ),
        (
            "openai chat stream without usage counts the deltas",
            openai_chat_stream(&GREETING, None),
            counted(&greeting),
        ),
        (
            "multi-byte text deltas are counted whole",
            openai_chat_stream(&INTERNATIONAL, None),
            counted(&INTERNATIONAL.concat()),
        ),
        (
            "completions stream counts choice text",
            completions_stream(&["\n\n", "This", " is", " a", " test"]),
            counted("\n\nThis is a test"),
        ),
        (
            "responses stream usage from response.completed",
            responses_stream(&GREETING, true),
            reported(37, 11, 0),
        ),
        (
            "responses stream cut before response.completed counts output_text deltas",
            responses_stream(&GREETING, false),
            counted(&greeting),
        ),
        (
            "anthropic stream joins message_start input and message_delta output",
            anthropic_stream(&GREETING, true),
            reported(25 + 100, 15, 100),
        ),
        (
            "anthropic cumulative message_delta usage overrides field by field",
            anthropic_cumulative,
            with_writes(25 + 100 + 30, 15, 100, 30, 0),
        ),
        (
            "anthropic stream: 5-minute and 1-hour writes from message_start",
            anthropic_stream(&GREETING, true).replace(
                r#""cache_creation_input_tokens":0"#,
                r#""cache_creation_input_tokens":70,"cache_creation":{"ephemeral_5m_input_tokens":30,"ephemeral_1h_input_tokens":40}"#,
            ),
            with_writes(25 + 100 + 70, 15, 100, 30, 40),
        ),
        (
            "anthropic stream without usage counts text deltas",
            anthropic_stream(&INTERNATIONAL, false),
            counted(&INTERNATIONAL.concat()),
        ),
        (
            "later usage overrides earlier usage",
            continuous_usage,
            reported(10, 3, 8),
        ),
        (
            "an unterminated last event is discarded",
            cut_off_usage,
            counted(&greeting),
        ),
        (
            "crlf line endings",
            with_line_endings(&anthropic_stream(&GREETING, true), "\r\n"),
            reported(125, 15, 100),
        ),
        (
            "cr line endings",
            with_line_endings(&openai_chat_stream(&GREETING, None), "\r"),
            counted(&greeting),
        ),
        ("multi-line data is joined with newlines", multi_line, reported(4, 1, 0)),
        (
            "comments are ignored",
            commented,
            reported(19, 10, 0),
        ),
        (
            "done only is missing",
            "data: [DONE]\n\n".to_owned(),
            ReadUsage::Missing,
        ),
        (
            "non-json events are ignored",
            "data: hello\n\ndata: {not json}\n\n".to_owned() + &openai_chat_stream(&GREETING, None),
            counted(&greeting),
        ),
        (
            "anthropic error event is missing",
            "event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \
             \"message\": \"Overloaded\"}}\n\n"
                .to_owned(),
            ReadUsage::Missing,
        ),
        (
            "a json body read as an event stream is missing",
            openai_chat_json().to_string(),
            ReadUsage::Missing,
        ),
        ("empty stream is missing", String::new(), ReadUsage::Missing),
    ];
    for (name, body, want) in cases {
        assert_eq!(read(EventStream, body.as_bytes()), want, "{name}");
        let mut bytewise = reader(EventStream);
        for byte in body.as_bytes() {
            bytewise.feed(std::slice::from_ref(byte));
        }
        assert_eq!(bytewise.finish(), want, "{name} byte by byte");
    }
}

#[test]
fn oversized_events_are_skipped_and_counted() {
    let big = "x".repeat(2000);
    let stream = openai_chat_stream(&["small", &big, " again"], Some(openai_usage()));
    let mut r = UsageReader::new(ResponseFormat::EventStream, JSON_LIMIT, 1024, ENC);
    r.feed(stream.as_bytes());
    assert_eq!(
        r.oversized_events(),
        1,
        "the big delta is skipped, the usage still fits"
    );
    assert_eq!(r.finish(), reported(19, 10, 0));

    let stream = openai_chat_stream(&["small", &big, " again"], None);
    let mut r = UsageReader::new(ResponseFormat::EventStream, JSON_LIMIT, 1024, ENC);
    for piece in stream.as_bytes().chunks(97) {
        r.feed(piece);
        assert!(r.retained_bytes() <= 2048, "{}", r.retained_bytes());
    }
    assert_eq!(r.oversized_events(), 1);
    assert_eq!(r.finish(), counted("small again"));

    // The usage event itself is too big: no usage, the text is counted.
    let mut r = UsageReader::new(ResponseFormat::EventStream, JSON_LIMIT, 400, ENC);
    r.feed(openai_chat_stream(&GREETING, Some(openai_usage())).as_bytes());
    assert_eq!(r.oversized_events(), 1);
    assert_eq!(r.finish(), counted(&GREETING.concat()));
}

#[test]
fn reported_usage_wins_over_streamed_text() {
    // Anthropic usage comes first; the text after it is not buffered.
    let long: Vec<String> = (0..2000).map(|i| format!(" word{i}")).collect();
    let long: Vec<&str> = long.iter().map(String::as_str).collect();
    let stream = anthropic_stream(&long, true);
    let mut r = reader(ResponseFormat::EventStream);
    for piece in stream.as_bytes().chunks(512) {
        r.feed(piece);
        assert!(r.retained_bytes() < 4096, "{}", r.retained_bytes());
    }
    assert_eq!(r.finish(), reported(125, 15, 100));
}

#[test]
fn long_text_is_counted_in_pieces_close_to_the_whole() {
    let words = [
        "The",
        " quick",
        " brown",
        " fox",
        " jumps",
        " over",
        " the",
        " lazy",
        " dog",
        ".",
        "\n\n",
        "Ünïcödé",
        " 文字",
        " 🦀",
        " tokens",
        ",",
        " and",
        " more",
        "  spaces",
        "\n",
    ];
    let pieces: Vec<&str> = words.iter().copied().cycle().take(40_000).collect();
    let text = pieces.concat();
    assert!(text.len() > 10 * TEXT_FLUSH_BYTES);
    let ReadUsage::CountedText { completion_tokens } = read(
        ResponseFormat::EventStream,
        openai_chat_stream(&pieces, None).as_bytes(),
    ) else {
        panic!("expected counted text");
    };
    let whole = tokens(&text);
    let cuts = (text.len() / TEXT_FLUSH_BYTES) as u64 + 1;
    assert!(
        completion_tokens.abs_diff(whole) <= cuts,
        "{completion_tokens} vs {whole} (at most {cuts} cuts)"
    );
}

#[test]
fn text_without_whitespace_is_still_flushed() {
    let piece = "字".repeat(1000); // 3000 bytes, no whitespace
    let pieces = vec![piece.as_str(); 30];
    let stream = openai_chat_stream(&pieces, None);
    let mut r = reader(ResponseFormat::EventStream);
    for chunk in stream.as_bytes().chunks(1000) {
        r.feed(chunk);
        assert!(r.retained_bytes() < 64 * 1024, "{}", r.retained_bytes());
    }
    let ReadUsage::CountedText { completion_tokens } = r.finish() else {
        panic!("expected counted text");
    };
    let whole = tokens(&pieces.concat());
    assert!(
        completion_tokens.abs_diff(whole) <= 10,
        "{completion_tokens} vs {whole}"
    );
}

#[test]
fn memory_stays_flat_over_a_20_mb_stream_without_usage() {
    const TOTAL: usize = 20 * 1024 * 1024;
    let words = [
        "Once", " upon", " a", " time", ",", " naïve", " 世界", " 🚀", " there", "\n",
    ];
    let block: String = (0..200)
        .map(|i| {
            let delta = json!({"content": words[i % words.len()]});
            format!("data: {}\n\n", chat_chunk(delta, None))
        })
        .collect();
    let block_text: String = (0..200).map(|i| words[i % words.len()]).collect();
    let mut r = reader(ResponseFormat::EventStream);
    let mut fed = 0;
    let mut max_retained = 0;
    let mut blocks = 0u64;
    while fed < TOTAL {
        // Uneven chunks that end mid-line and mid-character.
        for piece in block.as_bytes().chunks(1021) {
            r.feed(piece);
            max_retained = max_retained.max(r.retained_bytes());
        }
        fed += block.len();
        blocks += 1;
    }
    assert!(
        max_retained < 64 * 1024,
        "retained up to {max_retained} bytes"
    );
    let ReadUsage::CountedText { completion_tokens } = r.finish() else {
        panic!("expected counted text");
    };
    let approx = tokens(&block_text) * blocks;
    assert!(
        completion_tokens.abs_diff(approx) * 100 <= approx,
        "{completion_tokens} vs about {approx}"
    );
}

// ---------------------------------------------------------------------------
// Chunk boundaries do not matter

/// Streams whose result must not depend on how they are chunked.
fn split_fixtures() -> Vec<(ResponseFormat, String)> {
    let many: Vec<String> = (0..3000).map(|i| format!(" wörd{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    vec![
        (
            ResponseFormat::EventStream,
            openai_chat_stream(&GREETING, Some(openai_usage())),
        ),
        (
            ResponseFormat::EventStream,
            openai_chat_stream(&INTERNATIONAL, None),
        ),
        (ResponseFormat::EventStream, openai_chat_stream(&many, None)),
        (
            ResponseFormat::EventStream,
            completions_stream(&INTERNATIONAL),
        ),
        (
            ResponseFormat::EventStream,
            responses_stream(&INTERNATIONAL, true),
        ),
        (
            ResponseFormat::EventStream,
            responses_stream(&INTERNATIONAL, false),
        ),
        (
            ResponseFormat::EventStream,
            anthropic_stream(&INTERNATIONAL, true),
        ),
        (
            ResponseFormat::EventStream,
            anthropic_stream(&INTERNATIONAL, false),
        ),
        (ResponseFormat::Json, anthropic_json().to_string()),
        (
            ResponseFormat::Json,
            without_usage(responses_json()).to_string(),
        ),
    ]
}

#[test]
fn fixtures_read_as_expected_before_splitting() {
    for (format, body) in split_fixtures() {
        assert_ne!(
            read(format, body.as_bytes()),
            ReadUsage::Missing,
            "{body:.80}"
        );
    }
}

/// A split fixture in one line-ending style, with its result read whole.
struct Prepared {
    format: ResponseFormat,
    body: String,
    whole: ReadUsage,
    events: (Vec<(String, String)>, u64),
}

/// Every split fixture in every line-ending style, read whole once.
fn prepared() -> &'static [Prepared] {
    static PREPARED: std::sync::OnceLock<Vec<Prepared>> = std::sync::OnceLock::new();
    PREPARED.get_or_init(|| {
        let mut all = Vec::new();
        for (format, body) in split_fixtures() {
            for ending in ["\n", "\r\n", "\r"] {
                let body = match format {
                    ResponseFormat::EventStream => with_line_endings(&body, ending),
                    ResponseFormat::Json if ending == "\n" => body.clone(),
                    ResponseFormat::Json => continue,
                };
                all.push(Prepared {
                    format,
                    whole: read(format, body.as_bytes()),
                    events: parse(MAX_EVENT, body.as_bytes(), &[]),
                    body,
                });
            }
        }
        all
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_chunk_splits_read_the_same_as_the_whole(
        fixture in any::<prop::sample::Index>(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..40),
    ) {
        let all = prepared();
        let p = &all[fixture.index(all.len())];
        let bytes = p.body.as_bytes();
        let cuts: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        prop_assert_ne!(p.whole, ReadUsage::Missing);
        prop_assert_eq!(read_in_chunks(p.format, bytes, &cuts), p.whole);
        if p.format == ResponseFormat::EventStream {
            prop_assert_eq!(&parse(MAX_EVENT, bytes, &cuts), &p.events);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_stay_bounded(
        bytes in prop::collection::vec(any::<u8>(), 0..2000),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
    ) {
        let cuts: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        for format in [ResponseFormat::Json, ResponseFormat::EventStream] {
            let mut r = UsageReader::new(format, 512, 64, ENC);
            for piece in split_at(&bytes, &cuts) {
                r.feed(piece);
                prop_assert!(r.retained_bytes() <= 1024);
            }
            let _ = r.finish();
        }
    }
}
