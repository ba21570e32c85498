use super::*;

const EXAMPLE: &str = include_str!("../../examples/policy.json");

fn error(json: &str) -> String {
    Policy::from_json(json).unwrap_err().to_string()
}

/// A minimal valid policy with `extra` spliced into its top level.
fn with(extra: &str) -> String {
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!(",{extra}")
    };
    format!(
        r#"{{"models":{{"a":{{"cluster":"ca","context_window":1000,"tier":"t"}},"b":{{"cluster":"cb","context_window":100000}}}},"default":"a"{extra}}}"#
    )
}

#[test]
fn the_example_policy_compiles() {
    let p = Policy::from_json(EXAMPLE).unwrap();
    assert_eq!(p.models.len(), 5);
    assert_eq!(p.rules.len(), 4);
    assert_eq!(p.tasks[0].name, "code", "tasks keep the order written");
    assert_eq!(
        p.models[0].provider_model,
        "meta-llama/Llama-3.1-8B-Instruct"
    );
    assert_eq!(p.models[1].provider_model, "gpt-4o-mini");
    assert_eq!(p.headers.cluster, "x-model-router-cluster");
    assert_eq!(
        p.encodings(),
        vec![Encoding::O200kBase, Encoding::Cl100kBase]
    );
}

#[test]
fn defaults() {
    let p = Policy::from_json(&with("")).unwrap();
    assert_eq!(p.default_encoding, Encoding::O200kBase);
    assert_eq!(p.default_output_tokens, 1024);
    assert_eq!(p.on_invalid_request, OnInvalidRequest::Passthrough);
    assert_eq!(p.on_context_overflow, OnContextOverflow::Escalate);
    assert_eq!(p.on_budget_exceeded, OnBudgetExceeded::Cheapest);
    assert!(p.response_headers);
    assert_eq!(p.mode, Mode::Enforce);
    assert_eq!(p.encodings(), vec![Encoding::O200kBase]);
}

#[test]
fn errors_name_the_json_path() {
    let cases = [
        (with(r#""rules":[{"name":"r","target":"gpt5"}]"#), "rules[0].target: unknown model \"gpt5\""),
        (with(r#""rules":[{"name":"r","target":["a","nope"]}]"#), "rules[0].target[1]: unknown model \"nope\""),
        (with(r#""rules":[{"name":"r","target":["a","a"]}]"#), "rules[0].target[1]: model \"a\" appears twice"),
        (with(r#""rules":[{"name":"r","target":{"tier":"zzz"}}]"#), "rules[0].target.tier: no model has tier \"zzz\""),
        (with(r#""rules":[{"name":"r","target":"a"},{"name":"r","target":"b"}]"#), "rules[1].name: duplicate rule name"),
        (with(r#""unknown_field":1"#), "unknown field `unknown_field`"),
        (with(r#""rules":[{"name":"r","when":{"prompt_tokens":{"lt":5}},"target":"a","extra":1}]"#), "rules[0].extra: unknown field `extra`"),
        (with(r#""rules":[{"name":"r","when":{"prompt_tokens":{"gt":10,"lt":5}},"target":"a"}]"#), "rules[0].when.prompt_tokens: the bounds exclude every value"),
        (with(r#""rules":[{"name":"r","when":{"prompt_tokens":{}},"target":"a"}]"#), "rules[0].when.prompt_tokens: set at least one"),
        (with(r#""rules":[{"name":"r","when":{"all":[{"stream":true},{"task":"nope"}]},"target":"a"}]"#), "rules[0].when.all[1].task: unknown task \"nope\""),
        (with(r#""rules":[{"name":"r","when":{"header":{"name":"x-a","matches":"("}},"target":"a"}]"#), "rules[0].when.header.matches: invalid regex"),
        (with(r#""rules":[{"name":"r","when":{"header":{"name":"x-a","equals":"1","present":true}},"target":"a"}]"#), "rules[0].when.header: set exactly one of"),
        (with(r#""rules":[{"name":"r","when":{"header":{"name":"bad name","present":true}},"target":"a"}]"#), "rules[0].when.header.name: \"bad name\" is not a valid header name"),
        (with(r#""rules":[{"name":"r","when":{"colour":"red"},"target":"a"}]"#), "rules[0].when: unknown variant `colour`"),
        (with(r#""rules":[{"name":"big","when":{"prompt_tokens":{"gte":5000}},"target":"a"}]"#), "rules[0].target: the rule only matches prompts of at least 5000 tokens"),
        (with(r#""tasks":{"code":{"patterns":["[a-"]}}"#), "tasks.code.patterns[0]: invalid regex"),
        (with(r#""tasks":{"code":{}}"#), "tasks.code: needs at least one keyword or pattern"),
        (with(r#""tasks":{"code":{"keywords":["x"],"scan":"everything"}}"#), "tasks.code.scan: unknown variant `everything`"),
        (with(r#""default_encoding":"p50k_base""#), "default_encoding: unknown encoding \"p50k_base\""),
        (with(r#""baseline_model":"zzz""#), "baseline_model: unknown model \"zzz\""),
        (with(r#""cluster_header":"x y""#), "cluster_header: \"x y\" is not a valid header name"),
        (with(r#""on_invalid_request":"drop""#), "on_invalid_request: unknown variant `drop`"),
        (with(r#""retry":{"base_interval_ms":100,"max_interval_ms":10}"#), "retry.max_interval_ms"),
        (r#"{"models":{"a":{"cluster":"c","context_window":0}},"default":"a"}"#.to_string(), "models.a.context_window: must be greater than 0"),
        (r#"{"models":{"a":{"cluster":"c","context_window":10,"pricing":{"input_per_mtok":-1,"output_per_mtok":1}}},"default":"a"}"#.to_string(), "models.a.pricing: prices must be"),
        (r#"{"models":{"a":{"cluster":"c","context_window":10},"a":{"cluster":"c","context_window":10}},"default":"a"}"#.to_string(), "models: duplicate key \"a\""),
        (r#"{"models":{},"default":"a"}"#.to_string(), "models: at least one model is required"),
        (r#"{"models":{"a":{"cluster":"c","context_window":10}}}"#.to_string(), "missing field `default`"),
        (r#"{"models":{"a":{"cluster":"","context_window":10}},"default":"a"}"#.to_string(), "models.a.cluster"),
        ("not json".to_string(), "expected ident"),
    ];
    for (json, expected) in cases {
        let message = error(&json);
        assert!(
            message.contains(expected),
            "{json}\n  got: {message}\n  want: {expected}"
        );
    }
}

#[test]
fn conditions_normalise_ranges() {
    let p = Policy::from_json(&with(
        r#""rules":[{"name":"r","when":{"prompt_tokens":{"gt":10,"lte":20}},"target":"a"}]"#,
    ))
    .unwrap();
    match &p.rules[0].when {
        crate::condition::Condition::PromptTokens(r) => assert_eq!((r.min, r.max), (11, 20)),
        other => panic!("{other:?}"),
    }
}
