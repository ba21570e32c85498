//! The Envoy side of `providers`: per provider cluster, TLS with SNI and
//! hostname verification, the Host rewritten to the base URL's host
//! (`auto_host_rewrite` + the endpoint's `hostname`), the client's
//! credentials removed and the gateway's key injected from an SDS secret
//! (Envoy's `credential_injector` upstream filter, on every attempt), fixed
//! headers; and, with `clients`, Envoy's `api_key_auth` in front of the
//! router. Everything here is Envoy's own machinery; only the path, which
//! depends on the model (Azure deployments) and on the attempt, is mapped
//! by the filter (`translation::model_path`, `translation::attempt_path`).

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use model_router_core::policy::Policy;
use model_router_core::provider::{Provider, CLIENT_CREDENTIAL_HEADERS, CLIENT_TENANT_HEADER};

/// The system CA bundle (Debian/Ubuntu/Alpine path) used to verify
/// providers when a provider sets no `tls.ca_file`.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

const SECRET_TYPE: &str = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

/// Name of a provider's key in SDS (and of its SDS file, `<name>.sds.json`).
pub fn secret_name(provider: &Provider) -> String {
    format!("model-router-key-{}", provider.name)
}

pub fn sds_path(sds_dir: &str, provider: &Provider) -> PathBuf {
    Path::new(sds_dir).join(format!("{}.sds.json", provider.name))
}

/// The SDS files the bootstrap reads, one per provider with `auth`: each a
/// discovery response with one generic secret that names the key file (the
/// key itself is never written anywhere). Envoy watches the key file: a new
/// key moved into place (`mv`, as secret managers do) is used without restart.
pub fn sds_files(policy: &Policy, sds_dir: &str) -> Vec<(PathBuf, Value)> {
    policy
        .providers
        .iter()
        .filter_map(|p| {
            let auth = p.auth.as_ref()?;
            Some((
                sds_path(sds_dir, p),
                json!({"resources": [{
                    "@type": SECRET_TYPE,
                    "name": secret_name(p),
                    "generic_secret": {"secret": {"filename": auth.file}},
                }]}),
            ))
        })
        .collect()
}

/// Whether the bootstrap needs a node identity (SDS does).
pub fn needs_node(policy: &Policy) -> bool {
    policy.providers.iter().any(|p| p.auth.is_some())
}

/// The TLS transport socket of an https provider: SNI and the verified
/// name are the base URL's host, whatever address `--upstream` points at.
pub fn transport_socket(provider: &Provider, system_ca: &str) -> Option<Value> {
    if !provider.base_url.tls {
        return None;
    }
    let host = &provider.base_url.host;
    let ca = provider.ca_file.as_deref().unwrap_or(system_ca);
    Some(json!({
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "sni": host,
            "common_tls_context": {"validation_context": {
                "trusted_ca": {"filename": ca},
                "match_typed_subject_alt_names": [{"san_type": "DNS", "matcher": {"exact": host}}],
            }},
        },
    }))
}

/// Credential headers no upstream may receive unless its own injection
/// sets them: every client credential header and every provider's key
/// header. Upstream requests of one client request share a header map, so
/// without this a fallback would carry the previous provider's key.
fn credential_headers(policy: &Policy) -> Vec<String> {
    let mut names: Vec<String> = CLIENT_CREDENTIAL_HEADERS
        .iter()
        .map(|h| h.to_string())
        .collect();
    for p in &policy.providers {
        if let Some(auth) = &p.auth {
            names.push(auth.header.clone());
        }
    }
    names.sort();
    names.dedup();
    names
}

/// Whether the gateway holds any provider key: then no generated cluster
/// passes a credential header on, except the one it injects itself.
pub fn strips_credentials(policy: &Policy) -> bool {
    policy.providers.iter().any(|p| p.auth.is_some()) || policy.clients.is_some()
}

/// The upstream filters that go before the router's per-attempt filter in
/// a cluster: header edits (credentials removed, the other providers'
/// fixed headers removed, this one's set), then the key injection.
/// `provider` is None for a user cluster.
pub fn upstream_filters(policy: &Policy, provider: Option<&Provider>) -> Vec<Value> {
    let mut mutations: Vec<Value> = Vec::new();
    if strips_credentials(policy) {
        mutations.extend(
            credential_headers(policy)
                .into_iter()
                .map(|h| json!({"remove": h})),
        );
    }
    let own: Vec<&str> = provider
        .map(|p| p.headers.iter().map(|(n, _)| n.as_str()).collect())
        .unwrap_or_default();
    let mut others: Vec<&str> = policy
        .providers
        .iter()
        .flat_map(|p| p.headers.iter().map(|(n, _)| n.as_str()))
        .filter(|n| !own.contains(n))
        .collect();
    others.sort_unstable();
    others.dedup();
    mutations.extend(others.into_iter().map(|h| json!({"remove": h})));
    for (name, value) in provider.map(|p| p.headers.as_slice()).unwrap_or_default() {
        mutations.push(json!({"append": {
            "header": {"key": name, "value": value},
            "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
        }}));
    }
    let mut filters = Vec::new();
    if !mutations.is_empty() {
        filters.push(json!({
            "name": "model-router-provider-headers",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
                "mutations": {"request_mutations": mutations},
            },
        }));
    }
    if let Some((provider, auth)) = provider.and_then(|p| p.auth.as_ref().map(|a| (p, a))) {
        filters.push(json!({
            "name": "envoy.filters.http.credential_injector",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.credential_injector.v3.CredentialInjector",
                "overwrite": true,
                // An empty or unreadable key: answer instead of sending the request keyless.
                "allow_request_without_credential": false,
                "credential": {
                    "name": "envoy.http.injected_credentials.generic",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.http.injected_credentials.generic.v3.Generic",
                        "header": auth.header,
                        "header_value_prefix": auth.prefix,
                        "credential": {
                            "name": secret_name(provider),
                            "sds_config": {
                                "resource_api_version": "V3",
                                "path_config_source": {"path": PROVIDER_SDS_PLACEHOLDER},
                            },
                        },
                    },
                },
            },
        }));
    }
    filters
}

