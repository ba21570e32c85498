//! What the filter does with a decision, as data: headers to set, a new
//! body, or a local reply. The wasm glue only carries these out, so all of
//! the behaviour is tested natively.

use crate::decision::{Decision, Outcome};
use crate::headers::{
    Headers, ATTEMPTS_HEADER, CHAIN_STATE, ENVOY_CONTROL_HEADERS, MAX_RETRIES_HEADER, MODEL_HEADER,
    OWN_PREFIX, PROMPT_TOKENS_HEADER, RULE_HEADER, TRY_STATE_PREFIX,
};
use crate::policy::{Mode, ModelId, Policy, StreamUsage};
use crate::request;
use crate::rewrite;

/// An answer the router gives itself instead of forwarding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u32,
    /// OpenAI-style error JSON.
    pub body: String,
}

/// Changes to make to the request before it is routed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestActions {
    /// Replacement body (its length becomes the new `content-length`).
    pub body: Option<Vec<u8>>,
    pub set_headers: Vec<(String, String)>,
    /// Filter state to set (name without Envoy's `wasm.` prefix, value).
    pub filter_state: Vec<(String, String)>,
    pub reply: Option<LocalReply>,
    /// The route must be chosen again because a header it reads changed.
    pub clear_route_cache: bool,
}

/// Headers a client sent that only the router may set: its own
/// `x-model-router-*` headers (except the ones the policy reads as inputs,
/// such as the budget header), the cluster header whatever its name, and
/// Envoy's retry-control headers.
pub fn forged_headers(policy: &Policy, headers: &Headers) -> Vec<String> {
    let inputs = [
        policy.headers.budget.as_deref(),
        policy.headers.task.as_deref(),
        policy.headers.tenant.as_deref(),
    ];
    let mut names: Vec<String> = headers
        .iter()
        .map(|(name, _)| name)
        .filter(|name| {
            (name.starts_with(OWN_PREFIX) && !inputs.contains(&Some(*name)))
                || *name == policy.headers.cluster
                || ENVOY_CONTROL_HEADERS.contains(name)
        })
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    names
}

pub fn request_actions(policy: &Policy, decision: &Decision, body: &[u8]) -> RequestActions {
    let mut actions = RequestActions::default();
    match &decision.outcome {
        Outcome::Reject { reason, message } => {
            actions.reply = Some(LocalReply {
                status: reason.status(),
                body: error_body(message, reason.code()),
            });
        }
        _ if policy.mode == Mode::Shadow => {}
        Outcome::Passthrough { chain } => {
            // The body is unreadable, so it cannot be rewritten for a fallback: one attempt.
            if let Some(model) = chain.first().and_then(|id| policy.model(*id)) {
                send_to(&mut actions, policy, &[model.cluster.as_str()]);
            }
        }
        Outcome::Route { chain } => {
            let models: Vec<&crate::policy::Model> =
                chain.iter().filter_map(|id| policy.model(*id)).collect();
            let Some(first) = models.first() else {
                return actions;
            };
            let routed = routed_body(policy, decision, first, body);
            // The first model's variant fields; a translated model's are set
            // after translation (`translation::request_actions`).
            actions.body = Some(first.variant.apply(&routed).unwrap_or(routed));
            let clusters: Vec<&str> = models.iter().map(|m| m.cluster.as_str()).collect();
            send_to(&mut actions, policy, &clusters);
            actions
                .filter_state
                .push((CHAIN_STATE.to_string(), plan(policy, chain)));
        }
    }
    actions
}

/// The body as the router sends it before any model's variant: `first`'s
/// `provider_model` written in and, for streams, a usage chunk asked for.
/// Retries start from this body too (kept in filter state when the chain
/// has variants), so no attempt inherits another's variant fields.
pub fn routed_body(
    policy: &Policy,
    decision: &Decision,
    first: &crate::policy::Model,
    body: &[u8],
) -> Vec<u8> {
    let mut edits = rewrite::Edits::default();
    edits.set_member("model", &decision.model_spans, &first.provider_model_json);
    if policy.stream_usage == StreamUsage::Inject
        && decision.stream
        && !decision.stream_include_usage
    {
        // Without it a stream carries no usage and cost can only be estimated.
        let span = decision.stream_options_span.clone();
        let current = span
            .as_ref()
            .and_then(|r| body.get(r.clone()))
            .and_then(|b| std::str::from_utf8(b).ok());
        let spans: Vec<std::ops::Range<usize>> = span.into_iter().collect();
        edits.set_member(
            "stream_options",
            &spans,
            &rewrite::stream_options_with_usage(current),
        );
    }
    edits.apply(body)
}

