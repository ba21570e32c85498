//! `model-router report`: reads the router's counters out of an Envoy
//! Prometheus scrape (`/stats/prometheus`) and sums them per model, rule and
//! tenant: requests, billed tokens, cost and what the same tokens would have
//! cost on the policy's baseline model.
//!
//! The filter emits `wasmcustom.model_router_cost_micro_usd_total;model=…;rule=…`
//! and the generated config's `stats_tags` turn the `;label=value` parts into
//! labels, so a scrape carries lines such as
//! `model_router_cost_micro_usd_total{model="gpt-4o-mini",rule="default",cluster="openai",task="none",tenant="team-a"} 240`.
//! Money is in integer micro-USD end to end; dollars are only for display.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{json, Value};

use model_router_core::feedback;
use model_router_core::metrics;

use crate::quality::Quality;

/// Label names and values, in the order of the line.
pub type Labels = Vec<(String, String)>;

/// One sample line of a Prometheus text exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct PromSample {
    pub name: String,
    pub labels: Labels,
    /// The value as written (`240`, `1.5e3`, `+Inf`, `NaN`).
    pub value: String,
}

impl PromSample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value as a non-negative integer: exact for integers (Envoy writes
    /// counters that way), rounded for a finite float, `None` otherwise.
    pub fn as_u64(&self) -> Option<u64> {
        if let Ok(n) = self.value.parse::<u64>() {
            return Some(n);
        }
        let f = self.value.parse::<f64>().ok()?;
        // In range, so the cast is exact up to rounding.
        (f.is_finite() && f >= 0.0 && f < u64::MAX as f64).then(|| f.round() as u64)
    }
}

/// A line the parser could not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based.
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parses the Prometheus text exposition format (version 0.0.4): `# HELP` /
/// `# TYPE` comments are skipped, every other non-blank line must be
/// `name[{label="value",...}] value [timestamp]`.
///
/// Hand-written rather than taken from a crate on purpose: the tenant label
/// is whatever a client put in its tenant header, so label values can hold
/// `,`, `=`, `}` and escaped quotes. `prometheus-parse` 0.2 (the usual crate)
/// splits labels on `,` and `=` without honouring quotes or escapes and drops
/// a sample whose value contains `}`, which would silently mis-attribute
/// cost. This parser reads quoted values with the format's escapes (`\\`,
/// `\"`, `\n`), and is all `report` needs (no histogram or summary
/// assembly).
pub fn parse_exposition(text: &str) -> Result<Vec<PromSample>, ParseError> {
    let mut samples = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let sample = parse_line(line).map_err(|message| ParseError {
            line: index.saturating_add(1),
            message,
        })?;
        samples.push(sample);
    }
    Ok(samples)
}

fn parse_line(line: &str) -> Result<PromSample, String> {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let (name, mut rest) = line.split_at(name_end);
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(format!("expected a metric name in {line:?}"));
    }
    let mut labels = Vec::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(after_brace)?;
        labels = parsed;
        rest = after;
    }
    if !rest.starts_with([' ', '\t']) {
        return Err(format!("expected a space before the value in {line:?}"));
    }
    let mut fields = rest.split_whitespace();
    let value = fields
        .next()
        .ok_or_else(|| format!("missing value in {line:?}"))?;
    if !is_number(value) {
        return Err(format!("{value:?} is not a number"));
    }
    if let Some(timestamp) = fields.next() {
        if timestamp.parse::<i64>().is_err() {
            return Err(format!("{timestamp:?} is not a timestamp"));
        }
    }
    if fields.next().is_some() {
        return Err(format!("unexpected text after the value in {line:?}"));
    }
    Ok(PromSample {
        name: name.to_string(),
        labels,
        value: value.to_string(),
    })
}

fn is_number(value: &str) -> bool {
    matches!(value, "+Inf" | "-Inf" | "Inf" | "NaN") || value.parse::<f64>().is_ok()
}

