//! Issue 2: the routing filter — conditions, targets, context windows,
//! budgets, aliases, forged headers, invalid bodies, invalid policies.

use std::sync::OnceLock;

use serde_json::{json, Value};

use crate::harness::{header_of, Envoy, Mock, Setup};

/// Models named after the condition kind whose rule targets them, so the
/// model an upstream receives says which rule decided.
fn policy(on_invalid_request: &str) -> String {
    let mut models = serde_json::Map::new();
    let model = |cluster: &str, ctx: u64, input: f64, output: f64| {
        json!({"cluster": cluster, "context_window": ctx,
               "pricing": {"input_per_mtok": input, "output_per_mtok": output}})
    };
    models.insert("cheap".into(), {
        let mut m = model("alpha", 16_000, 0.1, 0.2);
        m["tier"] = json!("small");
        m
    });
    models.insert("mid".into(), {
        let mut m = model("beta", 64_000, 0.5, 1.0);
        m["tier"] = json!("small");
        m
    });
    models.insert("big".into(), model("gamma", 200_000, 3.0, 15.0));
    models.insert("tiny".into(), {
        let mut m = model("alpha", 2_000, 0.05, 0.1);
        m["provider_model"] = json!("vendor/tiny-1");
        m
    });
    let kinds = [
        "structured",
        "tools",
        "images",
        "stream",
        "header-eq",
        "header-in",
        "header-matches",
        "header-present",
        "requested",
        "path-prefix",
        "path-eq",
        "maxout",
        "messages",
        "task",
        "not",
        "any",
        "prompt",
    ];
    for kind in kinds {
        models.insert(format!("m-{kind}"), model("beta", 100_000, 10.0, 30.0));
    }
    let rule = |kind: &str, when: Value| json!({"name": kind, "when": when, "target": format!("m-{kind}")});
    let header = |value: &str| json!({"header": {"name": "x-e2e", "equals": value}});
    json!({
        "models": models,
        "tasks": {"code": {"keywords": ["python", "rust"], "patterns": ["```"]}},
        "task_header": "x-task",
        "requested_model": {"aliases": ["auto"], "honor_explicit_model": true},
        "budget_header": "x-model-router-max-cost-usd",
        "on_invalid_request": on_invalid_request,
        "rules": [
            rule("structured", json!({"structured_output": true})),
            rule("tools", json!({"tools": true})),
            rule("images", json!({"images": true})),
            rule("stream", json!({"stream": true})),
            rule("header-eq", header("eq")),
            rule("header-in", json!({"header": {"name": "x-e2e", "in": ["in1", "in2"]}})),
            rule("header-matches", json!({"header": {"name": "x-e2e", "matches": "^re-"}})),
            rule("header-present", json!({"header": {"name": "x-e2e-present", "present": true}})),
            rule("requested", json!({"requested_model": {"equals": "pick-requested"}})),
            rule("path-prefix", json!({"path": {"prefix": "/team-a/"}})),
            rule("path-eq", json!({"path": {"equals": "/v1/completions"}})),
            rule("maxout", json!({"max_output_tokens": {"gte": 3000}})),
            rule("messages", json!({"messages": {"gte": 5}})),
            rule("task", json!({"task": "code"})),
            rule("not", json!({"not": {"header": {"name": "x-e2e-not", "present": false}}})),
            rule("any", json!({"any": [header("any1"), header("any2")]})),
            rule("prompt", json!({"prompt_tokens": {"gt": 3000, "lt": 9000}})),
            {"name": "tier", "when": header("tier"), "target": {"tier": "small"}},
            {"name": "chain", "when": header("chain"), "target": ["tiny", "mid", "big"]},
        ],
        "default": ["cheap", "mid"],
    })
    .to_string()
}

pub struct Stack {
    pub alpha: Mock,
    pub beta: Mock,
    pub gamma: Mock,
    pub envoy: Envoy,
}

impl Stack {
    fn start(on_invalid_request: &str) -> Stack {
        let (alpha, beta, gamma) = (
            Mock::start("alpha"),
            Mock::start("beta"),
            Mock::start("gamma"),
        );
        let policy = policy(on_invalid_request);
        let envoy = Envoy::start(
            &policy,
            vec![("alpha", &alpha), ("beta", &beta), ("gamma", &gamma)],
        );
        Stack {
            alpha,
            beta,
            gamma,
            envoy,
        }
    }

