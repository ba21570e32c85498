//! Tool-call answers: with header `x-mock-tool-call: NAME`, a Chat or
//! Messages request is answered with one call of tool NAME, arguments
//! [`ARGUMENTS`], in the API's own shape (JSON, or streamed with the
//! arguments split across two deltas). Usage is that of the text answer.

use bytes::Bytes;
use serde_json::{json, Value};

use crate::answers::{named_event, Answer, Api};

/// Header asking for a tool call.
pub const TOOL_CALL_HEADER: &str = "x-mock-tool-call";
/// The arguments of every mock tool call.
pub const ARGUMENTS: &str = "{\"city\":\"Paris\"}";

fn call_id(answer: &Answer) -> String {
    format!("call_mock{}", answer.serial)
}

/// The JSON body, or None for APIs without mock tool calls.
pub fn json(answer: &Answer, name: &str) -> Option<Value> {
    let completion = answer.completion_tokens();
    match answer.api {
        Api::ChatCompletions => Some(json!({
            "id": answer.id(), "object": "chat.completion", "created": answer.created, "model": answer.model,
            "choices": [{"index": 0, "logprobs": null, "finish_reason": "tool_calls",
                "message": {"role": "assistant", "content": null, "refusal": null,
                    "tool_calls": [{"id": call_id(answer), "type": "function", "function": {"name": name, "arguments": ARGUMENTS}}]}}],
            "usage": {"prompt_tokens": answer.prompt_tokens, "completion_tokens": completion,
                "total_tokens": answer.prompt_tokens.saturating_add(completion)},
        })),
        Api::Messages => Some(json!({
            "id": answer.id(), "type": "message", "role": "assistant", "model": answer.model,
            "content": [{"type": "tool_use", "id": call_id(answer), "name": name, "input": {"city": "Paris"}}],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": answer.prompt_tokens, "output_tokens": completion},
        })),
        _ => None,
    }
}

/// The streamed body, or None for APIs without mock tool calls.
pub fn events(answer: &Answer, name: &str) -> Option<Vec<Bytes>> {
    let (first, second) = ARGUMENTS.split_at(8);
    let completion = answer.completion_tokens();
    match answer.api {
        Api::ChatCompletions => {
            let chunk = |delta: Value, finish: Value| {
                let v = json!({"id": answer.id(), "object": "chat.completion.chunk", "created": answer.created,
                    "model": answer.model, "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
                Bytes::from(format!("data: {v}\n\n"))
            };
            let mut out = vec![
                chunk(json!({"role": "assistant", "content": null}), Value::Null),
                chunk(
                    json!({"tool_calls": [{"index": 0, "id": call_id(answer), "type": "function", "function": {"name": name, "arguments": ""}}]}),
                    Value::Null,
                ),
                chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": first}}]}),
                    Value::Null,
                ),
                chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": second}}]}),
                    Value::Null,
                ),
                chunk(json!({}), json!("tool_calls")),
            ];
            if answer.include_usage {
                let v = json!({"id": answer.id(), "object": "chat.completion.chunk", "created": answer.created, "model": answer.model,
                    "choices": [], "usage": {"prompt_tokens": answer.prompt_tokens, "completion_tokens": completion,
                        "total_tokens": answer.prompt_tokens.saturating_add(completion)}});
                out.push(Bytes::from(format!("data: {v}\n\n")));
            }
            out.push(Bytes::from_static(b"data: [DONE]\n\n"));
            Some(out)
        }
        Api::Messages => {
            let delta = |part: &str| {
                named_event(
                    "content_block_delta",
                    &json!({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "input_json_delta", "partial_json": part}}),
                )
            };
            Some(vec![
                named_event(
                    "message_start",
                    &json!({"type": "message_start", "message": {"id": answer.id(), "type": "message",
                    "role": "assistant", "model": answer.model, "content": [], "stop_reason": null, "stop_sequence": null,
                    "usage": {"input_tokens": answer.prompt_tokens, "output_tokens": 1}}}),
                ),
                named_event(
                    "content_block_start",
                    &json!({"type": "content_block_start", "index": 0,
                    "content_block": {"type": "tool_use", "id": call_id(answer), "name": name, "input": {}}}),
                ),
                delta(first),
                delta(second),
                named_event(
                    "content_block_stop",
                    &json!({"type": "content_block_stop", "index": 0}),
                ),
                named_event(
                    "message_delta",
                    &json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
                    "usage": {"output_tokens": completion}}),
                ),
                named_event("message_stop", &json!({"type": "message_stop"})),
            ])
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::answers::{Filler, TextPlan};
    use model_router_core::tokens::Encoding;

    fn answer(api: Api) -> Answer {
        let filler = Filler::new(Encoding::O200kBase).unwrap();
        Answer {
            api,
            serial: 3,
            created: 1_700_000_000,
            model: "m".to_string(),
            prompt_tokens: 11,
            include_usage: true,
            plan: TextPlan::with_tokens(&filler, "p", "m", 5).unwrap(),
            cache: crate::answers::CacheUsage::default(),
        }
    }

    /// The `data` JSON of each event.
    fn data(events: &[Bytes]) -> Vec<Value> {
        events
            .iter()
            .filter_map(|e| {
                std::str::from_utf8(e)
                    .unwrap()
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
            })
            .filter_map(|d| serde_json::from_str(d).ok())
            .collect()
    }

    #[test]
    fn chat_calls_in_json_and_in_deltas_that_reassemble() {
        let a = answer(Api::ChatCompletions);
        let v = json(&a, "get_weather").unwrap();
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            ARGUMENTS
        );
        let chunks = data(&events(&a, "get_weather").unwrap());
        let args: String = chunks
            .iter()
            .filter_map(|c| {
                c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str()
            })
            .collect();
        assert_eq!(args, ARGUMENTS);
        assert_eq!(chunks.last().unwrap()["usage"]["prompt_tokens"], 11);
    }

    #[test]
    fn messages_calls_in_json_and_in_deltas_that_reassemble() {
        let a = answer(Api::Messages);
        let v = json(&a, "get_weather").unwrap();
        assert_eq!(v["content"][0]["input"], json!({"city": "Paris"}));
        assert_eq!(v["stop_reason"], "tool_use");
        let events = data(&events(&a, "get_weather").unwrap());
        let args: String = events
            .iter()
            .filter_map(|e| e["delta"]["partial_json"].as_str())
            .collect();
        assert_eq!(args, ARGUMENTS);
        assert!(json(&answer(Api::Responses), "f").is_none());
    }
}
