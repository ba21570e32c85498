//! Translation in a request's life, as data for the filter: the body and
//! path of each attempt for its own model, and the response translated back
//! according to the model that answered. The translators themselves are in
//! `translate`; this module applies them to a decision.

use crate::actions::{self, LocalReply, RequestActions};
use crate::decision::{Decision, Outcome};
use crate::headers::{CLIENT_BODY_STATE, CLIENT_PATH_STATE};
use crate::metrics::{encode, Kind, Sample};
use crate::policy::{Mode, Model, ModelId, Policy};
use crate::request::{Api, ApiShape};
use crate::translate::{self, ResponseContext, StreamTranslator, Target, Translated, Translator};
use crate::usage::ResponseFormat;

/// Requests translated for their first attempt, by `from` and `to` API.
pub const TRANSLATED_REQUESTS: &str = "model_router_translated_requests_total";
/// Request fields dropped by a translation (no counterpart upstream).
pub const DROPPED_FIELDS: &str = "model_router_translation_dropped_fields_total";

/// How the first attempt was translated, for the audit record and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslationNote {
    pub from: Api,
    pub to: Api,
    pub dropped: Vec<String>,
}

/// The translator for `model` serving a request of `shape`, if it needs one.
pub fn translator_for(shape: ApiShape, model: &Model) -> Option<&'static dyn Translator> {
    match model.upstream_api(shape) {
        Ok(Some(api)) => translate::translator(shape, api),
        _ => None,
    }
}

fn target<'m>(policy: &Policy, model: &'m Model) -> Target<'m> {
    Target {
        provider_model: &model.provider_model,
        default_max_tokens: model
            .max_output_tokens
            .unwrap_or(policy.default_output_tokens),
    }
}

/// The path `model`'s request is sent to for a client request of `shape`
/// on `client_path`: under the model's provider for the API it receives
/// (translated or not), else the client's path, with the API suffix swapped
/// when the request is translated.
pub fn model_path(policy: &Policy, model: &Model, shape: ApiShape, client_path: &str) -> String {
    let translator = translator_for(shape, model);
    let sent = translator.map_or(shape, |t| t.upstream().shape());
    policy
        .upstream_path(model, sent)
        .unwrap_or_else(|| match translator {
            None => client_path.to_string(),
            Some(t) => translate::upstream_path(client_path, shape, t.upstream()),
        })
}

/// [`actions::request_actions`] plus paths and translation: a first model on
/// a provider gets its provider's path; one that does not speak the
/// request's API gets its body translated and its API's path. When a model
/// of the chain is on a provider, crosses APIs or has variants, the client's
/// path (and, crossing APIs or with variants, body) is kept in filter state
/// for the upstream filter to map each retry. A request that cannot be translated is
/// answered with a 400 in the client's API.
pub fn request_actions(
    policy: &Policy,
    decision: &Decision,
    path: &str,
    body: &[u8],
) -> (RequestActions, Option<TranslationNote>) {
    let mut todo = actions::request_actions(policy, decision, body);
    if policy.mode == Mode::Shadow {
        return (todo, None);
    }
    let (chain, translating): (&[ModelId], bool) = match &decision.outcome {
        Outcome::Route { chain } => (chain, true),
        // Passthrough sends one attempt, to the first model, untranslated.
        Outcome::Passthrough { chain } => (chain.get(..1).unwrap_or_default(), false),
        Outcome::Reject { .. } => return (todo, None),
    };
    let shape = decision.shape;
    let models: Vec<&Model> = chain.iter().filter_map(|id| policy.model(*id)).collect();
    let Some(first) = models.first() else {
        return (todo, None);
    };
    // The body before any variant: what each attempt is built from. Built
    // only when a retry or the translator needs it (`todo.body` already
    // holds the first attempt's for a native model).
    let routed = || match &decision.outcome {
        Outcome::Route { .. } => actions::routed_body(policy, decision, first, body),
        _ => body.to_vec(),
    };
    let crosses = translating
        && models
            .iter()
            .any(|m| m.upstream_api(shape) != first.upstream_api(shape));
    // Envoy replays attempt 1's body, variant fields included: a retry must
    // be built from the client's instead.
    let variants = translating && models.iter().any(|m| !m.variant.is_empty());
    let client_body = crosses || variants;
    let translator = translating.then(|| translator_for(shape, first)).flatten();
    let native_body = (client_body || translator.is_some()).then(routed);
    if client_body || models.iter().any(|m| m.provider.is_some()) {
        todo.filter_state
            .push((CLIENT_PATH_STATE.to_string(), path.to_string()));
    }
    if let Some(native) = native_body.as_deref().filter(|_| client_body) {
        todo.filter_state.push((
            CLIENT_BODY_STATE.to_string(),
            String::from_utf8_lossy(native).into_owned(),
        ));
    }
    if translator.is_some() || first.provider.is_some() {
        todo.set_headers
            .push((":path".to_string(), model_path(policy, first, shape, path)));
    }
    let Some(translator) = translator else {
        return (todo, None);
    };
    let native_body = native_body.unwrap_or_else(routed);
    match translator.request(&native_body, &target(policy, first)) {
        Ok(Translated { body, dropped }) => {
            // Variant fields are the upstream API's, set on the translated body.
            todo.body = Some(first.variant.apply(&body).unwrap_or(body));
            let note = TranslationNote {
                from: shape.api(),
                to: translator.upstream(),
                dropped,
            };
            (todo, Some(note))
        }
        Err(e) => {
            let reply = LocalReply {
                status: 400,
                body: client_error(shape, &e.message),
            };
            let todo = RequestActions {
                reply: Some(reply),
                ..RequestActions::default()
            };
            (todo, None)
        }
    }
}

