//! docker-compose.yaml, read by the Compose reference implementation (the
//! docker-compose v2 CLI scripts/setup installs; no Docker engine needed to
//! parse and validate), and what it references: files, ports, service names,
//! the Envoy config (the local one modulo addresses), Prometheus, Grafana and
//! the dashboard's queries against the metrics the filter emits.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use model_router_core::metrics;
use serde_json::Value;

use crate::generate::{self, ADMIN_PORT, COMPOSE_WASM, LISTEN_PORT, MOCKS, PROVIDER_PORT};
use crate::{read, repo, venv_tool, yaml_documents};

fn compose_bin() -> PathBuf {
    venv_tool("COMPOSE_BIN", "compose/docker-compose", "the Compose CLI")
}

/// The compose file as the Compose CLI normalises it (every profile on).
fn compose_config() -> Value {
    let out = Command::new(compose_bin())
        .current_dir(repo())
        .env_remove("DOCKER_HOST")
        .env("COMPOSE_PROFILES", "workload")
        .args(["-f", "docker-compose.yaml", "config", "--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "docker compose config rejected docker-compose.yaml:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn service<'a>(config: &'a Value, name: &str) -> &'a Value {
    config["services"]
        .get(name)
        .unwrap_or_else(|| panic!("no service {name} in docker-compose.yaml"))
}

/// Bind mounts of a service: container path → host path (relative to the repo).
fn binds(config: &Value, name: &str) -> BTreeMap<String, String> {
    let root = repo().canonicalize().unwrap();
    service(config, name)["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["type"] == "bind")
        .map(|v| {
            let source = PathBuf::from(v["source"].as_str().unwrap());
            let relative = source.strip_prefix(&root).unwrap_or_else(|_| {
                panic!(
                    "{name} mounts {} from outside the repository",
                    source.display()
                )
            });
            (
                v["target"].as_str().unwrap().to_string(),
                relative.display().to_string(),
            )
        })
        .collect()
}

fn published(config: &Value, name: &str) -> BTreeSet<u16> {
    service(config, name)["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert_eq!(
                p["published"].as_str().unwrap(),
                p["target"].to_string(),
                "{name}: published and container ports differ"
            );
            u16::try_from(p["target"].as_u64().unwrap()).unwrap()
        })
        .collect()
}

