//! The per-attempt filter, in the cluster's upstream filter chain: on a
//! retry, writes the model of this attempt into the body the router replays.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use super::host;
use super::root::Shared;
use crate::actions;
use crate::headers::{API_STATE, ATTEMPT_COUNT_HEADER, CHAIN_STATE};

pub struct Upstream {
    shared: Option<Rc<Shared>>,
    /// The plan and attempt number of a retry whose body must be rewritten.
    retry: Option<(String, u32)>,
}

impl Upstream {
    pub fn new(shared: Option<Rc<Shared>>) -> Upstream {
        Upstream {
            shared,
            retry: None,
        }
    }
}

impl Context for Upstream {}

impl HttpContext for Upstream {
    fn on_http_request_headers(&mut self, _count: usize, end_of_stream: bool) -> Action {
        // Set by Envoy on upstream requests (virtual host `include_request_attempt_count`).
        // The header map is shared between attempts: read it, never remove it.
        let attempt = host::request_headers()
            .get(ATTEMPT_COUNT_HEADER)
            .and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap_or(1);
        // The first attempt already carries the body the routing filter wrote.
        if attempt <= 1 || end_of_stream {
            return Action::Continue;
        }
        let Some(plan) = host::filter_state(CHAIN_STATE) else {
            return Action::Continue;
        };
        if let Some(policy) = self.shared.as_deref().map(|s| &s.policy) {
            // Set on every retry: the header map is shared with the earlier attempts.
            if let Some(path) = host::filter_state(API_STATE)
                .and_then(|api| actions::attempt_path(policy, &plan, attempt, &api))
            {
                host::set_request_header(":path", &path);
            }
        }
        self.retry = Some((plan, attempt));
        Action::Pause
    }

    fn on_http_request_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        let Some((plan, attempt)) = &self.retry else {
            return Action::Continue;
        };
        if !end_of_stream {
            return Action::Pause;
        }
        let Some(policy) = self.shared.as_deref().map(|s| &s.policy) else {
            return Action::Continue;
        };
        let body = host::request_body(size);
        if let Some(new_body) = actions::attempt_body(policy, plan, *attempt, &body) {
            host::replace_request_body(size, &new_body);
            host::set_request_header("content-length", &new_body.len().to_string());
        }
        self.retry = None;
        Action::Continue
    }
}
