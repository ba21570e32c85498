//! Generates a complete Envoy bootstrap from a policy: listener, the routing
//! filter with the policy embedded, the route that reads the cluster header
//! (with the retry policy that carries fallback chains), and one cluster per
//! provider with the per-attempt upstream filter.

use serde_json::{json, Value};

use model_router_core::headers::{
    ATTEMPT_COUNT_HEADER, CHAIN_STATE, DECISION_STATE, TRY_STATE_PREFIX,
};
use model_router_core::policy::Policy;

/// Where things are, for the generated config.
#[derive(Debug, Clone)]
pub struct EnvoyOptions {
    pub listen_address: String,
    pub listen_port: u16,
    pub admin_port: u16,
    pub wasm_path: String,
    /// cluster name → (host, port). Clusters the policy names but this does
    /// not list point at 127.0.0.1:8000 + their index, for local demos.
    pub upstreams: Vec<(String, String, u16)>,
    /// Largest request body the router buffers (bytes); Envoy answers 413 past it.
    pub body_limit_bytes: u32,
    /// Write one JSON access-log line per request to this path ("" = stdout).
    pub access_log_path: Option<String>,
    /// Envoy worker threads' VM: reload a VM that trapped instead of failing closed.
    pub fail_reload: bool,
    /// Address the admin interface (and its `/stats/prometheus`) binds to;
    /// a container needs `0.0.0.0` for Prometheus in another one to scrape it.
    pub admin_address: String,
    /// Also push stats to a statsd server at (host, port), over UDP.
    pub statsd: Option<(String, u16)>,
    /// Directory of the providers' SDS files (`envoy_provider::sds_files`).
    pub sds_dir: String,
    /// CA bundle for providers without `tls.ca_file`.
    pub ca_bundle: String,
    /// With `clients`: key → tenant, from its keys file.
    pub client_keys: Vec<(String, String)>,
}

impl Default for EnvoyOptions {
    fn default() -> Self {
        EnvoyOptions {
            listen_address: "127.0.0.1".to_string(),
            listen_port: 10000,
            admin_port: 9901,
            wasm_path: "target/wasm32-wasip1/release/model_router.wasm".to_string(),
            upstreams: Vec::new(),
            body_limit_bytes: 8 * 1024 * 1024,
            access_log_path: None,
            fail_reload: true,
            admin_address: "127.0.0.1".to_string(),
            statsd: None,
            sds_dir: "/etc/envoy/model-router-sds".to_string(),
            ca_bundle: crate::envoy_provider::SYSTEM_CA_BUNDLE.to_string(),
            client_keys: Vec::new(),
        }
    }
}

const WASM_FILTER: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
const STRING_VALUE: &str = "type.googleapis.com/google.protobuf.StringValue";

/// The clusters a policy uses, in first-use order.
pub fn clusters(policy: &Policy) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for model in &policy.models {
        if !out.contains(&model.cluster) {
            out.push(model.cluster.clone());
        }
    }
    out
}

