//! Runs the official SDK client scripts of `tests/sdk/` with the project's
//! `.venv/bin/python` and parses what they print: one result per case
//! (see tests/sdk/README.md). Reusable by any e2e module that needs real
//! clients in front of the gateway.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Which official SDK drives the requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sdk {
    OpenAi,
    Anthropic,
    /// Both SDKs across API families (`translation.py`: each case names its `sdk`).
    CrossApi,
}

impl Sdk {
    fn script(self) -> PathBuf {
        let name = match self {
            Sdk::OpenAi => "openai_client.py",
            Sdk::Anthropic => "anthropic_client.py",
            Sdk::CrossApi => "translation.py",
        };
        repo().join("tests/sdk").join(name)
    }
}

/// The repository root (these tests belong to crates/cli).
fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .canonicalize()
        .unwrap()
}

/// `.venv/bin/python` (or `SDK_PYTHON`), which must import both SDKs.
pub fn python() -> PathBuf {
    let path = std::env::var_os("SDK_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/python"));
    assert!(
        path.is_file(),
        "Python with the openai and anthropic SDKs not found at {}: run scripts/setup",
        path.display()
    );
    path
}

/// Runs `sdk`'s script on `input` (`{"base_url", "api_key", "cases": [..]}`)
/// and returns its results, in case order. Panics with the script's
/// stderr if it does not print a result list within `timeout`.
pub fn run(sdk: Sdk, input: &Value, timeout: Duration) -> Vec<Value> {
    let mut child = Command::new(python())
        .arg(sdk.script())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the SDK client script");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let deadline = Instant::now() + timeout;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{sdk:?} client did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let parsed: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "{sdk:?} client printed no result ({e}); exit {:?}\nstdout: {stdout}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    parsed["results"].as_array().cloned().unwrap_or_default()
}

/// The result with `id`.
pub fn result<'a>(results: &'a [Value], id: &str) -> &'a Value {
    results
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no result {id:?} in {results:#?}"))
}
