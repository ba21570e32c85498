//! Real processes on loopback: the mock provider, Envoy with the built
//! `.wasm`, and an HTTP client. Anything missing fails loudly: these tests
//! never skip.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use model_router_cli::envoy_config::{self, EnvoyOptions};
use model_router_core::policy::Policy;
use serde_json::{json, Value};

pub const TEST_ID: &str = "x-test-id";

pub fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .canonicalize()
        .unwrap()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"))
}

fn must_exist(path: PathBuf, what: &str) -> PathBuf {
    assert!(
        path.is_file(),
        "{what} not found at {}: run ./scripts/test (it installs and builds everything)",
        path.display()
    );
    path
}

pub fn envoy_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("ENVOY_BIN") {
        return must_exist(PathBuf::from(path), "Envoy (ENVOY_BIN)");
    }
    let lib = repo().join(".venv/lib");
    let found = std::fs::read_dir(&lib).ok().and_then(|entries| {
        entries
            .flatten()
            .map(|e| e.path().join("site-packages/envoy/_bin/envoy"))
            .find(|p| p.is_file())
    });
    must_exist(
        found.unwrap_or_else(|| lib.join("python3/site-packages/envoy/_bin/envoy")),
        "Envoy",
    )
}

/// The test-only build of the filter (cargo feature `test-trap`) that traps
/// its VM on demand; scripts/test builds it into its own target dir.
pub fn trap_wasm_path() -> PathBuf {
    if let Some(path) = std::env::var_os("MODEL_ROUTER_TRAP_WASM") {
        return must_exist(
            PathBuf::from(path),
            "the test-trap filter (MODEL_ROUTER_TRAP_WASM)",
        );
    }
    must_exist(
        target_dir().join("test-trap/wasm32-wasip1/release/model_router.wasm"),
        "the test-trap filter .wasm (cargo build --release --target wasm32-wasip1 --lib \
         --features test-trap --target-dir target/test-trap)",
    )
}

pub fn wasm_path() -> PathBuf {
    if let Some(path) = std::env::var_os("MODEL_ROUTER_WASM") {
        return must_exist(PathBuf::from(path), "the filter (MODEL_ROUTER_WASM)");
    }
    must_exist(
        target_dir().join("wasm32-wasip1/release/model_router.wasm"),
        "the filter .wasm",
    )
}

fn mock_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("MOCK_PROVIDER_BIN") {
        return must_exist(PathBuf::from(path), "mock-provider (MOCK_PROVIDER_BIN)");
    }
    must_exist(target_dir().join("debug/mock-provider"), "mock-provider")
}

/// Spawns children from one thread that lives as long as the test process,
/// with PR_SET_PDEATHSIG so they die with it (the signal follows the
/// spawning *thread*, so test threads must not spawn directly).
fn spawn(mut command: Command) -> std::io::Result<Child> {
    type Job = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let sender = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::spawn(move || {
            for (mut command, reply) in rx {
                unsafe {
                    use std::os::unix::process::CommandExt;
                    command.pre_exec(|| {
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                        Ok(())
                    });
                }
                let _ = reply.send(command.spawn());
            }
        });
        Mutex::new(tx)
    });
    let (tx, rx) = mpsc::channel();
    command.stdin(Stdio::null());
    sender.lock().unwrap().send((command, tx)).unwrap();
    rx.recv().unwrap()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running mock provider.
pub struct Mock {
    pub name: String,
    pub port: u16,
    child: Child,
}

impl Mock {
    pub fn start(name: &str) -> Mock {
        Mock::start_with(name, &[])
    }

    pub fn start_with(name: &str, args: &[&str]) -> Mock {
        let mut command = Command::new(mock_bin());
        command
            .args(["--listen", "127.0.0.1:0", "--name", name])
            .args(args);
        command.stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = spawn(command).expect("start mock-provider");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("mock-provider said {line:?}"));
        Mock {
            name: name.to_string(),
            port,
            child,
        }
    }

    /// Every request the mock received, in order.
    pub fn requests(&self) -> Vec<Value> {
        let reply = get(&format!("http://127.0.0.1:{}/__mock/requests", self.port));
        serde_json::from_str::<Vec<Value>>(&reply.body).unwrap()
    }

    /// The requests that carried `x-test-id: id`.
    pub fn requests_for(&self, id: &str) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| header_of(r, TEST_ID).as_deref() == Some(id))
            .collect()
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A header value of a recorded request.
pub fn header_of(record: &Value, name: &str) -> Option<String> {
    record["headers"].as_array()?.iter().find_map(|pair| {
        (pair[0].as_str()? == name).then(|| pair[1].as_str().unwrap_or_default().to_string())
    })
}

