//! The quality loop over the in-memory host: request ids out, feedback in
//! (endpoint and header), attribution across requests through shared data,
//! bad bodies, unknown ids and a full store.

use std::rc::Rc;

use model_router_core::feedback::{self, store};
use model_router_core::headers::DECISION_STATE;

use crate::downstream::Downstream;
use crate::fake::FakeHost;
use crate::host::Flow;
use crate::root::{configure, Role, Shared};

const POLICY: &str = r#"{
  "models": {
    "small": {"cluster": "c-small", "context_window": 8000,
              "pricing": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}},
    "large": {"cluster": "c-large", "context_window": 128000,
              "pricing": {"input_per_mtok": 10.0, "output_per_mtok": 20.0}}
  },
  "rules": [{"name": "short", "when": {"prompt_tokens": {"lt": 1000}}, "target": "small"}],
  "default": "large",
  "tenant_header": "x-team"
}"#;

const CHAT: &str = r#"{"model":"auto","messages":[{"role":"user","content":"Hello there"}]}"#;
const ANSWER: &str =
    r#"{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}"#;

fn shared() -> Rc<Shared> {
    Rc::new(configure(&FakeHost::default(), POLICY.as_bytes(), Role::Routing).unwrap())
}

/// One routed chat request with request id `id`, answered 200, on `vm`'s shared data.
fn routed(vm: &FakeHost, shared: &Rc<Shared>, id: &str) -> FakeHost {
    let host = vm.next(
        &[
            (":method", "POST"),
            (":path", "/v1/chat/completions"),
            ("x-team", "search"),
            ("x-request-id", id),
        ],
        CHAT,
    );
    let mut filter = Downstream::new(Some(Rc::clone(shared)));
    assert_eq!(filter.on_request_headers(&host, false), Flow::Pause);
    assert_eq!(
        filter.on_request_body(&host, CHAT.len(), true),
        Flow::Continue
    );
    host.set_response(&[(":status", "200"), ("content-type", "application/json")]);
    filter.on_response_headers(&host, false);
    host.set_response_chunk(ANSWER);
    filter.on_response_body(&host, ANSWER.len(), true);
    filter.on_log(&host);
    filter.tick(&host); // the root's timer: batched metrics are sent
    host
}

/// Posts `body` to the feedback endpoint under `/gateway`; returns the local reply.
fn post_feedback(vm: &FakeHost, shared: &Rc<Shared>, body: &str) -> (Flow, (u32, String)) {
    let host = vm.next(
        &[
            (":method", "POST"),
            (":path", "/gateway/v1/router/feedback?x=1"),
        ],
        body,
    );
    let mut filter = Downstream::new(Some(Rc::clone(shared)));
    assert_eq!(filter.on_request_headers(&host, false), Flow::Pause);
    let flow = filter.on_request_body(&host, body.len(), true);
    filter.tick(&host);
    let reply = host.state.borrow().reply.clone().expect("answered locally");
    // Nothing was routed: no cluster, no decision.
    assert_eq!(host.request_header("x-model-router-cluster"), None);
    assert_eq!(host.filter_state_value(DECISION_STATE), None);
    (flow, reply)
}

fn counter(vm: &FakeHost, name: &str) -> u64 {
    vm.counter(name)
}

#[test]
fn a_routed_response_carries_its_request_id_also_in_the_audit_record() {
    let vm = FakeHost::default();
    let host = routed(&vm, &shared(), "req-1");
    assert_eq!(
        host.response_header(feedback::REQUEST_ID_HEADER).as_deref(),
        Some("req-1")
    );
    let audit: serde_json::Value =
        serde_json::from_str(&host.filter_state_value(DECISION_STATE).unwrap()).unwrap();
    assert_eq!(audit["request_id"], "req-1");
    assert_eq!(audit["served_model"], "small");
}