/// Reads `label="value",...}` (the opening brace already consumed); returns
/// the labels and the text after the closing brace.
fn parse_labels(mut s: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start();
        if let Some(after) = s.strip_prefix('}') {
            return Ok((labels, after));
        }
        let name_end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .ok_or("unterminated label set")?;
        let (name, after_name) = s.split_at(name_end);
        if name.is_empty() {
            return Err(format!("expected a label name at {s:?}"));
        }
        let after_eq = after_name
            .trim_start()
            .strip_prefix('=')
            .ok_or_else(|| format!("expected '=' after label {name}"))?;
        let inner = after_eq
            .trim_start()
            .strip_prefix('"')
            .ok_or_else(|| format!("expected a quoted value for label {name}"))?;
        let mut chars = inner.char_indices();
        let mut value = String::new();
        let end = loop {
            match chars.next() {
                None => return Err(format!("unterminated value for label {name}")),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    // Not an escape the format defines: keep it as written.
                    Some((_, c)) => {
                        value.push('\\');
                        value.push(c);
                    }
                    None => return Err(format!("unterminated value for label {name}")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        labels.push((name.to_string(), value));
        // `end` is the closing quote's index in `inner`.
        s = inner
            .get(end.saturating_add(1)..)
            .unwrap_or_default()
            .trim_start();
        if let Some(after) = s.strip_prefix(',') {
            s = after;
        } else if !s.starts_with('}') {
            return Err(format!("expected ',' or '}}' after label {name}"));
        }
    }
}

/// What a table groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    Model,
    Rule,
    Tenant,
    /// A split's branch: a table only when some request was split.
    Branch,
}

impl Dimension {
    pub const ALL: [Dimension; 4] = [
        Dimension::Model,
        Dimension::Rule,
        Dimension::Tenant,
        Dimension::Branch,
    ];

    /// The metric label (and the table's heading).
    pub fn label(self) -> &'static str {
        match self {
            Dimension::Model => "model",
            Dimension::Rule => "rule",
            Dimension::Tenant => "tenant",
            Dimension::Branch => "branch",
        }
    }

    pub fn from_name(name: &str) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|d| d.label() == name)
    }

    /// `model,rule,tenant` (any subset, any order, no repeats).
    pub fn parse_list(list: &str) -> Result<Vec<Dimension>, String> {
        let mut out = Vec::new();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let dimension = Dimension::from_name(name)
                .ok_or_else(|| format!("unknown --by {name:?} (model, rule, tenant or branch)"))?;
            if !out.contains(&dimension) {
                out.push(dimension);
            }
        }
        if out.is_empty() {
            return Err("--by needs at least one of model, rule, tenant, branch".to_string());
        }
        Ok(out)
    }
}

/// Sums over a set of requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_micro_usd: u64,
    pub baseline_cost_micro_usd: u64,
    /// Feedback on these requests.
    pub quality: Quality,
    /// Prompt tokens read from the provider's cache, and what they cost.
    pub cached_tokens: u64,
    pub cache_read_cost_micro_usd: u64,
    /// Prompt tokens written to the provider's cache, and what they cost.
    pub cache_write_tokens: u64,
    pub cache_write_cost_micro_usd: u64,
}

impl Totals {
    /// Baseline minus cost (negative when routing cost more).
    pub fn savings_micro_usd(&self) -> i128 {
        i128::from(self.baseline_cost_micro_usd).saturating_sub(i128::from(self.cost_micro_usd))
    }

    /// Savings as a share of the baseline, when there is one.
    pub fn savings_percent(&self) -> Option<f64> {
        (self.baseline_cost_micro_usd > 0)
            .then(|| self.savings_micro_usd() as f64 * 100.0 / self.baseline_cost_micro_usd as f64)
    }

    fn add(&mut self, metric: Metric, value: u64) {
        let field = match metric {
            Metric::Requests => &mut self.requests,
            Metric::PromptTokens => &mut self.prompt_tokens,
            Metric::CompletionTokens => &mut self.completion_tokens,
            Metric::Cost => &mut self.cost_micro_usd,
            Metric::BaselineCost => &mut self.baseline_cost_micro_usd,
            Metric::Feedback => &mut self.quality.feedback,
            Metric::FeedbackGood => &mut self.quality.good,
            Metric::ScoreMilli => &mut self.quality.score_milli,
            Metric::CachedTokens => &mut self.cached_tokens,
            Metric::CacheReadCost => &mut self.cache_read_cost_micro_usd,
            Metric::CacheWriteTokens => &mut self.cache_write_tokens,
            Metric::CacheWriteCost => &mut self.cache_write_cost_micro_usd,
        };
        *field = field.saturating_add(value);
    }

