//! Traffic across deployments through a real Envoy: model cooldowns that
//! honour Retry-After (shared by every worker), stalled attempts abandoned
//! by the per-try idle timeout, weighted splits, replicas with outlier
//! detection.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{
    new_id, provider_model, scrape, sum_of, try_send, Envoy, Mock, Reply, Setup, TEST_ID,
};

struct Stack {
    main: Mock,
    replica_ok: Mock,
    replica_bad: Mock,
    envoy: Envoy,
}

fn rule(name: &str, target: Value) -> Value {
    json!({"name": name, "when": {"header": {"name": "x-chain", "equals": name}}, "target": target})
}

fn policy() -> String {
    let mut models = serde_json::Map::new();
    for name in ["c1", "c2", "i1", "i2", "s1", "s2", "k1", "k2"] {
        models.insert(
            name.into(),
            provider_model("main", &format!("{name}-model")),
        );
    }
    models.insert("r1".into(), provider_model("replicas", "r1-model"));
    models.insert("f1".into(), provider_model("dead", "f1-model"));
    models.insert("f2".into(), provider_model("main", "f2-model"));
    json!({
        "models": models,
        "rules": [
            rule("cool", json!(["c1", "c2"])),
            rule("solo", json!(["c1"])),
            rule("idle", json!(["i1", "i2"])),
            rule("split", json!({"split": [
                {"target": "s1", "weight": 90},
                {"target": ["s2", "s1"], "weight": 10, "name": "candidate"},
                {"target": "c2", "weight": 0},
            ]})),
            rule("session", json!({"split": [
                {"target": "k1", "weight": 50}, {"target": "k2", "weight": 50},
            ], "key": {"header": "x-session-id"}})),
            rule("replicas", json!(["r1"])),
            rule("flaky", json!(["f1", "f2"])),
        ],
        "default": "s1",
        "retry": {"per_try_timeout_ms": 20000, "timeout_ms": 30000,
                  "base_interval_ms": 10, "max_interval_ms": 50, "per_try_idle_timeout_ms": 600},
        "cooldown": {"default_ms": 5000, "max_ms": 30000, "failure_threshold": 3, "failure_window_ms": 20000},
        "clusters": {"replicas": {"outlier_detection": {
            "consecutive_5xx": 2, "base_ejection_time_ms": 60000, "max_ejection_percent": 50}}},
    })
    .to_string()
}

fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| {
        let main = Mock::start("main");
        let replica_ok = Mock::start("replica-ok");
        let replica_bad = Mock::start_with("replica-bad", &["--fault", "*=500"]);
        let policy = policy();
        let mut setup = Setup::new(
            &policy,
            vec![
                ("main", &main),
                ("replicas", &replica_ok),
                ("replicas", &replica_bad),
            ],
        );
        // Nobody listens on the dead cluster's port: every attempt fails to connect.
        setup.extra_upstreams = vec![("dead".to_string(), crate::harness::free_port())];
        let envoy =
            Envoy::launch(setup).unwrap_or_else(|log| panic!("Envoy did not start:\n{log}"));
        Stack {
            main,
            replica_ok,
            replica_bad,
            envoy,
        }
    })
}

impl Stack {
    fn send(&self, chain: &str, headers: &[(&str, &str)], stream: bool) -> (String, Reply) {
        let id = new_id();
        let mut body = json!({"model": "auto", "messages": [{"role": "user", "content": "hello"}]});
        if stream {
            body["stream"] = json!(true);
        }
        let mut all = vec![
            (TEST_ID, id.as_str()),
            ("content-type", "application/json"),
            ("x-chain", chain),
        ];
        all.extend_from_slice(headers);
        let reply = self
            .envoy
            .post("/v1/chat/completions", body.to_string().as_bytes(), &all);
        (id, reply)
    }

