//! Real providers through presets: TLS mocks (certificates made at test
//! time) standing at each preset's host, reached through `--upstream`
//! overrides, and the official OpenAI and Anthropic SDKs as clients. Each
//! request is checked where it lands: the provider, SNI = Host = the
//! preset's host, the path under its base URL, the gateway's key injected
//! by Envoy, no client credential, the fixed headers.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{header_of, Envoy, Mock, Setup, TempDir};
use crate::pki::Pki;
use crate::sdk::{self, Sdk};

/// What the clients send as their own key: it must never reach a provider.
const CLIENT_KEY: &str = "sk-client-must-not-leak";
const SDK_TIMEOUT: Duration = Duration::from_secs(120);

struct Stack {
    dir: TempDir,
    openai: Mock,
    anthropic: Mock,
    gemini: Mock,
    groq: Mock,
    together: Mock,
    mistral: Mock,
    deepseek: Mock,
    vllm: Mock,
    envoy: Envoy,
}

fn key_file(dir: &Path, name: &str, key: &str) -> PathBuf {
    let path = dir.join(format!("{name}.key"));
    // A trailing newline, as `echo KEY > file` leaves: Envoy trims it.
    std::fs::write(&path, format!("{key}\n")).unwrap();
    path
}

/// Replaces a key file as secret managers do: write aside, move into place.
fn rotate(path: &Path, content: &str) {
    let staging = path.with_extension("new");
    std::fs::write(&staging, content).unwrap();
    std::fs::rename(&staging, path).unwrap();
}

fn policy(dir: &Path, ca: &Path) -> String {
    let key = |name: &str| {
        key_file(dir, name, &format!("sk-{name}-1"))
            .display()
            .to_string()
    };
    let route = |value: &str, target: Value| json!({"name": value, "when": {"header": {"name": "x-route", "equals": value}}, "target": target});
    json!({
        "providers": {
            "openai": {"preset": "openai", "auth": {"bearer_file": key("openai")},
                       "headers": {"OpenAI-Organization": "org-test"}},
            "anthropic": {"preset": "anthropic", "auth": {"file": key("anthropic")}},
            "gemini": {"preset": "gemini", "auth": {"file": key("gemini")},
                       "tls": {"ca_file": ca.display().to_string()}},
            "groq": {"preset": "groq", "auth": {"file": key("groq")}},
            "together": {"preset": "together", "auth": {"file": key("together")}},
            "mistral": {"preset": "mistral", "auth": {"file": key("mistral")}},
            "deepseek": {"preset": "deepseek", "auth": {"file": key("deepseek")}},
            "vllm": {"preset": "vllm", "base_url": "http://vllm.internal:8000/v1"},
        },
        "models": {
            "gpt-4o-mini": {"provider": "openai", "context_window": 128000, "api": "openai_chat"},
            "claude": {"provider": "anthropic", "provider_model": "claude-sonnet-4-5", "context_window": 200000},
            "claude-chat": {"provider": "anthropic", "provider_model": "claude-haiku-4-5",
                            "context_window": 200000, "api": "openai_chat"},
            "gemini-flash": {"provider": "gemini", "provider_model": "gemini-2.5-flash", "context_window": 1000000},
            "groq-llama": {"provider": "groq", "provider_model": "llama-3.3-70b-versatile", "context_window": 128000},
            "together-llama": {"provider": "together", "provider_model": "meta-llama/Llama-3.3-70B-Instruct-Turbo", "context_window": 128000},
            "mistral-small": {"provider": "mistral", "provider_model": "mistral-small-latest", "context_window": 128000},
            "deepseek-chat": {"provider": "deepseek", "context_window": 64000},
            "local": {"provider": "vllm", "provider_model": "Qwen/Qwen2.5-7B-Instruct", "context_window": 32000},
        },
        "rules": [
            {"name": "messages", "when": {"api": "anthropic_messages"}, "target": "claude"},
            route("gemini", json!("gemini-flash")),
            route("fallback", json!(["gpt-4o-mini", "claude-chat"])),
            route("wrong-ca", json!(["groq-llama", "gpt-4o-mini"])),
            route("expired", json!(["together-llama", "gpt-4o-mini"])),
            route("mistral", json!("mistral-small")),
            route("deepseek", json!(["deepseek-chat", "gpt-4o-mini"])),
            route("local", json!("local")),
        ],
        "default": "gpt-4o-mini",
        "retry": {"per_try_timeout_ms": 3000, "timeout_ms": 20000, "base_interval_ms": 10, "max_interval_ms": 50},
    })
    .to_string()
}

