//! Request headers as the core sees them: lower-case names, text values.
//! Header and metric names the router itself uses live here too.

/// Response header naming the model that served the request.
pub const MODEL_HEADER: &str = "x-model-router-model";
/// Response header naming the rule that decided.
pub const RULE_HEADER: &str = "x-model-router-rule";
/// Response header with the prompt token count (default encoding).
pub const PROMPT_TOKENS_HEADER: &str = "x-model-router-prompt-tokens";
/// Response header with the number of upstream attempts.
pub const ATTEMPTS_HEADER: &str = "x-model-router-attempts";
/// Filter state (`wasm.<name>` in Envoy) holding the cluster of attempt N:
/// `model_router_try_1`, `model_router_try_2`, … The route's matcher cluster
/// specifier reads it on every attempt.
pub const TRY_STATE_PREFIX: &str = "model_router_try_";
/// Filter state with the chain's model names, comma-separated, for the
/// upstream filter (filter state never reaches a provider, unlike a header).
pub const CHAIN_STATE: &str = "model_router_chain";
/// Filter state with the client's request path, kept when a fallback chain
/// crosses APIs or has a model on a provider: the upstream filter maps each
/// retry's path (and translates its body) from it.
pub const CLIENT_PATH_STATE: &str = "model_router_client_path";
/// Filter state with the client's request body (the model already written
/// in), kept with [`CLIENT_PATH_STATE`].
pub const CLIENT_BODY_STATE: &str = "model_router_client_body";
/// Filter state with the decision as one JSON object, for access logs.
pub const DECISION_STATE: &str = "model_router_decision";
/// Envoy's per-request retry budget header: the filter sets it to the chain
/// length minus one so a chain never retries past its last model.
pub const MAX_RETRIES_HEADER: &str = "x-envoy-max-retries";
/// Envoy's attempt counter (request side for upstream filters, response side
/// with `include_attempt_count_in_response`).
pub const ATTEMPT_COUNT_HEADER: &str = "x-envoy-attempt-count";
/// Envoy headers a client could send to change retries or attempt numbering:
/// removed from every request, so the policy alone decides.
pub const ENVOY_CONTROL_HEADERS: [&str; 9] = [
    "x-envoy-attempt-count",
    "x-envoy-max-retries",
    "x-envoy-retry-on",
    "x-envoy-retry-grpc-on",
    "x-envoy-retriable-status-codes",
    "x-envoy-retriable-header-names",
    "x-envoy-upstream-rq-timeout-ms",
    "x-envoy-upstream-rq-per-try-timeout-ms",
    "x-envoy-hedge-on-per-try-timeout",
];
/// Every header starting with this prefix is the router's own: a client copy is removed.
pub const OWN_PREFIX: &str = "x-model-router-";
/// `root_id` of the upstream (per-attempt) filter plugin.
pub const UPSTREAM_ROOT_ID: &str = "model_router_upstream";
/// Default name of the header Envoy's route reads to pick the cluster.
pub const DEFAULT_CLUSTER_HEADER: &str = "x-model-router-cluster";

/// A request's headers, names lower-cased. Values that are not UTF-8 are
/// kept out: no condition can match them, and nothing panics on them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(String, String)>,
}

impl Headers {
    pub fn new() -> Headers {
        Headers::default()
    }

    pub fn from_pairs<N: AsRef<str>, V: AsRef<str>>(pairs: &[(N, V)]) -> Headers {
        let mut headers = Headers::new();
        for (name, value) in pairs {
            headers.insert(name.as_ref(), value.as_ref());
        }
        headers
    }

    pub fn insert(&mut self, name: &str, value: &str) {
        self.entries
            .push((name.to_ascii_lowercase(), value.to_string()));
    }

    /// The first value of `name` (which must be lower-case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Envoy's attempt number in [`ATTEMPT_COUNT_HEADER`]: 1 for the first
    /// attempt, and when the header is missing or not a number.
    pub fn attempt_number(&self) -> u32 {
        attempt_number(self.get(ATTEMPT_COUNT_HEADER))
    }
}

/// The attempt number a value of [`ATTEMPT_COUNT_HEADER`] says: 1 when it
/// is missing or not a number.
pub fn attempt_number(value: Option<&str>) -> u32 {
    value
        .and_then(|v| v.trim().parse::<u32>().ok())
        .unwrap_or(1)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempt_number_defaults_to_one() {
        let of = |v: &str| Headers::from_pairs(&[(ATTEMPT_COUNT_HEADER, v)]).attempt_number();
        assert_eq!(Headers::new().attempt_number(), 1);
        assert_eq!((of("3"), of(" 2 "), of("0"), of("x")), (3, 2, 1, 1));
    }
}
