use crate::policy::Policy;
use crate::request::{Api, ApiShape};

fn policy(providers: &str, models: &str) -> Result<Policy, String> {
    Policy::from_json(&format!(
        r#"{{"providers": {providers}, "models": {models}, "default": "m"}}"#
    ))
    .map_err(|e| e.to_string())
}

#[test]
fn presets_fill_base_url_auth_headers_and_apis() {
    let p = policy(
        r#"{"claude": {"preset": "anthropic", "auth": {"file": "/run/secrets/anthropic"}}}"#,
        r#"{"m": {"provider": "claude", "provider_model": "claude-sonnet-4-5", "context_window": 200000}}"#,
    )
    .unwrap();
    let provider = &p.providers[0];
    assert_eq!(provider.base_url.host, "api.anthropic.com");
    assert_eq!(provider.base_url.port, 443);
    assert!(provider.base_url.tls);
    let auth = provider.auth.as_ref().unwrap();
    assert_eq!((auth.header.as_str(), auth.prefix), ("x-api-key", ""));
    assert_eq!(auth.file_path, "providers.claude.auth.file");
    assert_eq!(
        provider.headers,
        vec![("anthropic-version".to_string(), "2023-06-01".to_string())]
    );
    let model = &p.models[0];
    assert_eq!(model.cluster, "claude");
    assert!(model.accepts(Api::AnthropicMessages) && !model.accepts(Api::OpenaiChat));
    assert_eq!(
        p.upstream_path(model, ApiShape::Messages).as_deref(),
        Some("/v1/messages")
    );
    assert_eq!(
        p.named_files(),
        vec![(
            "providers.claude.auth.file".to_string(),
            "/run/secrets/anthropic".to_string()
        )]
    );
}

#[test]
fn every_api_maps_under_the_base_path_and_overrides_apply() {
    let p = policy(
        r#"{"g": {"preset": "gemini", "auth": {"bearer_file": "/k"}, "headers": {"X-Extra": "1"}},
            "v": {"preset": "vllm", "base_url": "http://vllm.internal:8000/v1"}}"#,
        r#"{"m": {"provider": "g", "context_window": 1000},
            "local": {"provider": "v", "context_window": 1000}}"#,
    )
    .unwrap();
    let gemini = &p.models[0];
    assert_eq!(
        p.upstream_path(gemini, ApiShape::ChatCompletions)
            .as_deref(),
        Some("/v1beta/openai/chat/completions")
    );
    assert_eq!(
        p.providers[0].headers,
        vec![("x-extra".to_string(), "1".to_string())]
    );
    let auth = p.providers[0].auth.as_ref().unwrap();
    assert_eq!(
        (auth.header.as_str(), auth.prefix),
        ("authorization", "Bearer ")
    );
    let local = &p.models[1];
    assert_eq!(p.providers[1].base_url.port, 8000);
    assert!(!p.providers[1].base_url.tls);
    assert!(local.accepts(Api::OpenaiChat) && !local.accepts(Api::OpenaiResponses));
    assert_eq!(
        p.providers[1].upstream_path(ApiShape::Responses, ""),
        "/v1/responses"
    );
    assert_eq!(
        p.upstream_path(local, ApiShape::Completions).as_deref(),
        Some("/v1/completions")
    );
}

#[test]
fn azure_paths_carry_the_deployment_and_api_version() {
    let p = policy(
        r#"{"az": {"preset": "azure_openai", "base_url": "https://res.openai.azure.com", "auth": {"file": "/k"}}}"#,
        r#"{"m": {"provider": "az", "provider_model": "gpt-4o", "deployment": "prod-4o", "context_window": 1000},
            "n": {"provider": "az", "provider_model": "gpt-4o-mini", "context_window": 1000}}"#,
    )
    .unwrap();
    assert_eq!(
        p.upstream_path(&p.models[0], ApiShape::ChatCompletions)
            .as_deref(),
        Some("/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21")
    );
    assert_eq!(
        p.upstream_path(&p.models[1], ApiShape::ChatCompletions)
            .as_deref(),
        Some("/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21")
    );
    assert_eq!(p.providers[0].auth.as_ref().unwrap().header, "api-key");
}

#[test]
fn user_clusters_keep_the_client_path() {
    let p = Policy::from_json(
        r#"{"models": {"m": {"cluster": "c", "context_window": 10}}, "default": "m"}"#,
    )
    .unwrap();
    assert_eq!(
        p.upstream_path(&p.models[0], ApiShape::ChatCompletions),
        None
    );
    assert!(p.named_files().is_empty());
}

