//! The routing filter on the downstream request: buffer the body, decide,
//! carry out the actions; on the response, describe the decision.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use super::host;
use crate::actions::{self, served_model};
use crate::decision::{decide, Decision, Request};
use crate::headers::{Headers, ATTEMPT_COUNT_HEADER, OWN_PREFIX};
use crate::policy::Policy;
use crate::request::ApiShape;

/// Where a request is in its life.
enum Phase {
    /// Not an LLM API request, or already handled: nothing to do.
    Idle,
    /// Waiting for the end of the body.
    Buffering {
        shape: ApiShape,
        path: String,
        headers: Headers,
    },
    /// Routed (or passed through); the response will describe the decision.
    Decided(Box<Decision>),
}

pub struct Downstream {
    policy: Option<Rc<Policy>>,
    phase: Phase,
}

impl Downstream {
    pub fn new(policy: Option<Rc<Policy>>) -> Downstream {
        Downstream {
            policy,
            phase: Phase::Idle,
        }
    }

    /// Decides and carries out the decision. Returns false when the router
    /// answered the request itself.
    fn route(
        &mut self,
        policy: &Policy,
        shape: ApiShape,
        path: &str,
        headers: &Headers,
        body: &[u8],
    ) -> bool {
        let decision = decide(
            policy,
            &Request {
                shape,
                path,
                headers,
                body,
            },
        );
        if let Some(reason) = &decision.invalid_reason {
            log::info!("model-router: invalid request on {path}: {reason}");
        }
        let todo = actions::request_actions(policy, &decision, body);
        if let Some(reply) = &todo.reply {
            host::send_json_reply(reply.status, &reply.body);
            self.phase = Phase::Idle;
            return false;
        }
        if let Some(new_body) = &todo.body {
            host::replace_request_body(body.len(), new_body);
            if headers.get("content-length").is_some() {
                host::set_request_header("content-length", &new_body.len().to_string());
            }
        }
        for (name, value) in &todo.set_headers {
            host::set_request_header(name, value);
        }
        for (name, value) in &todo.filter_state {
            host::set_filter_state(name, value);
        }
        if todo.clear_route_cache {
            host::clear_route_cache();
        }
        self.phase = Phase::Decided(Box::new(decision));
        true
    }
}

impl Context for Downstream {}

impl HttpContext for Downstream {
    fn on_http_request_headers(&mut self, _count: usize, end_of_stream: bool) -> Action {
        let Some(policy) = self.policy.clone() else {
            return Action::Continue;
        };
        let headers = host::request_headers();
        for name in actions::forged_headers(&policy, &headers) {
            host::remove_request_header(&name);
        }
        let path = headers.get(":path").unwrap_or_default().to_string();
        let shape = match ApiShape::from_path(&path) {
            Some(shape) if headers.get(":method") == Some("POST") => shape,
            _ => return Action::Continue,
        };
        if end_of_stream {
            // No body at all: an invalid request, decided right away.
            return if self.route(&policy, shape, &path, &headers, &[]) {
                Action::Continue
            } else {
                Action::Pause
            };
        }
        self.phase = Phase::Buffering {
            shape,
            path,
            headers,
        };
        // Hold the headers: the route must not be chosen before the body is read.
        Action::Pause
    }

    fn on_http_request_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        if !matches!(self.phase, Phase::Buffering { .. }) {
            return Action::Continue;
        }
        if !end_of_stream {
            return Action::Pause; // Envoy buffers until the end (or answers 413 past its limit).
        }
        let Some(policy) = self.policy.clone() else {
            return Action::Continue;
        };
        let Phase::Buffering {
            shape,
            path,
            headers,
        } = std::mem::replace(&mut self.phase, Phase::Idle)
        else {
            return Action::Continue;
        };
        let body = host::request_body(size);
        if self.route(&policy, shape, &path, &headers, &body) {
            Action::Continue
        } else {
            Action::Pause
        }
    }

    fn on_http_response_headers(&mut self, _count: usize, _end_of_stream: bool) -> Action {
        let (Some(policy), Phase::Decided(decision)) = (self.policy.as_deref(), &self.phase) else {
            return Action::Continue;
        };
        let response = host::response_headers();
        let attempts = response
            .get(ATTEMPT_COUNT_HEADER)
            .and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap_or(1);
        if attempts > 1 {
            let chain = decision.chain();
            let from = chain
                .first()
                .and_then(|id| policy.model(*id))
                .map(|m| m.name.as_str());
            let to = served_model(decision, attempts)
                .and_then(|id| policy.model(id))
                .map(|m| m.name.as_str());
            log::info!(
                "model-router: fell back from {} to {} after {attempts} attempts",
                from.unwrap_or("?"),
                to.unwrap_or("?")
            );
        }
        // A provider cannot speak for the router.
        for (name, _) in response.iter().filter(|(n, _)| n.starts_with(OWN_PREFIX)) {
            host::remove_response_header(name);
        }
        for (name, value) in actions::response_headers(policy, decision, attempts) {
            host::set_response_header(name, &value);
        }
        Action::Continue
    }
}
