//! Issue 7: hostile and malformed input through the real Envoy. One row of
//! docs/bad-input.md per test: the status the client gets, what reached the
//! provider, and that Envoy and the filter are healthy afterwards (the next
//! valid request is routed correctly).
//!
//! The policy is the default `on_invalid_request: passthrough`: a body the
//! router cannot read goes unchanged to the default chain's first model, one
//! attempt, and the provider's own answer (here the mock's 400) reaches the
//! client. (With `reject` the router answers 400 itself: tests/e2e/routing.rs.)

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::{json, Value};

use crate::harness::{curl, header_of, new_id, raw_http, send, Envoy, Mock, Reply, TEST_ID};

/// `small` (alpha) serves everything that fits 100k tokens; `big` (beta) is
/// its fallback; `huge` (gamma, which keeps no records: they would be 5 MB)
/// is the only model whose window fits 5 MB of text.
fn policy() -> String {
    json!({
        "models": {
            "small": {"cluster": "alpha", "provider_model": "small-model", "context_window": 100_000,
                      "pricing": {"input_per_mtok": 0.1, "output_per_mtok": 0.2}},
            "big": {"cluster": "beta", "provider_model": "big-model", "context_window": 100_000,
                    "pricing": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}},
            "huge": {"cluster": "gamma", "provider_model": "huge-model", "context_window": 4_000_000,
                     "pricing": {"input_per_mtok": 5.0, "output_per_mtok": 10.0}},
        },
        "rules": [{"name": "big", "when": {"header": {"name": "x-route", "equals": "big"}}, "target": ["big"]}],
        "default": ["small", "big", "huge"],
        "retry": {"per_try_timeout_ms": 10000, "timeout_ms": 60000, "base_interval_ms": 10, "max_interval_ms": 50},
    })
    .to_string()
}

struct Stack {
    alpha: Mock,
    beta: Mock,
    _gamma: Mock,
    envoy: Envoy,
}

fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| {
        let (alpha, beta) = (Mock::start("alpha"), Mock::start("beta"));
        let gamma = Mock::start_with("gamma", &["--no-record"]);
        let envoy = Envoy::start(
            &policy(),
            vec![("alpha", &alpha), ("beta", &beta), ("gamma", &gamma)],
        );
        Stack {
            alpha,
            beta,
            _gamma: gamma,
            envoy,
        }
    })
}

const CHAT: &str = "/v1/chat/completions";

impl Stack {
    /// Every upstream request with this test id: (mock name, record).
    fn received(&self, id: &str) -> Vec<(String, Value)> {
        let mut all = Vec::new();
        for mock in [&self.alpha, &self.beta] {
            for record in mock.requests_for(id) {
                all.push((mock.name.clone(), record));
            }
        }
        all
    }

    /// The one upstream request with this id.
    fn only(&self, id: &str) -> (String, Value) {
        let mut all = self.received(id);
        let summary: String = format!("{all:?}").chars().take(400).collect();
        assert_eq!(all.len(), 1, "expected one upstream request: {summary}");
        all.remove(0)
    }

    /// Posts raw body bytes with extra headers (content-type JSON unless given).
    fn post(&self, body: &[u8], headers: &[(&str, &str)]) -> (String, Reply) {
        let id = new_id();
        let mut all = vec![(TEST_ID, id.as_str())];
        if !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        {
            all.push(("content-type", "application/json"));
        }
        all.extend_from_slice(headers);
        let reply = self.envoy.post(CHAT, body, &all);
        (id, reply)
    }

    /// The body reached the default model's cluster byte for byte, once,
    /// and the provider's answer reached the client.
    fn assert_passed_through(&self, id: &str, body: &[u8], reply: &Reply) {
        let (mock, record) = self.only(id);
        assert_eq!(
            mock, "alpha",
            "an unreadable body goes to the default cluster"
        );
        assert_eq!(record["body_len"].as_u64(), Some(body.len() as u64));
        assert_eq!(
            record["body"].as_str().unwrap(),
            String::from_utf8_lossy(body),
            "an unreadable body is forwarded unchanged"
        );
        assert_eq!(reply.status, 400, "the provider's answer: {}", reply.body);
        assert_eq!(reply.header("x-mock-provider"), Some("alpha"));
        assert_eq!(reply.header("x-model-router-rule"), Some("invalid_request"));
    }

