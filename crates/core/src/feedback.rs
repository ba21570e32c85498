//! Feedback on a routed request: what an application says about an answer
//! (`POST …/v1/router/feedback`, or the lighter `x-model-router-feedback`
//! header on its next request), the attribution of the request it rates
//! (model, rule, split branch, classifier score bucket, tenant — what the
//! request's audit record says, taken from its decision), and the metric
//! samples one feedback adds.
//!
//! Feedback is attributed through a bounded store of recent requests
//! ([`store`]); the filter keeps it in proxy-wasm shared data so every
//! Envoy worker sees every request.

use serde_json::{Map, Value};

use crate::decision::Decision;
use crate::metrics::{encode, Kind, Sample, NONE};
use crate::policy::{Model, Policy};

pub mod store;

/// Path suffix of the feedback endpoint, under any prefix.
pub const FEEDBACK_PATH: &str = "/v1/router/feedback";
/// Request header carrying feedback on an earlier request (the lighter option).
pub const FEEDBACK_HEADER: &str = "x-model-router-feedback";
/// Response header with the request id (Envoy's `x-request-id`) to give feedback on.
pub const REQUEST_ID_HEADER: &str = "x-model-router-request-id";
/// Envoy's request id header, set by the connection manager on every request.
pub const ENVOY_REQUEST_ID: &str = "x-request-id";
/// Longest request id or label accepted (Envoy's UUIDs are 36 characters).
pub const MAX_ID_LEN: usize = 128;

pub const FEEDBACK: &str = "model_router_feedback_total";
/// Sum of scores × 1000 (counters are integers): mean = this / 1000 / `FEEDBACK`.
pub const FEEDBACK_SCORE: &str = "model_router_feedback_score_milli_total";
/// Feedback per classifier and score bucket (tenths) of the rated request.
pub const FEEDBACK_BY_SCORE: &str = "model_router_feedback_by_score_total";
/// Feedback naming a request id the store does not (or no longer) hold.
pub const FEEDBACK_UNKNOWN: &str = "model_router_feedback_unknown_total";
/// Feedback bodies or headers refused as invalid.
pub const FEEDBACK_INVALID: &str = "model_router_feedback_invalid_total";
/// Requests overwritten in the store before any feedback could name them.
pub const FEEDBACK_EVICTED: &str = "model_router_feedback_evicted_total";

/// One piece of feedback, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Feedback {
    pub request_id: String,
    /// 0 (bad) ..= 1 (good).
    pub score: f64,
    pub label: Option<String>,
}

impl Feedback {
    /// `good` at a score of 0.5 or more.
    pub fn verdict(&self) -> &'static str {
        if self.score >= 0.5 {
            "good"
        } else {
            "bad"
        }
    }

    /// Parses the endpoint's JSON body; errors name the JSON path.
    pub fn from_json(body: &[u8]) -> Result<Feedback, String> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| format!(".: invalid JSON: {e}"))?;
        let Value::Object(map) = value else {
            return Err(".: expected an object".into());
        };
        for key in map.keys() {
            if !["request_id", "score", "verdict", "label"].contains(&key.as_str()) {
                return Err(format!(
                    "{key}: unknown field (expected request_id, score, verdict, label)"
                ));
            }
        }
        let request_id = match map.get("request_id") {
            Some(Value::String(id)) => checked_text("request_id", id)?,
            Some(_) => return Err("request_id: expected a string".into()),
            None => return Err("request_id: missing".into()),
        };
        let score = score_of(&map)?;
        let label = match map.get("label") {
            None | Some(Value::Null) => None,
            Some(Value::String(label)) => Some(checked_text("label", label)?),
            Some(_) => return Err("label: expected a string".into()),
        };
        Ok(Feedback {
            request_id,
            score,
            label,
        })
    }

    /// Parses `x-model-router-feedback`: `;`-separated `key=value` pairs
    /// with the body's keys, e.g. `request_id=9f0c…; verdict=bad; label=tone`.
    pub fn from_header(value: &str) -> Result<Feedback, String> {
        let mut map = Map::new();
        for pair in value.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(format!("{pair}: expected key=value"));
            };
            let (key, value) = (key.trim(), value.trim());
            let value = match key {
                "score" => value
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map_or_else(|| Value::String(value.into()), Value::Number),
                _ => Value::String(value.into()),
            };
            map.insert(key.to_string(), value);
        }
        Feedback::from_json(Value::Object(map).to_string().as_bytes())
    }
}

