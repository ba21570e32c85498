//! `examples/policy.schema.json` documents the policy contract: every example
//! policy passes it and the compiler, and on a table of small policies the
//! schema and `Policy::from_json` agree.

use model_router_core::policy::Policy;
use serde_json::{json, Value};

use crate::{example_policies, read, relative};

pub fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(&read("examples/policy.schema.json")).unwrap();
    jsonschema::draft202012::new(&schema)
        .expect("examples/policy.schema.json is a valid JSON Schema")
}

/// The schema's complaints about `policy`, empty when it conforms.
pub fn schema_errors(validator: &jsonschema::Validator, policy: &Value) -> Vec<String> {
    validator
        .iter_errors(policy)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn example_policies_pass_the_schema_and_the_compiler() {
    let validator = validator();
    for path in example_policies() {
        let text = std::fs::read_to_string(&path).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        let errors = schema_errors(&validator, &value);
        assert!(errors.is_empty(), "{}: {errors:#?}", relative(&path));
        Policy::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", relative(&path)));
    }
}

fn minimal() -> Value {
    json!({
        "models": {"small": {"cluster": "c1", "context_window": 8000, "tier": "s"},
                   "large": {"cluster": "c2", "context_window": 128000}},
        "default": "small",
    })
}

/// `minimal()` with `path` (dot-separated object keys) set to `value`.
fn with(path: &str, value: Value) -> Value {
    let mut policy = minimal();
    let mut at = &mut policy;
    let keys: Vec<&str> = path.split('.').collect();
    for key in &keys[..keys.len() - 1] {
        at = at.as_object_mut().unwrap().entry(*key).or_insert(json!({}));
    }
    at[keys[keys.len() - 1]] = value;
    policy
}

/// Uses every field the schema documents that the compiler accepts today.
fn everything() -> Value {
    json!({
        "mode": "shadow",
        "models": {
            "small": {"cluster": "c1", "provider_model": "vendor/small-v1", "tier": "s", "context_window": 8000,
                      "max_output_tokens": 2000, "encoding": "cl100k_base",
                      "pricing": {"input_per_mtok": 0.1, "output_per_mtok": 0.2, "cached_input_per_mtok": 0.05}},
            "large": {"cluster": "c2", "tier": "l", "context_window": 128000, "pricing": {"input_per_mtok": 2, "output_per_mtok": 8}},
            "cached": {"cluster": "c3", "context_window": 200000,
                       "pricing": {"input_per_mtok": 3, "output_per_mtok": 15, "cached_input_per_mtok": 0.3,
                                   "cache_write_per_mtok": 3.75, "cache_write_1h_per_mtok": 6,
                                   "long_context": {"above_prompt_tokens": 100000, "input_per_mtok": 6, "output_per_mtok": 22.5,
                                                    "cached_input_per_mtok": 0.6, "cache_write_per_mtok": 7.5,
                                                    "cache_write_1h_per_mtok": 12}}},
            "from-catalog": {"cluster": "c4", "catalog": "anthropic/claude-sonnet-4",
                             "pricing": {"output_per_mtok": 14, "long_context": {"above_prompt_tokens": 150000}}},
            "claude-3-5-haiku": {"cluster": "c4", "pricing": "catalog"},
            "large-flex": {"cluster": "c2", "provider_model": "large", "context_window": 128000,
                           "set": {"service_tier": "flex", "reasoning_effort": "low"}, "override": true,
                           "pricing": {"input_per_mtok": 1, "output_per_mtok": 4}},
        },
        "default_encoding": "o200k_base",
        "default_output_tokens": 256,
        "tasks": {"code": {"keywords": ["function"], "patterns": ["```"], "scan": "all_user"},
                  "faq": {"keywords": ["refund"]}},
        "task_header": "x-task",
        "rules": [
            {"name": "a", "when": {"all": [{"task": "code"}, {"prompt_tokens": {"gt": 10, "lte": 7000}}]}, "target": ["small", "large"]},
            {"name": "b", "when": {"any": [{"task": {"in": ["faq"]}}, {"not": {"stream": true}}]}, "target": {"tier": "l"}},
            {"name": "c", "when": {"header": {"name": "x-team", "in": ["a", "b"]}}, "target": "large"},
            {"name": "d", "when": {"header": {"name": "x-plan", "matches": "^pro"}}, "target": "large"},
            {"name": "e", "when": {"requested_model": {"equals": "large"}}, "target": "large"},
            {"name": "f", "when": {"path": {"prefix": "/v1/"}}, "target": "small"},
            {"name": "g", "when": {"any": [{"structured_output": true}, {"tools": true}, {"images": false},
                                          {"messages": {"lt": 3}}, {"max_output_tokens": {"gte": 100}}]}, "target": "small"},
            {"name": "h", "target": "small"},
        ],
        "default": ["small", "large"],
        "cluster_header": "x-cluster",
        "budget_header": "x-budget",
        "on_context_overflow": "reject",
        "on_budget_exceeded": "reject",
        "on_invalid_request": "reject",
        "requested_model": {"aliases": ["auto"], "honor_explicit_model": true},
        "response_headers": false,
        "retry": {"per_try_timeout_ms": 1000, "timeout_ms": 5000, "base_interval_ms": 10, "max_interval_ms": 100,
                  "retriable_status_codes": [429, 503]},
        "baseline_model": "large",
        "tenant_header": "x-team",
        "tenants": ["a", "b"],
        "max_tenants": 10,
        "stream_usage": "off",
    })
}

#[test]
fn the_schema_and_the_compiler_agree() {
    let validator = validator();
    let cases: Vec<(&str, Value, bool)> = vec![
        ("minimal", minimal(), true),
        ("every documented field", everything(), true),
        (
            "unknown top-level field",
            with("colour", json!("blue")),
            false,
        ),
        (
            "unknown model field",
            with("models.small.colour", json!(1)),
            false,
        ),
        ("no models", with("models", json!({})), false),
        (
            "a variant's set is an object",
            with("models.small.set", json!("flex")),
            false,
        ),
        (
            "a variant cannot set model",
            with("models.small.set", json!({"model": "gpt-5"})),
            false,
        ),
        (
            "override needs set",
            with("models.small.override", json!(true)),
            false,
        ),
        (
            "a variant with an unknown field is only a warning",
            with("models.small.set", json!({"servce_tier": "flex"})),
            true,
        ),
        (
            "no default",
            {
                let mut p = minimal();
                p.as_object_mut().unwrap().remove("default");
                p
            },
            false,
        ),
        ("bad mode", with("mode", json!("audit")), false),
        (
            "bad encoding",
            with("models.small.encoding", json!("p50k_base")),
            false,
        ),
        (
            "context window 0",
            with("models.small.context_window", json!(0)),
            false,
        ),
        (
            "negative price",
            with(
                "models.small.pricing",
                json!({"input_per_mtok": -1, "output_per_mtok": 1}),
            ),
            false,
        ),
        (
            "price without output",
            with("models.small.pricing", json!({"input_per_mtok": 1})),
            false,
        ),
        (
            "a catalogue model needs no window or prices",
            with(
                "models.small",
                json!({"cluster": "c1", "provider_model": "gpt-4o-mini", "pricing": "catalog"}),
            ),
            true,
        ),
        (
            "a catalogue model may override one price",
            with(
                "models.small",
                json!({"cluster": "c1", "catalog": "openai/gpt-4o", "pricing": {"output_per_mtok": 9}}),
            ),
            true,
        ),
        (
            "pricing is an object or \"catalog\"",
            with("models.small.pricing", json!("free")),
            false,
        ),
        (
            "no context window without the catalogue",
            {
                let mut p = minimal();
                p["models"]["small"]
                    .as_object_mut()
                    .unwrap()
                    .remove("context_window");
                p
            },
            false,
        ),
        (
            "long context without its threshold",
            with(
                "models.small.pricing",
                json!({"input_per_mtok": 1, "output_per_mtok": 1, "long_context": {"input_per_mtok": 2, "output_per_mtok": 2}}),
            ),
            false,
        ),
        (
            "unknown pricing field",
            with(
                "models.small.pricing",
                json!({"input_per_mtok": 1, "output_per_mtok": 1, "cache_read_per_mtok": 1}),
            ),
            false,
        ),
        ("empty chain", with("default", json!([])), false),
        ("target is a number", with("default", json!(3)), false),
        (
            "tier target with extra key",
            with("default", json!({"tier": "s", "x": 1})),
            false,
        ),
        (
            "condition with two kinds",
            with(
                "rules",
                json!([{"name": "r", "when": {"stream": true, "tools": true}, "target": "small"}]),
            ),
            false,
        ),
        (
            "unknown condition",
            with(
                "rules",
                json!([{"name": "r", "when": {"weekday": "monday"}, "target": "small"}]),
            ),
            false,
        ),
        (
            "empty all",
            with(
                "rules",
                json!([{"name": "r", "when": {"all": []}, "target": "small"}]),
            ),
            false,
        ),
        (
            "empty range",
            with(
                "rules",
                json!([{"name": "r", "when": {"prompt_tokens": {}}, "target": "small"}]),
            ),
            false,
        ),
        (
            "header condition with two tests",
            with(
                "rules",
                json!([{"name": "r", "when": {"header": {"name": "x", "equals": "a", "present": true}}, "target": "small"}]),
            ),
            false,
        ),
        (
            "header name with a space",
            with("task_header", json!("x task")),
            false,
        ),
        (
            "rule without a target",
            with("rules", json!([{"name": "r"}])),
            false,
        ),
        (
            "task without keywords or patterns",
            with("tasks", json!({"t": {}})),
            false,
        ),
        (
            "bad scan",
            with(
                "tasks",
                json!({"t": {"keywords": ["a"], "scan": "everything"}}),
            ),
            false,
        ),
        (
            "status code out of range",
            with("retry", json!({"retriable_status_codes": [42]})),
            false,
        ),
        (
            "bad stream_usage",
            with("stream_usage", json!("maybe")),
            false,
        ),
        (
            "model name with a comma",
            with(
                "models",
                json!({"a,b": {"cluster": "c", "context_window": 10}}),
            ),
            false,
        ),
    ];
    for (name, policy, valid) in cases {
        let text = serde_json::to_string(&policy).unwrap();
        let compiled = Policy::from_json(&text)
            .map(|_| ())
            .map_err(|e| e.to_string());
        let errors = schema_errors(&validator, &policy);
        assert_eq!(
            compiled.is_ok(),
            valid,
            "{name}: the compiler says {compiled:?}"
        );
        assert_eq!(
            errors.is_empty(),
            valid,
            "{name}: the schema says {errors:#?}"
        );
    }
}
