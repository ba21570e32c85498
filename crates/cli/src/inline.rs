//! The CLI's half of `classifiers.NAME.artifact`: the filter cannot read
//! files, so every command that loads a policy (`check`, `explain`, `eval`,
//! `envoy`) first replaces each `artifact` path (relative to the policy
//! file, or absolute) with the artifact itself under `inline`. Only the
//! `classifiers` member is rewritten; the rest of the policy text is kept
//! byte for byte (its order matters).

use std::path::Path;

use serde_json::Value;

use model_router_core::request::top_level::TopLevel;

/// `policy_json` with every classifier artifact inlined; `policy_dir` is
/// the directory relative paths start from. Errors name the JSON path.
pub fn inline_artifacts(policy_json: &str, policy_dir: &Path) -> Result<String, String> {
    let Ok(top) = TopLevel::parse(policy_json) else {
        return Ok(policy_json.to_string()); // not an object: compiling will say why
    };
    let Some(span) = top.spans(policy_json, "classifiers").pop() else {
        return Ok(policy_json.to_string());
    };
    let Some(raw) = policy_json.get(span.clone()) else {
        return Ok(policy_json.to_string());
    };
    let mut value: Value = serde_json::from_str(raw).map_err(|e| format!("classifiers: {e}"))?;
    let mut changed = false;
    let mut resolve = |path: String, entry: &mut Value| -> Result<(), String> {
        let Some(obj) = entry.as_object_mut() else {
            return Ok(());
        };
        let Some(Value::String(file)) = obj.get("artifact").cloned() else {
            return Ok(());
        };
        let full = policy_dir.join(&file);
        let text = std::fs::read_to_string(&full)
            .map_err(|e| format!("{path}.artifact: cannot read {}: {e}", full.display()))?;
        let artifact: Value = serde_json::from_str(&text)
            .map_err(|e| format!("{path}.artifact: {} is not JSON: {e}", full.display()))?;
        obj.remove("artifact");
        obj.insert("inline".into(), artifact);
        changed = true;
        Ok(())
    };
    match &mut value {
        Value::Object(map) => {
            for (name, entry) in map.iter_mut() {
                resolve(format!("classifiers.{name}"), entry)?;
            }
        }
        Value::Array(list) => {
            for (i, entry) in list.iter_mut().enumerate() {
                resolve(format!("classifiers[{i}]"), entry)?;
            }
        }
        _ => {}
    }
    if !changed {
        return Ok(policy_json.to_string());
    }
    let mut out = String::with_capacity(policy_json.len());
    out.push_str(policy_json.get(..span.start).unwrap_or_default());
    out.push_str(&value.to_string());
    out.push_str(policy_json.get(span.end..).unwrap_or_default());
    Ok(out)
}