    fn to_json(self) -> serde_json::Map<String, Value> {
        let mut map = serde_json::Map::new();
        map.insert("requests".into(), json!(self.requests));
        map.insert("prompt_tokens".into(), json!(self.prompt_tokens));
        map.insert("completion_tokens".into(), json!(self.completion_tokens));
        map.insert("cost_micro_usd".into(), json!(self.cost_micro_usd));
        map.insert(
            "baseline_cost_micro_usd".into(),
            json!(self.baseline_cost_micro_usd),
        );
        // Micro-USD sums stay far below i64::MAX in practice; clamp rather than wrap.
        let savings = self.savings_micro_usd();
        let savings =
            i64::try_from(savings).unwrap_or(if savings < 0 { i64::MIN } else { i64::MAX });
        map.insert("savings_micro_usd".into(), json!(savings));
        map.insert("cost_usd".into(), json!(usd(self.cost_micro_usd)));
        map.insert(
            "baseline_cost_usd".into(),
            json!(usd(self.baseline_cost_micro_usd)),
        );
        map.insert("savings_usd".into(), json!(savings as f64 / 1e6));
        map.insert("savings_percent".into(), json!(self.savings_percent()));
        let q = self.quality;
        let interval = q.interval();
        map.insert("feedback".into(), json!(q.feedback));
        map.insert("feedback_good".into(), json!(q.good));
        map.insert("good_rate".into(), json!(q.good_rate()));
        map.insert("good_rate_low".into(), json!(interval.map(|i| i.0)));
        map.insert("good_rate_high".into(), json!(interval.map(|i| i.1)));
        map.insert("mean_score".into(), json!(q.mean_score()));
        map.insert("cached_tokens".into(), json!(self.cached_tokens));
        map.insert(
            "cache_read_cost_micro_usd".into(),
            json!(self.cache_read_cost_micro_usd),
        );
        map.insert("cache_write_tokens".into(), json!(self.cache_write_tokens));
        map.insert(
            "cache_write_cost_micro_usd".into(),
            json!(self.cache_write_cost_micro_usd),
        );
        map
    }

    fn has_cache(&self) -> bool {
        self.cached_tokens > 0 || self.cache_write_tokens > 0
    }
}

fn usd(micro: u64) -> f64 {
    micro as f64 / 1e6
}

#[derive(Debug, Clone, Copy)]
enum Metric {
    Requests,
    PromptTokens,
    CompletionTokens,
    Cost,
    BaselineCost,
    Feedback,
    /// Feedback with verdict `good` (a label of `model_router_feedback_total`).
    FeedbackGood,
    ScoreMilli,
    CachedTokens,
    CacheReadCost,
    CacheWriteTokens,
    CacheWriteCost,
}

impl Metric {
    /// What a sample adds to: good feedback counts twice (all and good).
    fn of(sample: &PromSample) -> Vec<Metric> {
        match Metric::from_name(&sample.name) {
            Some(Metric::Feedback) if sample.label("verdict") == Some("good") => {
                vec![Metric::Feedback, Metric::FeedbackGood]
            }
            Some(metric) => vec![metric],
            None => Vec::new(),
        }
    }

    fn from_name(name: &str) -> Option<Metric> {
        Some(match name {
            metrics::REQUESTS => Metric::Requests,
            metrics::PROMPT_TOKENS => Metric::PromptTokens,
            metrics::COMPLETION_TOKENS => Metric::CompletionTokens,
            metrics::COST => Metric::Cost,
            metrics::BASELINE_COST => Metric::BaselineCost,
            feedback::FEEDBACK => Metric::Feedback,
            feedback::FEEDBACK_SCORE => Metric::ScoreMilli,
            metrics::CACHED_PROMPT_TOKENS => Metric::CachedTokens,
            metrics::CACHE_READ_COST => Metric::CacheReadCost,
            metrics::CACHE_WRITE_TOKENS => Metric::CacheWriteTokens,
            metrics::CACHE_WRITE_COST => Metric::CacheWriteCost,
            _ => return None,
        })
    }
}

/// One table: a row per label value.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub dimension: Dimension,
    /// Most requests first, then by name.
    pub rows: Vec<(String, Totals)>,
}

/// Everything `report` prints.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub tables: Vec<Table>,
    pub total: Totals,
    /// (from, to, count): a model that failed and the one tried next.
    pub fallbacks: Vec<(String, String, u64)>,
    /// Served responses with no usage to bill (errors, cut-off streams).
    pub usage_missing: u64,
    /// Requests the router refused, per reason.
    pub rejected: Vec<(String, u64)>,
    /// Whether the scrape had any of the router's counters at all.
    pub has_router_metrics: bool,
    /// Feedback naming unknown (or expired) request ids.
    pub feedback_unknown: u64,
    /// Feedback bodies or headers refused as invalid.
    pub feedback_invalid: u64,
    /// Requests overwritten in the feedback store.
    pub feedback_evicted: u64,
    /// Prompt-cache reads and writes per model (models with any).
    pub cache_by_model: Vec<(String, Totals)>,
}

