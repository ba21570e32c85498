//! Issue 3: fallback chains carried by Envoy's retry policy, each attempt's
//! body rewritten for its model by the upstream filter.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{
    chain_rule, free_port, new_id, pairs, provider_model, Envoy, Mock, Reply, TEST_ID,
};

pub struct Stack {
    alpha: Mock,
    beta: Mock,
    gamma: Mock,
    envoy: Envoy,
}

/// a1 and a2 share cluster alpha; "dead" points at a port nobody listens on.
fn policy() -> String {
    json!({
        "models": {
            "a1": provider_model("alpha", "a1-model"),
            "a2": provider_model("alpha", "a2-model"),
            "b1": provider_model("beta", "b1-model"),
            "g1": provider_model("gamma", "g1-model"),
            "d1": provider_model("dead", "d1-model"),
            // Model variants: one upstream model, two entries of the pool.
            "gpt-flex": variant(provider_model("alpha", "gpt-5"), json!({"service_tier": "flex"})),
            "gpt-std": provider_model("beta", "gpt-5"),
        },
        "rules": [
            chain_rule("abg", &["a1", "b1", "g1"]),
            chain_rule("aa", &["a1", "a2"]),
            chain_rule("dg", &["d1", "g1"]),
            chain_rule("variants", &["gpt-flex", "gpt-std"]),
        ],
        "default": ["a1", "b1"],
        "retry": {"per_try_timeout_ms": 1500, "timeout_ms": 20000, "base_interval_ms": 10, "max_interval_ms": 50},
    })
    .to_string()
}

/// `model` with body fields `set` on its requests.
fn variant(mut model: Value, set: Value) -> Value {
    model["set"] = set;
    model
}

fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| {
        let (alpha, beta, gamma) = (
            Mock::start("alpha"),
            Mock::start("beta"),
            Mock::start("gamma"),
        );
        let dead = DeadPort(free_port());
        let policy = policy();
        let mut setup = crate::harness::Setup::new(
            &policy,
            vec![("alpha", &alpha), ("beta", &beta), ("gamma", &gamma)],
        );
        setup.extra_upstreams = vec![("dead".to_string(), dead.0)];
        let envoy =
            Envoy::launch(setup).unwrap_or_else(|log| panic!("Envoy did not start:\n{log}"));
        Stack {
            alpha,
            beta,
            gamma,
            envoy,
        }
    })
}

struct DeadPort(u16);

impl Stack {
    /// Every upstream request of test `id`, in arrival order: (mock, model, content-length ok).
    fn attempts(&self, id: &str) -> Vec<(String, String)> {
        let mut all: Vec<(u64, String, String)> = Vec::new();
        for mock in [&self.alpha, &self.beta, &self.gamma] {
            for r in mock.requests_for(id) {
                let len = r["body_len"].as_u64().unwrap();
                let declared = r["content_length"]
                    .as_str()
                    .and_then(|v| v.parse::<u64>().ok());
                assert_eq!(
                    declared,
                    Some(len),
                    "content-length must match the body: {r}"
                );
                let body: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
                assert_eq!(
                    body["messages"][0]["content"], "hello",
                    "only the model changes: {r}"
                );
                all.push((
                    r["seq"].as_u64().unwrap(),
                    mock.name.clone(),
                    r["model"].as_str().unwrap_or("").to_string(),
                ));
            }
        }
        // seq is per mock; attempts of one request are sequential, so sort by arrival time proxy:
        // each mock's seq is monotonic and attempts never overlap, so order by (mock order in chain).
        all.into_iter().map(|(_, m, model)| (m, model)).collect()
    }

    fn send(&self, chain: &str, fault: &str, stream: bool) -> (String, Reply) {
        let id = new_id();
        let mut body = json!({"model": "auto", "messages": [{"role": "user", "content": "hello"}]});
        if stream {
            body["stream"] = json!(true);
        }
        let mut headers = vec![
            (TEST_ID, id.as_str()),
            ("content-type", "application/json"),
            ("x-mock-fault", fault),
        ];
        if !chain.is_empty() {
            headers.push(("x-chain", chain));
        }
        let reply = self.envoy.post(
            "/v1/chat/completions",
            body.to_string().as_bytes(),
            &headers,
        );
        (id, reply)
    }
}

#[test]
fn a_429_falls_back_to_the_next_model() {
    let s = stack();
    let (id, reply) = s.send("", "a1-model=429", false);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("x-model-router-model"), Some("b1"));
    assert_eq!(reply.header("x-model-router-attempts"), Some("2"));
    assert_eq!(reply.json()["model"], "b1-model");
    assert_eq!(
        s.attempts(&id),
        pairs(&[("alpha", "a1-model"), ("beta", "b1-model")])
    );
}

