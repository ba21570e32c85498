//! Every generated deployment file, built from `examples/policy.json` and the
//! library's own config generator (`model_router_cli::envoy_config`), so the
//! shipped Envoy configs, the compose stack and the Istio / Envoy Gateway
//! manifests cannot drift from what the filter expects.
//!
//! `scripts/gen-configs` writes them (this module run with
//! `MODEL_ROUTER_WRITE_CONFIGS=1`); the `generated_files_are_up_to_date` test
//! regenerates them into a temporary directory and compares.

use model_router_cli::envoy_config::{self, EnvoyOptions};
use model_router_core::policy::Policy;
use serde_json::{json, Value};

use crate::repo;

pub const POLICY: &str = "examples/policy.json";
/// Where the local config expects the mock providers (scripts/demo picks free
/// ports instead; these are for running by hand, see docs/deploy.md).
pub const LOCAL_UPSTREAMS: [(&str, u16); 3] =
    [("local", 8001), ("openai", 8002), ("anthropic", 8003)];
pub const LISTEN_PORT: u16 = 10000;
pub const ADMIN_PORT: u16 = 9901;
pub const STATSD_PORT: u16 = 8125;
/// The port every containerised / in-cluster mock provider listens on.
pub const PROVIDER_PORT: u16 = 8080;
/// Where the compose file mounts the built filter inside the Envoy container.
pub const COMPOSE_WASM: &str = "/etc/envoy/model_router.wasm";
/// Kubernetes namespace of the Istio and Envoy Gateway examples.
pub const NAMESPACE: &str = "llm";
/// Placeholders the user replaces (docs/deploy.md): where the filter is published.
pub const WASM_OCI: &str = "oci://registry.example.com/model-router/filter:0.1.0";
pub const WASM_HTTPS: &str = "https://wasm.example.com/model-router/0.1.0/model_router.wasm";
pub const WASM_HTTPS_HOST: &str = "wasm.example.com";
pub const WASM_SHA256_PLACEHOLDER: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";
pub const MOCK_IMAGE: &str = "registry.example.com/model-router/mock-provider:0.1.0";

const WASM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
const HTTP_OPTIONS: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

/// How each provider cluster of the example policy is run as a mock:
/// (cluster, mock-provider flags). The same as scripts/demo.
pub const MOCKS: [(&str, &[&str]); 3] = [
    (
        "local",
        &["--encoding", "cl100k_base", "--latency-ms", "20"],
    ),
    (
        "openai",
        &["--fault", "gpt-4o-mini=count:20:429", "--latency-ms", "40"],
    ),
    (
        "anthropic",
        &["--encoding", "cl100k_base", "--latency-ms", "60"],
    ),
];

pub fn mock_service(cluster: &str) -> String {
    format!("mock-{cluster}")
}

/// The Istio cluster of a provider running in the example namespace.
pub fn istio_cluster(cluster: &str) -> String {
    format!(
        "outbound|{PROVIDER_PORT}||{}.{NAMESPACE}.svc.cluster.local",
        mock_service(cluster)
    )
}

/// One generated file: its path in the repo and its content.
pub struct File {
    pub path: &'static str,
    pub content: String,
}

pub fn all() -> Vec<File> {
    let text = std::fs::read_to_string(repo().join(POLICY)).unwrap();
    let policy = Policy::from_json(&text).unwrap();
    vec![
        File {
            path: "envoy/envoy.yaml",
            content: envoy_yaml(&local_bootstrap(&policy, &text, None), "a local run"),
        },
        File {
            path: "envoy/statsd.yaml",
            content: envoy_yaml(
                &local_bootstrap(&policy, &text, Some(("127.0.0.1", STATSD_PORT))),
                "a local run that also pushes every stat to statsd on 127.0.0.1:8125 (UDP)",
            ),
        },
        File {
            path: "envoy/envoy-compose.yaml",
            content: envoy_yaml(&compose_bootstrap(&policy, &text), "docker-compose.yaml"),
        },
        File {
            path: "examples/istio/envoyfilter.yaml",
            content: istio_envoyfilter(&text),
        },
        File {
            path: "examples/istio/wasmplugin.yaml",
            content: istio_wasmplugin(&text),
        },
        File {
            path: "examples/istio/bootstrap.yaml",
            content: istio_bootstrap(),
        },
        File {
            path: "examples/istio/providers.yaml",
            content: providers(),
        },
        File {
            path: "examples/envoy-gateway/envoy-extension-policy.yaml",
            content: eg_extension_policy(&text),
        },
        File {
            path: "examples/envoy-gateway/envoy-patch-policy.yaml",
            content: eg_patch_policy(&policy, &text),
        },
        File {
            path: "examples/envoy-gateway/envoy-proxy.yaml",
            content: eg_envoy_proxy(),
        },
        File {
            path: "examples/envoy-gateway/providers.yaml",
            content: providers(),
        },
    ]
}

