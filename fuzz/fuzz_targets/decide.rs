//! Request body parsing and the routing decision, with the example policy:
//! any bytes as a chat or legacy-completions body, with and without the
//! routing headers the policy reads. Checks what the filter relies on:
//! `decide` and `request_actions` never panic, a rewritten body is still a
//! JSON object whose only change is `model` (and `stream_options` when usage
//! is injected), and a routed chain is never empty.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use model_router_core::actions::{attempt_body, plan, request_actions};
use model_router_core::decision::{decide, Outcome, Request};
use model_router_core::headers::Headers;
use model_router_core::policy::Policy;
use model_router_core::request::ApiShape;
use serde_json::Value;

fn policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        Policy::from_json(include_str!("../../examples/policy.json")).expect("example policy")
    })
}

fn without(value: &Value, keys: &[&str]) -> Value {
    let mut value = value.clone();
    if let Value::Object(map) = &mut value {
        for key in keys {
            map.remove(*key);
        }
    }
    value
}

fuzz_target!(|body: &[u8]| {
    let policy = policy();
    let plain = Headers::new();
    let routed = Headers::from_pairs(&[
        ("x-task", "code"),
        ("x-team", "fuzz"),
        ("x-model-router-max-cost-usd", "0.0001"),
    ]);
    for (shape, path, headers) in [
        (ApiShape::ChatCompletions, "/v1/chat/completions", &plain),
        (ApiShape::Completions, "/v1/completions", &routed),
    ] {
        let decision = decide(
            policy,
            &Request {
                shape,
                path,
                headers,
                body,
            },
        );
        let actions = request_actions(policy, &decision, body);
        if let Outcome::Route { chain } = &decision.outcome {
            assert!(!chain.is_empty(), "a routed request has a model");
            let new_body = actions
                .body
                .as_deref()
                .expect("a routed request is rewritten");
            // The router only rewrites what it could parse: a JSON object.
            // It only skips the fields it does not read (no depth limit, no
            // check of escapes), so serde_json's Value may refuse what it
            // routed: the 128-level limit, a lone surrogate (\udc00) in an
            // unread string. The rewrite target checks those bytewise.
            let Ok(before) = serde_json::from_slice::<Value>(body) else {
                continue;
            };
            let after: Value = serde_json::from_slice(new_body).expect("rewritten body is JSON");
            let model = policy.model(chain[0]).expect("chain models exist");
            assert_eq!(after["model"].as_str(), Some(model.provider_model.as_str()));
            let keys = ["model", "stream_options"];
            assert_eq!(without(&before, &keys), without(&after, &keys));
            // Each retry attempt's body: only the model differs again.
            let plan = plan(policy, chain);
            for attempt in 2..=u32::try_from(chain.len()).unwrap_or(1) {
                let retry = attempt_body(policy, &plan, attempt, new_body).expect("retry body");
                let retry: Value = serde_json::from_slice(&retry).expect("retry body is JSON");
                assert_eq!(without(&retry, &["model"]), without(&after, &["model"]));
            }
        }
    }
});
