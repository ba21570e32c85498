//! The shipped Prometheus rules (`examples/prometheus/alerts.yaml`): valid
//! for `promtool check rules`, firing on scripted drifts and quiet on steady
//! traffic (`promtool test rules alerts.test.yaml`), and reading only metrics
//! the filter emits (or, for classifier scores, the metric classifiers will
//! emit). promtool comes from the `prometheus` Debian package
//! (scripts/setup); without it the test fails, it does not skip.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use crate::compose::{emitted_metric_names, metric_names_in};
use crate::{repo, yaml_documents};

/// Metric names of other features the rules are written for ahead of them:
/// the classifier score histogram (learned routing).
const AHEAD: [&str; 1] = ["model_router_classifier_score_permille_bucket"];

fn promtool() -> PathBuf {
    if let Some(path) = std::env::var_os("PROMTOOL") {
        return PathBuf::from(path);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("promtool"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "promtool not found (PATH or $PROMTOOL): run scripts/setup (Debian package prometheus)"
        )
    })
}

fn run(args: &[&str]) {
    let out = Command::new(promtool())
        .args(args)
        .current_dir(repo().join("examples/prometheus"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_alert_rules_pass_promtool_check() {
    run(&["check", "rules", "alerts.yaml"]);
}

#[test]
fn the_alert_rules_fire_on_scripted_drift_and_stay_quiet_otherwise() {
    run(&["test", "rules", "alerts.test.yaml"]);
}

#[test]
fn the_alert_rules_read_only_metrics_the_router_emits() {
    let known = emitted_metric_names();
    let rules = yaml_documents("examples/prometheus/alerts.yaml").remove(0);
    let mut used = BTreeSet::new();
    for group in rules["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let expr = rule["expr"].as_str().unwrap();
            for name in metric_names_in(expr) {
                assert!(
                    known.contains(&name) || AHEAD.contains(&name.as_str()),
                    "{expr}: {name} is not a metric the filter emits"
                );
                used.insert(name);
            }
        }
    }
    for needed in ["model_router_feedback_total", "model_router_requests_total"] {
        assert!(used.contains(needed), "no rule reads {needed}");
    }
}