/// The bootstrap as JSON (Envoy reads JSON and YAML alike).
pub fn bootstrap(policy: &Policy, policy_json: &str, options: &EnvoyOptions) -> Value {
    let default_cluster = policy
        .default
        .models()
        .first()
        .and_then(|id| policy.model(*id))
        .map(|m| m.cluster.clone())
        .unwrap_or_default();
    let cluster_header = policy.headers.cluster.clone();
    let retry = &policy.retry;
    let max_chain = policy
        .rules
        .iter()
        .map(|r| r.target.models().len())
        .chain(std::iter::once(policy.default.models().len()))
        .max()
        .unwrap_or(1);
    let retry_policy = json!({
        "retry_on": "retriable-status-codes,5xx,reset,connect-failure,refused-stream",
        "retriable_status_codes": retry.retriable_status_codes,
        // An upper bound: the filter sets x-envoy-max-retries to each chain's length - 1.
        "num_retries": max_chain.saturating_sub(1),
        "per_try_timeout": millis(retry.per_try_timeout_ms),
        // Retries of a cluster with several endpoints go to another one first.
        "retry_host_predicate": retry_host_predicates(),
        "host_selection_retry_max_attempts": HOST_SELECTION_RETRY_MAX_ATTEMPTS,
        "retry_back_off": {
            "base_interval": millis(retry.base_interval_ms),
            "max_interval": millis(retry.max_interval_ms),
        },
        // Pick the cluster again on every retry: attempt N goes to slot N.
        "refresh_cluster_on_retry": true,
    });
    let retry_policy = with_idle_timeout(retry_policy, retry.per_try_idle_timeout_ms);
    let all_clusters = clusters(policy);

    let mut route = json!({
        "match": {"prefix": "/"},
        // The router buffers the body to replay it on retries.
        "request_body_buffer_limit": options.body_limit_bytes,
        // The routing filter's cluster header is for routes that read it; providers need not see it.
        "request_headers_to_remove": [cluster_header],
        "route": {
            "timeout": millis(retry.timeout_ms),
            "retry_policy": retry_policy,
            "inline_cluster_specifier_plugin": {"extension": {
                "name": "envoy.router.cluster_specifier_plugin.matcher",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.router.cluster_specifiers.matcher.v3.MatcherClusterSpecifier",
                    "cluster_matcher": attempt_matcher(&all_clusters, &default_cluster, max_chain),
                },
            }},
        },
    });

    if !policy.providers.is_empty() {
        // Host := the endpoint's `hostname` (a provider's base URL host), per attempt.
        if let Some(action) = route.get_mut("route").and_then(Value::as_object_mut) {
            action.insert("auto_host_rewrite".to_string(), Value::Bool(true));
        }
    }

    let mut access_log = Vec::new();
    if let Some(path) = &options.access_log_path {
        access_log.push(access_log_config(path));
    }

    let mut http_filters = vec![
        json!({"name": "model-router", "typed_config": wasm_filter(
            "model_router", policy_json, &options.wasm_path, options.fail_reload)}),
        json!({"name": "envoy.filters.http.router", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}),
    ];
    if policy.clients.is_some() {
        // First: an unauthenticated request is answered before the router reads it.
        http_filters.insert(0, crate::envoy_provider::api_key_auth(&options.client_keys));
    }
    let mut hcm = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "model_router",
        "codec_type": "AUTO",
        "access_log": access_log,
        "route_config": {
            "name": "model_router",
            "virtual_hosts": [{
                "name": "llm",
                "domains": ["*"],
                "include_request_attempt_count": true,
                "include_attempt_count_in_response": true,
                "routes": [route],
            }],
        },
        "http_filters": http_filters,
    });
    if crate::envoy_provider::strips_credentials(policy) {
        if let Some(object) = hcm.as_object_mut() {
            object.insert(
                "local_reply_config".to_string(),
                crate::envoy_provider::local_reply_config(policy),
            );
        }
    }

    let upstream_json = upstream_policy_json(policy, policy_json);
    let clusters: Vec<Value> = clusters(policy)
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut cluster = cluster_config(
                &cluster_spec(policy, name, i, options),
                &upstream_json,
                options,
            );
            apply_deployment(&mut cluster, name, policy, options);
            if !policy.cooldown.enabled {
                skip_upstream_filter_on_first_attempts(&mut cluster);
            }
            cluster
        })
        .collect();

    let mut bootstrap = json!({
        "admin": {"address": socket(&options.admin_address, options.admin_port)},
        "stats_config": stats_config(),
        "static_resources": {
            "listeners": [{
                "name": "model_router",
                "address": socket(&options.listen_address, options.listen_port),
                "per_connection_buffer_limit_bytes": options.body_limit_bytes,
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": hcm,
                }]}],
            }],
            "clusters": clusters,
        },
    });
    if let (Some((host, port)), Some(object)) = (&options.statsd, bootstrap.as_object_mut()) {
        object.insert("stats_sinks".to_string(), statsd_sink(host, *port));
    }
    if let (true, Some(object)) = (
        crate::envoy_provider::needs_node(policy),
        bootstrap.as_object_mut(),
    ) {
        // SDS (even from files) needs the node to say who it is.
        object.insert(
            "node".to_string(),
            json!({"id": "model-router", "cluster": "model-router"}),
        );
    }
    bootstrap
}

/// The policy the clusters' per-attempt filter gets: without tasks, rules
/// and classifiers, which only decisions read (`policy::upstream_view`), so
/// neither Envoy nor the upstream root contexts parse and compile them.
pub fn upstream_policy_json(policy: &Policy, policy_json: &str) -> String {
    // Fails only on text that is not a JSON object, which `policy` could
    // not have been compiled from; the whole policy is then still correct.
    model_router_core::policy::upstream_view(policy, policy_json)
        .unwrap_or_else(|_| policy_json.to_string())
}