fn tls_mock(name: &str, leaf: &crate::pki::Leaf) -> Mock {
    let args = leaf.mock_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Mock::start_with(name, &args)
}

fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| {
        let dir = TempDir::new("model-router-providers");
        let pki = Pki::new(&dir.0);
        let openai = tls_mock("openai", &pki.leaf("api.openai.com"));
        let anthropic = tls_mock("anthropic", &pki.leaf("api.anthropic.com"));
        let gemini = tls_mock("gemini", &pki.leaf("generativelanguage.googleapis.com"));
        let groq = tls_mock("groq", &pki.foreign_leaf("api.groq.com"));
        let together = tls_mock("together", &pki.expired_leaf("api.together.xyz"));
        let mistral = tls_mock("mistral", &pki.leaf("api.mistral.ai"));
        let deepseek = tls_mock("deepseek", &pki.leaf("api.deepseek.com"));
        let vllm = Mock::start("vllm");
        let policy = policy(&dir.0, &pki.ca_pem);
        let mut setup = Setup::new(
            &policy,
            vec![
                ("openai", &openai),
                ("anthropic", &anthropic),
                ("gemini", &gemini),
                ("groq", &groq),
                ("together", &together),
                ("mistral", &mistral),
                ("deepseek", &deepseek),
                ("vllm", &vllm),
            ],
        );
        setup.ca_bundle = Some(pki.ca_pem.clone());
        let envoy =
            Envoy::launch(setup).unwrap_or_else(|log| panic!("Envoy did not start:\n{log}"));
        Stack {
            dir,
            openai,
            anthropic,
            gemini,
            groq,
            together,
            mistral,
            deepseek,
            vllm,
            envoy,
        }
    })
}

fn openai_input(envoy: &Envoy, cases: Value) -> Value {
    json!({
        "base_url": envoy.url("/v1"),
        "api_key": CLIENT_KEY,
        // Every other credential header a client could send: none may pass.
        "default_headers": {"x-api-key": CLIENT_KEY, "api-key": CLIENT_KEY, "x-goog-api-key": CLIENT_KEY},
        "cases": cases,
    })
}

fn case(id: &str, kind: &str, headers: Value) -> Value {
    let mut headers = headers;
    headers["x-test-id"] = json!(id);
    json!({"id": id, "kind": kind, "model": "auto", "headers": headers})
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", crate::harness::new_id())
}

/// The one record of `id` at `mock`.
fn record(mock: &Mock, id: &str) -> Value {
    let mut records = mock.requests_for(id);
    assert_eq!(
        records.len(),
        1,
        "{} records of {id} at {}: {records:#?}",
        records.len(),
        mock.name
    );
    records.remove(0)
}

/// What every request that reached a provider with `auth` must look like.
fn assert_landed(record: &Value, host: &str, path: &str, key_header: &str, key: &str) {
    assert_eq!(record["tls"], true, "{record:#}");
    assert_eq!(record["sni"], host, "SNI: {record:#}");
    assert_eq!(
        header_of(record, "host").as_deref(),
        Some(host),
        "Host: {record:#}"
    );
    assert_eq!(record["path"], path, "{record:#}");
    assert_eq!(
        header_of(record, key_header).as_deref(),
        Some(key),
        "{key_header}: {record:#}"
    );
    for name in ["authorization", "x-api-key", "api-key", "x-goog-api-key"] {
        if name != key_header {
            assert_eq!(
                header_of(record, name),
                None,
                "{name} must not reach {host}: {record:#}"
            );
        }
    }
    let text = record.to_string();
    assert!(
        !text.contains(CLIENT_KEY),
        "the client's key reached {host}: {record:#}"
    );
}

#[test]
fn the_openai_sdk_reaches_openai_with_the_gateway_key_over_tls() {
    let s = stack();
    let run = unique("oa");
    let ids = ["plain", "stream", "tools", "structured"].map(|k| format!("{run}-{k}"));
    let mut cases: Vec<Value> = ["plain", "stream", "tools", "structured"]
        .iter()
        .zip(&ids)
        .map(|(kind, id)| case(id, kind, json!({})))
        .collect();
    cases.push(json!({"id": format!("{run}-async"), "kind": "concurrent", "of": "plain", "n": 8, "model": "auto"}));
    let results = sdk::run(
        Sdk::OpenAi,
        &openai_input(&s.envoy, json!(cases)),
        SDK_TIMEOUT,
    );
    assert_eq!(results.len(), 12, "{results:#?}");
    for r in &results {
        assert_eq!(r["ok"], true, "{r:#}");
        assert_eq!(r["headers"]["x-model-router-model"], "gpt-4o-mini", "{r:#}");
    }
    assert!(sdk::result(&results, &ids[1])["chunks"].as_u64().unwrap() > 1);
    let ids: Vec<String> = ids
        .into_iter()
        .chain((0..8).map(|i| format!("{run}-async-{i}")))
        .collect();
    for id in &ids {
        let r = record(&s.openai, id);
        assert_landed(
            &r,
            "api.openai.com",
            "/v1/chat/completions",
            "authorization",
            "Bearer sk-openai-1",
        );
        assert_eq!(
            header_of(&r, "openai-organization").as_deref(),
            Some("org-test")
        );
        assert_eq!(r["model"], "gpt-4o-mini");
    }
    let tools = record(&s.openai, &format!("{run}-tools"));
    assert!(tools["body"].as_str().unwrap().contains("get_weather"));
    let structured = record(&s.openai, &format!("{run}-structured"));
    assert!(structured["body"].as_str().unwrap().contains("json_schema"));
}

