//! A decision as JSON, for `model-router explain` and audit logs.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::decision::{Decision, Outcome};
use crate::policy::Policy;

/// The audit record of a routed request (the access log reads it from
/// filter state): the decision and the tenant, as a JSON object. Serialized
/// once per request; [`with_billing`] appends the billed usage to it.
pub fn audit_record(policy: &Policy, decision: &Decision, tenant: &str) -> String {
    to_json(&Explained::of(policy, decision, Some(tenant)))
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
/// the decision is not serialized a second time, and the billing fields
/// are written straight from typed values (this runs once per request).
pub fn with_billing(record: &str, billing: &Billing<'_>) -> String {
    let served = billing.served.map(|m| m.name.as_str());
    let fields = [
        ("attempts", billing.attempts.to_string()),
        ("served_model", to_json(&served)),
        ("billed", to_json(&billed(billing))),
    ];
    append_raw(record, &fields)
}

fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
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
    let fields: Vec<(&str, String)> = fields.iter().map(|(n, v)| (*n, v.to_string())).collect();
    append_raw(record, &fields)
}

/// [`append_fields`] with values already serialized as JSON.
fn append_raw(record: &str, fields: &[(&str, String)]) -> String {
    let Some(open) = record.trim_end().strip_suffix('}') else {
        return record.to_string();
    };
    let extra: usize = fields
        .iter()
        .map(|(n, v)| n.len().saturating_add(v.len()).saturating_add(4))
        .sum();
    let mut out = String::with_capacity(open.len().saturating_add(extra).saturating_add(1));
    out.push_str(open);
    let mut first = open.trim_end().ends_with('{');
    for (name, value) in fields {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(&to_json(name));
        out.push(':');
        out.push_str(value);
    }
    out.push('}');
    out
}

/// Scores to six decimals: enough for any threshold, stable in golden files.
pub(crate) fn round_score(p: f64) -> f64 {
    (p * 1e6).round() / 1e6
}

/// The audit record's `billed` object. Fields in name order: the order
/// these records had when they were built as `serde_json` maps.
#[derive(serde::Serialize)]
struct Billed<'a> {
    cache_write_1h_tokens: u64,
    cache_write_tokens: u64,
    cached_tokens: u64,
    completion_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cost_components_usd: Option<Lines>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cost_micro_usd: Option<u64>,
    cost_usd: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    price_tier: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prices_per_mtok: Option<Lines>,
    prompt_tokens: u64,
    usage_source: &'a str,
}

/// One value per invoice line.
#[derive(serde::Serialize)]
struct Lines {
    cache_write: f64,
    cache_write_1h: f64,
    cached_input: f64,
    input: f64,
    output: f64,
}

/// The billed usage and, for a served model, its invoice: the tier, the
/// prices applied (USD per million tokens) and each line's cost.
fn billed<'a>(billing: &Billing<'a>) -> Billed<'a> {
    let usage = billing.usage;
    let invoice = billing.served.map(|m| m.pricing.invoice(&usage));
    // pico-USD per token ÷ 1e6 = USD per million tokens.
    let per_mtok = |pico_per_token: u64| pico_per_token as f64 / 1e6;
    Billed {
        cache_write_1h_tokens: usage.cache_write_1h_tokens,
        cache_write_tokens: usage.cache_write_tokens,
        cached_tokens: usage.cached_tokens,
        completion_tokens: usage.completion_tokens,
        cost_components_usd: invoice.as_ref().map(|i| Lines {
            cache_write: i.cache_write.usd(),
            cache_write_1h: i.cache_write_1h.usd(),
            cached_input: i.cached_input.usd(),
            input: i.input.usd(),
            output: i.output.usd(),
        }),
        cost_micro_usd: invoice.as_ref().map(|i| i.total().micro_usd()),
        cost_usd: billing.served.map(|m| m.pricing.cost(&usage).usd()),
        price_tier: invoice.as_ref().map(|i| i.tier.label()),
        prices_per_mtok: invoice.as_ref().map(|i| Lines {
            cache_write: per_mtok(i.rates.cache_write),
            cache_write_1h: per_mtok(i.rates.cache_write_1h),
            cached_input: per_mtok(i.rates.cached_input),
            input: per_mtok(i.rates.input),
            output: per_mtok(i.rates.output),
        }),
        prompt_tokens: usage.prompt_tokens,
        usage_source: billing.source,
    }
}

/// A decision as JSON (`model-router explain`; the audit record adds `tenant`).
pub fn explain(policy: &Policy, decision: &Decision) -> Value {
    serde_json::to_value(Explained::of(policy, decision, None)).unwrap_or(Value::Null)
}

/// The fields of [`explain`], typed, so that the audit record of every
/// request is written in one pass without building a JSON map first.
/// Declared in name order: the order the records had as `serde_json` maps
/// (`tests::the_typed_record_is_the_map_it_replaced` holds it to that).
#[derive(serde::Serialize)]
struct Explained<'a> {
    api: &'static str,
    branch: Option<&'a str>,
    branch_by: Option<&'static str>,
    budget_clamped: bool,
    cluster: Option<&'a str>,
    cooling_down: Vec<CoolingDown<'a>>,
    escalated: bool,
    estimated_cost_usd: Option<f64>,
    fallbacks: Vec<&'a str>,
    invalid_reason: Option<&'a str>,
    mode: &'static str,
    model: Option<&'a str>,
    prompt_tokens: Option<u64>,
    prompt_tokens_by_model: BTreeMap<&'a str, u64>,
    provider_model: Option<&'a str>,
    rejection: Option<Rejection<'a>>,
    rule: &'a str,
    scores: BTreeMap<&'a str, f64>,
    status: &'static str,
    task: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant: Option<&'a str>,
}