/// Type URL of a listener resource in an LDS file.
const LISTENER_TYPE: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";

/// For policy changes without a restart: [`bootstrap`] with its listener
/// (which embeds the policy) moved out to an LDS file at `lds_path` that
/// Envoy watches. Write the file with [`lds_file`] and replace it by moving a
/// new one into place (a rename in the same filesystem): Envoy reloads it on
/// every move into its directory. A policy the filter refuses makes Envoy
/// reject the whole update (`listener_manager.lds.update_rejected`) and keep
/// serving the previous one. The clusters stay static: their per-attempt
/// filter keeps the models (and cooldown settings) it started with, so a new
/// policy must keep the model names of the old one's fallback chains, or
/// restart Envoy. Tasks, rules and classifiers, which that filter never
/// reads, change freely.
pub fn bootstrap_with_file_lds(
    policy: &Policy,
    policy_json: &str,
    options: &EnvoyOptions,
    lds_path: &std::path::Path,
) -> Value {
    let mut config = bootstrap(policy, policy_json, options);
    let directory = lds_path
        .parent()
        .map(|dir| dir.display().to_string())
        .unwrap_or_default();
    if let Some(object) = config.as_object_mut() {
        if let Some(Value::Object(resources)) = object.get_mut("static_resources") {
            resources.remove("listeners");
        }
        // xDS (even from files) needs the node to say who it is.
        object
            .entry("node")
            .or_insert_with(|| json!({"id": "model-router", "cluster": "model-router"}));
        object.insert(
            "dynamic_resources".to_string(),
            json!({"lds_config": {
                "resource_api_version": "V3",
                "path_config_source": {
                    "path": lds_path.display().to_string(),
                    "watched_directory": {"path": directory},
                },
            }}),
        );
    }
    config
}

/// The LDS file for [`bootstrap_with_file_lds`]: a discovery response with
/// the listener of [`bootstrap`] for this policy. Its `version_info` is a
/// hash of the policy text, so `/config_dump` tells which policy is live.
pub fn lds_file(policy: &Policy, policy_json: &str, options: &EnvoyOptions) -> Value {
    let config = bootstrap(policy, policy_json, options);
    let listeners: Vec<Value> = config
        .pointer("/static_resources/listeners")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|listener| {
            let mut listener = listener.as_object()?.clone();
            listener.insert(
                "@type".to_string(),
                Value::String(LISTENER_TYPE.to_string()),
            );
            Some(Value::Object(listener))
        })
        .collect();
    json!({"version_info": policy_version(policy_json), "resources": listeners})
}

/// FNV-1a of the policy text, in hex.
fn policy_version(policy_json: &str) -> String {
    let hash = policy_json.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("policy-{hash:016x}")
}

/// A statsd sink (UDP). Its names keep the `;label=value` encoding (tags are
/// a Prometheus-side notion), so the statsd server sees one series per label set.
fn statsd_sink(host: &str, port: u16) -> Value {
    json!([{
        "name": "envoy.stat_sinks.statsd",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.config.metrics.v3.StatsdSink",
            "address": socket(host, port),
            "prefix": "envoy",
        },
    }])
}

fn wasm_filter(root_id: &str, policy_json: &str, wasm_path: &str, fail_reload: bool) -> Value {
    json!({
        "@type": WASM_FILTER,
        "config": {
            "name": root_id,
            "root_id": root_id,
            "allow_on_headers_stop_iteration": true,
            "failure_policy": if fail_reload { "FAIL_RELOAD" } else { "FAIL_CLOSED" },
            "vm_config": {
                "vm_id": "model_router",
                "runtime": "envoy.wasm.runtime.v8",
                "code": {"local": {"filename": wasm_path}},
            },
            "configuration": {"@type": STRING_VALUE, "value": policy_json},
        },
    })
}

/// What one generated cluster is made of, from a provider's settings or a
/// user cluster's address.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    pub name: String,
    /// Where to connect (`--upstream` overrides a provider's base URL).
    pub host: String,
    pub port: u16,
    /// The endpoint's hostname: the Host header (`auto_host_rewrite`).
    pub hostname: Option<String>,
    pub transport_socket: Option<Value>,
    /// Upstream filters before the router's per-attempt filter.
    pub filters: Vec<Value>,
}

