//! Model variants: body fields a model entry sets on its requests
//! (`"set": {"service_tier": "flex"}`), so `gpt-5-flex` or `o4-mini-low` are
//! models of the pool with their own prices. Applied to the body sent
//! upstream, in the model's API (after translation), by splicing members
//! so the rest of the body keeps its bytes.

use crate::request::top_level::TopLevel;
use crate::request::{Api, ApiSet};
use crate::rewrite::Edits;

use super::PolicyError;

/// The body fields a model sets, compiled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Variant {
    /// (top-level field, its JSON text), in the order written.
    pub fields: Vec<(String, String)>,
    /// Replace a value the client set; otherwise the client's is kept (an
    /// object the client set is completed with the keys it lacks).
    pub override_client: bool,
}

/// Fields the router itself decides or whose change would break the
/// client's reading of the answer.
const REFUSED: [(&str, &str); 2] = [
    (
        "model",
        "the body's `model` is the entry's `provider_model`; set that instead",
    ),
    (
        "stream",
        "the client chooses whether it reads a stream; a variant cannot change it",
    ),
];

/// Top-level request fields each API documents (besides its content and
/// `model`/`stream`); a `set` field outside its model's lists is a warning.
pub fn known_fields(api: Api) -> &'static [&'static str] {
    match api {
        Api::OpenaiChat => &[
            "service_tier",
            "reasoning_effort",
            "verbosity",
            "temperature",
            "top_p",
            "max_tokens",
            "max_completion_tokens",
            "seed",
            "store",
            "metadata",
            "user",
            "safety_identifier",
            "prompt_cache_key",
            "prompt_cache_retention",
            "parallel_tool_calls",
            "tool_choice",
            "response_format",
            "frequency_penalty",
            "presence_penalty",
            "logit_bias",
            "logprobs",
            "top_logprobs",
            "n",
            "stop",
            "modalities",
            "audio",
            "prediction",
            "web_search_options",
            "stream_options",
        ],
        Api::OpenaiResponses => &[
            "service_tier",
            "reasoning",
            "text",
            "temperature",
            "top_p",
            "max_output_tokens",
            "max_tool_calls",
            "store",
            "background",
            "truncation",
            "include",
            "metadata",
            "user",
            "safety_identifier",
            "prompt_cache_key",
            "prompt_cache_retention",
            "parallel_tool_calls",
            "tool_choice",
            "top_logprobs",
        ],
        Api::AnthropicMessages => &[
            "service_tier",
            "thinking",
            "temperature",
            "top_p",
            "top_k",
            "max_tokens",
            "stop_sequences",
            "metadata",
            "tool_choice",
            "container",
            "mcp_servers",
            "context_management",
        ],
    }
}

/// Compiles a model's `set` and `override` (at JSON path `path`, the model's).
pub fn compile(
    set: Option<&serde_json::Value>,
    override_client: Option<bool>,
    path: &str,
) -> Result<Variant, PolicyError> {
    let Some(set) = set else {
        if override_client.is_some() {
            return Err(PolicyError::new(
                format!("{path}.override"),
                "says whether `set` replaces the client's fields; it needs `set`",
            ));
        }
        return Ok(Variant::default());
    };
    let serde_json::Value::Object(map) = set else {
        return Err(PolicyError::new(
            format!("{path}.set"),
            "must be an object of request body fields (`{\"service_tier\": \"flex\"}`)",
        ));
    };
    let mut fields = Vec::with_capacity(map.len());
    for (key, value) in map {
        if let Some((_, why)) = REFUSED.iter().find(|(name, _)| name == key) {
            return Err(PolicyError::new(format!("{path}.set.{key}"), *why));
        }
        fields.push((key.clone(), value.to_string()));
    }
    Ok(Variant {
        fields,
        override_client: override_client.unwrap_or(false),
    })
}

/// One warning per `set` field that none of the model's APIs documents
/// (at JSON path `path`, the model's): sent as written, but likely a typo.
pub fn warnings(variant: &Variant, apis: ApiSet, path: &str) -> Vec<String> {
    let names: Vec<&str> = Api::ALL
        .into_iter()
        .filter(|a| apis.contains(*a))
        .map(Api::name)
        .collect();
    variant
        .fields
        .iter()
        .filter(|(key, _)| {
            !Api::ALL
                .into_iter()
                .any(|a| apis.contains(a) && known_fields(a).contains(&key.as_str()))
        })
        .map(|(key, _)| {
            format!(
                "{path}.set.{key}: not a known request field of {}; sent as written",
                names.join(" or ")
            )
        })
        .collect()
}

/// [`warnings`] for every model of `policy`, for `model-router check`.
pub fn policy_warnings(policy: &super::Policy) -> Vec<String> {
    policy
        .models
        .iter()
        .flat_map(|m| warnings(&m.variant, m.apis, &format!("models.{}", m.name)))
        .collect()
}

