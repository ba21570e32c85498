//! The routing policy: raw JSON (`raw`) compiled once into typed runtime
//! structures (`Policy`). Every problem is a `PolicyError` naming its JSON path.

pub mod catalog;
mod compile;
mod error;
mod ordered;
mod pricing;
mod providers;
pub mod raw;
mod rule_index;
pub mod split;
mod traffic;
mod upstream_view;
pub mod variant;

use crate::condition::Condition;
use crate::cost::Pricing;
use crate::headers::Headers;
use crate::provider::{Clients, Provider, ProviderId};
use crate::request::{Api, ApiSet, ApiShape, Ratio, RequestFacts};
use crate::signals::{Counting, Tokenizer};
use crate::task::{Task, TaskMatcher};
use crate::tokens::Encoding;

pub use error::PolicyError;
pub use raw::{
    Mode, OnBudgetExceeded, OnContextOverflow, OnInvalidRequest, Scan, StreamUsage, TokenCounting,
};
pub use rule_index::RuleIndex;
pub use upstream_view::upstream_view;

pub use crate::ids::{ModelId, TaskId};

#[derive(Debug, Clone)]
pub struct Model {
    pub name: String,
    pub cluster: String,
    /// What is written into the body's `model` field.
    pub provider_model: String,
    /// `provider_model` encoded once as a JSON string, ready to splice.
    pub provider_model_json: String,
    pub tier: Option<String>,
    pub context_window: u64,
    pub max_output_tokens: Option<u64>,
    pub pricing: Pricing,
    /// The encoding prompt tokens are counted with (the estimate's, if any).
    pub encoding: Encoding,
    /// Set when `encoding` is not the model's own tokenizer: counts are
    /// scaled by this ratio.
    pub estimate: Option<Ratio>,
    /// The APIs the model's endpoint accepts.
    pub apis: ApiSet,
    /// Requests of other APIs may be translated for this model.
    pub translate: bool,
    /// The price catalogue entry the model's prices come from, if any.
    pub catalog: Option<String>,
    /// The provider serving it (its cluster is the provider's name), when
    /// the model names one instead of a cluster.
    pub provider: Option<ProviderId>,
    /// Azure OpenAI deployment name (the provider_model unless set).
    pub deployment: String,
    /// Body fields its requests get (`set`); empty for a plain model.
    pub variant: variant::Variant,
}

impl Model {
    pub fn accepts(&self, api: Api) -> bool {
        self.apis.contains(api)
    }

    /// The model can serve requests of `shape`, natively or translated.
    pub fn serves(&self, shape: ApiShape) -> bool {
        self.upstream_api(shape).is_ok()
    }

    /// How the model serves requests of `shape`: natively (None) or
    /// translated to the API given; Err when it cannot.
    #[allow(clippy::result_unit_err)]
    pub fn upstream_api(&self, shape: ApiShape) -> Result<Option<Api>, ()> {
        crate::translate::upstream_api(shape, self.apis, self.translate)
    }

    /// The APIs whose requests can reach this model.
    pub fn reachable_apis(&self) -> ApiSet {
        if self.translate {
            crate::translate::reachable_apis(self.apis)
        } else {
            self.apis
        }
    }
}

/// Where a rule sends requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A fallback chain, tried in the order written (one model is a chain of one).
    Chain(Vec<ModelId>),
    /// The models of a tier, ordered per request by projected cost, cheapest first.
    Tier { name: String, models: Vec<ModelId> },
    /// One weighted branch per request (see `split`).
    Split(split::Split),
}

impl Target {
    pub fn models(&self) -> &[ModelId] {
        match self {
            Target::Chain(models) | Target::Tier { models, .. } => models,
            Target::Split(split) => &split.models,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub when: Condition,
    pub target: Target,
}

/// Which request `model` values ask to be routed, and whether a concrete one is obeyed.
#[derive(Debug, Clone, Default)]
pub struct RequestedModelPolicy {
    pub aliases: Vec<String>,
    pub honor_explicit_model: bool,
}

/// Retry settings for the generated Envoy route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySettings {
    pub per_try_timeout_ms: u64,
    pub timeout_ms: u64,
    pub base_interval_ms: u64,
    pub max_interval_ms: u64,
    pub retriable_status_codes: Vec<u16>,
    /// None: no idle timeout beyond `per_try_timeout_ms`.
    pub per_try_idle_timeout_ms: Option<u64>,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            per_try_timeout_ms: 30_000,
            timeout_ms: 120_000,
            base_interval_ms: 25,
            max_interval_ms: 250,
            retriable_status_codes: vec![429, 500, 502, 503, 504],
            per_try_idle_timeout_ms: None,
        }
    }
}

/// Header names the router reads and writes; all lower-case.
#[derive(Debug, Clone)]
pub struct HeaderNames {
    pub cluster: String,
    pub budget: Option<String>,
    pub task: Option<String>,
    pub tenant: Option<String>,
}

