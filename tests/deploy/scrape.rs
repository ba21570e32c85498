//! The shipped statsd config (envoy/statsd.yaml), run for real with only its
//! ports changed: mock providers, Envoy with the built filter, the example
//! requests, then a Prometheus scrape and the statsd datagrams. The metric
//! names the dashboard may use (`compose::emitted_metric_names`) are exactly
//! the `model_router_*` names Envoy exposes, with real labels.

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::compose::emitted_metric_names;
use crate::envoy::{envoy_bin, wasm};
use crate::generate::{LOCAL_UPSTREAMS, MOCKS};
use crate::{repo, scratch, yaml_documents};

/// A child process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mock_bin() -> PathBuf {
    std::env::var_os("MOCK_PROVIDER_BIN").map_or_else(
        || {
            std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| repo().join("target"), PathBuf::from)
                .join("debug/mock-provider")
        },
        PathBuf::from,
    )
}

/// Starts a mock provider on a free port; returns it and the port.
fn start_mock(name: &str, flags: &[&str]) -> (Process, u16) {
    let bin = mock_bin();
    assert!(
        bin.is_file(),
        "mock-provider is not built at {}: cargo build --workspace --bins",
        bin.display()
    );
    let mut child = Command::new(bin)
        .args(["--listen", "127.0.0.1:0", "--name", name, "--no-record"])
        .args(flags)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().rsplit(':').next().and_then(|p| p.parse().ok());
    let process = Process(child);
    (
        process,
        port.unwrap_or_else(|| panic!("mock-provider said {line:?}")),
    )
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .proxy(None)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn get(url: &str) -> String {
    agent()
        .get(url)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap()
}

/// Sets every socket address of `config` found at `(address, port)` to `port_to`.
fn move_port(config: &mut Value, port_from: u16, port_to: u16) {
    match config {
        Value::Object(map) => {
            if map.get("port_value").and_then(Value::as_u64) == Some(u64::from(port_from)) {
                map.insert("port_value".into(), port_to.into());
            }
            map.values_mut()
                .for_each(|v| move_port(v, port_from, port_to));
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| move_port(v, port_from, port_to)),
        _ => {}
    }
}

#[test]
fn a_real_scrape_has_exactly_the_metrics_the_dashboard_may_use() {
    let dir = scratch("scrape");
    let statsd = UdpSocket::bind("127.0.0.1:0").unwrap();
    statsd
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let statsd_port = statsd.local_addr().unwrap().port();

    let mut config = yaml_documents("envoy/statsd.yaml").remove(0);
    let mut mocks = Vec::new();
    for (cluster, flags) in MOCKS {
        let (process, port) = start_mock(cluster, flags);
        let (_, shipped) = LOCAL_UPSTREAMS.iter().find(|(c, _)| *c == cluster).unwrap();
        move_port(&mut config, *shipped, port);
        mocks.push(process);
    }
    move_port(&mut config, crate::generate::LISTEN_PORT, 0);
    move_port(&mut config, crate::generate::ADMIN_PORT, 0);
    move_port(&mut config, crate::generate::STATSD_PORT, statsd_port);
    config["stats_flush_interval"] = Value::from("1s");
    let wasm = wasm().display().to_string();
    let text = serde_json::to_string(&config).unwrap().replace(
        "\"target/wasm32-wasip1/release/model_router.wasm\"",
        &serde_json::to_string(&wasm).unwrap(),
    );
    let config_path = dir.join("statsd.json");
    std::fs::write(&config_path, text).unwrap();

    let admin_path = dir.join("admin");
    let envoy = Process(
        Command::new(envoy_bin())
            .arg("-c")
            .arg(&config_path)
            .args([
                "--concurrency",
                "1",
                "--disable-hot-restart",
                "--use-dynamic-base-id",
                "--log-level",
                "warn",
            ])
            .arg("--admin-address-path")
            .arg(&admin_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    let admin = loop {
        if let Ok(address) = std::fs::read_to_string(&admin_path) {
            if !address.is_empty()
                && agent()
                    .get(&format!("http://{address}/ready"))
                    .call()
                    .is_ok_and(|r| r.status() == 200)
            {
                break address;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "Envoy is not ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let listeners: Value =
        serde_json::from_str(&get(&format!("http://{admin}/listeners?format=json"))).unwrap();
    let port = listeners["listener_statuses"][0]["local_address"]["socket_address"]["port_value"]
        .as_u64()
        .unwrap();

    // The example requests, each answered by a provider.
    let mut sent = 0;
    for entry in std::fs::read_dir(repo().join("examples/requests"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
    {
        let body = std::fs::read(entry.path()).unwrap();
        let mut response = agent()
            .post(&format!("http://127.0.0.1:{port}/v1/chat/completions"))
            .header("content-type", "application/json")
            .header("x-team", "deploy-test")
            .send(&body[..])
            .unwrap();
        let _ = response.body_mut().read_to_string();
        assert_eq!(response.status(), 200, "{}", entry.path().display());
        sent += 1;
    }
    assert!(sent > 0);

    let scrape = get(&format!("http://{admin}/stats/prometheus"));
    let exposed: std::collections::BTreeSet<String> = scrape
        .lines()
        .filter(|l| l.starts_with("model_router_"))
        .map(|l| l.split(['{', ' ']).next().unwrap().to_string())
        .collect();
    let known = emitted_metric_names();
    for name in &exposed {
        assert!(
            known.contains(name),
            "Envoy exposes {name}, which the dashboard tests do not know"
        );
    }
    for name in [
        "model_router_requests_total",
        "model_router_cost_micro_usd_total",
        "model_router_baseline_cost_micro_usd_total",
        "model_router_request_prompt_tokens_bucket",
        "model_router_decision_duration_us_bucket",
    ] {
        assert!(exposed.contains(name), "no {name} in the scrape:\n{scrape}");
    }
    let requests = scrape
        .lines()
        .find(|l| l.starts_with("model_router_requests_total{"))
        .unwrap();
    for label in [
        "model=",
        "rule=",
        "cluster=",
        "task=",
        "tenant=\"deploy-test\"",
    ] {
        assert!(requests.contains(label), "{requests}");
    }

    // statsd: Envoy flushes every second; the filter's counters arrive with
    // their `;label=value` names (the statsd sink does not apply stats_tags).
    let mut datagrams = String::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline && !datagrams.contains("model_router_requests_total") {
        let mut buf = [0u8; 65536];
        if let Ok(n) = statsd.recv(&mut buf) {
            datagrams.push_str(&String::from_utf8_lossy(&buf[..n]));
            datagrams.push('\n');
        }
    }
    let line = datagrams
        .lines()
        .find(|l| l.contains("model_router_requests_total"))
        .unwrap_or_else(|| {
            panic!("no model_router_requests_total in the statsd datagrams:\n{datagrams}")
        });
    assert!(
        line.starts_with("envoy.wasmcustom.model_router_requests_total;model="),
        "{line}"
    );
    assert!(line.ends_with("|c"), "{line}");
    drop(envoy);
    drop(mocks);
    std::fs::remove_dir_all(&dir).unwrap();
}