#[test]
fn the_gemini_preset_maps_the_path_and_verifies_with_its_ca_file() {
    let s = stack();
    let id = unique("gemini");
    let results = sdk::run(
        Sdk::OpenAi,
        &openai_input(
            &s.envoy,
            json!([case(&id, "plain", json!({"x-route": "gemini"}))]),
        ),
        SDK_TIMEOUT,
    );
    assert_eq!(results[0]["ok"], true, "{results:#?}");
    let r = record(&s.gemini, &id);
    assert_landed(
        &r,
        "generativelanguage.googleapis.com",
        "/v1beta/openai/chat/completions",
        "authorization",
        "Bearer sk-gemini-1",
    );
    assert_eq!(r["model"], "gemini-2.5-flash");
}

#[test]
fn the_anthropic_sdk_reaches_anthropic_with_x_api_key_and_its_version() {
    let s = stack();
    let run = unique("an");
    let mut cases: Vec<Value> = ["plain", "stream", "tools", "structured"]
        .iter()
        .map(|kind| case(&format!("{run}-{kind}"), kind, json!({})))
        .collect();
    cases.push(json!({"id": format!("{run}-async"), "kind": "concurrent", "of": "plain", "n": 4, "model": "auto"}));
    let input = json!({
        "base_url": s.envoy.url(""),
        "api_key": CLIENT_KEY,
        "default_headers": {"authorization": format!("Bearer {CLIENT_KEY}")},
        "cases": cases,
    });
    let results = sdk::run(Sdk::Anthropic, &input, SDK_TIMEOUT);
    assert_eq!(results.len(), 8, "{results:#?}");
    for r in &results {
        assert_eq!(r["ok"], true, "{r:#}");
        assert_eq!(r["headers"]["x-model-router-model"], "claude", "{r:#}");
    }
    let ids = ["plain", "stream", "tools", "structured"]
        .map(|k| format!("{run}-{k}"))
        .into_iter()
        .chain((0..4).map(|i| format!("{run}-async-{i}")));
    for id in ids {
        let r = record(&s.anthropic, &id);
        assert_landed(
            &r,
            "api.anthropic.com",
            "/v1/messages",
            "x-api-key",
            "sk-anthropic-1",
        );
        assert_eq!(
            header_of(&r, "anthropic-version").as_deref(),
            Some("2023-06-01")
        );
        assert_eq!(r["model"], "claude-sonnet-4-5");
    }
}

#[test]
fn a_fallback_to_another_provider_carries_its_key_path_and_headers() {
    let s = stack();
    let id = unique("fb");
    let headers = json!({"x-route": "fallback", "x-mock-fault": "gpt-4o-mini=503"});
    let results = sdk::run(
        Sdk::OpenAi,
        &openai_input(&s.envoy, json!([case(&id, "plain", headers)])),
        SDK_TIMEOUT,
    );
    let r = &results[0];
    assert_eq!(r["ok"], true, "{r:#}");
    assert_eq!(r["headers"]["x-model-router-model"], "claude-chat");
    assert_eq!(r["headers"]["x-model-router-attempts"], "2");
    let first = record(&s.openai, &id);
    assert_eq!(first["fault"], "gpt-4o-mini=503");
    assert_landed(
        &first,
        "api.openai.com",
        "/v1/chat/completions",
        "authorization",
        "Bearer sk-openai-1",
    );
    let second = record(&s.anthropic, &id);
    // Anthropic's OpenAI-compatible endpoint, with Anthropic's key and headers only.
    assert_landed(
        &second,
        "api.anthropic.com",
        "/v1/chat/completions",
        "x-api-key",
        "sk-anthropic-1",
    );
    assert_eq!(
        header_of(&second, "anthropic-version").as_deref(),
        Some("2023-06-01")
    );
    assert_eq!(
        header_of(&second, "openai-organization"),
        None,
        "{second:#}"
    );
    assert_eq!(second["model"], "claude-haiku-4-5");
}

