//! The routing decision: `decide(policy, request) -> Decision`.
//!
//! Order of steps: parse the body; honour an explicit model if the policy
//! allows; else the first rule whose condition holds (or `default`) names a
//! target; its models become candidates, ordered (tiers by projected cost);
//! candidates that do not accept the request's API (a model's `api`) or
//! cannot fit the prompt plus expected output are dropped (escalating to the
//! cheapest model of the pool that accepts the API and fits when none is
//! left); candidates over the request's budget are dropped (falling back to
//! the cheapest such model when none is left). What remains, in order, is
//! the fallback chain. A model serves the APIs its `api` lists natively and,
//! unless `translate` is off, the others a translator reaches (see
//! `translate`); a request no model serves is rejected (`unsupported_api`).

use crate::classifier::{ClassifierId, ScoreQuantiles, TrainingQuantiles};
use crate::cost::Money;
use crate::headers::Headers;
use crate::policy::{
    ModelId, OnBudgetExceeded, OnContextOverflow, OnInvalidRequest, Policy, Target, TaskId,
};
use crate::request::{self, ApiShape, RequestFacts};
use crate::signals::Signals;
use crate::tokens::TokenError;

/// A request as the router sees it.
pub struct Request<'a> {
    pub shape: ApiShape,
    pub path: &'a str,
    pub headers: &'a Headers,
    pub body: &'a [u8],
}

/// What decided the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecidedBy {
    Rule(usize),
    Default,
    /// The request named a configured model and the policy honours that.
    ExplicitModel,
    /// The body could not be read; `on_invalid_request: passthrough`.
    InvalidRequest,
}

impl DecidedBy {
    /// The label used in headers, metrics and logs.
    pub fn label<'p>(&self, policy: &'p Policy) -> &'p str {
        match self {
            DecidedBy::Rule(i) => policy.rules.get(*i).map_or("unknown", |r| r.name.as_str()),
            DecidedBy::Default => "default",
            DecidedBy::ExplicitModel => "explicit_model",
            DecidedBy::InvalidRequest => "invalid_request",
        }
    }
}

/// Why a request is answered by the router itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    InvalidRequest,
    ContextOverflow,
    BudgetExceeded,
    /// No model of the policy accepts the request's API.
    UnsupportedApi,
}

