//! A decision as JSON, for `model-router explain` and audit logs.

use serde_json::{json, Value};

use crate::decision::{Decision, Outcome};
use crate::policy::Policy;

/// The audit record of a routed request (the access log reads it from
/// filter state): the decision and the tenant, as a JSON object. Serialized
/// once per request; [`with_billing`] appends the billed usage to it.
pub fn audit_record(policy: &Policy, decision: &Decision, tenant: &str) -> String {
    let mut record = match explain(policy, decision) {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    record.insert("tenant".into(), tenant.into());
    Value::Object(record).to_string()
}

/// What was billed for a request, for its audit record.
pub struct Billing<'a> {
    pub attempts: u32,
    /// The model that answered (the chain's entry for the last attempt).
    pub served: Option<&'a crate::policy::Model>,
    pub usage: crate::cost::Usage,
    /// `reported` by the provider, `estimated` from counted text, or `missing`.
    pub source: &'static str,
}

/// `record` (from [`audit_record`]) with the billing fields appended:
/// the decision is not serialized a second time.
pub fn with_billing(record: &str, billing: &Billing<'_>) -> String {
    let fields = [
        ("attempts", json!(billing.attempts)),
        (
            "served_model",
            json!(billing.served.map(|m| m.name.as_str())),
        ),
        ("billed", billed(billing)),
    ];
    append_fields(record, &fields)
}

/// `record` with the translation of the first attempt appended: the APIs
/// and the request fields dropped for want of a counterpart.
pub fn with_translation(record: &str, note: &crate::translation::TranslationNote) -> String {
    let value = json!({"from": note.from.name(), "to": note.to.name(), "dropped": note.dropped});
    append_fields(record, &[("translation", value)])
}

/// What the first attempt sends upstream (`model-router explain --show-body`):
/// the path, the body (translated when the first model does not speak the
/// request's API) and the translation, or the local reply.
pub fn upstream_request(policy: &Policy, decision: &Decision, path: &str, body: &[u8]) -> Value {
    let (todo, note) = crate::translation::request_actions(policy, decision, path, body);
    if let Some(reply) = &todo.reply {
        let body = serde_json::from_str::<Value>(&reply.body)
            .unwrap_or_else(|_| reply.body.clone().into());
        return json!({"reply": {"status": reply.status, "body": body}});
    }
    let sent = todo.body.as_deref().unwrap_or(body);
    let path = todo
        .set_headers
        .iter()
        .find(|(n, _)| n == ":path")
        .map_or(path, |(_, v)| v.as_str());
    json!({
        "path": path,
        "body": serde_json::from_slice::<Value>(sent).unwrap_or_else(|_| String::from_utf8_lossy(sent).into()),
        "translation": note.map(|n| json!({"from": n.from.name(), "to": n.to.name(), "dropped": n.dropped})),
    })
}

/// `record` (a JSON object) with `fields` appended, without parsing it again.
pub fn append_fields(record: &str, fields: &[(&str, Value)]) -> String {
    let Some(open) = record.trim_end().strip_suffix('}') else {
        return record.to_string();
    };
    let mut out = String::with_capacity(record.len().saturating_add(256));
    out.push_str(open);
    let mut first = open.trim_end().ends_with('{');
    for (name, value) in fields {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(&Value::from(*name).to_string());
        out.push(':');
        out.push_str(&value.to_string());
    }
    out.push('}');
    out
}

/// Scores to six decimals: enough for any threshold, stable in golden files.
fn round_score(p: f64) -> f64 {
    (p * 1e6).round() / 1e6
}

