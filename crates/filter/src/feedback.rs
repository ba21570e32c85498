//! The quality loop in the filter: remember who served each request (in
//! shared data, so feedback arriving on any worker finds it), answer the
//! feedback endpoint locally, and read the lighter feedback header.

use model_router_core::feedback::{self, store, Attribution, Feedback};
use model_router_core::metrics::{Kind, Sample};

use crate::host::Host;

/// Compare-and-swap attempts before an insert gives up (and is dropped):
/// another worker won each race, so the store is busy, not broken.
const CAS_TRIES: u32 = 4;

/// Records the attribution of a finished request under its id; returns the
/// samples to count (an overwritten request).
pub fn remember(host: &impl Host, request_id: &str, attribution: &Attribution) -> Vec<Sample> {
    if !store::storable(request_id) {
        return Vec::new();
    }
    let key = store::key(request_id);
    for _ in 0..CAS_TRIES {
        let (value, cas) = host.get_shared_data(&key);
        let ring = value
            .as_deref()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        let (next, evicted) = store::insert(&ring, request_id, attribution);
        // `Some(0)` for a key never written: Envoy then writes unconditionally
        // (and a race on the very first write loses one insert at most).
        if host.set_shared_data(&key, Some(next.as_bytes()), Some(cas.unwrap_or(0))) {
            return if evicted {
                vec![counter(feedback::FEEDBACK_EVICTED)]
            } else {
                Vec::new()
            };
        }
    }
    log::info!("model-router: feedback store busy, request {request_id} not remembered");
    Vec::new()
}

/// The samples of one valid feedback: attributed when its request is known.
pub fn receive(host: &impl Host, feedback: &Feedback) -> Vec<Sample> {
    let (value, _) = host.get_shared_data(&store::key(&feedback.request_id));
    let attribution = value
        .as_deref()
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|ring| store::find(ring, &feedback.request_id));
    feedback::samples(feedback, attribution.as_ref())
}

/// The endpoint: `Ok` samples to count (answer 204), or `Err` the JSON body
/// of the 400 answer and the sample counting it.
pub fn endpoint(host: &impl Host, body: &[u8]) -> Result<Vec<Sample>, (String, Vec<Sample>)> {
    match Feedback::from_json(body) {
        Ok(feedback) => Ok(receive(host, &feedback)),
        Err(message) => Err((
            feedback::error_body(&message),
            vec![feedback::invalid_sample()],
        )),
    }
}

/// The `x-model-router-feedback` header of a request: never fails the
/// request it rides on; an invalid value is counted and logged.
pub fn from_header(host: &impl Host, value: &str) -> Vec<Sample> {
    match Feedback::from_header(value) {
        Ok(feedback) => receive(host, &feedback),
        Err(message) => {
            log::info!(
                "model-router: invalid {}: {message}",
                feedback::FEEDBACK_HEADER
            );
            vec![feedback::invalid_sample()]
        }
    }
}

fn counter(name: &str) -> Sample {
    Sample {
        kind: Kind::Counter,
        name: name.to_string(),
        value: 1,
    }
}
