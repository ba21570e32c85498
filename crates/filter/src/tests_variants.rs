//! Model variants in the filter's lifecycle, over the in-memory host: the
//! first attempt carries its model's `set` fields, a retry is rebuilt from
//! the client's body so it never inherits them, and gets its own.

use std::rc::Rc;

use model_router_core::headers::{CHAIN_STATE, CLIENT_BODY_STATE, CLIENT_PATH_STATE};
use serde_json::Value;

use crate::downstream::Downstream;
use crate::fake::FakeHost;
use crate::host::{Flow, Host};
use crate::root::{configure, Role, Shared};
use crate::upstream::Upstream;

const POLICY: &str = r#"{
  "models": {
    "gpt-flex": {"cluster": "openai", "provider_model": "gpt-5", "context_window": 400000,
                 "set": {"service_tier": "flex"},
                 "pricing": {"input_per_mtok": 0.625, "output_per_mtok": 5.0}},
    "gpt-low": {"cluster": "openai", "provider_model": "gpt-5", "context_window": 400000,
                "set": {"reasoning_effort": "low"}, "override": true,
                "pricing": {"input_per_mtok": 1.25, "output_per_mtok": 10.0}},
    "gpt-std": {"cluster": "backup", "provider_model": "gpt-5", "context_window": 400000,
                "pricing": {"input_per_mtok": 1.25, "output_per_mtok": 10.0}}
  },
  "requested_model": {"aliases": ["auto"]},
  "rules": [{"name": "low", "when": {"header": {"name": "x-chain", "equals": "low"}},
             "target": ["gpt-low", "gpt-flex"]}],
  "default": ["gpt-flex", "gpt-std"]
}"#;

fn shared(role: Role) -> Rc<Shared> {
    Rc::new(configure(&FakeHost::default(), POLICY.as_bytes(), role).unwrap())
}

fn routed(body: &str, chain: &str) -> FakeHost {
    let length = body.len().to_string();
    let host = FakeHost::with_request(
        &[
            (":method", "POST"),
            (":path", "/v1/chat/completions"),
            ("content-length", &length),
            ("x-chain", chain),
        ],
        body,
    );
    let mut filter = Downstream::new(Some(shared(Role::Routing)));
    assert_eq!(filter.on_request_headers(&host, false), Flow::Pause);
    assert_eq!(
        filter.on_request_body(&host, body.len(), true),
        Flow::Continue
    );
    host
}

/// Attempt 2 as Envoy sends it: attempt 1's body replayed, through the upstream filter.
fn retried(first: &FakeHost) -> (FakeHost, Value) {
    let retry = first.next(
        &[
            (":method", "POST"),
            (":path", "/v1/chat/completions"),
            ("x-envoy-attempt-count", "2"),
        ],
        &first.body(),
    );
    for name in [CHAIN_STATE, CLIENT_PATH_STATE, CLIENT_BODY_STATE] {
        if let Some(value) = first.filter_state_value(name) {
            retry.set_filter_state(name, &value);
        }
    }
    let mut upstream = Upstream::new(Some(shared(Role::Upstream)));
    assert_eq!(upstream.on_request_headers(&retry, false), Flow::Pause);
    let size = retry.state.borrow().request_body.len();
    assert_eq!(upstream.on_request_body(&retry, size, true), Flow::Continue);
    let sent: Value = serde_json::from_str(&retry.body()).unwrap();
    assert_eq!(
        retry.request_header("content-length"),
        Some(retry.body().len().to_string())
    );
    (retry, sent)
}

#[test]
fn attempt_one_is_flex_and_its_retry_is_not() {
    let first = routed(
        r#"{"model":"auto","messages":[{"role":"user","content":"hi"}]}"#,
        "",
    );
    let sent: Value = serde_json::from_str(&first.body()).unwrap();
    assert_eq!(
        (sent["model"].as_str(), sent["service_tier"].as_str()),
        (Some("gpt-5"), Some("flex"))
    );
    let (_, retry) = retried(&first);
    assert_eq!(retry["model"], "gpt-5");
    assert!(retry.get("service_tier").is_none(), "inherited: {retry}");
    assert_eq!(retry["messages"][0]["content"], "hi");
}

#[test]
fn a_retry_gets_its_own_variant_and_keeps_the_clients_fields() {
    let first = routed(
        r#"{"model":"auto","reasoning_effort":"high","service_tier":"priority","messages":[{"role":"user","content":"hi"}]}"#,
        "low",
    );
    let sent: Value = serde_json::from_str(&first.body()).unwrap();
    assert_eq!(sent["reasoning_effort"], "low", "gpt-low overrides");
    assert_eq!(sent["service_tier"], "priority");
    let (_, retry) = retried(&first);
    assert_eq!(retry["reasoning_effort"], "high", "the client's again");
    assert_eq!(
        retry["service_tier"], "priority",
        "gpt-flex keeps the client's"
    );
}
