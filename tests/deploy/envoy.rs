//! `envoy --mode validate` (Envoy 1.40, from scripts/setup) on every Envoy
//! config we ship, on the config of every example policy, and on bootstraps
//! assembled from the Istio and Envoy Gateway patches. Validation mode loads
//! the `.wasm` and runs its configuration callback, so the embedded policy is
//! checked by the filter itself too.

use std::path::{Path, PathBuf};
use std::process::Command;

use model_router_cli::envoy_config::{self, EnvoyOptions};
use model_router_core::policy::Policy;
use serde_json::{json, Value};

use crate::generate::{self, COMPOSE_WASM};
use crate::{example_policies, relative, repo, scratch, venv_tool, yaml_documents};

pub fn envoy_bin() -> PathBuf {
    venv_tool("ENVOY_BIN", "envoy/_bin/envoy", "Envoy")
}

pub fn wasm() -> PathBuf {
    let path = std::env::var_os("MODEL_ROUTER_WASM").map_or_else(
        || {
            std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| repo().join("target"), PathBuf::from)
                .join("wasm32-wasip1/release/model_router.wasm")
        },
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "the filter is not built at {}: cargo build --release --target wasm32-wasip1 --lib (scripts/test does)",
        path.display()
    );
    path
}

/// Runs `envoy --mode validate` on `config` from the repository root.
pub fn validate(config: &Path) {
    let out = Command::new(envoy_bin())
        .current_dir(repo())
        .args(["--mode", "validate", "--log-level", "warn", "-c"])
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "envoy --mode validate rejected {}:\n{}{}",
        relative(config),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every string in `value` equal to `from` becomes `to`.
fn replace_strings(value: &mut Value, from: &str, to: &str) {
    match value {
        Value::String(s) if s == from => *s = to.to_string(),
        Value::Array(items) => items.iter_mut().for_each(|v| replace_strings(v, from, to)),
        Value::Object(map) => map.values_mut().for_each(|v| replace_strings(v, from, to)),
        _ => {}
    }
}

fn write_json(dir: &Path, name: &str, value: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(value).unwrap()).unwrap();
    path
}

#[test]
fn the_local_envoy_configs_validate() {
    // Relative .wasm path: valid from the repository root, where
    // docs/deploy.md runs `scripts/envoy -c envoy/envoy.yaml`.
    wasm();
    validate(&repo().join("envoy/envoy.yaml"));
    validate(&repo().join("envoy/statsd.yaml"));
}

#[test]
fn the_compose_envoy_config_validates_with_the_wasm_at_its_local_path() {
    // Only the .wasm path differs from what runs in the container (it is
    // mounted there); STRICT_DNS clusters need no resolution to validate.
    let mut config = yaml_documents("envoy/envoy-compose.yaml").remove(0);
    replace_strings(&mut config, COMPOSE_WASM, &wasm().display().to_string());
    let dir = scratch("compose-envoy");
    validate(&write_json(&dir, "envoy-compose.json", &config));
}

/// The policy with every file it names (keys, CA bundles) moved into
/// `dir` as placeholders, since validation opens them: keys get a dummy
/// value, CA bundles the system bundle.
fn with_local_files(text: &str, dir: &Path) -> String {
    let policy = Policy::from_json(text).unwrap();
    let mut text = text.to_string();
    for (i, (at, file)) in policy.named_files().into_iter().enumerate() {
        let local = dir.join(format!("file-{i}"));
        let content = if at.ends_with("ca_file") {
            std::fs::read_to_string(model_router_cli::envoy_provider::SYSTEM_CA_BUNDLE).unwrap()
        } else {
            "placeholder-key\n".to_string()
        };
        std::fs::write(&local, content).unwrap();
        text = text.replace(&format!("\"{file}\""), &format!("\"{}\"", local.display()));
    }
    text
}