/// Sums a scrape's router counters into per-dimension tables.
pub fn build(samples: &[PromSample], dimensions: &[Dimension]) -> Report {
    let mut total = Totals::default();
    let mut groups: Vec<BTreeMap<String, Totals>> = vec![BTreeMap::new(); dimensions.len()];
    let mut fallbacks: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut rejected: BTreeMap<String, u64> = BTreeMap::new();
    let mut usage_missing = 0u64;
    let mut has_router_metrics = false;
    let (mut unknown, mut invalid, mut evicted) = (0u64, 0u64, 0u64);
    let mut cache_by_model: BTreeMap<String, Totals> = BTreeMap::new();
    let label = |s: &PromSample, name: &str| s.label(name).unwrap_or(metrics::NONE).to_string();
    for sample in samples {
        if !sample.name.starts_with("model_router_") {
            continue;
        }
        has_router_metrics = true;
        let Some(value) = sample.as_u64() else {
            continue;
        };
        let found = Metric::of(sample);
        for metric in &found {
            total.add(*metric, value);
            cache_by_model
                .entry(label(sample, Dimension::Model.label()))
                .or_default()
                .add(*metric, value);
            for (dimension, group) in dimensions.iter().zip(groups.iter_mut()) {
                group
                    .entry(label(sample, dimension.label()))
                    .or_default()
                    .add(*metric, value);
            }
        }
        let count = match sample.name.as_str() {
            feedback::FEEDBACK_UNKNOWN => &mut unknown,
            feedback::FEEDBACK_INVALID => &mut invalid,
            feedback::FEEDBACK_EVICTED => &mut evicted,
            _ => &mut 0,
        };
        *count = count.saturating_add(value);
        if sample.name == metrics::FALLBACKS {
            let count = fallbacks
                .entry((label(sample, "from"), label(sample, "to")))
                .or_default();
            *count = count.saturating_add(value);
        } else if sample.name == metrics::REJECTED {
            let count = rejected.entry(label(sample, "reason")).or_default();
            *count = count.saturating_add(value);
        } else if sample.name == metrics::USAGE_MISSING {
            usage_missing = usage_missing.saturating_add(value);
        }
    }
    let tables = dimensions
        .iter()
        .zip(groups)
        .map(|(dimension, group)| {
            let mut rows: Vec<(String, Totals)> = group
                .into_iter()
                // Envoy keeps zero counters around; rows with nothing in them are noise.
                .filter(|(_, t)| *t != Totals::default())
                .collect();
            rows.sort_by(|a, b| b.1.requests.cmp(&a.1.requests).then_with(|| a.0.cmp(&b.0)));
            Table {
                dimension: *dimension,
                rows,
            }
        })
        // No split decided any request: a branch table would be one `none` row.
        .filter(|t| t.dimension != Dimension::Branch || t.rows.iter().any(|r| r.0 != metrics::NONE))
        .collect();
    let mut fallbacks: Vec<(String, String, u64)> = fallbacks
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|((from, to), n)| (from, to, n))
        .collect();
    fallbacks.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| (&a.0, &a.1).cmp(&(&b.0, &b.1))));
    Report {
        tables,
        total,
        fallbacks,
        usage_missing,
        rejected: rejected.into_iter().filter(|(_, n)| *n > 0).collect(),
        has_router_metrics,
        feedback_unknown: unknown,
        feedback_invalid: invalid,
        feedback_evicted: evicted,
        cache_by_model: cache_by_model
            .into_iter()
            .filter(|(_, t)| t.has_cache())
            .collect(),
    }
}

/// `$0.012345`; `-$0.000010` for a negative amount.
pub fn format_usd(micro: i128) -> String {
    let sign = if micro < 0 { "-" } else { "" };
    let abs = micro.unsigned_abs();
    format!(
        "{sign}${}.{:06}",
        group_digits(abs / 1_000_000),
        abs % 1_000_000
    )
}

