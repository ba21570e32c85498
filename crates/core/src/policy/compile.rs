//! RawPolicy → Policy: every check happens here, once, at load time.

use std::collections::HashMap;

use regex::Regex;

use super::pricing::{priced, CatalogCache};
use super::raw::*;
use super::variant;
use super::{
    HeaderNames, Model, ModelId, Policy, PolicyError, RequestedModelPolicy, RetrySettings, Rule,
    RuleIndex, Target, TaskId,
};
use crate::classifier::{Classifier, ClassifierId, MAX_CLASSIFIERS};
use crate::condition::{Condition, HeaderTest, PathTest, Range, ScoreTest};
use crate::headers::DEFAULT_CLUSTER_HEADER;
use crate::policy::split::{Branch, Split};
use crate::provider::{Clients, Provider, ProviderId, CLIENT_TENANT_HEADER};
use crate::request::{Api, ApiSet, ApiShape, Ratio};
use crate::task::{Task, TaskMatcher, TaskSource};
use crate::tokens::Encoding;

const DEFAULT_OUTPUT_TOKENS: u64 = 1024;
const DEFAULT_MAX_TENANTS: usize = 50;
/// Compiled size bound for user regexes, so a policy cannot make the VM
/// allocate without limit.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

pub(super) fn compile_json(json: &str) -> Result<Policy, PolicyError> {
    // Valid policies parse without path tracking (a third of a large
    // policy's load time); an invalid one is parsed again to name the path.
    match serde_json::from_str::<RawPolicy>(json) {
        Ok(raw) => compile(raw),
        Err(e) => reparse_for_path(json, e),
    }
}

/// Without `json-paths` (the filter): serde's message, with line and column.
#[cfg(not(feature = "json-paths"))]
fn reparse_for_path(_json: &str, e: serde_json::Error) -> Result<Policy, PolicyError> {
    Err(PolicyError::new(
        ".",
        format!("{e} (`model-router check` names its JSON path)"),
    ))
}

#[cfg(feature = "json-paths")]
fn reparse_for_path(json: &str, _e: serde_json::Error) -> Result<Policy, PolicyError> {
    let mut de = serde_json::Deserializer::from_str(json);
    let raw: RawPolicy = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        PolicyError::new(path, e.into_inner().to_string())
    })?;
    de.end()
        .map_err(|e| PolicyError::new(".", format!("trailing data: {e}")))?;
    compile(raw)
}

fn compile(mut raw: RawPolicy) -> Result<Policy, PolicyError> {
    let default_encoding = encoding(raw.default_encoding.as_deref(), "default_encoding")?
        .unwrap_or(Encoding::O200kBase);
    let providers = super::providers::compile_providers(&raw.providers.0)?;
    let clients = super::providers::compile_clients(raw.clients.as_ref())?;
    let models = compile_models(&raw, default_encoding, &providers)?;
    let (tasks, task_matcher) = compile_tasks(&raw)?;
    // Taken: each classifier's weight table moves into the policy.
    let classifiers = compile_classifiers(std::mem::take(&mut raw.classifiers))?;
    let scope = Scope {
        models: &models,
        classifiers: &classifiers,
        task_ids: first_index(tasks.iter().map(|t| t.name.as_str())),
    };
    let rule_ids = first_index(raw.rules.iter().map(|r| r.name.as_str()));

    let mut rules = Vec::with_capacity(raw.rules.len());
    for (i, rule) in raw.rules.iter().enumerate() {
        let path = format!("rules[{i}]");
        if rule.name.trim().is_empty() {
            return Err(PolicyError::new(
                format!("{path}.name"),
                "must not be empty",
            ));
        }
        if let Some(&j) = rule_ids.get(rule.name.as_str()).filter(|&&j| j < i) {
            return Err(PolicyError::new(
                format!("{path}.name"),
                format!("duplicate rule name {:?} (also rules[{j}])", rule.name),
            ));
        }
        let when = match &rule.when {
            None => Condition::Always,
            Some(c) => scope.condition(c, &format!("{path}.when"))?,
        };
        let target = scope.target(&rule.target, &format!("{path}.target"))?;
        check_reachable(&when, &target, &models, &format!("{path}.target"))?;
        rules.push(Rule {
            name: rule.name.clone(),
            when,
            target,
        });
    }
    let default = scope.target(&raw.default, "default")?;
    let windowed = (0..classifiers.len())
        .map(|i| rules.iter().any(|r| reads_share(&r.when, ClassifierId(i))))
        .collect();
    check_apis(&rules, &default, &models)?;
    let rule_index = RuleIndex::new(&rules, tasks.len());

    let requested_model = match &raw.requested_model {
        None => RequestedModelPolicy::default(),
        Some(r) => {
            if let Some(i) = r.aliases.iter().position(|a| a.is_empty()) {
                return Err(PolicyError::new(
                    format!("requested_model.aliases[{i}]"),
                    "must not be empty",
                ));
            }
            RequestedModelPolicy {
                aliases: r.aliases.clone(),
                honor_explicit_model: r.honor_explicit_model,
            }
        }
    };

    let baseline_model = match &raw.baseline_model {
        None => None,
        Some(name) => Some(model_id(&models, name, "baseline_model")?),
    };

    Ok(Policy {
        mode: raw.mode,
        tasks,
        rules,
        default,
        default_encoding,
        default_output_tokens: positive(raw.default_output_tokens, "default_output_tokens")?
            .unwrap_or(DEFAULT_OUTPUT_TOKENS),
        headers: HeaderNames {
            cluster: header_name(raw.cluster_header.as_deref(), "cluster_header")?
                .unwrap_or_else(|| DEFAULT_CLUSTER_HEADER.to_string()),
            budget: header_name(raw.budget_header.as_deref(), "budget_header")?,
            task: header_name(raw.task_header.as_deref(), "task_header")?,
            tenant: tenant_header(&raw, clients.as_ref())?,
        },
        on_context_overflow: raw.on_context_overflow,
        on_budget_exceeded: raw.on_budget_exceeded,
        on_invalid_request: raw.on_invalid_request,
        requested_model,
        response_headers: raw.response_headers.unwrap_or(true),
        retry: retry(raw.retry.as_ref())?,
        baseline_model,
        tenants: raw.tenants.clone(),
        max_tenants: raw.max_tenants.unwrap_or(DEFAULT_MAX_TENANTS),
        stream_usage: raw.stream_usage,
        token_counting: raw.token_counting,
        default_image_tokens: raw.default_image_tokens,
        cooldown: super::traffic::cooldown(raw.cooldown.as_ref())?,
        clusters: super::traffic::clusters(raw.clusters.as_ref(), &models)?,
        translate: raw.translate.unwrap_or(true),
        feedback: raw.feedback.unwrap_or(true),
        task_matcher,
        rule_index,
        models,
        providers,
        clients,
        classifiers,
        windowed,
    })
}