pub fn local_options(statsd: Option<(&str, u16)>) -> EnvoyOptions {
    EnvoyOptions {
        listen_address: "127.0.0.1".into(),
        listen_port: LISTEN_PORT,
        admin_port: ADMIN_PORT,
        // Relative: run Envoy from the repository root (scripts/envoy -c envoy/envoy.yaml).
        wasm_path: "target/wasm32-wasip1/release/model_router.wasm".into(),
        upstreams: LOCAL_UPSTREAMS
            .iter()
            .map(|(c, p)| (c.to_string(), "127.0.0.1".to_string(), *p))
            .collect(),
        access_log_path: Some(String::new()),
        statsd: statsd.map(|(h, p)| (h.to_string(), p)),
        ..EnvoyOptions::default()
    }
}

pub fn local_bootstrap(policy: &Policy, text: &str, statsd: Option<(&str, u16)>) -> Value {
    envoy_config::bootstrap(policy, text, &local_options(statsd))
}

pub fn compose_bootstrap(policy: &Policy, text: &str) -> Value {
    let options = EnvoyOptions {
        listen_address: "0.0.0.0".into(),
        listen_port: LISTEN_PORT,
        admin_port: ADMIN_PORT,
        // Prometheus scrapes the admin port from another container.
        admin_address: "0.0.0.0".into(),
        wasm_path: COMPOSE_WASM.into(),
        upstreams: MOCKS
            .iter()
            .map(|(c, _)| (c.to_string(), mock_service(c), PROVIDER_PORT))
            .collect(),
        access_log_path: Some(String::new()),
        ..EnvoyOptions::default()
    };
    envoy_config::bootstrap(policy, text, &options)
}

const GENERATED: &str = "GENERATED by scripts/gen-configs from examples/policy.json and src/envoy_config.rs:
do not edit by hand; change those and run scripts/gen-configs (a test fails when this file is stale).";

fn comment(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                "#\n".to_string()
            } else {
                format!("# {l}\n")
            }
        })
        .collect()
}

fn yaml(value: &impl serde::Serialize) -> String {
    serde_norway::to_string(value).unwrap()
}

/// A YAML stream of documents, each with its own leading comment.
fn documents(header: &str, docs: &[(&str, Value)]) -> String {
    let mut out = comment(&format!("{GENERATED}\n\n{header}"));
    for (i, (about, doc)) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        if !about.is_empty() {
            out.push_str(&comment(about));
        }
        out.push_str(&yaml(doc));
    }
    out
}

fn envoy_yaml(bootstrap: &Value, what: &str) -> String {
    let header = format!(
        "The Envoy bootstrap for {what}: the model-router filter with the policy
embedded, the route whose matcher cluster specifier reads the filter's
per-attempt choice (fallback chains ride Envoy retries), and one cluster per
provider with the per-attempt upstream filter. See docs/deploy.md."
    );
    documents(&header, &[("", bootstrap.clone())])
}

/// The example policy with its provider clusters renamed (order kept).
fn policy_yaml(text: &str, rename: impl Fn(&str) -> String) -> serde_norway::Value {
    let mut policy: serde_norway::Value = serde_norway::from_str(text).unwrap();
    let models = policy
        .get_mut("models")
        .and_then(|m| m.as_mapping_mut())
        .unwrap();
    for (_, model) in models.iter_mut() {
        let cluster = model.get_mut("cluster").unwrap();
        let renamed = rename(cluster.as_str().unwrap());
        *cluster = serde_norway::Value::String(renamed);
    }
    policy
}

