//! Issue 7: property tests of the two promises the filter's safety rests on:
//! a rewritten body differs from the client's only in `model`, and a
//! decision never picks a model whose context window is too small when one
//! fits.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use model_router::decision::{decide, Outcome, Request};
use model_router::headers::Headers;
use model_router::policy::Policy;
use model_router::request::{self, ApiShape};
use model_router::rewrite::{json_string, set_model};
use proptest::prelude::*;
use serde_json::{json, Value};

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e6f64..1e6).prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{1,8}", inner), 0..5)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// Whitespace JSON allows between tokens.
fn ws() -> impl Strategy<Value = String> {
    "[ \t\r\n]{0,2}"
}

/// A JSON object written by hand: members in order, keys possibly repeated
/// (`model` 0–3 times, some written with an escape), arbitrary whitespace.
fn object_text() -> impl Strategy<Value = String> {
    let member = prop_oneof![
        3 => ("[a-z_]{1,8}", json_value()).prop_map(|(k, v)| (json_string(&k), v)),
        1 => (json_value(), any::<bool>()).prop_map(|(v, escaped)| {
            (if escaped { r#""mod\u0065l""#.to_string() } else { r#""model""#.to_string() }, v)
        }),
    ];
    (
        prop::collection::vec((member, ws(), ws(), ws()), 0..8),
        ws(),
        ws(),
    )
        .prop_map(|(members, lead, trail)| {
            let body: Vec<String> = members
                .into_iter()
                .map(|((key, value), a, b, c)| format!("{a}{key}{b}:{c}{value}"))
                .collect();
            format!("{lead}{{{}}}{trail}", body.join(","))
        })
}

fn without_model(value: &Value) -> Value {
    let mut value = value.clone();
    value.as_object_mut().unwrap().remove("model");
    value
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_rewritten_body_differs_only_in_model(body in object_text(), model in ".{0,20}") {
        let spans = request::model_spans(body.as_bytes()).unwrap();
        let out = set_model(body.as_bytes(), &spans, &json_string(&model));
        let before: Value = serde_json::from_str(&body).unwrap();
        let after: Value = serde_json::from_slice(&out).unwrap();
        prop_assert_eq!(after["model"].as_str(), Some(model.as_str()));
        prop_assert_eq!(without_model(&before), without_model(&after));
        // Every duplicate was replaced: no member still holds the client's value.
        let again = request::model_spans(&out).unwrap();
        prop_assert_eq!(again.len(), spans.len().max(1));
        for span in again {
            let v: Value = serde_json::from_slice(&out[span]).unwrap();
            prop_assert_eq!(v.as_str(), Some(model.as_str()));
        }
        // Bytes outside the model values are the client's.
        if !spans.is_empty() {
            let first = spans[0].start;
            prop_assert_eq!(&out[..first], &body.as_bytes()[..first]);
            let last = spans[spans.len() - 1].end;
            prop_assert!(out.ends_with(&body.as_bytes()[last..]));
        }
    }

    #[test]
    fn a_decision_never_picks_a_model_too_small_when_one_fits(
        windows in prop::collection::vec((1u64..4000, prop::option::of(1u64..500), any::<bool>(), 1u32..100), 1..6),
        chain in prop::collection::vec(0usize..6, 1..4),
        words in 0usize..1500,
        max_tokens in prop::option::of(0u64..800),
        tier in any::<bool>(),
    ) {
        let mut models = serde_json::Map::new();
        for (i, (window, max_out, cl100k, price)) in windows.iter().enumerate() {
            let mut m = json!({
                "cluster": format!("c{i}"),
                "context_window": window,
                "tier": "t",
                "pricing": {"input_per_mtok": f64::from(*price) / 10.0, "output_per_mtok": 1.0},
                "encoding": if *cl100k { "cl100k_base" } else { "o200k_base" },
            });
            if let Some(max_out) = max_out {
                m["max_output_tokens"] = json!(max_out);
            }
            models.insert(format!("m{i}"), m);
        }
        let chain: Vec<String> = chain.iter().map(|i| format!("m{}", i % windows.len())).collect();
        let mut chain_unique = chain.clone();
        chain_unique.dedup();
        let target = if tier { json!({"tier": "t"}) } else { json!(chain_unique) };
        let policy_json = json!({
            "models": models,
            "rules": [{"name": "r", "when": {"header": {"name": "x-r", "present": true}}, "target": target}],
            "default": chain_unique,
            "default_output_tokens": 100,
        })
        .to_string();
        let Ok(policy) = Policy::from_json(&policy_json) else {
            // Duplicates in a chain and the like are refused at load: nothing to decide.
            return Ok(());
        };
        let text = "lorem ipsum dolor sit amet ".repeat(words / 5 + 1);
        let mut body = json!({"model": "auto", "messages": [{"role": "user", "content": text}]});
        if let Some(n) = max_tokens {
            body["max_tokens"] = json!(n);
        }
        let body = body.to_string();
        let facts = request::parse("/v1/chat/completions", body.as_bytes()).unwrap();
        let fits = |name: &str| {
            let id = policy.model_by_name(name).unwrap();
            let m = policy.model(id).unwrap();
            let output = facts.max_output_tokens.or(m.max_output_tokens).unwrap_or(policy.default_output_tokens);
            facts.prompt_tokens(m.encoding).unwrap() + output <= m.context_window
        };
        let any_fits = policy.models.iter().any(|m| fits(&m.name));
        for headers in [Headers::new(), Headers::from_pairs(&[("x-r", "1")])] {
            let decision = decide(&policy, &Request {
                shape: ApiShape::ChatCompletions,
                path: "/v1/chat/completions",
                headers: &headers,
                body: body.as_bytes(),
            });
            match &decision.outcome {
                Outcome::Route { chain } => {
                    prop_assert!(!chain.is_empty());
                    for id in chain {
                        let name = &policy.model(*id).unwrap().name;
                        prop_assert!(fits(name), "{} is too small but was chosen ({:?})", name, decision);
                    }
                }
                Outcome::Reject { .. } => prop_assert!(!any_fits, "rejected though a model fits: {:?}", decision),
                Outcome::Passthrough { .. } => prop_assert!(false, "a valid body passed through"),
            }
        }
    }
}