/// The settings of cluster `name` (the `index`-th the policy uses).
pub fn cluster_spec(
    policy: &Policy,
    name: &str,
    index: usize,
    options: &EnvoyOptions,
) -> ClusterSpec {
    let listed = options
        .upstreams
        .iter()
        .find(|(cluster, _, _)| cluster == name)
        .map(|(_, host, port)| (host.clone(), *port));
    let provider = policy.providers.iter().find(|p| p.name == name);
    let (host, port) = listed.unwrap_or_else(|| match provider {
        Some(p) => (p.base_url.host.clone(), p.base_url.port),
        None => {
            let port = u16::try_from(index).map_or(u16::MAX, |i| i.saturating_add(8000));
            ("127.0.0.1".to_string(), port)
        }
    });
    let mut filters = crate::envoy_provider::upstream_filters(policy, provider);
    if let Some(p) = provider {
        crate::envoy_provider::with_sds_dir(&mut filters, p, &options.sds_dir);
    }
    ClusterSpec {
        name: name.to_string(),
        host,
        port,
        hostname: provider.map(|p| p.base_url.authority()),
        transport_socket: provider
            .and_then(|p| crate::envoy_provider::transport_socket(p, &options.ca_bundle)),
        filters,
    }
}

/// A cluster with the per-attempt filter, configured with `upstream_json`
/// ([`upstream_policy_json`]).
fn cluster_config(spec: &ClusterSpec, upstream_json: &str, options: &EnvoyOptions) -> Value {
    let (name, host, port) = (spec.name.as_str(), spec.host.as_str(), spec.port);
    let numeric = host.parse::<std::net::IpAddr>().is_ok();
    let mut endpoint = json!({"address": socket(host, port)});
    if let (Some(hostname), Some(object)) = (&spec.hostname, endpoint.as_object_mut()) {
        object.insert("hostname".to_string(), Value::String(hostname.clone()));
    }
    let mut http_filters = spec.filters.clone();
    http_filters.push(upstream_filter_every_attempt(wasm_filter(
        model_router_core::headers::UPSTREAM_ROOT_ID,
        upstream_json,
        &options.wasm_path,
        options.fail_reload,
    )));
    http_filters.push(json!({"name": "envoy.filters.http.upstream_codec", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec"}}));
    let mut cluster = json!({
        "name": name,
        "type": if numeric { "STATIC" } else { "STRICT_DNS" },
        "connect_timeout": "2s",
        "per_connection_buffer_limit_bytes": options.body_limit_bytes,
        // Fallbacks are retries: Envoy's default of 3 retries in flight per
        // cluster would answer a 4th concurrent fallback with the provider's
        // error (upstream_rq_retry_overflow). Bound them like requests (1024).
        "circuit_breakers": {"thresholds": [{"priority": "DEFAULT", "max_retries": 1024}]},
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": endpoint}]}],
        },
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http_protocol_options": {}},
                "http_filters": http_filters,
            },
        },
    });
    if let (Some(socket), Some(object)) = (&spec.transport_socket, cluster.as_object_mut()) {
        object.insert("transport_socket".to_string(), socket.clone());
    }
    cluster
}

/// The per-attempt upstream filter on every attempt: it rewrites the body of
/// retries and books each attempt's answer (a 429 and its `Retry-After`
/// start a model cooldown). Only this filter sees the answers Envoy
/// retries; the routing filter sees the final one.
pub fn upstream_filter_every_attempt(wasm: Value) -> Value {
    json!({"name": "model-router-upstream", "typed_config": wasm})
}

/// With cooldowns off (`cooldown.enabled: false`) nothing needs a first
/// attempt's answer: wrap the cluster's upstream wasm filter so Envoy skips
/// it on first attempts, as before cooldowns existed.
fn skip_upstream_filter_on_first_attempts(cluster: &mut Value) {
    let Some(Value::Array(filters)) = cluster.pointer_mut(
        "/typed_extension_protocol_options/envoy.extensions.upstreams.http.v3.HttpProtocolOptions/http_filters",
    ) else {
        return;
    };
    for filter in filters.iter_mut() {
        if filter.get("name").and_then(Value::as_str) == Some("model-router-upstream") {
            if let Some(wasm) = filter.get("typed_config").cloned() {
                *filter = upstream_filter(wasm);
            }
        }
    }
}