    /// (mock name, recorded request) of every upstream request with this test id.
    fn received(&self, id: &str) -> Vec<(String, Value)> {
        let mut all = Vec::new();
        for mock in [&self.alpha, &self.beta, &self.gamma] {
            for record in mock.requests_for(id) {
                all.push((mock.name.clone(), record));
            }
        }
        all
    }

    /// The one upstream request with this id: (mock name, record).
    fn only(&self, id: &str) -> (String, Value) {
        let mut all = self.received(id);
        let summary: String = format!("{all:?}").chars().take(600).collect();
        assert_eq!(
            all.len(),
            1,
            "expected one upstream request for {id}, got {summary}"
        );
        all.remove(0)
    }
}

fn passthrough() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| Stack::start("passthrough"))
}

fn reject() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| Stack::start("reject"))
}

fn user(text: &str) -> Value {
    json!({"model": "auto", "messages": [{"role": "user", "content": text}]})
}

/// Sends `body` to `path` with `headers` and returns (test id, status, model header).
fn send(
    stack: &Stack,
    path: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) -> (String, crate::harness::Reply) {
    stack.envoy.post_tagged(path, body, headers)
}

/// Asserts the request reached `mock` with `model` in its body and a
/// content-length equal to the body's length.
fn assert_routed(stack: &Stack, id: &str, mock: &str, model: &str) -> Value {
    let (name, record) = stack.only(id);
    let summary: String = record.to_string().chars().take(400).collect();
    assert_eq!(
        (name.as_str(), record["model"].as_str()),
        (mock, Some(model)),
        "{summary}"
    );
    assert_eq!(
        record["content_length"]
            .as_str()
            .map(|v| v.parse::<usize>().unwrap()),
        Some(record["body_len"].as_u64().unwrap() as usize),
        "content-length must match the rewritten body"
    );
    record
}

