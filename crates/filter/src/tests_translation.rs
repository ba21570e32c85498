//! Translation in the filter's lifecycle, over the in-memory host: the
//! translated body and path, the answer translated back (JSON buffered,
//! streams chunk by chunk) with the native usage billed, retries across
//! APIs, and the local models list.

use std::rc::Rc;

use model_router_core::headers::{
    CHAIN_STATE, CLIENT_BODY_STATE, CLIENT_PATH_STATE, DECISION_STATE,
};
use serde_json::Value;

use crate::downstream::Downstream;
use crate::fake::FakeHost;
use crate::host::{Flow, Host};
use crate::root::{configure, Role, Shared};
use crate::upstream::Upstream;

const POLICY: &str = r#"{
  "models": {
    "claude": {"cluster": "anthropic", "provider_model": "claude-x", "api": "anthropic_messages",
               "context_window": 200000, "max_output_tokens": 300,
               "pricing": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}},
    "gpt": {"cluster": "openai", "context_window": 128000,
            "pricing": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}}
  },
  "requested_model": {"aliases": ["auto"]},
  "default": ["claude", "gpt"]
}"#;

fn shared(role: Role) -> Rc<Shared> {
    Rc::new(configure(&FakeHost::default(), POLICY.as_bytes(), role).unwrap())
}

fn chat(body: &str) -> FakeHost {
    let length = body.len().to_string();
    FakeHost::with_request(
        &[
            (":method", "POST"),
            (":path", "/v1/chat/completions"),
            ("content-length", &length),
        ],
        body,
    )
}

fn routed(host: &FakeHost) -> Downstream {
    let mut filter = Downstream::new(Some(shared(Role::Routing)));
    let size = host.state.borrow().request_body.len();
    assert_eq!(filter.on_request_headers(host, false), Flow::Pause);
    assert_eq!(filter.on_request_body(host, size, true), Flow::Continue);
    filter
}

#[test]
fn a_chat_request_goes_out_as_messages_and_its_json_answer_comes_back_as_chat() {
    let host = chat(r#"{"model":"auto","messages":[{"role":"user","content":"hi"}]}"#);
    let mut filter = routed(&host);
    assert_eq!(
        host.request_header(":path").as_deref(),
        Some("/v1/messages")
    );
    let sent: Value = serde_json::from_str(&host.body()).unwrap();
    assert_eq!(
        (sent["model"].as_str(), sent["max_tokens"].as_u64()),
        (Some("claude-x"), Some(300))
    );
    assert!(
        host.filter_state_value(CLIENT_BODY_STATE).is_some(),
        "the chain crosses APIs"
    );
    assert_eq!(
        host.filter_state_value(CLIENT_PATH_STATE).as_deref(),
        Some("/v1/chat/completions")
    );

    host.set_response(&[
        (":status", "200"),
        ("content-type", "application/json"),
        ("content-length", "999"),
    ]);
    assert_eq!(filter.on_response_headers(&host, false), Flow::Continue);
    assert_eq!(host.response_header("content-length"), None);
    let answer = r#"{"id":"msg_1","type":"message","content":[{"type":"text","text":"Hello"}],"stop_reason":"end_turn","usage":{"input_tokens":7,"output_tokens":3}}"#;
    host.set_response_chunk(&answer[..20]);
    assert_eq!(
        filter.on_response_body(&host, 20, false),
        Flow::Pause,
        "JSON is buffered"
    );
    host.set_response_chunk(answer);
    assert_eq!(
        filter.on_response_body(&host, answer.len(), true),
        Flow::Continue
    );
    let out: Value = serde_json::from_slice(&host.state.borrow().response_chunk).unwrap();
    assert_eq!(out["object"], "chat.completion");
    assert_eq!(out["choices"][0]["message"]["content"], "Hello");
    // Envoy's log phase bills the request from Anthropic's own usage.
    filter.on_log(&host);
    filter.tick(&host);
    let audit: Value =
        serde_json::from_str(&host.filter_state_value(DECISION_STATE).unwrap()).unwrap();
    assert_eq!(audit["billed"]["prompt_tokens"], 7);
    assert_eq!(audit["billed"]["completion_tokens"], 3);
    assert_eq!(audit["translation"]["to"], "anthropic_messages");
    assert_eq!(
        host.counter(
            "model_router_translated_requests_total;from=openai_chat;to=anthropic_messages"
        ),
        1
    );
}

#[test]
fn a_stream_is_translated_chunk_by_chunk() {
    let host =
        chat(r#"{"model":"auto","stream":true,"messages":[{"role":"user","content":"hi"}]}"#);
    let mut filter = routed(&host);
    host.set_response(&[(":status", "200"), ("content-type", "text/event-stream")]);
    assert_eq!(filter.on_response_headers(&host, false), Flow::Continue);
    let events = [
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":5}}}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel",
        "lo\"}}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    ];
    let mut client = String::new();
    for (i, chunk) in events.iter().enumerate() {
        host.set_response_chunk(chunk);
        assert_eq!(
            filter.on_response_body(&host, chunk.len(), i == 2),
            Flow::Continue
        );
        client.push_str(&String::from_utf8(host.state.borrow().response_chunk.clone()).unwrap());
    }
    assert!(client.contains("\"content\":\"Hello\""), "{client}");
    assert!(client.ends_with("data: [DONE]\n\n"));
    filter.on_log(&host); // Envoy's log phase: billing and metrics
    filter.tick(&host);
    let audit: Value =
        serde_json::from_str(&host.filter_state_value(DECISION_STATE).unwrap()).unwrap();
    assert_eq!(
        (
            audit["billed"]["prompt_tokens"].as_u64(),
            audit["billed"]["completion_tokens"].as_u64()
        ),
        (Some(5), Some(2))
    );
}

#[test]
fn a_retry_on_the_chat_model_gets_the_clients_chat_body_and_path() {
    let host = chat(r#"{"model":"auto","messages":[{"role":"user","content":"hi"}]}"#);
    let _filter = routed(&host);
    // The upstream filter of attempt 2 sees the replayed (Anthropic) body.
    let retry = host.next(
        &[
            (":method", "POST"),
            (":path", "/v1/messages"),
            ("x-envoy-attempt-count", "2"),
        ],
        &host.body(),
    );
    for name in [CHAIN_STATE, CLIENT_PATH_STATE, CLIENT_BODY_STATE] {
        retry.set_filter_state(name, &host.filter_state_value(name).unwrap());
    }
    let mut upstream = Upstream::new(Some(shared(Role::Upstream)));
    assert_eq!(upstream.on_request_headers(&retry, false), Flow::Pause);
    assert_eq!(
        retry.request_header(":path").as_deref(),
        Some("/v1/chat/completions")
    );
    let size = retry.state.borrow().request_body.len();
    assert_eq!(upstream.on_request_body(&retry, size, true), Flow::Continue);
    let sent: Value = serde_json::from_str(&retry.body()).unwrap();
    assert_eq!(sent["model"], "gpt");
    assert_eq!(sent["messages"][0]["content"], "hi");
    assert!(sent.get("max_tokens").is_none());
}

#[test]
fn the_models_list_is_answered_locally() {
    let host = FakeHost::with_request(&[(":method", "GET"), (":path", "/v1/models")], "");
    let mut filter = Downstream::new(Some(shared(Role::Routing)));
    assert_eq!(filter.on_request_headers(&host, true), Flow::Pause);
    let reply = host.state.borrow().reply.clone().unwrap();
    assert_eq!(reply.0, 200);
    let v: Value = serde_json::from_str(&reply.1).unwrap();
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["claude", "gpt", "auto"]);
}
