//! Deployment files: the shipped Envoy configs, docker-compose stack, Grafana
//! dashboard, Istio and Envoy Gateway manifests, the policy JSON Schema and
//! the OCI image of the filter. Each is parsed with a real parser and checked
//! against what the filter really does; every Envoy config that can run here
//! passes `envoy --mode validate`. Anything missing fails loudly.

// Test code may unwrap and panic: a failed expectation is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod compose;
mod envoy;
mod generate;
mod kubernetes;
mod oci;
mod prometheus;
mod schema;
mod scrape;

use std::path::{Path, PathBuf};

/// A tool scripts/setup installs into `.venv` (`site-packages/<relative>`),
/// or the path in `$env_var`; a missing tool fails the test, never skips it.
pub fn venv_tool(env_var: &str, relative: &str, what: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env_var) {
        return PathBuf::from(path);
    }
    let lib = repo().join(".venv/lib");
    std::fs::read_dir(&lib)
        .ok()
        .and_then(|entries| {
            entries
                .flatten()
                .map(|e| e.path().join("site-packages").join(relative))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| panic!("{what} is not under {}: run scripts/setup", lib.display()))
}

pub fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .canonicalize()
        .unwrap()
}

pub fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// Every document of a YAML stream, as JSON values.
pub fn yaml_documents(path: &str) -> Vec<serde_json::Value> {
    use serde::Deserialize;
    let text = read(path);
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| serde_json::Value::deserialize(doc).unwrap_or_else(|e| panic!("{path}: {e}")))
        .filter(|v| !v.is_null())
        .collect()
}

/// A fresh directory under the target dir, removed first if it exists.
pub fn scratch(name: &str) -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("deploy-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The example policies: `examples/*.json` and `examples/policies/*.json`
/// (not the schema).
pub fn example_policies() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in ["examples", "examples/policies"] {
        let Ok(entries) = std::fs::read_dir(repo().join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if name.ends_with(".json") && !name.ends_with(".schema.json") {
                out.push(path);
            }
        }
    }
    out.sort();
    assert!(!out.is_empty(), "no example policy found");
    out
}

fn relative(path: &Path) -> String {
    path.strip_prefix(repo())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// `scripts/gen-configs` runs this test with MODEL_ROUTER_WRITE_CONFIGS=1 to
/// write the files; otherwise it regenerates them into a scratch directory
/// and fails on any difference with the committed ones.
#[test]
fn generated_files_are_up_to_date() {
    let files = generate::all();
    if std::env::var_os("MODEL_ROUTER_WRITE_CONFIGS").is_some() {
        for file in &files {
            let path = repo().join(file.path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &file.content).unwrap();
            eprintln!("wrote {}", file.path);
        }
        return;
    }
    let dir = scratch("generated");
    let mut stale = Vec::new();
    for file in &files {
        let fresh = dir.join(file.path);
        std::fs::create_dir_all(fresh.parent().unwrap()).unwrap();
        std::fs::write(&fresh, &file.content).unwrap();
        let committed = std::fs::read_to_string(repo().join(file.path)).unwrap_or_default();
        if committed != file.content {
            let line = committed
                .lines()
                .zip(file.content.lines())
                .position(|(a, b)| a != b)
                .map_or_else(
                    || "length differs".to_string(),
                    |i| format!("first difference at line {}", i + 1),
                );
            stale.push(format!(
                "{} ({line}; fresh copy: {})",
                file.path,
                relative(&fresh)
            ));
        }
    }
    assert!(
        stale.is_empty(),
        "generated files are stale or missing, run scripts/gen-configs:\n  {}",
        stale.join("\n  ")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
