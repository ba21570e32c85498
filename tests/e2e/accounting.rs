//! Issue 4: usage, cost and baseline counted as Envoy stats (checked exactly
//! on the Prometheus scrape), the decision in the access log, shadow mode.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{new_id, scrape, Envoy, Labels, Mock, Reply, TEST_ID};

/// Prices chosen so every cost is an exact integer of micro-USD:
/// m1 costs p + 2c, m2 3p + 6c, the baseline m3 10p + 30c.
fn policy(mode: &str) -> String {
    let model = |cluster: &str, input: f64, output: f64| {
        json!({"cluster": cluster, "context_window": 100_000,
               "pricing": {"input_per_mtok": input, "output_per_mtok": output}})
    };
    json!({
        "mode": mode,
        "models": {"m1": model("alpha", 1.0, 2.0), "m2": model("beta", 3.0, 6.0), "m3": model("gamma", 10.0, 30.0)},
        "rules": [{"name": "pick", "when": {"header": {"name": "x-pick", "equals": "m2"}}, "target": "m2"}],
        "default": ["m1", "m2"],
        "baseline_model": "m3",
        "tenant_header": "x-team",
    })
    .to_string()
}

struct Stack {
    alpha: Mock,
    beta: Mock,
    _gamma: Mock,
    envoy: Envoy,
}

fn start(mode: &str) -> Stack {
    let (alpha, beta, gamma) = (
        Mock::start("alpha"),
        Mock::start("beta"),
        Mock::start("gamma"),
    );
    let policy = policy(mode);
    let envoy = Envoy::start(
        &policy,
        vec![("alpha", &alpha), ("beta", &beta), ("gamma", &gamma)],
    );
    Stack {
        alpha,
        beta,
        _gamma: gamma,
        envoy,
    }
}

fn send(envoy: &Envoy, body: &Value, headers: &[(&str, &str)]) -> (String, Reply) {
    let mut all = headers.to_vec();
    all.push(("x-mock-completion-tokens", "9"));
    let (id, reply) = envoy.post_tagged("/v1/chat/completions", body.to_string().as_bytes(), &all);
    assert_eq!(reply.status, 200, "{}", reply.body);
    (id, reply)
}

/// (prompt, completion) billed in a reply: the JSON usage, or a stream's usage chunk.
fn billed(reply: &Reply) -> Option<(u64, u64)> {
    let usage = if reply.body.starts_with('{') {
        reply.json()["usage"].clone()
    } else {
        reply
            .body
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .map(|v| v["usage"].clone())
            .rfind(|u| u.is_object())
            .unwrap_or(Value::Null)
    };
    Some((
        usage["prompt_tokens"].as_u64()?,
        usage["completion_tokens"].as_u64()?,
    ))
}

