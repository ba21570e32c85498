//! Filter glue for translation between APIs: the response of a translated
//! attempt is rewritten for the client (JSON buffered and replaced, event
//! streams chunk by chunk), and the models list is answered locally. All the
//! logic is in the core (`translation`, `models_list`).

use model_router_core::headers::Headers;
use model_router_core::policy::Policy;
use model_router_core::translation::ResponseTranslation;
use model_router_core::usage::UsageReader;

use crate::host::Host;

/// Answers `GET /v1/models` (and `/v1/models/{id}`) locally. True when answered.
pub fn answer_models(host: &impl Host, policy: &Policy, headers: &Headers) -> bool {
    let method = headers.get(":method").unwrap_or_default();
    let path = headers.get(":path").unwrap_or_default();
    match model_router_core::models_list::reply(policy, method, path) {
        Some(reply) => {
            host.send_json_reply(reply.status, &reply.body);
            true
        }
        None => false,
    }
}

/// Response headers of a translated answer: the body's length and type change.
pub fn on_response_headers(host: &impl Host, translation: &ResponseTranslation) {
    host.set_response_header("content-length", None);
    host.set_response_header("content-type", Some(translation.content_type()));
}

/// One response body callback of a translated answer. The usage reader sees
/// the upstream's own bytes, before translation. Returns false while a JSON
/// body is still being buffered (the filter must pause).
pub fn on_response_body(
    host: &impl Host,
    translation: &mut ResponseTranslation,
    reader: Option<&mut UsageReader>,
    size: usize,
    end_of_stream: bool,
) -> bool {
    let streaming = matches!(translation, ResponseTranslation::Stream(_));
    if !streaming && !end_of_stream {
        return false; // Envoy buffers the JSON body until its end
    }
    // At the end of a buffered JSON body, this is the whole body.
    let bytes = host.response_body_chunk(size);
    if let Some(reader) = reader {
        reader.feed(&bytes);
    }
    let out = if streaming {
        translation.chunk(&bytes, end_of_stream)
    } else {
        translation.json(&bytes)
    };
    if let Some(out) = out {
        host.replace_response_body(size, &out);
    }
    true
}