/// The same policy as JSON text, key order kept (the order of `tasks` and
/// `models` means something).
fn policy_json(policy: &serde_norway::Value) -> String {
    serde_json::to_string_pretty(policy).unwrap()
}

pub fn istio_policy_json(text: &str) -> String {
    policy_json(&policy_yaml(text, istio_cluster))
}

fn type_urls() -> Value {
    json!({"config_source": {"ads": {}, "initial_fetch_timeout": "0s"}, "type_urls": [WASM_TYPE]})
}

/// The routing filter's Wasm config from a bootstrap.
fn routing_wasm(bootstrap: &Value) -> Value {
    bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        ["http_filters"][0]["typed_config"]
        .clone()
}

fn cluster<'a>(bootstrap: &'a Value, name: &str) -> &'a Value {
    bootstrap["static_resources"]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
}

/// The upstream filter's Wasm config on a cluster of a bootstrap (inside
/// the matcher that skips it on first attempts, when cooldowns are off).
fn upstream_wasm(bootstrap: &Value, cluster_name: &str) -> Value {
    let mut c = cluster(bootstrap, cluster_name).clone();
    upstream_wasm_slot(&mut c).clone()
}

/// Where a cluster's upstream Wasm config sits: the filter's `typed_config`,
/// or the `extension_config` of its `ExtensionWithMatcher` wrapper.
fn upstream_wasm_slot(cluster: &mut Value) -> &mut Value {
    let filter = &mut cluster["typed_extension_protocol_options"][HTTP_OPTIONS]["http_filters"][0]
        ["typed_config"];
    if filter.get("extension_config").is_some() {
        &mut filter["extension_config"]["typed_config"]
    } else {
        filter
    }
}

fn route(bootstrap: &Value) -> Value {
    bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        ["route_config"]["virtual_hosts"][0]["routes"][0]
        .clone()
}

fn with_code(mut wasm: Value, code: Value) -> Value {
    wasm["config"]["vm_config"]["code"] = code;
    wasm
}

fn istio_bootstrap_json(text: &str) -> Value {
    let policy_text = istio_policy_json(text);
    let policy = Policy::from_json(&policy_text).unwrap();
    envoy_config::bootstrap(&policy, &policy_text, &EnvoyOptions::default())
}