fn command(config: &Value, name: &str) -> Vec<String> {
    service(config, name)["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn socket(value: &Value) -> (String, u16) {
    let s = &value["socket_address"];
    (
        s["address"].as_str().unwrap().to_string(),
        u16::try_from(s["port_value"].as_u64().unwrap()).unwrap(),
    )
}

#[test]
fn compose_file_parses_and_its_references_hold() {
    let config = compose_config();
    let names: BTreeSet<&str> = config["services"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let expected: BTreeSet<&str> = [
        "envoy",
        "mock-local",
        "mock-openai",
        "mock-anthropic",
        "prometheus",
        "grafana",
        "workload",
    ]
    .into_iter()
    .collect();
    assert_eq!(names, expected);

    // Every bind-mounted file exists (the .wasm once built; scripts/test builds it first).
    for name in &names {
        if service(&config, name).get("volumes").is_none() {
            continue;
        }
        for source in binds(&config, name).values() {
            assert!(
                repo().join(source).exists(),
                "{name} mounts {source}, which does not exist"
            );
        }
    }

    // Envoy: the official image of the version scripts/setup installs, with
    // the generated config and the built filter where that config expects them.
    let setup = read("scripts/setup");
    let version = setup
        .lines()
        .find_map(|l| l.strip_prefix("ENVOY_VERSION="))
        .unwrap();
    let envoy = service(&config, "envoy");
    assert_eq!(envoy["image"], format!("envoyproxy/envoy:v{version}"));
    let envoy_binds = binds(&config, "envoy");
    let config_path = &envoy_binds["/etc/envoy/envoy.yaml"];
    assert_eq!(config_path, "envoy/envoy-compose.yaml");
    assert_eq!(
        envoy_binds[COMPOSE_WASM],
        "target/wasm32-wasip1/release/model_router.wasm"
    );
    assert!(
        read("scripts/test").contains("scripts/build-wasm")
            && read("scripts/build-wasm").contains("cargo build --release --target wasm32-wasip1"),
        "scripts/test no longer builds the .wasm the compose file mounts"
    );
    let bootstrap = yaml_documents(config_path).remove(0);
    let args = command(&config, "envoy");
    assert_eq!(args[..3], ["envoy", "-c", "/etc/envoy/envoy.yaml"]);

    // Ports: what Envoy listens on is what compose publishes and what the
    // other services use.
    let listener = socket(&bootstrap["static_resources"]["listeners"][0]["address"]);
    let admin = socket(&bootstrap["admin"]["address"]);
    assert_eq!(listener, ("0.0.0.0".to_string(), LISTEN_PORT));
    assert_eq!(
        admin,
        ("0.0.0.0".to_string(), ADMIN_PORT),
        "Prometheus scrapes the admin port from another container"
    );
    assert_eq!(
        published(&config, "envoy"),
        [LISTEN_PORT, ADMIN_PORT].into_iter().collect()
    );

    // Each provider cluster points at a mock service that listens on that
    // port, started with the flags scripts/demo uses.
    let clusters = bootstrap["static_resources"]["clusters"]
        .as_array()
        .unwrap();
    assert_eq!(clusters.len(), MOCKS.len());
    for (cluster, flags) in MOCKS {
        let c = clusters.iter().find(|c| c["name"] == cluster).unwrap();
        let (host, port) =
            socket(&c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]);
        assert_eq!(
            (host.as_str(), port),
            (generate::mock_service(cluster).as_str(), PROVIDER_PORT)
        );
        assert_eq!(c["type"], "STRICT_DNS");
        let mut want: Vec<String> = [
            "mock-provider",
            "--listen",
            &format!("0.0.0.0:{PROVIDER_PORT}"),
            "--name",
            cluster,
            "--no-record",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        want.extend(flags.iter().map(|f| f.to_string()));
        assert_eq!(command(&config, &host), want, "{host}");
        let build = &service(&config, &host)["build"];
        assert!(repo().join(build["dockerfile"].as_str().unwrap()).is_file());
        assert_eq!(
            build["context"].as_str().map(PathBuf::from),
            Some(repo().canonicalize().unwrap())
        );
    }
    let dockerfile = read("docker/mock-provider.Dockerfile");
    for tool in ["mock-provider", "demo-workload", "model-router"] {
        assert!(
            dockerfile.contains(&format!("target/release/{tool}")),
            "the image lacks {tool}"
        );
    }
    assert!(dockerfile.contains("COPY examples/ /examples/"));

    // Prometheus scrapes Envoy's admin port.
    let prometheus = &yaml_documents("docker/prometheus.yml")[0];
    assert_eq!(
        binds(&config, "prometheus")["/etc/prometheus/prometheus.yml"],
        "docker/prometheus.yml"
    );
    let job = &prometheus["scrape_configs"][0];
    assert_eq!(job["metrics_path"], "/stats/prometheus");
    assert_eq!(
        job["static_configs"][0]["targets"][0],
        format!("envoy:{ADMIN_PORT}")
    );
    let prometheus_port = published(&config, "prometheus");

    // Grafana: provisioning and dashboards mounted where it reads them; the
    // datasource is that Prometheus, with the uid the dashboard uses.
    let grafana = binds(&config, "grafana");
    assert_eq!(
        grafana["/etc/grafana/provisioning"],
        "docker/grafana/provisioning"
    );
    let dashboards_dir = grafana
        .iter()
        .find(|(_, source)| source.as_str() == "docker/grafana/dashboards")
        .map(|(target, _)| target.clone())
        .unwrap();
    let providers = &yaml_documents("docker/grafana/provisioning/dashboards/model-router.yaml")[0];
    assert_eq!(
        providers["providers"][0]["options"]["path"],
        dashboards_dir.as_str()
    );
    let datasource = &yaml_documents("docker/grafana/provisioning/datasources/prometheus.yaml")[0]
        ["datasources"][0];
    assert_eq!(datasource["type"], "prometheus");
    let port = prometheus_port.iter().next().unwrap();
    assert_eq!(datasource["url"], format!("http://prometheus:{port}"));
    let dashboard: Value =
        serde_json::from_str(&read("docker/grafana/dashboards/model-router.json")).unwrap();
    for panel in dashboard["panels"].as_array().unwrap() {
        assert_eq!(
            panel["datasource"]["uid"], datasource["uid"],
            "{}",
            panel["title"]
        );
    }

    // The workload shares Envoy's network namespace (it only talks to loopback).
    let workload = service(&config, "workload");
    assert_eq!(workload["network_mode"], "service:envoy");
    let args = command(&config, "workload");
    assert_eq!(args[0], "demo-workload");
    assert!(args.contains(&format!("http://127.0.0.1:{LISTEN_PORT}")));
    let file = args.iter().find(|a| a.starts_with("/examples/")).unwrap();
    assert!(
        repo().join(file.trim_start_matches('/')).is_file(),
        "{file}"
    );
}

/// Replaces what legitimately differs between the local and the compose
/// config (addresses, cluster discovery, the .wasm path) by placeholders.
fn without_addresses(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = match k.as_str() {
                        "socket_address" => Value::String("ADDRESS".into()),
                        "filename" => Value::String("WASM".into()),
                        "type" if v == "STATIC" || v == "STRICT_DNS" => {
                            Value::String("DISCOVERY".into())
                        }
                        _ => without_addresses(v),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_addresses).collect()),
        other => other.clone(),
    }
}

#[test]
fn the_compose_envoy_config_is_the_local_one_modulo_addresses() {
    let local = yaml_documents("envoy/envoy.yaml").remove(0);
    let compose = yaml_documents("envoy/envoy-compose.yaml").remove(0);
    assert_eq!(without_addresses(&local), without_addresses(&compose));
    // and that comparison does see the policy and the routing:
    assert!(serde_json::to_string(&local)
        .unwrap()
        .contains("inline_cluster_specifier_plugin"));
}

