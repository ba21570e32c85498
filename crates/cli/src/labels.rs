//! `model-router labels`: joins Envoy's access log (each line's `decision`
//! carries the request id, the model that served it, rule and task) with a
//! log of feedback into training rows for `model-router train`:
//! `{"prompt": TEXT, "label": 0|1, "group": TASK-or-RULE}`.
//!
//! A row says whether the *weak* model's answer needed the strong one:
//! `label` 1 when the feedback on an answer of the weak model was bad, 0
//! when good. Answers of other models say nothing about the weak one and
//! are skipped (counted). The router never logs prompt text, so the prompt
//! comes from the feedback log (`"prompt"` beside the feedback fields, where
//! the application that rated the answer has it) or from the decision if
//! an access log carries it; rows without one are skipped and counted.

use std::collections::HashMap;

use serde_json::{json, Value};

use model_router_core::feedback::Feedback;

/// What the join found, for the summary line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LabelStats {
    pub rows: usize,
    pub feedback: usize,
    /// Feedback naming a request the access log does not have.
    pub unknown: usize,
    /// Feedback on answers of other models than the weak one.
    pub other_model: usize,
    pub no_prompt: usize,
}

/// The training rows (JSONL) and what was skipped.
pub fn join(
    access_log: &str,
    feedback_log: &str,
    weak: &str,
) -> Result<(String, LabelStats), String> {
    let decisions = decisions_by_id(access_log)?;
    let mut stats = LabelStats::default();
    let mut out = String::new();
    for (n, line) in feedback_log.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (feedback, prompt) = feedback_line(line)
            .map_err(|e| format!("feedback line {}: {e}", n.saturating_add(1)))?;
        stats.feedback = stats.feedback.saturating_add(1);
        let Some(decision) = decisions.get(&feedback.request_id) else {
            stats.unknown = stats.unknown.saturating_add(1);
            continue;
        };
        let served = text(decision, "served_model").or_else(|| text(decision, "model"));
        if served.as_deref() != Some(weak) {
            stats.other_model = stats.other_model.saturating_add(1);
            continue;
        }
        let Some(prompt) = prompt.or_else(|| text(decision, "prompt")) else {
            stats.no_prompt = stats.no_prompt.saturating_add(1);
            continue;
        };
        let label = u8::from(feedback.verdict() == "bad");
        let mut row = serde_json::Map::new();
        row.insert("prompt".into(), json!(prompt));
        row.insert("label".into(), json!(label));
        if let Some(group) = text(decision, "task").or_else(|| text(decision, "rule")) {
            row.insert("group".into(), Value::String(group));
        }
        let row = Value::Object(row);
        out.push_str(&row.to_string());
        out.push('\n');
        stats.rows = stats.rows.saturating_add(1);
    }
    Ok((out, stats))
}

/// request id → decision, from the access log's `decision` fields (a JSON
/// string in Envoy's log, or an object). Lines without one are not requests
/// the router decided.
fn decisions_by_id(access_log: &str) -> Result<HashMap<String, Value>, String> {
    let mut out = HashMap::new();
    for (n, line) in access_log.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let entry: Value = serde_json::from_str(line)
            .map_err(|e| format!("access log line {}: {e}", n.saturating_add(1)))?;
        let decision = match entry.get("decision") {
            Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::Null),
            Some(v @ Value::Object(_)) => v.clone(),
            _ => Value::Null,
        };
        if let Some(id) = text(&decision, "request_id") {
            out.insert(id, decision);
        }
    }
    Ok(out)
}

/// One feedback line: the endpoint's body, plus the application's `prompt`.
fn feedback_line(line: &str) -> Result<(Feedback, Option<String>), String> {
    let mut value: Value =
        serde_json::from_str(line).map_err(|e| format!(".: invalid JSON: {e}"))?;
    let prompt = match value.as_object_mut().and_then(|m| m.remove("prompt")) {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => Some(p),
        Some(_) => return Err("prompt: expected a string".into()),
    };
    Ok((Feedback::from_json(value.to_string().as_bytes())?, prompt))
}

fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCESS: &str = r#"{"path":"/v1/chat/completions","decision":"{\"request_id\":\"r1\",\"model\":\"small\",\"rule\":\"faq\",\"task\":\"faq\"}"}
{"path":"/v1/chat/completions","decision":"{\"request_id\":\"r2\",\"model\":\"small\",\"served_model\":\"large\",\"rule\":\"faq\",\"task\":null}"}
{"path":"/v1/chat/completions","decision":"{\"request_id\":\"r3\",\"model\":\"small\",\"rule\":\"default\",\"task\":null}"}
{"path":"/healthz","decision":"-"}
"#;

    #[test]
    fn feedback_on_the_weak_model_becomes_labelled_rows() {
        let feedback = r#"{"request_id":"r1","verdict":"bad","prompt":"How do refunds work?"}
{"request_id":"r2","verdict":"bad","prompt":"served by large after a fallback"}
{"request_id":"r3","score":0.9,"prompt":"Hi"}
{"request_id":"r3","score":0.9}
{"request_id":"gone","verdict":"good","prompt":"x"}
"#;
        let (rows, stats) = join(ACCESS, feedback, "small").unwrap();
        assert_eq!(
            rows,
            "{\"group\":\"faq\",\"label\":1,\"prompt\":\"How do refunds work?\"}\n{\"group\":\"default\",\"label\":0,\"prompt\":\"Hi\"}\n"
        );
        assert_eq!(
            stats,
            LabelStats {
                rows: 2,
                feedback: 5,
                unknown: 1,
                other_model: 1,
                no_prompt: 1
            }
        );
    }

    #[test]
    fn bad_lines_name_their_line_and_path() {
        let err = join(ACCESS, "{\"request_id\":\"r1\",\"score\":7}\n", "small").unwrap_err();
        assert_eq!(err, "feedback line 1: score: expected a number from 0 to 1");
        assert!(join("not json\n", "", "small")
            .unwrap_err()
            .starts_with("access log line 1:"));
    }
}
