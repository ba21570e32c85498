//! Host calls per request, counted: each one is a crossing between V8 and
//! Envoy, so their number is part of the per-request cost (issue 17). The
//! 1 KB chat request of `scripts/bench`, with its policy, through the whole
//! lifecycle over the in-memory host; split into the calls made before the
//! request is forwarded (its latency) and after (the response and the log
//! phase). The bounds are today's counts: a change that adds host calls
//! to the request path has to say so here.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use model_router_core::headers::Headers;
use model_router_core::metrics::Kind;

use crate::downstream::Downstream;
use crate::fake::FakeHost;
use crate::host::{Flow, Host};
use crate::root::{configure, Role};

const BENCH_POLICY: &str = include_str!("../../core/benches/policy.json");

/// A host that counts the calls it forwards to the fake one.
struct Counting<'a> {
    inner: &'a FakeHost,
    calls: RefCell<BTreeMap<&'static str, u32>>,
}

impl Counting<'_> {
    fn hit(&self, name: &'static str) {
        *self.calls.borrow_mut().entry(name).or_default() += 1;
    }

    fn take(&self) -> BTreeMap<&'static str, u32> {
        std::mem::take(&mut self.calls.borrow_mut())
    }
}

impl Host for Counting<'_> {
    fn request_headers(&self) -> Headers {
        self.hit("request_headers");
        self.inner.request_headers()
    }
    fn response_headers(&self) -> Headers {
        self.hit("response_headers");
        self.inner.response_headers()
    }
    fn request_header(&self, name: &str) -> Option<String> {
        self.hit("request_header");
        Host::request_header(self.inner, name)
    }
    fn response_header(&self, name: &str) -> Option<String> {
        self.hit("response_header");
        Host::response_header(self.inner, name)
    }
    fn set_request_header(&self, name: &str, value: Option<&str>) {
        self.hit("set_request_header");
        self.inner.set_request_header(name, value)
    }
    fn set_response_header(&self, name: &str, value: Option<&str>) {
        self.hit("set_response_header");
        self.inner.set_response_header(name, value)
    }
    fn request_body(&self, size: usize) -> Vec<u8> {
        self.hit("request_body");
        self.inner.request_body(size)
    }
    fn replace_request_body(&self, old_size: usize, body: &[u8]) {
        self.hit("replace_request_body");
        self.inner.replace_request_body(old_size, body)
    }
    fn replace_response_body(&self, old_size: usize, body: &[u8]) {
        self.hit("replace_response_body");
        self.inner.replace_response_body(old_size, body)
    }
    fn response_body_chunk(&self, size: usize) -> Vec<u8> {
        self.hit("response_body_chunk");
        self.inner.response_body_chunk(size)
    }
    fn set_filter_state(&self, name: &str, value: &str) {
        self.hit("set_filter_state");
        self.inner.set_filter_state(name, value)
    }
    fn filter_state(&self, name: &str) -> Option<String> {
        self.hit("filter_state");
        self.inner.filter_state(name)
    }
    fn clear_route_cache(&self) {
        self.hit("clear_route_cache");
        self.inner.clear_route_cache()
    }
    fn send_json_reply(&self, status: u32, body: &str) {
        self.hit("send_json_reply");
        self.inner.send_json_reply(status, body)
    }
    fn now_micros(&self) -> u64 {
        self.hit("now_micros");
        self.inner.now_micros()
    }
    fn define_metric(&self, kind: Kind, name: &str) -> Option<u32> {
        self.hit("define_metric");
        self.inner.define_metric(kind, name)
    }
    fn update_metric(&self, kind: Kind, id: u32, value: u64) {
        self.hit("update_metric");
        self.inner.update_metric(kind, id, value)
    }
    fn get_shared_data(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        self.hit("get_shared_data");
        self.inner.get_shared_data(key)
    }
    fn set_shared_data(&self, key: &str, value: Option<&[u8]>, cas: Option<u32>) -> bool {
        self.hit("set_shared_data");
        self.inner.set_shared_data(key, value, cas)
    }
}

fn total(calls: &BTreeMap<&'static str, u32>) -> u32 {
    calls.values().sum()
}

/// The routing filter's state for the bench policy, the bench's 1 KB chat
/// request and the provider's answer to it.
fn bench_request() -> (Rc<crate::root::Shared>, String, &'static str) {
    let shared =
        Rc::new(configure(&FakeHost::default(), BENCH_POLICY.as_bytes(), Role::Routing).unwrap());
    let prompt =
        "the router sends each request to a model whose price and context window fit ".repeat(12);
    let body = serde_json::json!({"model": "auto", "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": &prompt[..900]}]})
    .to_string();
    let answer = r#"{"id":"c1","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hi."},"finish_reason":"stop"}],"usage":{"prompt_tokens":230,"completion_tokens":2,"total_tokens":232}}"#;
    (shared, body, answer)
}

/// The next request on `first`'s VM: the bench request's headers and `body`.
fn next_request(first: &FakeHost, body: &str) -> FakeHost {
    let length = body.len().to_string();
    first.next(
        &[
            (":method", "POST"),
            (":path", "/v1/chat/completions"),
            ("content-length", &length),
            ("x-request-id", "r-1"),
        ],
        body,
    )
}

