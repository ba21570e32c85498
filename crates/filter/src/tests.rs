//! The filter's request lifecycle, natively, over the in-memory host: what
//! it does to requests and responses, what it counts, and what it leaves
//! alone. The end-to-end tests (tests/e2e) prove the same through Envoy.

use std::rc::Rc;

use model_router_core::headers::{CHAIN_STATE, DECISION_STATE, MODEL_HEADER, RULE_HEADER};
use model_router_core::metrics;

use crate::downstream::Downstream;
use crate::fake::FakeHost;
use crate::host::{Flow, Host};

use crate::root::{configure, Role, Shared};
use crate::upstream::Upstream;

/// Two models on two clusters: short prompts go to `small` then `large`.
const POLICY: &str = r#"{
  "models": {
    "small": {"cluster": "c-small", "provider_model": "small-v1", "context_window": 8000,
              "pricing": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}},
    "large": {"cluster": "c-large", "context_window": 128000,
              "pricing": {"input_per_mtok": 10.0, "output_per_mtok": 20.0}}
  },
  "rules": [{"name": "short", "when": {"prompt_tokens": {"lt": 1000}}, "target": ["small", "large"]}],
  "default": "large",
  "tenant_header": "x-team"
}"#;

const CHAT: &str = r#"{"model":"auto","messages":[{"role":"user","content":"Hello there"}]}"#;

fn shared(policy: &str) -> Rc<Shared> {
    Rc::new(configure(&FakeHost::default(), policy.as_bytes(), Role::Routing).unwrap())
}

fn chat_request(body: &str) -> FakeHost {
    let length = body.len().to_string();
    FakeHost::with_request(
        &[
            (":method", "POST"),
            (":path", "/v1/chat/completions"),
            ("content-length", &length),
            ("x-team", "search"),
        ],
        body,
    )
}

/// Runs the request side through the routing filter: headers, then the whole body.
fn send(filter: &mut Downstream, host: &FakeHost) -> (Flow, Flow) {
    let size = host.state.borrow().request_body.len();
    let headers = filter.on_request_headers(host, size == 0);
    let body = if size == 0 {
        Flow::Continue
    } else {
        filter.on_request_body(host, size, true)
    };
    (headers, body)
}

/// Answers with `headers` and the body in one chunk.
fn respond(filter: &mut Downstream, host: &FakeHost, headers: &[(&str, &str)], body: &str) {
    host.set_response(headers);
    assert_eq!(filter.on_response_headers(host, false), Flow::Continue);
    host.set_response_chunk(body);
    assert_eq!(
        filter.on_response_body(host, body.len(), true),
        Flow::Continue
    );
    filter.on_log(host); // Envoy's log phase: billing and metrics
    filter.tick(host); // the root's timer: batched metrics are sent
}

/// The sum of every counter named `base` whose labels include `labels`.
fn counter(host: &FakeHost, base: &str, labels: &str) -> u64 {
    let metrics = host.metrics.borrow();
    metrics
        .ids
        .iter()
        .filter(|(name, _)| name.starts_with(base) && name.contains(labels))
        .filter_map(|(_, id)| metrics.values.get(id))
        .flatten()
        .sum()
}

#[test]
fn requests_that_are_not_llm_calls_pass_untouched() {
    let shared = shared(POLICY);
    for (method, path) in [
        ("GET", "/healthz"),
        ("POST", "/v1/embeddings"),
        ("GET", "/v1/chat/completions"),
    ] {
        let host = FakeHost::with_request(&[(":method", method), (":path", path)], "{}");
        let mut filter = Downstream::new(Some(shared.clone()));
        assert_eq!(
            filter.on_request_headers(&host, false),
            Flow::Continue,
            "{method} {path}"
        );
        assert_eq!(filter.on_request_body(&host, 2, true), Flow::Continue);
        respond(&mut filter, &host, &[(":status", "200")], "{}");
        filter.on_log(&host);
        let state = host.state.borrow();
        assert_eq!(state.request_body, b"{}");
        // No metric but the gauge the root's timer sets (`respond` ticks).
        let counted = host.metric_names();
        assert!(
            state.filter_state.is_empty()
                && counted.iter().all(|n| n == metrics::MODELS_COOLING_DOWN)
                && state.reply.is_none(),
            "{counted:?}"
        );
        assert_eq!(
            state.response_headers,
            vec![(":status".to_string(), "200".to_string())]
        );
    }
}