#[test]
fn every_example_policy_generates_a_config_envoy_accepts() {
    let dir = scratch("example-policies");
    for path in example_policies() {
        let text = with_local_files(&std::fs::read_to_string(&path).unwrap(), &dir);
        let policy =
            Policy::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", relative(&path)));
        for options in [
            EnvoyOptions {
                wasm_path: wasm().display().to_string(),
                ..EnvoyOptions::default()
            },
            EnvoyOptions {
                wasm_path: wasm().display().to_string(),
                access_log_path: Some(String::new()),
                statsd: Some(("127.0.0.1".into(), 8125)),
                admin_address: "0.0.0.0".into(),
                ..EnvoyOptions::default()
            },
        ] {
            let sds_dir = dir.join("sds").display().to_string();
            for (file, secret) in model_router_cli::envoy_provider::sds_files(&policy, &sds_dir) {
                std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                std::fs::write(file, secret.to_string()).unwrap();
            }
            let options = EnvoyOptions { sds_dir, ..options };
            let config = envoy_config::bootstrap(&policy, &text, &options);
            let name = format!("{}.json", path.file_stem().unwrap().to_string_lossy());
            validate(&write_json(&dir, &name, &config));
        }
    }
}

/// Local code instead of the remote one (fetched by istio-agent, Envoy
/// Gateway or Envoy in a cluster): validation needs the bytes.
fn local_code(mut wasm_config: Value) -> Value {
    wasm_config["config"]["vm_config"]["code"] =
        json!({"local": {"filename": wasm().display().to_string()}});
    wasm_config
}

fn socket(host: &str, port: u16) -> Value {
    json!({"socket_address": {"address": host, "port_value": port}})
}

fn bootstrap(
    filters: Vec<Value>,
    virtual_host: Value,
    clusters: Vec<Value>,
    stats_config: Value,
) -> Value {
    json!({
        "admin": {"address": socket("127.0.0.1", 0)},
        "stats_config": stats_config,
        "static_resources": {
            "listeners": [{
                "name": "gateway",
                "address": socket("127.0.0.1", 0),
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "gateway",
                        "route_config": {"name": "gateway", "virtual_hosts": [virtual_host]},
                        "http_filters": filters,
                    },
                }]}],
            }],
            "clusters": clusters,
        },
    })
}

fn router() -> Value {
    json!({"name": "envoy.filters.http.router", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}})
}

/// Merges `patch` into `base` as Istio's MERGE does for these fields:
/// objects merge key by key; a oneof member (the route's cluster choice)
/// replaces the others, which `cluster` removal stands for here.
fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                if k == "inline_cluster_specifier_plugin" {
                    b.remove("cluster");
                }
                match b.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() && !k.contains('.') => {
                        merge(existing, v)
                    }
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}