/// The billed usage and, for a served model, its invoice: the tier, the
/// prices applied (USD per million tokens) and each line's cost.
fn billed(billing: &Billing<'_>) -> Value {
    let usage = billing.usage;
    let mut billed = json!({
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "cached_tokens": usage.cached_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
        "cache_write_1h_tokens": usage.cache_write_1h_tokens,
        "usage_source": billing.source,
        "cost_usd": billing.served.map(|m| m.pricing.cost(&usage).usd()),
    });
    if let (Some(model), Value::Object(map)) = (billing.served, &mut billed) {
        let invoice = model.pricing.invoice(&usage);
        // pico-USD per token ÷ 1e6 = USD per million tokens.
        let per_mtok = |pico_per_token: u64| pico_per_token as f64 / 1e6;
        let rates = invoice.rates;
        map.insert("cost_micro_usd".into(), json!(invoice.total().micro_usd()));
        map.insert("price_tier".into(), json!(invoice.tier.label()));
        map.insert(
            "prices_per_mtok".into(),
            json!({
                "input": per_mtok(rates.input),
                "cached_input": per_mtok(rates.cached_input),
                "cache_write": per_mtok(rates.cache_write),
                "cache_write_1h": per_mtok(rates.cache_write_1h),
                "output": per_mtok(rates.output),
            }),
        );
        map.insert(
            "cost_components_usd".into(),
            json!({
                "input": invoice.input.usd(),
                "cached_input": invoice.cached_input.usd(),
                "cache_write": invoice.cache_write.usd(),
                "cache_write_1h": invoice.cache_write_1h.usd(),
                "output": invoice.output.usd(),
            }),
        );
    }
    billed
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
        "branch": decision.branch_label(policy),
        "branch_by": decision.split.map(|s| match s.by {
            crate::policy::split::ChosenBy::Key => "key",
            crate::policy::split::ChosenBy::Random => "random",
        }),
        "cooling_down": decision
            .cooling
            .iter()
            .filter_map(|c| Some(json!({
                "model": policy.model(c.model)?.name,
                "remaining_ms": c.remaining_ms,
                "skipped": c.skipped,
            })))
            .collect::<Vec<_>>(),
        "scores": decision
            .scores
            .iter()
            .filter_map(|(id, p)| Some((policy.classifiers.get(id.0)?.name.clone(), json!(round_score(*p)))))
            .collect::<serde_json::Map<String, Value>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::{decide, Request};
    use crate::headers::Headers;
    use crate::request::ApiShape;

    const POLICY: &str = include_str!("../../../examples/policies/multi-api.json");

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
    fn billing_is_appended_to_the_audit_record() {
        let policy = Policy::from_json(POLICY).unwrap();
        let path = "/v1/chat/completions";
        let decision = decide(
            &policy,
            &Request {
                shape: ApiShape::ChatCompletions,
                path,
                headers: &Headers::new(),
                body: br#"{"model":"auto","messages":[{"role":"user","content":"hi"}]}"#,
            },
        );
        let record = audit_record(&policy, &decision, "team-a");
        let served = decision.chain().first().and_then(|id| policy.model(*id));
        let usage = crate::cost::Usage {
            prompt_tokens: 1_000_000,
            completion_tokens: 0,
            cached_tokens: 0,
            ..Default::default()
        };
        let billed = with_billing(
            &record,
            &Billing {
                attempts: 2,
                served,
                usage,
                source: "reported",
            },
        );
        let mut expected: Value = serde_json::from_str(&record).unwrap();
        expected["tenant"] = json!("team-a");
        expected["attempts"] = json!(2);
        expected["served_model"] = json!(served.unwrap().name);
        // gpt-4o-mini: 1M prompt tokens × $0.15.
        expected["billed"] = json!({
            "prompt_tokens": 1_000_000, "completion_tokens": 0, "cached_tokens": 0,
            "cache_write_tokens": 0, "cache_write_1h_tokens": 0,
            "usage_source": "reported",
            "cost_usd": 0.15,
            "cost_micro_usd": 150_000,
            "price_tier": "base",
            "prices_per_mtok": {"input": 0.15, "cached_input": 0.075, "cache_write": 0.15,
                                "cache_write_1h": 0.15, "output": 0.6},
            "cost_components_usd": {"input": 0.15, "cached_input": 0.0, "cache_write": 0.0,
                                    "cache_write_1h": 0.0, "output": 0.0},
        });
        assert_eq!(serde_json::from_str::<Value>(&billed).unwrap(), expected);
        assert_eq!(expected["status"], "routed");
        // An empty record gets no leading comma.
        let empty: Value = serde_json::from_str(&with_billing(
            "{}",
            &Billing {
                attempts: 1,
                served: None,
                usage,
                source: "missing",
            },
        ))
        .unwrap();
        assert_eq!(empty["attempts"], 1);
    }

    #[test]
    fn every_api_shape_is_explained() {
        let chat = r#"{"model":"auto","messages":[{"role":"user","content":"hi"}]}"#;
        struct Case {
            path: &'static str,
            body: &'static str,
            api: &'static str,
            rule: &'static str,
            model: &'static str,
        }
        let cases = [
            Case {
                path: "/v1/chat/completions",
                body: chat,
                api: "openai_chat",
                rule: "default",
                model: "gpt-4o-mini",
            },
            Case {
                path: "/v1/completions",
                body: r#"{"prompt":"hi"}"#,
                api: "openai_chat",
                rule: "default",
                model: "gpt-4o-mini",
            },
            Case {
                path: "/v1/responses",
                body: include_str!("../../../examples/requests/shapes/responses.json"),
                api: "openai_responses",
                rule: "tools-or-images",
                model: "gpt-4.1",
            },
            Case {
                path: "/v1/messages",
                body: include_str!("../../../examples/requests/shapes/messages.json"),
                api: "anthropic_messages",
                rule: "anthropic-heavy",
                model: "claude-sonnet",
            },
            Case {
                path: "/v1/messages",
                body: include_str!("../../../examples/requests/shapes/messages-text.json"),
                api: "anthropic_messages",
                rule: "anthropic",
                model: "claude-haiku",
            },
        ];
        for Case {
            path,
            body,
            api,
            rule,
            model,
        } in cases
        {
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
            include_str!("../../../examples/requests/shapes/messages.json"),
        );
        assert!(out["prompt_tokens"].as_u64().unwrap() > 1590 + 346);
        // A Messages request to a policy without Messages models, translation
        // off, is refused, explained (with translation it is routed).
        let example = include_str!("../../../examples/policy.json");
        let translating = Policy::from_json(example).unwrap();
        let policy =
            Policy::from_json(&example.replacen('{', r#"{"translate":false,"#, 1)).unwrap();
        let messages = include_str!("../../../examples/requests/shapes/messages-text.json");
        let request = Request {
            shape: ApiShape::Messages,
            path: "/v1/messages",
            headers: &Headers::new(),
            body: messages.as_bytes(),
        };
        assert_eq!(
            explain(&translating, &decide(&translating, &request))["status"],
            "routed"
        );
        let upstream = upstream_request(
            &translating,
            &decide(&translating, &request),
            "/v1/messages",
            messages.as_bytes(),
        );
        assert_eq!(upstream["path"], "/v1/chat/completions");
        assert_eq!(upstream["translation"]["to"], "openai_chat");
        let decision = decide(
            &policy,
            &Request {
                shape: ApiShape::Messages,
                path: "/v1/messages",
                headers: &Headers::new(),
                body: include_str!("../../../examples/requests/shapes/messages-text.json")
                    .as_bytes(),
            },
        );
        let out = explain(&policy, &decision);
        assert_eq!(out["status"], "rejected");
        assert_eq!(out["rejection"]["reason"], "unsupported_api");
        assert_eq!(out["api"], "anthropic_messages");
    }

    #[test]
    fn the_upstream_body_shows_a_variants_fields() {
        let policy =
            Policy::from_json(include_str!("../../../examples/policies/variants.json")).unwrap();
        let path = "/v1/chat/completions";
        let body = br#"{"model":"auto","messages":[{"role":"user","content":"hi"}]}"#;
        let headers = Headers::from_pairs(&[("x-latency", "tolerant")]);
        let decision = decide(
            &policy,
            &Request {
                shape: ApiShape::ChatCompletions,
                path,
                headers: &headers,
                body,
            },
        );
        let sent = upstream_request(&policy, &decision, path, body);
        assert_eq!(sent["body"]["model"], "gpt-5");
        assert_eq!(sent["body"]["service_tier"], "flex");
        assert_eq!(explain(&policy, &decision)["model"], "gpt-5-flex");
    }
}