/// A validated policy, ready for the hot path.
#[derive(Debug, Clone)]
pub struct Policy {
    pub mode: Mode,
    pub models: Vec<Model>,
    pub tasks: Vec<Task>,
    pub rules: Vec<Rule>,
    pub default: Target,
    pub default_encoding: Encoding,
    pub default_output_tokens: u64,
    pub headers: HeaderNames,
    pub on_context_overflow: OnContextOverflow,
    pub on_budget_exceeded: OnBudgetExceeded,
    pub on_invalid_request: OnInvalidRequest,
    pub requested_model: RequestedModelPolicy,
    pub response_headers: bool,
    pub retry: RetrySettings,
    pub baseline_model: Option<ModelId>,
    /// Tenant label values kept as they are; others fold into `other`.
    pub tenants: Option<Vec<String>>,
    pub max_tenants: usize,
    pub stream_usage: StreamUsage,
    pub token_counting: TokenCounting,
    /// Tokens of an image of unknown size; None: the provider's 1024 × 1024 price.
    pub default_image_tokens: Option<u64>,
    /// Requests may be translated between APIs (each model can override).
    pub translate: bool,
    /// Each routed request's attribution is remembered for quality feedback
    /// (a shared-data read and write per request: 10-20 µs of Envoy CPU).
    pub feedback: bool,
    /// Learned classifiers, in policy order (`ClassifierId` indexes them).
    pub classifiers: Vec<crate::classifier::Classifier>,
    /// Per classifier: some `top_share` condition reads it, so its scores
    /// feed a sliding window.
    pub windowed: Vec<bool>,
    /// Every task's keywords and patterns, compiled together.
    pub task_matcher: TaskMatcher,
    /// `rules` indexed by the task their first condition needs.
    pub rule_index: RuleIndex,
    pub providers: Vec<Provider>,
    pub clients: Option<Clients>,
    pub cooldown: crate::cooldown::CooldownSettings,
    /// Clusters with endpoints listed in the policy (for the generated Envoy config).
    pub clusters: Vec<ClusterSpec>,
}

/// A cluster's endpoints and passive health checking, from the policy's `clusters`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    pub name: String,
    /// (host, port, weight 1..=128).
    pub endpoints: Vec<(String, u16, u32)>,
    pub outlier_detection: Option<OutlierDetection>,
}

/// Envoy outlier detection settings (ejection of failing endpoints).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutlierDetection {
    pub consecutive_5xx: u32,
    pub consecutive_gateway_failure: u32,
    pub consecutive_local_origin_failure: u32,
    pub interval_ms: u64,
    pub base_ejection_time_ms: u64,
    pub max_ejection_percent: u32,
}

impl Default for OutlierDetection {
    fn default() -> Self {
        OutlierDetection {
            consecutive_5xx: 5,
            consecutive_gateway_failure: 5,
            consecutive_local_origin_failure: 5,
            interval_ms: 10_000,
            base_ejection_time_ms: 30_000,
            max_ejection_percent: 50,
        }
    }
}

impl Policy {
    /// Parses and validates a policy from JSON text.
    pub fn from_json(json: &str) -> Result<Policy, PolicyError> {
        compile::compile_json(json)
    }

    /// Builds what the policy otherwise builds on its first decision (the
    /// task keyword automaton), so that the first request does not pay.
    pub fn prepare(&self) {
        self.task_matcher.prepare();
    }

    pub fn model(&self, id: ModelId) -> Option<&Model> {
        self.models.get(id.0)
    }

    pub fn model_by_name(&self, name: &str) -> Option<ModelId> {
        self.models.iter().position(|m| m.name == name).map(ModelId)
    }

    pub fn provider_of(&self, model: &Model) -> Option<&Provider> {
        model.provider.and_then(|id| self.providers.get(id.0))
    }

    /// The path a request of `shape` is sent to on `model`'s provider; None
    /// for models on user clusters (the client's path is kept).
    pub fn upstream_path(&self, model: &Model, shape: ApiShape) -> Option<String> {
        self.provider_of(model)
            .map(|p| p.upstream_path(shape, &model.deployment))
    }

    /// Files the policy names, with where: key files, CA bundles, the
    /// clients' key file. The filter never opens them; `model-router check`
    /// and `envoy` refuse a policy naming one that does not exist.
    pub fn named_files(&self) -> Vec<(String, String)> {
        let mut files = Vec::new();
        for p in &self.providers {
            if let Some(auth) = &p.auth {
                files.push((auth.file_path.clone(), auth.file.clone()));
            }
            if let Some(ca) = &p.ca_file {
                files.push((format!("providers.{}.tls.ca_file", p.name), ca.clone()));
            }
        }
        if let Some(clients) = &self.clients {
            files.push(("clients.keys_file".to_string(), clients.keys_file.clone()));
        }
        files
    }

    pub fn task(&self, id: TaskId) -> Option<&Task> {
        self.tasks.get(id.0)
    }

    /// The encodings any model or condition of this policy counts with.
    pub fn encodings(&self) -> Vec<Encoding> {
        let mut used: Vec<Encoding> = self.models.iter().map(|m| m.encoding).collect();
        used.push(self.default_encoding);
        used.extend(self.classifiers.iter().map(|c| c.encoding()));
        used.sort();
        used.dedup();
        used
    }

    /// What counting needs of the policy.
    pub fn counting(&self) -> Counting {
        Counting {
            default_encoding: self.default_encoding,
            default_image_tokens: self.default_image_tokens,
            mode: self.token_counting,
        }
    }

    /// The request's task category: the trusted task header wins when it
    /// names a known task; otherwise the first task (in policy order) whose
    /// detectors match.
    pub fn detect_task(&self, facts: &RequestFacts, headers: &Headers) -> Option<TaskId> {
        if let Some(name) = self.headers.task.as_deref() {
            if let Some(value) = headers.get(name) {
                if let Some(i) = self.tasks.iter().position(|t| t.name == value.trim()) {
                    return Some(TaskId(i));
                }
            }
        }
        self.task_matcher.first_match(facts)
    }
}

impl Tokenizer for Model {
    fn encoding(&self) -> Encoding {
        self.encoding
    }

    fn estimate(&self) -> Option<Ratio> {
        self.estimate
    }
}

#[cfg(test)]
mod tests;
