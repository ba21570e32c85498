//! Metric names, label encoding, and what one finished request adds.
//!
//! proxy-wasm metrics have no labels, so labels travel in the name:
//! `model_router_requests_total;model=gpt-4o;rule=code` — `;` and `=` never
//! occur in model names (which may contain `.`, `/`, `:` or `@`), and the
//! generated Envoy config's `stats_tags` turn each `;label=value` back into a
//! real Prometheus label. Values are sanitised so they cannot break that.

use std::collections::BTreeSet;

use crate::cost::{PriceTier, Usage};
use crate::decision::{Decision, Outcome};
use crate::policy::{ModelId, Policy};

pub const REQUESTS: &str = "model_router_requests_total";
pub const PROMPT_TOKENS_ESTIMATED: &str = "model_router_prompt_tokens_estimated_total";
pub const PROMPT_TOKENS: &str = "model_router_prompt_tokens_total";
pub const CACHED_PROMPT_TOKENS: &str = "model_router_cached_prompt_tokens_total";
pub const COMPLETION_TOKENS: &str = "model_router_completion_tokens_total";
/// Prompt tokens written to the provider's cache (5-minute and 1-hour writes).
pub const CACHE_WRITE_TOKENS: &str = "model_router_cache_write_tokens_total";
/// The part of `COST` paid for cache reads, in micro-USD (each request's
/// line rounded on its own, so the parts need not add up to `COST` exactly).
pub const CACHE_READ_COST: &str = "model_router_cache_read_cost_micro_usd_total";
/// The part of `COST` paid for cache writes, in micro-USD (rounded likewise).
pub const CACHE_WRITE_COST: &str = "model_router_cache_write_cost_micro_usd_total";
/// Requests billed at a model's long-context tier.
pub const LONG_CONTEXT_REQUESTS: &str = "model_router_long_context_requests_total";
pub const COST: &str = "model_router_cost_micro_usd_total";
pub const BASELINE_COST: &str = "model_router_baseline_cost_micro_usd_total";
pub const USAGE_ESTIMATED: &str = "model_router_usage_estimated_total";
pub const USAGE_MISSING: &str = "model_router_usage_missing_total";
pub const FALLBACKS: &str = "model_router_fallbacks_total";
pub const INVALID_REQUESTS: &str = "model_router_invalid_requests_total";
pub const REJECTED: &str = "model_router_rejected_requests_total";
pub const CONTEXT_ESCALATIONS: &str = "model_router_context_escalations_total";
pub const BUDGET_CLAMPS: &str = "model_router_budget_clamps_total";
pub const POLICY_LOAD_FAILURES: &str = "model_router_policy_load_failures_total";
/// Sum over requests with reported usage of |estimated − billed| prompt
/// tokens, per served model: with `PROMPT_ESTIMATE_BILLED` the relative
/// error of the router's count (and of an `estimate` ratio) is one query
/// away (error_total / billed_total).
pub const PROMPT_ESTIMATE_ERROR: &str = "model_router_prompt_token_estimate_error_total";
/// Billed prompt tokens of the requests counted in `PROMPT_ESTIMATE_ERROR`.
pub const PROMPT_ESTIMATE_BILLED: &str = "model_router_prompt_token_estimate_billed_total";
/// The router's prompt counts for those same requests: a model's
/// `estimate.ratio` × billed_total ÷ counted_total is the calibrated ratio.
pub const PROMPT_ESTIMATE_COUNTED: &str = "model_router_prompt_token_estimate_counted_total";
/// Histogram of prompt tokens (default encoding).
pub const PROMPT_TOKENS_HISTOGRAM: &str = "model_router_request_prompt_tokens";
/// Histogram of the time the decision took, in microseconds.
pub const DECISION_TIME_HISTOGRAM: &str = "model_router_decision_duration_us";
/// Histogram per classifier (label `classifier`) of its scores, in
/// thousandths of a probability (Envoy histograms hold integers).
pub const CLASSIFIER_SCORE_HISTOGRAM: &str = "model_router_classifier_score_permille";

/// Cooldowns started, per model and reason (`retry_after`, `status`, `failures`).
pub const COOLDOWNS: &str = "model_router_model_cooldowns_total";
/// Gauge: models cooling down now (every worker sets it from the shared table).
pub const MODELS_COOLING_DOWN: &str = "model_router_models_cooling_down";

/// Every label any metric carries (the Envoy `stats_tags` are generated from this).
pub const LABELS: [&str; 13] = [
    "model",
    "rule",
    "cluster",
    "task",
    "tenant",
    "reason",
    "from",
    "to",
    "branch",
    "verdict",
    "classifier",
    "bucket",
    "field",
];

/// Label value for "not known / not applicable".
pub const NONE: &str = "none";
/// Tenant label value for tenants folded away to bound cardinality.
pub const OTHER_TENANT: &str = "other";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Histogram,
    /// Set to the value (not added).
    Gauge,
}

/// One metric update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub kind: Kind,
    /// The full encoded name, labels included.
    pub name: String,
    pub value: u64,
}

