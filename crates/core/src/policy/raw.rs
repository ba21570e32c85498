//! The policy as users write it: serde structs mirroring the JSON exactly.
//! Nothing here is validated beyond shape; `compile` turns it into the typed
//! runtime policy and names the JSON path of every problem.

use serde::Deserialize;

use super::ordered::OrderedMap;
pub use crate::provider::raw::{RawAuth, RawClients, RawProvider, RawTls};
pub use crate::signals::TokenCounting;
pub use crate::task::Scan;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    #[serde(default)]
    pub mode: Mode,
    pub models: OrderedMap<RawModel>,
    #[serde(default)]
    pub default_encoding: Option<String>,
    #[serde(default)]
    pub default_output_tokens: Option<u64>,
    #[serde(default)]
    pub tasks: OrderedMap<RawTask>,
    #[serde(default)]
    pub task_header: Option<String>,
    #[serde(default)]
    pub rules: Vec<RawRule>,
    pub default: RawTarget,
    #[serde(default)]
    pub cluster_header: Option<String>,
    #[serde(default)]
    pub budget_header: Option<String>,
    #[serde(default)]
    pub on_context_overflow: OnContextOverflow,
    #[serde(default)]
    pub on_budget_exceeded: OnBudgetExceeded,
    #[serde(default)]
    pub on_invalid_request: OnInvalidRequest,
    #[serde(default)]
    pub requested_model: Option<RawRequestedModel>,
    #[serde(default)]
    pub response_headers: Option<bool>,
    #[serde(default)]
    pub retry: Option<RawRetry>,
    #[serde(default)]
    pub baseline_model: Option<String>,
    #[serde(default)]
    pub tenant_header: Option<String>,
    #[serde(default)]
    pub tenants: Option<Vec<String>>,
    #[serde(default)]
    pub max_tenants: Option<usize>,
    #[serde(default)]
    pub stream_usage: StreamUsage,
    #[serde(default)]
    pub token_counting: TokenCounting,
    /// Prompt tokens of an image whose size the router cannot read (a remote
    /// URL, a file id). Default: a 1024 × 1024 high-detail image of the
    /// request's provider (OpenAI 765, Anthropic 1399).
    #[serde(default)]
    pub default_image_tokens: Option<u64>,
    /// Translate requests for models whose `api` does not accept them (default true).
    #[serde(default)]
    pub translate: Option<bool>,
    /// Remember each routed request for quality feedback (default true).
    #[serde(default)]
    pub feedback: Option<bool>,
    /// Learned classifiers by name, read by `score` conditions.
    #[serde(default)]
    pub classifiers: OrderedMap<crate::classifier::RawClassifier>,
    /// Where models' requests go: name → base URL, auth, headers, TLS.
    #[serde(default)]
    pub providers: OrderedMap<RawProvider>,
    /// Callers authenticate with their own keys (Envoy's API-key filter).
    #[serde(default)]
    pub clients: Option<RawClients>,
    /// Model cooldowns after 429s (and failures past a threshold).
    #[serde(default)]
    pub cooldown: Option<RawCooldown>,
    /// Envoy clusters with several endpoints (replicas, regions), their
    /// health checking; read by the config generator, ignored by the filter.
    #[serde(default)]
    pub clusters: Option<OrderedMap<RawCluster>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCooldown {
    pub enabled: Option<bool>,
    pub default_ms: Option<u64>,
    pub max_ms: Option<u64>,
    pub statuses: Option<Vec<u16>>,
    pub failure_threshold: Option<u32>,
    pub failure_window_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    /// None or empty: the endpoint given on the command line (`--upstream`).
    #[serde(default)]
    pub endpoints: Vec<RawEndpoint>,
    #[serde(default)]
    pub outlier_detection: Option<RawOutlierDetection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEndpoint {
    /// `host:port`.
    pub address: String,
    /// Any JSON here: `compile` refuses what is not an integer in 1..=128.
    #[serde(default)]
    pub weight: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutlierDetection {
    pub consecutive_5xx: Option<u32>,
    pub consecutive_gateway_failure: Option<u32>,
    pub consecutive_local_origin_failure: Option<u32>,
    pub interval_ms: Option<u64>,
    pub base_ejection_time_ms: Option<u64>,
    pub max_ejection_percent: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    /// An Envoy cluster the user wires; exactly one of `cluster` and `provider`.
    #[serde(default)]
    pub cluster: Option<String>,
    #[serde(default)]
    pub provider_model: Option<String>,
    #[serde(default)]
    pub tier: Option<String>,
    /// Required unless the model takes it from the price catalogue.
    #[serde(default)]
    pub context_window: Option<u64>,
    #[serde(default)]
    pub max_output_tokens: Option<u64>,
    /// Prices, or `"catalog"`: the catalogue entry of this model's own name.
    #[serde(default)]
    pub pricing: Option<RawPricingSource>,
    #[serde(default)]
    pub encoding: Option<String>,
    /// For a model whose tokenizer is not public: an encoding and a ratio.
    #[serde(default)]
    pub estimate: Option<RawEstimate>,
    /// The API(s) the model's endpoint accepts; default `openai_chat`.
    #[serde(default)]
    pub api: Option<RawApis>,
    /// Overrides the policy's `translate` for this model.
    #[serde(default)]
    pub translate: Option<bool>,
    /// A price catalogue entry (`"anthropic/claude-sonnet-4"`) whose prices,
    /// context window and max output fill in what the policy leaves out.
    #[serde(default)]
    pub catalog: Option<String>,
    /// A provider of `providers`: its generated cluster serves the model.
    #[serde(default)]
    pub provider: Option<String>,
    /// Azure OpenAI: the deployment name in the path (default: provider_model).
    #[serde(default)]
    pub deployment: Option<String>,
    /// Body fields this model's requests get (a model variant); a JSON
    /// value so a wrong shape is refused with its path.
    #[serde(default)]
    pub set: Option<serde_json::Value>,
    /// Whether `set` replaces fields the client set (default: keeps them).
    #[serde(default, rename = "override")]
    pub override_client: Option<bool>,
}

/// `"openai_chat"` or `["openai_chat", "openai_responses"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawApis {
    One(String),
    Many(Vec<String>),
}

/// Prompt tokens = ceil(tokens with `encoding` × `ratio`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEstimate {
    #[serde(default)]
    pub encoding: Option<String>,
    pub ratio: f64,
}