/// Routes attempt N to `clusters[N-1]`: the cluster header for routes that
/// read it, one filter-state slot per attempt for the generated route's
/// matcher, and a retry budget that ends with the chain.
fn send_to(actions: &mut RequestActions, policy: &Policy, clusters: &[&str]) {
    let Some(first) = clusters.first() else {
        return;
    };
    actions
        .set_headers
        .push((policy.headers.cluster.clone(), first.to_string()));
    actions.set_headers.push((
        MAX_RETRIES_HEADER.to_string(),
        clusters.len().saturating_sub(1).to_string(),
    ));
    for (i, cluster) in clusters.iter().enumerate() {
        actions.filter_state.push((
            format!("{TRY_STATE_PREFIX}{}", i.saturating_add(1)),
            cluster.to_string(),
        ));
    }
    actions.clear_route_cache = true;
}

/// The chain's model names, comma-separated (names are
/// validated to be header-safe and comma-free).
pub fn plan(policy: &Policy, chain: &[ModelId]) -> String {
    chain
        .iter()
        .filter_map(|id| policy.model(*id))
        .map(|m| m.name.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// The model of attempt `attempt` (1-based) in a plan header value.
pub fn planned_model(policy: &Policy, plan: &str, attempt: u32) -> Option<ModelId> {
    let index = usize::try_from(attempt.checked_sub(1)?).ok()?;
    let name = plan.split(',').nth(index)?;
    policy.model_by_name(name.trim())
}

/// The body for retry attempt `attempt` (≥ 2) from `body` (the client's
/// routed body, or the replayed one when no model of the chain has a
/// variant): the model of that attempt and its variant fields written in.
/// None when nothing needs to change or the body is unreadable.
pub fn attempt_body(policy: &Policy, plan: &str, attempt: u32, body: &[u8]) -> Option<Vec<u8>> {
    let model = policy.model(planned_model(policy, plan, attempt)?)?;
    let spans = request::model_spans(body).ok()?;
    let written = rewrite::set_model(body, &spans, &model.provider_model_json);
    Some(model.variant.apply(&written).unwrap_or(written))
}

/// Response headers describing the decision. `attempts` is Envoy's attempt
/// count for the answer the client gets (1 without retries).
pub fn response_headers(
    policy: &Policy,
    decision: &Decision,
    attempts: u32,
) -> Vec<(&'static str, String)> {
    if !policy.response_headers {
        return Vec::new();
    }
    let mut headers = vec![(RULE_HEADER, decision.decided_by.label(policy).to_string())];
    if let Some(model) = served_model(decision, attempts).and_then(|id| policy.model(id)) {
        headers.push((MODEL_HEADER, model.name.clone()));
        headers.push((ATTEMPTS_HEADER, attempts.to_string()));
    }
    if let Some(tokens) = decision.prompt_tokens {
        headers.push((PROMPT_TOKENS_HEADER, tokens.to_string()));
    }
    headers
}

/// The model that answered: the chain's entry for the final attempt.
pub fn served_model(decision: &Decision, attempts: u32) -> Option<ModelId> {
    let index = usize::try_from(attempts.saturating_sub(1)).ok()?;
    let chain = decision.chain();
    chain.get(index).or(chain.last()).copied()
}

/// An OpenAI-style error body.
pub fn error_body(message: &str, code: &str) -> String {
    serde_json::json!({
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": null,
            "code": code,
        }
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::{decide, Request};
    use crate::request::ApiShape;

    const EXAMPLE: &str = include_str!("../../../examples/policy.json");

    fn run(policy: &Policy, body: &str, headers: &Headers) -> (Decision, RequestActions) {
        let d = decide(
            policy,
            &Request {
                shape: ApiShape::ChatCompletions,
                path: "/v1/chat/completions",
                headers,
                body: body.as_bytes(),
            },
        );
        let a = request_actions(policy, &d, body.as_bytes());
        (d, a)
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn routed_requests_get_body_cluster_and_plan() {
        let p = Policy::from_json(EXAMPLE).unwrap();
        let body = r#"{"model":"auto","messages":[{"role":"user","content":"What is the refund policy?"}],"temperature":0.20}"#;
        let (_, a) = run(&p, body, &Headers::new());
        assert_eq!(
            String::from_utf8(a.body.unwrap()).unwrap(),
            r#"{"model":"meta-llama/Llama-3.1-8B-Instruct","messages":[{"role":"user","content":"What is the refund policy?"}],"temperature":0.20}"#
        );
        assert_eq!(
            a.set_headers,
            pairs(&[
                ("x-model-router-cluster", "local"),
                ("x-envoy-max-retries", "1")
            ])
        );
        assert_eq!(
            a.filter_state,
            pairs(&[
                ("model_router_try_1", "local"),
                ("model_router_try_2", "openai"),
                ("model_router_chain", "llama-3.1-8b,gpt-4o-mini"),
            ])
        );
        assert!(a.clear_route_cache && a.reply.is_none());
    }

    #[test]
    fn retries_rewrite_for_their_model() {
        let p = Policy::from_json(EXAMPLE).unwrap();
        let body = br#"{"model":"meta-llama/Llama-3.1-8B-Instruct","messages":[]}"#;
        let out = attempt_body(&p, "llama-3.1-8b,gpt-4o-mini", 2, body).unwrap();
        assert_eq!(out, br#"{"model":"gpt-4o-mini","messages":[]}"#.to_vec());
        assert_eq!(attempt_body(&p, "llama-3.1-8b,gpt-4o-mini", 3, body), None);
        assert_eq!(attempt_body(&p, "nope", 1, body), None);
        assert_eq!(attempt_body(&p, "gpt-4o", 1, b"not json"), None);
    }

    #[test]
    fn streams_get_a_usage_chunk_unless_the_policy_says_off() {
        let p = Policy::from_json(EXAMPLE).unwrap();
        let body = r#"{"model":"auto","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
        let (_, a) = run(&p, body, &Headers::new());
        let sent: serde_json::Value = serde_json::from_slice(&a.body.unwrap()).unwrap();
        assert_eq!(sent["stream_options"]["include_usage"], true);
        let asked = r#"{"model":"auto","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}"#;
        let (_, a) = run(&p, asked, &Headers::new());
        assert_eq!(
            String::from_utf8(a.body.unwrap()).unwrap(),
            asked.replace("\"auto\"", "\"gpt-4o-mini\"")
        );
        let p = Policy::from_json(&EXAMPLE.replacen('{', r#"{"stream_usage":"off","#, 1)).unwrap();
        let (_, a) = run(&p, body, &Headers::new());
        assert!(!String::from_utf8(a.body.unwrap())
            .unwrap()
            .contains("stream_options"));
    }

    #[test]
    fn shadow_mode_changes_nothing() {
        let p = Policy::from_json(&EXAMPLE.replacen('{', r#"{"mode":"shadow","#, 1)).unwrap();
        let (d, a) = run(
            &p,
            r#"{"model":"auto","messages":[{"role":"user","content":"hi"}]}"#,
            &Headers::new(),
        );
        assert!(matches!(d.outcome, Outcome::Route { .. }));
        assert_eq!(a, RequestActions::default());
    }

    #[test]
    fn invalid_requests_pass_through_to_the_default_cluster_or_get_a_400() {
        let p = Policy::from_json(EXAMPLE).unwrap();
        let (_, a) = run(&p, "nope", &Headers::new());
        assert_eq!(a.body, None);
        assert_eq!(
            a.set_headers,
            pairs(&[
                ("x-model-router-cluster", "openai"),
                ("x-envoy-max-retries", "0")
            ])
        );
        assert_eq!(a.filter_state, pairs(&[("model_router_try_1", "openai")]));
        let p = Policy::from_json(&EXAMPLE.replacen('{', r#"{"on_invalid_request":"reject","#, 1))
            .unwrap();
        let (_, a) = run(&p, "nope", &Headers::new());
        let reply = a.reply.unwrap();
        assert_eq!(reply.status, 400);
        let v: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a JSON object"));
    }

    #[test]
    fn client_copies_of_router_headers_are_forged() {
        let p = Policy::from_json(EXAMPLE).unwrap();
        let h = Headers::from_pairs(&[
            ("X-Model-Router-Cluster", "anthropic"),
            ("x-model-router-plan", "gpt-4o"),
            ("x-model-router-max-cost-usd", "0.1"),
            ("x-task", "code"),
            ("authorization", "Bearer x"),
        ]);
        assert_eq!(
            forged_headers(&p, &h),
            vec!["x-model-router-cluster", "x-model-router-plan"]
        );
    }

    #[test]
    fn response_headers_name_the_serving_model() {
        let p = Policy::from_json(EXAMPLE).unwrap();
        let (d, _) = run(
            &p,
            r#"{"model":"auto","messages":[{"role":"user","content":"What is the refund policy?"}]}"#,
            &Headers::new(),
        );
        let h = response_headers(&p, &d, 2);
        assert!(h.contains(&(MODEL_HEADER, "gpt-4o-mini".to_string())));
        assert!(h.contains(&(RULE_HEADER, "faq".to_string())));
        assert!(h.contains(&(ATTEMPTS_HEADER, "2".to_string())));
    }
}