/// `base;label=value;...` with sanitised values.
pub fn encode(base: &str, labels: &[(&str, &str)]) -> String {
    let mut name =
        String::with_capacity(base.len().saturating_add(labels.len().saturating_mul(24)));
    name.push_str(base);
    push_labels(&mut name, labels);
    name
}

/// Appends `;label=value` for each label, values sanitised in place (no
/// allocation per label: this runs for every metric of every request).
fn push_labels(out: &mut String, labels: &[(&str, &str)]) {
    for (label, value) in labels {
        out.push(';');
        out.push_str(label);
        out.push('=');
        push_sanitized(out, value);
    }
}

/// Keeps label values printable and free of the encoding's separators;
/// bounds their length.
pub fn sanitize(value: &str) -> String {
    let mut out = String::with_capacity(value.len().min(64));
    push_sanitized(&mut out, value);
    out
}

fn push_sanitized(out: &mut String, value: &str) {
    let start = out.len();
    for c in value.chars().take(64) {
        if c == ';' || c == '=' || c.is_control() || c.is_whitespace() {
            out.push('_');
        } else {
            out.push(c);
        }
    }
    if out.len() == start {
        out.push_str(NONE);
    }
}

/// Where the billed usage of a response came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageSource {
    /// The provider's `usage` object.
    Reported,
    /// Counted by the router from the streamed text (no usage in the response).
    Estimated,
    /// Unknown (error responses, cut-off streams).
    Missing,
}

impl UsageSource {
    /// The name in the audit record's billing fields.
    pub fn name(self) -> &'static str {
        match self {
            UsageSource::Reported => "reported",
            UsageSource::Estimated => "estimated",
            UsageSource::Missing => "missing",
        }
    }
}

/// Everything known about a request once its response is complete.
pub struct Completion<'a> {
    pub decision: &'a Decision,
    /// Attempts Envoy made (1 without retries).
    pub attempts: u32,
    /// Tenant label value, already folded.
    pub tenant: &'a str,
    pub usage: Option<Usage>,
    pub usage_source: UsageSource,
    /// Time spent deciding, in microseconds.
    pub decision_micros: u64,
}