fn compile_classifiers(
    raw: super::ordered::OrderedMap<crate::classifier::RawClassifier>,
) -> Result<Vec<Classifier>, PolicyError> {
    if raw.0.len() > MAX_CLASSIFIERS {
        return Err(PolicyError::new(
            "classifiers",
            format!("at most {MAX_CLASSIFIERS} classifiers"),
        ));
    }
    raw.0
        .into_iter()
        .map(|(name, c)| {
            let path = format!("classifiers.{name}");
            if name.is_empty() || !is_header_value(&name) {
                return Err(PolicyError::new(
                    path,
                    "a classifier name must be non-empty printable ASCII without spaces (it is a metric label)",
                ));
            }
            Classifier::compile(&name, c, &path).map_err(PolicyError::from)
        })
        .collect()
}

/// Whether `when` has a `top_share` test of `id` (its scores then feed a window).
fn reads_share(when: &Condition, id: ClassifierId) -> bool {
    match when {
        Condition::Score {
            classifier,
            test: ScoreTest::TopShare(_),
        } => *classifier == id,
        Condition::All(items) | Condition::Any(items) => items.iter().any(|c| reads_share(c, id)),
        Condition::Not(inner) => reads_share(inner, id),
        _ => false,
    }
}

/// With `clients`, the tenant is the authenticated key's (Envoy's API-key
/// filter writes it into `CLIENT_TENANT_HEADER`, over any client copy), so
/// no other header may name it.
fn tenant_header(
    raw: &RawPolicy,
    clients: Option<&Clients>,
) -> Result<Option<String>, PolicyError> {
    let named = header_name(raw.tenant_header.as_deref(), "tenant_header")?;
    match (clients, named) {
        (None, named) => Ok(named),
        (Some(_), None) => Ok(Some(CLIENT_TENANT_HEADER.to_string())),
        (Some(_), Some(name)) if name == CLIENT_TENANT_HEADER => Ok(Some(name)),
        (Some(_), Some(name)) => Err(PolicyError::new(
            "tenant_header",
            format!("with `clients` the tenant comes from the authenticated key (header {CLIENT_TENANT_HEADER}); {name:?} could be forged by a client: remove tenant_header"),
        )),
    }
}