/// USD per million tokens. Input and output are required unless the model
/// names a catalogue entry, whose prices fill in the missing fields.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPricing {
    #[serde(default)]
    pub input_per_mtok: Option<f64>,
    #[serde(default)]
    pub output_per_mtok: Option<f64>,
    #[serde(default)]
    pub cached_input_per_mtok: Option<f64>,
    /// Cache writes with the default 5-minute lifetime.
    #[serde(default)]
    pub cache_write_per_mtok: Option<f64>,
    #[serde(default)]
    pub cache_write_1h_per_mtok: Option<f64>,
    #[serde(default)]
    pub long_context: Option<RawLongContext>,
}

/// The higher tier for requests whose prompt exceeds `above_prompt_tokens`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLongContext {
    #[serde(default)]
    pub above_prompt_tokens: Option<u64>,
    #[serde(default)]
    pub input_per_mtok: Option<f64>,
    #[serde(default)]
    pub output_per_mtok: Option<f64>,
    #[serde(default)]
    pub cached_input_per_mtok: Option<f64>,
    #[serde(default)]
    pub cache_write_per_mtok: Option<f64>,
    #[serde(default)]
    pub cache_write_1h_per_mtok: Option<f64>,
}

/// `"pricing": {...}` or `"pricing": "catalog"`. Read by hand rather than
/// as an untagged enum so that an error inside the object keeps its JSON
/// path and serde's own message.
#[derive(Debug, Clone)]
pub enum RawPricingSource {
    Catalog,
    Prices(RawPricing),
}