    /// The provider models the main mock received for test `id`, in order.
    fn models_of(&self, id: &str) -> Vec<String> {
        self.main
            .requests_for(id)
            .iter()
            .map(|r| r["model"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

fn served(reply: &Reply) -> String {
    reply
        .header("x-model-router-model")
        .unwrap_or("?")
        .to_string()
}

fn metric(envoy: &Envoy, name: &str, labels: &[(&str, &str)]) -> u64 {
    sum_of(&scrape(envoy), name, labels)
}

#[test]
fn a_429_with_retry_after_cools_the_model_then_it_returns() {
    let s = stack();
    let sent = Instant::now();
    let (id, reply) = s.send(
        "cool",
        &[("x-mock-fault", "c1-model=retry-after:2:429")],
        false,
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(served(&reply), "c2");
    assert_eq!(s.models_of(&id), ["c1-model", "c2-model"]);
    assert_eq!(
        metric(
            &s.envoy,
            "model_router_model_cooldowns_total",
            &[("model", "c1"), ("reason", "retry_after")]
        ),
        1
    );
    assert_eq!(metric(&s.envoy, "model_router_models_cooling_down", &[]), 1);

    // While c1 cools down, requests go straight to c2: one attempt, c1 never asked.
    let (id, reply) = s.send("cool", &[], false);
    assert_eq!(
        (
            served(&reply).as_str(),
            reply.header("x-model-router-attempts")
        ),
        ("c2", Some("1"))
    );
    assert_eq!(s.models_of(&id), ["c2-model"]);
    // A chain whose every model cools down still goes to the one ending first.
    let (_, reply) = s.send("solo", &[], false);
    assert_eq!((reply.status, served(&reply).as_str()), (200, "c1"));

    // Poll until c1 serves again: not before the 2 s (the cooldown began
    // after `sent`), and soon after them (generous: the machine is loaded).
    let back = loop {
        let (_, reply) = s.send("cool", &[], false);
        assert_eq!(reply.status, 200);
        if served(&reply) == "c1" {
            break sent.elapsed();
        }
        assert!(
            sent.elapsed() < Duration::from_secs(6),
            "c1 never came back"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(back >= Duration::from_millis(1_950), "back after {back:?}");
    assert!(back <= Duration::from_millis(4_000), "back after {back:?}");
    // The gauge falls on the next tick (1 s).
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(&s.envoy, "model_router_models_cooling_down", &[]) != 0 {
        assert!(Instant::now() < deadline, "gauge stayed up");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_stalled_attempt_falls_back_within_the_idle_timeout() {
    let s = stack();
    for stream in [false, true] {
        let started = Instant::now();
        let (id, reply) = s.send("idle", &[("x-mock-fault", "i1-model=hang")], stream);
        let took = started.elapsed();
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(served(&reply), "i2");
        assert_eq!(s.models_of(&id), ["i1-model", "i2-model"]);
        // Idle timeout 600 ms; the per-try timeout (20 s) never came into play.
        assert!(took >= Duration::from_millis(550), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
        if stream {
            assert!(reply.body.contains("data: [DONE]"), "{}", reply.body);
        }
    }
}

#[test]
fn a_stream_that_stalls_after_its_first_byte_is_cut_not_replayed() {
    let s = stack();
    // Headers go out at once; the first event only after 3 s > the idle timeout.
    let id = new_id();
    let body = json!({"model": "auto", "stream": true, "messages": [{"role": "user", "content": "hello"}]});
    let headers = [
        (TEST_ID, id.as_str()),
        ("content-type", "application/json"),
        ("x-chain", "idle"),
        ("x-mock-fault", "i1-model=first-byte-delay:3000"),
    ];
    let started = Instant::now();
    let outcome = try_send(
        "POST",
        &s.envoy.url("/v1/chat/completions"),
        Some(body.to_string().as_bytes()),
        &headers,
    );
    // The client already has the 200 and its headers: Envoy resets the
    // stream at the idle timeout instead of replaying it to the next model.
    match outcome {
        Err(_) => {}
        Ok(reply) => assert!(!reply.body.contains("[DONE]"), "{}", reply.body),
    }
    assert!(
        started.elapsed() < Duration::from_millis(2_900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(s.models_of(&id), ["i1-model"]);
}

#[test]
fn a_90_10_split_lands_within_its_binomial_bound() {
    let s = stack();
    const N: usize = 2_000;
    const THREADS: usize = 8;
    let counts: Vec<(usize, usize)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                scope.spawn(|| {
                    let mut seen = (0, 0);
                    for _ in 0..N / THREADS {
                        let (_, reply) = s.send("split", &[], false);
                        assert_eq!(reply.status, 200, "{}", reply.body);
                        match served(&reply).as_str() {
                            "s1" => seen.0 += 1,
                            "s2" => seen.1 += 1,
                            other => panic!("served by {other}"),
                        }
                    }
                    seen
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let candidate: usize = counts.iter().map(|c| c.1).sum();
    // Binomial(2000, 0.1): mean 200, sd 13.4; ±5 sd.
    assert!(
        (133..=267).contains(&candidate),
        "candidate branch got {candidate} of {N}"
    );
    let arm = |branch: &str| {
        metric(
            &s.envoy,
            "model_router_requests_total",
            &[("rule", "split"), ("branch", branch)],
        )
    };
    assert_eq!(arm("candidate") as usize, candidate);
    assert_eq!(arm("s1") as usize, N - candidate);
    assert_eq!(arm("c2"), 0, "a weight of 0 gets nothing");
}

#[test]
fn a_session_key_keeps_every_request_of_a_session_on_one_branch() {
    let s = stack();
    let mut branches = std::collections::BTreeSet::new();
    for session in 0..40 {
        let key = format!("session-{session}");
        let models: std::collections::BTreeSet<String> = (0..4)
            .map(|_| served(&s.send("session", &[("x-session-id", &key)], false).1))
            .collect();
        assert_eq!(models.len(), 1, "{key} saw {models:?}");
        branches.extend(models);
    }
    assert_eq!(branches.into_iter().collect::<Vec<_>>(), ["k1", "k2"]);
    // The audit record names the branch.
    let log = std::fs::read_to_string(&s.envoy.access_log).unwrap();
    let decision: Value = log
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["rule"] == "session")
        .map(|l| serde_json::from_str(l["decision"].as_str().unwrap()).unwrap())
        .unwrap();
    assert!(
        ["k1", "k2"].contains(&decision["branch"].as_str().unwrap()),
        "{decision}"
    );
    assert_eq!(decision["branch_by"], "key");
}

#[test]
fn an_ejected_replica_stops_receiving_traffic_while_its_sibling_serves() {
    let s = stack();
    let mut replies = Vec::new();
    for _ in 0..30 {
        replies.push(s.send("replicas", &[], false).1.status);
    }
    let bad = s.replica_bad.requests().len();
    // Ejected at its 2nd consecutive 5xx (the chain has one model, so a
    // request that met it got the 500). Least-request picks between two idle
    // hosts at random, so the bad one is met twice within 30 requests
    // (all but surely: 31 / 2^30 it is not).
    assert_eq!(bad, 2, "the failing replica got {bad} requests");
    assert_eq!(s.replica_ok.requests().len(), 28);
    assert!(
        replies.iter().filter(|s| **s == 500).count() == 2
            && replies.iter().filter(|s| **s == 200).count() == 28,
        "{replies:?}"
    );
    // Envoy counts the ejection on its main thread: allow it a moment.
    let stat = "cluster.replicas.outlier_detection.ejections_enforced_total";
    let deadline = Instant::now() + Duration::from_secs(3);
    while s.envoy.stat(stat) < 1 {
        assert!(
            Instant::now() < deadline,
            "{stat} = {}, bad = {bad}",
            s.envoy.stat(stat)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn connect_failures_past_the_threshold_cool_the_model() {
    let s = stack();
    for _ in 0..3 {
        let (_, reply) = s.send("flaky", &[], false);
        assert_eq!((reply.status, served(&reply).as_str()), (200, "f2"));
        assert_eq!(reply.header("x-model-router-attempts"), Some("2"));
    }
    assert_eq!(
        metric(
            &s.envoy,
            "model_router_model_cooldowns_total",
            &[("model", "f1"), ("reason", "failures")]
        ),
        1
    );
    // The third failure started a cooldown: no more attempts at the dead cluster.
    let (id, reply) = s.send("flaky", &[], false);
    assert_eq!(reply.header("x-model-router-attempts"), Some("1"));
    assert_eq!(s.models_of(&id), ["f2-model"]);
}
