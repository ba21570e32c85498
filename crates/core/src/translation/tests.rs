//! Translation applied to decisions: bodies, paths, retries, responses.

use serde_json::{json, Value};

use super::*;
use crate::decision::{decide, Request};
use crate::headers::Headers;

const MULTI: &str = include_str!("../../../../examples/policies/multi-api.json");

fn policy() -> Policy {
    Policy::from_json(MULTI).unwrap()
}

fn run(
    p: &Policy,
    path: &str,
    body: &Value,
) -> (Decision, RequestActions, Option<TranslationNote>) {
    let body = body.to_string();
    let d = decide(
        p,
        &Request {
            shape: ApiShape::from_path(path).unwrap(),
            path,
            headers: &Headers::new(),
            body: body.as_bytes(),
        },
    );
    let (a, note) = request_actions(p, &d, path, body.as_bytes());
    (d, a, note)
}

fn header<'a>(a: &'a RequestActions, name: &str) -> Option<&'a str> {
    a.set_headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn state<'a>(a: &'a RequestActions, name: &str) -> Option<&'a str> {
    a.filter_state
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn a_chat_request_for_an_anthropic_model_is_translated_with_its_path() {
    let p = policy();
    let body = json!({"model": "claude-haiku", "messages": [{"role": "user", "content": "hi"}], "seed": 1});
    let (_, a, note) = run(&p, "/v1/chat/completions", &body);
    let sent: Value = serde_json::from_slice(a.body.as_ref().unwrap()).unwrap();
    assert_eq!(sent["model"], "claude-3-5-haiku-latest");
    assert_eq!(sent["max_tokens"], 8192, "the model's max_output_tokens");
    assert_eq!(header(&a, ":path"), Some("/v1/messages"));
    assert_eq!(
        note,
        Some(TranslationNote {
            from: Api::OpenaiChat,
            to: Api::AnthropicMessages,
            dropped: vec!["seed".into()]
        })
    );
    let names: Vec<String> = samples(note.as_ref().unwrap())
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(
        names,
        [
            "model_router_translated_requests_total;from=openai_chat;to=anthropic_messages",
            "model_router_translation_dropped_fields_total;from=openai_chat;field=seed"
        ]
    );
}