/// The model's cluster: its own `cluster`, or its provider's (named after
/// the provider). Exactly one of the two.
fn model_upstream(
    m: &RawModel,
    path: &str,
    providers: &[Provider],
) -> Result<(String, Option<ProviderId>), PolicyError> {
    match (&m.cluster, &m.provider) {
        (Some(cluster), None) => {
            if !is_header_value(cluster) || cluster.is_empty() {
                return Err(PolicyError::new(
                    format!("{path}.cluster"),
                    format!("{cluster:?} is not a valid Envoy cluster name"),
                ));
            }
            if let Some(p) = providers.iter().find(|p| &p.name == cluster) {
                return Err(PolicyError::new(
                    format!("{path}.cluster"),
                    format!("{:?} is a provider's generated cluster: write \"provider\": {:?}", p.name, p.name),
                ));
            }
            Ok((cluster.clone(), None))
        }
        (None, Some(name)) => {
            let id = providers.iter().position(|p| &p.name == name).ok_or_else(|| {
                PolicyError::new(format!("{path}.provider"), format!("unknown provider {name:?}"))
            })?;
            Ok((name.clone(), Some(ProviderId(id))))
        }
        (Some(_), Some(_)) => Err(PolicyError::new(
            path,
            "set exactly one of cluster and provider, not both",
        )),
        (None, None) => Err(PolicyError::new(
            path,
            "set exactly one of cluster (an Envoy cluster you wire) and provider (one of `providers`)",
        )),
    }
}

fn compile_models(
    raw: &RawPolicy,
    default_encoding: Encoding,
    providers: &[Provider],
) -> Result<Vec<Model>, PolicyError> {
    if raw.models.0.is_empty() {
        return Err(PolicyError::new("models", "at least one model is required"));
    }
    let mut models = Vec::with_capacity(raw.models.0.len());
    let mut catalog = CatalogCache::default();
    for (name, m) in &raw.models.0 {
        let path = format!("models.{name}");
        if name.is_empty() || !is_header_value(name) || name.contains(',') {
            return Err(PolicyError::new(
                path,
                "a model name must be non-empty printable ASCII without spaces or commas (it travels in a header)",
            ));
        }
        let (cluster, provider) = model_upstream(m, &path, providers)?;
        let preset = provider
            .and_then(|id| providers.get(id.0))
            .and_then(|p| p.preset);
        let provider_model = m.provider_model.clone().unwrap_or_else(|| name.clone());
        if provider_model.is_empty() || provider_model.chars().any(char::is_control) {
            return Err(PolicyError::new(
                format!("{path}.provider_model"),
                "must be non-empty, without control characters",
            ));
        }
        let priced = priced(name, m, &provider_model, &path, &mut catalog)?;
        if priced.context_window == 0 {
            return Err(PolicyError::new(
                format!("{path}.context_window"),
                "must be greater than 0",
            ));
        }
        if let Some(max) = priced.max_output_tokens {
            if max == 0 || max > priced.context_window {
                return Err(PolicyError::new(
                    format!("{path}.max_output_tokens"),
                    format!(
                        "must be between 1 and the context window ({})",
                        priced.context_window
                    ),
                ));
            }
        }
        let (encoding, estimate) = counting(m, &path, default_encoding)?;
        let deployment = deployment(m, &path, &provider_model, provider, providers)?;
        models.push(Model {
            name: name.clone(),
            cluster,
            provider_model_json: crate::rewrite::json_string(&provider_model),
            provider_model,
            tier: m.tier.clone(),
            context_window: priced.context_window,
            max_output_tokens: priced.max_output_tokens,
            pricing: priced.pricing,
            encoding,
            estimate,
            apis: match (&m.api, preset) {
                (None, None) => ApiSet::of(Api::OpenaiChat),
                (None, Some(preset)) => preset.api_set(),
                (Some(raw), _) => apis(raw, &format!("{path}.api"))?,
            },
            translate: m.translate.or(raw.translate).unwrap_or(true),
            catalog: priced.catalog,
            provider,
            deployment,
            variant: variant::compile(m.set.as_ref(), m.override_client, &path)?,
        });
    }
    Ok(models)
}

fn compile_tasks(raw: &RawPolicy) -> Result<(Vec<Task>, TaskMatcher), PolicyError> {
    let mut tasks = Vec::with_capacity(raw.tasks.0.len());
    let mut sources = Vec::with_capacity(raw.tasks.0.len());
    let mut pattern_count: usize = 0;
    let mut checker = PatternChecker::new();
    for (name, t) in &raw.tasks.0 {
        let path = || format!("tasks.{name}");
        if t.keywords.is_empty() && t.patterns.is_empty() {
            return Err(PolicyError::new(
                path(),
                "needs at least one keyword or pattern",
            ));
        }
        if let Some(i) = t.keywords.iter().position(|k| k.trim().is_empty()) {
            return Err(PolicyError::new(
                format!("{}.keywords[{i}]", path()),
                "must not be empty",
            ));
        }
        let mut patterns = Vec::with_capacity(t.patterns.len());
        for (i, pattern) in t.patterns.iter().enumerate() {
            patterns.push(checker.check(pattern, &format!("{}.patterns[{i}]", path()))?);
        }
        pattern_count = pattern_count.saturating_add(t.patterns.len());
        tasks.push(Task {
            name: name.clone(),
            scan: t.scan,
        });
        sources.push(TaskSource {
            keywords: &t.keywords,
            patterns,
            scan: t.scan,
        });
    }
    // Each pattern was checked within REGEX_SIZE_LIMIT; the set of all of
    // them is bounded by their sum.
    let set_limit = REGEX_SIZE_LIMIT.saturating_mul(pattern_count.max(1));
    let matcher = TaskMatcher::new(&sources, set_limit)
        .map_err(|e| PolicyError::new("tasks", e.to_string()))?;
    Ok((tasks, matcher))
}