/// The per-attempt upstream filter, skipped on first attempts: only a retry
/// needs its body rewritten (the routing filter already wrote attempt 1's),
/// and a skipped filter costs no VM calls on the common path. Envoy's
/// matcher reads the `x-envoy-attempt-count` header the router sets on each
/// upstream request (`include_request_attempt_count`).
pub fn upstream_filter(wasm: Value) -> Value {
    json!({
        "name": "model-router-upstream",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.common.matching.v3.ExtensionWithMatcher",
            "extension_config": {"name": "model-router-upstream", "typed_config": wasm},
            "xds_matcher": {"matcher_list": {"matchers": [{
                "predicate": {"single_predicate": {
                    "input": {"name": "attempt-count", "typed_config": {
                        "@type": "type.googleapis.com/envoy.type.matcher.v3.HttpRequestHeaderMatchInput",
                        "header_name": model_router_core::headers::ATTEMPT_COUNT_HEADER}},
                    "value_match": {"exact": "1"}}},
                "on_match": {"action": {"name": "skip-first-attempt", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.common.matcher.action.v3.SkipFilter"}}},
            }]}},
        },
    })
}

/// Tries at picking a host the retry predicates accept before taking any.
const HOST_SELECTION_RETRY_MAX_ATTEMPTS: u32 = 3;

/// A retry prefers an endpoint the request has not tried yet (`previous_hosts`);
/// with one endpoint per cluster it changes nothing.
pub fn retry_host_predicates() -> Value {
    json!([{
        "name": "envoy.retry_host_predicates.previous_hosts",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"},
    }])
}

/// `per_try_idle_timeout` (an attempt that receives no byte for that long
/// is reset and retried like a per-try timeout) when the policy sets one.
fn with_idle_timeout(mut retry_policy: Value, idle_ms: Option<u64>) -> Value {
    if let (Some(ms), Some(object)) = (idle_ms, retry_policy.as_object_mut()) {
        object.insert(
            "per_try_idle_timeout".to_string(),
            Value::String(millis(ms)),
        );
    }
    retry_policy
}

/// A cluster's endpoints: every `--upstream` given for it, else the
/// policy's `clusters.NAME.endpoints`; None keeps the single endpoint.
fn endpoints(
    name: &str,
    policy: &Policy,
    options: &EnvoyOptions,
) -> Option<Vec<(String, u16, u32)>> {
    let given: Vec<(String, u16, u32)> = options
        .upstreams
        .iter()
        .filter(|(cluster, _, _)| cluster == name)
        .map(|(_, host, port)| (host.clone(), *port, 1))
        .collect();
    if given.len() > 1 {
        return Some(given);
    }
    if !given.is_empty() {
        return None;
    }
    policy
        .clusters
        .iter()
        .find(|c| c.name == name && !c.endpoints.is_empty())
        .map(|c| c.endpoints.clone())
}

/// Applies the deployment of cluster `name` (several weighted endpoints,
/// least-request balancing, outlier detection) to a generated cluster.
pub fn apply_deployment(cluster: &mut Value, name: &str, policy: &Policy, options: &EnvoyOptions) {
    let Some(object) = cluster.as_object_mut() else {
        return;
    };
    if let Some(endpoints) = endpoints(name, policy, options) {
        let numeric = endpoints
            .iter()
            .all(|(host, _, _)| host.parse::<std::net::IpAddr>().is_ok());
        object.insert(
            "type".to_string(),
            json!(if numeric { "STATIC" } else { "STRICT_DNS" }),
        );
        // A provider's endpoints keep its hostname (Host header, SNI).
        let hostname = policy
            .providers
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.base_url.authority());
        object.insert(
            "load_assignment".to_string(),
            load_assignment(name, &endpoints, hostname.as_deref()),
        );
        if endpoints.len() > 1 {
            // A slow replica gets fewer requests: LLM calls vary 100× in length.
            object.insert("lb_policy".to_string(), json!("LEAST_REQUEST"));
        }
    }
    let spec = policy.clusters.iter().find(|c| c.name == name);
    if let Some(detection) = spec.and_then(|c| c.outlier_detection.as_ref()) {
        object.insert(
            "outlier_detection".to_string(),
            outlier_detection(detection),
        );
    }
}

/// Envoy's `load_assignment` for weighted endpoints.
pub fn load_assignment(
    name: &str,
    endpoints: &[(String, u16, u32)],
    hostname: Option<&str>,
) -> Value {
    let lb_endpoints: Vec<Value> = endpoints
        .iter()
        .map(|(host, port, weight)| {
            let mut endpoint = json!({"address": socket(host, *port)});
            if let (Some(hostname), Some(object)) = (hostname, endpoint.as_object_mut()) {
                object.insert("hostname".to_string(), Value::String(hostname.to_string()));
            }
            json!({"endpoint": endpoint, "load_balancing_weight": weight})
        })
        .collect();
    json!({"cluster_name": name, "endpoints": [{"lb_endpoints": lb_endpoints}]})
}

