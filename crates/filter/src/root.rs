//! What one plugin configuration loads once per VM and every request of it
//! shares: the compiled policy, metric ids, tenant labels.

use std::cell::{Cell, RefCell};

use model_router_core::metrics::{Kind, Sample, TenantFolder, POLICY_LOAD_FAILURES};
use model_router_core::policy::Policy;
use model_router_core::tokens;

use crate::host::Host;
use crate::metrics::MetricSink;

/// Which of the two filters a plugin is (its `root_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The routing filter on the downstream request.
    Routing,
    /// The per-attempt filter in the clusters' upstream filter chain.
    Upstream,
}

/// State shared by every request of one plugin in one VM.
pub struct Shared {
    pub policy: Policy,
    pub metrics: RefCell<MetricSink>,
    pub tenants: RefCell<TenantFolder>,
    /// State of the VM's random numbers (splits without a key).
    pub rng: Cell<u64>,
}

impl Shared {
    /// The routing filter batches its counters and gauges until the root's
    /// tick; the upstream filter has no tick (and counts only failures).
    pub fn new(policy: Policy, role: Role) -> Shared {
        Shared {
            policy,
            metrics: RefCell::new(match role {
                Role::Routing => MetricSink::batched(),
                Role::Upstream => MetricSink::default(),
            }),
            tenants: RefCell::new(TenantFolder::default()),
            rng: Cell::new(0),
        }
    }

    /// The next random number: a Weyl sequence seeded from the clock at
    /// load; `model_router_core::policy::split` mixes it, so consecutive values are fine.
    pub fn next_random(&self) -> u64 {
        let next = self.rng.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        self.rng.set(next);
        next
    }

    /// Records metric samples (skipped, never panicking, if the sink is busy).
    pub fn record(&self, host: &impl Host, samples: &[Sample]) {
        if let Ok(mut sink) = self.metrics.try_borrow_mut() {
            sink.record(host, samples);
        }
    }

    /// Sends the batched counters and gauges (on the tick, and when the
    /// plugin is torn down).
    pub fn flush_metrics(&self, host: &impl Host) {
        if let Ok(mut sink) = self.metrics.try_borrow_mut() {
            sink.flush(host);
        }
    }
}

/// Compiles the plugin configuration. An error names the JSON path and has
/// been logged and counted: the caller refuses the configuration with it.
pub fn configure(
    host: &impl Host,
    config: impl Into<Vec<u8>>,
    role: Role,
) -> Result<Shared, String> {
    let loaded = load(host, config.into(), role);
    if let Err(message) = &loaded {
        // One line naming the JSON path; refusing makes Envoy reject the config.
        log::error!("model-router: invalid policy: {message}");
        MetricSink::default().record(
            host,
            &[Sample {
                kind: Kind::Counter,
                name: POLICY_LOAD_FAILURES.to_string(),
                value: 1,
            }],
        );
    }
    loaded
}

fn load(host: &impl Host, config: Vec<u8>, role: Role) -> Result<Shared, String> {
    let text = std::str::from_utf8(&config)
        .map_err(|_| ".: the configuration is not UTF-8".to_string())?;
    let started = host.now_micros();
    let policy = Policy::from_json(text).map_err(|e| e.to_string())?;
    // Freed before the task automaton and the tokenizer tables are built,
    // so that they reuse its memory: a VM's memory never shrinks, its peak
    // is what it costs, and the text is 1 MB with a classifier's weights.
    drop(config);
    let compiled = host.now_micros();
    if role == Role::Routing {
        // Only the routing filter detects tasks: build their automaton now
        // rather than on the first request (the upstream filter never does).
        policy.prepare();
    }
    let prepared = host.now_micros();
    if role == Role::Routing {
        // Build the tokenizer tables now rather than on the first request.
        for encoding in policy.encodings() {
            let started = host.now_micros();
            tokens::preload(encoding).map_err(|e| e.to_string())?;
            // scripts/bench reads this line (the VM's tokenizer load time).
            log::info!(
                "model-router: tokenizer {encoding} loaded in {} us",
                host.now_micros().saturating_sub(started)
            );
        }
    }
    #[cfg(feature = "test-trap")]
    crate::test_trap::warn_loaded();
    // scripts/bench reads this line (the VM's policy compile time).
    log::info!(
        "model-router: {} policy loaded: {} models, {} rules; compiled in {} us, task matcher in {} us",
        match role {
            Role::Routing => "routing",
            Role::Upstream => "upstream",
        },
        policy.models.len(),
        policy.rules.len(),
        compiled.saturating_sub(started),
        prepared.saturating_sub(compiled)
    );
    let shared = Shared::new(policy, role);
    shared.rng.set(host.now_micros());
    Ok(shared)
}

/// Every [`crate::metrics::FLUSH_PERIOD`] on the routing filter's root: the
/// gauge of models cooling down falls as cooldowns end, and the batched
/// counters and gauges are sent.
pub fn tick(host: &impl Host, shared: &Shared) {
    if shared.policy.cooldown.enabled {
        let now_ms = host.now_micros() / 1000;
        let cooling = crate::shared_data::cooldowns(host).active(now_ms).count();
        shared.record(host, &[model_router_core::metrics::cooling_gauge(cooling)]);
    }
    shared.flush_metrics(host);
}
