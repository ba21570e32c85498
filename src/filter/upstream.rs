//! The per-attempt filter, in the cluster's upstream filter chain: on a
//! retry, writes the model of this attempt into the body the router replays.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use super::host;
use super::root::Shared;
use crate::actions;
use crate::headers::{ATTEMPT_COUNT_HEADER, CHAIN_STATE, CLIENT_BODY_STATE, CLIENT_PATH_STATE};
use crate::translation;

pub struct Upstream {
    shared: Option<Rc<Shared>>,
    /// The plan and attempt number of a retry whose body must be rewritten.
    retry: Option<(String, u32)>,
    /// The client's path when the chain crosses APIs: each retry is
    /// translated from the client's body for its own model.
    client_path: Option<String>,
}

impl Upstream {
    pub fn new(shared: Option<Rc<Shared>>) -> Upstream {
        Upstream {
            shared,
            retry: None,
            client_path: None,
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
        // The header map is shared between attempts: every retry sets its own path.
        if let Some(client_path) = host::filter_state(CLIENT_PATH_STATE) {
            let policy = self.shared.as_deref().map(|s| &s.policy);
            if let Some(path) =
                policy.and_then(|p| translation::attempt_path(p, &plan, attempt, &client_path))
            {
                host::set_request_header(":path", &path);
            }
            self.client_path = Some(client_path);
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
        let translated = self.client_path.as_deref().and_then(|path| {
            let client_body = host::filter_state(CLIENT_BODY_STATE)?;
            translation::attempt_request(policy, plan, *attempt, path, client_body.as_bytes())
        });
        if let Some((new_body, _)) = translated {
            host::replace_request_body(size, &new_body);
            host::set_request_header("content-length", &new_body.len().to_string());
        } else if let Some(new_body) = actions::attempt_body(policy, plan, *attempt, &body) {
            host::replace_request_body(size, &new_body);
            host::set_request_header("content-length", &new_body.len().to_string());
        }
        self.retry = None;
        Action::Continue
    }
}
