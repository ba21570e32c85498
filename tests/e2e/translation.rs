//! Translation between API families through the real Envoy, with the
//! official `openai` and `anthropic` Python SDKs as clients
//! (`tests/sdk/translation.py`) and mock providers answering natively.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::*;
use crate::sdk::{self, Sdk};

fn policy() -> String {
    let rule = |name: &str, value: &str, target: &[&str]| json!({"name": name, "when": {"header": {"name": "x-route", "equals": value}}, "target": target});
    json!({
        "models": {
            "gpt-mini": {"cluster": "openai", "provider_model": "gpt-4o-mini", "context_window": 128000,
                         "pricing": {"input_per_mtok": 0.15, "output_per_mtok": 0.6}},
            "claude-haiku": {"cluster": "anthropic", "provider_model": "claude-3-5-haiku-latest", "api": "anthropic_messages",
                             "context_window": 200000, "max_output_tokens": 512,
                             "pricing": {"input_per_mtok": 0.8, "output_per_mtok": 4.0}}
        },
        "requested_model": {"aliases": ["auto", "router/cheap"], "honor_explicit_model": false},
        "rules": [
            rule("to-anthropic", "anthropic", &["claude-haiku", "gpt-mini"]),
            rule("anthropic-only", "anthropic-only", &["claude-haiku"]),
            rule("to-openai", "openai", &["gpt-mini", "claude-haiku"]),
        ],
        "default": ["gpt-mini"],
        "tenant_header": "x-tenant",
        "tenants": ["billing"],
        "retry": {"retriable_status_codes": [429, 500, 502, 503, 504, 529]}
    })
    .to_string()
}

/// Runs the cross-API SDK script on `cases`; one result per case, in order.
fn run_sdk(envoy: &Envoy, cases: &[Value]) -> Vec<Value> {
    let input = json!({"base_url": envoy.url(""), "cases": cases});
    sdk::run(Sdk::CrossApi, &input, Duration::from_secs(180))
}

fn case(sdk: &str, kind: &str, route: &str, extra: &[(&str, &str)]) -> Value {
    let id = new_id();
    let mut headers = json!({"x-route": route, "x-test-id": id});
    for (k, v) in extra {
        headers[*k] = json!(v);
    }
    json!({"id": id, "sdk": sdk, "kind": kind, "model": "auto", "headers": headers})
}

fn ok(r: &Value) -> &Value {
    assert_eq!(
        r["ok"],
        true,
        "{}",
        serde_json::to_string_pretty(r).unwrap()
    );
    r
}

/// The one request the mock recorded for a case.
fn sent(mock: &Mock, c: &Value) -> Vec<Value> {
    mock.requests_for(c["id"].as_str().unwrap())
}

fn body_of(record: &Value) -> Value {
    serde_json::from_str(record["body"].as_str().unwrap()).unwrap()
}