#[test]
fn native_requests_are_not_translated_and_keep_no_client_state() {
    let p = policy();
    let (_, a, note) = run(
        &p,
        "/v1/chat/completions",
        &json!({"model": "auto", "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert!(note.is_none() && header(&a, ":path").is_none());
    assert!(state(&a, CLIENT_BODY_STATE).is_none());
}

#[test]
fn a_chain_across_apis_keeps_the_client_body_for_retries() {
    let p = Policy::from_json(&MULTI.replace(
        r#""default": ["gpt-4o-mini", "gpt-4.1"]"#,
        r#""default": ["claude-haiku", "gpt-4o-mini"]"#,
    ))
    .unwrap();
    let body =
        json!({"model": "auto", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let (d, a, _) = run(&p, "/v1/chat/completions", &body);
    assert_eq!(header(&a, ":path"), Some("/v1/messages"));
    assert_eq!(state(&a, CLIENT_PATH_STATE), Some("/v1/chat/completions"));
    let client = state(&a, CLIENT_BODY_STATE).unwrap();
    let plan = state(&a, crate::headers::CHAIN_STATE).unwrap();
    assert_eq!(plan, "claude-haiku,gpt-4o-mini");
    // Attempt 2 (gpt-4o-mini) gets the chat body, usage injected, at the chat path.
    let (body2, path2) =
        attempt_request(&p, plan, 2, "/v1/chat/completions", client.as_bytes()).unwrap();
    let v: Value = serde_json::from_slice(&body2).unwrap();
    assert_eq!(
        (
            v["model"].as_str(),
            v["stream_options"]["include_usage"].as_bool()
        ),
        (Some("gpt-4o-mini"), Some(true))
    );
    assert_eq!(path2, "/v1/chat/completions");
    assert_eq!(
        attempt_path(&p, plan, 2, "/v1/chat/completions").unwrap(),
        "/v1/chat/completions"
    );
    assert_eq!(
        attempt_path(&p, plan, 1, "/v1/chat/completions").unwrap(),
        "/v1/messages"
    );
    // The answer of attempt 1 is translated back; attempt 2's is not.
    assert!(ResponseTranslation::for_response(&p, &d, 1, 200, "text/event-stream").is_some());
    assert!(ResponseTranslation::for_response(&p, &d, 2, 200, "text/event-stream").is_none());
}

#[test]
fn a_messages_request_for_a_chat_model_is_translated() {
    let p = Policy::from_json(&MULTI.replace(
        r#""target": ["claude-haiku", "claude-sonnet"]"#,
        r#""target": ["gpt-4o-mini"]"#,
    ))
    .unwrap();
    let (d, a, note) = run(
        &p,
        "/v1/messages",
        &json!({"model": "auto", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(note.unwrap().to, Api::OpenaiChat);
    assert_eq!(header(&a, ":path"), Some("/v1/chat/completions"));
    let sent: Value = serde_json::from_slice(a.body.as_ref().unwrap()).unwrap();
    assert_eq!(sent["max_completion_tokens"], 50);
    let t = ResponseTranslation::for_response(&p, &d, 1, 200, "application/json").unwrap();
    let out: Value = serde_json::from_slice(&t.json(br#"{"id":"c","choices":[{"message":{"content":"yo"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#).unwrap()).unwrap();
    assert_eq!(out["content"][0]["text"], "yo");
    assert_eq!(out["type"], "message");
}

#[test]
fn untranslatable_requests_get_a_400_in_the_client_api() {
    let p = policy();
    let (_, a, _) = run(
        &p,
        "/v1/chat/completions",
        &json!({"model": "claude-haiku", "n": 3, "messages": [{"role": "user", "content": "hi"}]}),
    );
    let reply = a.reply.unwrap();
    assert_eq!(reply.status, 400);
    assert!(reply.body.contains("n = 3") && reply.body.contains("invalid_request_error"));
    assert!(a.body.is_none() && a.set_headers.is_empty());
}

#[test]
fn translate_false_keeps_todays_behaviour() {
    let p = Policy::from_json(&MULTI.replacen('{', r#"{"translate":false,"#, 1)).unwrap();
    let (d, _, note) = run(
        &p,
        "/v1/chat/completions",
        &json!({"model": "claude-haiku", "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert!(note.is_none());
    // The explicit Anthropic model is ignored; the rules send it to a chat model.
    let names: Vec<&str> = d
        .chain()
        .iter()
        .map(|id| p.model(*id).unwrap().name.as_str())
        .collect();
    assert_eq!(names, ["gpt-4o-mini", "gpt-4.1"]);
}

#[test]
fn a_translated_request_to_a_provider_goes_to_its_providers_path_and_retries_map_back() {
    // Chat client; first model an Anthropic Messages model on a provider,
    // then a chat model on a provider with a prefixed base path, then one
    // on a user cluster.
    let p = Policy::from_json(
        r#"{"providers": {"a": {"preset": "anthropic", "auth": {"file": "/k"}},
            "g": {"preset": "groq", "auth": {"file": "/k"}}},
           "models": {"claude": {"provider": "a", "provider_model": "claude-x", "api": "anthropic_messages", "context_window": 100000},
            "llama": {"provider": "g", "provider_model": "llama", "context_window": 100000},
            "own": {"cluster": "mine", "api": "anthropic_messages", "context_window": 100000}},
           "default": ["claude", "llama", "own"]}"#,
    )
    .unwrap();
    let client = "/proxy/v1/chat/completions";
    let body = json!({"model": "auto", "messages": [{"role": "user", "content": "hi"}]});
    let (d, a, note) = run(&p, client, &body);
    assert_eq!(note.map(|n| n.to), Some(Api::AnthropicMessages));
    assert_eq!(
        header(&a, ":path"),
        Some("/v1/messages"),
        "Anthropic's base path /v1"
    );
    assert_eq!(state(&a, CLIENT_PATH_STATE), Some(client));
    assert!(
        state(&a, CLIENT_BODY_STATE).is_some(),
        "the chain crosses APIs"
    );
    let plan = actions::plan(&p, d.chain());
    assert_eq!(
        attempt_path(&p, &plan, 2, client).as_deref(),
        Some("/openai/v1/chat/completions"),
        "groq's base path, natively"
    );
    assert_eq!(
        attempt_path(&p, &plan, 3, client).as_deref(),
        Some("/proxy/v1/messages"),
        "a user cluster keeps the client's prefix, the translated API's suffix"
    );
    let client_body = state(&a, CLIENT_BODY_STATE).unwrap();
    let (retry, path) = attempt_request(&p, &plan, 2, client, client_body.as_bytes()).unwrap();
    assert_eq!(path, "/openai/v1/chat/completions");
    let retry: Value = serde_json::from_slice(&retry).unwrap();
    assert_eq!(retry["model"], "llama");
}

/// `gpt-flex` (flex tier, keeps the client's), `gpt-low` (effort forced),
/// `gpt-std`, and `claude-fast` (an Anthropic variant), chained by header.
fn variants() -> Policy {
    let model = |set: Value, api: &str, cluster: &str| {
        let mut m = json!({"cluster": cluster, "provider_model": "m", "api": api, "context_window": 100000,
                           "max_output_tokens": 1000, "pricing": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}});
        if !set.is_null() {
            m["set"] = set;
        }
        m
    };
    let mut low = model(json!({"reasoning_effort": "low"}), "openai_chat", "openai");
    low["override"] = json!(true);
    let chain = |name: &str, models: &[&str]| json!({"name": name, "when": {"header": {"name": "x-chain", "equals": name}}, "target": models});
    Policy::from_json(
        &json!({
            "models": {
                "gpt-flex": model(json!({"service_tier": "flex"}), "openai_chat", "openai"),
                "gpt-low": low,
                "gpt-std": model(Value::Null, "openai_chat", "openai"),
                "claude-fast": model(json!({"service_tier": "standard_only"}), "anthropic_messages", "anthropic"),
            },
            "rules": [chain("flex", &["gpt-flex", "gpt-std"]), chain("low", &["gpt-low", "gpt-flex"]),
                      chain("claude", &["claude-fast", "gpt-std"]), chain("plain", &["gpt-std"])],
            "default": "gpt-std",
        })
        .to_string(),
    )
    .unwrap()
}

fn run_chain(p: &Policy, chain: &str, body: &Value) -> RequestActions {
    let text = body.to_string();
    let headers = Headers::from_pairs(&[("x-chain", chain)]);
    let path = "/v1/chat/completions";
    let d = decide(
        p,
        &Request {
            shape: ApiShape::ChatCompletions,
            path,
            headers: &headers,
            body: text.as_bytes(),
        },
    );
    request_actions(p, &d, path, text.as_bytes()).0
}

fn sent(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap()
}

#[test]
fn a_variant_sets_its_fields_on_the_first_attempt_only() {
    let p = variants();
    let body = json!({"model": "auto", "messages": [{"role": "user", "content": "hi"}]});
    let a = run_chain(&p, "flex", &body);
    assert_eq!(sent(a.body.as_ref().unwrap())["service_tier"], "flex");
    let plan = state(&a, crate::headers::CHAIN_STATE).unwrap();
    assert_eq!(plan, "gpt-flex,gpt-std");
    // The retry is built from the client's body, not attempt 1's replay.
    let client = state(&a, CLIENT_BODY_STATE).expect("a chain with variants keeps the body");
    assert_eq!(state(&a, CLIENT_PATH_STATE), Some("/v1/chat/completions"));
    let (retry, path) =
        attempt_request(&p, plan, 2, "/v1/chat/completions", client.as_bytes()).unwrap();
    assert_eq!(path, "/v1/chat/completions");
    let retry = sent(&retry);
    assert_eq!(retry["model"], "m");
    assert!(retry.get("service_tier").is_none(), "{retry}");
}

#[test]
fn a_retry_gets_its_own_variant_and_the_client_field_is_kept_unless_overridden() {
    let p = variants();
    let body = json!({"model": "auto", "reasoning_effort": "high", "service_tier": "auto",
                      "messages": [{"role": "user", "content": "hi"}]});
    let a = run_chain(&p, "low", &body);
    let first = sent(a.body.as_ref().unwrap());
    assert_eq!(first["reasoning_effort"], "low", "gpt-low overrides");
    assert_eq!(first["service_tier"], "auto");
    let client = state(&a, CLIENT_BODY_STATE).unwrap();
    let plan = state(&a, crate::headers::CHAIN_STATE).unwrap();
    let (retry, _) =
        attempt_request(&p, plan, 2, "/v1/chat/completions", client.as_bytes()).unwrap();
    let retry = sent(&retry);
    assert_eq!(
        retry["reasoning_effort"], "high",
        "gpt-low's value is not inherited"
    );
    assert_eq!(retry["service_tier"], "auto", "gpt-flex keeps the client's");
}

#[test]
fn a_translated_variant_sets_its_fields_in_the_upstream_api() {
    let p = variants();
    let body = json!({"model": "auto", "messages": [{"role": "user", "content": "hi"}]});
    let a = run_chain(&p, "claude", &body);
    assert_eq!(header(&a, ":path"), Some("/v1/messages"));
    let first = sent(a.body.as_ref().unwrap());
    assert_eq!(first["service_tier"], "standard_only");
    assert_eq!(first["max_tokens"], 1000, "an Anthropic body: {first}");
    let client = sent(state(&a, CLIENT_BODY_STATE).unwrap().as_bytes());
    assert!(client.get("service_tier").is_none() && client.get("max_tokens").is_none());
    // Anthropic variant as a retry: translated from the chat body, then set.
    let (retry, path) = attempt_request(
        &p,
        "gpt-std,claude-fast",
        2,
        "/v1/chat/completions",
        client.to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(path, "/v1/messages");
    assert_eq!(sent(&retry)["service_tier"], "standard_only");
}

#[test]
fn chains_without_variants_keep_no_client_body() {
    let p = variants();
    let body = json!({"model": "auto", "messages": [{"role": "user", "content": "hi"}]});
    let a = run_chain(&p, "plain", &body);
    assert!(state(&a, CLIENT_BODY_STATE).is_none());
    assert!(sent(a.body.as_ref().unwrap()).get("service_tier").is_none());
}
