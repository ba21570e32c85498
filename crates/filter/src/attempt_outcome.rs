//! What the per-attempt filter learns from each attempt's answer: a 429
//! (or a failure past the threshold) starts a cooldown of the attempt's
//! model in the shared table, so every worker's next decisions skip it.
//! Only this filter sees the answers of attempts that Envoy retried; the
//! routing filter only sees the final one.

use model_router_core::actions::planned_model;
use model_router_core::cooldown::Observation;
use model_router_core::headers::CHAIN_STATE;
use model_router_core::metrics;

use crate::host::Host;
use crate::root::Shared;
use crate::shared_data;

/// Books attempt `attempt`'s answer (`status`); cheap for statuses the
/// policy does not watch (one header read, done by the caller).
pub fn observe(host: &impl Host, shared: &Shared, attempt: u32, status: u16) {
    if !shared.policy.cooldown.watches(status) {
        return;
    }
    let retry_after = host.response_header("retry-after");
    let retry_after_ms = host.response_header("retry-after-ms");
    let seen = Observation::Status {
        status,
        retry_after: retry_after.as_deref(),
        retry_after_ms: retry_after_ms.as_deref(),
    };
    book(host, shared, attempt, seen);
}

/// Books an attempt that ended without an answer (only counted with a
/// `failure_threshold`). A client that goes away mid-request also ends its
/// attempt so: with a threshold, such cancellations count as failures too.
pub fn observe_failure(host: &impl Host, shared: &Shared, attempt: u32) {
    let settings = &shared.policy.cooldown;
    if settings.enabled && settings.failure_threshold > 0 {
        book(host, shared, attempt, Observation::Failure);
    }
}

fn book(host: &impl Host, shared: &Shared, attempt: u32, seen: Observation<'_>) {
    let policy = &shared.policy;
    let Some(plan) = host.filter_state(CHAIN_STATE) else {
        return; // not a request the router routed
    };
    let Some(model) = planned_model(policy, &plan, attempt).and_then(|id| policy.model(id)) else {
        return;
    };
    let now_ms = host.now_micros() / 1000;
    let updated = shared_data::update(host, |table| {
        table.prune(&policy.cooldown, now_ms);
        table.observe(&policy.cooldown, &model.name, seen, now_ms)
    });
    let Some((Some(started), table)) = updated else {
        return;
    };
    log::info!(
        "model-router: model {} cooling down for {} ms after {} (attempt {attempt}, {})",
        model.name,
        started.until_ms.saturating_sub(now_ms),
        match seen {
            Observation::Status { status, .. } => status.to_string(),
            Observation::Failure => "a failed attempt".to_string(),
        },
        started.reason.label()
    );
    let samples = metrics::cooldown_samples(
        &model.name,
        started.reason.label(),
        table.active(now_ms).count(),
    );
    shared.record(host, &samples);
}