/// `1234567` → `1,234,567`.
pub fn group_digits(n: u128) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len().saturating_mul(2));
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && digits.len().saturating_sub(i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn format_percent(totals: &Totals) -> String {
    totals
        .savings_percent()
        .map_or_else(|| "-".to_string(), |p| format!("{p:.1}%"))
}

const COLUMNS: [&str; 7] = [
    "requests",
    "prompt tokens",
    "completion tokens",
    "cost",
    "baseline cost",
    "savings",
    "savings %",
];

/// Shown when the scrape has any feedback.
const QUALITY_COLUMNS: [&str; 3] = ["feedback", "good rate [95% CI]", "mean score"];

fn cells(totals: &Totals, quality: bool) -> Vec<String> {
    let mut cells = cost_cells(totals).to_vec();
    if quality {
        let q = &totals.quality;
        cells.extend([
            group_digits(q.feedback.into()),
            q.format_rate(),
            q.format_mean(),
        ]);
    }
    cells
}

fn cost_cells(totals: &Totals) -> [String; 7] {
    [
        group_digits(totals.requests.into()),
        group_digits(totals.prompt_tokens.into()),
        group_digits(totals.completion_tokens.into()),
        format_usd(totals.cost_micro_usd.into()),
        format_usd(totals.baseline_cost_micro_usd.into()),
        format_usd(totals.savings_micro_usd()),
        format_percent(totals),
    ]
}

/// The report as aligned text tables (costs in USD).
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    if !report.has_router_metrics {
        out.push_str(
            "No model_router_* metrics in this scrape: the filter reports a request once its response is complete.\n",
        );
        return out;
    }
    let quality = report.total.quality.feedback > 0;
    for table in &report.tables {
        render_table(&mut out, table, &report.total, quality);
        out.push('\n');
    }
    if !report.cache_by_model.is_empty() {
        render_cache(&mut out, &report.cache_by_model, &report.total);
        out.push('\n');
    }
    let t = &report.total;
    let _ = writeln!(
        out,
        "Total: {} requests, {} prompt + {} completion tokens; cost {} vs {} on the baseline model: saved {} ({})",
        group_digits(t.requests.into()),
        group_digits(t.prompt_tokens.into()),
        group_digits(t.completion_tokens.into()),
        format_usd(t.cost_micro_usd.into()),
        format_usd(t.baseline_cost_micro_usd.into()),
        format_usd(t.savings_micro_usd()),
        format_percent(t),
    );
    if !report.fallbacks.is_empty() {
        let list: Vec<String> = report
            .fallbacks
            .iter()
            .map(|(from, to, n)| format!("{from} -> {to} x{}", group_digits((*n).into())))
            .collect();
        let _ = writeln!(out, "Fallbacks: {}", list.join(", "));
    }
    if !report.rejected.is_empty() {
        let list: Vec<String> = report
            .rejected
            .iter()
            .map(|(reason, n)| format!("{reason} x{}", group_digits((*n).into())))
            .collect();
        let _ = writeln!(out, "Rejected: {}", list.join(", "));
    }
    render_feedback_line(&mut out, report);
    if report.usage_missing > 0 {
        let _ = writeln!(
            out,
            "Not billed: {} responses carried no usage (errors, cut-off streams)",
            group_digits(report.usage_missing.into())
        );
    }
    out
}

/// One line on feedback: how much was attributed, and how much could not be.
fn render_feedback_line(out: &mut String, report: &Report) {
    let q = &report.total.quality;
    if q.feedback == 0
        && report.feedback_unknown == 0
        && report.feedback_invalid == 0
        && report.feedback_evicted == 0
    {
        return;
    }
    let _ = writeln!(
        out,
        "Feedback: {} attributed (good {}, mean score {}); {} for unknown or expired request ids; {} invalid; {} requests overwritten before any feedback",
        group_digits(q.feedback.into()),
        q.format_rate(),
        q.format_mean(),
        group_digits(report.feedback_unknown.into()),
        group_digits(report.feedback_invalid.into()),
        group_digits(report.feedback_evicted.into()),
    );
}

const CACHE_COLUMNS: [&str; 4] = [
    "cache-read tokens",
    "cache-read cost",
    "cache-write tokens",
    "cache-write cost",
];

fn cache_cells(totals: &Totals) -> [String; 4] {
    [
        group_digits(totals.cached_tokens.into()),
        format_usd(totals.cache_read_cost_micro_usd.into()),
        group_digits(totals.cache_write_tokens.into()),
        format_usd(totals.cache_write_cost_micro_usd.into()),
    ]
}

