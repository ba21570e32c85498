use super::*;
use crate::decision::{decide, Request};
use crate::headers::Headers;
use crate::request::ApiShape;

const EXAMPLE: &str = include_str!("../../../../examples/policy.json");

fn decided(policy: &Policy, text: &str) -> Decision {
    let body =
        serde_json::json!({"model":"auto","messages":[{"role":"user","content":text}]}).to_string();
    decide(
        policy,
        &Request {
            shape: ApiShape::ChatCompletions,
            path: "/v1/chat/completions",
            headers: &Headers::new(),
            body: body.as_bytes(),
        },
    )
}

fn counter(samples: &[Sample], name: &str) -> Option<u64> {
    samples
        .iter()
        .find(|s| s.kind == Kind::Counter && s.name == name)
        .map(|s| s.value)
}

#[test]
fn labels_are_encoded_in_the_name_and_sanitised() {
    assert_eq!(
        encode(
            "m_total",
            &[("model", "meta/llama-3.1:8b@v1"), ("tenant", "a;b=c d")]
        ),
        "m_total;model=meta/llama-3.1:8b@v1;tenant=a_b_c_d"
    );
    assert_eq!(encode("m", &[("task", "")]), "m;task=none");
}

#[test]
fn a_served_request_counts_tokens_cost_and_baseline() {
    let p = Policy::from_json(EXAMPLE).unwrap();
    let d = decided(&p, "hello there");
    let usage = Usage {
        prompt_tokens: 1000,
        completion_tokens: 200,
        cached_tokens: 400,
        ..Usage::default()
    };
    let s = samples(
        &p,
        &Completion {
            decision: &d,
            attempts: 1,
            tenant: "team-a",
            usage: Some(usage),
            usage_source: UsageSource::Reported,
            decision_micros: 40,
        },
    );
    let labels = ";model=gpt-4o-mini;rule=default;cluster=openai;task=none;tenant=team-a";
    assert_eq!(counter(&s, &format!("{REQUESTS}{labels}")), Some(1));
    assert_eq!(counter(&s, &format!("{PROMPT_TOKENS}{labels}")), Some(1000));
    assert_eq!(
        counter(&s, &format!("{CACHED_PROMPT_TOKENS}{labels}")),
        Some(400)
    );
    assert_eq!(
        counter(&s, &format!("{COMPLETION_TOKENS}{labels}")),
        Some(200)
    );
    // gpt-4o-mini: 600 × 0.15 + 400 × 0.075 + 200 × 0.6 = 240 µUSD.
    assert_eq!(counter(&s, &format!("{COST}{labels}")), Some(240));
    // baseline gpt-4o: 600 × 2.5 + 400 × 1.25 + 200 × 10 = 4000 µUSD.
    assert_eq!(counter(&s, &format!("{BASELINE_COST}{labels}")), Some(4000));
    assert!(counter(&s, &format!("{PROMPT_TOKENS_ESTIMATED}{labels}")).is_some());
    // 400 × 0.075 = 30 µUSD of cache reads; no cache writes.
    assert_eq!(counter(&s, &format!("{CACHE_READ_COST}{labels}")), Some(30));
    assert_eq!(
        counter(&s, &format!("{CACHE_WRITE_TOKENS}{labels}")),
        Some(0)
    );
    assert_eq!(counter(&s, &format!("{CACHE_WRITE_COST}{labels}")), Some(0));
    assert_eq!(
        counter(&s, &format!("{LONG_CONTEXT_REQUESTS}{labels}")),
        None
    );
    assert!(s
        .iter()
        .any(|x| x.kind == Kind::Histogram && x.name == DECISION_TIME_HISTOGRAM && x.value == 40));
}

#[test]
fn fallbacks_name_each_hop() {
    let p = Policy::from_json(EXAMPLE).unwrap();
    let d = decided(&p, "hello there"); // default chain: gpt-4o-mini, claude-3-5-haiku
    let s = samples(
        &p,
        &Completion {
            decision: &d,
            attempts: 2,
            tenant: "none",
            usage: None,
            usage_source: UsageSource::Missing,
            decision_micros: 1,
        },
    );
    assert_eq!(
        counter(
            &s,
            &format!("{FALLBACKS};from=gpt-4o-mini;to=claude-3-5-haiku")
        ),
        Some(1)
    );
    assert_eq!(
        counter(&s, &format!("{USAGE_MISSING};model=claude-3-5-haiku")),
        Some(1)
    );
    assert!(counter(&s, &format!("{REQUESTS};model=claude-3-5-haiku;rule=default;cluster=anthropic;task=none;tenant=none")).is_some());
}

#[test]
fn tenants_fold_into_other() {
    let mut p = Policy::from_json(EXAMPLE).unwrap();
    p.max_tenants = 2;
    let mut folder = TenantFolder::default();
    assert_eq!(folder.fold(&p, Some("a")), "a");
    assert_eq!(folder.fold(&p, Some("b")), "b");
    assert_eq!(folder.fold(&p, Some("c")), OTHER_TENANT);
    assert_eq!(folder.fold(&p, Some("a")), "a");
    assert_eq!(folder.fold(&p, None), NONE);
    p.tenants = Some(vec!["x".into()]);
    assert_eq!(folder.fold(&p, Some("x")), "x");
    assert_eq!(folder.fold(&p, Some("a")), OTHER_TENANT);
}