impl RejectReason {
    pub fn label(self) -> &'static str {
        match self {
            RejectReason::InvalidRequest => "invalid_request",
            RejectReason::ContextOverflow => "context_overflow",
            RejectReason::BudgetExceeded => "budget_exceeded",
            RejectReason::UnsupportedApi => "unsupported_api",
        }
    }

    /// HTTP status of the local reply.
    pub fn status(self) -> u32 {
        match self {
            RejectReason::InvalidRequest
            | RejectReason::ContextOverflow
            | RejectReason::UnsupportedApi => 400,
            RejectReason::BudgetExceeded => 402,
        }
    }

    /// OpenAI-style error `code`.
    pub fn code(self) -> &'static str {
        match self {
            RejectReason::InvalidRequest => "invalid_request",
            RejectReason::ContextOverflow => "context_length_exceeded",
            RejectReason::BudgetExceeded => "budget_exceeded",
            RejectReason::UnsupportedApi => "unsupported_api",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Send to `chain[0]`, falling back along the rest; rewrite the body.
    Route { chain: Vec<ModelId> },
    /// Invalid body under `passthrough`: send it unchanged to `chain[0]`.
    Passthrough { chain: Vec<ModelId> },
    /// Answer locally.
    Reject {
        reason: RejectReason,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The request's shape (its API).
    pub shape: ApiShape,
    pub outcome: Outcome,
    pub decided_by: DecidedBy,
    pub task: Option<TaskId>,
    /// Prompt tokens with the policy's default encoding (None if unreadable).
    pub prompt_tokens: Option<u64>,
    /// Projected cost on the first model of the chain.
    pub estimated_cost: Option<Money>,
    /// No candidate of the target fitted; a larger model was chosen.
    pub escalated: bool,
    /// No candidate was within the budget; the cheapest was chosen.
    pub budget_clamped: bool,
    /// Why the body was unreadable, when it was.
    pub invalid_reason: Option<String>,
    /// The request's `stream` flag.
    pub stream: bool,
    /// The client already asked for a usage chunk in streams.
    pub stream_include_usage: bool,
    /// Where the body's `model` values are, for the rewrite.
    pub model_spans: Vec<std::ops::Range<usize>>,
    /// Prompt tokens with each chain model's own encoding.
    pub chain_prompt_tokens: Vec<(ModelId, u64)>,
    /// Where the body's `stream_options` value is, for usage injection.
    pub stream_options_span: Option<std::ops::Range<usize>>,
    /// Classifier scores computed for the decision (probability the weak model fails).
    pub scores: Vec<(ClassifierId, f64)>,
}

impl Decision {
    /// The fallback chain (empty for rejections).
    pub fn chain(&self) -> &[ModelId] {
        match &self.outcome {
            Outcome::Route { chain } | Outcome::Passthrough { chain } => chain,
            Outcome::Reject { .. } => &[],
        }
    }

    /// Prompt tokens counted with `model`'s encoding, if it is in the chain.
    pub fn prompt_tokens_for(&self, model: ModelId) -> Option<u64> {
        self.chain_prompt_tokens
            .iter()
            .find(|(id, _)| *id == model)
            .map(|(_, n)| *n)
    }

    /// Status of the local reply, for rejections.
    pub fn outcome_status(&self) -> Option<u32> {
        match &self.outcome {
            Outcome::Reject { reason, .. } => Some(reason.status()),
            _ => None,
        }
    }

    /// A decision with nothing counted or found yet: the one constructor,
    /// so a new field has one default.
    fn new(shape: ApiShape, outcome: Outcome, decided_by: DecidedBy) -> Decision {
        Decision {
            shape,
            outcome,
            decided_by,
            task: None,
            prompt_tokens: None,
            estimated_cost: None,
            escalated: false,
            budget_clamped: false,
            invalid_reason: None,
            stream: false,
            stream_include_usage: false,
            model_spans: Vec::new(),
            chain_prompt_tokens: Vec::new(),
            stream_options_span: None,
            scores: Vec::new(),
        }
    }

    fn rejected(
        shape: ApiShape,
        reason: RejectReason,
        message: String,
        decided_by: DecidedBy,
    ) -> Decision {
        Decision::new(shape, Outcome::Reject { reason, message }, decided_by)
    }
}

/// A model being considered for one request.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    model: ModelId,
    /// Prompt tokens as this model bills them (None: not counted, as_needed).
    prompt: Option<u64>,
    /// The model accepts the request's API.
    accepts: bool,
    /// The prompt plus the expected output fit its context window.
    fits: bool,
    /// Projected cost of prompt and expected output (None: not counted).
    projected: Option<Money>,
}

impl Candidate {
    fn usable(&self) -> bool {
        self.accepts && self.fits
    }
}

/// Decides where `request` goes. Never panics; every failure is an `Outcome`.
/// `top_share` conditions use the classifiers' training distributions.
pub fn decide(policy: &Policy, request: &Request<'_>) -> Decision {
    decide_with(policy, request, &TrainingQuantiles)
}

/// [`decide`] with `top_share` thresholds from `quantiles` (the filter's
/// shared windows, a replay's local ones).
pub fn decide_with(
    policy: &Policy,
    request: &Request<'_>,
    quantiles: &dyn ScoreQuantiles,
) -> Decision {
    let shape = request.shape;
    let facts = match request::parse_shape(shape, request.body) {
        Ok(facts) => facts,
        Err(e) => return invalid(policy, shape, e.message),
    };
    let budget = match policy
        .headers
        .budget
        .as_deref()
        .and_then(|h| request.headers.get(h))
    {
        None => None,
        Some(value) => match Money::parse_usd(value) {
            Some(budget) => Some(budget),
            None => {
                let header = policy.headers.budget.as_deref().unwrap_or_default();
                return invalid(
                    policy,
                    shape,
                    format!("header {header} must be a non-negative USD amount such as 0.01, got {value:?}"),
                );
            }
        },
    };
    let task = policy.detect_task(&facts, request.headers);
    let task_name = task.and_then(|t| policy.task(t)).map(|t| t.name.as_str());
    let mut signals = Signals::new(
        policy.counting(),
        task,
        &facts,
        request.path,
        request.headers,
    )
    .with_classifiers(&policy.classifiers, task_name, quantiles);
    match route(policy, shape, &facts, &mut signals, budget) {
        Ok(mut decision) => {
            decision.scores = signals.scores();
            decision
        }
        // The tokenizer tables are embedded; failing to build them is not
        // the request's fault, so route it as if unreadable rather than drop it.
        Err(e) => invalid(policy, shape, e.to_string()),
    }
}