/// Prompt-cache reads and writes per model, and what each cost.
fn render_cache(out: &mut String, rows: &[(String, Totals)], total: &Totals) {
    let mut rows: Vec<(String, Vec<String>)> = rows
        .iter()
        .map(|(key, totals)| (key.clone(), cache_cells(totals).to_vec()))
        .collect();
    rows.push(("total".to_string(), cache_cells(total).to_vec()));
    let heading: Vec<String> = CACHE_COLUMNS.iter().map(|c| c.to_string()).collect();
    write_rows(out, "Prompt cache by model:", "model", &heading, &rows);
}

fn render_table(out: &mut String, table: &Table, total: &Totals, quality: bool) {
    let mut rows: Vec<(String, Vec<String>)> = table
        .rows
        .iter()
        .map(|(key, totals)| (key.clone(), cells(totals, quality)))
        .collect();
    rows.push(("total".to_string(), cells(total, quality)));
    let mut columns = COLUMNS.to_vec();
    if quality {
        columns.extend(QUALITY_COLUMNS);
    }
    let heading: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
    let title = format!("By {}:", table.dimension.label());
    write_rows(out, &title, table.dimension.label(), &heading, &rows);
}

/// An aligned table: the key column left-aligned, the others right-aligned,
/// a rule above the last (total) row.
fn write_rows(
    out: &mut String,
    title: &str,
    key_heading: &str,
    heading: &[String],
    rows: &[(String, Vec<String>)],
) {
    let key_width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .chain(std::iter::once(key_heading.len()))
        .max()
        .unwrap_or(0);
    let mut widths: Vec<usize> = heading.iter().map(|h| h.chars().count()).collect();
    for (_, row) in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |out: &mut String, key: &str, row: &[String]| {
        let _ = write!(out, "{key:<key_width$}");
        for (cell, width) in row.iter().zip(&widths) {
            let _ = write!(out, "  {cell:>width$}");
        }
        out.push('\n');
    };
    let _ = writeln!(out, "{title}");
    line(out, key_heading, heading);
    let rule_width = widths
        .iter()
        .map(|w| w.saturating_add(2))
        .fold(key_width, usize::saturating_add);
    let count = rows.len();
    for (i, (key, row)) in rows.iter().enumerate() {
        if i.saturating_add(1) == count {
            let _ = writeln!(out, "{}", "-".repeat(rule_width));
        }
        line(out, key, row);
    }
}

/// The report as JSON (money both as exact micro-USD and as USD).
pub fn to_json(report: &Report) -> Value {
    let tables: Vec<Value> = report
        .tables
        .iter()
        .map(|table| {
            let rows: Vec<Value> = table
                .rows
                .iter()
                .map(|(key, totals)| {
                    let mut row = serde_json::Map::new();
                    row.insert(table.dimension.label().into(), json!(key));
                    row.extend(totals.to_json());
                    Value::Object(row)
                })
                .collect();
            json!({"by": table.dimension.label(), "rows": rows})
        })
        .collect();
    json!({
        "tables": tables,
        "total": Value::Object(report.total.to_json()),
        "fallbacks": report.fallbacks.iter()
            .map(|(from, to, n)| json!({"from": from, "to": to, "count": n}))
            .collect::<Vec<_>>(),
        "rejected": report.rejected.iter()
            .map(|(reason, n)| json!({"reason": reason, "count": n}))
            .collect::<Vec<_>>(),
        "usage_missing": report.usage_missing,
        "feedback_unknown": report.feedback_unknown,
        "feedback_invalid": report.feedback_invalid,
        "feedback_evicted": report.feedback_evicted,
        "cache_by_model": report.cache_by_model.iter()
            .map(|(model, t)| json!({
                "model": model,
                "cached_tokens": t.cached_tokens,
                "cache_read_cost_micro_usd": t.cache_read_cost_micro_usd,
                "cache_write_tokens": t.cache_write_tokens,
                "cache_write_cost_micro_usd": t.cache_write_cost_micro_usd,
            }))
            .collect::<Vec<_>>(),
    })
}

/// Accepts only `http://` URLs whose host is a loopback address
/// (`127.0.0.0/8`, `[::1]`, `localhost`): the report reads a local Envoy's
/// admin port, never anything across the network.
pub fn check_loopback_http_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url:?}: only http:// URLs on loopback are supported"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(format!("{url:?}: credentials in the URL are not supported"));
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6
            .split_once(']')
            .map(|(host, _)| host)
            .ok_or_else(|| format!("{url:?}: bad IPv6 address"))?,
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err(format!(
            "{url:?}: the host must be a loopback address (127.0.0.1, [::1] or localhost)"
        ))
    }
}

#[cfg(test)]
mod tests;