/// Passive health checking: endpoints that answer 5xx (or fail to connect,
/// reset, time out: counted apart as local-origin failures) that many times
/// in a row are ejected for a while; Envoy's retries then go to the others.
pub fn outlier_detection(d: &model_router_core::policy::OutlierDetection) -> Value {
    json!({
        "consecutive_5xx": d.consecutive_5xx,
        "consecutive_gateway_failure": d.consecutive_gateway_failure,
        "enforcing_consecutive_gateway_failure": 100,
        "split_external_local_origin_errors": true,
        "consecutive_local_origin_failure": d.consecutive_local_origin_failure,
        "enforcing_consecutive_local_origin_failure": 100,
        "interval": millis(d.interval_ms),
        "base_ejection_time": millis(d.base_ejection_time_ms),
        "max_ejection_percent": d.max_ejection_percent,
    })
}

fn access_log_config(path: &str) -> Value {
    let path = if path.is_empty() { "/dev/stdout" } else { path };
    json!({
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": path,
            "log_format": {"json_format": {
                "time": "%START_TIME%",
                "method": "%REQ(:METHOD)%",
                "path": "%REQ(:PATH)%",
                "status": "%RESPONSE_CODE%",
                "flags": "%RESPONSE_FLAGS%",
                "cluster": "%UPSTREAM_CLUSTER%",
                "attempts": "%UPSTREAM_REQUEST_ATTEMPT_COUNT%",
                "duration_ms": "%DURATION%",
                "chain": format!("%FILTER_STATE(wasm.{CHAIN_STATE}:PLAIN)%"),
                "decision": format!("%FILTER_STATE(wasm.{DECISION_STATE}:PLAIN)%"),
                "model": "%RESP(x-model-router-model)%",
                "rule": "%RESP(x-model-router-rule)%",
            }},
        },
    })
}

/// Turns the router's `;label=value` metric names into Prometheus labels,
/// and gives its histograms buckets that fit tokens and microseconds.
pub fn stats_config() -> Value {
    let tags: Vec<Value> = model_router_core::metrics::stats_tags()
        .into_iter()
        .map(|(tag, regex)| json!({"tag_name": tag, "regex": regex}))
        .collect();
    json!({
        "stats_tags": tags,
        "histogram_bucket_settings": [
            {
                "match": {"prefix": format!("wasmcustom.{}", model_router_core::metrics::PROMPT_TOKENS_HISTOGRAM)},
                "buckets": [64, 256, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144, 1048576],
            },
            {
                "match": {"prefix": format!("wasmcustom.{}", model_router_core::metrics::DECISION_TIME_HISTOGRAM)},
                "buckets": [10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000],
            },
            {
                // Scores in thousandths, in twentieths: the bins of the score
                // drift's PSI (`model-router report --policy`) and of the median.
                "match": {"prefix": format!("wasmcustom.{}", model_router_core::metrics::CLASSIFIER_SCORE_HISTOGRAM)},
                "buckets": (1..=20u32).map(|i| i.saturating_mul(50)).collect::<Vec<u32>>(),
            },
        ],
    })
}

/// The cluster of each attempt. Envoy re-runs this matcher on every retry
/// (`refresh_cluster_on_retry`). It runs before the router writes the new
/// attempt's `x-envoy-attempt-count`, so the header reads N-1 on attempt N
/// (absent on attempt 1): key "1" selects slot 2, and so on. Each slot
/// reads the filter state the routing filter set for that attempt; requests
/// the filter did not route (other paths, shadow mode) get the default cluster.
fn attempt_matcher(clusters: &[String], default_cluster: &str, attempts: usize) -> Value {
    let slot = |n: usize| -> Value {
        let map: serde_json::Map<String, Value> = clusters
            .iter()
            .map(|c| (c.clone(), json!({"action": cluster_action(c)})))
            .collect();
        json!({
            "matcher_tree": {
                "input": {
                    "name": format!("{TRY_STATE_PREFIX}{n}"),
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.matching.common_inputs.network.v3.FilterStateInput",
                        "key": format!("wasm.{TRY_STATE_PREFIX}{n}"),
                    },
                },
                "exact_match_map": {"map": map},
            },
            "on_no_match": {"action": cluster_action(default_cluster)},
        })
    };
    if attempts <= 1 {
        return slot(1);
    }
    let retries: serde_json::Map<String, Value> = (2..=attempts)
        .map(|n| (n.saturating_sub(1).to_string(), json!({"matcher": slot(n)})))
        .collect();
    json!({
        "matcher_tree": {
            "input": {
                "name": "attempt",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.type.matcher.v3.HttpRequestHeaderMatchInput",
                    "header_name": ATTEMPT_COUNT_HEADER,
                },
            },
            "exact_match_map": {"map": retries},
        },
        "on_no_match": {"matcher": slot(1)},
    })
}