/// The Istio install: the filter through ECDS (the agent fetches the OCI
/// image), and the patches no Istio API expresses.
fn istio_envoyfilter(text: &str) -> String {
    let bootstrap = istio_bootstrap_json(text);
    // istio-agent downloads remote (https:// or oci://) modules of ECDS
    // resources and rewrites them to a local file before Envoy sees them.
    let code = json!({"remote": {
        "http_uri": {"uri": WASM_OCI, "cluster": "model-router-wasm-fetched-by-istio-agent", "timeout": "60s"},
    }});
    let routing = with_code(routing_wasm(&bootstrap), code.clone());
    let first = envoy_config::clusters(&Policy::from_json(&istio_policy_json(text)).unwrap());
    let upstream = with_code(upstream_wasm(&bootstrap, &first[0]), code);
    let r = route(&bootstrap);

    let gateway = |m: Value| {
        let mut m = m;
        m["context"] = json!("GATEWAY");
        m
    };
    let mut patches = vec![
        json!({"applyTo": "EXTENSION_CONFIG", "patch": {"operation": "ADD", "value": {
            "name": "model-router", "typed_config": routing}}}),
        json!({"applyTo": "EXTENSION_CONFIG", "patch": {"operation": "ADD", "value": {
            "name": "model-router-upstream", "typed_config": upstream}}}),
        json!({"applyTo": "HTTP_FILTER",
            "match": gateway(json!({"listener": {"filterChain": {"filter": {
                "name": "envoy.filters.network.http_connection_manager",
                "subFilter": {"name": "envoy.filters.http.router"}}}}})),
            "patch": {"operation": "INSERT_BEFORE", "value": {
                "name": "model-router", "config_discovery": type_urls()}}}),
        json!({"applyTo": "VIRTUAL_HOST",
            "match": gateway(json!({"routeConfiguration": {"portNumber": 80, "vhost": {"name": "*:80"}}})),
            "patch": {"operation": "MERGE", "value": {
                "include_request_attempt_count": true,
                "include_attempt_count_in_response": true}}}),
        json!({"applyTo": "HTTP_ROUTE",
        "match": gateway(json!({"routeConfiguration": {"portNumber": 80, "vhost": {
            "name": "*:80", "route": {"name": "model-router"}}}})),
        "patch": {"operation": "MERGE", "value": {
            "request_body_buffer_limit": r["request_body_buffer_limit"],
            "request_headers_to_remove": r["request_headers_to_remove"],
            "route": {
                "timeout": r["route"]["timeout"],
                "retry_policy": r["route"]["retry_policy"],
                "inline_cluster_specifier_plugin": r["route"]["inline_cluster_specifier_plugin"],
            }}}}),
    ];
    for (name, _) in MOCKS {
        let c = cluster(&bootstrap, &istio_cluster(name));
        let mut options = c["typed_extension_protocol_options"].clone();
        // ECDS: istio-agent fetches the module only for a top-level Wasm
        // filter, so here the upstream filter is never wrapped in the
        // matcher that skips first attempts (with cooldowns on, the default,
        // it is not wrapped anywhere: it books every attempt's answer).
        options[HTTP_OPTIONS]["http_filters"][0] =
            json!({"name": "model-router-upstream", "config_discovery": type_urls()});
        patches.push(json!({"applyTo": "CLUSTER",
            "match": gateway(json!({"cluster": {
                "service": format!("{}.{NAMESPACE}.svc.cluster.local", mock_service(name)),
                "portNumber": PROVIDER_PORT}})),
            "patch": {"operation": "MERGE", "value": {
                "per_connection_buffer_limit_bytes": c["per_connection_buffer_limit_bytes"],
                "typed_extension_protocol_options": options}}}));
    }
    let filter = json!({
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "EnvoyFilter",
        "metadata": {"name": "model-router", "namespace": NAMESPACE},
        "spec": {
            "workloadSelector": {"labels": {"istio": "llm-gateway"}},
            "configPatches": patches,
        },
    });
    documents(
        "model-router on an Istio gateway (the llm-gateway of gateway.yaml), installed
with an EnvoyFilter because a WasmPlugin cannot set the filter's
allow_on_headers_stop_iteration (wasmplugin.yaml says more). What it patches:
- EXTENSION_CONFIG (ECDS): the routing filter and the per-attempt upstream
  filter, code from the OCI image scripts/oci-image builds; istio-agent pulls
  it and hands Envoy a local file. The embedded policy is examples/policy.json
  with each cluster renamed to its Istio cluster (outbound|8080||mock-*...);
  the upstream filter's is its upstream view (no tasks, rules or classifiers,
  which only the routing filter reads; default: every model).
- HTTP_FILTER: the routing filter before the router.
- VIRTUAL_HOST: attempt-count headers (the filter reads which attempt it is).
- HTTP_ROUTE: the matcher cluster specifier that sends attempt N to the
  chain's Nth model, the retry policy that carries fallback chains (with
  refresh_cluster_on_retry) and the body buffer limit; no VirtualService
  field expresses these. The VirtualService's route must be named model-router
  and set retries.attempts: 0 so this retry policy is the only one.
- CLUSTER: the upstream filter on each provider cluster (typed_extension_protocol_options;
  MERGE replaces Istio's own HttpProtocolOptions entry, so it is written whole).
Needs an Istio whose proxy is Envoy 1.40 or later and whose istiod knows the
Envoy 1.40 API (older ones drop unknown fields such as refresh_cluster_on_retry).",
        &[("", filter)],
    )
}

