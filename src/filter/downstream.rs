//! The routing filter on the downstream request: buffer the body, decide,
//! carry out the actions; on the response, describe the decision, read the
//! billed usage as it passes and count it.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use super::host;
use super::root::Shared;
use super::translation as glue;
use crate::actions::{self, served_model};
use crate::cost::Usage;
use crate::decision::{decide, Decision, Request};
use crate::explain::{self, with_billing, Billing};
use crate::headers::{Headers, ATTEMPT_COUNT_HEADER, DECISION_STATE, OWN_PREFIX};
use crate::metrics::{self, Completion, UsageSource};
use crate::request::ApiShape;
use crate::translation::{self, ResponseTranslation};
use crate::usage::{ReadUsage, ResponseFormat, UsageReader};

/// A JSON response larger than this is passed on without reading its usage.
const JSON_USAGE_LIMIT: usize = 4 << 20;
/// One SSE event larger than this is skipped by the usage reader.
const MAX_EVENT_BYTES: usize = 1 << 20;

/// Where a request is in its life.
enum Phase {
    /// Not an LLM API request: nothing to do.
    Idle,
    /// Waiting for the end of the body.
    Buffering {
        shape: ApiShape,
        path: String,
        headers: Headers,
    },
    /// Decided and forwarded; the response is being read.
    InFlight(Box<InFlight>),
    /// Counted: nothing more to do.
    Done,
}

struct InFlight {
    decision: Decision,
    tenant: String,
    /// The decision's audit record (JSON), as set in filter state.
    audit: String,
    decision_micros: u64,
    attempts: u32,
    /// None until the response headers arrive, and for error responses.
    reader: Option<UsageReader>,
    /// Set when the model that answered does not speak the client's API.
    translation: Option<ResponseTranslation>,
}

pub struct Downstream {
    shared: Option<Rc<Shared>>,
    phase: Phase,
}

impl Downstream {
    pub fn new(shared: Option<Rc<Shared>>) -> Downstream {
        Downstream {
            shared,
            phase: Phase::Idle,
        }
    }