/// Checks task patterns one by one as `regex` would build each alone (its
/// parser, its Thompson NFA size bound REGEX_SIZE_LIMIT), so that errors
/// name their JSON path, without building per-pattern search engines: the
/// matcher builds one for all patterns. The NFA compiler is reused (a
/// fresh one allocates ~1 ms of tables); the parser is not, since its
/// translator keeps flags such as `(?i)` from one pattern to the next.
struct PatternChecker {
    compiler: regex_automata::nfa::thompson::Compiler,
}

impl PatternChecker {
    fn new() -> PatternChecker {
        let mut compiler = regex_automata::nfa::thompson::Compiler::new();
        compiler.configure(
            regex_automata::nfa::thompson::Config::new()
                .nfa_size_limit(Some(REGEX_SIZE_LIMIT))
                .shrink(false),
        );
        PatternChecker { compiler }
    }

    fn check(&mut self, pattern: &str, path: &str) -> Result<regex_syntax::hir::Hir, PolicyError> {
        let invalid =
            |e: &dyn std::fmt::Display| PolicyError::new(path, format!("invalid regex: {e}"));
        let hir = regex_syntax::Parser::new()
            .parse(pattern)
            .map_err(|e| invalid(&e))?;
        self.compiler
            .build_from_hir(&hir)
            .map_err(|e| invalid(&e))?;
        Ok(hir)
    }
}

/// Names a condition or target may refer to.
struct Scope<'a> {
    models: &'a [Model],
    classifiers: &'a [Classifier],
    /// Task name → its index (a large policy names thousands).
    task_ids: HashMap<&'a str, usize>,
}

/// Name → index of its first occurrence.
fn first_index<'a>(names: impl Iterator<Item = &'a str>) -> HashMap<&'a str, usize> {
    let mut index = HashMap::new();
    for (i, name) in names.enumerate() {
        index.entry(name).or_insert(i);
    }
    index
}