#[test]
fn a_filter_without_a_policy_does_nothing() {
    let host = chat_request(CHAT);
    let mut filter = Downstream::new(None);
    assert_eq!(send(&mut filter, &host), (Flow::Continue, Flow::Continue));
    assert_eq!(host.body(), CHAT);
}

#[test]
fn a_routed_request_gets_its_model_cluster_and_chain() {
    let host = chat_request(CHAT);
    let mut filter = Downstream::new(Some(shared(POLICY)));
    // The headers are held until the body is read; then the request goes on.
    assert_eq!(send(&mut filter, &host), (Flow::Pause, Flow::Continue));
    let body = host.body();
    assert_eq!(
        body,
        CHAT.replace(r#""model":"auto""#, r#""model":"small-v1""#)
    );
    assert_eq!(
        host.request_header("content-length"),
        Some(body.len().to_string())
    );
    assert_eq!(
        host.request_header("x-model-router-cluster").as_deref(),
        Some("c-small")
    );
    assert_eq!(
        host.request_header("x-envoy-max-retries").as_deref(),
        Some("1")
    );
    assert_eq!(
        host.filter_state_value("model_router_try_1").as_deref(),
        Some("c-small")
    );
    assert_eq!(
        host.filter_state_value("model_router_try_2").as_deref(),
        Some("c-large")
    );
    assert_eq!(
        host.filter_state_value(CHAIN_STATE).as_deref(),
        Some("small,large")
    );
    assert_eq!(host.state.borrow().route_cache_cleared, 1);
    let audit: serde_json::Value =
        serde_json::from_str(&host.filter_state_value(DECISION_STATE).unwrap()).unwrap();
    assert_eq!(audit["rule"], "short");
    assert_eq!(audit["tenant"], "search");
}

#[test]
fn headers_only_the_router_may_set_are_removed() {
    let host = chat_request(CHAT);
    host.state.borrow_mut().request_headers.extend([
        ("x-model-router-cluster".to_string(), "c-large".to_string()),
        ("x-envoy-max-retries".to_string(), "9".to_string()),
        ("x-model-router-model".to_string(), "forged".to_string()),
    ]);
    let mut filter = Downstream::new(Some(shared(POLICY)));
    send(&mut filter, &host);
    assert_eq!(
        host.request_header("x-model-router-cluster").as_deref(),
        Some("c-small")
    );
    assert_eq!(
        host.request_header("x-envoy-max-retries").as_deref(),
        Some("1")
    );
    assert_eq!(host.request_header("x-model-router-model"), None);
}

#[test]
fn an_invalid_body_passes_through_by_default_and_is_counted() {
    let host = chat_request("{not json");
    let mut filter = Downstream::new(Some(shared(POLICY)));
    assert_eq!(send(&mut filter, &host), (Flow::Pause, Flow::Continue));
    assert_eq!(host.body(), "{not json");
    assert!(host.state.borrow().reply.is_none());
    // Sent, unchanged, to the default model's cluster, with no fallback.
    assert_eq!(
        host.request_header("x-model-router-cluster").as_deref(),
        Some("c-large")
    );
    assert_eq!(
        host.request_header("x-envoy-max-retries").as_deref(),
        Some("0")
    );
    respond(&mut filter, &host, &[(":status", "400")], "{}");
    assert_eq!(counter(&host, metrics::INVALID_REQUESTS, ""), 1);
    assert_eq!(counter(&host, metrics::USAGE_MISSING, ""), 1);
}

#[test]
fn an_invalid_body_is_answered_locally_when_the_policy_rejects() {
    let policy = POLICY.replacen('{', r#"{"on_invalid_request": "reject","#, 1);
    let host = chat_request(r#"{"model":"auto","messages":"not a list"}"#);
    let mut filter = Downstream::new(Some(shared(&policy)));
    assert_eq!(send(&mut filter, &host).1, Flow::Pause);
    let (status, body) = host.state.borrow().reply.clone().unwrap();
    assert_eq!(status, 400);
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("messages"),
        "{body}"
    );
    filter.tick(&host);
    assert_eq!(counter(&host, metrics::REJECTED, ""), 1);
    assert!(host.request_header("x-model-router-cluster").is_none());
    // Counted once, as a rejection (no model served it); nothing more happens.
    filter.on_log(&host);
    filter.tick(&host);
    assert_eq!(
        counter(&host, metrics::REJECTED, "reason=invalid_request"),
        1
    );
    assert_eq!(counter(&host, metrics::REQUESTS, ""), 0);
}

#[test]
fn a_request_without_a_body_is_decided_at_once() {
    let policy = POLICY.replacen('{', r#"{"on_invalid_request": "reject","#, 1);
    let host = FakeHost::with_request(
        &[(":method", "POST"), (":path", "/v1/chat/completions")],
        "",
    );
    let mut filter = Downstream::new(Some(shared(&policy)));
    assert_eq!(filter.on_request_headers(&host, true), Flow::Pause);
    assert_eq!(host.state.borrow().reply.as_ref().map(|r| r.0), Some(400));
}

#[test]
fn a_budget_the_request_cannot_meet_gets_a_402_when_the_policy_rejects() {
    let policy = POLICY.replacen(
        '{',
        r#"{"budget_header": "x-budget", "on_budget_exceeded": "reject","#,
        1,
    );
    let host = chat_request(CHAT);
    host.state
        .borrow_mut()
        .request_headers
        .push(("x-budget".to_string(), "0.0000000001".to_string()));
    let mut filter = Downstream::new(Some(shared(&policy)));
    assert_eq!(send(&mut filter, &host).1, Flow::Pause);
    assert_eq!(host.state.borrow().reply.as_ref().map(|r| r.0), Some(402));
}

#[test]
fn json_usage_is_billed_and_the_decision_described() {
    let host = chat_request(CHAT);
    let mut filter = Downstream::new(Some(shared(POLICY)));
    send(&mut filter, &host);
    let usage = r#"{"id":"x","choices":[],"usage":{"prompt_tokens":1000,"completion_tokens":500}}"#;
    respond(
        &mut filter,
        &host,
        &[
            (":status", "200"),
            ("content-type", "application/json"),
            ("x-model-router-rule", "forged"),
        ],
        usage,
    );
    assert_eq!(host.response_header(RULE_HEADER).as_deref(), Some("short"));
    assert_eq!(host.response_header(MODEL_HEADER).as_deref(), Some("small"));
    assert_eq!(counter(&host, metrics::PROMPT_TOKENS, "model=small"), 1000);
    assert_eq!(
        counter(&host, metrics::COMPLETION_TOKENS, "model=small"),
        500
    );
    // 1000 × $1/M + 500 × $2/M = $0.002 = 2000 µUSD.
    assert_eq!(counter(&host, metrics::COST, "model=small"), 2000);
    assert_eq!(counter(&host, metrics::REQUESTS, "tenant=search"), 1);
    assert_eq!(host.metric(metrics::DECISION_TIME_HISTOGRAM).len(), 1);
    let audit: serde_json::Value =
        serde_json::from_str(&host.filter_state_value(DECISION_STATE).unwrap()).unwrap();
    assert_eq!(audit["billed"]["cost_usd"], 0.002, "{audit}");
    assert_eq!(audit["billed"]["usage_source"], "reported");
    // Completed once: a later log callback counts nothing more.
    filter.on_log(&host);
    filter.tick(&host);
    assert_eq!(counter(&host, metrics::REQUESTS, ""), 1);
}

#[test]
fn streamed_usage_is_billed_for_the_model_that_answered_after_a_fallback() {
    let body = CHAT.replace(r#""model":"auto""#, r#""model":"auto","stream":true"#);
    let host = chat_request(&body);
    let mut filter = Downstream::new(Some(shared(POLICY)));
    send(&mut filter, &host);
    // The router asked for usage in the stream.
    assert!(
        host.body()
            .contains(r#""stream_options":{"include_usage":true}"#),
        "{}",
        host.body()
    );
    let sse = "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n\
               data: {\"choices\":[],\"usage\":{\"prompt_tokens\":40,\"completion_tokens\":2}}\n\n\
               data: [DONE]\n\n";
    respond(
        &mut filter,
        &host,
        &[
            (":status", "200"),
            ("content-type", "text/event-stream"),
            ("x-envoy-attempt-count", "2"),
        ],
        sse,
    );
    assert_eq!(host.response_header(MODEL_HEADER).as_deref(), Some("large"));
    assert_eq!(counter(&host, metrics::PROMPT_TOKENS, "model=large"), 40);
    assert_eq!(counter(&host, metrics::COMPLETION_TOKENS, "model=large"), 2);
    assert_eq!(counter(&host, metrics::FALLBACKS, ""), 1);
    assert_eq!(counter(&host, metrics::PROMPT_TOKENS, "model=small"), 0);
}

#[test]
fn a_response_without_usage_is_estimated_from_its_text() {
    let host = chat_request(CHAT);
    let mut filter = Downstream::new(Some(shared(POLICY)));
    send(&mut filter, &host);
    let reply = r#"{"choices":[{"message":{"role":"assistant","content":"Hello back"}}]}"#;
    respond(
        &mut filter,
        &host,
        &[(":status", "200"), ("content-type", "application/json")],
        reply,
    );
    assert_eq!(counter(&host, metrics::USAGE_ESTIMATED, ""), 1);
    assert!(counter(&host, metrics::COMPLETION_TOKENS, "model=small") > 0);
    // The prompt is billed with the router's own count for the serving model.
    assert!(counter(&host, metrics::PROMPT_TOKENS, "model=small") > 0);
}

#[test]
fn an_error_response_or_a_cut_off_stream_counts_usage_as_missing() {
    let shared = shared(POLICY);
    let host = chat_request(CHAT);
    let mut filter = Downstream::new(Some(shared.clone()));
    send(&mut filter, &host);
    respond(
        &mut filter,
        &host,
        &[(":status", "503")],
        r#"{"usage":{"prompt_tokens":9}}"#,
    );
    assert_eq!(counter(&host, metrics::USAGE_MISSING, ""), 1);
    assert_eq!(counter(&host, metrics::PROMPT_TOKENS, ""), 0);

    let host = host.next(
        &[(":method", "POST"), (":path", "/v1/chat/completions")],
        CHAT,
    );
    let mut filter = Downstream::new(Some(shared));
    send(&mut filter, &host);
    host.set_response(&[(":status", "200"), ("content-type", "text/event-stream")]);
    filter.on_response_headers(&host, false);
    filter.on_log(&host); // the client went away mid-stream
    filter.tick(&host);
    assert_eq!(counter(&host, metrics::USAGE_MISSING, ""), 2);
    assert_eq!(counter(&host, metrics::REQUESTS, ""), 2);
}

#[test]
fn a_retry_attempt_gets_its_own_model_in_the_body() {
    let shared =
        Rc::new(configure(&FakeHost::default(), POLICY.as_bytes(), Role::Upstream).unwrap());
    let routed = CHAT.replace("auto", "small-v1");
    let host = FakeHost::with_request(
        &[(":method", "POST"), ("x-envoy-attempt-count", "2")],
        &routed,
    );
    host.set_filter_state(CHAIN_STATE, "small,large");
    let mut filter = Upstream::new(Some(shared.clone()));
    assert_eq!(filter.on_request_headers(&host, false), Flow::Pause);
    assert_eq!(
        filter.on_request_body(&host, routed.len(), false),
        Flow::Pause
    );
    assert_eq!(
        filter.on_request_body(&host, routed.len(), true),
        Flow::Continue
    );
    assert_eq!(host.body(), CHAT.replace("auto", "large"));
    assert_eq!(
        host.request_header("content-length"),
        Some(host.body().len().to_string())
    );

    // The first attempt already carries the routing filter's body.
    let host = FakeHost::with_request(
        &[(":method", "POST"), ("x-envoy-attempt-count", "1")],
        &routed,
    );
    host.set_filter_state(CHAIN_STATE, "small,large");
    let mut filter = Upstream::new(Some(shared));
    assert_eq!(filter.on_request_headers(&host, false), Flow::Continue);
    assert_eq!(
        filter.on_request_body(&host, routed.len(), true),
        Flow::Continue
    );
    assert_eq!(host.body(), routed);
}

#[test]
fn an_invalid_policy_is_refused_with_its_json_path_and_counted() {
    let host = FakeHost::default();
    let bad = POLICY.replace(r#""default": "large""#, r#""default": "gpt5""#);
    let error = configure(&host, bad.as_bytes(), Role::Routing)
        .err()
        .unwrap();
    assert!(error.starts_with("default"), "{error}");
    assert!(error.contains("gpt5"), "{error}");
    assert_eq!(host.counter(metrics::POLICY_LOAD_FAILURES), 1);
    let error = configure(&host, b"\xff", Role::Routing).err().unwrap();
    assert!(error.contains("not UTF-8"), "{error}");
}

#[test]
fn a_429_on_any_attempt_cools_its_model_for_the_next_decisions() {
    let upstream =
        Rc::new(configure(&FakeHost::default(), POLICY.as_bytes(), Role::Upstream).unwrap());
    let routed = CHAT.replace("auto", "small-v1");
    let attempt = FakeHost::with_request(
        &[(":method", "POST"), ("x-envoy-attempt-count", "1")],
        &routed,
    );
    attempt.set_filter_state(CHAIN_STATE, "small,large");
    let mut filter = Upstream::new(Some(upstream));
    assert_eq!(filter.on_request_headers(&attempt, false), Flow::Continue);
    attempt.set_response(&[(":status", "429"), ("retry-after", "30")]);
    assert_eq!(filter.on_response_headers(&attempt), Flow::Continue);
    filter.on_done(&attempt);
    assert_eq!(
        counter(
            &attempt,
            metrics::COOLDOWNS,
            ";model=small;reason=retry_after"
        ),
        1
    );

    // Another worker's routing filter reads the same shared data.
    let routing = shared(POLICY);
    let host = chat_request(CHAT);
    *host.shared_data.borrow_mut() = attempt.shared_data.borrow().clone();
    let mut filter = Downstream::new(Some(routing));
    assert_eq!(send(&mut filter, &host), (Flow::Pause, Flow::Continue));
    assert_eq!(
        host.filter_state_value(CHAIN_STATE).as_deref(),
        Some("large")
    );
    let audit: serde_json::Value =
        serde_json::from_str(&host.filter_state_value(DECISION_STATE).unwrap()).unwrap();
    assert_eq!(audit["cooling_down"][0]["model"], "small");
    assert_eq!(audit["cooling_down"][0]["skipped"], true);
}

#[test]
fn an_attempt_that_ends_without_an_answer_counts_toward_the_failure_threshold() {
    let policy = POLICY.replace(
        r#""tenant_header": "x-team""#,
        r#""tenant_header": "x-team", "cooldown": {"failure_threshold": 2}"#,
    );
    let upstream =
        Rc::new(configure(&FakeHost::default(), policy.as_bytes(), Role::Upstream).unwrap());
    let host = FakeHost::with_request(&[(":method", "POST")], CHAT);
    host.set_filter_state(CHAIN_STATE, "small,large");
    for _ in 0..2 {
        let mut filter = Upstream::new(Some(upstream.clone()));
        filter.on_request_headers(&host, false);
        filter.on_done(&host); // no response headers: refused, reset or timed out
    }
    assert_eq!(
        counter(&host, metrics::COOLDOWNS, ";model=small;reason=failures"),
        1
    );
}

#[test]
fn top_share_windows_live_in_shared_data_seen_by_every_vm() {
    let artifact = include_str!("../../../tests/data/classifier/classifier.json");
    let policy = format!(
        r#"{{"models": {{"weak": {{"cluster": "w", "context_window": 8000}},
                        "strong": {{"cluster": "s", "context_window": 8000}}}},
            "classifiers": {{"d": {{"inline": {artifact}, "window": 10}}}},
            "rules": [{{"name": "hard", "when": {{"score": {{"classifier": "d", "top_share": 0.3}}}},
                        "target": "strong"}}],
            "default": "weak"}}"#
    );
    // Two VMs (workers): their own policy copies, one proxy-wide shared data.
    let (vm_a, vm_b) = (shared(&policy), shared(&policy));
    let data = Rc::new(std::cell::RefCell::new(crate::fake::SharedData::default()));
    let hard = r#"{"model":"auto","messages":[{"role":"user","content":"Derive the limit of the series: integral series limit derivative?"}]}"#;
    let mut clusters = Vec::new();
    for i in 0..12 {
        let mut host = chat_request(hard);
        host.shared_data = data.clone();
        let vm = if i % 2 == 0 { &vm_a } else { &vm_b };
        let mut filter = Downstream::new(Some(vm.clone()));
        send(&mut filter, &host);
        clusters.push(host.request_header("x-model-router-cluster").unwrap());
    }
    // The seed (training scores) puts this prompt in the top 30%; as the
    // shared window fills with its own score, it no longer is. Alternating
    // VMs see one window: a per-VM window would take twice as long.
    assert_eq!(
        clusters.first().map(String::as_str),
        Some("s"),
        "{clusters:?}"
    );
    assert_eq!(
        clusters.last().map(String::as_str),
        Some("w"),
        "{clusters:?}"
    );
    let windows = data.borrow();
    let (key, (bytes, cas)) = windows.iter().next().expect("a window in shared data");
    assert!(key.starts_with("model_router.score_window.d."), "{key}");
    assert_eq!(bytes.len(), 12 + 2 * 10, "header and ten u16 scores");
    assert_eq!(*cas, 12, "one compare-and-swap write per request");
}