#[test]
fn host_calls_per_request_before_and_after_forwarding() {
    let (shared, body, answer) = bench_request();
    let first = FakeHost::default();
    let mut counts = Vec::new();
    // The second request is the steady state: metric ids are defined once per VM.
    for _ in 0..2 {
        let fake = next_request(&first, &body);
        let host = Counting {
            inner: &fake,
            calls: RefCell::default(),
        };
        let mut filter = Downstream::new(Some(Rc::clone(&shared)));
        assert_eq!(filter.on_request_headers(&host, false), Flow::Pause);
        assert_eq!(
            filter.on_request_body(&host, body.len(), true),
            Flow::Continue
        );
        let request = host.take();
        fake.set_response(&[(":status", "200"), ("content-type", "application/json")]);
        filter.on_response_headers(&host, false);
        fake.set_response_chunk(answer);
        filter.on_response_body(&host, answer.len(), true);
        let response = host.take();
        filter.on_log(&host);
        let log = host.take();
        counts.push((request, response, log));
    }
    let (request, response, log) = &counts[1];
    println!(
        "host calls, request phase ({}): {request:?}",
        total(request)
    );
    println!(
        "host calls, response phase ({}): {response:?}",
        total(response)
    );
    println!("host calls, log phase ({}): {log:?}", total(log));
    // Today's counts (issue 17): no metric and no billing on the request or
    // response path; they are all in the log phase.
    assert!(!request.contains_key("update_metric") && !response.contains_key("update_metric"));
    // 14 since issue 13: one shared-data read of the models' cooldowns.
    assert!(total(request) <= 14, "{request:?}");
    assert!(total(response) <= 7, "{response:?}");
    // 5 since issue 17 (14 before): counters and gauges wait in the VM for
    // the root's tick; only the two histograms are sent per request.
    assert!(total(log) <= 5, "{log:?}");
    assert_eq!(log.get("update_metric"), Some(&2), "{log:?}");
    // The tick sends each counter once, however many requests added to it
    // (and a counter incremented by 0 not at all: Envoy refuses it; the
    // fake host fails the test if one is).
    let fake = next_request(&first, &body);
    let host = Counting {
        inner: &fake,
        calls: RefCell::default(),
    };
    crate::root::tick(&host, &shared);
    let tick = host.take();
    println!(
        "host calls, tick after two requests ({}): {tick:?}",
        total(&tick)
    );
    let flushed = tick.get("update_metric").copied().unwrap_or(0);
    assert!((1..=10).contains(&flushed), "{tick:?}");
    // ... and what it sends is the sum: two requests counted.
    let base = model_router_core::metrics::REQUESTS;
    let requests: u64 = fake
        .metric_names()
        .iter()
        .filter(|n| n.as_str() == base || n.starts_with(&format!("{base};")))
        .map(|n| fake.counter(n))
        .sum();
    assert_eq!(requests, 2);
}

/// A profiling aid, not a check (it asserts nothing and is ignored): the
/// in-VM work of each phase of the bench request, natively. Instructions:
/// `valgrind --tool=callgrind target/release/deps/model_router-… \
///   per_phase_work_of_the_bench_request --ignored --nocapture`
/// (`N=…` sets the number of requests; `scripts/bench` gives V8's figures).
#[test]
#[ignore]
fn per_phase_work_of_the_bench_request() {
    let (shared, body, answer) = bench_request();
    let first = FakeHost::default();
    let n: u32 = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let mut spent = [std::time::Duration::ZERO; 4];
    for i in 0..n + 200 {
        let fake = next_request(&first, &body);
        let mut filter = Downstream::new(Some(Rc::clone(&shared)));
        let started = std::time::Instant::now();
        filter.on_request_headers(&fake, false);
        filter.on_request_body(&fake, body.len(), true);
        let forwarded = std::time::Instant::now();
        fake.set_response(&[(":status", "200"), ("content-type", "application/json")]);
        let answered = std::time::Instant::now();
        filter.on_response_headers(&fake, false);
        fake.set_response_chunk(answer);
        let headers_done = std::time::Instant::now();
        filter.on_response_body(&fake, answer.len(), true);
        let body_done = std::time::Instant::now();
        filter.on_log(&fake);
        let logged = std::time::Instant::now();
        if i >= 200 {
            spent[0] += forwarded - started;
            spent[1] += headers_done - answered;
            spent[2] += body_done - headers_done;
            spent[3] += logged - body_done;
        }
    }
    let phases = [
        "request (decide, rewrite)",
        "response headers",
        "response body",
        "log (bill, count, remember)",
    ];
    for (phase, d) in phases.iter().zip(spent) {
        println!("{phase}: {:.1} µs", d.as_secs_f64() * 1e6 / f64::from(n));
    }
}

#[test]
fn a_first_attempt_costs_the_upstream_filter_two_header_reads() {
    let shared = Rc::new(
        configure(
            &FakeHost::default(),
            BENCH_POLICY.as_bytes(),
            Role::Upstream,
        )
        .unwrap(),
    );
    let (_, body, _) = bench_request();
    let fake = next_request(&FakeHost::default(), &body);
    let host = Counting {
        inner: &fake,
        calls: RefCell::default(),
    };
    let mut attempt = crate::upstream::Upstream::new(Some(shared));
    assert_eq!(attempt.on_request_headers(&host, false), Flow::Continue);
    assert_eq!(
        attempt.on_request_body(&host, body.len(), true),
        Flow::Continue
    );
    fake.set_response(&[(":status", "200")]);
    attempt.on_response_headers(&host);
    attempt.on_done(&host);
    let calls = host.take();
    println!("host calls, upstream filter, first attempt: {calls:?}");
    // The attempt number and the status, one header each (not the maps).
    let expected: BTreeMap<&str, u32> = [("request_header", 1), ("response_header", 1)].into();
    assert_eq!(calls, expected);
}