impl Scope<'_> {
    fn condition(&self, raw: &RawCondition, path: &str) -> Result<Condition, PolicyError> {
        Ok(match raw {
            RawCondition::All(items) => {
                Condition::All(self.conditions(items, &format!("{path}.all"))?)
            }
            RawCondition::Any(items) => {
                Condition::Any(self.conditions(items, &format!("{path}.any"))?)
            }
            RawCondition::Not(inner) => {
                Condition::Not(Box::new(self.condition(inner, &format!("{path}.not"))?))
            }
            RawCondition::PromptTokens(r) => {
                Condition::PromptTokens(range(r, &format!("{path}.prompt_tokens"))?)
            }
            RawCondition::MaxOutputTokens(r) => {
                Condition::MaxOutputTokens(range(r, &format!("{path}.max_output_tokens"))?)
            }
            RawCondition::Messages(r) => {
                Condition::Messages(range(r, &format!("{path}.messages"))?)
            }
            RawCondition::Task(m) => {
                let path = format!("{path}.task");
                let names: Vec<&String> = match m {
                    RawTaskMatch::Name(name) => vec![name],
                    RawTaskMatch::In(set) => set.values.iter().collect(),
                };
                if names.is_empty() {
                    return Err(PolicyError::new(format!("{path}.in"), "must not be empty"));
                }
                let mut ids = Vec::with_capacity(names.len());
                for name in names {
                    let id = *self
                        .task_ids
                        .get(name.as_str())
                        .ok_or_else(|| PolicyError::new(&path, format!("unknown task {name:?}")))?;
                    ids.push(TaskId(id));
                }
                Condition::Task(ids)
            }
            RawCondition::Header(h) => {
                let path = format!("{path}.header");
                let name = header_name(Some(&h.name), &format!("{path}.name"))?.unwrap_or_default();
                let tests = [
                    h.equals.clone().map(HeaderTest::Equals),
                    h.values.clone().map(HeaderTest::In),
                    h.present.map(HeaderTest::Present),
                    match &h.matches {
                        None => None,
                        Some(p) => Some(HeaderTest::Matches(regex(p, &format!("{path}.matches"))?)),
                    },
                ];
                let test = exactly_one(tests, &path, "equals, in, present or matches")?;
                if let HeaderTest::In(values) = &test {
                    if values.is_empty() {
                        return Err(PolicyError::new(format!("{path}.in"), "must not be empty"));
                    }
                }
                Condition::Header { name, test }
            }
            RawCondition::RequestedModel(m) => {
                let path = format!("{path}.requested_model");
                let values = exactly_one(
                    [m.equals.clone().map(|v| vec![v]), m.values.clone()],
                    &path,
                    "equals or in",
                )?;
                if values.is_empty() {
                    return Err(PolicyError::new(format!("{path}.in"), "must not be empty"));
                }
                Condition::RequestedModel(values)
            }
            RawCondition::Path(p) => Condition::Path(exactly_one(
                [
                    p.equals.clone().map(PathTest::Equals),
                    p.prefix.clone().map(PathTest::Prefix),
                ],
                &format!("{path}.path"),
                "equals or prefix",
            )?),
            RawCondition::StructuredOutput(b) => Condition::StructuredOutput(*b),
            RawCondition::Tools(b) => Condition::Tools(*b),
            RawCondition::Stream(b) => Condition::Stream(*b),
            RawCondition::Images(b) => Condition::Images(*b),
            RawCondition::Api(m) => {
                let path = format!("{path}.api");
                match m {
                    RawTaskMatch::Name(name) => {
                        Condition::Api(apis(&RawApis::One(name.clone()), &path)?)
                    }
                    RawTaskMatch::In(set) => {
                        let path = format!("{path}.in");
                        if set.values.is_empty() {
                            return Err(PolicyError::new(path, "must not be empty"));
                        }
                        Condition::Api(apis(&RawApis::Many(set.values.clone()), &path)?)
                    }
                }
            }
            RawCondition::Score(s) => self.score(s, &format!("{path}.score"))?,
        })
    }

    fn score(&self, raw: &RawScore, path: &str) -> Result<Condition, PolicyError> {
        let id = self
            .classifiers
            .iter()
            .position(|c| c.name == raw.classifier)
            .map(ClassifierId)
            .ok_or_else(|| {
                PolicyError::new(
                    format!("{path}.classifier"),
                    format!("unknown classifier {:?}", raw.classifier),
                )
            })?;
        let test = exactly_one(
            [
                raw.gt.map(|v| ("gt", ScoreTest::Gt(v), v)),
                raw.lt.map(|v| ("lt", ScoreTest::Lt(v), v)),
                raw.top_share
                    .map(|v| ("top_share", ScoreTest::TopShare(v), v)),
            ],
            path,
            "gt, lt or top_share",
        )?;
        let (name, test, value) = test;
        if !(0.0..=1.0).contains(&value) {
            return Err(PolicyError::new(
                format!("{path}.{name}"),
                "must be between 0 and 1",
            ));
        }
        Ok(Condition::Score {
            classifier: id,
            test,
        })
    }

    fn conditions(
        &self,
        items: &[RawCondition],
        path: &str,
    ) -> Result<Vec<Condition>, PolicyError> {
        if items.is_empty() {
            return Err(PolicyError::new(path, "must list at least one condition"));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, c)| self.condition(c, &format!("{path}[{i}]")))
            .collect()
    }

    fn target(&self, raw: &RawTarget, path: &str) -> Result<Target, PolicyError> {
        match raw {
            RawTarget::Model(name) => Ok(Target::Chain(vec![model_id(self.models, name, path)?])),
            RawTarget::Chain(names) => {
                if names.is_empty() {
                    return Err(PolicyError::new(
                        path,
                        "a fallback chain needs at least one model",
                    ));
                }
                let mut chain = Vec::with_capacity(names.len());
                for (i, name) in names.iter().enumerate() {
                    let id = model_id(self.models, name, &format!("{path}[{i}]"))?;
                    if chain.contains(&id) {
                        return Err(PolicyError::new(
                            format!("{path}[{i}]"),
                            format!("model {name:?} appears twice in the chain"),
                        ));
                    }
                    chain.push(id);
                }
                Ok(Target::Chain(chain))
            }
            RawTarget::Tier(t) => {
                let models: Vec<ModelId> = self
                    .models
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| m.tier.as_deref() == Some(t.tier.as_str()))
                    .map(|(i, _)| ModelId(i))
                    .collect();
                if models.is_empty() {
                    return Err(PolicyError::new(
                        format!("{path}.tier"),
                        format!("no model has tier {:?}", t.tier),
                    ));
                }
                Ok(Target::Tier {
                    name: t.tier.clone(),
                    models,
                })
            }
            RawTarget::Split(raw) => self.split(raw, path).map(Target::Split),
        }
    }

    /// A weighted split: branches of one model, chain or tier each (not
    /// another split), integer weights ≥ 0 of which at least one is > 0,
    /// unique branch names.
    fn split(&self, raw: &RawSplit, path: &str) -> Result<Split, PolicyError> {
        if raw.split.is_empty() {
            return Err(PolicyError::new(
                format!("{path}.split"),
                "a split needs at least one branch",
            ));
        }
        let mut branches: Vec<Branch> = Vec::with_capacity(raw.split.len());
        let mut models: Vec<ModelId> = Vec::new();
        let mut total = 0u64;
        for (i, b) in raw.split.iter().enumerate() {
            let at = format!("{path}.split[{i}]");
            if matches!(b.target, RawTarget::Split(_)) {
                return Err(PolicyError::new(
                    format!("{at}.target"),
                    "a split branch cannot be another split (combine the weights into one split)",
                ));
            }
            let target = self.target(&b.target, &format!("{at}.target"))?;
            let weight = b
                .weight
                .as_u64()
                .and_then(|w| u32::try_from(w).ok())
                .filter(|w| *w <= MAX_SPLIT_WEIGHT)
                .ok_or_else(|| {
                    PolicyError::new(
                        format!("{at}.weight"),
                        format!(
                            "must be an integer from 0 to {MAX_SPLIT_WEIGHT}, got {}",
                            b.weight
                        ),
                    )
                })?;
            let name = match &b.name {
                Some(name) => name.clone(),
                None => branch_name(&target, self.models),
            };
            if name.is_empty() || !is_header_value(&name) {
                return Err(PolicyError::new(
                    format!("{at}.name"),
                    "a branch name must be non-empty printable ASCII without spaces (it is a metric label)",
                ));
            }
            if let Some(j) = branches.iter().position(|o| o.name == name) {
                return Err(PolicyError::new(
                    format!("{at}.name"),
                    format!("duplicate branch name {name:?} (also split[{j}]): set \"name\" on one of them"),
                ));
            }
            for id in target.models() {
                if !models.contains(id) {
                    models.push(*id);
                }
            }
            total = total.saturating_add(u64::from(weight));
            branches.push(Branch {
                name,
                weight,
                target,
            });
        }
        if total == 0 {
            return Err(PolicyError::new(
                format!("{path}.split"),
                "every weight is 0: at least one branch must receive traffic",
            ));
        }
        let key_header = match &raw.key {
            None => None,
            Some(key) => header_name(Some(&key.header), &format!("{path}.key.header"))?,
        };
        Ok(Split {
            branches,
            key_header,
            total,
            models,
        })
    }
}