fn route(
    policy: &Policy,
    shape: ApiShape,
    facts: &RequestFacts,
    signals: &mut Signals<'_>,
    budget: Option<Money>,
) -> Result<Decision, TokenError> {
    let api = shape.api();
    let (decided_by, target) = choose_target(policy, shape, facts, signals)?;
    if !signals.counts_as_needed() {
        // Counted for every request: metrics, header and audit record carry it.
        signals.default_prompt_tokens()?;
    }
    // prompt_tokens: what was counted, filled in on the way out.
    let mut decision = Decision::new(shape, Outcome::Route { chain: Vec::new() }, decided_by);
    decision.task = signals.task;
    decision.stream = facts.stream;
    decision.stream_include_usage = facts.stream_include_usage;
    decision.model_spans = facts.model_spans.clone();
    decision.stream_options_span = facts.stream_options_span.clone();

    // Costs are needed to order a tier and to test a budget.
    let tier = matches!(target.as_ref(), Target::Tier { .. });
    let need_cost = tier || budget.is_some();
    let mut candidates = candidates(policy, shape, facts, signals, target.models(), need_cost)?;
    if tier {
        candidates.sort_by_key(|c| c.projected); // stable: ties keep policy order
    }
    let mut chain: Vec<Candidate> = candidates
        .iter()
        .copied()
        .filter(Candidate::usable)
        .collect();

    if chain.is_empty() {
        let prompt = signals.default_prompt_tokens()?; // for the message
        let cheapest = cheapest_fitting(policy, shape, facts, signals)?;
        let no_model_accepts = !policy.models.iter().any(|m| m.serves(shape));
        match (policy.on_context_overflow, cheapest) {
            (OnContextOverflow::Escalate, Some(c)) => {
                decision.escalated = true;
                chain = vec![c];
            }
            _ => {
                let (reason, message) = if no_model_accepts || !candidates.iter().any(|c| c.accepts)
                {
                    (
                        RejectReason::UnsupportedApi,
                        format!(
                            "no model this request may use accepts the {api} API ({}), natively or translated",
                            api.path()
                        ),
                    )
                } else {
                    (
                        RejectReason::ContextOverflow,
                        format!(
                            "the prompt ({prompt} tokens) plus the expected output does not fit the context window of any model this request may use"
                        ),
                    )
                };
                let mut rejected = Decision::rejected(shape, reason, message, decided_by);
                rejected.prompt_tokens = Some(prompt);
                rejected.task = decision.task;
                return Ok(rejected);
            }
        }
    }

    if let Some(budget) = budget {
        let within: Vec<Candidate> = chain
            .iter()
            .copied()
            .filter(|c| c.projected.is_some_and(|p| p <= budget))
            .collect();
        if within.is_empty() {
            decision.budget_clamped = true;
            match (
                policy.on_budget_exceeded,
                cheapest_fitting(policy, shape, facts, signals)?,
            ) {
                (OnBudgetExceeded::Cheapest, Some(c)) => chain = vec![c],
                _ => {
                    let mut rejected = Decision::rejected(
                        shape,
                        RejectReason::BudgetExceeded,
                        format!("no model can serve this request within the budget of {budget}"),
                        decided_by,
                    );
                    rejected.prompt_tokens = signals.counted_default_prompt_tokens();
                    rejected.task = decision.task;
                    rejected.budget_clamped = true;
                    return Ok(rejected);
                }
            }
        } else {
            chain = within;
        }
    }

    decision.estimated_cost = chain.first().and_then(|c| c.projected);
    decision.chain_prompt_tokens = chain
        .iter()
        .filter_map(|c| Some((c.model, c.prompt?)))
        .collect();
    decision.prompt_tokens = signals.counted_default_prompt_tokens();
    decision.outcome = Outcome::Route {
        chain: chain.iter().map(|c| c.model).collect(),
    };
    Ok(decision)
}