#[test]
fn a_rotated_key_file_is_used_without_a_restart() {
    let s = stack();
    let send = || {
        let id = unique("rot");
        let results = sdk::run(
            Sdk::OpenAi,
            &openai_input(
                &s.envoy,
                json!([case(&id, "plain", json!({"x-route": "mistral"}))]),
            ),
            SDK_TIMEOUT,
        );
        assert_eq!(results[0]["ok"], true, "{results:#?}");
        header_of(&record(&s.mistral, &id), "authorization")
    };
    assert_eq!(send().as_deref(), Some("Bearer sk-mistral-1"));
    rotate(&s.dir.0.join("mistral.key"), "sk-mistral-2\n");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let seen = send();
        if seen.as_deref() == Some("Bearer sk-mistral-2") {
            break;
        }
        assert_eq!(seen.as_deref(), Some("Bearer sk-mistral-1"), "neither key");
        assert!(
            Instant::now() < deadline,
            "the rotated key was not used within 15 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn bad_tls_is_an_upstream_failure_that_falls_back_and_is_counted() {
    let s = stack();
    for (route, cluster, mock) in [
        ("wrong-ca", "groq", &s.groq),
        ("expired", "together", &s.together),
    ] {
        let id = unique(route);
        let started = Instant::now();
        let results = sdk::run(
            Sdk::OpenAi,
            &openai_input(
                &s.envoy,
                json!([case(&id, "plain", json!({"x-route": route}))]),
            ),
            SDK_TIMEOUT,
        );
        let r = &results[0];
        assert_eq!(r["ok"], true, "{route}: {r:#}");
        assert_eq!(
            r["headers"]["x-model-router-model"], "gpt-4o-mini",
            "{route}: {r:#}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{route}: took {:?}",
            started.elapsed()
        );
        assert!(
            mock.requests_for(&id).is_empty(),
            "{route}: a request passed a bad certificate"
        );
        record(&s.openai, &id);
        let failures = s
            .envoy
            .stat(&format!("cluster.{cluster}.ssl.fail_verify_error"));
        assert!(
            failures >= 1,
            "{route}: cluster.{cluster}.ssl.fail_verify_error = {failures}\n{}",
            s.envoy.stats()
        );
    }
}

#[test]
fn a_self_hosted_provider_gets_plain_http_its_host_and_no_credentials() {
    let s = stack();
    let id = unique("local");
    let results = sdk::run(
        Sdk::OpenAi,
        &openai_input(
            &s.envoy,
            json!([case(&id, "plain", json!({"x-route": "local"}))]),
        ),
        SDK_TIMEOUT,
    );
    assert_eq!(results[0]["ok"], true, "{results:#?}");
    let r = record(&s.vllm, &id);
    assert_eq!(r["tls"], false);
    assert_eq!(header_of(&r, "host").as_deref(), Some("vllm.internal:8000"));
    assert_eq!(r["path"], "/v1/chat/completions");
    for name in ["authorization", "x-api-key", "api-key", "x-goog-api-key"] {
        assert_eq!(header_of(&r, name), None, "{name}: {r:#}");
    }
    assert_eq!(r["model"], "Qwen/Qwen2.5-7B-Instruct");
}

#[test]
fn an_emptied_key_file_fails_that_provider_clearly_and_is_counted() {
    let s = stack();
    let send = || {
        let id = unique("empty");
        let results = sdk::run(
            Sdk::OpenAi,
            &openai_input(
                &s.envoy,
                json!([case(&id, "plain", json!({"x-route": "deepseek"}))]),
            ),
            SDK_TIMEOUT,
        );
        (id, results[0].clone())
    };
    let (id, first) = send();
    assert_eq!(first["ok"], true, "{first:#}");
    record(&s.deepseek, &id);
    rotate(&s.dir.0.join("deepseek.key"), "");
    let deadline = Instant::now() + Duration::from_secs(15);
    let failed = loop {
        let (id, r) = send();
        if r["headers"]["x-model-router-model"] != "deepseek-chat" || r["ok"] == false {
            break (id, r);
        }
        assert!(
            Instant::now() < deadline,
            "the emptied key was still used after 15 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let (id, r) = failed;
    // Restore first, so a failed assertion leaves the stack as it was.
    rotate(&s.dir.0.join("deepseek.key"), "sk-deepseek-1\n");
    assert!(
        s.deepseek.requests_for(&id).is_empty(),
        "a request went out without a key"
    );
    assert!(s.envoy.stat("cluster.deepseek.credential_injector.failed") >= 1);
    // A clear 5xx naming the provider. Envoy never retries a reply made by an
    // upstream filter, so the chain's gpt-4o-mini is not tried (README).
    assert_eq!(r["status"], 502, "{r:#}");
    assert_eq!(r["error_type"], "InternalServerError", "{r:#}");
    assert_eq!(
        r["response_json"]["error"]["code"], "provider_key_unavailable",
        "{r:#}"
    );
    let message = r["response_json"]["error"]["message"].as_str().unwrap();
    assert!(message.contains("deepseek"), "{message}");
    assert!(s.openai.requests_for(&id).is_empty());
}

#[test]
fn clients_authenticate_with_their_own_keys_and_the_key_names_the_tenant() {
    let dir = TempDir::new("model-router-clients");
    let pki = Pki::new(&dir.0);
    let openai = tls_mock("openai", &pki.leaf("api.openai.com"));
    let keys = dir.0.join("clients.json");
    std::fs::write(&keys, r#"{"ck-team-a": "team-a", "ck-team-b": "team-b"}"#).unwrap();
    let policy = json!({
        "providers": {"openai": {"preset": "openai", "auth": {"bearer_file": key_file(&dir.0, "openai", "sk-openai-9").display().to_string()}}},
        "models": {"gpt-4o-mini": {"provider": "openai", "context_window": 128000, "api": "openai_chat"}},
        "default": "gpt-4o-mini",
        "clients": {"keys_file": keys.display().to_string()},
        "tenants": ["team-a", "team-b"],
    })
    .to_string();
    let mut setup = Setup::new(&policy, vec![("openai", &openai)]);
    setup.ca_bundle = Some(pki.ca_pem.clone());
    setup.client_keys = vec![
        ("ck-team-a".to_string(), "team-a".to_string()),
        ("ck-team-b".to_string(), "team-b".to_string()),
    ];
    let envoy = Envoy::launch(setup).unwrap_or_else(|log| panic!("Envoy did not start:\n{log}"));
    let input = |key: &str, id: &str, headers: Value| json!({"base_url": envoy.url("/v1"), "api_key": key, "cases": [case(id, "plain", headers)]});

    let wrong = sdk::run(
        Sdk::OpenAi,
        &input("ck-nobody", "wrong", json!({})),
        SDK_TIMEOUT,
    );
    assert_eq!(wrong[0]["ok"], false);
    assert_eq!(wrong[0]["status"], 401, "{wrong:#?}");
    assert_eq!(wrong[0]["error_type"], "AuthenticationError", "{wrong:#?}");
    assert_eq!(
        wrong[0]["response_json"]["error"]["code"], "invalid_api_key",
        "{wrong:#?}"
    );
    let missing = envoy.post(
        "/v1/chat/completions",
        br#"{"model":"auto","messages":[]}"#,
        &[("content-type", "application/json")],
    );
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.json()["error"]["message"],
        "Client authentication failed."
    );

    // A valid key for team-a with a forged tenant header: the key decides.
    let id = unique("client");
    let ok = sdk::run(
        Sdk::OpenAi,
        &input("ck-team-a", &id, json!({"x-model-router-tenant": "team-b"})),
        SDK_TIMEOUT,
    );
    assert_eq!(ok[0]["ok"], true, "{ok:#?}");
    let r = record(&openai, &id);
    assert_landed(
        &r,
        "api.openai.com",
        "/v1/chat/completions",
        "authorization",
        "Bearer sk-openai-9",
    );
    assert!(
        !r.to_string().contains("ck-team-a"),
        "the client key reached the provider"
    );
    // The Anthropic SDKs' header authenticates too.
    let (_, b) = envoy.post_tagged(
        "/v1/chat/completions",
        br#"{"model":"auto","messages":[{"role":"user","content":"hi"}]}"#,
        &[("x-api-key", "ck-team-b")],
    );
    assert_eq!(b.status, 200, "{}", b.body);
    let tenants: Vec<(String, u64)> = crate::harness::scrape(&envoy)
        .into_iter()
        .filter(|(name, _, _)| name == "model_router_requests_total")
        .filter_map(|(_, labels, v)| Some((labels.get("tenant")?.clone(), v)))
        .collect();
    let count = |tenant: &str| {
        tenants
            .iter()
            .filter(|(t, _)| t == tenant)
            .map(|(_, v)| v)
            .sum::<u64>()
    };
    assert_eq!(count("team-a"), 1, "{tenants:?}");
    assert_eq!(count("team-b"), 1, "{tenants:?}");
}
