//! The root context: loads the policy once per plugin configuration.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

use super::downstream::Downstream;
use super::upstream::Upstream;
use super::{host, UPSTREAM_ROOT_ID};
use crate::policy::Policy;
use crate::tokens;

#[derive(Default)]
pub struct RouterRoot {
    policy: Option<Rc<Policy>>,
    upstream: bool,
}

impl Context for RouterRoot {}

impl RootContext for RouterRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        self.upstream =
            host::property(&["plugin_root_id"]).as_deref() == Some(UPSTREAM_ROOT_ID.as_bytes());
        let config = host::plugin_configuration();
        let text = match std::str::from_utf8(&config) {
            Ok(text) => text,
            Err(_) => {
                log::error!("model-router: invalid policy: .: the configuration is not UTF-8");
                return false;
            }
        };
        let policy = match Policy::from_json(text) {
            Ok(policy) => policy,
            Err(e) => {
                // One line naming the JSON path; returning false makes Envoy refuse the config.
                log::error!("model-router: invalid policy: {e}");
                return false;
            }
        };
        if !self.upstream {
            // Build the tokenizer tables now rather than on the first request.
            for encoding in policy.encodings() {
                if let Err(e) = tokens::preload(encoding) {
                    log::error!("model-router: {e}");
                    return false;
                }
            }
        }
        log::info!(
            "model-router: {} policy loaded: {} models, {} rules",
            if self.upstream { "upstream" } else { "routing" },
            policy.models.len(),
            policy.rules.len()
        );
        self.policy = Some(Rc::new(policy));
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Never None: the SDK panics on it. Without a policy the context does nothing.
        let policy = self.policy.clone();
        if self.upstream {
            Some(Box::new(Upstream::new(policy)))
        } else {
            Some(Box::new(Downstream::new(policy)))
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