#[test]
fn the_istio_patches_make_a_config_envoy_accepts() {
    let filter = yaml_documents("examples/istio/envoyfilter.yaml").remove(0);
    let patches = filter["spec"]["configPatches"].as_array().unwrap();
    let of = |apply_to: &str| -> Vec<&Value> {
        patches
            .iter()
            .filter(|p| p["applyTo"] == apply_to)
            .collect()
    };
    let extension = |name: &str| -> Value {
        let found = of("EXTENSION_CONFIG")
            .into_iter()
            .find(|p| p["patch"]["value"]["name"] == name)
            .unwrap();
        local_code(found["patch"]["value"]["typed_config"].clone())
    };
    // ECDS references resolved to the configs they name (what Envoy gets).
    let resolve = |filter: &Value| -> Value {
        let name = filter["name"].as_str().unwrap();
        assert!(
            filter.get("config_discovery").is_some(),
            "{name} is not an ECDS reference"
        );
        json!({"name": name, "typed_config": extension(name)})
    };
    let inserted = of("HTTP_FILTER");
    assert_eq!(inserted.len(), 1);
    assert_eq!(inserted[0]["patch"]["operation"], "INSERT_BEFORE");
    assert_eq!(
        inserted[0]["match"]["listener"]["filterChain"]["filter"]["subFilter"]["name"],
        "envoy.filters.http.router"
    );

    // What Istio generates for gateway.yaml's VirtualService, reduced to the
    // fields the patches touch, then patched.
    let first_cluster = generate::istio_cluster("openai");
    let mut route = json!({"name": "model-router", "match": {"prefix": "/"}, "route": {"cluster": first_cluster, "timeout": "0s"}});
    merge(&mut route, &of("HTTP_ROUTE")[0]["patch"]["value"]);
    let mut virtual_host = json!({"name": "*:80", "domains": ["*"], "routes": [route]});
    merge(&mut virtual_host, &of("VIRTUAL_HOST")[0]["patch"]["value"]);

    let mut clusters = Vec::new();
    for patch in of("CLUSTER") {
        let service = patch["match"]["cluster"]["service"].as_str().unwrap();
        let port =
            u16::try_from(patch["match"]["cluster"]["portNumber"].as_u64().unwrap()).unwrap();
        let name = format!("outbound|{port}||{service}");
        let mut cluster = json!({
            "name": name, "type": "STRICT_DNS", "connect_timeout": "10s",
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {"address": socket(service, port)}}]}]},
        });
        merge(&mut cluster, &patch["patch"]["value"]);
        let options = &mut cluster["typed_extension_protocol_options"]
            ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
        let upstream = resolve(&options["http_filters"][0]);
        options["http_filters"][0] = upstream;
        clusters.push(cluster);
    }
    let config_map = yaml_documents("examples/istio/bootstrap.yaml").remove(0);
    let custom: Value = serde_json::from_str(
        config_map["data"]["custom_bootstrap.json"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let routing = resolve(&inserted[0]["patch"]["value"]);
    let config = bootstrap(
        vec![routing, router()],
        virtual_host,
        clusters,
        custom["stats_config"].clone(),
    );
    validate(&write_json(
        &scratch("istio"),
        "istio-gateway.json",
        &config,
    ));
}

#[test]
fn the_envoy_gateway_patches_make_a_config_envoy_accepts() {
    let eep = yaml_documents("examples/envoy-gateway/envoy-extension-policy.yaml").remove(0);
    let epp = yaml_documents("examples/envoy-gateway/envoy-patch-policy.yaml").remove(0);
    let proxy = yaml_documents("examples/envoy-gateway/envoy-proxy.yaml").remove(0);
    let wasm_spec = &eep["spec"]["wasm"][0];
    // The routing filter as Envoy Gateway builds it from the
    // EnvoyExtensionPolicy (internal/xds/translator/wasm.go), code local.
    let mut routing = local_code(json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
        "config": {
            "name": wasm_spec["name"],
            "root_id": wasm_spec["rootID"],
            "vm_config": {"vm_id": "model-router", "runtime": "envoy.wasm.runtime.v8"},
            "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                              "value": serde_json::to_string(&wasm_spec["config"]).unwrap()},
            "fail_open": wasm_spec["failOpen"],
        },
    }));
    let patches = epp["spec"]["jsonPatches"].as_array().unwrap();
    let mut route = json!({"name": generate::EG_ROUTE, "match": {"prefix": "/"}, "route": {"cluster": "httproute/llm/model-router/rule/0"}});
    let mut virtual_host = json!({"name": "llm/llm-gateway/http/*", "domains": ["*"]});
    let mut clusters = Vec::new();
    for patch in patches {
        let op = &patch["operation"];
        let path = op["path"].as_str().unwrap();
        let value = op["value"].clone();
        let json_path = op["jsonPath"].as_str().unwrap_or_default();
        match (patch["type"].as_str().unwrap(), op["op"].as_str().unwrap()) {
            (t, "add") if t.ends_with("Listener") => {
                assert!(json_path.contains(generate::EG_WASM_FILTER), "{json_path}");
                routing["config"][path.trim_start_matches('/')] = value;
            }
            (t, "add")
                if t.ends_with("RouteConfiguration") && json_path.contains("virtual_hosts") =>
            {
                virtual_host[path.trim_start_matches('/')] = value;
            }
            (t, "add") if t.ends_with("RouteConfiguration") => {
                assert!(json_path.contains(generate::EG_ROUTE), "{json_path}");
                route[path.trim_start_matches('/')] = value;
            }
            (t, "replace") if t.ends_with("RouteConfiguration") => {
                assert!(json_path.contains(generate::EG_ROUTE), "{json_path}");
                route[path.trim_start_matches('/')] = value;
            }
            (t, "add") if t.ends_with("Cluster") && path.is_empty() => {
                let mut cluster = value;
                if let Some(options) = cluster
                    .pointer_mut("/typed_extension_protocol_options/envoy.extensions.upstreams.http.v3.HttpProtocolOptions")
                {
                    let filter = &mut options["http_filters"][0]["typed_config"];
                    // Wrapped in an ExtensionWithMatcher only with cooldowns off.
                    let wasm = if filter.get("extension_config").is_some() {
                        &mut filter["extension_config"]["typed_config"]
                    } else {
                        filter
                    };
                    assert_eq!(wasm["@type"], "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm");
                    *wasm = local_code(wasm.clone());
                }
                clusters.push(cluster);
            }
            other => panic!("unexpected patch {other:?}"),
        }
    }
    assert_eq!(routing["config"]["allow_on_headers_stop_iteration"], true);
    virtual_host["routes"] = json!([route]);
    let bootstrap_merge: Value =
        serde_norway::from_str(proxy["spec"]["bootstrap"]["value"].as_str().unwrap()).unwrap();
    let filter = json!({"name": generate::EG_WASM_FILTER, "typed_config": routing});
    let config = bootstrap(
        vec![filter, router()],
        virtual_host,
        clusters,
        bootstrap_merge["stats_config"].clone(),
    );
    validate(&write_json(
        &scratch("envoy-gateway"),
        "envoy-gateway.json",
        &config,
    ));
    // The module Envoy Gateway serves and the one the upstream filters fetch
    // are the same URL and digest.
    let http = &wasm_spec["code"]["http"];
    for cluster in epp["spec"]["jsonPatches"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["operation"]["path"] == "")
    {
        let filters = &cluster["operation"]["value"]["typed_extension_protocol_options"]
            ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["http_filters"];
        // The cluster that serves the module has no upstream filter.
        let Some(filter) = filters.get(0).map(|f| &f["typed_config"]) else {
            continue;
        };
        let wasm = filter
            .get("extension_config")
            .map_or(filter, |e| &e["typed_config"]);
        let remote = &wasm["config"]["vm_config"]["code"]["remote"];
        assert_eq!(remote["http_uri"]["uri"], http["url"], "{cluster}");
        assert_eq!(remote["sha256"], http["sha256"]);
    }
}