#[test]
fn each_condition_kind_routes_to_its_rule() {
    let s = passthrough();
    let code = json!({"model": "auto", "messages": [{"role": "user", "content": "fix my python"}]});
    let many: Vec<Value> = (0..5)
        .map(|i| json!({"role": "user", "content": format!("m{i}")}))
        .collect();
    let cases: Vec<(&str, &str, Value, Vec<(&str, &str)>)> = vec![
        (
            "structured",
            "/v1/chat/completions",
            json!({"model":"auto","response_format":{"type":"json_object"},"messages":[{"role":"user","content":"x"}]}),
            vec![],
        ),
        (
            "tools",
            "/v1/chat/completions",
            json!({"model":"auto","tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{}}}}],"messages":[{"role":"user","content":"x"}]}),
            vec![],
        ),
        (
            "images",
            "/v1/chat/completions",
            json!({"model":"auto","messages":[{"role":"user","content":[{"type":"text","text":"what is this"},{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}]}),
            vec![],
        ),
        (
            "stream",
            "/v1/chat/completions",
            json!({"model":"auto","stream":true,"messages":[{"role":"user","content":"x"}]}),
            vec![],
        ),
        (
            "header-eq",
            "/v1/chat/completions",
            user("x"),
            vec![("x-e2e", "eq")],
        ),
        (
            "header-in",
            "/v1/chat/completions",
            user("x"),
            vec![("x-e2e", "in2")],
        ),
        (
            "header-matches",
            "/v1/chat/completions",
            user("x"),
            vec![("x-e2e", "re-anything")],
        ),
        (
            "header-present",
            "/v1/chat/completions",
            user("x"),
            vec![("x-e2e-present", "")],
        ),
        (
            "requested",
            "/v1/chat/completions",
            json!({"model":"pick-requested","messages":[{"role":"user","content":"x"}]}),
            vec![],
        ),
        (
            "path-prefix",
            "/team-a/v1/chat/completions",
            user("x"),
            vec![],
        ),
        (
            "path-eq",
            "/v1/completions",
            json!({"model":"auto","prompt":"Say hi"}),
            vec![],
        ),
        (
            "maxout",
            "/v1/chat/completions",
            json!({"model":"auto","max_tokens":4000,"messages":[{"role":"user","content":"x"}]}),
            vec![],
        ),
        (
            "messages",
            "/v1/chat/completions",
            json!({"model":"auto","messages": many}),
            vec![],
        ),
        ("task", "/v1/chat/completions", code.clone(), vec![]),
        (
            "task",
            "/v1/chat/completions",
            user("no keywords here"),
            vec![("x-task", "code")],
        ),
        (
            "not",
            "/v1/chat/completions",
            user("x"),
            vec![("x-e2e-not", "1")],
        ),
        (
            "any",
            "/v1/chat/completions",
            user("x"),
            vec![("x-e2e", "any2")],
        ),
        (
            "prompt",
            "/v1/chat/completions",
            user(&"lorem ipsum ".repeat(2000)),
            vec![],
        ),
    ];
    for (kind, path, body, headers) in cases {
        let (id, reply) = send(s, path, body.to_string().as_bytes(), &headers);
        assert_eq!(reply.status, 200, "{kind}: {}", reply.body);
        let model = format!("m-{kind}");
        assert_routed(s, &id, "beta", &model);
        assert_eq!(reply.header("x-model-router-rule"), Some(kind), "{kind}");
        assert_eq!(reply.header("x-model-router-model"), Some(model.as_str()));
        assert_eq!(reply.header("x-mock-model"), Some(model.as_str()));
    }
}

#[test]
fn default_target_and_response_headers() {
    let s = passthrough();
    let body = json!({"model":"auto","temperature":0.70,"messages":[{"role":"user","content":"hello there"}]});
    let (id, reply) = send(s, "/v1/chat/completions", body.to_string().as_bytes(), &[]);
    assert_eq!(reply.status, 200);
    let record = assert_routed(s, &id, "alpha", "cheap");
    // Everything but `model` arrives as sent.
    let sent = body
        .to_string()
        .replace("\"model\":\"auto\"", "\"model\":\"cheap\"");
    assert_eq!(record["body"].as_str(), Some(sent.as_str()));
    assert_eq!(reply.header("x-model-router-rule"), Some("default"));
    assert_eq!(reply.header("x-model-router-attempts"), Some("1"));
    // The same count model-router's CLI and the mock's billing give.
    let tokens = reply
        .header("x-model-router-prompt-tokens")
        .unwrap()
        .parse::<u64>()
        .unwrap();
    assert_eq!(
        tokens,
        reply.json()["usage"]["prompt_tokens"].as_u64().unwrap()
    );
    // The router's own request headers do not reach providers.
    assert_eq!(header_of(&record, "x-model-router-cluster"), None);
}

#[test]
fn tier_targets_pick_the_cheapest_model_that_fits() {
    let s = passthrough();
    let (id, reply) = send(
        s,
        "/v1/chat/completions",
        user("short").to_string().as_bytes(),
        &[("x-e2e", "tier")],
    );
    assert_eq!(reply.status, 200);
    assert_routed(s, &id, "alpha", "cheap");
    // ~20k tokens: cheap's 16k window is too small, mid (64k) is next cheapest.
    let long = user(&"lorem ipsum ".repeat(10_000));
    let (id, reply) = send(
        s,
        "/v1/chat/completions",
        long.to_string().as_bytes(),
        &[("x-e2e", "tier")],
    );
    assert_eq!(reply.status, 200);
    assert_routed(s, &id, "beta", "mid");
    assert_eq!(reply.header("x-model-router-rule"), Some("tier"));
}

#[test]
fn context_overflow_escalates_to_a_model_that_fits() {
    let s = passthrough();
    // ~70k tokens: neither default model (16k, 64k) fits; the cheapest pool model that fits is big.
    let long = user(&"lorem ipsum ".repeat(35_000));
    let (id, reply) = send(s, "/v1/chat/completions", long.to_string().as_bytes(), &[]);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_routed(s, &id, "gamma", "big");
    assert_eq!(reply.header("x-model-router-rule"), Some("default"));
}

#[test]
fn budget_header_drops_models_over_budget() {
    let s = passthrough();
    let code = json!({"model":"auto","messages":[{"role":"user","content":"fix my python"}]});
    // m-task costs ~$0.03 for 1024 expected output tokens; a $0.0001 budget leaves
    // nothing in the target, so the cheapest model of the pool that fits is used.
    let (id, reply) = send(
        s,
        "/v1/chat/completions",
        code.to_string().as_bytes(),
        &[("x-model-router-max-cost-usd", "0.0001")],
    );
    assert_eq!(reply.status, 200);
    assert_routed(s, &id, "alpha", "vendor/tiny-1");
    assert_eq!(reply.header("x-model-router-model"), Some("tiny"));
    // A generous budget changes nothing.
    let (id, _) = send(
        s,
        "/v1/chat/completions",
        code.to_string().as_bytes(),
        &[("x-model-router-max-cost-usd", "5")],
    );
    assert_routed(s, &id, "beta", "m-task");
}

#[test]
fn explicit_models_and_aliases() {
    let s = passthrough();
    let with_model =
        |m: &str| json!({"model": m, "messages":[{"role":"user","content":"hello"}]}).to_string();
    let (id, reply) = send(s, "/v1/chat/completions", with_model("big").as_bytes(), &[]);
    assert_routed(s, &id, "gamma", "big");
    assert_eq!(reply.header("x-model-router-rule"), Some("explicit_model"));
    // The provider's name for a model is recognised too.
    let (id, _) = send(
        s,
        "/v1/chat/completions",
        with_model("vendor/tiny-1").as_bytes(),
        &[],
    );
    assert_routed(s, &id, "alpha", "vendor/tiny-1");
    // The alias is routed by the rules.
    let (id, reply) = send(
        s,
        "/v1/chat/completions",
        with_model("auto").as_bytes(),
        &[],
    );
    assert_routed(s, &id, "alpha", "cheap");
    assert_eq!(reply.header("x-model-router-rule"), Some("default"));
}

#[test]
fn client_sent_router_headers_are_ignored() {
    let s = passthrough();
    let forged = [
        ("x-model-router-cluster", "gamma"),
        ("x-model-router-plan", "big"),
        ("x-envoy-attempt-count", "3"),
        ("x-envoy-max-retries", "5"),
    ];
    let (id, reply) = send(
        s,
        "/v1/chat/completions",
        user("hello").to_string().as_bytes(),
        &forged,
    );
    assert_eq!(reply.status, 200);
    let record = assert_routed(s, &id, "alpha", "cheap");
    assert_eq!(header_of(&record, "x-model-router-plan"), None);
    assert_eq!(
        header_of(&record, "x-envoy-attempt-count").as_deref(),
        Some("1")
    );
}

#[test]
fn other_paths_and_methods_pass_through_untouched() {
    let s = passthrough();
    let body = br#"{"model":"auto","input":"embed me"}"#;
    let (id, reply) = send(s, "/v1/embeddings", body, &[]);
    // The mock answers 404 for a path it does not serve: what matters is that
    // the request reached the default cluster byte for byte.
    assert_eq!(reply.status, 404);
    let (name, record) = s.only(&id);
    assert_eq!(name, "alpha");
    assert_eq!(
        record["body"].as_str(),
        Some(std::str::from_utf8(body).unwrap())
    );
}

/// After a bad request, the next valid one is routed normally.
fn assert_next_request_routes(s: &Stack, after: &str) {
    let (id, reply) = send(
        s,
        "/v1/chat/completions",
        user("hello").to_string().as_bytes(),
        &[],
    );
    assert_eq!(reply.status, 200, "after {after}");
    assert_routed(s, &id, "alpha", "cheap");
}

/// Each invalid body: (name, body).
fn invalid_bodies() -> Vec<(&'static str, Vec<u8>)> {
    let deep = format!(
        "{{\"model\":\"auto\",\"messages\":[{{\"role\":\"user\",\"content\":\"x\",\"x\":{}{}}}]}}",
        "[".repeat(300),
        "]".repeat(300)
    );
    vec![
        ("empty", b"".to_vec()),
        ("not json", b"hello".to_vec()),
        (
            "truncated",
            br#"{"model":"auto","messages":[{"role":"user","#.to_vec(),
        ),
        ("array", br#"[{"role":"user","content":"x"}]"#.to_vec()),
        ("string", br#""just a string""#.to_vec()),
        (
            "messages wrong type",
            br#"{"model":"auto","messages":"hi"}"#.to_vec(),
        ),
        ("messages missing", br#"{"model":"auto"}"#.to_vec()),
        (
            "model wrong type",
            br#"{"model":5,"messages":[{"role":"user","content":"x"}]}"#.to_vec(),
        ),
        (
            "non-UTF-8",
            b"{\"model\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}"
                .to_vec(),
        ),
        ("nesting too deep", deep.into_bytes()),
    ]
}

#[test]
fn invalid_bodies_pass_through_unchanged_under_passthrough() {
    let s = passthrough();
    for (name, body) in invalid_bodies() {
        let (id, reply) = send(s, "/v1/chat/completions", &body, &[]);
        // The provider (the mock) answers; the router changed nothing.
        assert_eq!(
            reply.header("x-mock-provider"),
            Some("alpha"),
            "{name}: {reply:?}"
        );
        assert_eq!(
            reply.header("x-model-router-rule"),
            Some("invalid_request"),
            "{name}"
        );
        let (mock, record) = s.only(&id);
        assert_eq!(mock, "alpha", "{name}");
        assert_eq!(
            record["body_len"].as_u64(),
            Some(body.len() as u64),
            "{name}"
        );
        assert_eq!(
            record["body"].as_str().map(str::to_string),
            Some(String::from_utf8_lossy(&body).to_string()),
            "{name}"
        );
        assert_next_request_routes(s, name);
    }
    assert!(s.envoy.healthy());
}

#[test]
fn invalid_bodies_get_an_openai_style_400_under_reject() {
    let s = reject();
    for (name, body) in invalid_bodies() {
        let (id, reply) = send(s, "/v1/chat/completions", &body, &[]);
        assert_eq!(reply.status, 400, "{name}: {}", reply.body);
        let error = reply.json();
        assert_eq!(error["error"]["type"], "invalid_request_error", "{name}");
        assert_eq!(error["error"]["code"], "invalid_request", "{name}");
        assert!(!error["error"]["message"].as_str().unwrap().is_empty());
        assert!(
            s.received(&id).is_empty(),
            "{name}: nothing may reach a provider"
        );
        assert_next_request_routes(s, name);
    }
    assert!(s.envoy.healthy());
}

#[test]
fn an_invalid_policy_is_refused_with_its_json_path() {
    let mock = Mock::start("solo");
    let valid =
        json!({"models":{"a":{"cluster":"solo","context_window":1000}},"default":"a"}).to_string();
    let invalid = json!({"models":{"a":{"cluster":"solo","context_window":1000}},
                         "rules":[{"name":"r","target":"gpt5"}],"default":"a"})
    .to_string();
    let mut setup = Setup::new(&valid, vec![("solo", &mock)]);
    setup.raw_configuration = Some(&invalid);
    let log = match Envoy::launch(setup) {
        Ok(_) => panic!("Envoy accepted an invalid policy"),
        Err(log) => log,
    };
    assert!(
        log.contains("model-router: invalid policy: rules[0].target: unknown model \"gpt5\""),
        "{log}"
    );
}

/// Issue 6: `token_counting: as_needed` routes as `always` does, counting
/// only what the decision needs (the prompt-tokens header shows when a
/// count was taken).
#[test]
fn token_counting_as_needed_routes_alike_and_counts_only_when_needed() {
    let (alpha, beta) = (Mock::start("alpha"), Mock::start("beta"));
    let model = |cluster: &str| {
        json!({"cluster": cluster, "context_window": 200_000,
               "pricing": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}})
    };
    let policy = |counting: &str| {
        json!({
            "models": {"short": model("alpha"), "long": model("beta")},
            "rules": [
                {"name": "long", "when": {"prompt_tokens": {"gt": 1000}}, "target": ["long"]},
            ],
            "default": ["short"],
            "token_counting": counting,
        })
        .to_string()
    };
    let always = Envoy::start(&policy("always"), vec![("alpha", &alpha), ("beta", &beta)]);
    let lazy = Envoy::start(
        &policy("as_needed"),
        vec![("alpha", &alpha), ("beta", &beta)],
    );
    let short = user("hello there").to_string();
    let medium = user(&"count me ".repeat(300)).to_string();
    let long = user(&"count me ".repeat(1500)).to_string();
    for (body, model, counted) in [
        // 11 bytes of text: under 1,000 tokens by size alone; nothing counted.
        (&short, "short", false),
        // 2,700 bytes: counted, and under the threshold, so to the end: exact.
        (&medium, "short", true),
        // Over the threshold: counting stops at 1,001 tokens; no exact count.
        (&long, "long", false),
    ] {
        let path = "/v1/chat/completions";
        let (_, exact) = always.post_tagged(path, body.as_bytes(), &[]);
        let (_, reply) = lazy.post_tagged(path, body.as_bytes(), &[]);
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.header("x-model-router-model"), Some(model));
        assert_eq!(
            reply.header("x-model-router-model"),
            exact.header("x-model-router-model")
        );
        let tokens = reply.header("x-model-router-prompt-tokens");
        if counted {
            assert_eq!(tokens, exact.header("x-model-router-prompt-tokens"));
        } else {
            assert_eq!(tokens, None, "no count was needed");
            assert!(exact.header("x-model-router-prompt-tokens").is_some());
        }
    }
}