    /// The request reached `mock` once with `model`, and the client got its 200.
    fn assert_routed(&self, id: &str, reply: &Reply, mock: &str, model: &str) -> Value {
        assert_eq!(reply.status, 200, "{}", truncate(&reply.body));
        let (name, record) = self.only(id);
        assert_eq!(
            (name.as_str(), record["model"].as_str()),
            (mock, Some(model))
        );
        record
    }

    /// Envoy is healthy and routes the next valid request correctly.
    fn assert_recovers(&self) {
        assert!(self.envoy.healthy(), "Envoy must stay ready");
        let body =
            json!({"model": "auto", "messages": [{"role": "user", "content": "still there?"}]});
        let (id, reply) = self.post(body.to_string().as_bytes(), &[]);
        self.assert_routed(&id, &reply, "alpha", "small-model");
        assert_eq!(reply.header("x-model-router-model"), Some("small"));
        assert_eq!(self.envoy.vm_reloads(), 0, "no VM may have failed");
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(300).collect()
}

fn chat(content: &str) -> Value {
    json!({"model": "auto", "messages": [{"role": "user", "content": content}]})
}

#[test]
fn empty_body() {
    let s = stack();
    let (id, reply) = s.post(b"", &[]);
    s.assert_passed_through(&id, b"", &reply);
    s.assert_recovers();
}

#[test]
fn not_json() {
    let s = stack();
    let body = b"hello, I am not JSON";
    let (id, reply) = s.post(body, &[]);
    s.assert_passed_through(&id, body, &reply);
    s.assert_recovers();
}

#[test]
fn truncated_json() {
    let s = stack();
    let body = br#"{"model":"auto","messages":[{"role":"user","content":"hel"#;
    let (id, reply) = s.post(body, &[]);
    s.assert_passed_through(&id, body, &reply);
    s.assert_recovers();
}

#[test]
fn json_array_and_json_string() {
    let s = stack();
    for body in [&br#"[{"model":"auto"}]"#[..], br#""model""#, b"null", b"42"] {
        let (id, reply) = s.post(body, &[]);
        s.assert_passed_through(&id, body, &reply);
    }
    s.assert_recovers();
}

#[test]
fn messages_of_the_wrong_type() {
    let s = stack();
    for messages in [
        json!("hi"),
        json!({"role": "user"}),
        json!([1, 2]),
        json!([]),
    ] {
        let body = json!({"model": "auto", "messages": messages}).to_string();
        let (id, reply) = s.post(body.as_bytes(), &[]);
        s.assert_passed_through(&id, body.as_bytes(), &reply);
    }
    s.assert_recovers();
}

#[test]
fn unknown_roles_are_routed() {
    let s = stack();
    let body = json!({"model": "auto", "messages": [
        {"role": "wizard", "content": "abracadabra"},
        {"role": "user", "content": "hi"},
    ]});
    let (id, reply) = s.post(body.to_string().as_bytes(), &[]);
    s.assert_routed(&id, &reply, "alpha", "small-model");
    s.assert_recovers();
}

#[test]
fn a_5_mb_string_is_routed_to_the_model_it_fits() {
    let s = stack();
    let words = ["alpha ", "beta ", "gamma ", "delta ", "omega "];
    let mut text = String::with_capacity(5 << 20);
    let mut i = 0;
    while text.len() < 5 << 20 {
        text.push_str(words[i % words.len()]);
        i += 1;
    }
    let body = chat(&text).to_string();
    let started = std::time::Instant::now();
    let (id, reply) = s.post(body.as_bytes(), &[]);
    let elapsed = started.elapsed();
    assert_eq!(reply.status, 200, "{}", truncate(&reply.body));
    assert!(s.received(&id).is_empty());
    assert_eq!(reply.header("x-mock-provider"), Some("gamma"));
    assert_eq!(reply.header("x-mock-model"), Some("huge-model"));
    let tokens: u64 = reply
        .header("x-model-router-prompt-tokens")
        .unwrap()
        .parse()
        .unwrap();
    assert!(tokens > 100_000, "{tokens} tokens cannot fit `small`");
    eprintln!("5 MB body: {tokens} prompt tokens, answered in {elapsed:?}");
    s.assert_recovers();
}

#[test]
fn ten_thousand_messages_are_routed() {
    let s = stack();
    let messages: Vec<Value> = (0..10_000)
        .map(|i| json!({"role": if i % 2 == 0 { "user" } else { "assistant" }, "content": format!("m{i}")}))
        .collect();
    let body = json!({"model": "auto", "messages": messages}).to_string();
    let (id, reply) = s.post(body.as_bytes(), &[]);
    s.assert_routed(&id, &reply, "alpha", "small-model");
    s.assert_recovers();
}

#[test]
fn nesting_deeper_than_the_parser_limit() {
    let s = stack();
    // Fields the router reads are parsed with serde_json, which stops at 128
    // levels: deeper is unreadable (passthrough). Fields it does not read are
    // only skipped, without recursion, so any depth is routed.
    let nested = |levels: usize| format!("{}1{}", "[".repeat(levels), "]".repeat(levels));
    let in_messages = format!(
        r#"{{"model":"auto","messages":[{{"role":"user","content":"x","extra":{}}}]}}"#,
        nested(200)
    );
    let (id, reply) = s.post(in_messages.as_bytes(), &[]);
    s.assert_passed_through(&id, in_messages.as_bytes(), &reply);
    for levels in [120, 100_000] {
        let elsewhere = format!(
            r#"{{"model":"auto","messages":[{{"role":"user","content":"x"}}],"metadata":{}}}"#,
            nested(levels)
        );
        let (id, reply) = s.post(elsewhere.as_bytes(), &[]);
        let (mock, record) = s.only(&id);
        assert_eq!(mock, "alpha", "{levels} levels");
        let sent = record["body"].as_str().unwrap();
        assert!(
            sent.starts_with(r#"{"model":"small-model","#),
            "{levels} levels"
        );
        assert_eq!(
            sent.len(),
            elsewhere.len() - "auto".len() + "small-model".len()
        );
        assert_eq!(reply.status, 200, "{levels} levels");
    }
    s.assert_recovers();
}

#[test]
fn invalid_utf8_is_unreadable() {
    let s = stack();
    let body = b"{\"model\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}";
    let (id, reply) = s.post(body, &[]);
    let (mock, record) = s.only(&id);
    assert_eq!(mock, "alpha");
    assert_eq!(record["body_len"].as_u64(), Some(body.len() as u64));
    assert_eq!(reply.status, 400);
    assert_eq!(reply.header("x-model-router-rule"), Some("invalid_request"));
    s.assert_recovers();
}

#[test]
fn nul_bytes() {
    let s = stack();
    // A raw NUL inside a string is not JSON; an escaped one is.
    let raw = b"{\"model\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":\"a\0b\"}]}";
    let (id, reply) = s.post(raw, &[]);
    s.assert_passed_through(&id, raw, &reply);
    let escaped = chat("a\u{0}b").to_string();
    assert!(escaped.contains("\\u0000"));
    let (id, reply) = s.post(escaped.as_bytes(), &[]);
    s.assert_routed(&id, &reply, "alpha", "small-model");
    s.assert_recovers();
}

#[test]
fn duplicate_model_keys_are_all_rewritten() {
    let s = stack();
    let body = r#"{"model":"huge-model","messages":[{"role":"user","content":"x"}],"model":"gpt-4o","mod\u0065l":"x"}"#;
    let (id, reply) = s.post(body.as_bytes(), &[]);
    assert_eq!(reply.status, 200, "{}", reply.body);
    // (The mock's record has no `model`: its own parser refuses duplicate keys.)
    let (mock, record) = s.only(&id);
    assert_eq!(mock, "alpha");
    let sent = record["body"].as_str().unwrap();
    assert_eq!(
        sent,
        r#"{"model":"small-model","messages":[{"role":"user","content":"x"}],"model":"small-model","mod\u0065l":"small-model"}"#
    );
    s.assert_recovers();
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip");
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    child.wait_with_output().unwrap().stdout
}

#[test]
fn gzip_bodies_are_not_decompressed() {
    let s = stack();
    let body = gzip(chat("compressed").to_string().as_bytes());
    let (id, reply) = s.post(&body, &[("content-encoding", "gzip")]);
    let (mock, record) = s.only(&id);
    assert_eq!(mock, "alpha", "unreadable: the default cluster");
    assert_eq!(record["body_len"].as_u64(), Some(body.len() as u64));
    assert_eq!(
        header_of(&record, "content-encoding").as_deref(),
        Some("gzip")
    );
    assert_eq!(reply.header("x-model-router-rule"), Some("invalid_request"));
    assert_eq!(reply.status, 400, "the mock does not decompress either");
    s.assert_recovers();
}

#[test]
fn chunked_bodies_are_buffered_and_routed() {
    let s = stack();
    let id = new_id();
    let body =
        json!({"model": "auto", "messages": [{"role": "user", "content": "sent in chunks"}]})
            .to_string();
    let (first, second) = body.split_at(body.len() / 2);
    let request = format!(
        "POST {CHAT} HTTP/1.1\r\nhost: x\r\n{TEST_ID}: {id}\r\ncontent-type: application/json\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{first}\r\n{:x}\r\n{second}\r\n0\r\n\r\n",
        first.len(),
        second.len()
    );
    let reply = raw_http(s.envoy.port, request.as_bytes());
    assert_eq!(reply.status, Some(200), "{}", truncate(&reply.text));
    let (mock, record) = s.only(&id);
    assert_eq!(
        (mock.as_str(), record["model"].as_str()),
        ("alpha", Some("small-model"))
    );
    let sent: Value = serde_json::from_str(record["body"].as_str().unwrap()).unwrap();
    assert_eq!(sent["messages"][0]["content"], "sent in chunks");
    s.assert_recovers();
}

#[test]
fn a_body_above_the_buffer_limit_gets_413() {
    let s = stack();
    // The generated config buffers at most 8 MiB (EnvoyOptions::body_limit_bytes).
    let body = chat(&"x".repeat(9 << 20)).to_string();
    let (id, reply) = s.post(body.as_bytes(), &[]);
    assert_eq!(reply.status, 413, "{}", truncate(&reply.body));
    assert!(s.received(&id).is_empty(), "nothing reaches a provider");
    s.assert_recovers();
}

#[test]
fn the_content_type_is_not_checked() {
    let s = stack();
    let body = chat("plain text label").to_string();
    for ct in ["text/plain", "application/x-www-form-urlencoded"] {
        let (id, reply) = s.post(body.as_bytes(), &[("content-type", ct)]);
        s.assert_routed(&id, &reply, "alpha", "small-model");
    }
    s.assert_recovers();
}

#[test]
fn other_methods_are_not_routed() {
    let s = stack();
    let body = chat("x").to_string();
    for method in ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let id = new_id();
        let reply = send(
            method,
            &s.envoy.url(CHAT),
            Some(body.as_bytes()),
            &[(TEST_ID, &id), ("content-type", "application/json")],
        );
        let (mock, record) = s.only(&id);
        assert_eq!(mock, "alpha", "{method}: Envoy's default cluster");
        assert_eq!(
            record["model"].as_str(),
            Some("auto"),
            "{method}: not rewritten"
        );
        assert_eq!(reply.header("x-model-router-model"), None, "{method}");
        assert_eq!(reply.status, 404, "{method}: the mock serves POST only");
    }
    s.assert_recovers();
}

#[test]
fn http2_and_http1_clients_are_routed_alike() {
    let s = stack();
    let url = s.envoy.url(CHAT);
    let body = chat("which protocol?").to_string();
    for (flag, version) in [("--http2-prior-knowledge", "2"), ("--http1.1", "1.1")] {
        let id = new_id();
        let test_id = format!("{TEST_ID}: {id}");
        let reply = curl(
            &[
                flag,
                "-X",
                "POST",
                "-H",
                "content-type: application/json",
                "-H",
                &test_id,
                &url,
            ],
            body.as_bytes(),
        );
        assert_eq!(
            (reply.status, reply.version.as_str()),
            (200, version),
            "{flag}: {}",
            reply.body
        );
        assert!(
            reply.headers.contains("x-model-router-model: small"),
            "{flag}"
        );
        let (mock, record) = s.only(&id);
        assert_eq!(
            (mock.as_str(), record["model"].as_str()),
            ("alpha", Some("small-model"))
        );
        let declared: usize = record["content_length"].as_str().unwrap().parse().unwrap();
        assert_eq!(declared as u64, record["body_len"].as_u64().unwrap());
    }
    // HTTP/1.0 is refused by Envoy's codec (426) before the filter runs.
    let id = new_id();
    let test_id = format!("{TEST_ID}: {id}");
    let reply = curl(
        &["--http1.0", "-X", "POST", "-H", &test_id, &url],
        body.as_bytes(),
    );
    assert_eq!(reply.status, 426, "{}", reply.body);
    assert!(s.received(&id).is_empty());
    s.assert_recovers();
}

#[test]
fn client_router_and_retry_headers_never_influence_routing() {
    let s = stack();
    let forged = [
        ("x-model-router-cluster", "beta"),
        ("x-model-router-model", "huge"),
        ("x-model-router-plan", "huge,huge"),
        ("x-model-router-rule", "big"),
        ("x-envoy-max-retries", "5"),
        ("x-envoy-retry-on", "5xx,4xx,reset"),
        ("x-envoy-retriable-status-codes", "400,404"),
        ("x-envoy-upstream-rq-timeout-ms", "1"),
        ("x-envoy-upstream-rq-per-try-timeout-ms", "1"),
        ("x-envoy-attempt-count", "3"),
        ("x-envoy-hedge-on-per-try-timeout", "true"),
    ];
    let body = chat("forged").to_string();
    let (id, reply) = s.post(body.as_bytes(), &forged);
    let record = s.assert_routed(&id, &reply, "alpha", "small-model");
    for (name, _) in &forged {
        let seen = header_of(&record, name);
        if *name == "x-envoy-attempt-count" {
            assert_eq!(
                seen.as_deref(),
                Some("1"),
                "Envoy's own count, not the client's"
            );
        } else {
            assert_eq!(seen, None, "{name} must not reach the provider");
        }
    }
    // Forged retry budgets do not add attempts: the chain has three models
    // (gamma keeps no records; its 503 is the answer).
    let mut with_fault = forged.to_vec();
    with_fault.push(("x-mock-fault", "*=503"));
    let (id, reply) = s.post(body.as_bytes(), &with_fault);
    assert_eq!(reply.status, 503);
    assert_eq!(reply.header("x-model-router-attempts"), Some("3"));
    assert_eq!(reply.header("x-mock-provider"), Some("gamma"));
    let models: Vec<String> = s
        .received(&id)
        .iter()
        .map(|(m, r)| format!("{m}/{}", r["model"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        models,
        ["alpha/small-model", "beta/big-model"],
        "the chain's attempts only"
    );
    s.assert_recovers();
}

#[test]
fn non_utf8_header_values_do_not_trap_the_vm() {
    let s = stack();
    let id = new_id();
    let body = chat("odd headers").to_string();
    let mut request = format!(
        "POST {CHAT} HTTP/1.1\r\nhost: x\r\n{TEST_ID}: {id}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\nx-route: ",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(b"\xff\xfebig\r\nx-model-router-cluster: \xc3\x28\r\n\r\n");
    request.extend_from_slice(body.as_bytes());
    let reply = raw_http(s.envoy.port, &request);
    assert_eq!(reply.status, Some(200), "{}", truncate(&reply.text));
    let (mock, record) = s.only(&id);
    assert_eq!(
        (mock.as_str(), record["model"].as_str()),
        ("alpha", Some("small-model"))
    );
    assert_eq!(header_of(&record, "x-model-router-cluster"), None);
    s.assert_recovers();
}