#[derive(serde::Serialize)]
struct CoolingDown<'a> {
    model: &'a str,
    remaining_ms: u64,
    skipped: bool,
}

#[derive(serde::Serialize)]
struct Rejection<'a> {
    message: &'a str,
    reason: &'static str,
    status: u32,
}

impl<'a> Explained<'a> {
    fn of(policy: &'a Policy, decision: &'a Decision, tenant: Option<&'a str>) -> Explained<'a> {
        let mut chain = decision.chain().iter().filter_map(|id| policy.model(*id));
        let first = chain.next();
        let (status, rejection) = match &decision.outcome {
            Outcome::Route { .. } => ("routed", None),
            Outcome::Passthrough { .. } => ("passthrough", None),
            Outcome::Reject { reason, message } => (
                "rejected",
                Some(Rejection {
                    message,
                    reason: reason.label(),
                    status: reason.status(),
                }),
            ),
        };
        Explained {
            api: decision.shape.api().name(),
            branch: decision.branch_label(policy),
            branch_by: decision.split.map(|s| match s.by {
                crate::policy::split::ChosenBy::Key => "key",
                crate::policy::split::ChosenBy::Random => "random",
            }),
            budget_clamped: decision.budget_clamped,
            cluster: first.map(|m| m.cluster.as_str()),
            cooling_down: decision
                .cooling
                .iter()
                .filter_map(|c| {
                    Some(CoolingDown {
                        model: policy.model(c.model)?.name.as_str(),
                        remaining_ms: c.remaining_ms,
                        skipped: c.skipped,
                    })
                })
                .collect(),
            escalated: decision.escalated,
            estimated_cost_usd: decision.estimated_cost.map(|c| c.usd()),
            fallbacks: chain.map(|m| m.name.as_str()).collect(),
            invalid_reason: decision.invalid_reason.as_deref(),
            mode: match policy.mode {
                crate::policy::Mode::Enforce => "enforce",
                crate::policy::Mode::Shadow => "shadow",
            },
            model: first.map(|m| m.name.as_str()),
            prompt_tokens: decision.prompt_tokens,
            prompt_tokens_by_model: decision
                .chain_prompt_tokens
                .iter()
                .filter_map(|(id, n)| Some((policy.model(*id)?.name.as_str(), *n)))
                .collect(),
            provider_model: first.map(|m| m.provider_model.as_str()),
            rejection,
            rule: decision.decided_by.label(policy),
            scores: decision
                .scores
                .iter()
                .filter_map(|(id, p)| {
                    Some((policy.classifiers.get(id.0)?.name.as_str(), round_score(*p)))
                })
                .collect(),
            status,
            task: decision
                .task
                .and_then(|t| policy.task(t))
                .map(|t| t.name.as_str()),
            tenant,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The map-building `explain` the typed record replaced: the reference.
    pub(crate) fn explain_as_map(policy: &Policy, decision: &Decision) -> Value {
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
                Some(
                    json!({"status": reason.status(), "reason": reason.label(), "message": message}),
                ),
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

    /// The old audit record: the map with `tenant` inserted, printed.
    pub(crate) fn audit_record_as_map(
        policy: &Policy,
        decision: &Decision,
        tenant: &str,
    ) -> String {
        let mut record = match explain_as_map(policy, decision) {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        record.insert("tenant".into(), tenant.into());
        Value::Object(record).to_string()
    }

    /// Every decision of `policy` over a spread of bodies and split keys.
    pub(crate) fn decisions(policy: &Policy) -> Vec<Decision> {
        let bodies = [
            r#"{"model":"auto","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
            r#"{"model":"auto","messages":[{"role":"user","content":"write a python function to sort a list"}]}"#,
            r#"{"model":"gpt-4o","max_tokens":100000,"messages":[{"role":"user","content":"summarise"}]}"#,
            r#"{"messages":"not a list"}"#,
            "not json",
        ];
        let mut out = Vec::new();
        for body in bodies {
            for session in ["a", "b", "c"] {
                let mut headers = Headers::new();
                headers.insert("x-session-id", session);
                out.push(decide(
                    policy,
                    &Request {
                        shape: ApiShape::ChatCompletions,
                        path: "/v1/chat/completions",
                        headers: &headers,
                        body: body.as_bytes(),
                    },
                ));
            }
        }
        out
    }

    #[test]
    fn the_typed_record_is_the_map_it_replaced() {
        let policies = [
            include_str!("../../../examples/policies/deployments.json"),
            include_str!("../../../examples/policies/multi-api.json"),
            include_str!("../../../examples/policies/variants.json"),
            include_str!("../../../examples/policies/catalog.json"),
            include_str!("../../../examples/policy.json"),
        ];
        let mut rejected = 0;
        for (i, text) in policies.iter().enumerate() {
            let mut json: Value = serde_json::from_str(text).unwrap();
            if i % 2 == 0 {
                json["on_invalid_request"] = json!("reject");
            }
            let policy = Policy::from_json(&json.to_string()).unwrap();
            for d in decisions(&policy) {
                assert_eq!(explain(&policy, &d), explain_as_map(&policy, &d));
                let typed = audit_record(&policy, &d, "team-a");
                assert_eq!(typed, audit_record_as_map(&policy, &d, "team-a"));
                rejected += usize::from(typed.contains(r#""status":"rejected""#));
            }
        }
        assert!(rejected > 0, "the cases include rejections");
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
        // Byte for byte what a JSON map would print: keys in name order.
        assert!(
            billed.ends_with(&format!("\"billed\":{}}}", expected["billed"])),
            "{billed}"
        );
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
