//! Filter glue for translation between APIs: the response of a translated
//! attempt is rewritten for the client (JSON buffered and replaced, event
//! streams chunk by chunk), and the models list is answered locally. All the
//! logic is in the core (`translation`, `models_list`).

use super::host;
use crate::headers::Headers;
use crate::metrics::Sample;
use crate::policy::Policy;
use crate::translation::ResponseTranslation;
use crate::usage::UsageReader;

/// Answers `GET /v1/models` (and `/v1/models/{id}`) locally. True when answered.
pub fn answer_models(policy: &Policy, headers: &Headers) -> bool {
    let method = headers.get(":method").unwrap_or_default();
    let path = headers.get(":path").unwrap_or_default();
    match crate::models_list::reply(policy, method, path) {
        Some(reply) => {
            host::send_json_reply(reply.status, &reply.body);
            true
        }
        None => false,
    }
}

/// Response headers of a translated answer: the body's length and type change.
pub fn on_response_headers(translation: &ResponseTranslation) {
    host::remove_response_header("content-length");
    host::set_response_header("content-type", translation.content_type());
}

/// One response body callback of a translated answer. The usage reader sees
/// the upstream's own bytes, before translation. Returns false while a JSON
/// body is still being buffered (the filter must pause).
pub fn on_response_body(
    translation: &mut ResponseTranslation,
    reader: Option<&mut UsageReader>,
    size: usize,
    end_of_stream: bool,
) -> bool {
    match translation {
        ResponseTranslation::Json { .. } => {
            if !end_of_stream {
                return false; // Envoy buffers until the end
            }
            let body = host::response_body_chunk(size);
            if let Some(reader) = reader {
                reader.feed(&body);
            }
            if let Some(out) = translation.json(&body) {
                host::replace_response_body(size, &out);
            }
            true
        }
        ResponseTranslation::Stream(_) => {
            let chunk = host::response_body_chunk(size);
            if let Some(reader) = reader {
                reader.feed(&chunk);
            }
            if let Some(out) = translation.chunk(&chunk, end_of_stream) {
                host::replace_response_body(size, &out);
            }
            true
        }
    }
}

/// Records the counters of a translated request.
pub fn record(shared: &super::root::Shared, samples: &[Sample]) {
    if let Ok(mut sink) = shared.metrics.try_borrow_mut() {
        sink.record(samples);
    }
}
