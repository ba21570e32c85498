//! A decision as JSON, for `model-router explain` and audit logs.

use serde_json::{json, Value};

use crate::decision::{Decision, Outcome};
use crate::policy::Policy;

/// The decision as a JSON object, for audit logs (callers add fields).
pub fn audit(policy: &Policy, decision: &Decision) -> serde_json::Map<String, Value> {
    match explain(policy, decision) {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

pub fn explain(policy: &Policy, decision: &Decision) -> Value {
    let chain: Vec<&crate::policy::Model> = decision
        .chain()
        .iter()
        .filter_map(|id| policy.model(*id))
        .collect();
    let first = chain.first();
    let (status, reject) = match &decision.outcome {
        Outcome::Route { .. } => ("routed", None),
        Outcome::Passthrough { .. } => ("passthrough", None),
        Outcome::Reject { reason, message } => (
            "rejected",
            Some(json!({"status": reason.status(), "reason": reason.label(), "message": message})),
        ),
    };
    json!({
        "status": status,
        "model": first.map(|m| m.name.as_str()),
        "provider_model": first.map(|m| m.provider_model.as_str()),
        "cluster": first.map(|m| m.cluster.as_str()),
        "rule": decision.decided_by.label(policy),
        "task": decision.task.and_then(|t| policy.task(t)).map(|t| t.name.as_str()),
        "prompt_tokens": decision.prompt_tokens,
        "estimated_cost_usd": decision.estimated_cost.map(|c| c.usd()),
        "fallbacks": chain.iter().skip(1).map(|m| m.name.as_str()).collect::<Vec<_>>(),
        "escalated": decision.escalated,
        "budget_clamped": decision.budget_clamped,
        "invalid_reason": decision.invalid_reason,
        "rejection": reject,
        "mode": match policy.mode { crate::policy::Mode::Enforce => "enforce", crate::policy::Mode::Shadow => "shadow" },
    })
}