fn score_of(map: &Map<String, Value>) -> Result<f64, String> {
    let from_verdict = match map.get("verdict") {
        None => None,
        Some(Value::String(v)) if v == "good" => Some(1.0),
        Some(Value::String(v)) if v == "bad" => Some(0.0),
        Some(_) => return Err(r#"verdict: expected "good" or "bad""#.into()),
    };
    let score = match map.get("score") {
        None => None,
        Some(Value::Number(n)) => match n.as_f64() {
            Some(s) if (0.0..=1.0).contains(&s) => Some(s),
            _ => return Err("score: expected a number from 0 to 1".into()),
        },
        Some(_) => return Err("score: expected a number from 0 to 1".into()),
    };
    match (score, from_verdict) {
        (Some(s), Some(v)) if (s >= 0.5) != (v >= 0.5) => Err("score: contradicts verdict".into()),
        (Some(s), _) => Ok(s),
        (None, Some(v)) => Ok(v),
        (None, None) => Err(".: expected score or verdict".into()),
    }
}

/// Ids and labels are stored and shown: printable, bounded, no separators.
fn checked_text(path: &str, text: &str) -> Result<String, String> {
    if text.is_empty() || text.len() > MAX_ID_LEN {
        return Err(format!("{path}: expected 1 to {MAX_ID_LEN} characters"));
    }
    if text.chars().any(|c| c.is_control()) {
        return Err(format!("{path}: control characters are not allowed"));
    }
    Ok(text.to_string())
}

/// What served a request, for attributing feedback on it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attribution {
    pub model: String,
    pub rule: String,
    pub tenant: String,
    /// The split branch (`branch` in the audit record), when a split decided.
    pub branch: Option<String>,
    /// Classifier name → score, from the audit record's `scores` (if any).
    pub scores: Vec<(String, f64)>,
}

impl Attribution {
    /// The attribution of a decided request, from the decision itself:
    /// what [`Attribution::from_audit`] reads back from its audit record
    /// (`served`: the model that answered, when the response was billed;
    /// else the first chosen), without writing and parsing that record.
    pub fn of(
        policy: &Policy,
        decision: &Decision,
        served: Option<&Model>,
        tenant: &str,
    ) -> Option<Attribution> {
        let first = || decision.chain().iter().find_map(|id| policy.model(*id));
        let model = served.or_else(first)?;
        let mut scores: Vec<(String, f64)> = decision
            .scores
            .iter()
            .filter_map(|(id, p)| {
                let name = &policy.classifiers.get(id.0)?.name;
                Some((name.clone(), crate::explain::round_score(*p)))
            })
            .collect();
        // The audit record's `scores` is a JSON object, in name order
        // (classifier names are unique: they are the policy's map keys).
        scores.sort_by(|a, b| a.0.cmp(&b.0));
        Some(Attribution {
            model: model.name.clone(),
            rule: decision.decided_by.label(policy).to_string(),
            tenant: tenant.to_string(),
            branch: decision.branch_label(policy).map(str::to_string),
            scores,
        })
    }

    /// Reads an audit record (`explain::audit_record`, with billing when
    /// the response completed): the served model, else the first chosen.
    pub fn from_audit(record: &str) -> Option<Attribution> {
        let Ok(Value::Object(map)) = serde_json::from_str::<Value>(record) else {
            return None;
        };
        let text = |key: &str| map.get(key).and_then(Value::as_str).map(str::to_string);
        let model = text("served_model").or_else(|| text("model"))?;
        Some(Attribution {
            model,
            rule: text("rule").unwrap_or_else(|| NONE.into()),
            tenant: text("tenant").unwrap_or_else(|| NONE.into()),
            branch: text("branch"),
            scores: scores(map.get("scores")),
        })
    }