/// Weights are shares, not percentages: any integers, bounded so sums never overflow.
const MAX_SPLIT_WEIGHT: u32 = 1_000_000;

/// A branch's default label: its model, its chain's first model, or its tier.
fn branch_name(target: &Target, models: &[Model]) -> String {
    match target {
        Target::Tier { name, .. } => name.clone(),
        other => other
            .models()
            .first()
            .and_then(|id| models.get(id.0))
            .map_or_else(String::new, |m| m.name.clone()),
    }
}

/// The targets requests actually go to, with their paths: a split's branches, or the target.
fn leaves<'t>(path: &str, target: &'t Target) -> Vec<(String, &'t Target)> {
    match target {
        Target::Split(split) => split
            .branches
            .iter()
            .enumerate()
            .map(|(i, b)| (format!("{path}.split[{i}].target"), &b.target))
            .collect(),
        other => vec![(path.to_string(), other)],
    }
}

/// An Azure model's deployment (its provider_model unless set); refused on
/// providers whose paths have none.
fn deployment(
    m: &RawModel,
    path: &str,
    provider_model: &str,
    provider: Option<ProviderId>,
    providers: &[Provider],
) -> Result<String, PolicyError> {
    let deployments = provider
        .and_then(|id| providers.get(id.0))
        .is_some_and(|p| p.deployments.is_some());
    let name = match &m.deployment {
        None if !deployments => return Ok(provider_model.to_string()),
        Some(_) if !deployments => {
            return Err(PolicyError::new(
                format!("{path}.deployment"),
                "only models of an azure_openai provider have a deployment",
            ))
        }
        None => provider_model,
        Some(name) => name.as_str(),
    };
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if valid {
        Ok(name.to_string())
    } else {
        Err(PolicyError::new(
            format!("{path}.deployment"),
            format!("deployment {name:?} (default: the provider_model) must be letters, digits, '-', '_' or '.': it is a path segment"),
        ))
    }
}

/// How a model's prompt tokens are counted: its encoding, or an estimate's
/// encoding and ratio (for a model whose tokenizer is not public).
fn counting(
    m: &RawModel,
    path: &str,
    default_encoding: Encoding,
) -> Result<(Encoding, Option<Ratio>), PolicyError> {
    let Some(estimate) = &m.estimate else {
        let own = encoding(m.encoding.as_deref(), &format!("{path}.encoding"))?;
        return Ok((own.unwrap_or(default_encoding), None));
    };
    if m.encoding.is_some() {
        return Err(PolicyError::new(
            format!("{path}.encoding"),
            "a model with an `estimate` counts with `estimate.encoding`: set the encoding there only",
        ));
    }
    let with = encoding(
        estimate.encoding.as_deref(),
        &format!("{path}.estimate.encoding"),
    )?;
    let ratio = Ratio::new(estimate.ratio).ok_or_else(|| {
        PolicyError::new(
            format!("{path}.estimate.ratio"),
            "must be a number greater than 0 and at most 1000 (tokens of the model per token of the encoding)",
        )
    })?;
    Ok((with.unwrap_or(default_encoding), Some(ratio)))
}

