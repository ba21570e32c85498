//! The Istio and Envoy Gateway manifests: every document parses, references
//! resolve (names, namespaces, selectors, ports, files), and every embedded
//! policy passes the schema and the compiler and is examples/policy.json
//! (with Istio's cluster names where Istio names the clusters).

use std::collections::BTreeSet;

use model_router_cli::envoy_config;
use model_router_core::headers::UPSTREAM_ROOT_ID;
use model_router_core::policy::Policy;
use serde_json::Value;

use crate::generate::{self, MOCKS, NAMESPACE, PROVIDER_PORT};
use crate::schema::{schema_errors, validator};
use crate::{read, repo, yaml_documents};

const CLUSTER_SCOPED: [&str; 2] = ["Namespace", "GatewayClass"];

fn manifests(dir: &str) -> Vec<(String, Value)> {
    let mut files: Vec<String> = std::fs::read_dir(repo().join(dir))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let path = format!("{dir}/{file}");
        for doc in yaml_documents(&path) {
            out.push((path.clone(), doc));
        }
    }
    out
}

fn find<'a>(docs: &'a [(String, Value)], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .map(|(_, d)| d)
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn check_documents(dir: &str, kinds: &[(&str, &str)]) -> Vec<(String, Value)> {
    let docs = manifests(dir);
    assert!(!docs.is_empty());
    for (path, doc) in &docs {
        let kind = doc["kind"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}: a document without kind"));
        let api = doc["apiVersion"].as_str().unwrap_or_default();
        assert!(
            kinds.contains(&(api, kind)),
            "{path}: unexpected {api} {kind}"
        );
        assert!(
            doc["metadata"]["name"].is_string(),
            "{path}: {kind} without a name"
        );
        if !CLUSTER_SCOPED.contains(&kind) {
            assert_eq!(doc["metadata"]["namespace"], NAMESPACE, "{path}: {kind}");
        }
    }
    // kubectl apply -k applies these files; each exists.
    let kustomization = &yaml_documents(&format!("{dir}/kustomization.yaml"))[0];
    for resource in kustomization["resources"].as_array().unwrap() {
        let file = resource.as_str().unwrap();
        assert!(
            repo().join(dir).join(file).is_file(),
            "{dir}/kustomization.yaml lists {file}"
        );
    }
    docs
}

/// A policy embedded in a manifest: passes the schema and the compiler, and
/// equals examples/policy.json once its clusters are mapped back.
fn check_policy(where_: &str, policy: &Value, rename: impl Fn(&str) -> String) -> Policy {
    let errors = schema_errors(&validator(), policy);
    assert!(errors.is_empty(), "{where_}: {errors:#?}");
    let compiled = Policy::from_json(&serde_json::to_string(policy).unwrap())
        .unwrap_or_else(|e| panic!("{where_}: {e}"));
    let mut example: Value = serde_json::from_str(&read(generate::POLICY)).unwrap();
    for model in example["models"].as_object_mut().unwrap().values_mut() {
        let cluster = rename(model["cluster"].as_str().unwrap());
        model["cluster"] = Value::String(cluster);
    }
    assert_eq!(policy, &example, "{where_}: not the example policy");
    compiled
}

/// `check_policy` for the per-attempt filter's policy: the upstream view
/// (`envoy_config::upstream_policy_json`) of `example`, the example policy's
/// text with the clusters as the manifest names them (key order kept: the
/// view's default chain lists the models in the order written).
fn check_upstream_policy(where_: &str, policy: &Value, example: &str) {
    let errors = schema_errors(&validator(), policy);
    assert!(errors.is_empty(), "{where_}: {errors:#?}");
    Policy::from_json(&serde_json::to_string(policy).unwrap())
        .unwrap_or_else(|e| panic!("{where_}: {e}"));
    let compiled = Policy::from_json(example).unwrap();
    let view: Value =
        serde_json::from_str(&envoy_config::upstream_policy_json(&compiled, example)).unwrap();
    assert_eq!(
        policy, &view,
        "{where_}: not the example policy's upstream view"
    );
    for member in ["tasks", "rules", "classifiers"] {
        assert!(policy.get(member).is_none(), "{where_}: {member}");
    }
}