/// An explicit concrete model (when honoured and it accepts the request's
/// API), else the first matching rule, else `default`.
fn choose_target<'p>(
    policy: &'p Policy,
    shape: ApiShape,
    facts: &RequestFacts,
    signals: &mut Signals<'_>,
) -> Result<(DecidedBy, std::borrow::Cow<'p, Target>), TokenError> {
    if let Some(requested) = facts.requested_model.as_deref() {
        let is_alias = policy
            .requested_model
            .aliases
            .iter()
            .any(|a| a == requested);
        if !is_alias && policy.requested_model.honor_explicit_model {
            let named = policy
                .models
                .iter()
                .position(|m| m.name == requested)
                .or_else(|| {
                    policy
                        .models
                        .iter()
                        .position(|m| m.provider_model == requested)
                });
            let accepts = named
                .and_then(|i| policy.models.get(i))
                .is_some_and(|m| m.serves(shape));
            if let Some(i) = named.filter(|_| accepts) {
                return Ok((
                    DecidedBy::ExplicitModel,
                    std::borrow::Cow::Owned(Target::Chain(vec![ModelId(i)])),
                ));
            }
        }
    }
    for i in policy.rule_index.candidates(signals.task) {
        let Some(rule) = policy.rules.get(i) else {
            continue;
        };
        if rule.when.holds(signals)? {
            return Ok((DecidedBy::Rule(i), std::borrow::Cow::Borrowed(&rule.target)));
        }
    }
    Ok((
        DecidedBy::Default,
        std::borrow::Cow::Borrowed(&policy.default),
    ))
}

/// The target's models as candidates. Under `token_counting: as_needed`
/// and without `need_cost`, a model whose prompt upper bound (body size)
/// already fits is not counted: its prompt and cost stay unknown.
fn candidates(
    policy: &Policy,
    shape: ApiShape,
    facts: &RequestFacts,
    signals: &mut Signals<'_>,
    models: &[ModelId],
    need_cost: bool,
) -> Result<Vec<Candidate>, TokenError> {
    let mut out = Vec::with_capacity(models.len());
    for &id in models {
        let Some(model) = policy.model(id) else {
            continue;
        };
        let output = facts
            .max_output_tokens
            .or(model.max_output_tokens)
            .unwrap_or(policy.default_output_tokens);
        let fits = |prompt: u64| prompt.saturating_add(output) <= model.context_window;
        let known = signals.counted_model_prompt_tokens(model);
        if signals.counts_as_needed()
            && !need_cost
            && known.is_none()
            && fits(signals.model_prompt_tokens_upper_bound(model))
        {
            out.push(Candidate {
                model: id,
                prompt: None,
                accepts: model.serves(shape),
                fits: true,
                projected: None,
            });
            continue;
        }
        let prompt = match known {
            Some(n) => n,
            None => signals.model_prompt_tokens(model)?,
        };
        out.push(Candidate {
            model: id,
            prompt: Some(prompt),
            accepts: model.serves(shape),
            fits: fits(prompt),
            projected: Some(model.pricing.projected(prompt, output)),
        });
    }
    Ok(out)
}

/// The cheapest model of the whole pool that accepts the API and fits
/// (ties: policy order).
fn cheapest_fitting(
    policy: &Policy,
    shape: ApiShape,
    facts: &RequestFacts,
    signals: &mut Signals<'_>,
) -> Result<Option<Candidate>, TokenError> {
    let all: Vec<ModelId> = (0..policy.models.len())
        .map(ModelId)
        .filter(|id| policy.model(*id).is_some_and(|m| m.serves(shape)))
        .collect();
    Ok(candidates(policy, shape, facts, signals, &all, true)?
        .into_iter()
        .filter(Candidate::usable)
        .min_by_key(|c| c.projected))
}

/// An unreadable request: rejected, or passed through unchanged to the
/// default target's first model that accepts its API (else the pool's first).
fn invalid(policy: &Policy, shape: ApiShape, reason: String) -> Decision {
    let api = shape.api();
    let accepts = |id: &ModelId| policy.model(*id).is_some_and(|m| m.accepts(api));
    let first = policy
        .default
        .models()
        .iter()
        .copied()
        .find(accepts)
        .or_else(|| (0..policy.models.len()).map(ModelId).find(accepts));
    let outcome = match (policy.on_invalid_request, first) {
        (OnInvalidRequest::Reject, _) | (_, None) => Outcome::Reject {
            reason: RejectReason::InvalidRequest,
            message: reason.clone(),
        },
        (OnInvalidRequest::Passthrough, Some(first)) => Outcome::Passthrough { chain: vec![first] },
    };
    let mut decision = Decision::new(shape, outcome, DecidedBy::InvalidRequest);
    decision.invalid_reason = Some(reason);
    decision
}

#[cfg(test)]
mod tests;
