//! Labeled requests (JSONL) for `train` and `eval`. One row per line:
//! `{"prompt": TEXT | "request": BODY, "path"?: PATH, "label"?: 0|1,
//! "scores"?: {MODEL: quality}, "group"?: NAME, "output_tokens"?: N}`.
//! `label` is 1 when the strong model is needed (the weak one fails); a row
//! with `scores` instead gets its label from the weak model's score and a
//! pass mark. `eval` reads `scores` to know each model's quality.

use std::collections::BTreeMap;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use model_router_core::request::{self, RequestError, RequestFacts};

const CHAT_PATH: &str = "/v1/chat/completions";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRow {
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    request: Option<serde_json::Value>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    label: Option<serde_json::Value>,
    #[serde(default)]
    scores: Option<BTreeMap<String, f64>>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    output_tokens: Option<u64>,
}

/// How rows without a `label` get one.
#[derive(Debug, Clone, Default)]
pub struct LabelOptions {
    /// The weak model's key in `scores`.
    pub weak: Option<String>,
    /// A score below this is a failure (default 0.5).
    pub pass_mark: Option<f64>,
    /// `--label strong-wins`: the strong model's key in `scores`; the label
    /// is 1 only when the weak model fails *and* this one passes — where
    /// sending to the strong model gains quality, not where both fail.
    pub strong_wins: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Row {
    /// The request body (a `prompt` becomes one user message).
    pub body: Vec<u8>,
    pub path: String,
    /// 1.0 when the weak model fails (NaN when unknown: eval-only rows).
    pub label: f64,
    pub group: Option<String>,
    pub scores: BTreeMap<String, f64>,
    pub output_tokens: Option<u64>,
}

impl Row {
    pub fn facts(&self) -> Result<RequestFacts, RequestError> {
        request::parse(&self.path, &self.body)
    }
}

pub struct Rows {
    pub rows: Vec<Row>,
    /// SHA-256 of the file's bytes, recorded in the artifact.
    pub sha256: String,
}

impl Rows {
    pub fn parse(text: &str, labels: &LabelOptions) -> Result<Rows, String> {
        let sha256 = Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut rows = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let at = i.saturating_add(1);
            let raw: RawRow = serde_json::from_str(line).map_err(|e| format!("line {at}: {e}"))?;
            rows.push(row(raw, labels).map_err(|e| format!("line {at}: {e}"))?);
        }
        Ok(Rows { rows, sha256 })
    }
}

fn row(raw: RawRow, labels: &LabelOptions) -> Result<Row, String> {
    let body = match (raw.prompt, raw.request) {
        (Some(prompt), None) => {
            serde_json::json!({"messages": [{"role": "user", "content": prompt}]}).to_string()
        }
        (None, Some(request)) => request.to_string(),
        _ => return Err("set exactly one of prompt or request".into()),
    };
    let scores = raw.scores.unwrap_or_default();
    let label = match raw.label {
        Some(serde_json::Value::Bool(b)) => f64::from(u8::from(b)),
        Some(serde_json::Value::Number(n)) if n.as_f64() == Some(0.0) => 0.0,
        Some(serde_json::Value::Number(n)) if n.as_f64() == Some(1.0) => 1.0,
        Some(other) => return Err(format!("label must be 0, 1, true or false, got {other}")),
        None => match &labels.weak {
            Some(weak) => {
                let score = scores
                    .get(weak)
                    .ok_or_else(|| format!("no label and no score for the weak model {weak:?}"))?;
                let pass = labels.pass_mark.unwrap_or(0.5);
                let strong_passes = match &labels.strong_wins {
                    Some(strong) => {
                        *scores.get(strong).ok_or_else(|| {
                            format!("no label and no score for the strong model {strong:?}")
                        })? >= pass
                    }
                    None => true,
                };
                f64::from(u8::from(*score < pass && strong_passes))
            }
            None => f64::NAN,
        },
    };
    Ok(Row {
        body: body.into_bytes(),
        path: raw.path.unwrap_or_else(|| CHAT_PATH.to_string()),
        label,
        group: raw.group,
        scores,
        output_tokens: raw.output_tokens,
    })
}

/// RouteLLM's MMLU layout (`mmlu_<subject>.csv`: `prompt`, then one
/// correctness column per model) as rows: the subject is the group, each
/// model's correctness (1/0) its score. Prompts in `contaminated` are dropped.
pub fn routellm_rows(
    files: &[(String, String)],
    contaminated: &std::collections::BTreeSet<String>,
) -> Result<(Vec<serde_json::Value>, usize), String> {
    let mut out = Vec::new();
    let mut dropped = 0usize;
    for (name, text) in files {
        let subject = name
            .trim_end_matches(".csv")
            .trim_start_matches("mmlu_")
            .to_string();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let headers = reader
            .headers()
            .map_err(|e| format!("{name}: {e}"))?
            .clone();
        let models: Vec<String> = headers.iter().skip(1).map(str::to_string).collect();
        if headers.get(0) != Some("prompt") || models.is_empty() {
            return Err(format!("{name}: expected columns prompt, MODEL..."));
        }
        for record in reader.records() {
            let record = record.map_err(|e| format!("{name}: {e}"))?;
            let prompt = record.get(0).unwrap_or_default().to_string();
            if contaminated.contains(&prompt) {
                dropped = dropped.saturating_add(1);
                continue;
            }
            let mut scores = serde_json::Map::new();
            for (model, value) in models.iter().zip(record.iter().skip(1)) {
                let v = match value.trim() {
                    "True" | "true" | "1" => 1,
                    "False" | "false" | "0" => 0,
                    other => return Err(format!("{name}: {model}: not a boolean: {other:?}")),
                };
                scores.insert(model.clone(), v.into());
            }
            out.push(serde_json::json!({"prompt": prompt, "group": subject, "scores": scores}));
        }
    }
    Ok((out, dropped))
}