/// API names (a model's `api`, an `api` condition) as a set.
fn apis(raw: &RawApis, path: &str) -> Result<ApiSet, PolicyError> {
    let names: Vec<(String, &String)> = match raw {
        RawApis::One(name) => vec![(path.to_string(), name)],
        RawApis::Many(names) => names
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("{path}[{i}]"), n))
            .collect(),
    };
    if names.is_empty() {
        return Err(PolicyError::new(path, "list at least one API"));
    }
    let mut set = ApiSet::NONE;
    for (at, name) in names {
        let api = Api::from_name(name).ok_or_else(|| {
            PolicyError::new(
                at,
                format!("unknown API {name:?} (expected one of {})", ApiSet::ALL),
            )
        })?;
        set = set.with(api);
    }
    Ok(set)
}

/// The request APIs for which `when` may hold (a superset): narrowed by
/// `api` conditions and by `path` equal to an API's path; `all` intersects,
/// `any` unites, `not` of an `api` condition complements.
fn admitted_apis(when: &Condition) -> ApiSet {
    match when {
        Condition::Api(apis) => *apis,
        Condition::Path(PathTest::Equals(path)) => {
            ApiShape::from_path(path).map_or(ApiSet::NONE, |s| ApiSet::of(s.api()))
        }
        Condition::All(items) => items
            .iter()
            .fold(ApiSet::ALL, |set, c| set.intersection(admitted_apis(c))),
        Condition::Any(items) => items
            .iter()
            .fold(ApiSet::NONE, |set, c| set.union(admitted_apis(c))),
        Condition::Not(inner) => match inner.as_ref() {
            Condition::Api(apis) => ApiSet::ALL.minus(*apis),
            _ => ApiSet::ALL,
        },
        _ => ApiSet::ALL,
    }
}

/// Whether `when` holds for every request of the APIs it admits, so that
/// later rules never see those APIs.
fn catches_all(when: &Condition) -> bool {
    match when {
        Condition::Always | Condition::Api(_) => true,
        Condition::Any(items) => items.iter().any(catches_all),
        _ => false,
    }
}

/// Refuses a rule (or the default) that can receive requests of an API no
/// model of its target accepts. A rule can receive the APIs some model of
/// the policy accepts (no other request is routable), narrowed by its
/// condition (`admitted_apis`) and minus those an earlier rule takes
/// whole (`{"api": ...}` alone, or no condition). The default receives what
/// no rule took whole. A model accepts the APIs it can be translated for
/// too, unless `translate` is off.
fn check_apis(rules: &[Rule], default: &Target, models: &[Model]) -> Result<(), PolicyError> {
    let served = models
        .iter()
        .fold(ApiSet::NONE, |set, m| set.union(m.reachable_apis()));
    let mut open = served;
    let targets = rules
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("rules[{i}].target"), Some(&r.when), &r.target))
        .chain(std::iter::once(("default".to_string(), None, default)))
        .flat_map(|(path, when, target)| {
            leaves(&path, target)
                .into_iter()
                .map(move |(path, leaf)| (path, when, leaf))
        });
    for (path, when, target) in targets {
        let receives = when.map_or(open, |w| open.intersection(admitted_apis(w)));
        let accepted = target
            .models()
            .iter()
            .filter_map(|id| models.get(id.0))
            .fold(ApiSet::NONE, |set, m| set.union(m.reachable_apis()));
        if let Some(api) = receives.minus(accepted).iter().next() {
            let fix = match when {
                Some(_) => format!(
                    "narrow the rule's \"when\" to the APIs its target accepts with {{\"api\": ...}} (or a \"path\" that equals an API's path, e.g. {})",
                    api.path()
                ),
                None => format!(
                    "take those requests first with a rule {{\"when\": {{\"api\": \"{api}\"}}, \"target\": ...}}"
                ),
            };
            return Err(PolicyError::new(
                path,
                format!(
                    "can receive {api} requests ({}) but no model of this target accepts that API (a model's \"api\", default \"openai_chat\", or through translation unless \"translate\" is false): add a model that accepts {api}, or {fix}",
                    api.path()
                ),
            ));
        }
        if let Some(when) = when.filter(|w| catches_all(w)) {
            open = open.minus(admitted_apis(when));
        }
    }
    Ok(())
}

/// Refuses a rule whose condition needs more prompt tokens than any of its
/// target's models can hold: it could never send a request to its target.
fn check_reachable(
    when: &Condition,
    target: &Target,
    models: &[Model],
    path: &str,
) -> Result<(), PolicyError> {
    let min_prompt = when.min_prompt_tokens();
    let fits = target
        .models()
        .iter()
        .filter_map(|id| models.get(id.0))
        .any(|m| m.context_window > min_prompt);
    if fits {
        Ok(())
    } else {
        Err(PolicyError::new(
            path,
            format!(
                "the rule only matches prompts of at least {min_prompt} tokens, more than the context window of every model of its target: it can never match a model"
            ),
        ))
    }
}