/// The text a stream carried.
fn streamed_text(reply: &Reply) -> String {
    reply
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

fn value(samples: &[(String, Labels, u64)], name: &str, labels: &[(&str, &str)]) -> u64 {
    let want: Labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    samples
        .iter()
        .find(|(n, l, _)| n == name && *l == want)
        .map(|(_, _, v)| *v)
        .unwrap_or_else(|| {
            let known: Vec<String> = samples
                .iter()
                .filter(|(n, _, _)| n == name)
                .map(|(n, l, v)| format!("{n}{l:?} {v}"))
                .collect();
            panic!("no {name}{want:?} in scrape; have {known:#?}")
        })
}

#[test]
fn scripted_traffic_is_counted_exactly() {
    static STACK: OnceLock<Stack> = OnceLock::new();
    let s = STACK.get_or_init(|| start("enforce"));
    let chat = |stream: bool, include_usage: bool| {
        let mut body = json!({"model": "auto", "messages": [{"role": "user", "content": "What is the refund policy for annual plans?"}]});
        if stream {
            body["stream"] = json!(true);
        }
        if include_usage {
            body["stream_options"] = json!({"include_usage": true});
        }
        body
    };
    // (tenant, reply) of requests whose usage the provider reported.
    let r1 = send(&s.envoy, &chat(false, false), &[("x-team", "a")]).1;
    let r2 = send(&s.envoy, &chat(true, true), &[("x-team", "b")]).1;
    // The client did not ask for usage: the router injects stream_options.include_usage.
    let (id3, r3) = send(&s.envoy, &chat(true, false), &[("x-team", "a")]);
    let sent: Value =
        serde_json::from_str(s.alpha.requests_for(&id3)[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(sent["stream_options"]["include_usage"], true);
    // A fallback: m1 is rate limited, m2 answers.
    let r4 = send(
        &s.envoy,
        &chat(false, false),
        &[("x-team", "b"), ("x-mock-fault", "m1=429")],
    )
    .1;
    assert_eq!(r4.header("x-model-router-model"), Some("m2"));
    let r5 = send(
        &s.envoy,
        &chat(false, false),
        &[("x-team", "a"), ("x-pick", "m2")],
    )
    .1;
    // No usage in a JSON answer: completion tokens counted from its text.
    let r6 = send(
        &s.envoy,
        &chat(false, false),
        &[("x-team", "a"), ("x-mock-usage", "omit")],
    )
    .1;
    assert!(billed(&r6).is_none());
    let r6_completion = model_router_core::tokens::count(
        model_router_core::tokens::Encoding::O200kBase,
        r6.json()["choices"][0]["message"]["content"]
            .as_str()
            .unwrap(),
    )
    .unwrap() as u64;
    let r6_prompt: u64 = r6
        .header("x-model-router-prompt-tokens")
        .unwrap()
        .parse()
        .unwrap();
    // No usage in a stream: completion tokens counted from the streamed text.
    let r7 = send(
        &s.envoy,
        &chat(true, false),
        &[("x-team", "b"), ("x-mock-usage", "omit")],
    )
    .1;
    assert!(billed(&r7).is_none());
    let r7_completion = model_router_core::tokens::count(
        model_router_core::tokens::Encoding::O200kBase,
        &streamed_text(&r7),
    )
    .unwrap() as u64;
    let r7_prompt: u64 = r7
        .header("x-model-router-prompt-tokens")
        .unwrap()
        .parse()
        .unwrap();
    // An error answer bills nothing: usage missing.
    let id8 = new_id();
    let r8 = s.envoy.post(
        "/v1/chat/completions",
        chat(false, false).to_string().as_bytes(),
        &[
            (TEST_ID, &id8),
            ("content-type", "application/json"),
            ("x-team", "c"),
            ("x-mock-fault", "m1=400"),
        ],
    );
    assert_eq!(r8.status, 400);

    let (p1, c1) = billed(&r1).unwrap();
    let (p2, c2) = billed(&r2).unwrap();
    let (p3, c3) = billed(&r3).unwrap();
    let (p4, c4) = billed(&r4).unwrap();
    let (p5, c5) = billed(&r5).unwrap();

    let m1_a = [
        ("model", "m1"),
        ("rule", "default"),
        ("cluster", "alpha"),
        ("task", "none"),
        ("tenant", "a"),
    ];
    let m1_b = [
        ("model", "m1"),
        ("rule", "default"),
        ("cluster", "alpha"),
        ("task", "none"),
        ("tenant", "b"),
    ];
    let m2_b = [
        ("model", "m2"),
        ("rule", "default"),
        ("cluster", "beta"),
        ("task", "none"),
        ("tenant", "b"),
    ];
    let m2_a = [
        ("model", "m2"),
        ("rule", "pick"),
        ("cluster", "beta"),
        ("task", "none"),
        ("tenant", "a"),
    ];
    let m1_c = [
        ("model", "m1"),
        ("rule", "default"),
        ("cluster", "alpha"),
        ("task", "none"),
        ("tenant", "c"),
    ];

    // Counters are flushed to the admin endpoint as requests complete; poll briefly.
    let deadline = Instant::now() + Duration::from_secs(10);
    let samples = loop {
        let samples = scrape(&s.envoy);
        let done = samples.iter().any(|(n, l, v)| {
            n == "model_router_requests_total"
                && l.get("tenant").map(String::as_str) == Some("b")
                && l.get("model").map(String::as_str) == Some("m1")
                && *v == 2
        });
        if done || Instant::now() > deadline {
            break samples;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let requests = "model_router_requests_total";
    assert_eq!(value(&samples, requests, &m1_a), 3);
    assert_eq!(value(&samples, requests, &m1_b), 2);
    assert_eq!(value(&samples, requests, &m2_b), 1);
    assert_eq!(value(&samples, requests, &m2_a), 1);
    assert_eq!(value(&samples, requests, &m1_c), 1);

    let prompt = "model_router_prompt_tokens_total";
    let completion = "model_router_completion_tokens_total";
    let cost = "model_router_cost_micro_usd_total";
    let baseline = "model_router_baseline_cost_micro_usd_total";
    let (pa, ca) = (p1 + p3 + r6_prompt, c1 + c3 + r6_completion);
    assert_eq!(value(&samples, prompt, &m1_a), pa);
    assert_eq!(value(&samples, completion, &m1_a), ca);
    assert_eq!(value(&samples, cost, &m1_a), pa + 2 * ca);
    assert_eq!(value(&samples, baseline, &m1_a), 10 * pa + 30 * ca);
    assert_eq!(value(&samples, prompt, &m1_b), p2 + r7_prompt);
    assert_eq!(value(&samples, completion, &m1_b), c2 + r7_completion);
    assert_eq!(
        value(&samples, cost, &m1_b),
        (p2 + r7_prompt) + 2 * (c2 + r7_completion)
    );
    assert_eq!(value(&samples, cost, &m2_b), 3 * p4 + 6 * c4);
    assert_eq!(value(&samples, baseline, &m2_b), 10 * p4 + 30 * c4);
    assert_eq!(value(&samples, cost, &m2_a), 3 * p5 + 6 * c5);
    assert_eq!(
        value(
            &samples,
            "model_router_fallbacks_total",
            &[("from", "m1"), ("to", "m2")]
        ),
        1
    );
    assert_eq!(
        value(
            &samples,
            "model_router_usage_missing_total",
            &[("model", "m1")]
        ),
        1
    );
    assert_eq!(
        value(
            &samples,
            "model_router_usage_estimated_total",
            &[("model", "m1")]
        ),
        2
    );
    assert!(
        !samples
            .iter()
            .any(|(n, l, _)| n == cost && l.get("tenant").map(String::as_str) == Some("c")),
        "an error bills nothing"
    );

    // One access-log line per request, carrying the decision and, once billed, the cost.
    let deadline = Instant::now() + Duration::from_secs(10);
    let lines: Vec<Value> = loop {
        let lines: Vec<Value> = std::fs::read_to_string(&s.envoy.access_log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if lines.len() >= 8 || Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(lines.len(), 8, "{lines:#?}");
    let decision: Value = serde_json::from_str(lines[0]["decision"].as_str().unwrap()).unwrap();
    assert_eq!(decision["rule"], "default");
    assert_eq!(decision["model"], "m1");
    assert_eq!(decision["tenant"], "a");
    assert_eq!(decision["billed"]["prompt_tokens"], p1);
    assert_eq!(decision["billed"]["completion_tokens"], c1);
    let expected_cost = (p1 + 2 * c1) as f64 / 1e6;
    assert!((decision["billed"]["cost_usd"].as_f64().unwrap() - expected_cost).abs() < 1e-12);
    let fallback: Value = serde_json::from_str(lines[3]["decision"].as_str().unwrap()).unwrap();
    assert_eq!(fallback["served_model"], "m2");
    assert_eq!(fallback["attempts"], 2);
    // Every metric update was accepted: Envoy refuses some (a counter
    // incremented by 0) with a warning per request.
    let log = s.envoy.log_text();
    assert!(!log.contains("cannot update metric"), "{log}");
}

#[test]
fn shadow_mode_leaves_requests_untouched_but_counts_them() {
    let s = start("shadow");
    let body = json!({"model": "client-choice", "temperature": 0.5, "messages": [{"role": "user", "content": "hello"}]});
    let (id, reply) = send(&s.envoy, &body, &[("x-team", "a"), ("x-pick", "m2")]);
    // Shadow mode: the request goes where it would have gone without the router (the default route).
    let received = s.alpha.requests_for(&id);
    assert_eq!(received.len(), 1);
    assert!(s.beta.requests_for(&id).is_empty());
    assert_eq!(
        received[0]["body"].as_str(),
        Some(body.to_string().as_str()),
        "byte-identical"
    );
    // The decision is still described and counted.
    assert_eq!(reply.header("x-model-router-rule"), Some("pick"));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let samples = scrape(&s.envoy);
        if samples.iter().any(|(n, l, v)| {
            n == "model_router_requests_total"
                && l.get("rule").map(String::as_str) == Some("pick")
                && *v == 1
        }) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "shadow decision not counted: {samples:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