impl Variant {
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// `body` (a JSON object) with the variant's fields set; the client's
    /// own values win unless `override_client`. None when nothing changes
    /// or the body is not a JSON object.
    pub fn apply(&self, body: &[u8]) -> Option<Vec<u8>> {
        if self.is_empty() {
            return None;
        }
        let text = std::str::from_utf8(body).ok()?;
        let top = TopLevel::parse(text).ok()?;
        let mut edits = Edits::default();
        for (key, value) in &self.fields {
            let spans = top.spans(text, key);
            let written = match top.get(key) {
                None => value.clone(),
                Some(_) if self.override_client => value.clone(),
                Some(client) => match completed(client.get(), value) {
                    Some(merged) => merged,
                    None => continue,
                },
            };
            edits.set_member(key, &spans, &written);
        }
        Some(edits.apply(body))
    }
}

/// The client's object `client` completed with the keys of object `ours`
/// it lacks (`reasoning: {summary}` + `{effort}`); None when either is not
/// an object or nothing is missing, and the client's value stays.
fn completed(client: &str, ours: &str) -> Option<String> {
    let serde_json::Value::Object(mut theirs) = serde_json::from_str(client).ok()? else {
        return None;
    };
    let serde_json::Value::Object(ours) = serde_json::from_str(ours).ok()? else {
        return None;
    };
    let mut changed = false;
    for (key, value) in ours {
        if !theirs.contains_key(&key) {
            theirs.insert(key, value);
            changed = true;
        }
    }
    changed.then(|| serde_json::Value::Object(theirs).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn variant(set: serde_json::Value, override_client: bool) -> Variant {
        compile(Some(&set), Some(override_client), "models.m").unwrap()
    }

    fn applied(v: &Variant, body: &str) -> String {
        String::from_utf8(v.apply(body.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn missing_fields_are_inserted_and_the_rest_keeps_its_bytes() {
        let v = variant(json!({"service_tier": "flex"}), false);
        assert_eq!(
            applied(&v, r#"{"model":"x", "temperature": 1.50}"#),
            r#"{"service_tier":"flex","model":"x", "temperature": 1.50}"#
        );
    }

    #[test]
    fn the_clients_value_is_kept_unless_the_policy_overrides_it() {
        let body = r#"{"model":"x","reasoning_effort":"high","n":1}"#;
        let kept = variant(json!({"reasoning_effort": "low"}), false);
        assert_eq!(applied(&kept, body), body);
        let forced = variant(json!({"reasoning_effort": "low"}), true);
        assert_eq!(
            applied(&forced, body),
            r#"{"model":"x","reasoning_effort":"low","n":1}"#
        );
    }

    #[test]
    fn an_object_the_client_set_is_completed_with_the_missing_keys() {
        let v = variant(json!({"reasoning": {"effort": "low"}}), false);
        let out = applied(&v, r#"{"model":"x","reasoning":{"summary":"auto"}}"#);
        let sent: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            sent["reasoning"],
            json!({"summary": "auto", "effort": "low"})
        );
        let asked = r#"{"model":"x","reasoning":{"effort":"high"}}"#;
        assert_eq!(applied(&v, asked), asked);
    }

    #[test]
    fn no_set_changes_nothing() {
        assert_eq!(Variant::default().apply(b"{}"), None);
        let v = variant(json!({"service_tier": "flex"}), false);
        assert_eq!(v.apply(b"not json"), None);
    }

    #[test]
    fn bad_shapes_are_refused_with_their_path() {
        let err = compile(Some(&json!("flex")), None, "models.m").unwrap_err();
        assert_eq!(err.path, "models.m.set");
        let err = compile(Some(&json!({"model": "gpt-5"})), None, "models.m").unwrap_err();
        assert_eq!(err.path, "models.m.set.model");
        let err = compile(Some(&json!({"stream": true})), None, "models.m").unwrap_err();
        assert_eq!(err.path, "models.m.set.stream");
        let err = compile(None, Some(true), "models.m").unwrap_err();
        assert_eq!(err.path, "models.m.override");
    }

    #[test]
    fn policies_refuse_bad_sets_and_warn_of_unknown_fields() {
        let policy = |set: serde_json::Value| {
            json!({"models": {"gpt-flex": {"cluster": "c", "context_window": 1000, "set": set}},
                   "default": "gpt-flex"})
            .to_string()
        };
        let err = super::super::Policy::from_json(&policy(json!(["flex"]))).unwrap_err();
        assert_eq!(err.path, "models.gpt-flex.set");
        let err = super::super::Policy::from_json(&policy(json!({"model": "x"}))).unwrap_err();
        assert_eq!(err.path, "models.gpt-flex.set.model");
        let ok = super::super::Policy::from_json(&policy(json!({"servce_tier": "flex"}))).unwrap();
        assert_eq!(
            policy_warnings(&ok),
            vec!["models.gpt-flex.set.servce_tier: not a known request field of openai_chat; sent as written"]
        );
    }

    #[test]
    fn unknown_fields_are_warnings_per_api() {
        let v = variant(
            json!({"service_tier": "flex", "reasoning_efort": "low"}),
            false,
        );
        assert_eq!(
            warnings(&v, ApiSet::of(Api::OpenaiChat), "models.m"),
            vec!["models.m.set.reasoning_efort: not a known request field of openai_chat; sent as written"]
        );
        let thinking = variant(json!({"thinking": {"type": "enabled"}}), false);
        assert_eq!(
            warnings(&thinking, ApiSet::of(Api::OpenaiChat), "models.m").len(),
            1
        );
        assert!(warnings(&thinking, ApiSet::of(Api::AnthropicMessages), "models.m").is_empty());
    }
}
