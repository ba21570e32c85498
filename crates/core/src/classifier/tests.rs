//! Compiling artifacts, scoring, and `score` conditions in decisions.

use super::artifact::*;
use super::*;
use crate::decision::{decide, decide_with, Request};
use crate::headers::Headers;
use crate::policy::Policy;
use crate::request::ApiShape;
use crate::task::Scan;

/// An artifact whose only signal is the token " hard": its bucket has a
/// large weight, everything else is zero.
pub(crate) fn toy_artifact() -> Artifact {
    let extractor = Extractor {
        encoding: Encoding::O200kBase,
        scan: Scan::All,
        hash_bits: 12,
        bigrams: true,
        max_tokens: 512,
        tasks: vec![],
    };
    let facts = crate::request::parse(
        "/v1/chat/completions",
        br#"{"messages":[{"role":"user","content":"hard"}]}"#,
    )
    .unwrap();
    let mut dense = [0.0; 5];
    let mut hard = Vec::new();
    extractor
        .visit(&facts, None, &mut dense, |b| hard.push(b))
        .unwrap();
    Artifact {
        format: FORMAT.into(),
        version: VERSION,
        features: FeatureSpec {
            encoding: "o200k_base".into(),
            scan: Scan::All,
            hash_bits: 12,
            bigrams: true,
            max_tokens: 512,
            tasks: vec![],
        },
        weights: Weights {
            bias: -1.0,
            dense: vec![0.0; 5],
            dense_mean: vec![0.0; 5],
            dense_std: vec![1.0; 5],
            tokens: vec![(hard[0], 4.0)],
        },
        calibration: Calibration {
            method: CalibrationMethod::Platt,
            a: 1.0,
            b: 0.0,
        },
        score_quantiles: (0..=100).map(|i| f64::from(i) / 100.0).collect(),
        training: serde_json::json!({}),
        metrics: serde_json::json!({}),
    }
}

fn policy(condition: serde_json::Value) -> Policy {
    let json = serde_json::json!({
        "models": {"weak": {"cluster": "w", "context_window": 8000},
                   "strong": {"cluster": "s", "context_window": 8000}},
        "classifiers": {"difficulty": {"inline": toy_artifact(), "window": 100}},
        "rules": [{"name": "hard", "when": {"score": condition}, "target": "strong"}],
        "default": "weak",
    });
    Policy::from_json(&json.to_string()).unwrap()
}

fn route(policy: &Policy, text: &str) -> (String, Vec<(ClassifierId, f64)>) {
    let body = serde_json::json!({"messages": [{"role": "user", "content": text}]}).to_string();
    let d = decide(
        policy,
        &Request {
            shape: ApiShape::ChatCompletions,
            path: "/v1/chat/completions",
            headers: &Headers::new(),
            body: body.as_bytes(),
        },
    );
    let model = policy.model(d.chain()[0]).unwrap().name.clone();
    (model, d.scores)
}

#[test]
fn a_fixed_threshold_sends_high_scores_to_the_strong_model() {
    let p = policy(serde_json::json!({"classifier": "difficulty", "gt": 0.5}));
    let (model, scores) = route(&p, "hard");
    assert_eq!(model, "strong");
    // z = -1 + 4 / sqrt(1): sigmoid(3).
    assert!((scores[0].1 - sigmoid(3.0)).abs() < 1e-9, "{scores:?}");
    let (model, scores) = route(&p, "easy");
    assert_eq!(model, "weak");
    assert!(scores[0].1 < 0.5);
    assert_eq!(p.windowed, vec![false]);
}

#[test]
fn top_share_uses_the_window_and_defaults_to_the_training_distribution() {
    let p = policy(serde_json::json!({"classifier": "difficulty", "top_share": 0.3}));
    assert_eq!(p.windowed, vec![true]);
    // Training quantiles are uniform: the threshold is 0.7.
    let (model, _) = route(&p, "hard"); // 0.95 > 0.7
    assert_eq!(model, "strong");
    // A window where every recent score was 0.99: nothing is in the top 30%.
    let mut windows = LocalWindows::new(&p.classifiers);
    for _ in 0..100 {
        windows.windows[0].push(0.99);
    }
    let body = br#"{"messages":[{"role":"user","content":"hard"}]}"#;
    let d = decide_with(
        &p,
        &Request {
            shape: ApiShape::ChatCompletions,
            path: "/v1/chat/completions",
            headers: &Headers::new(),
            body,
        },
        &windows,
    );
    assert_eq!(p.model(d.chain()[0]).unwrap().name, "weak");
}

#[test]
fn policies_with_bad_classifiers_are_refused_with_the_path() {
    let base = |classifiers: serde_json::Value, when: serde_json::Value| {
        let json = serde_json::json!({
            "models": {"weak": {"cluster": "w", "context_window": 8000}},
            "classifiers": classifiers,
            "rules": [{"name": "r", "when": when, "target": "weak"}],
            "default": "weak",
        });
        Policy::from_json(&json.to_string())
            .unwrap_err()
            .to_string()
    };
    let ok = serde_json::json!({"c": {"inline": toy_artifact()}});
    let e = base(
        ok.clone(),
        serde_json::json!({"score": {"classifier": "x", "gt": 0.5}}),
    );
    assert!(
        e.starts_with("rules[0].when.score.classifier: unknown classifier"),
        "{e}"
    );
    let e = base(
        ok.clone(),
        serde_json::json!({"score": {"classifier": "c", "gt": 1.5}}),
    );
    assert!(
        e.starts_with("rules[0].when.score.gt: must be between 0 and 1"),
        "{e}"
    );
    let e = base(
        ok.clone(),
        serde_json::json!({"score": {"classifier": "c", "gt": 0.5, "top_share": 0.2}}),
    );
    assert!(e.contains("set exactly one of gt, lt or top_share"), "{e}");
    let e = base(
        serde_json::json!({"c": {"artifact": "model.json"}}),
        serde_json::json!({"score": {"classifier": "c", "gt": 0.5}}),
    );
    assert!(
        e.starts_with("classifiers.c.artifact: \"model.json\": the filter cannot read files"),
        "{e}"
    );
    let mut bad = toy_artifact();
    bad.version = 99;
    let e = base(
        serde_json::json!({"c": {"inline": bad}}),
        serde_json::json!({"score": {"classifier": "c", "gt": 0.5}}),
    );
    assert!(
        e.starts_with("classifiers.c.inline.version: artifact version 99"),
        "{e}"
    );
    let mut bad = toy_artifact();
    bad.weights.tokens.push((1 << 12, 1.0));
    let e = base(
        serde_json::json!({"c": {"inline": bad}}),
        serde_json::json!({"score": {"classifier": "c", "gt": 0.5}}),
    );
    assert!(
        e.starts_with("classifiers.c.inline.weights.tokens[1]"),
        "{e}"
    );
}

#[test]
fn artifacts_round_trip_through_json() {
    let a = toy_artifact();
    let text = serde_json::to_string(&a).unwrap();
    let back: Artifact = serde_json::from_str(&text).unwrap();
    assert_eq!(back, a);
}
