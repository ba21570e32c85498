//! The per-attempt filter, in the cluster's upstream filter chain: on a
//! retry, writes the model of this attempt into the body the router replays.

use std::rc::Rc;

use model_router_core::actions;
use model_router_core::headers::{
    attempt_number, ATTEMPT_COUNT_HEADER, CHAIN_STATE, CLIENT_BODY_STATE, CLIENT_PATH_STATE,
};

use crate::host::{Flow, Host};
use crate::root::Shared;
use model_router_core::translation;

pub struct Upstream {
    shared: Option<Rc<Shared>>,
    /// The plan and attempt number of a retry whose body must be rewritten.
    retry: Option<(String, u32)>,
    /// This attempt's number (1 for the first), for booking its answer.
    attempt: u32,
    /// Response headers arrived; an attempt that ends without them failed
    /// (connection refused or reset, a per-try or idle timeout).
    answered: bool,
    /// The client's path when the chain crosses APIs: each retry is
    /// translated from the client's body for its own model.
    client_path: Option<String>,
}

impl Upstream {
    pub fn new(shared: Option<Rc<Shared>>) -> Upstream {
        Upstream {
            shared,
            retry: None,
            attempt: 1,
            answered: false,
            client_path: None,
        }
    }

    pub fn on_request_headers(&mut self, host: &impl Host, end_of_stream: bool) -> Flow {
        // Set by Envoy on upstream requests (virtual host `include_request_attempt_count`).
        // The header map is shared between attempts: read it, never remove
        // it. One header, not the whole map: this runs on every attempt.
        let attempt = attempt_number(host.request_header(ATTEMPT_COUNT_HEADER).as_deref());
        self.attempt = attempt;
        // The first attempt already carries the body the routing filter wrote.
        if attempt <= 1 || end_of_stream {
            return Flow::Continue;
        }
        let Some(plan) = host.filter_state(CHAIN_STATE) else {
            return Flow::Continue;
        };
        // The header map is shared between attempts: every retry sets its own path.
        if let Some(client_path) = host.filter_state(CLIENT_PATH_STATE) {
            let policy = self.shared.as_deref().map(|s| &s.policy);
            if let Some(path) =
                policy.and_then(|p| translation::attempt_path(p, &plan, attempt, &client_path))
            {
                host.set_request_header(":path", Some(&path));
            }
            self.client_path = Some(client_path);
        }
        self.retry = Some((plan, attempt));
        Flow::Pause
    }

    pub fn on_request_body(&mut self, host: &impl Host, size: usize, end_of_stream: bool) -> Flow {
        let Some((plan, attempt)) = &self.retry else {
            return Flow::Continue;
        };
        if !end_of_stream {
            return Flow::Pause;
        }
        let Some(policy) = self.shared.as_deref().map(|s| &s.policy) else {
            return Flow::Continue;
        };
        let body = host.request_body(size);
        let translated = self.client_path.as_deref().and_then(|path| {
            let client_body = host.filter_state(CLIENT_BODY_STATE)?;
            translation::attempt_request(policy, plan, *attempt, path, client_body.as_bytes())
        });
        if let Some((new_body, _)) = translated {
            host.replace_request_body(size, &new_body);
            host.set_request_header("content-length", Some(&new_body.len().to_string()));
        } else if let Some(new_body) = actions::attempt_body(policy, plan, *attempt, &body) {
            host.replace_request_body(size, &new_body);
            host.set_request_header("content-length", Some(&new_body.len().to_string()));
        }
        self.retry = None;
        Flow::Continue
    }

    /// Every attempt's answer passes here, also those Envoy then retries.
    pub fn on_response_headers(&mut self, host: &impl Host) -> Flow {
        self.answered = true;
        let status = host
            .response_header(":status")
            .and_then(|s| s.trim().parse::<u16>().ok());
        if let (Some(shared), Some(status)) = (self.shared.as_deref(), status) {
            crate::attempt_outcome::observe(host, shared, self.attempt, status);
        }
        Flow::Continue
    }

    /// The attempt is over; without an answer it failed (connection refused
    /// or reset, a per-try or idle timeout).
    pub fn on_done(&mut self, host: &impl Host) {
        if !self.answered {
            if let Some(shared) = self.shared.as_deref() {
                crate::attempt_outcome::observe_failure(host, shared, self.attempt);
            }
        }
    }
}