/// A running Envoy with the filter.
pub struct Envoy {
    pub port: u16,
    pub admin: u16,
    child: Child,
    pub log: PathBuf,
    pub access_log: PathBuf,
    /// Generation options, to write LDS files for a new policy.
    pub options: EnvoyOptions,
    /// The watched LDS file, when the listener is dynamic.
    pub lds_path: Option<PathBuf>,
    _dir: TempDir,
}

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("{prefix}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Options of a test Envoy.
pub struct Setup<'a> {
    pub policy: &'a str,
    /// cluster name → mock serving it.
    pub upstreams: Vec<(&'a str, &'a Mock)>,
    /// Replaces the plugin configuration after generation (to test bad policies).
    pub raw_configuration: Option<&'a str>,
    pub body_limit_bytes: Option<u32>,
    /// Clusters served by no mock: (cluster, port).
    pub extra_upstreams: Vec<(String, u16)>,
    /// Another filter build (e.g. [`trap_wasm_path`]).
    pub wasm: Option<PathBuf>,
    /// Changes the generated bootstrap before Envoy reads it.
    pub edit: Option<&'a dyn Fn(&mut Value)>,
    /// Serve the listener from a watched LDS file instead of statically,
    /// so [`Envoy::update_policy`] can change the policy of a running Envoy.
    pub lds: bool,
    /// Envoy worker threads (1 unless set).
    pub concurrency: Option<u32>,
    /// The CA bundle providers are verified against (a test CA).
    pub ca_bundle: Option<PathBuf>,
    /// With `clients`: key → tenant.
    pub client_keys: Vec<(String, String)>,
}

impl<'a> Setup<'a> {
    pub fn new(policy: &'a str, upstreams: Vec<(&'a str, &'a Mock)>) -> Setup<'a> {
        Setup {
            policy,
            upstreams,
            raw_configuration: None,
            body_limit_bytes: None,
            extra_upstreams: Vec::new(),
            wasm: None,
            edit: None,
            lds: false,
            concurrency: None,
            ca_bundle: None,
            client_keys: Vec::new(),
        }
    }
}

impl Envoy {
    pub fn start(policy: &str, upstreams: Vec<(&str, &Mock)>) -> Envoy {
        Envoy::launch(Setup::new(policy, upstreams))
            .unwrap_or_else(|log| panic!("Envoy did not start:\n{log}"))
    }

