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
        "api": decision.shape.api().name(),
        "model": first.map(|m| m.name.as_str()),
        "provider_model": first.map(|m| m.provider_model.as_str()),
        "cluster": first.map(|m| m.cluster.as_str()),
        "rule": decision.decided_by.label(policy),
        "task": decision.task.and_then(|t| policy.task(t)).map(|t| t.name.as_str()),
        "prompt_tokens": decision.prompt_tokens,
        "prompt_tokens_by_model": decision
            .chain_prompt_tokens
            .iter()
            .filter_map(|(id, n)| Some((policy.model(*id)?.name.clone(), json!(n))))
            .collect::<serde_json::Map<String, Value>>(),
        "estimated_cost_usd": decision.estimated_cost.map(|c| c.usd()),
        "fallbacks": chain.iter().skip(1).map(|m| m.name.as_str()).collect::<Vec<_>>(),
        "escalated": decision.escalated,
        "budget_clamped": decision.budget_clamped,
        "invalid_reason": decision.invalid_reason,
        "rejection": reject,
        "mode": match policy.mode { crate::policy::Mode::Enforce => "enforce", crate::policy::Mode::Shadow => "shadow" },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::{decide, Request};
    use crate::headers::Headers;
    use crate::request::ApiShape;

    const POLICY: &str = include_str!("../examples/policies/multi-api.json");

    fn explained(path: &str, body: &str) -> Value {
        let policy = Policy::from_json(POLICY).unwrap();
        let decision = decide(
            &policy,
            &Request {
                shape: ApiShape::from_path(path).unwrap(),
                path,
                headers: &Headers::new(),
                body: body.as_bytes(),
            },
        );
        explain(&policy, &decision)
    }

    #[test]
    fn every_api_shape_is_explained() {
        let chat = r#"{"model":"auto","messages":[{"role":"user","content":"hi"}]}"#;
        let cases = [
            (
                "/v1/chat/completions",
                chat,
                "openai_chat",
                "default",
                "gpt-4o-mini",
            ),
            (
                "/v1/completions",
                r#"{"prompt":"hi"}"#,
                "openai_chat",
                "default",
                "gpt-4o-mini",
            ),
            (
                "/v1/responses",
                include_str!("../examples/requests/shapes/responses.json"),
                "openai_responses",
                "tools-or-images",
                "gpt-4.1",
            ),
            (
                "/v1/messages",
                include_str!("../examples/requests/shapes/messages.json"),
                "anthropic_messages",
                "anthropic-heavy",
                "claude-sonnet",
            ),
            (
                "/v1/messages",
                include_str!("../examples/requests/shapes/messages-text.json"),
                "anthropic_messages",
                "anthropic",
                "claude-haiku",
            ),
        ];
        for (path, body, api, rule, model) in cases {
            let out = explained(path, body);
            assert_eq!(out["status"], "routed", "{path}: {out}");
            assert_eq!(out["api"], api, "{path}");
            assert_eq!(out["rule"], rule, "{path}");
            assert_eq!(out["model"], model, "{path}");
            assert!(out["prompt_tokens_by_model"][model].as_u64().unwrap() > 0);
        }
        // The Messages example carries a 1092x1092 image (1590 tokens) and a tool (346).
        let out = explained(
            "/v1/messages",
            include_str!("../examples/requests/shapes/messages.json"),
        );
        assert!(out["prompt_tokens"].as_u64().unwrap() > 1590 + 346);
        // A Messages request to a policy without Messages models is refused, explained.
        let policy = Policy::from_json(include_str!("../examples/policy.json")).unwrap();
        let decision = decide(
            &policy,
            &Request {
                shape: ApiShape::Messages,
                path: "/v1/messages",
                headers: &Headers::new(),
                body: include_str!("../examples/requests/shapes/messages-text.json").as_bytes(),
            },
        );
        let out = explain(&policy, &decision);
        assert_eq!(out["status"], "rejected");
        assert_eq!(out["rejection"]["reason"], "unsupported_api");
        assert_eq!(out["api"], "anthropic_messages");
    }
}