/// Stands for the SDS file path until `with_sds_dir` fills it in.
const PROVIDER_SDS_PLACEHOLDER: &str = "{sds}";

/// Points every credential injector at its provider's SDS file in `sds_dir`.
pub fn with_sds_dir(filters: &mut [Value], provider: &Provider, sds_dir: &str) {
    for filter in filters.iter_mut() {
        if let Some(path) = filter.pointer_mut(
            "/typed_config/credential/typed_config/credential/sds_config/path_config_source/path",
        ) {
            *path = Value::String(sds_path(sds_dir, provider).display().to_string());
        }
    }
}

/// Envoy's API-key filter: `keys` (key → tenant) checked against the
/// OpenAI SDK's `Authorization: Bearer` and the Anthropic SDK's
/// `x-api-key`; the tenant goes into `CLIENT_TENANT_HEADER` (over any client
/// copy) and the key is removed before anything else sees it.
pub fn api_key_auth(keys: &[(String, String)]) -> Value {
    let credentials: Vec<Value> = keys
        .iter()
        .map(|(key, tenant)| json!({"key": key, "client": tenant}))
        .collect();
    json!({
        "name": "envoy.filters.http.api_key_auth",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.api_key_auth.v3.ApiKeyAuth",
            "credentials": credentials,
            "key_sources": [{"header": "authorization"}, {"header": "x-api-key"}],
            "forwarding": {"header": CLIENT_TENANT_HEADER, "hide_credentials": true},
        },
    })
}

/// Replies Envoy makes itself, in OpenAI's error format (both SDKs read
/// it). An empty or unreadable provider key (Envoy's `credential_injector`
/// answers 401 `failed_to_inject_credential` in the upstream filter chain)
/// becomes a 502 naming the provider: the gateway, not the client, is at
/// fault. With `clients`, a missing or unknown client key stays 401.
pub fn local_reply_config(policy: &Policy) -> Value {
    let mut mappers = Vec::new();
    if policy.providers.iter().any(|p| p.auth.is_some()) {
        mappers.push(json!({
            "filter": {"extension_filter": {
                "name": "envoy.access_loggers.extension_filters.cel",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter",
                    "expression": "response.code_details == 'failed_to_inject_credential'",
                },
            }},
            "status_code": 502,
            "body_format_override": {
                "json_format": {"error": {
                    "message": "model-router: the gateway's key file for provider %UPSTREAM_CLUSTER% is empty or unreadable",
                    "type": "server_error",
                    "code": "provider_key_unavailable",
                }},
                "content_type": "application/json",
            },
        }));
    }
    if policy.clients.is_some() {
        mappers.push(json!({
            "filter": {"status_code_filter": {"comparison": {
                "op": "EQ",
                "value": {"default_value": 401, "runtime_key": "model_router.local_reply.401"},
            }}},
            "body_format_override": {
                "json_format": {"error": {
                    "message": "%LOCAL_REPLY_BODY%",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }},
                "content_type": "application/json",
            },
        }));
    }
    json!({"mappers": mappers})
}

/// Reads a clients' keys file: a JSON object key → tenant.
pub fn read_client_keys(path: &str) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("clients.keys_file: cannot read {path}: {e}"))?;
    let map: serde_json::Map<String, Value> = serde_json::from_str(&text).map_err(|e| {
        format!("clients.keys_file: {path} is not a JSON object of key → tenant: {e}")
    })?;
    let mut keys = Vec::with_capacity(map.len());
    for (key, tenant) in map {
        let tenant = tenant
            .as_str()
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| format!("clients.keys_file: {path}: every tenant must be a non-empty printable ASCII string"))?;
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "clients.keys_file: {path}: a key must be non-empty printable ASCII"
            ));
        }
        keys.push((key, tenant.to_string()));
    }
    if keys.is_empty() {
        return Err(format!("clients.keys_file: {path} lists no key"));
    }
    Ok(keys)
}