    /// The compact form kept in the store. Written straight from borrowed
    /// fields: this runs for every routed request (no `Value` tree).
    pub fn to_json(&self) -> String {
        serde_json::to_string(&Stored {
            served_model: &self.model,
            rule: &self.rule,
            tenant: &self.tenant,
            branch: self.branch.as_deref(),
            scores: Scores(&self.scores),
        })
        .unwrap_or_default()
    }
}

/// [`Attribution::to_json`]'s shape, read back by [`Attribution::from_audit`].
#[derive(serde::Serialize)]
struct Stored<'a> {
    served_model: &'a str,
    rule: &'a str,
    tenant: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    branch: Option<&'a str>,
    #[serde(skip_serializing_if = "Scores::is_empty")]
    scores: Scores<'a>,
}

/// Classifier scores as a JSON object; a non-finite score (not JSON) is left out.
struct Scores<'a>(&'a [(String, f64)]);

impl Scores<'_> {
    fn finite(&self) -> impl Iterator<Item = (&String, &f64)> {
        self.0
            .iter()
            .filter(|(_, v)| v.is_finite())
            .map(|(k, v)| (k, v))
    }

    fn is_empty(&self) -> bool {
        self.finite().next().is_none()
    }
}

impl serde::Serialize for Scores<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.finite())
    }
}

/// `scores` as `{"name": 0.83}` or `{"name": {"score": 0.83, …}}`.
fn scores(value: Option<&Value>) -> Vec<(String, f64)> {
    let Some(Value::Object(map)) = value else {
        return Vec::new();
    };
    map.iter()
        .filter_map(|(name, v)| {
            let score = v
                .as_f64()
                .or_else(|| v.get("score").and_then(Value::as_f64))?;
            Some((name.clone(), score))
        })
        .collect()
}

/// The score bucket label of a classifier score: its tenth, `0.0` … `0.9`
/// (1.0 falls in `0.9`).
pub fn bucket(score: f64) -> String {
    let tenths = (score.clamp(0.0, 1.0) * 10.0).floor().min(9.0);
    format!("{:.1}", tenths / 10.0)
}

/// The samples one feedback adds: attributed, or counted as unknown.
pub fn samples(feedback: &Feedback, attribution: Option<&Attribution>) -> Vec<Sample> {
    let counter = |name: String, value: u64| Sample {
        kind: Kind::Counter,
        name,
        value,
    };
    let Some(attr) = attribution else {
        return vec![counter(FEEDBACK_UNKNOWN.to_string(), 1)];
    };
    let verdict = feedback.verdict();
    let labels = [
        ("model", attr.model.as_str()),
        ("rule", attr.rule.as_str()),
        ("branch", attr.branch.as_deref().unwrap_or(NONE)),
        ("tenant", attr.tenant.as_str()),
        ("verdict", verdict),
    ];
    // Rounded to thousandths; `score` is within 0..=1, so this is 0..=1000.
    let milli = (feedback.score * 1000.0).round().clamp(0.0, 1000.0) as u64;
    let mut out = vec![
        counter(encode(FEEDBACK, &labels), 1),
        counter(encode(FEEDBACK_SCORE, &labels), milli),
    ];
    for (classifier, score) in &attr.scores {
        let bucket = bucket(*score);
        let labels = [
            ("classifier", classifier.as_str()),
            ("bucket", bucket.as_str()),
            ("verdict", verdict),
        ];
        out.push(counter(encode(FEEDBACK_BY_SCORE, &labels), 1));
    }
    out
}

/// The JSON body of the 400 answer to an invalid feedback body.
pub fn error_body(message: &str) -> String {
    serde_json::json!({"error": {"type": "invalid_feedback", "message": message}}).to_string()
}

/// The sample of a refused feedback body or header.
pub fn invalid_sample() -> Sample {
    Sample {
        kind: Kind::Counter,
        name: FEEDBACK_INVALID.to_string(),
        value: 1,
    }
}

#[cfg(test)]
pub(crate) mod tests;