fn istio_wasmplugin(text: &str) -> String {
    let plugin = json!({
        "apiVersion": "extensions.istio.io/v1alpha1",
        "kind": "WasmPlugin",
        "metadata": {"name": "model-router", "namespace": NAMESPACE},
        "spec": {
            "selector": {"matchLabels": {"istio": "llm-gateway"}},
            "url": WASM_OCI,
            "imagePullPolicy": "IfNotPresent",
            "pluginName": "model_router",
            "phase": "UNSPECIFIED_PHASE",
            "failStrategy": "FAIL_CLOSE",
            "type": "HTTP",
            "pluginConfig": "POLICY",
        },
    });
    let mut text_out = documents(
        "NOT THE INSTALL PATH TODAY: a WasmPlugin cannot set the Wasm PluginConfig
field allow_on_headers_stop_iteration (Istio exposes no such field; see
istio/istio discussion 60126). Without it Envoy turns the filter's
StopIteration on request headers into StopAllIterationAndWatermark and never
hands it the body it waits for: every POST with a body would hang until the
route timeout. Nor can an EnvoyFilter patch the ECDS resource a WasmPlugin
creates (EXTENSION_CONFIG patches only ADD). Use envoyfilter.yaml.

This file is kept, tested, as the shape of the install once Istio exposes the
field: the policy as pluginConfig (Istio sends it to the filter as JSON),
pluginName = the routing root_id, phase UNSPECIFIED_PHASE (right before the
router, after authentication and authorization), failStrategy FAIL_CLOSE
(a failed module answers 503 rather than sending unrouted requests with the
client's model alias to the default provider). Two things differ from the
EnvoyFilter install even then: pluginConfig is a Struct, so Istio sends its
keys sorted (tasks are then tried alphabetically, models tie-break
alphabetically), and the route, cluster and stats patches of
envoyfilter.yaml and bootstrap.yaml are still needed.",
        &[("", plugin)],
    );
    // The policy as YAML, key order as written.
    let policy = yaml(&policy_yaml(text, istio_cluster));
    let indented: String = policy.lines().map(|l| format!("    {l}\n")).collect();
    text_out = text_out.replace(
        "  pluginConfig: POLICY\n",
        &format!("  pluginConfig:\n{indented}"),
    );
    text_out
}

fn istio_bootstrap() -> String {
    let custom = json!({"stats_config": envoy_config::stats_config()});
    let config_map = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "model-router-bootstrap", "namespace": NAMESPACE},
        "data": {"custom_bootstrap.json": serde_json::to_string_pretty(&custom).unwrap()},
    });
    documents(
        "Bootstrap additions for the llm-gateway proxy (annotation
sidecar.istio.io/bootstrapOverride: model-router-bootstrap, in gateway.yaml):
the stats_tags that turn the filter's `model_router_*;label=value` metric
names into Prometheus labels, and histogram buckets sized for tokens and
microseconds. Istio merges them into its own bootstrap (lists are appended).",
        &[("", config_map)],
    )
}

/// The three mock providers as Deployments and Services (image built from
/// docker/mock-provider.Dockerfile).
fn providers() -> String {
    let mut docs = Vec::new();
    for (name, flags) in MOCKS {
        let service = mock_service(name);
        let mut args: Vec<String> = vec![
            "--listen".into(),
            format!("0.0.0.0:{PROVIDER_PORT}"),
            "--name".into(),
            name.into(),
            "--no-record".into(),
        ];
        args.extend(flags.iter().map(|f| f.to_string()));
        docs.push((
            "",
            json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": service, "namespace": NAMESPACE, "labels": {"app": service}},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": service}},
                    "template": {
                        "metadata": {"labels": {"app": service}},
                        "spec": {"containers": [{
                            "name": "mock-provider",
                            "image": MOCK_IMAGE,
                            "command": ["mock-provider"],
                            "args": args,
                            "ports": [{"name": "http", "containerPort": PROVIDER_PORT}],
                            "readinessProbe": {"httpGet": {"path": "/__mock/health", "port": PROVIDER_PORT}},
                        }]},
                    },
                },
            }),
        ));
        docs.push((
            "",
            json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": service, "namespace": NAMESPACE},
                "spec": {
                    "selector": {"app": service},
                    "ports": [{"name": "http", "port": PROVIDER_PORT, "targetPort": PROVIDER_PORT, "appProtocol": "http"}],
                },
            }),
        ));
    }
    documents(
        "Three mock LLM providers standing in for the example policy's clusters
(local, openai, anthropic), as in scripts/demo and docker-compose.yaml: the
openai one rate-limits its first 20 gpt-4o-mini requests so fallbacks show.
Build and push the image from docker/mock-provider.Dockerfile, then replace
registry.example.com.",
        &docs,
    )
}