#[test]
fn refuses_bad_providers_with_their_json_path() {
    let model = r#"{"m": {"provider": "p", "context_window": 10}}"#;
    for (providers, models, expected) in [
        (
            r#"{"p": {"preset": "opnai"}}"#,
            model,
            "providers.p.preset: unknown preset \"opnai\"",
        ),
        (
            r#"{"p": {"base_url": "api.openai.com/v1"}}"#,
            model,
            "providers.p.base_url: \"api.openai.com/v1\" needs a scheme",
        ),
        (
            r#"{"p": {"base_url": "https:///v1"}}"#,
            model,
            "providers.p.base_url: \"https:///v1\" has no valid host",
        ),
        (
            r#"{"p": {}}"#,
            model,
            "providers.p.base_url: required without a preset",
        ),
        (
            r#"{"p": {"preset": "azure_openai"}}"#,
            model,
            "providers.p.base_url: the azure_openai preset needs a base_url",
        ),
        (
            r#"{"p": {"base_url": "http://h", "auth": {"file": "/k"}}}"#,
            model,
            "providers.p.auth: {\"file\": ...} alone needs a preset",
        ),
        (
            r#"{"p": {"preset": "openai", "auth": {"bearer_file": "/k", "file": "/k"}}}"#,
            model,
            "providers.p.auth: set {\"bearer_file\"",
        ),
        (
            r#"{"p": {"preset": "openai", "auth": {"bearer_file": " "}}}"#,
            model,
            "providers.p.auth.bearer_file: must name a key file",
        ),
        (
            r#"{"p": {"preset": "vllm", "tls": {"ca_file": "/ca"}}}"#,
            model,
            "providers.p.tls.ca_file: set for an http:// base_url",
        ),
        (
            r#"{"p": {"preset": "openai", "headers": {"host": "x"}}}"#,
            model,
            "providers.p.headers.host: Host and pseudo-headers",
        ),
        (
            r#"{"p": {"preset": "openai", "headers": {"x-a": "\n"}}}"#,
            model,
            "providers.p.headers.x-a: must be a string",
        ),
        (
            r#"{"p": {"preset": "openai", "api_version": "1"}}"#,
            model,
            "providers.p.api_version: only the azure_openai preset",
        ),
        (
            r#"{"p": {"preset": "openai"}}"#,
            r#"{"m": {"provider": "q", "context_window": 10}}"#,
            "models.m.provider: unknown provider \"q\"",
        ),
        (
            r#"{"p": {"preset": "openai"}}"#,
            r#"{"m": {"provider": "p", "cluster": "c", "context_window": 10}}"#,
            "models.m: set exactly one of cluster and provider, not both",
        ),
        (
            r#"{"p": {"preset": "openai"}}"#,
            r#"{"m": {"context_window": 10}}"#,
            "models.m: set exactly one of cluster",
        ),
        (
            r#"{"p": {"preset": "openai"}}"#,
            r#"{"m": {"cluster": "p", "context_window": 10}}"#,
            "models.m.cluster: \"p\" is a provider's generated cluster",
        ),
        (
            r#"{"p": {"preset": "openai"}}"#,
            r#"{"m": {"provider": "p", "deployment": "d", "context_window": 10}}"#,
            "models.m.deployment: only models of an azure_openai provider",
        ),
        (
            r#"{"p": {"preset": "azure_openai", "base_url": "https://r.openai.azure.com"}}"#,
            r#"{"m": {"provider": "p", "provider_model": "a/b", "context_window": 10}}"#,
            "models.m.deployment: deployment \"a/b\"",
        ),
        (
            r#"{"p p": {"preset": "openai"}}"#,
            model,
            "providers.p p: a provider name",
        ),
        (
            r#"{"p": {"preset": "openai", "bogus": 1}}"#,
            model,
            "providers.p.bogus: unknown field `bogus`",
        ),
    ] {
        let err = policy(providers, models).unwrap_err();
        assert!(err.starts_with(expected), "{providers} {models}: {err}");
    }
}

#[test]
fn clients_take_the_tenant_from_the_key() {
    let base = r#""models": {"m": {"cluster": "c", "context_window": 10}}, "default": "m""#;
    let p = Policy::from_json(&format!(
        r#"{{{base}, "clients": {{"keys_file": "/keys.json"}}}}"#
    ))
    .unwrap();
    assert_eq!(p.headers.tenant.as_deref(), Some("x-model-router-tenant"));
    assert_eq!(
        p.named_files(),
        vec![("clients.keys_file".to_string(), "/keys.json".to_string())]
    );
    let err = Policy::from_json(&format!(
        r#"{{{base}, "clients": {{"keys_file": "/k"}}, "tenant_header": "x-team"}}"#
    ))
    .unwrap_err();
    assert_eq!(err.path, "tenant_header");
}

#[test]
fn each_attempt_gets_its_providers_path_and_user_clusters_the_clients() {
    use crate::actions::plan;
    use crate::decision::{decide, Request};
    use crate::headers::Headers;
    use crate::headers::CLIENT_PATH_STATE;
    use crate::translation::{attempt_path, request_actions};
    let p = Policy::from_json(
        r#"{"providers": {"g": {"preset": "groq", "auth": {"file": "/k"}},
            "az": {"preset": "azure_openai", "base_url": "https://r.openai.azure.com", "auth": {"file": "/k"}}},
           "models": {"m": {"provider": "g", "provider_model": "llama", "context_window": 100000},
            "own": {"cluster": "mine", "context_window": 100000},
            "az4o": {"provider": "az", "provider_model": "gpt-4o", "context_window": 100000}},
           "default": ["m", "own", "az4o"]}"#,
    )
    .unwrap();
    let client_path = "/proxy/v1/chat/completions";
    let body = br#"{"model": "auto", "messages": [{"role": "user", "content": "hi"}]}"#;
    let headers = Headers::new();
    let decision = decide(
        &p,
        &Request {
            shape: ApiShape::ChatCompletions,
            path: client_path,
            headers: &headers,
            body,
        },
    );
    let (todo, _) = request_actions(&p, &decision, client_path, body);
    let get = |pairs: &[(String, String)], name: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        get(&todo.set_headers, ":path").as_deref(),
        Some("/openai/v1/chat/completions")
    );
    let api = get(&todo.filter_state, CLIENT_PATH_STATE).unwrap();
    assert_eq!(api, client_path);
    let chain: Vec<_> = decision.chain().to_vec();
    let plan = plan(&p, &chain);
    assert_eq!(
        attempt_path(&p, &plan, 2, &api).as_deref(),
        Some(client_path)
    );
    assert_eq!(
        attempt_path(&p, &plan, 3, &api).as_deref(),
        Some("/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21")
    );
    assert_eq!(attempt_path(&p, &plan, 4, &api), None);
}