#[test]
fn feedback_is_answered_locally_and_attributed_to_what_served_the_request() {
    let (vm, shared) = (FakeHost::default(), shared());
    routed(&vm, &shared, "req-1");
    let (flow, reply) = post_feedback(&vm, &shared, r#"{"request_id":"req-1","score":0.25}"#);
    assert_eq!((flow, reply), (Flow::Pause, (204, String::new())));
    let (_, reply) = post_feedback(
        &vm,
        &shared,
        r#"{"request_id":"req-1","verdict":"good","label":"x"}"#,
    );
    assert_eq!(reply.0, 204);
    let labels = "model=small;rule=short;branch=none;tenant=search";
    assert_eq!(
        counter(
            &vm,
            &format!("{}{};{labels};verdict=bad", feedback::FEEDBACK, "")
        ),
        1
    );
    assert_eq!(
        counter(
            &vm,
            &format!("{};{labels};verdict=good", feedback::FEEDBACK)
        ),
        1
    );
    assert_eq!(
        counter(
            &vm,
            &format!("{};{labels};verdict=bad", feedback::FEEDBACK_SCORE)
        ),
        250
    );
    assert_eq!(
        counter(
            &vm,
            &format!("{};{labels};verdict=good", feedback::FEEDBACK_SCORE)
        ),
        1000
    );
    assert_eq!(counter(&vm, feedback::FEEDBACK_UNKNOWN), 0);
}

#[test]
fn bad_bodies_get_400_with_the_json_path_and_are_counted() {
    let (vm, shared) = (FakeHost::default(), shared());
    for (body, message) in [
        ("{nope", ".: invalid JSON"),
        (
            r#"{"request_id":"r","score":2}"#,
            "score: expected a number from 0 to 1",
        ),
        (r#"{"score":1}"#, "request_id: missing"),
        ("", ".: invalid JSON"),
    ] {
        let (flow, (status, reply)) = post_feedback(&vm, &shared, body);
        assert_eq!((flow, status), (Flow::Pause, 400), "{body}");
        let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
        let got = reply["error"]["message"].as_str().unwrap();
        assert!(got.starts_with(message), "{body}: {got}");
    }
    assert_eq!(counter(&vm, feedback::FEEDBACK_INVALID), 4);
}

#[test]
fn feedback_for_an_unknown_id_is_counted_not_attributed() {
    let (vm, shared) = (FakeHost::default(), shared());
    routed(&vm, &shared, "req-1");
    let (_, reply) = post_feedback(
        &vm,
        &shared,
        r#"{"request_id":"never-seen","verdict":"bad"}"#,
    );
    assert_eq!(reply.0, 204);
    assert_eq!(counter(&vm, feedback::FEEDBACK_UNKNOWN), 1);
    assert!(vm
        .metric_names()
        .iter()
        .all(|n| !n.starts_with(feedback::FEEDBACK) || n.starts_with(feedback::FEEDBACK_UNKNOWN)));
}

#[test]
fn a_full_ring_overwrites_its_oldest_request_and_counts_it() {
    let (vm, shared) = (FakeHost::default(), shared());
    // WIDTH + 1 ids that share one shared-data key.
    let key = store::key("seed");
    let ids: Vec<String> = (0..)
        .map(|n| format!("id-{n}"))
        .filter(|id| store::key(id) == key)
        .take(store::WIDTH + 1)
        .collect();
    for id in &ids {
        routed(&vm, &shared, id);
    }
    assert_eq!(counter(&vm, feedback::FEEDBACK_EVICTED), 1);
    post_feedback(
        &vm,
        &shared,
        &format!(r#"{{"request_id":"{}","verdict":"good"}}"#, ids[0]),
    );
    assert_eq!(counter(&vm, feedback::FEEDBACK_UNKNOWN), 1);
    post_feedback(
        &vm,
        &shared,
        &format!(r#"{{"request_id":"{}","verdict":"good"}}"#, ids[1]),
    );
    assert_eq!(counter(&vm, feedback::FEEDBACK_UNKNOWN), 1);
    assert_eq!(vm.shared_data.borrow().len(), 1);
}

#[test]
fn the_feedback_header_on_the_next_request_is_read_and_not_forwarded() {
    let (vm, shared) = (FakeHost::default(), shared());
    routed(&vm, &shared, "req-1");
    let host = vm.next(
        &[
            (":method", "POST"),
            (":path", "/v1/chat/completions"),
            ("x-request-id", "req-2"),
            (
                feedback::FEEDBACK_HEADER,
                "request_id=req-1; verdict=bad; label=tone",
            ),
        ],
        CHAT,
    );
    let mut filter = Downstream::new(Some(Rc::clone(&shared)));
    filter.on_request_headers(&host, false);
    assert_eq!(
        filter.on_request_body(&host, CHAT.len(), true),
        Flow::Continue
    );
    filter.tick(&host);
    assert_eq!(host.request_header(feedback::FEEDBACK_HEADER), None);
    assert_eq!(
        counter(
            &vm,
            &format!(
                "{};model=small;rule=short;branch=none;tenant=search;verdict=bad",
                feedback::FEEDBACK
            )
        ),
        1
    );
    // A malformed header is counted; the request it rides on goes on.
    let host = vm.next(
        &[
            (":method", "POST"),
            (":path", "/v1/chat/completions"),
            (feedback::FEEDBACK_HEADER, "junk"),
        ],
        CHAT,
    );
    let mut filter = Downstream::new(Some(Rc::clone(&shared)));
    filter.on_request_headers(&host, false);
    assert_eq!(
        filter.on_request_body(&host, CHAT.len(), true),
        Flow::Continue
    );
    filter.tick(&host);
    assert_eq!(counter(&vm, feedback::FEEDBACK_INVALID), 1);
}

#[test]
fn a_policy_without_feedback_remembers_nothing_and_counts_feedback_as_unknown() {
    let policy = POLICY.replacen('{', r#"{"feedback": false,"#, 1);
    let shared =
        Rc::new(configure(&FakeHost::default(), policy.as_bytes(), Role::Routing).unwrap());
    let vm = FakeHost::default();
    let host = routed(&vm, &shared, "req-1");
    // The request id still goes out (logs join on it); nothing is stored.
    assert_eq!(
        host.response_header(feedback::REQUEST_ID_HEADER).as_deref(),
        Some("req-1")
    );
    assert!(vm.shared_data.borrow().is_empty());
    let (_, reply) = post_feedback(&vm, &shared, r#"{"request_id":"req-1","score":1}"#);
    assert_eq!(reply.0, 204);
    assert_eq!(counter(&vm, feedback::FEEDBACK_UNKNOWN), 1);
}