fn string_value_policy(wasm: &Value) -> Value {
    assert_eq!(
        wasm["config"]["configuration"]["@type"],
        "type.googleapis.com/google.protobuf.StringValue"
    );
    serde_json::from_str(wasm["config"]["configuration"]["value"].as_str().unwrap()).unwrap()
}

#[test]
fn the_istio_manifests_hold_together() {
    let docs = check_documents(
        "examples/istio",
        &[
            ("v1", "Namespace"),
            ("v1", "Service"),
            ("v1", "ConfigMap"),
            ("apps/v1", "Deployment"),
            ("networking.istio.io/v1", "Gateway"),
            ("networking.istio.io/v1", "VirtualService"),
            ("networking.istio.io/v1alpha3", "EnvoyFilter"),
            ("extensions.istio.io/v1alpha1", "WasmPlugin"),
        ],
    );
    let kustomization = &yaml_documents("examples/istio/kustomization.yaml")[0];
    assert!(
        !kustomization["resources"]
            .as_array()
            .unwrap()
            .contains(&Value::from("wasmplugin.yaml")),
        "the WasmPlugin cannot work today (see its header)"
    );

    // The gateway: one selector label across Deployment, Gateway, EnvoyFilter, WasmPlugin.
    let deployment = find(&docs, "Deployment", "llm-gateway");
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    assert_eq!(labels["istio"], "llm-gateway");
    assert_eq!(
        find(&docs, "Gateway", "llm-gateway")["spec"]["selector"]["istio"],
        "llm-gateway"
    );
    let filter = find(&docs, "EnvoyFilter", "model-router");
    assert_eq!(
        filter["spec"]["workloadSelector"]["labels"]["istio"],
        "llm-gateway"
    );
    let plugin = find(&docs, "WasmPlugin", "model-router");
    assert_eq!(
        plugin["spec"]["selector"]["matchLabels"]["istio"],
        "llm-gateway"
    );

    // Stats: the bootstrap override names the ConfigMap, whose stats config
    // is the generator's; the stats matcher keeps the filter's metrics.
    let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
    let config_map = find(
        &docs,
        "ConfigMap",
        annotations["sidecar.istio.io/bootstrapOverride"]
            .as_str()
            .unwrap(),
    );
    let custom: Value = serde_json::from_str(
        config_map["data"]["custom_bootstrap.json"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(custom["stats_config"], envoy_config::stats_config());
    let proxy_config: Value =
        serde_norway::from_str(annotations["proxy.istio.io/config"].as_str().unwrap()).unwrap();
    assert!(proxy_config["proxyStatsMatcher"]["inclusionPrefixes"]
        .as_array()
        .unwrap()
        .iter()
        .any(
            |p| format!("wasmcustom.{}", model_router_core::metrics::REQUESTS)
                .starts_with(p.as_str().unwrap())
        ));

    // The EnvoyFilter's two ECDS filters carry the example policy with Istio cluster names.
    let patches = filter["spec"]["configPatches"].as_array().unwrap();
    let extension = |name: &str| -> &Value {
        &patches
            .iter()
            .find(|p| p["applyTo"] == "EXTENSION_CONFIG" && p["patch"]["value"]["name"] == name)
            .unwrap_or_else(|| panic!("no EXTENSION_CONFIG {name}"))["patch"]["value"]
            ["typed_config"]
    };
    let routing = extension("model-router");
    let upstream = extension("model-router-upstream");
    assert_eq!(routing["config"]["root_id"], "model_router");
    assert_eq!(upstream["config"]["root_id"], UPSTREAM_ROOT_ID);
    for wasm in [routing, upstream] {
        assert_eq!(wasm["config"]["allow_on_headers_stop_iteration"], true);
        assert_eq!(
            wasm["config"]["vm_config"]["code"]["remote"]["http_uri"]["uri"],
            generate::WASM_OCI
        );
    }
    let policy = check_policy(
        "EnvoyFilter model-router",
        &string_value_policy(routing),
        generate::istio_cluster,
    );
    check_upstream_policy(
        "EnvoyFilter model-router-upstream",
        &string_value_policy(upstream),
        &generate::istio_policy_json(&read(generate::POLICY)),
    );
    // The policy's JSON text keeps the example's key order (tasks are tried in order).
    let text = routing["config"]["configuration"]["value"]
        .as_str()
        .unwrap();
    let as_sent = Policy::from_json(text).unwrap();
    let example = Policy::from_json(&read(generate::POLICY)).unwrap();
    let names = |p: &Policy| -> (Vec<String>, Vec<String>) {
        (
            p.tasks.iter().map(|t| t.name.clone()).collect(),
            p.models.iter().map(|m| m.name.clone()).collect(),
        )
    };
    assert_eq!(names(&as_sent), names(&example));

    // Every cluster the policy names gets the upstream filter, and is a
    // provider Service on the port the cluster name says.
    let clusters: BTreeSet<String> = envoy_config::clusters(&policy).into_iter().collect();
    let patched: BTreeSet<String> = patches
        .iter()
        .filter(|p| p["applyTo"] == "CLUSTER")
        .map(|p| {
            assert_eq!(p["patch"]["operation"], "MERGE");
            let m = &p["match"]["cluster"];
            format!(
                "outbound|{}||{}",
                m["portNumber"],
                m["service"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(clusters, patched);
    for (name, _) in MOCKS {
        let service = find(&docs, "Service", &generate::mock_service(name));
        assert_eq!(service["spec"]["ports"][0]["port"], PROVIDER_PORT);
        assert!(clusters.contains(&generate::istio_cluster(name)));
    }

    // The route patch targets the VirtualService's route, whose own retries are off.
    let virtual_service = find(&docs, "VirtualService", "model-router");
    let http = &virtual_service["spec"]["http"][0];
    let route_patch = patches
        .iter()
        .find(|p| p["applyTo"] == "HTTP_ROUTE")
        .unwrap();
    assert_eq!(
        route_patch["match"]["routeConfiguration"]["vhost"]["route"]["name"],
        http["name"]
    );
    assert_eq!(http["retries"]["attempts"], 0);
    assert_eq!(virtual_service["spec"]["gateways"][0], "llm-gateway");
    let destination = format!(
        "outbound|{}||{}",
        http["route"][0]["destination"]["port"]["number"],
        http["route"][0]["destination"]["host"].as_str().unwrap()
    );
    assert!(clusters.contains(&destination), "{destination}");
    let value = &route_patch["patch"]["value"]["route"];
    assert_eq!(value["retry_policy"]["refresh_cluster_on_retry"], true);
    let specifier = serde_json::to_string(&value["inline_cluster_specifier_plugin"]).unwrap();
    for cluster in &clusters {
        assert!(
            specifier.contains(&format!(
                "\"cluster\":{}",
                serde_json::to_string(cluster).unwrap()
            )),
            "{cluster}"
        );
    }

    // The WasmPlugin (reference only): the same policy and module.
    let spec = &plugin["spec"];
    assert_eq!(spec["url"], generate::WASM_OCI);
    assert_eq!(spec["pluginName"], "model_router");
    assert!(["FAIL_CLOSE", "FAIL_OPEN"].contains(&spec["failStrategy"].as_str().unwrap()));
    assert!(
        ["UNSPECIFIED_PHASE", "AUTHN", "AUTHZ", "STATS"].contains(&spec["phase"].as_str().unwrap())
    );
    check_policy("WasmPlugin model-router", &spec["pluginConfig"], |c| {
        generate::istio_cluster(c)
    });
}

#[test]
fn the_envoy_gateway_manifests_hold_together() {
    let docs = check_documents(
        "examples/envoy-gateway",
        &[
            ("v1", "Namespace"),
            ("v1", "Service"),
            ("apps/v1", "Deployment"),
            ("gateway.networking.k8s.io/v1", "GatewayClass"),
            ("gateway.networking.k8s.io/v1", "Gateway"),
            ("gateway.networking.k8s.io/v1", "HTTPRoute"),
            ("gateway.envoyproxy.io/v1alpha1", "EnvoyProxy"),
            ("gateway.envoyproxy.io/v1alpha1", "EnvoyExtensionPolicy"),
            ("gateway.envoyproxy.io/v1alpha1", "EnvoyPatchPolicy"),
        ],
    );
    let gateway = find(&docs, "Gateway", "llm-gateway");
    let class = find(
        &docs,
        "GatewayClass",
        gateway["spec"]["gatewayClassName"].as_str().unwrap(),
    );
    assert_eq!(
        class["spec"]["controllerName"],
        "gateway.envoyproxy.io/gatewayclass-controller"
    );
    let parameters = &gateway["spec"]["infrastructure"]["parametersRef"];
    assert_eq!(parameters["kind"], "EnvoyProxy");
    let proxy = find(&docs, "EnvoyProxy", parameters["name"].as_str().unwrap());
    let merged: Value =
        serde_norway::from_str(proxy["spec"]["bootstrap"]["value"].as_str().unwrap()).unwrap();
    assert_eq!(merged["stats_config"], envoy_config::stats_config());
    let listener = &gateway["spec"]["listeners"][0];
    assert_eq!(
        generate::EG_LISTENER,
        format!(
            "{NAMESPACE}/{}/{}",
            gateway["metadata"]["name"].as_str().unwrap(),
            listener["name"].as_str().unwrap()
        )
    );

    let route = find(&docs, "HTTPRoute", "model-router");
    assert_eq!(route["spec"]["parentRefs"][0]["name"], "llm-gateway");
    assert!(generate::EG_ROUTE.starts_with(&format!("httproute/{NAMESPACE}/model-router/rule/0/")));
    let backend = &route["spec"]["rules"][0]["backendRefs"][0];
    let service = find(&docs, "Service", backend["name"].as_str().unwrap());
    assert_eq!(service["spec"]["ports"][0]["port"], backend["port"]);

    let eep = find(&docs, "EnvoyExtensionPolicy", "model-router");
    assert_eq!(eep["spec"]["targetRefs"][0]["kind"], "HTTPRoute");
    assert_eq!(eep["spec"]["targetRefs"][0]["name"], "model-router");
    let wasm = &eep["spec"]["wasm"][0];
    assert_eq!(wasm["rootID"], "model_router");
    assert_eq!(wasm["failOpen"], false);
    assert!(generate::EG_WASM_FILTER.ends_with(&format!("/{NAMESPACE}/model-router/wasm/0")));
    let policy = check_policy("EnvoyExtensionPolicy model-router", &wasm["config"], |c| {
        c.to_string()
    });

    // The patch policy targets that Gateway and adds each cluster the policy
    // names, with the upstream filter carrying the policy's upstream view.
    let epp = find(&docs, "EnvoyPatchPolicy", "model-router");
    assert_eq!(epp["spec"]["targetRef"]["name"], "llm-gateway");
    assert_eq!(epp["spec"]["type"], "JSONPatch");
    let added: Vec<&Value> = epp["spec"]["jsonPatches"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] == "type.googleapis.com/envoy.config.cluster.v3.Cluster")
        .collect();
    let mut names: BTreeSet<String> = added
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert!(names.remove("model-router-wasm"));
    assert_eq!(names, envoy_config::clusters(&policy).into_iter().collect());
    for patch in added.iter().filter(|p| p["name"] != "model-router-wasm") {
        let cluster = &patch["operation"]["value"];
        let typed = &cluster["typed_extension_protocol_options"]
            ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["http_filters"][0]
            ["typed_config"];
        // The filter itself, or its ExtensionWithMatcher wrapper (cooldowns off).
        let filter = typed
            .get("extension_config")
            .unwrap_or(&serde_json::json!({"typed_config": typed}))
            .clone();
        assert_eq!(
            filter["typed_config"]["config"]["root_id"],
            UPSTREAM_ROOT_ID
        );
        check_upstream_policy(
            &format!("cluster {}", patch["name"]),
            &string_value_policy(&filter["typed_config"]),
            &read(generate::POLICY),
        );
        let host = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
            ["address"]["socket_address"]["address"]
            .as_str()
            .unwrap();
        let service = host.split('.').next().unwrap();
        find(&docs, "Service", service);
    }
}

#[test]
fn the_provider_manifests_match_the_compose_mocks() {
    for dir in ["examples/istio", "examples/envoy-gateway"] {
        let docs = yaml_documents(&format!("{dir}/providers.yaml"));
        for (name, flags) in MOCKS {
            let service = generate::mock_service(name);
            let deployment = docs
                .iter()
                .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == service.as_str())
                .unwrap();
            let container = &deployment["spec"]["template"]["spec"]["containers"][0];
            let args: Vec<&str> = container["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            assert_eq!(
                args[..5],
                [
                    "--listen",
                    &format!("0.0.0.0:{PROVIDER_PORT}"),
                    "--name",
                    name,
                    "--no-record"
                ]
            );
            assert_eq!(&args[5..], flags);
            assert_eq!(
                deployment["spec"]["selector"]["matchLabels"]["app"],
                service.as_str()
            );
        }
    }
}

#[test]
fn the_real_provider_manifests_hold_together() {
    let istio = check_documents(
        "examples/istio/real-providers",
        &[
            ("networking.istio.io/v1", "ServiceEntry"),
            ("networking.istio.io/v1", "DestinationRule"),
            ("networking.istio.io/v1alpha3", "EnvoyFilter"),
            ("v1", "Secret"),
            ("v1", "ConfigMap"),
        ],
    );
    let sds = find(&istio, "ConfigMap", "model-router-sds");
    let keys = find(&istio, "Secret", "provider-keys");
    for host in ["api.openai.com", "api.anthropic.com"] {
        let rule = istio
            .iter()
            .find(|(_, d)| d["kind"] == "DestinationRule" && d["spec"]["host"] == host)
            .map(|(_, d)| d)
            .unwrap_or_else(|| panic!("no DestinationRule for {host}"));
        let tls = &rule["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"];
        assert_eq!(
            (tls["mode"].as_str(), tls["sni"].as_str()),
            (Some("SIMPLE"), Some(host))
        );
    }
    let filter = find(&istio, "EnvoyFilter", "model-router-provider-keys");
    for patch in filter["spec"]["configPatches"].as_array().unwrap() {
        let filters = &patch["patch"]["value"]["typed_extension_protocol_options"]
            ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["http_filters"];
        let source = &filters[1]["typed_config"]["credential"]["typed_config"]["credential"]
            ["sds_config"]["path_config_source"]["path"];
        let file = source.as_str().unwrap().rsplit('/').next().unwrap();
        let secret: Value = serde_json::from_str(sds["data"][file].as_str().unwrap()).unwrap();
        let key_file = secret["resources"][0]["generic_secret"]["secret"]["filename"]
            .as_str()
            .unwrap();
        let key = key_file.rsplit('/').next().unwrap();
        assert!(
            keys["stringData"][key].is_string(),
            "{file} names {key_file}, not in the Secret"
        );
    }
    let eg = check_documents(
        "examples/envoy-gateway/real-providers",
        &[
            ("gateway.envoyproxy.io/v1alpha1", "Backend"),
            ("gateway.networking.k8s.io/v1alpha3", "BackendTLSPolicy"),
            ("gateway.envoyproxy.io/v1alpha1", "HTTPRouteFilter"),
            ("gateway.networking.k8s.io/v1", "HTTPRoute"),
            ("v1", "Secret"),
        ],
    );
    for (_, doc) in eg.iter().filter(|(_, d)| d["kind"] == "HTTPRouteFilter") {
        let secret = doc["spec"]["credentialInjection"]["credential"]["valueRef"]["name"]
            .as_str()
            .unwrap();
        find(&eg, "Secret", secret);
    }
    for (_, doc) in eg.iter().filter(|(_, d)| d["kind"] == "BackendTLSPolicy") {
        let backend = doc["spec"]["targetRefs"][0]["name"].as_str().unwrap();
        let host =
            find(&eg, "Backend", backend)["spec"]["endpoints"][0]["fqdn"]["hostname"].clone();
        assert_eq!(doc["spec"]["validation"]["hostname"], host);
    }
}