/// The updates one finished request makes.
pub fn samples(policy: &Policy, done: &Completion<'_>) -> Vec<Sample> {
    let mut out = Vec::new();
    let counter = |out: &mut Vec<Sample>, name: String, value: u64| {
        out.push(Sample {
            kind: Kind::Counter,
            name,
            value,
        });
    };
    let decision = done.decision;
    let rule = decision.decided_by.label(policy);
    if decision.invalid_reason.is_some() {
        counter(&mut out, INVALID_REQUESTS.to_string(), 1);
    }
    if let Outcome::Reject { reason, .. } = &decision.outcome {
        counter(&mut out, encode(REJECTED, &[("reason", reason.label())]), 1);
    }
    if decision.budget_clamped {
        counter(&mut out, encode(BUDGET_CLAMPS, &[("rule", rule)]), 1);
    }
    if let Some(tokens) = decision.prompt_tokens {
        out.push(Sample {
            kind: Kind::Histogram,
            name: PROMPT_TOKENS_HISTOGRAM.to_string(),
            value: tokens,
        });
    }
    out.push(Sample {
        kind: Kind::Histogram,
        name: DECISION_TIME_HISTOGRAM.to_string(),
        value: done.decision_micros,
    });
    for (id, score) in &decision.scores {
        if let Some(c) = policy.classifiers.get(id.0) {
            out.push(Sample {
                kind: Kind::Histogram,
                name: encode(CLASSIFIER_SCORE_HISTOGRAM, &[("classifier", &c.name)]),
                // In [0, 1000] after the clamp: the cast is exact.
                value: (score.clamp(0.0, 1.0) * 1000.0).round() as u64,
            });
        }
    }

    let chain = decision.chain();
    let Some(served) = crate::actions::served_model(decision, done.attempts) else {
        return out;
    };
    let Some(model) = policy.model(served) else {
        return out;
    };
    if decision.escalated {
        counter(
            &mut out,
            encode(
                CONTEXT_ESCALATIONS,
                &[("rule", rule), ("model", &model.name)],
            ),
            1,
        );
    }
    for pair in chain
        .windows(2)
        .take(done.attempts.saturating_sub(1) as usize)
    {
        if let [from, to] = pair {
            let name = |id: &ModelId| policy.model(*id).map_or(NONE, |m| m.name.as_str());
            counter(
                &mut out,
                encode(FALLBACKS, &[("from", name(from)), ("to", name(to))]),
                1,
            );
        }
    }

    let task = decision
        .task
        .and_then(|t| policy.task(t))
        .map_or(NONE, |t| t.name.as_str());
    let mut labels = vec![
        ("model", model.name.as_str()),
        ("rule", rule),
        ("cluster", model.cluster.as_str()),
        ("task", task),
        ("tenant", done.tenant),
    ];
    // Only split targets carry the label, so other series keep their names.
    if let Some(branch) = decision.branch_label(policy) {
        labels.push(("branch", branch));
    }
    // Most series share these labels: encoded once, appended to each name.
    let mut suffix = String::with_capacity(160);
    push_labels(&mut suffix, &labels);
    let labelled = |base: &str| {
        let mut name = String::with_capacity(base.len().saturating_add(suffix.len()));
        name.push_str(base);
        name.push_str(&suffix);
        name
    };
    counter(&mut out, labelled(REQUESTS), 1);
    if let Some(estimate) = decision.prompt_tokens_for(served) {
        counter(&mut out, labelled(PROMPT_TOKENS_ESTIMATED), estimate);
    }
    match (done.usage, done.usage_source) {
        (Some(usage), UsageSource::Reported | UsageSource::Estimated) => {
            counter(&mut out, labelled(PROMPT_TOKENS), usage.prompt_tokens);
            counter(
                &mut out,
                labelled(CACHED_PROMPT_TOKENS),
                usage.cached_tokens,
            );
            counter(
                &mut out,
                labelled(COMPLETION_TOKENS),
                usage.completion_tokens,
            );
            if done.usage_source == UsageSource::Reported {
                if let Some(estimate) = decision.prompt_tokens_for(served) {
                    let model_label = [("model", model.name.as_str())];
                    counter(
                        &mut out,
                        encode(PROMPT_ESTIMATE_ERROR, &model_label),
                        estimate.abs_diff(usage.prompt_tokens),
                    );
                    counter(
                        &mut out,
                        encode(PROMPT_ESTIMATE_BILLED, &model_label),
                        usage.prompt_tokens,
                    );
                    counter(
                        &mut out,
                        encode(PROMPT_ESTIMATE_COUNTED, &model_label),
                        estimate,
                    );
                }
            }
            counter(&mut out, labelled(CACHE_WRITE_TOKENS), usage.cache_writes());
            let invoice = model.pricing.invoice(&usage);
            let cost = invoice.total();
            let baseline = policy
                .baseline_model
                .and_then(|id| policy.model(id))
                .map_or(cost, |b| b.pricing.cost(&usage));
            counter(&mut out, labelled(COST), cost.micro_usd());
            counter(
                &mut out,
                labelled(CACHE_READ_COST),
                invoice.cached_input.micro_usd(),
            );
            counter(
                &mut out,
                labelled(CACHE_WRITE_COST),
                invoice.cache_writes().micro_usd(),
            );
            if invoice.tier == PriceTier::LongContext {
                counter(&mut out, labelled(LONG_CONTEXT_REQUESTS), 1);
            }
            counter(&mut out, labelled(BASELINE_COST), baseline.micro_usd());
            if done.usage_source == UsageSource::Estimated {
                counter(
                    &mut out,
                    encode(USAGE_ESTIMATED, &[("model", &model.name)]),
                    1,
                );
            }
        }
        _ => counter(
            &mut out,
            encode(USAGE_MISSING, &[("model", &model.name)]),
            1,
        ),
    }
    out
}

/// The samples of a cooldown that started: the counter, and the gauge of
/// models cooling down now.
pub fn cooldown_samples(model: &str, reason: &str, cooling_now: usize) -> Vec<Sample> {
    vec![
        Sample {
            kind: Kind::Counter,
            name: encode(COOLDOWNS, &[("model", model), ("reason", reason)]),
            value: 1,
        },
        cooling_gauge(cooling_now),
    ]
}

/// The gauge of models cooling down.
pub fn cooling_gauge(cooling_now: usize) -> Sample {
    Sample {
        kind: Kind::Gauge,
        name: MODELS_COOLING_DOWN.to_string(),
        value: u64::try_from(cooling_now).unwrap_or(u64::MAX),
    }
}

/// Bounds the tenant label's cardinality: a configured list keeps only its
/// values; otherwise the first `max` distinct values seen by this VM are
/// kept. Everything else is `other`.
#[derive(Debug, Default)]
pub struct TenantFolder {
    seen: BTreeSet<String>,
}

impl TenantFolder {
    pub fn fold(&mut self, policy: &Policy, value: Option<&str>) -> String {
        let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
            return NONE.to_string();
        };
        let value = sanitize(value);
        if let Some(allowed) = &policy.tenants {
            return if allowed.contains(&value) {
                value
            } else {
                OTHER_TENANT.to_string()
            };
        }
        if self.seen.contains(&value) {
            return value;
        }
        if self.seen.len() < policy.max_tenants {
            self.seen.insert(value.clone());
            return value;
        }
        OTHER_TENANT.to_string()
    }
}

/// Envoy `stats_tags` rules that turn `;label=value` into Prometheus labels.
pub fn stats_tags() -> Vec<(String, String)> {
    LABELS
        .iter()
        .map(|label| {
            (
                label.to_string(),
                format!(r"^wasmcustom\.model_router_[a-z_]+.*?(;{label}=([^;]*))(?:;|$)"),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests;
