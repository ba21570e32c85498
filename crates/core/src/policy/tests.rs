use super::*;

const EXAMPLE: &str = include_str!("../../../../examples/policy.json");

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
        // Each pattern is bounded alone (Unicode \w is ~1,000 byte ranges).
        (with(r#""tasks":{"code":{"patterns":["x"]},"big":{"patterns":["a", "\\w{2000}"]}}"#), "tasks.big.patterns[1]: invalid regex"),
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

/// Models: `gpt` (chat + responses), `claude` (messages, estimated), `llama` (chat).
fn shapes_policy(rules: &str, default: &str) -> String {
    format!(
        r#"{{"models":{{
            "gpt":{{"cluster":"openai","context_window":128000,"api":["openai_chat","openai_responses"]}},
            "claude":{{"cluster":"anthropic","context_window":200000,"api":"anthropic_messages",
                      "estimate":{{"encoding":"cl100k_base","ratio":1.1}}}},
            "llama":{{"cluster":"local","context_window":8000}}}},
           "rules":[{rules}],"default":{default}}}"#
    )
}

#[test]
fn models_declare_their_apis_and_estimates() {
    use crate::request::{Api, ApiSet, Ratio};
    let p = Policy::from_json(&shapes_policy(
        r#"{"name":"anthropic","when":{"api":"anthropic_messages"},"target":"claude"}"#,
        r#"["gpt","llama"]"#,
    ))
    .unwrap();
    assert_eq!(
        p.models[0].apis,
        ApiSet::of(Api::OpenaiChat).with(Api::OpenaiResponses)
    );
    assert_eq!(p.models[1].apis, ApiSet::of(Api::AnthropicMessages));
    assert_eq!(p.models[2].apis, ApiSet::of(Api::OpenaiChat), "the default");
    assert_eq!(p.models[1].encoding, Encoding::Cl100kBase);
    assert_eq!(p.models[1].estimate, Ratio::new(1.1));
    assert_eq!(p.models[0].estimate, None);
    assert_eq!(
        p.encodings(),
        vec![Encoding::O200kBase, Encoding::Cl100kBase]
    );
    assert_eq!(p.default_image_tokens, None);
    let p = Policy::from_json(&with(r#""default_image_tokens":1000"#)).unwrap();
    assert_eq!(p.default_image_tokens, Some(1000));
}

#[test]
fn rules_that_could_receive_an_api_their_target_cannot_accept_are_refused() {
    let ok = [
        // Messages requests are taken whole by the first rule: the others never see them.
        (
            r#"{"name":"anthropic","when":{"api":"anthropic_messages"},"target":"claude"},
               {"name":"big","when":{"prompt_tokens":{"gt":5000}},"target":"gpt"}"#,
            r#"["gpt","llama"]"#,
        ),
        // A mixed target accepts every API.
        (
            r#"{"name":"any","when":{"stream":true},"target":["gpt","claude"]}"#,
            r#"["claude","gpt"]"#,
        ),
        // Narrowed by an api condition inside all/any, or by an exact API path.
        (
            r#"{"name":"a","when":{"all":[{"api":{"in":["openai_chat","openai_responses"]}},{"tools":true}]},"target":"gpt"},
               {"name":"b","when":{"path":{"equals":"/v1/chat/completions"}},"target":"llama"},
               {"name":"c","when":{"not":{"api":"anthropic_messages"}},"target":"gpt"},
               {"name":"d","when":{"api":"anthropic_messages"},"target":"claude"}"#,
            r#""gpt""#,
        ),
        // A rule that can only match a path no API is served at receives nothing.
        (
            r#"{"name":"h","when":{"path":{"equals":"/healthz"}},"target":"claude"}"#,
            r#"["gpt","claude"]"#,
        ),
    ];
    for (rules, default) in ok {
        if let Err(e) = Policy::from_json(&shapes_policy(rules, default)) {
            panic!("{rules} / {default}: {e}");
        }
    }
    let refused = [
        (
            r#"{"name":"code","when":{"tools":true},"target":"gpt"},
               {"name":"anthropic","when":{"api":"anthropic_messages"},"target":"claude"}"#,
            r#"["gpt","llama"]"#,
            "rules[0].target: can receive anthropic_messages requests (/v1/messages) but no model of this target accepts that API",
        ),
        (
            r#"{"name":"a","when":{"api":"openai_responses"},"target":"llama"}"#,
            r#"["gpt","claude"]"#,
            "rules[0].target: can receive openai_responses requests (/v1/responses)",
        ),
        (
            r#"{"name":"a","when":{"path":{"equals":"/v1/messages"}},"target":"gpt"}"#,
            r#"["gpt","claude"]"#,
            "rules[0].target: can receive anthropic_messages requests",
        ),
        (
            r#"{"name":"a","when":{"api":"openai_chat"},"target":"llama"}"#,
            r#""gpt""#,
            "default: can receive anthropic_messages requests (/v1/messages) but no model of this target accepts that API",
        ),
        (
            r#"{"name":"a","when":{"api":"anthropic_messages"},"target":"claude"}"#,
            r#""llama""#,
            "default: can receive openai_responses requests",
        ),
    ];
    for (rules, default, expected) in refused {
        // Translation covers every one of these gaps...
        let translated = shapes_policy(rules, default);
        if let Err(e) = Policy::from_json(&translated) {
            panic!("{rules} / {default} with translation: {e}");
        }
        // ...and `translate: false` restores the check.
        let message = error(&translated.replacen('{', r#"{"translate":false,"#, 1));
        assert!(
            message.contains(expected),
            "{rules}\n  got: {message}\n  want: {expected}"
        );
        assert!(message.contains("through translation"), "{message}");
    }
    // A model can opt out alone: llama (chat only) cannot take Messages requests.
    let message = error(
        &shapes_policy(
            r#"{"name":"a","when":{"api":"anthropic_messages"},"target":"llama"}"#,
            r#""gpt""#,
        )
        .replace(
            r#""llama":{"cluster":"local","context_window":8000}"#,
            r#""llama":{"cluster":"local","context_window":8000,"translate":false}"#,
        ),
    );
    assert!(
        message.contains("rules[0].target: can receive anthropic_messages"),
        "{message}"
    );
    // A policy of chat models alone (every policy before APIs existed) is unaffected.
    Policy::from_json(EXAMPLE).unwrap();
}

#[test]
fn api_and_estimate_errors_name_the_json_path() {
    let model = |extra: &str| {
        format!(
            r#"{{"models":{{"a":{{"cluster":"c","context_window":10{extra}}}}},"default":"a"}}"#
        )
    };
    let cases = [
        (model(r#","api":"openai""#), "models.a.api: unknown API \"openai\" (expected one of openai_chat, openai_responses, anthropic_messages)"),
        (model(r#","api":["openai_chat","grpc"]"#), "models.a.api[1]: unknown API \"grpc\""),
        (model(r#","api":[]"#), "models.a.api: list at least one API"),
        (model(r#","api":5"#), "models.a.api"),
        (model(r#","estimate":{"encoding":"cl100k_base","ratio":0}"#), "models.a.estimate.ratio: must be a number greater than 0"),
        (model(r#","estimate":{"encoding":"cl100k_base","ratio":-1.5}"#), "models.a.estimate.ratio"),
        (model(r#","estimate":{"encoding":"llama3","ratio":1.1}"#), "models.a.estimate.encoding: unknown encoding \"llama3\""),
        (model(r#","estimate":{"ratio":1.1,"offset":3}"#), "models.a.estimate.offset: unknown field `offset`"),
        (model(r#","estimate":{"encoding":"cl100k_base"}"#), "models.a.estimate: missing field `ratio`"),
        (model(r#","encoding":"o200k_base","estimate":{"ratio":1.1}"#), "models.a.encoding: a model with an `estimate` counts with `estimate.encoding`"),
        (with(r#""rules":[{"name":"r","when":{"api":"soap"},"target":"a"}]"#), "rules[0].when.api: unknown API \"soap\""),
        (with(r#""rules":[{"name":"r","when":{"api":{"in":[]}},"target":"a"}]"#), "rules[0].when.api.in: must not be empty"),
        (with(r#""default_image_tokens":-1"#), "default_image_tokens"),
    ];
    for (json, expected) in cases {
        let message = error(&json);
        assert!(
            message.contains(expected),
            "{json}\n  got: {message}\n  want: {expected}"
        );
    }
    // Without an encoding, an estimate counts with the policy's default encoding.
    let p = Policy::from_json(&model(r#","estimate":{"ratio":1.1}"#)).unwrap();
    assert_eq!(p.models[0].encoding, Encoding::O200kBase);
}

#[test]
fn tasks_and_models_may_be_lists_that_keep_their_order() {
    let json = r#"{"models":[{"name":"z","cluster":"c","context_window":100},{"name":"a","cluster":"c","context_window":100}],
        "tasks":[{"name":"zeta","keywords":["x"]},{"name":"alpha","keywords":["x"]}],"default":"z"}"#;
    let p = Policy::from_json(json).unwrap();
    assert_eq!(p.models[0].name, "z");
    assert_eq!(p.tasks[0].name, "zeta");
    let bad = r#"{"models":[{"cluster":"c","context_window":100}],"default":"z"}"#;
    assert!(
        error(bad).contains("needs a string `name`"),
        "{}",
        error(bad)
    );
    let dup = r#"{"models":[{"name":"a","cluster":"c","context_window":1},{"name":"a","cluster":"c","context_window":1}],"default":"a"}"#;
    assert!(error(dup).contains("duplicate name"), "{}", error(dup));
    let unknown =
        r#"{"models":[{"name":"a","cluster":"c","context_window":1,"colour":1}],"default":"a"}"#;
    assert!(
        error(unknown).contains("unknown field `colour`"),
        "{}",
        error(unknown)
    );
}

#[test]
fn splits_compile_with_weights_names_and_a_key() {
    let p = Policy::from_json(&with(
        r#""rules":[{"name":"r","target":{"split":[{"target":"a","weight":90},{"target":["b","a"],"weight":10,"name":"cand"},{"target":{"tier":"t"},"weight":0}],"key":{"header":"X-Session-Id"}}}]"#,
    ))
    .unwrap();
    let Target::Split(split) = &p.rules[0].target else {
        panic!("not a split")
    };
    let names: Vec<&str> = split.branches.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["a", "cand", "t"]);
    assert_eq!(split.total, 100);
    assert_eq!(split.key_header.as_deref(), Some("x-session-id"));
    assert_eq!(split.models, vec![ModelId(0), ModelId(1)]);
    assert_eq!(p.rules[0].target.models(), &[ModelId(0), ModelId(1)]);
}

#[test]
fn bad_splits_weights_and_timeouts_name_their_path() {
    let split = |branches: &str| {
        with(&format!(
            r#""rules":[{{"name":"r","target":{{"split":[{branches}]}}}}]"#
        ))
    };
    let cases = [
        (
            split(r#"{"target":"a","weight":-1}"#),
            "rules[0].target.split[0].weight: must be an integer from 0 to 1000000, got -1",
        ),
        (
            split(r#"{"target":"a","weight":1.5}"#),
            "rules[0].target.split[0].weight: must be an integer",
        ),
        (
            split(r#"{"target":"a","weight":"90"}"#),
            "rules[0].target.split[0].weight: must be an integer",
        ),
        (
            split(r#"{"target":"a","weight":0},{"target":"b","weight":0}"#),
            "rules[0].target.split: every weight is 0",
        ),
        (
            split(r#"{"target":"a","weight":1},{"target":"gpt5","weight":1}"#),
            "rules[0].target.split[1].target: unknown model \"gpt5\"",
        ),
        (
            split(r#"{"target":["a","nope"],"weight":1}"#),
            "rules[0].target.split[0].target[1]: unknown model \"nope\"",
        ),
        (
            split(r#"{"target":"a","weight":1},{"target":["a","b"],"weight":1}"#),
            "rules[0].target.split[1].name: duplicate branch name \"a\"",
        ),
        (
            split(r#"{"target":{"split":[{"target":"a","weight":1}]},"weight":1}"#),
            "rules[0].target.split[0].target: a split branch cannot be another split",
        ),
        (
            split(""),
            "rules[0].target.split: a split needs at least one branch",
        ),
        (
            with(
                r#""default":{"split":[{"target":"a","weight":1}],"key":{"header":"bad header"}}"#,
            )
            .replacen(r#""default":"a","#, "", 1),
            "default.key.header: \"bad header\" is not a valid header name",
        ),
        (
            with(r#""retry":{"per_try_idle_timeout_ms":-5}"#),
            "retry.per_try_idle_timeout_ms: invalid value: integer `-5`, expected u64",
        ),
        (
            with(r#""retry":{"per_try_idle_timeout_ms":0}"#),
            "retry.per_try_idle_timeout_ms: must be greater than 0",
        ),
        (
            with(r#""retry":{"per_try_timeout_ms":-1}"#),
            "retry.per_try_timeout_ms: invalid value: integer `-1`, expected u64",
        ),
        (
            with(r#""cooldown":{"default_ms":-1}"#),
            "cooldown.default_ms: invalid value: integer `-1`",
        ),
        (
            with(r#""cooldown":{"default_ms":9000,"max_ms":10}"#),
            "cooldown.max_ms: must not be less than default_ms",
        ),
        (
            with(r#""cooldown":{"statuses":[200]}"#),
            "cooldown.statuses[0]: must be an HTTP error status",
        ),
        (
            with(r#""clusters":{"zz":{}}"#),
            "clusters.zz: no model uses cluster \"zz\"",
        ),
        (
            with(r#""clusters":{"ca":{"endpoints":[{"address":"h:1","weight":0}]}}"#),
            "clusters.ca.endpoints[0].weight: must be an integer from 1 to 128, got 0",
        ),
        (
            with(r#""clusters":{"ca":{"endpoints":[{"address":"nohost"}]}}"#),
            "clusters.ca.endpoints[0].address: \"nohost\" is not HOST:PORT",
        ),
        (
            with(r#""clusters":{"ca":{"outlier_detection":{"consecutive_5xx":0}}}"#),
            "clusters.ca.outlier_detection.consecutive_5xx: must be greater than 0",
        ),
    ];
    for (json, expected) in cases {
        let got = error(&json);
        assert!(
            got.starts_with(expected),
            "{json}\n  got: {got}\n want: {expected}"
        );
    }
}

#[test]
fn traffic_sections_compile() {
    let p = Policy::from_json(&with(
        r#""retry":{"per_try_idle_timeout_ms":800},"cooldown":{"default_ms":2000,"failure_threshold":3},"clusters":{"ca":{"endpoints":[{"address":"10.0.0.1:8000","weight":3},{"address":"[::1]:9000"}],"outlier_detection":{"consecutive_5xx":2}}}"#,
    ))
    .unwrap();
    assert_eq!(p.retry.per_try_idle_timeout_ms, Some(800));
    assert_eq!(p.cooldown.default_ms, 2000);
    assert_eq!(p.cooldown.failure_threshold, 3);
    assert_eq!(p.cooldown.statuses, vec![429]);
    assert_eq!(
        p.clusters[0].endpoints,
        vec![
            ("10.0.0.1".to_string(), 8000, 3),
            ("::1".to_string(), 9000, 1)
        ]
    );
    assert_eq!(
        p.clusters[0]
            .outlier_detection
            .as_ref()
            .unwrap()
            .consecutive_5xx,
        2
    );
    let d = Policy::from_json(&with("")).unwrap();
    assert!(
        d.cooldown.enabled && d.clusters.is_empty() && d.retry.per_try_idle_timeout_ms.is_none()
    );
}

#[test]
fn each_task_pattern_keeps_its_own_flags() {
    // A `(?i)` in one pattern must not leak into the next one parsed.
    let policy = Policy::from_json(
        r#"{"models":{"m":{"cluster":"c","context_window":1000}},
            "tasks":{"a":{"patterns":["(?i)x"]},"b":{"patterns":["y"]}},"default":"m"}"#,
    )
    .unwrap();
    let facts = crate::request::parse(
        "/v1/chat/completions",
        br#"{"messages":[{"role":"user","content":"Y"}]}"#,
    )
    .unwrap();
    assert_eq!(policy.task_matcher.first_match(&facts), None);
}