    /// Decides and carries out the decision. Returns false when the router
    /// answered the request itself.
    fn route(
        &mut self,
        shared: &Shared,
        shape: ApiShape,
        path: &str,
        headers: &Headers,
        body: &[u8],
    ) -> bool {
        let policy = &shared.policy;
        let started = host::now_micros();
        let decision = decide(
            policy,
            &Request {
                shape,
                path,
                headers,
                body,
            },
        );
        let (todo, note) = translation::request_actions(policy, &decision, path, body);
        let decision_micros = host::now_micros().saturating_sub(started);
        if let Some(reason) = &decision.invalid_reason {
            log::info!("model-router: invalid request on {path}: {reason}");
        }
        let tenant = {
            let value = policy
                .headers
                .tenant
                .as_deref()
                .and_then(|h| headers.get(h));
            match shared.tenants.try_borrow_mut() {
                Ok(mut folder) => folder.fold(policy, value),
                Err(_) => metrics::OTHER_TENANT.to_string(),
            }
        };
        // Set now so that a request that never completes is logged with its decision.
        let mut audit = explain::audit_record(policy, &decision, &tenant);
        if let Some(note) = &note {
            audit = explain::with_translation(&audit, note);
            glue::record(shared, &translation::samples(note));
        }
        host::set_filter_state(DECISION_STATE, &audit);

        let flight = InFlight {
            decision,
            tenant,
            audit,
            decision_micros,
            attempts: 1,
            reader: None,
            translation: None,
        };
        if let Some(reply) = &todo.reply {
            self.complete(flight, None, UsageSource::Missing);
            host::send_json_reply(reply.status, &reply.body);
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
        self.phase = Phase::InFlight(Box::new(flight));
        true
    }

    /// Counts a finished request once and records its billed usage for the access log.
    fn complete(&mut self, flight: InFlight, usage: Option<Usage>, source: UsageSource) {
        self.phase = Phase::Done;
        let Some(shared) = self.shared.clone() else {
            return;
        };
        let policy = &shared.policy;
        let done = Completion {
            decision: &flight.decision,
            attempts: flight.attempts,
            tenant: &flight.tenant,
            usage,
            usage_source: source,
            decision_micros: flight.decision_micros,
        };
        let samples = metrics::samples(policy, &done);
        if let Ok(mut sink) = shared.metrics.try_borrow_mut() {
            sink.record(&samples);
        }
        if let Some(usage) = usage {
            let served =
                served_model(&flight.decision, flight.attempts).and_then(|id| policy.model(id));
            let billing = Billing {
                attempts: flight.attempts,
                served,
                usage,
                source: match source {
                    UsageSource::Reported => "reported",
                    UsageSource::Estimated => "estimated",
                    UsageSource::Missing => "missing",
                },
            };
            host::set_filter_state(DECISION_STATE, &with_billing(&flight.audit, &billing));
        }
    }

    /// Turns what the reader saw into billed usage.
    fn finish_reading(&mut self) {
        let Phase::InFlight(mut flight) = std::mem::replace(&mut self.phase, Phase::Done) else {
            return;
        };
        let served = served_model(&flight.decision, flight.attempts);
        let (usage, source) = match flight.reader.take().map(UsageReader::finish) {
            Some(ReadUsage::Reported(usage)) => (Some(usage), UsageSource::Reported),
            Some(ReadUsage::CountedText { completion_tokens }) => {
                // The prompt count is our own exact count for the serving model.
                let prompt_tokens = served
                    .and_then(|id| flight.decision.prompt_tokens_for(id))
                    .unwrap_or(0);
                (
                    Some(Usage {
                        prompt_tokens,
                        completion_tokens,
                        cached_tokens: 0,
                    }),
                    UsageSource::Estimated,
                )
            }
            _ => (None, UsageSource::Missing),
        };
        self.complete(*flight, usage, source);
    }
}

impl Context for Downstream {}

impl HttpContext for Downstream {
    fn on_http_request_headers(&mut self, _count: usize, end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else {
            return Action::Continue;
        };
        let headers = host::request_headers();
        #[cfg(feature = "test-trap")]
        test_trap::on_request(&headers);
        for name in actions::forged_headers(&shared.policy, &headers) {
            host::remove_request_header(&name);
        }
        if glue::answer_models(&shared.policy, &headers) {
            return Action::Pause;
        }
        let path = headers.get(":path").unwrap_or_default().to_string();
        let shape = match ApiShape::from_path(&path) {
            Some(shape) if headers.get(":method") == Some("POST") => shape,
            _ => return Action::Continue,
        };
        if end_of_stream {
            // No body at all: an invalid request, decided right away.
            return if self.route(&shared, shape, &path, &headers, &[]) {
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
        let Some(shared) = self.shared.clone() else {
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
        if self.route(&shared, shape, &path, &headers, &body) {
            Action::Continue
        } else {
            Action::Pause
        }
    }

    fn on_http_response_headers(&mut self, _count: usize, end_of_stream: bool) -> Action {
        let Some(shared) = self.shared.clone() else {
            return Action::Continue;
        };
        let Phase::InFlight(flight) = &mut self.phase else {
            return Action::Continue;
        };
        let policy = &shared.policy;
        let response = host::response_headers();
        flight.attempts = response
            .get(ATTEMPT_COUNT_HEADER)
            .and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap_or(1)
            .max(1);
        if flight.attempts > 1 {
            let name = |id: Option<crate::policy::ModelId>| {
                id.and_then(|id| policy.model(id))
                    .map_or("?", |m| m.name.as_str())
            };
            log::info!(
                "model-router: fell back from {} to {} after {} attempts",
                name(flight.decision.chain().first().copied()),
                name(served_model(&flight.decision, flight.attempts)),
                flight.attempts
            );
        }
        let status_ok = response.get(":status").is_some_and(|s| s.starts_with('2'));
        let status = response
            .get(":status")
            .and_then(|s| s.trim().parse::<u32>().ok())
            .unwrap_or(0);
        flight.translation = ResponseTranslation::for_response(
            policy,
            &flight.decision,
            flight.attempts,
            status,
            response.get("content-type").unwrap_or_default(),
        );
        if let Some(t) = &flight.translation {
            glue::on_response_headers(t);
        }
        if status_ok {
            let format =
                ResponseFormat::from_content_type(response.get("content-type").unwrap_or_default());
            let encoding = served_model(&flight.decision, flight.attempts)
                .and_then(|id| policy.model(id))
                .map_or(policy.default_encoding, |m| m.encoding);
            flight.reader = Some(UsageReader::new(
                format,
                JSON_USAGE_LIMIT,
                MAX_EVENT_BYTES,
                encoding,
            ));
        }
        // A provider cannot speak for the router.
        for (name, _) in response.iter().filter(|(n, _)| n.starts_with(OWN_PREFIX)) {
            host::remove_response_header(name);
        }
        for (name, value) in actions::response_headers(policy, &flight.decision, flight.attempts) {
            host::set_response_header(name, &value);
        }
        if end_of_stream {
            self.finish_reading();
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        let Phase::InFlight(flight) = &mut self.phase else {
            return Action::Continue;
        };
        if let Some(t) = flight.translation.as_mut() {
            if !glue::on_response_body(t, flight.reader.as_mut(), size, end_of_stream) {
                return Action::Pause;
            }
        } else if let Some(reader) = flight.reader.as_mut() {
            // Read the chunk as it passes; it is never held back or changed.
            reader.feed(&host::response_body_chunk(size));
        }
        if end_of_stream {
            self.finish_reading();
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        // The stream ended without a complete response (reset, client gone): count it still.
        if matches!(self.phase, Phase::InFlight(_)) {
            self.finish_reading();
        }
    }
}

/// TEST BUILDS ONLY (cargo feature `test-trap`, off by default): a request
/// carrying [`test_trap::HEADER`] traps the VM, so the end-to-end tests can
/// prove that Envoy's `failure_policy: FAIL_RELOAD` replaces a trapped VM
/// and traffic continues. A production `.wasm` has no such code path.
#[cfg(feature = "test-trap")]
pub mod test_trap {
    use crate::headers::Headers;

    pub const HEADER: &str = "x-model-router-test-trap";

    pub fn on_request(headers: &Headers) {
        if headers.get(HEADER).is_some() {
            log::error!("model-router: TEST BUILD: trapping the VM on request");
            // `abort` is the wasm `unreachable` instruction: the VM traps.
            std::process::abort();
        }
    }

    pub fn warn_loaded() {
        log::error!(
            "model-router: TEST BUILD with feature test-trap: any client can trap this VM; never deploy it"
        );
    }
}