#[test]
fn stats_tags_extract_each_label() {
    let tags = stats_tags();
    let name = "wasmcustom.model_router_requests_total;model=meta/llama-3.1-8b;rule=r.1;tenant=t";
    for (label, pattern) in tags {
        let re = regex::Regex::new(&pattern).unwrap();
        let value = re.captures(name).and_then(|c| c.get(2)).map(|m| m.as_str());
        let expected = match label.as_str() {
            "model" => Some("meta/llama-3.1-8b"),
            "rule" => Some("r.1"),
            "tenant" => Some("t"),
            _ => None,
        };
        assert_eq!(value, expected, "{label}");
    }
}

#[test]
fn reported_usage_measures_the_prompt_estimate_error() {
    let p = Policy::from_json(EXAMPLE).unwrap();
    let d = decided(&p, "hello there");
    let served = d.chain()[0];
    let estimate = d.prompt_tokens_for(served).unwrap();
    let done = |billed: u64, source: UsageSource| {
        samples(
            &p,
            &Completion {
                decision: &d,
                attempts: 1,
                tenant: "none",
                usage: Some(Usage {
                    prompt_tokens: billed,
                    completion_tokens: 5,
                    cached_tokens: 0,
                    ..Usage::default()
                }),
                usage_source: source,
                decision_micros: 1,
            },
        )
    };
    let error = format!("{PROMPT_ESTIMATE_ERROR};model=gpt-4o-mini");
    let billed = format!("{PROMPT_ESTIMATE_BILLED};model=gpt-4o-mini");
    let counted = format!("{PROMPT_ESTIMATE_COUNTED};model=gpt-4o-mini");
    for provider_count in [estimate + 7, estimate.saturating_sub(3), estimate] {
        let s = done(provider_count, UsageSource::Reported);
        assert_eq!(counter(&s, &error), Some(provider_count.abs_diff(estimate)));
        assert_eq!(counter(&s, &billed), Some(provider_count));
        assert_eq!(counter(&s, &counted), Some(estimate));
    }
    // A prompt the router counted itself says nothing about its own error.
    let s = done(estimate, UsageSource::Estimated);
    assert_eq!(counter(&s, &error), None);
    assert_eq!(counter(&s, &billed), None);
    assert_eq!(counter(&s, &counted), None);
}

#[test]
fn cache_writes_and_long_context_tiers_are_billed() {
    let policy = r#"{
      "models": {
        "sonnet": {"cluster": "anthropic", "context_window": 1000000,
          "pricing": {"input_per_mtok": 3, "output_per_mtok": 15, "cached_input_per_mtok": 0.3,
                      "cache_write_per_mtok": 3.75, "cache_write_1h_per_mtok": 6,
                      "long_context": {"above_prompt_tokens": 200000, "input_per_mtok": 6, "output_per_mtok": 22.5}}}
      },
      "default": "sonnet"
    }"#;
    let p = Policy::from_json(policy).unwrap();
    let d = decided(&p, "hello there");
    let billed = |usage: Usage| {
        samples(
            &p,
            &Completion {
                decision: &d,
                attempts: 1,
                tenant: "t",
                usage: Some(usage),
                usage_source: UsageSource::Reported,
                decision_micros: 1,
            },
        )
    };
    let labels = ";model=sonnet;rule=default;cluster=anthropic;task=none;tenant=t";
    // 1,000 × $3 + 4,000 × $0.30 + 2,000 × $3.75 + 3,000 × $6 + 100 × $15 = 31,200 µUSD.
    let s = billed(Usage {
        prompt_tokens: 10_000,
        completion_tokens: 100,
        cached_tokens: 4_000,
        cache_write_tokens: 2_000,
        cache_write_1h_tokens: 3_000,
    });
    assert_eq!(counter(&s, &format!("{COST}{labels}")), Some(31_200));
    assert_eq!(
        counter(&s, &format!("{CACHE_WRITE_TOKENS}{labels}")),
        Some(5_000)
    );
    assert_eq!(
        counter(&s, &format!("{CACHE_WRITE_COST}{labels}")),
        Some(25_500)
    );
    assert_eq!(
        counter(&s, &format!("{CACHE_READ_COST}{labels}")),
        Some(1_200)
    );
    assert_eq!(
        counter(&s, &format!("{LONG_CONTEXT_REQUESTS}{labels}")),
        None
    );
    // 200,001 × $6 + 1,000 × $22.50, the whole request at the higher tier.
    let s = billed(Usage {
        prompt_tokens: 200_001,
        completion_tokens: 1_000,
        ..Usage::default()
    });
    assert_eq!(counter(&s, &format!("{COST}{labels}")), Some(1_222_506));
    assert_eq!(
        counter(&s, &format!("{LONG_CONTEXT_REQUESTS}{labels}")),
        Some(1)
    );
}