fn eg_policy_value(text: &str) -> serde_norway::Value {
    policy_yaml(text, |c| c.to_string())
}

fn eg_extension_policy(text: &str) -> String {
    let eep = json!({
        "apiVersion": "gateway.envoyproxy.io/v1alpha1",
        "kind": "EnvoyExtensionPolicy",
        "metadata": {"name": "model-router", "namespace": NAMESPACE},
        "spec": {
            "targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "model-router"}],
            "wasm": [{
                "name": "model-router",
                "rootID": "model_router",
                "code": {"type": "HTTP", "http": {"url": WASM_HTTPS, "sha256": WASM_SHA256_PLACEHOLDER}},
                "failOpen": false,
                "config": "POLICY",
            }],
        },
    });
    let mut out = documents(
        "model-router on Envoy Gateway: the routing filter on the model-router HTTPRoute.
The module comes over HTTPS (Envoy Gateway downloads it, checks the sha256
and serves it to Envoy); the per-attempt upstream filter that
envoy-patch-policy.yaml adds to each provider cluster downloads the same URL
itself, so both run the same bytes. Replace the URL and the sha256
(`sha256sum target/wasm32-wasip1/release/model_router.wasm`) here and in
envoy-patch-policy.yaml. Envoy Gateway may also take the module from an OCI
image (code.type: Image, the image scripts/oci-image builds), but the upstream
filter cannot: it is outside what EnvoyExtensionPolicy manages.
`config` is the policy (examples/policy.json). Kubernetes stores it as a JSON
object, so the filter receives its keys sorted: tasks are then tried
alphabetically and model ties break alphabetically.
What EnvoyExtensionPolicy cannot express is in envoy-patch-policy.yaml.",
        &[("", eep)],
    );
    let policy = yaml(&eg_policy_value(text));
    let indented: String = policy.lines().map(|l| format!("      {l}\n")).collect();
    out = out.replace("    config: POLICY\n", &format!("    config:\n{indented}"));
    out
}

/// Envoy Gateway's names for what the example's Gateway and HTTPRoute become.
pub const EG_LISTENER: &str = "llm/llm-gateway/http";
pub const EG_ROUTE: &str = "httproute/llm/model-router/rule/0/match/0/*";
pub const EG_WASM_FILTER: &str =
    "envoy.filters.http.wasm/envoyextensionpolicy/llm/model-router/wasm/0";

