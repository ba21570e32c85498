#![allow(clippy::type_complexity)] // table-driven cases read best inline
use super::*;
use crate::headers::Headers;
use crate::policy::Policy;

const EXAMPLE: &str = include_str!("../../../../examples/policy.json");

fn example() -> Policy {
    Policy::from_json(EXAMPLE).unwrap()
}

fn chat(text: &str) -> String {
    serde_json::json!({"model":"auto","messages":[{"role":"user","content":text}]}).to_string()
}

fn decide_with(policy: &Policy, body: &str, headers: &[(&str, &str)]) -> Decision {
    let headers = Headers::from_pairs(headers);
    decide(
        policy,
        &Request {
            shape: ApiShape::ChatCompletions,
            path: "/v1/chat/completions",
            headers: &headers,
            body: body.as_bytes(),
        },
    )
}

/// Model names of the chain, and the label of what decided.
fn routed(policy: &Policy, body: &str, headers: &[(&str, &str)]) -> (Vec<String>, String) {
    let d = decide_with(policy, body, headers);
    let chain = d
        .chain()
        .iter()
        .map(|id| policy.models[id.0].name.clone())
        .collect();
    (chain, d.decided_by.label(policy).to_string())
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn rules_route_in_order() {
    let p = example();
    let cases: Vec<(String, Vec<(&str, &str)>, Vec<&str>, &str)> = vec![
        (
            chat("What is your refund policy?"),
            vec![],
            vec!["llama-3.1-8b", "gpt-4o-mini"],
            "faq",
        ),
        (
            chat("Fix this python function please"),
            vec![],
            vec!["gpt-4o", "gpt-4.1"],
            "code",
        ),
        (
            chat("hello there"),
            vec![],
            vec!["gpt-4o-mini", "claude-3-5-haiku"],
            "default",
        ),
        // The trusted task header overrides detection.
        (
            chat("hello there"),
            vec![("x-task", "code")],
            vec!["gpt-4o", "gpt-4.1"],
            "code",
        ),
        (
            serde_json::json!({"model":"auto","response_format":{"type":"json_object"},
                "messages":[{"role":"user","content":"Fix this python function"}]})
            .to_string(),
            vec![],
            vec!["gpt-4o-mini", "gpt-4o"],
            "json-mode",
        ),
    ];
    for (body, headers, chain, rule) in cases {
        assert_eq!(
            routed(&p, &body, &headers),
            (names(&chain), rule.to_string()),
            "{body}"
        );
    }
}

#[test]
fn tier_targets_order_by_projected_cost() {
    let p = example();
    // A long summary: tier "small" = llama (8k context, too small), gpt-4o-mini, claude haiku.
    let body = chat(&format!(
        "Summarize this: {}",
        "lorem ipsum dolor sit amet ".repeat(600)
    ));
    let d = decide_with(&p, &body, &[]);
    assert!(d.prompt_tokens.unwrap() > 2000);
    assert_eq!(
        routed(&p, &body, &[]).0,
        names(&["llama-3.1-8b", "gpt-4o-mini", "claude-3-5-haiku"])
    );
    // With a larger prompt the 8k model no longer fits and drops out.
    let body = chat(&format!(
        "Summarize this: {}",
        "lorem ipsum dolor sit amet ".repeat(2000)
    ));
    assert_eq!(
        routed(&p, &body, &[]).0,
        names(&["gpt-4o-mini", "claude-3-5-haiku"])
    );
}

#[test]
fn context_overflow_escalates_to_the_cheapest_model_that_fits() {
    let p = example();
    // ~150k tokens: only gpt-4.1 (1M context) and claude haiku (200k) fit; default chain is
    // gpt-4o-mini (128k) + claude haiku → haiku remains.
    let body = chat(&"word ".repeat(150_000));
    assert_eq!(routed(&p, &body, &[]).0, names(&["claude-3-5-haiku"]));
    // ~300k tokens: nothing in the default chain fits → escalate to gpt-4.1.
    let body = chat(&"word ".repeat(300_000));
    let d = decide_with(&p, &body, &[]);
    assert!(d.escalated);
    assert_eq!(routed(&p, &body, &[]).0, names(&["gpt-4.1"]));
    // Over every window: rejected with context_length_exceeded.
    let body = chat(&"word ".repeat(1_100_000));
    let d = decide_with(&p, &body, &[]);
    assert!(matches!(
        d.outcome,
        Outcome::Reject {
            reason: RejectReason::ContextOverflow,
            ..
        }
    ));
}

#[test]
fn context_overflow_can_reject() {
    let p = Policy::from_json(&EXAMPLE.replacen("{", r#"{"on_context_overflow":"reject","#, 1))
        .unwrap();
    let body = chat(&"word ".repeat(300_000));
    let d = decide_with(&p, &body, &[]);
    assert!(matches!(
        d.outcome,
        Outcome::Reject {
            reason: RejectReason::ContextOverflow,
            ..
        }
    ));
    assert_eq!(d.outcome_status(), Some(400));
}

#[test]
fn budget_header_drops_expensive_candidates() {
    let p = example();
    let body = serde_json::json!({"model":"auto","max_tokens":500,
        "messages":[{"role":"user","content":"Fix this python function please"}]})
    .to_string();
    let budget = "x-model-router-max-cost-usd";
    // Code goes to gpt-4o then gpt-4.1; 500 output tokens cost $0.005 on gpt-4o, $0.004 on gpt-4.1.
    assert_eq!(
        routed(&p, &body, &[(budget, "1")]).0,
        names(&["gpt-4o", "gpt-4.1"])
    );
    assert_eq!(
        routed(&p, &body, &[(budget, "0.0045")]).0,
        names(&["gpt-4.1"])
    );
    // Nothing in the chain is within budget → cheapest fitting model of the pool.
    let d = decide_with(&p, &body, &[(budget, "0.0000001")]);
    assert!(d.budget_clamped);
    assert_eq!(
        routed(&p, &body, &[(budget, "0.0000001")]).0,
        names(&["llama-3.1-8b"])
    );
    // A malformed budget is an invalid request (passthrough by default).
    let d = decide_with(&p, &body, &[(budget, "cheap")]);
    assert_eq!(d.decided_by, DecidedBy::InvalidRequest);
}

#[test]
fn budget_can_reject() {
    let p =
        Policy::from_json(&EXAMPLE.replacen("{", r#"{"on_budget_exceeded":"reject","#, 1)).unwrap();
    let d = decide_with(&p, &chat("hello"), &[("x-model-router-max-cost-usd", "0")]);
    assert!(matches!(
        d.outcome,
        Outcome::Reject {
            reason: RejectReason::BudgetExceeded,
            ..
        }
    ));
    assert_eq!(d.outcome_status(), Some(402));
}

#[test]
fn explicit_models_and_aliases() {
    let p = example();
    let body = |model: &str| {
        serde_json::json!({"model":model,"messages":[{"role":"user","content":"hello"}]})
            .to_string()
    };
    assert_eq!(
        routed(&p, &body("gpt-4o"), &[]),
        (names(&["gpt-4o"]), "explicit_model".into())
    );
    // The provider's own name for a model is recognised too.
    assert_eq!(
        routed(&p, &body("claude-3-5-haiku-latest"), &[]).0,
        names(&["claude-3-5-haiku"])
    );
    // Aliases and unknown names are routed by the rules.
    assert_eq!(routed(&p, &body("router/auto"), &[]).1, "default");
    assert_eq!(routed(&p, &body("some-unknown-model"), &[]).1, "default");
    // Without honor_explicit_model every request is routed.
    let p = Policy::from_json(&EXAMPLE.replace(
        "\"honor_explicit_model\": true",
        "\"honor_explicit_model\": false",
    ))
    .unwrap();
    assert_eq!(routed(&p, &body("gpt-4o"), &[]).1, "default");
}

#[test]
fn invalid_requests_follow_the_policy() {
    let p = example();
    let d = decide_with(&p, "not json", &[]);
    assert_eq!(d.decided_by, DecidedBy::InvalidRequest);
    assert!(
        matches!(&d.outcome, Outcome::Passthrough { chain } if p.models[chain[0].0].name == "gpt-4o-mini")
    );
    assert!(d.invalid_reason.unwrap().contains("not a JSON object"));

    let p =
        Policy::from_json(&EXAMPLE.replacen("{", r#"{"on_invalid_request":"reject","#, 1)).unwrap();
    let d = decide_with(&p, r#"{"messages":"x"}"#, &[]);
    assert!(
        matches!(&d.outcome, Outcome::Reject { reason: RejectReason::InvalidRequest, message } if message.contains("messages"))
    );
}

#[test]
fn each_condition_kind() {
    let policy = |when: &str| {
        Policy::from_json(&format!(
            r#"{{"models":{{"a":{{"cluster":"ca","context_window":100000}},"b":{{"cluster":"cb","context_window":100000}}}},
                "tasks":{{"code":{{"keywords":["code"]}}}},
                "rules":[{{"name":"hit","when":{when},"target":"b"}}],"default":"a"}}"#
        ))
        .unwrap()
    };
    let user = |text: &str| serde_json::json!({"messages":[{"role":"user","content":text}]});
    let cases: Vec<(&str, serde_json::Value, Vec<(&str, &str)>, &str, bool)> = vec![
        (
            r#"{"prompt_tokens":{"lt":20}}"#,
            user("hi"),
            vec![],
            "/v1/chat/completions",
            true,
        ),
        (
            r#"{"prompt_tokens":{"gte":20}}"#,
            user("hi"),
            vec![],
            "/v1/chat/completions",
            false,
        ),
        (
            r#"{"max_output_tokens":{"gt":100}}"#,
            serde_json::json!({"max_tokens":500,"messages":[{"role":"user","content":"x"}]}),
            vec![],
            "/v1/chat/completions",
            true,
        ),
        (
            r#"{"max_output_tokens":{"gt":100}}"#,
            user("x"),
            vec![],
            "/v1/chat/completions",
            false,
        ),
        (
            r#"{"messages":{"gte":2}}"#,
            serde_json::json!({"messages":[{"role":"system","content":"s"},{"role":"user","content":"x"}]}),
            vec![],
            "/v1/chat/completions",
            true,
        ),
        (
            r#"{"task":"code"}"#,
            user("write code"),
            vec![],
            "/v1/chat/completions",
            true,
        ),
        (
            r#"{"task":{"in":["code"]}}"#,
            user("hello"),
            vec![],
            "/v1/chat/completions",
            false,
        ),
        (
            r#"{"header":{"name":"X-Tier","equals":"gold"}}"#,
            user("x"),
            vec![("x-tier", "gold")],
            "/v1/chat/completions",
            true,
        ),
        (
            r#"{"header":{"name":"x-tier","in":["gold","silver"]}}"#,
            user("x"),
            vec![("x-tier", "bronze")],
            "/v1/chat/completions",
            false,
        ),
        (
            r#"{"header":{"name":"x-tier","present":true}}"#,
            user("x"),
            vec![("x-tier", "")],
            "/v1/chat/completions",
            true,
        ),
        (
            r#"{"header":{"name":"x-tier","present":false}}"#,
            user("x"),
            vec![],
            "/v1/chat/completions",
            true,
        ),
        (
            r#"{"header":{"name":"x-tier","matches":"^g"}}"#,
            user("x"),
            vec![("x-tier", "gold")],
            "/v1/chat/completions",
            true,
        ),
        (
            r#"{"requested_model":{"equals":"fast"}}"#,
            serde_json::json!({"model":"fast","messages":[{"role":"user","content":"x"}]}),
            vec![],
            "/v1/chat/completions",
            true,
        ),
        (
            r#"{"requested_model":{"in":["a1","a2"]}}"#,
            serde_json::json!({"model":"a3","messages":[{"role":"user","content":"x"}]}),
            vec![],
            "/v1/chat/completions",
            false,
        ),
        (
            r#"{"structured_output":true}"#,
            serde_json::json!({"response_format":{"type":"json_object"},"messages":[{"role":"user","content":"x"}]}),
            vec![],
            "/v1/chat/completions",
            true,
        ),
        (
            r#"{"tools":true}"#,
            serde_json::json!({"tools":[{"type":"function","function":{"name":"f"}}],"messages":[{"role":"user","content":"x"}]}),
            vec![],
            "/v1/chat/completions",
            true,
        ),
        (
            r#"{"tools":true}"#,
            serde_json::json!({"tools":[],"messages":[{"role":"user","content":"x"}]}),
            vec![],
            "/v1/chat/completions",
            false,
        ),
        (
            r#"{"stream":true}"#,
            serde_json::json!({"stream":true,"messages":[{"role":"user","content":"x"}]}),
            vec![],
            "/v1/chat/completions",
            true,
        ),
        (
            r#"{"images":true}"#,
            serde_json::json!({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:"}}]}]}),
            vec![],
            "/v1/chat/completions",
            true,
        ),
        (
            r#"{"path":{"prefix":"/team-a/"}}"#,
            user("x"),
            vec![],
            "/team-a/v1/chat/completions?x=1",
            true,
        ),
        (
            r#"{"path":{"equals":"/v1/chat/completions"}}"#,
            user("x"),
            vec![],
            "/v1/chat/completions?x=1",
            true,
        ),
        (
            r#"{"not":{"stream":true}}"#,
            user("x"),
            vec![],
            "/v1/chat/completions",
            true,
        ),
        (
            r#"{"any":[{"stream":true},{"tools":true}]}"#,
            user("x"),
            vec![],
            "/v1/chat/completions",
            false,
        ),
        (
            r#"{"all":[{"stream":false},{"task":"code"}]}"#,
            user("code"),
            vec![],
            "/v1/chat/completions",
            true,
        ),
    ];
    for (when, body, headers, path, hit) in cases {
        let p = policy(when);
        let headers = Headers::from_pairs(&headers);
        let body = body.to_string();
        let d = decide(
            &p,
            &Request {
                shape: ApiShape::ChatCompletions,
                path,
                headers: &headers,
                body: body.as_bytes(),
            },
        );
        assert_eq!(d.decided_by == DecidedBy::Rule(0), hit, "{when} on {body}");
    }
}

/// `gpt` speaks chat and Responses, `claude-*` speak Messages (estimated
/// tokenizer), `llama` chat only.
/// Models of three APIs, translation off: what each model accepts natively.
/// `shapes_policy_translating` is the same pool with translation on.
fn shapes_policy(extra: &str) -> Policy {
    Policy::from_json(&shapes_policy_text(extra)).unwrap()
}

fn shapes_policy_translating() -> Policy {
    Policy::from_json(&shapes_policy_text("").replacen(r#""translate":false,"#, "", 1)).unwrap()
}

fn shapes_policy_text(extra: &str) -> String {
    format!(
        r#"{{"translate":false,"models":{{
            "llama":{{"cluster":"local","context_window":8000,
                      "pricing":{{"input_per_mtok":0.02,"output_per_mtok":0.05}}}},
            "gpt":{{"cluster":"openai","context_window":128000,"api":["openai_chat","openai_responses"],
                    "pricing":{{"input_per_mtok":2.5,"output_per_mtok":10}}}},
            "claude-small":{{"cluster":"anthropic","provider_model":"claude-3-5-haiku-latest","context_window":2000,
                    "api":"anthropic_messages","estimate":{{"encoding":"cl100k_base","ratio":1.1}},
                    "pricing":{{"input_per_mtok":0.8,"output_per_mtok":4}}}},
            "claude-big":{{"cluster":"anthropic","context_window":200000,"api":"anthropic_messages",
                    "pricing":{{"input_per_mtok":3,"output_per_mtok":15}}}}}},
           "requested_model":{{"aliases":["auto"],"honor_explicit_model":true}},
           "default_output_tokens":100,
           "rules":[{{"name":"big","when":{{"prompt_tokens":{{"gt":100000}}}},"target":["gpt","claude-big"]}}],
           "default":["claude-small","gpt","llama"]{extra}}}"#
    )
}

fn decide_at(policy: &Policy, path: &str, body: &serde_json::Value) -> Decision {
    decide(
        policy,
        &Request {
            shape: ApiShape::from_path(path).unwrap(),
            path,
            headers: &Headers::new(),
            body: body.to_string().as_bytes(),
        },
    )
}

fn chain_names(policy: &Policy, d: &Decision) -> Vec<String> {
    d.chain()
        .iter()
        .map(|id| policy.models[id.0].name.clone())
        .collect()
}

const CHAT: &str = "/v1/chat/completions";
const RESPONSES: &str = "/v1/responses";
const MESSAGES: &str = "/v1/messages";

fn body_for(path: &str, model: &str, text: &str) -> serde_json::Value {
    match path {
        RESPONSES => serde_json::json!({"model":model,"input":text}),
        MESSAGES => {
            serde_json::json!({"model":model,"max_tokens":100,"messages":[{"role":"user","content":text}]})
        }
        _ => serde_json::json!({"model":model,"messages":[{"role":"user","content":text}]}),
    }
}

#[test]
fn requests_only_go_to_models_that_accept_their_api() {
    let p = shapes_policy("");
    let cases = [
        (CHAT, "auto", vec!["gpt", "llama"], "default"),
        (RESPONSES, "auto", vec!["gpt"], "default"),
        (MESSAGES, "auto", vec!["claude-small"], "default"),
        // An explicit model is honoured only if it accepts the request's API.
        (MESSAGES, "gpt", vec!["claude-small"], "default"),
        (CHAT, "claude-big", vec!["gpt", "llama"], "default"),
        (
            MESSAGES,
            "claude-3-5-haiku-latest",
            vec!["claude-small"],
            "explicit_model",
        ),
        (RESPONSES, "gpt", vec!["gpt"], "explicit_model"),
        (CHAT, "llama", vec!["llama"], "explicit_model"),
    ];
    for (path, model, chain, rule) in cases {
        let d = decide_at(&p, path, &body_for(path, model, "hello there"));
        assert_eq!(chain_names(&p, &d), chain, "{path} {model}");
        assert_eq!(d.decided_by.label(&p), rule, "{path} {model}");
        assert_eq!(d.shape, ApiShape::from_path(path).unwrap());
        assert!(!d.escalated);
    }
}

#[test]
fn translation_fills_the_gaps_in_the_order_the_target_gives() {
    let p = shapes_policy_translating();
    let cases = [
        (
            CHAT,
            "auto",
            vec!["claude-small", "gpt", "llama"],
            "default",
        ),
        (
            MESSAGES,
            "auto",
            vec!["claude-small", "gpt", "llama"],
            "default",
        ),
        // Responses reach claude-small through chat.
        (
            RESPONSES,
            "auto",
            vec!["claude-small", "gpt", "llama"],
            "default",
        ),
        // An explicit model of another API is honoured now.
        (CHAT, "claude-big", vec!["claude-big"], "explicit_model"),
        (MESSAGES, "gpt", vec!["gpt"], "explicit_model"),
    ];
    for (path, model, chain, rule) in cases {
        let d = decide_at(&p, path, &body_for(path, model, "hello there"));
        assert_eq!(chain_names(&p, &d), chain, "{path} {model}");
        assert_eq!(d.decided_by.label(&p), rule, "{path} {model}");
    }
    // Legacy completions are never translated.
    let d = decide_at(
        &p,
        "/v1/completions",
        &serde_json::json!({"model": "auto", "prompt": "hi"}),
    );
    assert_eq!(chain_names(&p, &d), ["gpt", "llama"]);
}

#[test]
fn an_estimated_model_counts_with_its_encoding_times_its_ratio() {
    let p = shapes_policy("");
    let body = body_for(
        MESSAGES,
        "auto",
        &"The quick brown fox jumps over the lazy dog. ".repeat(20),
    );
    let d = decide_at(&p, MESSAGES, &body);
    let facts = crate::request::parse(MESSAGES, body.to_string().as_bytes()).unwrap();
    let text = facts
        .text_tokens(crate::tokens::Encoding::Cl100kBase)
        .unwrap();
    let small = p.model_by_name("claude-small").unwrap();
    assert_eq!(d.prompt_tokens_for(small), Some((text * 11).div_ceil(10)));
    // The policy's prompt_tokens (default encoding) is the exact o200k count.
    assert_eq!(
        d.prompt_tokens,
        Some(
            facts
                .prompt_tokens(crate::tokens::Encoding::O200kBase)
                .unwrap()
        )
    );
}

#[test]
fn context_escalation_stays_among_models_that_accept_the_api() {
    let p = shapes_policy("");
    // ~2500 tokens: too big for claude-small (2000); gpt and llama are cheaper
    // than claude-big but cannot take a Messages request.
    let body = body_for(MESSAGES, "auto", &"word ".repeat(2500));
    let d = decide_at(&p, MESSAGES, &body);
    assert!(d.escalated);
    assert_eq!(chain_names(&p, &d), ["claude-big"]);
    // The budget clamp too.
    let p = shapes_policy(r#","budget_header":"x-budget""#);
    let d = decide(
        &p,
        &Request {
            shape: ApiShape::Messages,
            path: MESSAGES,
            headers: &Headers::from_pairs(&[("x-budget", "0")]),
            body: body_for(MESSAGES, "auto", "hi").to_string().as_bytes(),
        },
    );
    assert!(d.budget_clamped);
    assert_eq!(chain_names(&p, &d), ["claude-small"]);
}

#[test]
fn an_api_no_model_accepts_is_translated_unless_translate_is_off() {
    // Every model of the example speaks openai_chat only.
    let translating = example();
    let p = Policy::from_json(&EXAMPLE.replacen('{', r#"{"translate":false,"#, 1)).unwrap();
    for path in [MESSAGES, RESPONSES] {
        let body = body_for(path, "auto", "hello");
        let d = decide_at(&translating, path, &body);
        assert!(
            matches!(d.outcome, Outcome::Route { .. }),
            "{path}: {:?}",
            d.outcome
        );
        let d = decide_at(&p, path, &body);
        match &d.outcome {
            Outcome::Reject { reason, message } => {
                assert_eq!(*reason, RejectReason::UnsupportedApi);
                assert!(message.contains("natively or translated"), "{message}");
            }
            other => panic!("{path}: {other:?}"),
        }
        assert_eq!(d.outcome_status(), Some(400));
        // An unreadable body of that API cannot be passed through either.
        let d = decide_at(&p, path, &serde_json::json!({"input": 5, "messages": 5}));
        assert!(matches!(
            d.outcome,
            Outcome::Reject {
                reason: RejectReason::InvalidRequest,
                ..
            }
        ));
    }
    // With a Messages model, an unreadable Messages body passes through to it.
    let p = shapes_policy("");
    let d = decide_at(&p, MESSAGES, &serde_json::json!({"messages": "nope"}));
    assert!(matches!(d.outcome, Outcome::Passthrough { .. }));
    assert_eq!(chain_names(&p, &d), ["claude-small"]);
    let d = decide_at(&p, RESPONSES, &serde_json::json!({"input": 5}));
    assert_eq!(chain_names(&p, &d), ["gpt"]);
}

#[test]
fn images_count_in_the_prompt_rules_and_budgets_see() {
    let image = |url: &str| {
        serde_json::json!({"model":"auto","messages":[{"role":"user","content":[
            {"type":"text","text":"describe"},{"type":"image_url","image_url":{"url":url}}]}]})
    };
    let p = shapes_policy("");
    let text_only = decide_at(&p, CHAT, &body_for(CHAT, "auto", "describe"));
    let remote = decide_at(&p, CHAT, &image("https://example.com/cat.png"));
    // Same framing as the text-only body plus the image: a remote image is 765.
    assert_eq!(
        remote.prompt_tokens.unwrap() - text_only.prompt_tokens.unwrap(),
        765
    );
    let p = shapes_policy(r#","default_image_tokens":120000"#);
    let d = decide_at(&p, CHAT, &image("https://example.com/cat.png"));
    assert!(d.prompt_tokens.unwrap() > 120_000);
    // The prompt_tokens rule now matches and llama's 8k window is too small.
    assert_eq!(d.decided_by.label(&p), "big");
    assert_eq!(chain_names(&p, &d), ["gpt"]);
}

/// `token_counting: as_needed` with scripts/bench's shape of policy: a
/// threshold rule and large windows; `changes` replaces top-level fields.
fn as_needed(changes: serde_json::Value) -> Policy {
    let mut policy = serde_json::json!({
        "models": {
            "small": {"cluster": "a", "tier": "t", "context_window": 200000, "max_output_tokens": 1024,
                      "pricing": {"input_per_mtok": 0.15, "output_per_mtok": 0.6}},
            "large": {"cluster": "b", "tier": "t", "context_window": 200000, "max_output_tokens": 1024,
                      "pricing": {"input_per_mtok": 2.5, "output_per_mtok": 10}}
        },
        "rules": [{"name": "long", "when": {"prompt_tokens": {"gt": 1000}}, "target": ["large"]}],
        "default": ["small", "large"],
        "budget_header": "x-budget",
        "token_counting": "as_needed"
    });
    for (key, value) in changes.as_object().into_iter().flatten() {
        policy[key] = value.clone();
    }
    Policy::from_json(&policy.to_string()).unwrap()
}

#[test]
fn as_needed_settles_a_threshold_from_the_body_size_without_counting() {
    let policy = as_needed(serde_json::json!({}));
    let d = decide_with(&policy, &chat("a short question about Envoy"), &[]);
    assert_eq!(d.decided_by, DecidedBy::Default);
    assert_eq!(d.chain().len(), 2);
    // Nothing was counted: 30 bytes cannot be over 1,000 tokens, and fit 200K.
    assert_eq!(d.prompt_tokens, None);
    assert!(d.chain_prompt_tokens.is_empty());
    assert_eq!(d.estimated_cost, None);
}

#[test]
fn as_needed_stops_counting_once_a_threshold_is_passed() {
    let policy = as_needed(serde_json::json!({}));
    // ~2,000 words: over the 1,000-token threshold. The rule holds after
    // counting 1,001 tokens, and the 200K window is settled by size, so no
    // exact count is taken.
    let long = chat(&"the router counts ".repeat(700));
    let d = decide_with(&policy, &long, &[]);
    assert_eq!(d.decided_by, DecidedBy::Rule(0));
    assert_eq!(d.prompt_tokens, None);
    let exact = decide_with(&example_always(&policy), &long, &[]);
    assert_eq!(d.outcome, exact.outcome);
}

#[test]
fn as_needed_keeps_exact_counts_where_costs_need_them() {
    let policy = as_needed(serde_json::json!({"default": {"tier": "t"}}));
    let body = chat("a short question about Envoy");
    // A tier is ordered by projected cost: both models are counted exactly.
    let d = decide_with(&policy, &body, &[]);
    let counted = crate::request::parse("/v1/chat/completions", body.as_bytes())
        .unwrap()
        .prompt_tokens(crate::tokens::Encoding::O200kBase)
        .unwrap();
    assert_eq!(d.prompt_tokens, Some(counted));
    assert_eq!(d.chain_prompt_tokens.len(), 2);
    assert!(d.estimated_cost.is_some());
    // So does a budget.
    let policy = as_needed(serde_json::json!({}));
    let d = decide_with(&policy, &body, &[("x-budget", "1")]);
    assert_eq!(d.prompt_tokens, Some(counted));
    assert!(d.estimated_cost.is_some());
    // A count below a threshold's limit is exact and kept.
    let policy = as_needed(serde_json::json!({"rules": [
        {"name": "short", "when": {"prompt_tokens": {"lt": 5000}}, "target": ["small"]}
    ]}));
    let medium = chat(&"the router counts ".repeat(1000));
    let d = decide_with(&policy, &medium, &[]);
    assert_eq!(d.decided_by, DecidedBy::Rule(0));
    assert_eq!(
        d.prompt_tokens,
        decide_with(&example_always(&policy), &medium, &[]).prompt_tokens
    );
}

/// The same policy counting always.
fn example_always(policy: &Policy) -> Policy {
    let mut policy = policy.clone();
    policy.token_counting = crate::policy::TokenCounting::Always;
    policy
}

#[test]
fn tier_order_and_budgets_use_the_tier_the_counted_prompt_falls_in() {
    // "tiered" is cheaper than "flat" until its prompt passes 30 tokens, then 10× dearer.
    let policy = Policy::from_json(
        r#"{
          "models": {
            "tiered": {"cluster": "a", "tier": "t", "context_window": 100000,
              "pricing": {"input_per_mtok": 1, "output_per_mtok": 1,
                          "long_context": {"above_prompt_tokens": 30, "input_per_mtok": 10, "output_per_mtok": 10}}},
            "flat": {"cluster": "b", "tier": "t", "context_window": 100000,
              "pricing": {"input_per_mtok": 2, "output_per_mtok": 2}}
          },
          "default": {"tier": "t"},
          "default_output_tokens": 10,
          "budget_header": "x-budget"
        }"#,
    )
    .unwrap();
    let short = chat("hi");
    let long = chat(&"word ".repeat(60));
    assert_eq!(routed(&policy, &short, &[]).0, names(&["tiered", "flat"]));
    assert_eq!(routed(&policy, &long, &[]).0, names(&["flat", "tiered"]));
    let d = decide_with(&policy, &long, &[]);
    let prompt = d.prompt_tokens.unwrap();
    assert!(prompt > 30, "{prompt}");
    // flat first: (prompt + 10) × $2 per million tokens.
    assert_eq!(d.estimated_cost.unwrap().micro_usd(), (prompt + 10) * 2);
    // A budget that fits the long prompt at the base tier but not at the long one drops "tiered".
    let budget = format!("{}", (prompt + 10) as f64 * 5.0 / 1e6);
    let (chain, _) = routed(&policy, &long, &[("x-budget", &budget)]);
    assert_eq!(chain, names(&["flat"]));
}
