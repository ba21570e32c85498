//! The root context: loads the policy once per plugin configuration and
//! holds what the VM's requests share (policy, metric ids, tenant labels).

use std::cell::RefCell;
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
        }));
        true
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