fn exactly_one<T, const N: usize>(
    options: [Option<T>; N],
    path: &str,
    names: &str,
) -> Result<T, PolicyError> {
    let mut set = options.into_iter().flatten();
    match (set.next(), set.next()) {
        (Some(one), None) => Ok(one),
        _ => Err(PolicyError::new(
            path,
            format!("set exactly one of {names}"),
        )),
    }
}

fn range(raw: &RawRange, path: &str) -> Result<Range, PolicyError> {
    let mut min = 0u64;
    let mut max = u64::MAX;
    if let Some(v) = raw.gt {
        min = min.max(v.saturating_add(1));
    }
    if let Some(v) = raw.gte {
        min = min.max(v);
    }
    if let Some(v) = raw.lt {
        if v == 0 {
            return Err(PolicyError::new(path, "lt: 0 can never hold"));
        }
        max = max.min(v.saturating_sub(1));
    }
    if let Some(v) = raw.lte {
        max = max.min(v);
    }
    if raw.gt.is_none() && raw.gte.is_none() && raw.lt.is_none() && raw.lte.is_none() {
        return Err(PolicyError::new(
            path,
            "set at least one of lt, lte, gt, gte",
        ));
    }
    if min > max {
        return Err(PolicyError::new(path, "the bounds exclude every value"));
    }
    Ok(Range { min, max })
}

fn model_id(models: &[Model], name: &str, path: &str) -> Result<ModelId, PolicyError> {
    models
        .iter()
        .position(|m| m.name == name)
        .map(ModelId)
        .ok_or_else(|| PolicyError::new(path, format!("unknown model {name:?}")))
}

fn encoding(name: Option<&str>, path: &str) -> Result<Option<Encoding>, PolicyError> {
    match name {
        None => Ok(None),
        Some(n) => Encoding::from_name(n).map(Some).ok_or_else(|| {
            PolicyError::new(
                path,
                format!("unknown encoding {n:?} (expected o200k_base or cl100k_base)"),
            )
        }),
    }
}

fn regex(pattern: &str, path: &str) -> Result<Regex, PolicyError> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| PolicyError::new(path, format!("invalid regex: {e}")))
}

pub(super) fn positive(value: Option<u64>, path: &str) -> Result<Option<u64>, PolicyError> {
    match value {
        Some(0) => Err(PolicyError::new(path, "must be greater than 0")),
        other => Ok(other),
    }
}

/// A header name as Envoy accepts it, lower-cased.
fn header_name(name: Option<&str>, path: &str) -> Result<Option<String>, PolicyError> {
    let Some(name) = name else { return Ok(None) };
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid {
        return Err(PolicyError::new(
            path,
            format!("{name:?} is not a valid header name"),
        ));
    }
    Ok(Some(name.to_ascii_lowercase()))
}

pub(super) fn is_header_value(value: &str) -> bool {
    value.bytes().all(|b| b.is_ascii_graphic())
}

fn retry(raw: Option<&RawRetry>) -> Result<RetrySettings, PolicyError> {
    let mut settings = RetrySettings::default();
    let Some(raw) = raw else { return Ok(settings) };
    let ms = |v: Option<u64>, name: &str, default: u64| -> Result<u64, PolicyError> {
        Ok(positive(v, &format!("retry.{name}"))?.unwrap_or(default))
    };
    settings.per_try_timeout_ms = ms(
        raw.per_try_timeout_ms,
        "per_try_timeout_ms",
        settings.per_try_timeout_ms,
    )?;
    settings.timeout_ms = ms(raw.timeout_ms, "timeout_ms", settings.timeout_ms)?;
    settings.base_interval_ms = ms(
        raw.base_interval_ms,
        "base_interval_ms",
        settings.base_interval_ms,
    )?;
    settings.max_interval_ms = ms(
        raw.max_interval_ms,
        "max_interval_ms",
        settings.max_interval_ms,
    )?;
    if settings.max_interval_ms < settings.base_interval_ms {
        return Err(PolicyError::new(
            "retry.max_interval_ms",
            "must not be less than base_interval_ms",
        ));
    }
    settings.per_try_idle_timeout_ms =
        positive(raw.per_try_idle_timeout_ms, "retry.per_try_idle_timeout_ms")?;
    if let Some(codes) = &raw.retriable_status_codes {
        if let Some(i) = codes.iter().position(|c| !(100..=599).contains(c)) {
            return Err(PolicyError::new(
                format!("retry.retriable_status_codes[{i}]"),
                "not an HTTP status code",
            ));
        }
        settings.retriable_status_codes = codes.clone();
    }
    Ok(settings)
}