#[test]
fn the_real_provider_example_generates_tls_sni_host_and_injected_keys() {
    let dir = scratch("real-providers");
    let text = with_local_files(
        &std::fs::read_to_string(repo().join("examples/policies/real-providers.json")).unwrap(),
        &dir,
    );
    let policy = Policy::from_json(&text).unwrap();
    let sds_dir = dir.join("sds").display().to_string();
    for (file, secret) in model_router_cli::envoy_provider::sds_files(&policy, &sds_dir) {
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, secret.to_string()).unwrap();
    }
    let options = EnvoyOptions {
        wasm_path: wasm().display().to_string(),
        sds_dir,
        ..EnvoyOptions::default()
    };
    let config = envoy_config::bootstrap(&policy, &text, &options);
    let clusters = config["static_resources"]["clusters"].as_array().unwrap();
    let cluster = |name: &str| clusters.iter().find(|c| c["name"] == name).unwrap();
    for (name, host, header, prefix) in [
        ("openai", "api.openai.com", "authorization", "Bearer "),
        ("anthropic", "api.anthropic.com", "x-api-key", ""),
        (
            "gemini",
            "generativelanguage.googleapis.com",
            "authorization",
            "Bearer ",
        ),
    ] {
        let c = cluster(name);
        let endpoint = &c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"];
        assert_eq!(endpoint["hostname"], host);
        assert_eq!(endpoint["address"]["socket_address"]["address"], host);
        assert_eq!(endpoint["address"]["socket_address"]["port_value"], 443);
        let tls = &c["transport_socket"]["typed_config"];
        assert_eq!(tls["sni"], host);
        let validation = &tls["common_tls_context"]["validation_context"];
        assert_eq!(
            validation["trusted_ca"]["filename"],
            model_router_cli::envoy_provider::SYSTEM_CA_BUNDLE
        );
        assert_eq!(
            validation["match_typed_subject_alt_names"][0]["matcher"]["exact"],
            host
        );
        let filters = c["typed_extension_protocol_options"]
            ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["http_filters"]
            .as_array()
            .unwrap();
        let names: Vec<&str> = filters
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "model-router-provider-headers",
                "envoy.filters.http.credential_injector",
                "model-router-upstream",
                "envoy.filters.http.upstream_codec"
            ]
        );
        let generic = &filters[1]["typed_config"]["credential"]["typed_config"];
        assert_eq!(generic["header"], header);
        assert_eq!(generic["header_value_prefix"], prefix);
        // The key itself is nowhere in the config: only its SDS file's path.
        assert!(!config.to_string().contains("placeholder-key"));
    }
    let local = cluster("local");
    assert!(local.get("transport_socket").is_none());
    assert_eq!(
        local["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["hostname"],
        "vllm.internal:8000"
    );
    assert_eq!(
        config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
            ["typed_config"]["route_config"]["virtual_hosts"][0]["routes"][0]["route"]
            ["auto_host_rewrite"],
        true
    );
    validate(&write_json(&dir, "real-providers.json", &config));
}