#[test]
fn openai_sdk_served_by_an_anthropic_model() {
    let (oa, an) = (Mock::start("oa"), Mock::start("an"));
    let envoy = Envoy::start(&policy(), vec![("openai", &oa), ("anthropic", &an)]);
    let kinds = [
        "plain",
        "multi_turn",
        "image",
        "structured",
        "tools",
        "stream",
        "stream_tools",
    ];
    let cases: Vec<Value> = kinds
        .iter()
        .map(|k| case("openai", k, "anthropic", &[]))
        .collect();
    let results = run_sdk(&envoy, &cases);
    for (c, r) in cases.iter().zip(&results) {
        let r = ok(r);
        let records = sent(&an, c);
        assert!(!records.is_empty() && sent(&oa, c).is_empty(), "{c}");
        for rec in &records {
            assert_eq!(rec["path"], "/v1/messages");
            let body = body_of(rec);
            assert_eq!(body["model"], "claude-3-5-haiku-latest");
            assert_eq!(body["max_tokens"], 512, "the model's max_output_tokens");
        }
        let body = body_of(&records[0]);
        match c["kind"].as_str().unwrap() {
            "plain" => {
                assert_eq!(body["system"], "Be brief.");
                assert_eq!(r["object"], "chat.completion");
                assert!(
                    r["text"]
                        .as_str()
                        .unwrap()
                        .starts_with("[an] claude-3-5-haiku-latest says:"),
                    "{r}"
                );
                assert_eq!(r["finish_reason"], "stop");
                assert_eq!(r["headers"]["x-model-router-model"], "claude-haiku");
                assert!(r["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
            }
            "multi_turn" => {
                let roles: Vec<&str> = body["messages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m["role"].as_str().unwrap())
                    .collect();
                assert_eq!(roles, ["user", "assistant", "user"]);
            }
            "image" => {
                let content = &body["messages"][0]["content"];
                assert_eq!(content[1]["source"]["type"], "base64");
                assert_eq!(content[1]["source"]["media_type"], "image/png");
                assert_eq!(
                    content[2]["source"],
                    json!({"type": "url", "url": "https://example.com/cat.png"})
                );
            }
            "structured" => {
                assert_eq!(body["output_config"]["format"]["type"], "json_schema");
                assert_eq!(
                    body["output_config"]["format"]["schema"]["required"],
                    json!(["answer"])
                );
            }
            "tools" => {
                assert_eq!(r["finish_reason"], "tool_calls");
                assert_eq!(r["tool_calls"][0]["function"]["name"], "get_weather");
                assert_eq!(
                    r["tool_calls"][0]["function"]["arguments"],
                    "{\"city\":\"Paris\"}"
                );
                assert_eq!(
                    body["tools"][0]["input_schema"]["required"],
                    json!(["city"])
                );
                // The second request carries the call and its result, Anthropic-style.
                let second = body_of(&records[1]);
                let msgs = second["messages"].as_array().unwrap();
                assert_eq!(msgs[1]["content"][0]["type"], "tool_use");
                assert_eq!(msgs[1]["content"][0]["input"], json!({"city": "Paris"}));
                assert_eq!(msgs[2]["content"][0]["type"], "tool_result");
                assert_eq!(
                    msgs[2]["content"][0]["tool_use_id"],
                    r["tool_calls"][0]["id"]
                );
                assert!(r["text"].as_str().unwrap().contains("says:"));
            }
            "stream" => {
                assert_eq!(body["stream"], true);
                assert!(r["text"]
                    .as_str()
                    .unwrap()
                    .starts_with("[an] claude-3-5-haiku-latest says:"));
                assert!(r["chunks"].as_u64().unwrap() > 5);
                assert_eq!(r["finish_reason"], "stop");
                assert!(
                    r["usage"]["completion_tokens"].as_u64().unwrap() > 0,
                    "final usage chunk: {r}"
                );
            }
            "stream_tools" => {
                assert_eq!(r["finish_reason"], "tool_calls");
                assert_eq!(
                    r["tool_calls"][0]["function"]["arguments"], "{\"city\":\"Paris\"}",
                    "deltas reassemble"
                );
                assert_eq!(r["tool_calls"][0]["function"]["name"], "get_weather");
            }
            _ => unreachable!(),
        }
    }
}

#[test]
fn anthropic_sdk_served_by_an_openai_model() {
    let (oa, an) = (Mock::start("oa"), Mock::start("an"));
    let envoy = Envoy::start(&policy(), vec![("openai", &oa), ("anthropic", &an)]);
    let kinds = [
        "plain",
        "multi_turn",
        "image",
        "structured",
        "tools",
        "stream",
        "stream_tools",
    ];
    let cases: Vec<Value> = kinds
        .iter()
        .map(|k| case("anthropic", k, "openai", &[]))
        .collect();
    let results = run_sdk(&envoy, &cases);
    for (c, r) in cases.iter().zip(&results) {
        let r = ok(r);
        let records = sent(&oa, c);
        assert!(!records.is_empty() && sent(&an, c).is_empty(), "{c}");
        assert_eq!(records[0]["path"], "/v1/chat/completions");
        let body = body_of(&records[0]);
        assert_eq!(body["model"], "gpt-4o-mini");
        assert_eq!(body["max_completion_tokens"], 64);
        match c["kind"].as_str().unwrap() {
            "plain" => {
                assert_eq!(
                    body["messages"][0],
                    json!({"role": "system", "content": "Be brief."})
                );
                assert_eq!(r["type"], "message");
                assert!(
                    r["text"]
                        .as_str()
                        .unwrap()
                        .starts_with("[oa] gpt-4o-mini says:"),
                    "{r}"
                );
                assert_eq!(r["stop_reason"], "end_turn");
                assert!(r["usage"]["input_tokens"].as_u64().unwrap() > 0);
                assert_eq!(r["headers"]["x-model-router-model"], "gpt-mini");
            }
            "multi_turn" => assert_eq!(body["messages"].as_array().unwrap().len(), 4),
            "image" => {
                let parts = &body["messages"][1]["content"];
                assert!(parts[0]["image_url"]["url"]
                    .as_str()
                    .unwrap()
                    .starts_with("data:image/png;base64,"));
                assert_eq!(parts[1]["image_url"]["url"], "https://example.com/cat.png");
            }
            "structured" => assert_eq!(body["response_format"]["type"], "json_schema"),
            "tools" => {
                assert_eq!(r["stop_reason"], "tool_use");
                assert_eq!(r["tool_calls"][0]["input"], json!({"city": "Paris"}));
                let second = body_of(&records[1]);
                let msgs = second["messages"].as_array().unwrap();
                assert_eq!(msgs[1]["tool_calls"][0]["function"]["name"], "get_weather");
                assert_eq!(msgs[2]["role"], "tool");
                assert_eq!(msgs[2]["tool_call_id"], r["tool_calls"][0]["id"]);
            }
            "stream" => {
                assert_eq!(body["stream_options"]["include_usage"], true);
                let events: Vec<&str> = r["events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e.as_str().unwrap())
                    .collect();
                assert_eq!(events.first(), Some(&"message_start"));
                assert_eq!(events.last(), Some(&"message_stop"));
                assert!(r["text"]
                    .as_str()
                    .unwrap()
                    .starts_with("[oa] gpt-4o-mini says:"));
                assert!(r["usage"]["output_tokens"].as_u64().unwrap() > 0);
                assert!(r["usage"]["input_tokens"].as_u64().unwrap() > 0);
            }
            "stream_tools" => {
                assert_eq!(r["stop_reason"], "tool_use");
                assert_eq!(
                    r["tool_calls"][0]["input"],
                    json!({"city": "Paris"}),
                    "deltas reassemble"
                );
            }
            _ => unreachable!(),
        }
    }
}

#[test]
fn errors_fallbacks_across_apis_responses_and_models() {
    let (oa, an) = (Mock::start("oa"), Mock::start("an"));
    let envoy = Envoy::start(&policy(), vec![("openai", &oa), ("anthropic", &an)]);
    let cases = vec![
        case(
            "openai",
            "error",
            "anthropic",
            &[("x-mock-fault", "an=400")],
        ),
        case(
            "openai",
            "plain",
            "anthropic",
            &[("x-mock-fault", "an=429")],
        ),
        case(
            "openai",
            "error",
            "anthropic-only",
            &[("x-mock-fault", "an=529")],
        ),
        case(
            "openai",
            "stream",
            "anthropic",
            &[("x-mock-fault", "an=529")],
        ),
        case(
            "anthropic",
            "error",
            "openai",
            &[("x-mock-fault", "oa=400")],
        ),
        case(
            "anthropic",
            "plain",
            "openai",
            &[("x-mock-fault", "oa=429")],
        ),
        case(
            "anthropic",
            "stream",
            "openai",
            &[("x-mock-fault", "oa=503")],
        ),
        case("openai", "responses", "openai", &[]),
        case("openai", "responses_stream", "openai", &[]),
        case("openai", "responses", "anthropic-only", &[]),
        json!({"id": "m1", "sdk": "openai", "kind": "models", "retrieve": "claude-haiku"}),
        json!({"id": "m2", "sdk": "anthropic", "kind": "models"}),
    ];
    let r = run_sdk(&envoy, &cases);
    // 400 from Anthropic: an OpenAI error for the OpenAI client, status kept.
    assert_eq!(
        (r[0]["ok"].as_bool(), r[0]["status"].as_u64()),
        (Some(false), Some(400)),
        "{}",
        r[0]
    );
    assert_eq!(r[0]["error_type"], "BadRequestError");
    assert_eq!(
        r[0]["response_json"]["error"]["type"],
        "invalid_request_error"
    );
    // 429 from Anthropic: the chain falls back to the chat model, answered natively.
    let fell = ok(&r[1]);
    assert_eq!(fell["headers"]["x-model-router-model"], "gpt-mini");
    assert!(fell["text"]
        .as_str()
        .unwrap()
        .starts_with("[oa] gpt-4o-mini says:"));
    let (a, o) = (sent(&an, &cases[1]), sent(&oa, &cases[1]));
    assert_eq!((a.len(), o.len()), (1, 1));
    assert_eq!(
        (a[0]["path"].as_str(), o[0]["path"].as_str()),
        (Some("/v1/messages"), Some("/v1/chat/completions"))
    );
    assert_eq!(
        body_of(&o[0])["messages"][1],
        json!({"role": "user", "content": "Hello!"}),
        "attempt 2 is the client's chat body"
    );
    assert_eq!(body_of(&o[0])["model"], "gpt-4o-mini");
    // 529 overloaded with nowhere to go: status kept, an OpenAI error.
    assert_eq!(r[2]["status"], 529, "{}", r[2]);
    assert_eq!(r[2]["response_json"]["error"]["code"], "overloaded_error");
    // 529 stays retriable: a stream falls back across APIs.
    let s = ok(&r[3]);
    assert!(
        s["text"]
            .as_str()
            .unwrap()
            .starts_with("[oa] gpt-4o-mini says:"),
        "{s}"
    );
    // Anthropic client: OpenAI's 400 becomes an Anthropic error.
    assert_eq!(r[4]["status"], 400);
    assert_eq!(
        r[4]["response_json"],
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": r[4]["response_json"]["error"]["message"]}})
    );
    // ...and 429 / 503 fall back to the Anthropic model, answered natively.
    assert!(ok(&r[5])["text"]
        .as_str()
        .unwrap()
        .starts_with("[an] claude-3-5-haiku-latest says:"));
    assert_eq!(r[5]["headers"]["x-model-router-model"], "claude-haiku");
    assert!(ok(&r[6])["text"]
        .as_str()
        .unwrap()
        .starts_with("[an] claude-3-5-haiku-latest says:"));
    // Responses served by the chat model, plain and streamed, and through chat by the Anthropic model.
    let resp = ok(&r[7]);
    assert_eq!(
        (resp["object"].as_str(), resp["status"].as_str()),
        (Some("response"), Some("completed"))
    );
    assert!(resp["text"]
        .as_str()
        .unwrap()
        .starts_with("[oa] gpt-4o-mini says:"));
    assert_eq!(sent(&oa, &cases[7])[0]["path"], "/v1/chat/completions");
    assert_eq!(
        body_of(&sent(&oa, &cases[7])[0])["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    let st = ok(&r[8]);
    assert!(st["text"]
        .as_str()
        .unwrap()
        .starts_with("[oa] gpt-4o-mini says:"));
    assert_eq!(
        st["events"].as_array().unwrap().last().unwrap(),
        "response.completed"
    );
    assert!(st["usage"]["output_tokens"].as_u64().unwrap() > 0);
    assert!(ok(&r[9])["text"]
        .as_str()
        .unwrap()
        .starts_with("[an] claude-3-5-haiku-latest says:"));
    assert_eq!(sent(&an, &cases[9])[0]["path"], "/v1/messages");
    // Models: the policy's models and aliases, nothing sent upstream.
    // (json! sorts the policy's keys: claude-haiku comes first.)
    let ids = json!(["claude-haiku", "gpt-mini", "auto", "router/cheap"]);
    assert_eq!(ok(&r[10])["ids"], ids);
    assert_eq!(r[10]["one"], "claude-haiku");
    assert_eq!(ok(&r[11])["ids"], ids);
    assert!(oa
        .requests()
        .iter()
        .chain(an.requests().iter())
        .all(|rec| !rec["path"].as_str().unwrap().contains("models")));
}

#[test]
fn translated_usage_is_billed_exactly_from_the_native_usage() {
    let (oa, an) = (Mock::start("oa"), Mock::start("an"));
    let envoy = Envoy::start(&policy(), vec![("openai", &oa), ("anthropic", &an)]);
    let billing = [("x-tenant", "billing")];
    let cases = vec![
        case("openai", "plain", "anthropic", &billing),
        case("openai", "stream", "anthropic", &billing),
        case("anthropic", "plain", "openai", &billing),
        case("anthropic", "stream", "openai", &billing),
    ];
    let r = run_sdk(&envoy, &cases);
    let (mut claude, mut gpt) = ((0, 0), (0, 0));
    for (i, result) in r.iter().enumerate() {
        let u = &ok(result)["usage"];
        if i < 2 {
            claude.0 += u["prompt_tokens"].as_u64().unwrap();
            claude.1 += u["completion_tokens"].as_u64().unwrap();
        } else {
            gpt.0 += u["input_tokens"].as_u64().unwrap();
            gpt.1 += u["output_tokens"].as_u64().unwrap();
        }
    }
    let metric = |name: &str, model: &str| -> u64 {
        scrape(&envoy)
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && l.get("model").map(String::as_str) == Some(model)
                    && l.get("tenant").map(String::as_str) == Some("billing")
            })
            .map(|(_, _, v)| *v)
            .sum()
    };
    assert_eq!(
        metric("model_router_prompt_tokens_total", "claude-haiku"),
        claude.0
    );
    assert_eq!(
        metric("model_router_completion_tokens_total", "claude-haiku"),
        claude.1
    );
    assert_eq!(
        metric("model_router_prompt_tokens_total", "gpt-mini"),
        gpt.0
    );
    assert_eq!(
        metric("model_router_completion_tokens_total", "gpt-mini"),
        gpt.1
    );
    assert_eq!(metric("model_router_requests_total", "claude-haiku"), 2);
    // Cost at the serving model's prices: 0.8 and 4 USD per million.
    let cost = metric("model_router_cost_micro_usd_total", "claude-haiku");
    let expected = (claude.0 as f64 * 0.8 + claude.1 as f64 * 4.0).round() as u64;
    assert!(cost.abs_diff(expected) <= 2, "{cost} vs {expected}");
    let translated: u64 = scrape(&envoy)
        .iter()
        .filter(|(n, _, _)| n == "model_router_translated_requests_total")
        .map(|(_, _, v)| *v)
        .sum();
    assert_eq!(translated, 4);
    // The audit record names the translation and bills the native usage.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let records: Vec<Value> = loop {
        let records: Vec<Value> = std::fs::read_to_string(&envoy.access_log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|l| serde_json::from_str(l["decision"].as_str()?).ok())
            .collect();
        if records.len() >= 4 || std::time::Instant::now() > deadline {
            break records;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let to_anthropic: Vec<&Value> = records
        .iter()
        .filter(|r| r["translation"]["to"] == "anthropic_messages")
        .collect();
    assert_eq!(to_anthropic.len(), 2, "{records:#?}");
    assert_eq!(to_anthropic[0]["translation"]["from"], "openai_chat");
    assert_eq!(to_anthropic[0]["billed"]["usage_source"], "reported");
}
