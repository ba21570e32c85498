//! The routing filter on the downstream request: buffer the body, decide,
//! carry out the actions; on the response, describe the decision, read the
//! billed usage as it passes and count it.

use std::rc::Rc;

use model_router_core::actions::{self, served_model};
use model_router_core::billing::billed_usage;
use model_router_core::cost::Usage;
use model_router_core::decision::{decide_under, Decision, Request, Traffic};
use model_router_core::explain::{self, with_billing, Billing};
use model_router_core::feedback::{self, Attribution};
use model_router_core::headers::{Headers, DECISION_STATE, OWN_PREFIX};
use model_router_core::metrics::{self, Completion, UsageSource};
use model_router_core::policy::{ModelId, Policy};
use model_router_core::request::ApiShape;
use model_router_core::translation::{self, ResponseTranslation};
use model_router_core::usage::{ResponseFormat, UsageReader};

use crate::host::{Flow, Host};
use crate::root::Shared;
use crate::translation as glue;

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
    /// A feedback request, answered locally at the end of its body.
    Feedback,
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
    /// Envoy's `x-request-id`, for feedback on this request.
    request_id: Option<String>,
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
    /// Without a policy (`None`) the filter lets every request through untouched.
    pub fn new(shared: Option<Rc<Shared>>) -> Downstream {
        Downstream {
            shared,
            phase: Phase::Idle,
        }
    }

    pub fn on_request_headers(&mut self, host: &impl Host, end_of_stream: bool) -> Flow {
        let Some(shared) = self.shared.clone() else {
            return Flow::Continue;
        };
        let headers = host.request_headers();
        #[cfg(feature = "test-trap")]
        crate::test_trap::on_request(&headers);
        for name in actions::forged_headers(&shared.policy, &headers) {
            host.set_request_header(&name, None);
        }
        if glue::answer_models(host, &shared.policy, &headers) {
            return Flow::Pause;
        }
        if let Some(value) = headers.get(feedback::FEEDBACK_HEADER) {
            shared.record(host, &crate::feedback::from_header(host, value));
        }
        let path = headers.get(":path").unwrap_or_default().to_string();
        if is_feedback(&path) && headers.get(":method") == Some("POST") {
            if end_of_stream {
                return self.answer_feedback(host, &shared, &[]);
            }
            self.phase = Phase::Feedback;
            return Flow::Pause;
        }
        let shape = match ApiShape::from_path(&path) {
            Some(shape) if headers.get(":method") == Some("POST") => shape,
            _ => return Flow::Continue,
        };
        if end_of_stream {
            // No body at all: an invalid request, decided right away.
            return self.route(host, &shared, shape, &path, &headers, &[]);
        }
        self.phase = Phase::Buffering {
            shape,
            path,
            headers,
        };
        // Hold the headers: the route must not be chosen before the body is read.
        Flow::Pause
    }

    pub fn on_request_body(&mut self, host: &impl Host, size: usize, end_of_stream: bool) -> Flow {
        if matches!(self.phase, Phase::Feedback) {
            return match (&self.shared, end_of_stream) {
                (Some(shared), true) => {
                    let shared = Rc::clone(shared);
                    self.answer_feedback(host, &shared, &host.request_body(size))
                }
                _ => Flow::Pause,
            };
        }
        if !matches!(self.phase, Phase::Buffering { .. }) {
            return Flow::Continue;
        }
        if !end_of_stream {
            return Flow::Pause; // Envoy buffers until the end (or answers 413 past its limit).
        }
        let (
            Some(shared),
            Phase::Buffering {
                shape,
                path,
                headers,
            },
        ) = (
            self.shared.clone(),
            std::mem::replace(&mut self.phase, Phase::Idle),
        )
        else {
            return Flow::Continue;
        };
        let body = host.request_body(size);
        self.route(host, &shared, shape, &path, &headers, &body)
    }

    pub fn on_response_headers(&mut self, host: &impl Host, _end_of_stream: bool) -> Flow {
        let Some(shared) = self.shared.clone() else {
            return Flow::Continue;
        };
        let Phase::InFlight(flight) = &mut self.phase else {
            return Flow::Continue;
        };
        let policy = &shared.policy;
        let response = host.response_headers();
        flight.attempts = response.attempt_number();
        if flight.attempts > 1 {
            log_fallback(policy, &flight.decision, flight.attempts);
        }
        if response.get(":status").is_some_and(|s| s.starts_with('2')) {
            flight.reader = Some(usage_reader(
                policy,
                &flight.decision,
                flight.attempts,
                &response,
            ));
        }
        flight.translation = ResponseTranslation::for_response(
            policy,
            &flight.decision,
            flight.attempts,
            response
                .get(":status")
                .and_then(|s| s.trim().parse::<u32>().ok())
                .unwrap_or(0),
            response.get("content-type").unwrap_or_default(),
        );
        if let Some(t) = &flight.translation {
            glue::on_response_headers(host, t);
        }
        // A provider cannot speak for the router.
        for (name, _) in response.iter().filter(|(n, _)| n.starts_with(OWN_PREFIX)) {
            host.set_response_header(name, None);
        }
        for (name, value) in actions::response_headers(policy, &flight.decision, flight.attempts) {
            host.set_response_header(name, Some(&value));
        }
        if let Some(id) = &flight.request_id {
            host.set_response_header(feedback::REQUEST_ID_HEADER, Some(id));
        }
        // Billing, metrics and the billed audit record wait for the log
        // phase (`on_log`), after the response has left: off its latency.
        Flow::Continue
    }

    pub fn on_response_body(&mut self, host: &impl Host, size: usize, end_of_stream: bool) -> Flow {
        let Phase::InFlight(flight) = &mut self.phase else {
            return Flow::Continue;
        };
        if let Some(t) = flight.translation.as_mut() {
            if !glue::on_response_body(host, t, flight.reader.as_mut(), size, end_of_stream) {
                return Flow::Pause;
            }
        } else if let Some(reader) = flight.reader.as_mut() {
            // Read the chunk as it passes; it is never held back or changed.
            reader.feed(&host.response_body_chunk(size));
        }
        Flow::Continue
    }

    /// Envoy calls this once per stream, after the last byte was sent (or
    /// the stream was reset): the request is billed, counted in the metrics
    /// and its audit record completed here, so that no response waits for it.
    pub fn on_log(&mut self, host: &impl Host) {
        if matches!(self.phase, Phase::InFlight(_)) {
            self.finish_reading(host);
        }
    }

    /// What the root's timer does (the tests' stand-in for Envoy's tick):
    /// the batched metrics are sent.
    #[cfg(test)]
    pub fn tick(&self, host: &impl Host) {
        if let Some(shared) = &self.shared {
            crate::root::tick(host, shared);
        }
    }

    /// Decides and carries out the decision: `Pause` when the router
    /// answered the request itself.
    fn route(
        &mut self,
        host: &impl Host,
        shared: &Shared,
        shape: ApiShape,
        path: &str,
        headers: &Headers,
        body: &[u8],
    ) -> Flow {
        let policy = &shared.policy;
        let started = host.now_micros();
        let cooldowns = if policy.cooldown.enabled {
            crate::shared_data::cooldowns(host)
        } else {
            model_router_core::cooldown::Cooldowns::new()
        };
        let traffic = Traffic {
            now_ms: started / 1000,
            random: shared.next_random(),
            cooldowns: &cooldowns,
        };
        let windows = crate::windows::SharedWindows::new(host, policy);
        let decision = decide_under(
            policy,
            &Request {
                shape,
                path,
                headers,
                body,
            },
            &traffic,
            &windows,
        );
        windows.record(&decision.scores);
        let (todo, note) = translation::request_actions(policy, &decision, path, body);
        let decision_micros = host.now_micros().saturating_sub(started);
        if let Some(reason) = &decision.invalid_reason {
            log::info!("model-router: invalid request on {path}: {reason}");
        }
        let tenant = tenant(shared, headers);
        // Set now so that a request that never completes is logged with its decision.
        let request_id = headers.get(feedback::ENVOY_REQUEST_ID).map(str::to_string);
        let mut audit = explain::audit_record(policy, &decision, &tenant);
        if let Some(id) = &request_id {
            audit = explain::append_fields(&audit, &[("request_id", id.as_str().into())]);
        }
        if let Some(note) = &note {
            audit = explain::with_translation(&audit, note);
            shared.record(host, &translation::samples(note));
        }
        host.set_filter_state(DECISION_STATE, &audit);

        let flight = InFlight {
            decision,
            tenant,
            audit,
            request_id,
            decision_micros,
            attempts: 1,
            reader: None,
            translation: None,
        };
        if let Some(reply) = &todo.reply {
            self.complete(host, flight, None, UsageSource::Missing);
            host.send_json_reply(reply.status, &reply.body);
            return Flow::Pause;
        }
        if let Some(new_body) = &todo.body {
            host.replace_request_body(body.len(), new_body);
            // A chunked request has no content-length to correct.
            if headers.get("content-length").is_some() {
                host.set_request_header("content-length", Some(&new_body.len().to_string()));
            }
        }
        for (name, value) in &todo.set_headers {
            host.set_request_header(name, Some(value));
        }
        for (name, value) in &todo.filter_state {
            host.set_filter_state(name, value);
        }
        if todo.clear_route_cache {
            host.clear_route_cache();
        }
        self.phase = Phase::InFlight(Box::new(flight));
        Flow::Continue
    }

    /// Turns what the reader saw into billed usage and completes the request.
    fn finish_reading(&mut self, host: &impl Host) {
        let Phase::InFlight(mut flight) = std::mem::replace(&mut self.phase, Phase::Done) else {
            return;
        };
        let read = flight.reader.take().map(UsageReader::finish);
        let (usage, source) = billed_usage(&flight.decision, flight.attempts, read);
        self.complete(host, *flight, usage, source);
    }

    /// Counts a finished request once and records its billed usage for the access log.
    fn complete(
        &mut self,
        host: &impl Host,
        flight: InFlight,
        usage: Option<Usage>,
        source: UsageSource,
    ) {
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
        shared.record(host, &metrics::samples(policy, &done));
        // The model that answered, when the response was billed.
        let served = usage.and_then(|_| {
            served_model(&flight.decision, flight.attempts).and_then(|id| policy.model(id))
        });
        if let Some(usage) = usage {
            let billing = Billing {
                attempts: flight.attempts,
                served,
                usage,
                source: source.name(),
            };
            host.set_filter_state(DECISION_STATE, &with_billing(&flight.audit, &billing));
        }
        // What the audit record says served the request, taken from the
        // decision rather than parsed back from the record; only a request
        // with an id can be rated, and only when the policy wants feedback.
        let Some(id) = flight.request_id.as_ref().filter(|_| policy.feedback) else {
            return;
        };
        if let Some(attribution) = Attribution::of(policy, &flight.decision, served, &flight.tenant)
        {
            shared.record(host, &crate::feedback::remember(host, id, &attribution));
        }
    }

    /// Answers a feedback request: 204, or 400 naming what is wrong.
    fn answer_feedback(&mut self, host: &impl Host, shared: &Shared, body: &[u8]) -> Flow {
        self.phase = Phase::Done;
        match crate::feedback::endpoint(host, body) {
            Ok(samples) => {
                shared.record(host, &samples);
                host.send_json_reply(204, "");
            }
            Err((reply, samples)) => {
                shared.record(host, &samples);
                host.send_json_reply(400, &reply);
            }
        }
        Flow::Pause
    }
}

