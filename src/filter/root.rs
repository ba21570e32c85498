//! The root context: loads the policy once per plugin configuration and
//! holds what the VM's requests share (policy, metric ids, tenant labels).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

use super::downstream::Downstream;
use super::metrics::MetricSink;
use super::upstream::Upstream;
use super::{host, UPSTREAM_ROOT_ID};
use crate::metrics::{Kind, Sample, TenantFolder, POLICY_LOAD_FAILURES};
use crate::policy::Policy;
use crate::tokens;

/// State shared by every request of one plugin in one VM.
pub struct Shared {
    pub policy: Policy,
    pub metrics: RefCell<MetricSink>,
    pub tenants: RefCell<TenantFolder>,
    /// State of the VM's random numbers (splits without a key).
    pub rng: Cell<u64>,
}

impl Shared {
    /// The next random number: a Weyl sequence seeded from the clock at
    /// load; `crate::split` mixes it, so consecutive values are fine.
    pub fn next_random(&self) -> u64 {
        let next = self.rng.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        self.rng.set(next);
        next
    }
}

#[derive(Default)]
pub struct RouterRoot {
    shared: Option<Rc<Shared>>,
    upstream: bool,
}

impl RouterRoot {
    fn refuse(&self, message: &str) -> bool {
        // One line naming the JSON path; returning false makes Envoy refuse the config.
        log::error!("model-router: invalid policy: {message}");
        MetricSink::default().record(&[Sample {
            kind: Kind::Counter,
            name: POLICY_LOAD_FAILURES.to_string(),
            value: 1,
        }]);
        false
    }
}

impl Context for RouterRoot {}

impl RootContext for RouterRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        self.upstream =
            host::property(&["plugin_root_id"]).as_deref() == Some(UPSTREAM_ROOT_ID.as_bytes());
        let config = host::plugin_configuration();
        let Ok(text) = std::str::from_utf8(&config) else {
            return self.refuse(".: the configuration is not UTF-8");
        };
        let policy = match Policy::from_json(text) {
            Ok(policy) => policy,
            Err(e) => return self.refuse(&e.to_string()),
        };
        if !self.upstream {
            // Build the tokenizer tables now rather than on the first request.
            for encoding in policy.encodings() {
                let started = host::now_micros();
                if let Err(e) = tokens::preload(encoding) {
                    return self.refuse(&e.to_string());
                }
                // scripts/bench reads this line (the VM's tokenizer load time).
                log::info!(
                    "model-router: tokenizer {encoding} loaded in {} us",
                    host::now_micros().saturating_sub(started)
                );
            }
        }
        #[cfg(feature = "test-trap")]
        super::downstream::test_trap::warn_loaded();
        log::info!(
            "model-router: {} policy loaded: {} models, {} rules",
            if self.upstream { "upstream" } else { "routing" },
            policy.models.len(),
            policy.rules.len()
        );
        self.shared = Some(Rc::new(Shared {
            policy,
            metrics: RefCell::new(MetricSink::default()),
            tenants: RefCell::new(TenantFolder::default()),
            rng: Cell::new(host::now_micros()),
        }));
        if !self.upstream {
            // The gauge of models cooling down falls as cooldowns end.
            if let Err(status) =
                proxy_wasm::hostcalls::set_tick_period(std::time::Duration::from_secs(1))
            {
                log::warn!("model-router: cannot set the tick period: {status:?}");
            }
        }
        true
    }

    fn on_tick(&mut self) {
        let Some(shared) = self.shared.as_deref() else {
            return;
        };
        if !shared.policy.cooldown.enabled {
            return;
        }
        let now_ms = host::now_micros() / 1000;
        let cooling = super::shared_data::cooldowns().active(now_ms).count();
        if let Ok(mut sink) = shared.metrics.try_borrow_mut() {
            sink.record(&[crate::metrics::cooling_gauge(cooling)]);
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Never None: the SDK panics on it. Without a policy the context does nothing.
        let shared = self.shared.clone();
        if self.upstream {
            Some(Box::new(Upstream::new(shared)))
        } else {
            Some(Box::new(Downstream::new(shared)))
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