#[test]
fn a_503_and_an_upstream_reset_fall_back_too() {
    let s = stack();
    for fault in ["a1-model=503", "a1-model=reset"] {
        let (id, reply) = s.send("", fault, false);
        assert_eq!(reply.status, 200, "{fault}: {}", reply.body);
        assert_eq!(reply.header("x-model-router-model"), Some("b1"), "{fault}");
        assert_eq!(
            s.attempts(&id),
            pairs(&[("alpha", "a1-model"), ("beta", "b1-model")]),
            "{fault}"
        );
    }
}

#[test]
fn connection_refused_falls_back() {
    let s = stack();
    let (id, reply) = s.send("dg", "", false);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("x-model-router-model"), Some("g1"));
    assert_eq!(reply.header("x-model-router-attempts"), Some("2"));
    assert_eq!(s.attempts(&id), pairs(&[("gamma", "g1-model")]));
}

#[test]
fn a_three_model_chain_reaches_the_third() {
    let s = stack();
    let (id, reply) = s.send("abg", "a1-model=429,b1-model=503", false);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("x-model-router-model"), Some("g1"));
    assert_eq!(reply.header("x-model-router-attempts"), Some("3"));
    assert_eq!(
        s.attempts(&id),
        pairs(&[
            ("alpha", "a1-model"),
            ("beta", "b1-model"),
            ("gamma", "g1-model")
        ])
    );
}

#[test]
fn two_models_of_one_cluster() {
    let s = stack();
    let (id, reply) = s.send("aa", "a1-model=429", false);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("x-model-router-model"), Some("a2"));
    assert_eq!(
        s.attempts(&id),
        pairs(&[("alpha", "a1-model"), ("alpha", "a2-model")])
    );
}

#[test]
fn when_every_model_fails_the_client_gets_the_last_error() {
    let s = stack();
    let (id, reply) = s.send("abg", "*=503", false);
    assert_eq!(reply.status, 503);
    assert_eq!(
        reply.header("x-mock-provider"),
        Some("gamma"),
        "the last upstream's answer"
    );
    assert_eq!(
        s.attempts(&id).len(),
        3,
        "no retry past the end of the chain"
    );
}

#[test]
fn per_try_timeouts_bound_a_hanging_chain() {
    let s = stack();
    let start = Instant::now();
    let (id, reply) = s.send("abg", "*=hang", false);
    let elapsed = start.elapsed();
    assert_eq!(reply.status, 504, "{}", reply.body);
    assert_eq!(s.attempts(&id).len(), 3);
    // Three tries of 1.5 s each plus small back-offs; far below the 20 s route timeout.
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
}

#[test]
fn a_non_retriable_400_is_not_retried() {
    let s = stack();
    let (id, reply) = s.send("", "a1-model=400", false);
    assert_eq!(reply.status, 400);
    assert_eq!(s.attempts(&id), pairs(&[("alpha", "a1-model")]));
}

#[test]
fn streams_fall_back_before_the_first_byte() {
    let s = stack();
    let (id, reply) = s.send("", "a1-model=503", true);
    assert_eq!(reply.status, 200);
    assert!(reply
        .header("content-type")
        .unwrap_or_default()
        .starts_with("text/event-stream"));
    assert!(
        reply.body.contains("b1-model") && reply.body.contains("[DONE]"),
        "{}",
        reply.body
    );
    assert_eq!(reply.header("x-model-router-model"), Some("b1"));
    assert_eq!(
        s.attempts(&id),
        pairs(&[("alpha", "a1-model"), ("beta", "b1-model")])
    );
}

#[test]
fn a_variants_fields_go_to_its_attempt_only() {
    let s = stack();
    let (id, reply) = s.send("variants", "alpha=500", false);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("x-model-router-model"), Some("gpt-std"));
    assert_eq!(reply.header("x-model-router-attempts"), Some("2"));
    assert_eq!(
        s.attempts(&id),
        pairs(&[("alpha", "gpt-5"), ("beta", "gpt-5")])
    );
    let sent = |mock: &Mock| -> Vec<Value> {
        mock.requests_for(&id)
            .iter()
            .map(|r| serde_json::from_str(r["body"].as_str().unwrap()).unwrap())
            .collect()
    };
    let (first, second) = (sent(&s.alpha), sent(&s.beta));
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["service_tier"], "flex", "attempt 1: {}", first[0]);
    assert_eq!(second.len(), 1);
    assert!(
        second[0].get("service_tier").is_none(),
        "attempt 2 inherited the variant: {}",
        second[0]
    );
    // Without a fault, the variant serves, flex tier and all.
    let (id, reply) = s.send("variants", "", false);
    assert_eq!(reply.header("x-model-router-model"), Some("gpt-flex"));
    assert_eq!(s.attempts(&id), pairs(&[("alpha", "gpt-5")]));
    let served: Vec<Value> = s
        .alpha
        .requests_for(&id)
        .iter()
        .map(|r| serde_json::from_str(r["body"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(served[0]["service_tier"], "flex");
}