/// A 400 error body in the client's API.
pub fn client_error(shape: ApiShape, message: &str) -> String {
    match shape {
        ApiShape::Messages => serde_json::json!({
            "type": "error",
            "error": {"type": "invalid_request_error", "message": message},
        })
        .to_string(),
        _ => actions::error_body(message, "unsupported_translation"),
    }
}

/// The body and path of retry attempt `attempt` from the client's body and
/// path (kept in filter state when the chain crosses APIs or has model
/// variants): natively for a model that speaks the client's API, else
/// translated; then the attempt's own variant fields, never another's. None when the plan
/// names no such attempt or the body cannot be translated.
pub fn attempt_request(
    policy: &Policy,
    plan: &str,
    attempt: u32,
    client_path: &str,
    client_body: &[u8],
) -> Option<(Vec<u8>, String)> {
    let shape = ApiShape::from_path(client_path)?;
    let model = policy.model(actions::planned_model(policy, plan, attempt)?)?;
    let body = match translator_for(shape, model) {
        None => actions::attempt_body(policy, plan, attempt, client_body)?,
        Some(t) => {
            let body = t.request(client_body, &target(policy, model)).ok()?.body;
            model.variant.apply(&body).unwrap_or(body)
        }
    };
    Some((body, model_path(policy, model, shape, client_path)))
}

/// The path of retry attempt `attempt` (known before its body arrives):
/// set on every retry, as upstream requests share one header map.
pub fn attempt_path(
    policy: &Policy,
    plan: &str,
    attempt: u32,
    client_path: &str,
) -> Option<String> {
    let shape = ApiShape::from_path(client_path)?;
    let model = policy.model(actions::planned_model(policy, plan, attempt)?)?;
    Some(model_path(policy, model, shape, client_path))
}

/// Counters of one translated request.
pub fn samples(note: &TranslationNote) -> Vec<Sample> {
    let mut out = vec![Sample {
        kind: Kind::Counter,
        name: encode(
            TRANSLATED_REQUESTS,
            &[("from", note.from.name()), ("to", note.to.name())],
        ),
        value: 1,
    }];
    for field in &note.dropped {
        out.push(Sample {
            kind: Kind::Counter,
            name: encode(
                DROPPED_FIELDS,
                &[("from", note.from.name()), ("field", field)],
            ),
            value: 1,
        });
    }
    out
}

/// A response on its way back to the client, translated when the model that
/// answered does not speak the client's API.
pub enum ResponseTranslation {
    /// JSON: the whole body is translated at the end (the filter buffers it).
    Json {
        translator: &'static dyn Translator,
        status: u32,
        ctx: ResponseContext,
    },
    /// An event stream: translated chunk by chunk.
    Stream(Box<StreamTranslator>),
}

impl ResponseTranslation {
    /// The translation of the response of attempt `attempts`, given its
    /// status and content type; None when it goes back untouched.
    pub fn for_response(
        policy: &Policy,
        decision: &Decision,
        attempts: u32,
        status: u32,
        content_type: &str,
    ) -> Option<ResponseTranslation> {
        let served = actions::served_model(decision, attempts)?;
        Self::for_model(policy, decision, served, status, content_type)
    }

    fn for_model(
        policy: &Policy,
        decision: &Decision,
        served: ModelId,
        status: u32,
        content_type: &str,
    ) -> Option<ResponseTranslation> {
        if policy.mode == Mode::Shadow || !matches!(decision.outcome, Outcome::Route { .. }) {
            return None;
        }
        let translator = translator_for(decision.shape, policy.model(served)?)?;
        // As natively: the client gets the usage chunk it asked for, or the one injected.
        let ctx = ResponseContext {
            include_usage: decision.stream_include_usage
                || policy.stream_usage == crate::policy::StreamUsage::Inject,
        };
        let success = (200..300).contains(&status);
        Some(match ResponseFormat::from_content_type(content_type) {
            ResponseFormat::EventStream if success => {
                ResponseTranslation::Stream(Box::new(translator.stream(&ctx)))
            }
            _ => ResponseTranslation::Json {
                translator,
                status,
                ctx,
            },
        })
    }

    /// The content type of the translated body.
    pub fn content_type(&self) -> &'static str {
        match self {
            ResponseTranslation::Json { .. } => "application/json",
            ResponseTranslation::Stream(_) => "text/event-stream",
        }
    }

    /// The whole JSON body, translated.
    pub fn json(&self, body: &[u8]) -> Option<Vec<u8>> {
        match self {
            ResponseTranslation::Json {
                translator,
                status,
                ctx,
            } => Some(translator.response(*status, body, ctx)),
            ResponseTranslation::Stream(_) => None,
        }
    }

    /// The client bytes for a chunk of an event stream (and, at the end, what
    /// is still owed).
    pub fn chunk(&mut self, chunk: &[u8], end_of_stream: bool) -> Option<Vec<u8>> {
        match self {
            ResponseTranslation::Stream(s) => {
                let mut out = s.feed(chunk);
                if end_of_stream {
                    out.extend(s.finish());
                }
                Some(out)
            }
            ResponseTranslation::Json { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests;