impl<'de> Deserialize<'de> for RawPricingSource {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SourceVisitor;
        impl<'de> serde::de::Visitor<'de> for SourceVisitor {
            type Value = RawPricingSource;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(r#"a pricing object or "catalog""#)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                if v == "catalog" {
                    Ok(RawPricingSource::Catalog)
                } else {
                    Err(E::invalid_value(serde::de::Unexpected::Str(v), &self))
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                let de = serde::de::value::MapAccessDeserializer::new(map);
                RawPricing::deserialize(de).map(RawPricingSource::Prices)
            }
        }
        deserializer.deserialize_any(SourceVisitor)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTask {
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default)]
    pub patterns: Vec<String>,
    #[serde(default)]
    pub scan: Scan,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub name: String,
    #[serde(default)]
    pub when: Option<RawCondition>,
    pub target: RawTarget,
}

/// A condition is an object with exactly one key naming its kind.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RawCondition {
    All(Vec<RawCondition>),
    Any(Vec<RawCondition>),
    Not(Box<RawCondition>),
    PromptTokens(RawRange),
    MaxOutputTokens(RawRange),
    Messages(RawRange),
    Task(RawTaskMatch),
    Header(RawHeaderMatch),
    RequestedModel(RawStringMatch),
    Path(RawPathMatch),
    StructuredOutput(bool),
    Tools(bool),
    Stream(bool),
    Images(bool),
    /// The request's API: a name, or `{"in": [names]}`.
    Api(RawTaskMatch),
    /// A classifier's probability that the weak model fails.
    Score(RawScore),
}

/// `{"classifier": NAME, "gt" | "lt": probability}` or
/// `{"classifier": NAME, "top_share": share}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScore {
    pub classifier: String,
    pub gt: Option<f64>,
    pub lt: Option<f64>,
    pub top_share: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRange {
    pub lt: Option<u64>,
    pub lte: Option<u64>,
    pub gt: Option<u64>,
    pub gte: Option<u64>,
}

/// A name or `{"in": [names]}` (tasks, APIs).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawTaskMatch {
    Name(String),
    In(RawIn),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIn {
    #[serde(rename = "in")]
    pub values: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStringMatch {
    pub equals: Option<String>,
    #[serde(rename = "in")]
    pub values: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeaderMatch {
    pub name: String,
    pub equals: Option<String>,
    #[serde(rename = "in")]
    pub values: Option<Vec<String>>,
    pub present: Option<bool>,
    pub matches: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPathMatch {
    pub equals: Option<String>,
    pub prefix: Option<String>,
}

/// A model name, a fallback chain of model names, a tier, or a weighted split.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawTarget {
    Model(String),
    Chain(Vec<String>),
    Tier(RawTier),
    Split(RawSplit),
}

/// `{"split": [{"target": T, "weight": 90}, ...], "key": {"header": "x-session-id"}}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSplit {
    pub split: Vec<RawBranch>,
    #[serde(default)]
    pub key: Option<RawSplitKey>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBranch {
    pub target: RawTarget,
    /// Any JSON here: `compile` refuses what is not a non-negative integer
    /// with this field's path (inside an untagged enum serde would only say
    /// that nothing matched).
    pub weight: serde_json::Value,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSplitKey {
    pub header: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTier {
    pub tier: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequestedModel {
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub honor_explicit_model: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    pub per_try_timeout_ms: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub base_interval_ms: Option<u64>,
    pub max_interval_ms: Option<u64>,
    pub retriable_status_codes: Option<Vec<u16>>,
    /// Envoy's `per_try_idle_timeout`: an attempt that receives no byte for
    /// this long is abandoned and the chain continues.
    pub per_try_idle_timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Enforce,
    Shadow,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnContextOverflow {
    #[default]
    Escalate,
    Reject,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnBudgetExceeded {
    #[default]
    Cheapest,
    Reject,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnInvalidRequest {
    #[default]
    Passthrough,
    Reject,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamUsage {
    #[default]
    Inject,
    Off,
}
