//! Issue 7: property tests of the promises the filter's safety rests on:
//! a rewritten body differs from the client's only in `model`; a decision
//! never picks a model whose context window is too small when one fits; and
//! (issue 6) counting tokens only as needed never changes a decision.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use model_router_core::decision::{decide, Outcome, Request};
use model_router_core::headers::Headers;
use model_router_core::policy::Policy;
use model_router_core::request::{self, ApiShape};
use model_router_core::rewrite::{json_string, set_model};
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

    #[test]
    fn counting_as_needed_decides_as_counting_always(
        windows in prop::collection::vec((1u64..6000, any::<bool>(), 1u32..100), 1..5),
        thresholds in prop::collection::vec((0u64..3000, 0u8..4), 0..4),
        words in 0usize..2000,
        images in 0usize..3,
        tier in any::<bool>(),
        budget in prop::option::of(0u32..200),
    ) {
        let mut models = serde_json::Map::new();
        for (i, (window, cl100k, price)) in windows.iter().enumerate() {
            models.insert(format!("m{i}"), json!({
                "cluster": format!("c{i}"),
                "context_window": window,
                "tier": "t",
                "pricing": {"input_per_mtok": f64::from(*price), "output_per_mtok": 1.0},
                "encoding": if *cl100k { "cl100k_base" } else { "o200k_base" },
            }));
        }
        let names: Vec<String> = (0..windows.len()).map(|i| format!("m{i}")).collect();
        let rules: Vec<Value> = thresholds.iter().enumerate().map(|(i, (n, op))| {
            let test = match op {
                0 => json!({"lt": n}),
                1 => json!({"gt": n}),
                2 => json!({"gte": n, "lte": n + 300}),
                _ => json!({"lte": n}),
            };
            let target = if tier { json!({"tier": "t"}) } else { json!([names[i % names.len()]]) };
            json!({"name": format!("r{i}"), "when": {"prompt_tokens": test}, "target": target})
        }).collect();
        let mut policy_json = json!({
            "models": models,
            "rules": rules,
            "default": names,
            "default_output_tokens": 100,
            "budget_header": "x-budget",
        });
        let Ok(always) = Policy::from_json(&policy_json.to_string()) else {
            return Ok(()); // e.g. `lt: 0`, refused at load: nothing to decide
        };
        policy_json["token_counting"] = json!("as_needed");
        let as_needed = Policy::from_json(&policy_json.to_string()).unwrap();

        let text = "the quick brown fox, naïve résumé 42 ".repeat(words / 8 + 1);
        let mut content = vec![json!({"type": "text", "text": text})];
        for _ in 0..images {
            content.push(json!({"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}}));
        }
        let body = json!({"model": "auto", "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": content}]}).to_string();
        let mut headers = Headers::new();
        if let Some(b) = budget {
            headers = Headers::from_pairs(&[("x-budget", &format!("0.{b:05}"))]);
        }
        let request = Request {
            shape: ApiShape::ChatCompletions,
            path: "/v1/chat/completions",
            headers: &headers,
            body: body.as_bytes(),
        };
        let exact = decide(&always, &request);
        let lazy = decide(&as_needed, &request);
        prop_assert_eq!(&lazy.outcome, &exact.outcome);
        prop_assert_eq!(lazy.decided_by, exact.decided_by);
        prop_assert_eq!(lazy.escalated, exact.escalated);
        prop_assert_eq!(lazy.budget_clamped, exact.budget_clamped);
        // Whatever as_needed reports, it counted exactly.
        if let Some(n) = lazy.prompt_tokens {
            prop_assert_eq!(Some(n), exact.prompt_tokens);
        }
        for (model, n) in &lazy.chain_prompt_tokens {
            prop_assert_eq!(Some(*n), exact.prompt_tokens_for(*model));
        }
        if lazy.estimated_cost.is_some() {
            prop_assert_eq!(lazy.estimated_cost, exact.estimated_cost);
        }
    }
}
