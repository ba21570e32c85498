//! `model-router report --policy POLICY`: each classifier's score drift, the
//! population stability index of its live score histogram
//! (`model_router_classifier_score_permille`, from the scrape) against the
//! training score distribution its artifact carries (`classifier::drift`).

use std::fmt::Write as _;

use serde_json::{json, Value};

use model_router_core::classifier::drift;
use model_router_core::metrics::CLASSIFIER_SCORE_HISTOGRAM;
use model_router_core::policy::Policy;

use crate::report::PromSample;

/// One classifier's drift.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreDrift {
    pub classifier: String,
    /// Scores in the histogram.
    pub scores: u64,
    /// `None` without scores.
    pub psi: Option<f64>,
}

/// The drift of every classifier of `policy`, in policy order.
pub fn score_drift(samples: &[PromSample], policy: &Policy) -> Vec<ScoreDrift> {
    let bucket = format!("{CLASSIFIER_SCORE_HISTOGRAM}_bucket");
    policy
        .classifiers
        .iter()
        .map(|c| {
            let mut buckets: Vec<(f64, u64)> = samples
                .iter()
                .filter(|s| s.name == bucket && s.label("classifier") == Some(c.name.as_str()))
                .filter_map(|s| {
                    let le = match s.label("le")? {
                        "+Inf" => f64::INFINITY,
                        v => v.parse::<f64>().ok()? / 1000.0, // permille → probability
                    };
                    Some((le, s.as_u64()?))
                })
                .collect();
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            ScoreDrift {
                classifier: c.name.clone(),
                scores: buckets.iter().map(|b| b.1).max().unwrap_or(0),
                psi: drift::psi(&c.score_quantiles, &buckets),
            }
        })
        .collect()
}

fn reading(psi: f64) -> &'static str {
    if psi > drift::SHIFTED {
        "shifted: retrain, or route by top_share"
    } else if psi > 0.1 {
        "moved"
    } else {
        "stable"
    }
}

pub fn render(drifts: &[ScoreDrift]) -> String {
    let mut out =
        String::from("Classifier score drift (PSI of live scores against the training scores):\n");
    for d in drifts {
        let _ = match d.psi {
            Some(psi) => writeln!(
                out,
                "  {}: PSI {psi:.3} over {} scores ({})",
                d.classifier,
                d.scores,
                reading(psi)
            ),
            None => writeln!(out, "  {}: no scores in this scrape", d.classifier),
        };
    }
    out
}

pub fn to_json(drifts: &[ScoreDrift]) -> Value {
    drifts
        .iter()
        .map(|d| {
            (
                d.classifier.clone(),
                json!({"psi": d.psi, "scores": d.scores}),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}