fn cluster_action(cluster: &str) -> Value {
    json!({
        "name": cluster,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.router.cluster_specifiers.matcher.v3.ClusterAction",
            "cluster": cluster,
        },
    })
}

fn socket(address: &str, port: u16) -> Value {
    json!({"socket_address": {"address": address, "port_value": port}})
}

fn millis(ms: u64) -> String {
    format!("{}.{:03}s", ms / 1000, ms % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use model_router_core::{actions, translation};
    use std::path::{Path, PathBuf};

    fn cluster<'a>(config: &'a Value, name: &str) -> &'a Value {
        config["static_resources"]["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()
    }

    #[test]
    fn replicas_balance_by_least_request_with_weights_and_outlier_detection() {
        let json = r#"{"models": {"m": {"cluster": "pool", "context_window": 1000}}, "default": "m",
            "clusters": {"pool": {"endpoints": [{"address": "10.0.0.1:8000", "weight": 3},
                                                {"address": "10.0.0.2:8000"}],
                                  "outlier_detection": {"consecutive_5xx": 2}}}}"#;
        let policy = Policy::from_json(json).unwrap();
        let config = bootstrap(&policy, json, &EnvoyOptions::default());
        let pool = cluster(&config, "pool");
        assert_eq!(pool["lb_policy"], "LEAST_REQUEST");
        assert_eq!(pool["type"], "STATIC");
        let endpoints = &pool["load_assignment"]["endpoints"][0]["lb_endpoints"];
        assert_eq!(endpoints[0]["load_balancing_weight"], 3);
        assert_eq!(endpoints[1]["load_balancing_weight"], 1);
        assert_eq!(
            endpoints[1]["endpoint"]["address"]["socket_address"]["address"],
            "10.0.0.2"
        );
        assert!(endpoints[0]["endpoint"].get("hostname").is_none());
        assert_eq!(pool["outlier_detection"]["consecutive_5xx"], 2);
        assert_eq!(pool["outlier_detection"]["base_ejection_time"], "30.000s");
    }

    #[test]
    fn a_providers_replicas_keep_its_hostname_and_tls() {
        let json = r#"{"providers": {"local": {"preset": "vllm", "base_url": "https://vllm.internal:8443/v1"}},
            "models": {"m": {"provider": "local", "context_window": 1000}}, "default": "m",
            "clusters": {"local": {"endpoints": [{"address": "10.0.0.1:8443"}, {"address": "10.0.0.2:8443"}]}}}"#;
        let policy = Policy::from_json(json).unwrap();
        let config = bootstrap(&policy, json, &EnvoyOptions::default());
        let local = cluster(&config, "local");
        let endpoints = local["load_assignment"]["endpoints"][0]["lb_endpoints"]
            .as_array()
            .unwrap();
        assert_eq!(endpoints.len(), 2);
        for e in endpoints {
            assert_eq!(e["endpoint"]["hostname"], "vllm.internal:8443");
        }
        assert!(local.get("transport_socket").is_some(), "{local:#}");
    }

    /// Every policy the repository ships, with classifier artifacts inlined
    /// as `model-router envoy` does.
    fn shipped_policies() -> Vec<(PathBuf, String)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("examples/policies"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        files.insert(0, root.join("examples/policy.json"));
        files
            .into_iter()
            .map(|file| {
                let text = std::fs::read_to_string(&file).unwrap();
                let text = crate::inline::inline_artifacts(&text, file.parent().unwrap()).unwrap();
                (file, text)
            })
            .collect()
    }

    /// The policy text of each cluster's per-attempt filter in `config`.
    fn upstream_policies(config: &Value) -> Vec<String> {
        config["static_resources"]["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let filter = c["typed_extension_protocol_options"]
                    ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["http_filters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|f| f["name"] == "model-router-upstream")
                    .unwrap();
                let typed = &filter["typed_config"];
                // Wrapped in the matcher that skips first attempts (cooldowns off).
                let wasm = typed
                    .pointer("/extension_config/typed_config")
                    .unwrap_or(typed);
                assert_eq!(
                    wasm["config"]["root_id"],
                    model_router_core::headers::UPSTREAM_ROOT_ID
                );
                wasm["config"]["configuration"]["value"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    /// A client request of each API the router reads, with its path.
    const CLIENT_REQUESTS: [(&str, &str); 4] = [
        (
            "/v1/chat/completions",
            r#"{"model":"router","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}],"max_tokens":50,"temperature":0.5}"#,
        ),
        (
            "/v1/completions",
            r#"{"model":"router","prompt":"hi","max_tokens":50}"#,
        ),
        (
            "/v1/responses",
            r#"{"model":"router","instructions":"be brief","input":"hi","max_output_tokens":50}"#,
        ),
        (
            "/v1/messages",
            r#"{"model":"router","system":"be brief","max_tokens":50,"messages":[{"role":"user","content":"hi"}]}"#,
        ),
    ];

    #[test]
    fn the_upstream_filter_gets_a_policy_without_what_only_decisions_read() {
        for (file, text) in shipped_policies() {
            let policy = Policy::from_json(&text).unwrap();
            let config = bootstrap(&policy, &text, &EnvoyOptions::default());
            let routing = config.pointer("/static_resources/listeners/0/filter_chains/0/filters/0/typed_config/http_filters")
                .unwrap()
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["name"] == "model-router")
                .unwrap()["typed_config"]["config"]["configuration"]["value"]
                .clone();
            assert_eq!(routing, Value::String(text.clone()), "{}", file.display());
            let upstream = upstream_policies(&config);
            assert_eq!(upstream.len(), clusters(&policy).len());
            for view in upstream {
                assert_eq!(view, upstream_policy_json(&policy, &text));
                let reduced: Value = serde_json::from_str(&view).unwrap();
                for member in ["tasks", "rules", "classifiers"] {
                    assert!(
                        reduced.get(member).is_none(),
                        "{}: {member}",
                        file.display()
                    );
                }
            }
        }
    }

    /// The upstream filter reads models by name (ids are their indexes),
    /// their providers, translation and variant settings, the cooldown
    /// settings: the reduced policy must give all of them exactly as the
    /// whole one, and so the same path and body for every attempt.
    #[test]
    fn every_attempt_is_the_same_with_the_upstream_filters_policy() {
        for (file, text) in shipped_policies() {
            let at = file.display();
            let full = Policy::from_json(&text).unwrap();
            let reduced = Policy::from_json(&upstream_policy_json(&full, &text))
                .unwrap_or_else(|e| panic!("{at}: {e}"));
            let debug = |p: &Policy| {
                (
                    format!("{:?}", p.models),
                    format!("{:?}", p.providers),
                    format!("{:?}", p.cooldown),
                    format!("{:?}", p.headers),
                    (p.default_output_tokens, p.translate, p.mode),
                )
            };
            assert_eq!(debug(&reduced), debug(&full), "{at}");
            assert!(text.len() >= upstream_policy_json(&full, &text).len());
            // Every model once as every attempt: a plan of all of them, and reversed.
            let names: Vec<&str> = full.models.iter().map(|m| m.name.as_str()).collect();
            let reversed: Vec<&str> = names.iter().rev().copied().collect();
            for plan in [names.join(","), reversed.join(",")] {
                let attempts = u32::try_from(names.len()).unwrap() + 1;
                for (path, body) in CLIENT_REQUESTS {
                    for attempt in 1..=attempts {
                        let each = |p: &Policy| {
                            (
                                actions::planned_model(p, &plan, attempt),
                                translation::attempt_path(p, &plan, attempt, path),
                                translation::attempt_request(
                                    p,
                                    &plan,
                                    attempt,
                                    path,
                                    body.as_bytes(),
                                ),
                                actions::attempt_body(p, &plan, attempt, body.as_bytes()),
                            )
                        };
                        let expected = each(&full);
                        if attempt < attempts {
                            assert!(
                                expected.0.is_some() && expected.1.is_some(),
                                "{at} {plan} {path} {attempt}"
                            );
                        }
                        assert_eq!(
                            each(&reduced),
                            expected,
                            "{at} {plan} {path} attempt {attempt}"
                        );
                    }
                }
            }
        }
    }
}