    /// Starts Envoy and waits until it is ready; Err(log) if it exits first.
    pub fn launch(setup: Setup<'_>) -> Result<Envoy, String> {
        let dir = TempDir::new("model-router-e2e");
        let policy = Policy::from_json(setup.policy).expect("test policy must be valid");
        let (port, admin) = (free_port(), free_port());
        let options = EnvoyOptions {
            listen_port: port,
            admin_port: admin,
            wasm_path: setup
                .wasm
                .clone()
                .unwrap_or_else(wasm_path)
                .display()
                .to_string(),
            upstreams: setup
                .upstreams
                .iter()
                .map(|(cluster, mock)| (cluster.to_string(), "127.0.0.1".to_string(), mock.port))
                .chain(
                    setup
                        .extra_upstreams
                        .iter()
                        .map(|(c, p)| (c.clone(), "127.0.0.1".to_string(), *p)),
                )
                .collect(),
            access_log_path: Some(dir.0.join("access.log").display().to_string()),
            body_limit_bytes: setup
                .body_limit_bytes
                .unwrap_or(EnvoyOptions::default().body_limit_bytes),
            sds_dir: dir.0.join("sds").display().to_string(),
            ca_bundle: setup.ca_bundle.as_ref().map_or_else(
                || EnvoyOptions::default().ca_bundle,
                |p| p.display().to_string(),
            ),
            client_keys: setup.client_keys.clone(),
            ..EnvoyOptions::default()
        };
        // The providers' SDS files, as `model-router envoy --sds-dir` writes them.
        for (path, secret) in model_router_cli::envoy_provider::sds_files(&policy, &options.sds_dir)
        {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, secret.to_string()).unwrap();
        }
        let lds_path = setup.lds.then(|| dir.0.join("lds").join("lds.json"));
        let mut config = match &lds_path {
            None => envoy_config::bootstrap(&policy, setup.policy, &options),
            Some(lds) => {
                std::fs::create_dir_all(lds.parent().unwrap()).unwrap();
                let listeners = envoy_config::lds_file(&policy, setup.policy, &options);
                std::fs::write(lds, serde_json::to_string_pretty(&listeners).unwrap()).unwrap();
                envoy_config::bootstrap_with_file_lds(&policy, setup.policy, &options, lds)
            }
        };
        if let Some(raw) = setup.raw_configuration {
            replace_configuration(&mut config, raw);
        }
        if let Some(edit) = setup.edit {
            edit(&mut config);
        }
        let config_path = dir.0.join("envoy.json");
        std::fs::write(&config_path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
        let log = dir.0.join("envoy.log");
        let mut command = Command::new(envoy_bin());
        command
            .arg("-c")
            .arg(&config_path)
            .arg("--concurrency")
            .arg(setup.concurrency.unwrap_or(1).to_string())
            .args([
                "--use-dynamic-base-id",
                "--disable-hot-restart",
                "-l",
                "info",
            ])
            .arg("--log-path")
            .arg(&log)
            // Listeners replaced by an LDS update close their connections within 2 s.
            .args(["--drain-time-s", "2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = spawn(command).expect("start envoy");
        let mut envoy = Envoy {
            port,
            admin,
            child,
            access_log: dir.0.join("access.log"),
            log,
            options,
            lds_path,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(Some(_)) = envoy.child.try_wait() {
                return Err(envoy.log_text());
            }
            if try_get(&format!("http://127.0.0.1:{admin}/ready")).is_some_and(|r| r.status == 200)
            {
                return Ok(envoy);
            }
            if Instant::now() > deadline {
                return Err(format!("not ready after 90 s\n{}", envoy.log_text()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for Envoy to exit and returns its status code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn post(&self, path: &str, body: &[u8], headers: &[(&str, &str)]) -> Reply {
        send("POST", &self.url(path), Some(body), headers)
    }

    /// Posts a JSON body tagged with a fresh test id (so the mocks' records
    /// of this request can be found); returns the id and the reply.
    pub fn post_tagged(
        &self,
        path: &str,
        body: &[u8],
        headers: &[(&str, &str)],
    ) -> (String, Reply) {
        let id = new_id();
        let mut all = headers.to_vec();
        all.push((TEST_ID, &id));
        all.push(("content-type", "application/json"));
        let reply = self.post(path, body, &all);
        (id, reply)
    }

    /// Envoy's Prometheus exposition, once the router's batched counters
    /// of the requests made so far have been sent.
    pub fn prometheus(&self) -> String {
        wait_for_metric_flush();
        get(&format!("http://127.0.0.1:{}/stats/prometheus", self.admin)).body
    }

    /// Envoy's plain stats, as they are now (the router's metrics are
    /// read through `prometheus`).
    pub fn stats(&self) -> String {
        get(&format!("http://127.0.0.1:{}/stats", self.admin)).body
    }

    /// One of Envoy's counters or gauges in `/stats`, as it is now (0 when absent).
    pub fn stat(&self, name: &str) -> u64 {
        let text = get(&format!(
            "http://127.0.0.1:{}/stats?filter=^{}$",
            self.admin,
            name.replace('.', "\\.")
        ))
        .body;
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{name}: ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Delivers a new policy to a running Envoy (LDS setups): writes the
    /// listener file beside the watched directory and moves it into place.
    /// A policy the core refuses is written unvalidated (`raw`), to test
    /// that Envoy rejects it.
    pub fn update_policy(&self, policy_json: &str) {
        let lds = self.lds_path.as_ref().expect("an LDS Envoy (Setup::lds)");
        let listeners = match Policy::from_json(policy_json) {
            Ok(policy) => envoy_config::lds_file(&policy, policy_json, &self.options),
            Err(_) => {
                // Generate from the current file, swapping in the bad configuration.
                let mut current: Value =
                    serde_json::from_str(&std::fs::read_to_string(lds).unwrap()).unwrap();
                replace_configuration(&mut current, policy_json);
                current["version_info"] = Value::String(format!("raw-{}", new_id()));
                current
            }
        };
        let staging = lds.parent().unwrap().parent().unwrap().join("lds.json.new");
        std::fs::write(&staging, serde_json::to_string_pretty(&listeners).unwrap()).unwrap();
        std::fs::rename(&staging, lds).unwrap();
    }

    /// Every `wasm.*vm_reload*` counter summed: VMs reloaded after a trap
    /// (FAIL_RELOAD) and requests refused while a reload backs off. 0 while
    /// no VM has failed.
    pub fn vm_reloads(&self) -> u64 {
        self.stats()
            .lines()
            .filter(|l| l.starts_with("wasm.") && l.contains(".vm_reload"))
            .filter_map(|l| l.rsplit_once(": ")?.1.trim().parse::<u64>().ok())
            .sum()
    }

    /// Envoy's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Envoy's resident set size in KiB (from /proc).
    pub fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// Whether the Envoy process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Whether Envoy still answers its admin endpoint.
    pub fn healthy(&self) -> bool {
        try_get(&format!("http://127.0.0.1:{}/ready", self.admin)).is_some_and(|r| r.status == 200)
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn replace_configuration(config: &mut Value, raw: &str) {
    match config {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if key == "configuration" && value.get("@type").is_some() {
                    value["value"] = Value::String(raw.to_string());
                } else {
                    replace_configuration(value, raw);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| replace_configuration(v, raw)),
        _ => {}
    }
}

pub fn new_id() -> String {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    format!(
        "t{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    )
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

pub fn get(url: &str) -> Reply {
    send("GET", url, None, &[])
}

fn try_get(url: &str) -> Option<Reply> {
    try_send("GET", url, None, &[]).ok()
}

pub fn send(method: &str, url: &str, body: Option<&[u8]>, headers: &[(&str, &str)]) -> Reply {
    try_send(method, url, body, headers).unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

pub fn try_send(
    method: &str,
    url: &str,
    body: Option<&[u8]>,
    headers: &[(&str, &str)],
) -> Result<Reply, ureq::Error> {
    let mut builder = ureq::http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder
        .body(body.map(<[u8]>::to_vec).unwrap_or_default())
        .unwrap();
    let mut response = agent().run(request)?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).to_string(),
            )
        })
        .collect();
    let mut body = String::new();
    response
        .body_mut()
        .as_reader()
        .read_to_string(&mut body)
        .map_err(ureq::Error::Io)?;
    Ok(Reply {
        status,
        headers,
        body,
    })
}

pub fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// An HTTP answer read off a raw connection: (status, whole response text).
pub struct RawReply {
    pub status: Option<u16>,
    pub text: String,
}

/// Writes `request` as-is on a new connection to 127.0.0.1:`port` and reads
/// until the server closes it (send `connection: close`) or 30 s pass.
pub fn raw_http(port: u16, request: &[u8]) -> RawReply {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes).to_string();
    let status = text
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok());
    RawReply { status, text }
}

/// An answer read by curl: status, HTTP version, headers and body.
pub struct CurlReply {
    pub status: u16,
    pub version: String,
    pub headers: String,
    pub body: String,
}

/// Runs curl with `args` (plus `-s`, header and status capture) and a body on stdin.
pub fn curl(args: &[&str], body: &[u8]) -> CurlReply {
    use std::io::Write;
    let dir = TempDir::new("model-router-curl");
    let headers = dir.0.join("headers");
    let mut child = Command::new("curl")
        .args(["-s", "--max-time", "30", "-D"])
        .arg(&headers)
        .args([
            "-w",
            "\n%{http_code} %{http_version}",
            "--data-binary",
            "@-",
        ])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("curl");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, tail) = text.rsplit_once('\n').unwrap_or(("", &text));
    let mut tail = tail.split_whitespace();
    CurlReply {
        status: tail.next().and_then(|s| s.parse().ok()).unwrap_or(0),
        version: tail.next().unwrap_or_default().to_string(),
        headers: read_text(&headers).to_ascii_lowercase(),
        body: body.to_string(),
    }
}

/// The routing filter sends its counters and gauges on its root's tick,
/// every 250 ms (`crates/filter/src/metrics.rs`, FLUSH_PERIOD): a read
/// right after a request waits for the next tick, with room for a busy
/// machine.
fn wait_for_metric_flush() {
    std::thread::sleep(Duration::from_millis(600));
}

/// Labels of one Prometheus series.
pub type Labels = BTreeMap<String, String>;

/// Parses `name{a="x",b="y"} 12` lines of the router's metrics.
pub fn scrape(envoy: &Envoy) -> Vec<(String, Labels, u64)> {
    envoy
        .prometheus()
        .lines()
        .filter(|l| l.starts_with("model_router_"))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels: Labels = labels
                .split("\",")
                .filter(|p| !p.is_empty())
                .filter_map(|p| {
                    let (k, v) = p.split_once("=\"")?;
                    Some((k.to_string(), v.trim_end_matches('"').to_string()))
                })
                .collect();
            Some((name.to_string(), labels, value.parse::<f64>().ok()? as u64))
        })
        .collect()
}

/// The sum of the `name` series of `series` whose labels include `labels`.
pub fn sum_of(series: &[(String, Labels, u64)], name: &str, labels: &[(&str, &str)]) -> u64 {
    series
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

/// A model on `cluster` that bodies name `provider` (100K-token window,
/// 1 and 2 USD per million prompt and completion tokens).
pub fn provider_model(cluster: &str, provider: &str) -> Value {
    json!({"cluster": cluster, "provider_model": provider, "context_window": 100_000,
           "pricing": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}})
}

/// A rule named `value` sending requests with `x-chain: value` to `models`, in order.
pub fn chain_rule(value: &str, models: &[&str]) -> Value {
    json!({"name": value, "when": {"header": {"name": "x-chain", "equals": value}}, "target": models})
}

/// Owned pairs, to compare with (mock, model) receipts.
pub fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}