fn eg_patch_policy(policy: &Policy, text: &str) -> String {
    let options = EnvoyOptions {
        upstreams: MOCKS
            .iter()
            .map(|(c, _)| {
                (
                    c.to_string(),
                    format!("{}.{NAMESPACE}.svc.cluster.local", mock_service(c)),
                    PROVIDER_PORT,
                )
            })
            .collect(),
        ..EnvoyOptions::default()
    };
    let bootstrap = envoy_config::bootstrap(policy, text, &options);
    let r = route(&bootstrap);
    let code = json!({"remote": {
        "http_uri": {"uri": WASM_HTTPS, "cluster": "model-router-wasm", "timeout": "60s"},
        "sha256": WASM_SHA256_PLACEHOLDER,
        "retry_policy": {"num_retries": 5},
    }});
    let mut patches = vec![
        json!({
            "type": "type.googleapis.com/envoy.config.listener.v3.Listener",
            "name": EG_LISTENER,
            "operation": {
                "op": "add",
                "jsonPath": format!("$..http_filters[?(@.name == '{EG_WASM_FILTER}')].typed_config.config"),
                "path": "/allow_on_headers_stop_iteration",
                "value": true,
            },
        }),
        json!({
            "type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
            "name": EG_LISTENER,
            "operation": {
                "op": "add",
                "jsonPath": "$.virtual_hosts[0]",
                "path": "/include_request_attempt_count",
                "value": true,
            },
        }),
        json!({
            "type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
            "name": EG_LISTENER,
            "operation": {
                "op": "add",
                "jsonPath": "$.virtual_hosts[0]",
                "path": "/include_attempt_count_in_response",
                "value": true,
            },
        }),
        json!({
            "type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
            "name": EG_LISTENER,
            "operation": {
                "op": "add",
                "jsonPath": format!("$..routes[?(@.name == '{EG_ROUTE}')]"),
                "path": "/request_body_buffer_limit",
                "value": r["request_body_buffer_limit"],
            },
        }),
        json!({
            "type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
            "name": EG_LISTENER,
            "operation": {
                "op": "replace",
                "jsonPath": format!("$..routes[?(@.name == '{EG_ROUTE}')]"),
                "path": "/route",
                "value": {
                    "timeout": r["route"]["timeout"],
                    "retry_policy": r["route"]["retry_policy"],
                    "inline_cluster_specifier_plugin": r["route"]["inline_cluster_specifier_plugin"],
                },
            },
        }),
    ];
    for name in envoy_config::clusters(policy) {
        let mut c = cluster(&bootstrap, &name).clone();
        *upstream_wasm_slot(&mut c) = with_code(upstream_wasm(&bootstrap, &name), code.clone());
        patches.push(json!({
            "type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
            "name": name,
            "operation": {"op": "add", "path": "", "value": c},
        }));
    }
    patches.push(json!({
        "type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
        "name": "model-router-wasm",
        "operation": {"op": "add", "path": "", "value": {
            "name": "model-router-wasm",
            "type": "STRICT_DNS",
            "connect_timeout": "5s",
            "dns_lookup_family": "V4_PREFERRED",
            "load_assignment": {"cluster_name": "model-router-wasm", "endpoints": [{"lb_endpoints": [{"endpoint": {
                "address": {"socket_address": {"address": WASM_HTTPS_HOST, "port_value": 443}}}}]}]},
            "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "sni": WASM_HTTPS_HOST,
                "common_tls_context": {"validation_context": {"trusted_ca": {"filename": "/etc/ssl/certs/ca-certificates.crt"}}},
            }},
        }},
    }));
    let epp = json!({
        "apiVersion": "gateway.envoyproxy.io/v1alpha1",
        "kind": "EnvoyPatchPolicy",
        "metadata": {"name": "model-router", "namespace": NAMESPACE},
        "spec": {
            "targetRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "llm-gateway"},
            "type": "JSONPatch",
            "jsonPatches": patches,
        },
    });
    documents(
        "What EnvoyExtensionPolicy cannot express, as JSON patches on the xDS Envoy
Gateway generates (EnvoyPatchPolicy must be enabled: extensionApis.enableEnvoyPatchPolicy).
- allow_on_headers_stop_iteration on the routing filter (Envoy Gateway does not
  expose it: envoyproxy/gateway issue 8382).
- The virtual host's attempt-count headers.
- The HTTPRoute's route: the matcher cluster specifier that sends attempt N
  to the chain's Nth model, the retry policy carrying fallback chains
  (refresh_cluster_on_retry) and the body buffer limit.
- One cluster per provider cluster the policy names (local, openai,
  anthropic), added whole with the per-attempt upstream filter, which fetches
  the module itself through the model-router-wasm cluster; its policy is the
  upstream view of examples/policy.json (no tasks, rules or classifiers,
  which only the routing filter reads; default: every model).
The listener, route and filter names are those Envoy Gateway generates for
gateway.yaml (check with `egctl config envoy-proxy route -n envoy-gateway-system`);
the JSON patches are applied by Envoy Gateway and never reached a real Envoy
Gateway here (docs/deploy.md says what is verified). Needs an Envoy Gateway
whose Envoy is 1.40 or later and whose control plane knows the Envoy 1.40 API.",
        &[("", epp)],
    )
}

fn eg_envoy_proxy() -> String {
    let bootstrap = json!({"stats_config": envoy_config::stats_config()});
    let proxy = json!({
        "apiVersion": "gateway.envoyproxy.io/v1alpha1",
        "kind": "EnvoyProxy",
        "metadata": {"name": "model-router", "namespace": NAMESPACE},
        "spec": {"bootstrap": {"type": "Merge", "value": yaml(&bootstrap)}},
    });
    documents(
        "The Envoy Gateway proxy's bootstrap additions (gateway.yaml's Gateway points
at this EnvoyProxy through infrastructure.parametersRef): the stats_tags that
turn `model_router_*;label=value` metric names into Prometheus labels and the
histogram buckets.",
        &[("", proxy)],
    )
}
