//! scripts/oci-image: an OCI image layout of the filter in the Wasm image
//! "compat" variant that istio-agent and Envoy Gateway pull (one
//! tar+gzip layer holding plugin.wasm). Checked as a registry client would
//! read it: index.json → manifest → config and layer, every blob's digest
//! and size, the media types, and the module inside the layer.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::{repo, scratch};

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Reads a blob by descriptor, checking its size and digest.
fn blob(layout: &Path, descriptor: &Value) -> std::path::PathBuf {
    let digest = descriptor["digest"].as_str().unwrap();
    let hex = digest
        .strip_prefix("sha256:")
        .unwrap_or_else(|| panic!("{digest} is not sha256"));
    let path = layout.join("blobs/sha256").join(hex);
    let size = std::fs::metadata(&path)
        .unwrap_or_else(|e| panic!("blob {digest}: {e}"))
        .len();
    assert_eq!(
        Some(size),
        descriptor["size"].as_u64(),
        "blob {digest}: size"
    );
    assert_eq!(
        sha256(&path),
        hex,
        "blob {digest}: content does not match its digest"
    );
    path
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Builds the layout for `module`, verifies it, returns the manifest digest.
fn build_and_check(module: &Path, dir: &Path) -> String {
    let layout = dir.join("layout");
    let tarball = dir.join("layout.tar");
    let out = Command::new(repo().join("scripts/oci-image"))
        .args(["--wasm"])
        .arg(module)
        .arg("--out")
        .arg(&layout)
        .arg("--tar")
        .arg(&tarball)
        .args(["--tag", "0.1.0-test"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scripts/oci-image failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    assert_eq!(
        json(&layout.join("oci-layout")),
        serde_json::json!({"imageLayoutVersion": "1.0.0"})
    );
    let index = json(&layout.join("index.json"));
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1);
    assert_eq!(
        manifests[0]["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifests[0]["annotations"]["org.opencontainers.image.ref.name"],
        "0.1.0-test"
    );

    let manifest = json(&blob(&layout, &manifests[0]));
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    let config = json(&blob(&layout, &manifest["config"]));
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "the compat variant has one layer");
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let layer = blob(&layout, &layers[0]);

    // The layer: a gzip'd tar whose only file is plugin.wasm, the module itself;
    // the config's diff_id is the digest of the uncompressed tar.
    let tar = dir.join("layer.tar");
    let gunzip = Command::new("gzip")
        .arg("-dc")
        .arg(&layer)
        .output()
        .unwrap();
    assert!(gunzip.status.success(), "the layer is not gzip");
    std::fs::write(&tar, &gunzip.stdout).unwrap();
    assert_eq!(config["rootfs"]["type"], "layers");
    assert_eq!(
        config["rootfs"]["diff_ids"][0],
        format!("sha256:{}", sha256(&tar))
    );
    let list = Command::new("tar").arg("-tf").arg(&tar).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&list.stdout).trim(), "plugin.wasm");
    let extracted = Command::new("tar")
        .arg("-xOf")
        .arg(&tar)
        .arg("plugin.wasm")
        .output()
        .unwrap();
    assert_eq!(
        extracted.stdout,
        std::fs::read(module).unwrap(),
        "plugin.wasm is not the module"
    );

    // Nothing else in the layout, and the tarball holds the same files.
    let blobs: Vec<String> = std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(blobs.len(), 3, "{blobs:?}");
    let listed = Command::new("tar")
        .arg("-tf")
        .arg(&tarball)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    for name in ["oci-layout", "index.json"]
        .iter()
        .map(|s| s.to_string())
        .chain(blobs.iter().map(|b| format!("blobs/sha256/{b}")))
    {
        assert!(
            listed.lines().any(|l| l == name),
            "the tarball lacks {name}"
        );
    }
    manifests[0]["digest"].as_str().unwrap().to_string()
}

#[test]
fn the_oci_image_layout_is_valid_and_reproducible() {
    let dir = scratch("oci");
    // A small valid module: the magic number and version, no sections.
    let module = dir.join("tiny.wasm");
    std::fs::write(&module, b"\0asm\x01\0\0\0").unwrap();
    let first = build_and_check(&module, &dir.join("a"));
    let second = build_and_check(&module, &dir.join("b"));
    assert_eq!(first, second, "the same module gives a different image");

    // The real filter, as scripts/test builds it.
    let real = crate::envoy::wasm();
    build_and_check(&real, &dir.join("real"));

    // Not a module: refused.
    let bogus = dir.join("bogus.wasm");
    std::fs::write(&bogus, b"not wasm").unwrap();
    let out = Command::new(repo().join("scripts/oci-image"))
        .arg("--wasm")
        .arg(&bogus)
        .arg("--out")
        .arg(dir.join("bogus"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    std::fs::remove_dir_all(&dir).unwrap();
}