/// `{any prefix}/v1/router/feedback`, with or without a query.
fn is_feedback(path: &str) -> bool {
    let path = path.split('?').next().unwrap_or_default();
    path.ends_with(feedback::FEEDBACK_PATH)
}

/// The tenant label: the policy's tenant header, folded to bound cardinality.
fn tenant(shared: &Shared, headers: &Headers) -> String {
    let policy = &shared.policy;
    let value = policy
        .headers
        .tenant
        .as_deref()
        .and_then(|h| headers.get(h));
    match shared.tenants.try_borrow_mut() {
        Ok(mut folder) => folder.fold(policy, value),
        Err(_) => metrics::OTHER_TENANT.to_string(),
    }
}

/// A reader of the billed usage, for the model that answered.
fn usage_reader(
    policy: &Policy,
    decision: &Decision,
    attempts: u32,
    response: &Headers,
) -> UsageReader {
    let format =
        ResponseFormat::from_content_type(response.get("content-type").unwrap_or_default());
    let encoding = served_model(decision, attempts)
        .and_then(|id| policy.model(id))
        .map_or(policy.default_encoding, |m| m.encoding);
    UsageReader::new(format, JSON_USAGE_LIMIT, MAX_EVENT_BYTES, encoding)
}

fn log_fallback(policy: &Policy, decision: &Decision, attempts: u32) {
    let name = |id: Option<ModelId>| {
        id.and_then(|id| policy.model(id))
            .map_or("?", |m| m.name.as_str())
    };
    log::info!(
        "model-router: fell back from {} to {} after {attempts} attempts",
        name(decision.chain().first().copied()),
        name(served_model(decision, attempts)),
    );
}