/// Every metric name the filter can put in a Prometheus scrape, read from
/// the `pub const NAME: &str = "model_router_..."` constants of
/// src/metrics.rs (Envoy drops the `wasmcustom.` prefix; a `*_HISTOGRAM`
/// constant is rendered as `_bucket`, `_sum` and `_count` series).
pub fn emitted_metric_names() -> BTreeSet<String> {
    // The metric names: constants of the core's metrics and feedback modules.
    let source = read("crates/core/src/metrics.rs") + &read("crates/core/src/feedback.rs");
    let mut names = BTreeSet::new();
    for line in source.lines() {
        let Some(rest) = line.trim().strip_prefix("pub const ") else {
            continue;
        };
        let Some((constant, value)) = rest.split_once(": &str = \"") else {
            continue;
        };
        let Some(name) = value.strip_suffix("\";") else {
            continue;
        };
        if !name.starts_with("model_router_") {
            continue;
        }
        if constant.ends_with("_HISTOGRAM") {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{name}{suffix}"));
            }
        } else {
            names.insert(name.to_string());
        }
    }
    // The parse finds the constants the filter uses.
    for constant in [
        metrics::REQUESTS,
        metrics::COST,
        metrics::BASELINE_COST,
        metrics::FALLBACKS,
    ] {
        assert!(
            names.contains(constant),
            "{constant} not found in src/metrics.rs"
        );
    }
    assert!(names.contains(&format!("{}_bucket", metrics::PROMPT_TOKENS_HISTOGRAM)));
    names
}

/// `model_router_*` identifiers in a PromQL expression.
pub fn metric_names_in(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("model_router_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

/// Label names in `by (...)` / `without (...)` groupings and `{{label}}` legends.
fn label_names_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for keyword in ["by (", "without ("] {
        let mut rest = text;
        while let Some(at) = rest.find(keyword) {
            let tail = &rest[at + keyword.len()..];
            let end = tail.find(')').unwrap();
            out.extend(tail[..end].split(',').map(|l| l.trim().to_string()));
            rest = &tail[end..];
        }
    }
    let mut rest = text;
    while let Some(at) = rest.find("{{") {
        let tail = &rest[at + 2..];
        let end = tail.find("}}").unwrap();
        out.push(tail[..end].trim().to_string());
        rest = &tail[end..];
    }
    out
}

#[test]
fn the_dashboard_queries_metrics_and_labels_the_filter_emits() {
    let known = emitted_metric_names();
    let labels: BTreeSet<&str> = metrics::LABELS.iter().copied().chain(["le"]).collect();
    let dashboard: Value =
        serde_json::from_str(&read("docker/grafana/dashboards/model-router.json")).unwrap();
    let mut used = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        let title = panel["title"].as_str().unwrap();
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title}: no query");
        for target in targets {
            let expr = target["expr"].as_str().unwrap();
            let names = metric_names_in(expr);
            assert!(
                !names.is_empty(),
                "{title}: {expr} reads no model_router metric"
            );
            for name in names {
                assert!(
                    known.contains(&name),
                    "{title}: {name} is not a metric the filter emits"
                );
                used.insert(name);
            }
            let legend = target["legendFormat"].as_str().unwrap_or_default();
            for label in label_names_in(expr)
                .into_iter()
                .chain(label_names_in(legend))
            {
                assert!(
                    labels.contains(label.as_str()),
                    "{title}: label {label} is not one the filter sets"
                );
            }
        }
    }
    // What the dashboard is for: cost and savings, requests by rule and
    // model, fallbacks, the prompt token distribution.
    for needed in [
        metrics::COST.to_string(),
        metrics::BASELINE_COST.to_string(),
        metrics::REQUESTS.to_string(),
        metrics::FALLBACKS.to_string(),
        format!("{}_bucket", metrics::PROMPT_TOKENS_HISTOGRAM),
        // Quality beside cost.
        "model_router_feedback_total".to_string(),
        "model_router_feedback_score_milli_total".to_string(),
    ] {
        assert!(
            used.contains(&needed),
            "the dashboard does not show {needed}"
        );
    }
    let savings = format!("sum({}) - sum({})", metrics::BASELINE_COST, metrics::COST);
    assert!(
        dashboard["panels"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["targets"][0]["expr"].as_str().unwrap().contains(&savings)),
        "no savings-over-time panel"
    );
}

#[test]
fn the_metric_name_parser_finds_names_and_labels() {
    assert_eq!(
        metric_names_in(
            "sum by (rule, model) (rate(model_router_requests_total[5m])) / model_router_x_bucket"
        ),
        ["model_router_requests_total", "model_router_x_bucket"]
    );
    assert_eq!(label_names_in("sum by (from, to) (x)"), ["from", "to"]);
    assert_eq!(label_names_in("{{rule}} → {{ model }}"), ["rule", "model"]);
}
