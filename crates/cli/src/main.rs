//! `model-router`: the native command line over the same core as the filter.

// Offline commands over labeled data (no request path): train, eval, convert.
#[allow(clippy::indexing_slicing)]
#[path = "model-router/learn.rs"]
mod learn;

use std::io::Read;
use std::process::ExitCode;

use lexopt::prelude::*;
use model_router_cli::envoy_config::{self, EnvoyOptions};
use model_router_cli::envoy_provider;
use model_router_cli::report::{self, Dimension};
use model_router_cli::score_drift;
use model_router_core::catalog::{self, Catalog};
use model_router_core::cooldown::Cooldowns;
use model_router_core::decision::{decide_under, Request, Traffic};
use model_router_core::headers::Headers;
use model_router_core::policy::Policy;
use model_router_core::request::{self, ApiShape};
use model_router_core::tokens::{self, Encoding};

const USAGE: &str = "\
model-router: an LLM model router for Envoy (proxy-wasm); this CLI shares its core.

Usage:
  model-router check POLICY [--today YYYY-MM-DD]
      Validate a policy; exit 1 with the problem and its JSON path. Warns when a
      model takes its prices from a catalogue entry read more than 180 days ago, and of
      `set` fields (model variants) that none of the model's APIs documents.
  model-router explain POLICY REQUEST.json [-H 'name: value']... [--path PATH] [--show-body]
                       [--cooldown MODEL[=SECONDS]]... [--random N]
      Print the decision for a request body as JSON (REQUEST.json may be - for stdin):
      --show-body adds what the first attempt sends upstream; --cooldown as if
      MODEL were cooling down (for the policy's cooldown.default_ms or SECONDS); --random
      the random input of splits without a key (default 0).
  model-router tokens [--encoding o200k_base|cl100k_base] [--chat] [--path PATH]
      Count the tokens of stdin: plain text, or with --chat a request body (billed prompt tokens).
  model-router envoy POLICY [--listen ADDR:PORT] [--admin-port N] [--wasm PATH]
                     [--upstream CLUSTER=HOST:PORT]... [--access-log PATH] [--body-limit BYTES]
                     [--sds-dir DIR] [--ca-bundle PATH]
      Print a complete Envoy bootstrap (JSON, which Envoy reads as YAML too).
      Providers with `auth` need --sds-dir: their SDS files (naming each key
      file) are written there. --upstream on a provider changes only the
      address (Host, SNI, path and key stay). --ca-bundle: the CA bundle for
      providers without tls.ca_file (default /etc/ssl/certs/ca-certificates.crt).
  model-router train DATA.jsonl -o CLASSIFIER.json [--weak MODEL [--pass-mark X]] [--strong MODEL]
                     [--encoding E] [--scan last_user|all_user|system|all] [--hash-bits N]
                     [--no-bigrams] [--max-tokens N] [--folds K] [--epochs N] [--lambda L,...]
                     [--label weak-fails|strong-wins] [--profile]
      Train a classifier (logistic regression; L2 chosen by cross-validation grouped by
      `group`). Rows: {prompt|request, label|scores, group?}. With --strong and
      --weak, prints held-out APGR / CPT / AIQ for it, the length rule and random.
      --label strong-wins (rows with scores): 1 where the weak model fails and the
      strong one passes. --profile: text-profile features (token ranks, digits, symbols).
  model-router eval POLICY DATA.jsonl [--strong MODEL] [--weak MODEL] [--window N] [--svg FILE]
      Replay rows (with scores: {MODEL: quality}) through the policy: strong share, quality,
      cost and PGR against the baselines, and each classifier's curve over thresholds.
  model-router convert-routellm DIR -o ROWS.jsonl
      RouteLLM's MMLU responses (DIR/mmlu/*.csv, DIR/mmlu_contaminated_prompts.jsonl) as rows.
  model-router report [--url URL | FILE] [--by model,rule,tenant,branch] [--json] [--policy POLICY]
      Requests, tokens, cost and savings against the baseline model, per model,
      rule and tenant, from Envoy's Prometheus stats: a scrape saved in FILE
      (- for stdin) or fetched from a loopback URL
      (default http://127.0.0.1:9901/stats/prometheus).
  model-router labels ACCESS_LOG FEEDBACK_LOG --weak MODEL [-o DATA.jsonl]
      Join Envoy's access log with a log of feedback (JSONL: the feedback body,
      plus the application's prompt) into training rows for `train`:
      label 1 where the weak model's answer was rated bad, 0 where good.
  model-router prices [FILTER] [--json]
      The price catalogue shipped with the router (USD per million tokens), each
      entry with its source and the date it was read; FILTER matches ids and aliases.
";

/// `explain` decides at a fixed instant: cooldowns are relative to it.
const EXPLAIN_NOW_MS: u64 = 1_000_000;

const DEFAULT_SCRAPE_URL: &str = "http://127.0.0.1:9901/stats/prometheus";

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(message) => {
            eprintln!("model-router: {message}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<ExitCode, String> {
    let mut parser = lexopt::Parser::from_env();
    let command = match parser.next().map_err(|e| e.to_string())? {
        Some(Value(v)) => v.string().map_err(|e| e.to_string())?,
        Some(Long("help") | Short('h')) | None => {
            print!("{USAGE}");
            return Ok(ExitCode::SUCCESS);
        }
        Some(other) => return Err(other.unexpected().to_string()),
    };
    match command.as_str() {
        "check" => check(&mut parser),
        "explain" => explain(&mut parser),
        "tokens" => count_tokens(&mut parser),
        "envoy" => envoy(&mut parser),
        "report" => report(&mut parser),
        "train" => learn::train_command(&mut parser),
        "eval" => learn::eval_command(&mut parser),
        "convert-routellm" => learn::convert_routellm_command(&mut parser),
        "labels" => labels(&mut parser),
        "prices" => prices(&mut parser),
        other => Err(format!("unknown command {other:?}\n\n{USAGE}")),
    }
}

/// Reads a policy, inlining its classifier artifacts (the filter cannot
/// read files), and compiles it. Returns the inlined text too.
fn load_policy(path: &str) -> Result<(Policy, String), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let dir = std::path::Path::new(path)
        .parent()
        .unwrap_or(std::path::Path::new("."));
    let text = model_router_cli::inline::inline_artifacts(&text, dir)
        .map_err(|e| format!("invalid policy {path}: {e}"))?;
    Policy::from_json(&text)
        .map(|p| (p, text))
        .map_err(|e| format!("invalid policy {path}: {e}"))
}

/// A policy whose key files, CA bundles and client keys file all exist
/// (checked for existence only: a key's content is never read here).
fn load_deployable_policy(path: &str) -> Result<(Policy, String), String> {
    let (policy, text) = load_policy(path)?;
    for (at, file) in policy.named_files() {
        if !std::path::Path::new(&file).is_file() {
            return Err(format!(
                "invalid policy {path}: {at}: no such file {file:?}"
            ));
        }
    }
    Ok((policy, text))
}

fn check(parser: &mut lexopt::Parser) -> Result<ExitCode, String> {
    let mut path = None;
    let mut today = None;
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Long("today") => {
                let text = string_value(parser)?;
                today = Some(
                    parse_date(&text)
                        .ok_or_else(|| format!("--today {text:?} is not YYYY-MM-DD"))?,
                );
            }
            Value(v) if path.is_none() => path = Some(v.string().map_err(|e| e.to_string())?),
            other => return Err(other.unexpected().to_string()),
        }
    }
    let path = path.ok_or("usage: model-router check POLICY [--today YYYY-MM-DD]")?;
    match load_deployable_policy(&path) {
        Ok((policy, _)) => {
            println!(
                "{path}: ok ({} models, {} tasks, {} rules)",
                policy.models.len(),
                policy.tasks.len(),
                policy.rules.len()
            );
            let today = today.unwrap_or_else(|| time::OffsetDateTime::now_utc().date());
            for warning in stale_prices(&policy, today)? {
                eprintln!("warning: {warning}");
            }
            for warning in model_router_core::policy::variant::policy_warnings(&policy) {
                eprintln!("warning: {warning}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(message) => {
            eprintln!("{message}");
            Ok(ExitCode::from(1))
        }
    }
}

/// One line per policy model whose catalogue prices are older than `catalog::MAX_AGE_DAYS`.
fn stale_prices(policy: &Policy, today: time::Date) -> Result<Vec<String>, String> {
    let catalog = Catalog::shipped()?;
    let mut warnings = Vec::new();
    for model in &policy.models {
        let Some(entry) = model.catalog.as_deref().and_then(|id| catalog.get(id)) else {
            continue;
        };
        let read = parse_date(&entry.read).ok_or_else(|| {
            format!(
                "catalogue entry {}: bad read date {:?}",
                entry.id, entry.read
            )
        })?;
        let age = i64::from(today.to_julian_day()).saturating_sub(i64::from(read.to_julian_day()));
        if age > catalog::MAX_AGE_DAYS {
            warnings.push(format!(
                "models.{}: the catalogue prices of {} were read on {} ({age} days ago, over {}); check {} and set the prices in the policy if they changed",
                model.name,
                entry.id,
                entry.read,
                catalog::MAX_AGE_DAYS,
                entry.source
            ));
        }
    }
    Ok(warnings)
}

/// `YYYY-MM-DD`.
fn parse_date(text: &str) -> Option<time::Date> {
    time::Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()
}

fn prices(parser: &mut lexopt::Parser) -> Result<ExitCode, String> {
    let mut filter = None;
    let mut as_json = false;
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Long("json") => as_json = true,
            Value(v) if filter.is_none() => filter = Some(v.string().map_err(|e| e.to_string())?),
            other => return Err(other.unexpected().to_string()),
        }
    }
    let catalog = Catalog::shipped()?;
    let entries = catalog.matching(filter.as_deref());
    if entries.is_empty() {
        eprintln!(
            "no catalogue model matches {:?}",
            filter.unwrap_or_default()
        );
        return Ok(ExitCode::from(1));
    }
    if as_json {
        let list: Vec<serde_json::Value> = entries.iter().map(|e| entry_json(e)).collect();
        let text = serde_json::to_string_pretty(&list).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        print!("{}", prices_table(&entries));
    }
    Ok(ExitCode::SUCCESS)
}

fn entry_json(e: &catalog::Entry) -> serde_json::Value {
    let p = &e.pricing;
    let long = p.long_context.as_ref().map(|l| {
        serde_json::json!({
            "above_prompt_tokens": l.above_prompt_tokens,
            "input_per_mtok": l.input_per_mtok,
            "output_per_mtok": l.output_per_mtok,
            "cached_input_per_mtok": l.cached_input_per_mtok,
            "cache_write_per_mtok": l.cache_write_per_mtok,
            "cache_write_1h_per_mtok": l.cache_write_1h_per_mtok,
        })
    });
    serde_json::json!({
        "id": e.id,
        "aliases": e.aliases,
        "context_window": e.context_window,
        "max_output_tokens": e.max_output_tokens,
        "input_per_mtok": p.input_per_mtok,
        "cached_input_per_mtok": p.cached_input_per_mtok,
        "cache_write_per_mtok": p.cache_write_per_mtok,
        "cache_write_1h_per_mtok": p.cache_write_1h_per_mtok,
        "output_per_mtok": p.output_per_mtok,
        "long_context": long,
        "source": e.source,
        "read": e.read,
    })
}

/// An aligned table of catalogue entries; `-` where the provider publishes
/// no separate price (billed at the input price).
fn prices_table(entries: &[&catalog::Entry]) -> String {
    let usd = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("${v}"));
    let heading = [
        "model",
        "context",
        "max out",
        "input",
        "cached",
        "write 5m",
        "write 1h",
        "output",
        "long context",
        "read",
        "source",
    ];
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let p = &e.pricing;
            let long = p.long_context.as_ref().map_or_else(
                || "-".to_string(),
                |l| {
                    format!(
                        "> {}: {} / {}",
                        l.above_prompt_tokens.unwrap_or_default(),
                        usd(l.input_per_mtok),
                        usd(l.output_per_mtok)
                    )
                },
            );
            vec![
                e.id.clone(),
                e.context_window.to_string(),
                e.max_output_tokens
                    .map_or_else(|| "-".to_string(), |m| m.to_string()),
                usd(p.input_per_mtok),
                usd(p.cached_input_per_mtok),
                usd(p.cache_write_per_mtok),
                usd(p.cache_write_1h_per_mtok),
                usd(p.output_per_mtok),
                long,
                e.read.clone(),
                e.source.clone(),
            ]
        })
        .collect();
    let mut widths: Vec<usize> = heading.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let heading: Vec<String> = heading.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&heading).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out.push_str("USD per million tokens; \"long context\" prices the whole request once its prompt exceeds the threshold.\n");
    out
}

fn explain(parser: &mut lexopt::Parser) -> Result<ExitCode, String> {
    let mut positionals = Vec::new();
    let mut headers = Headers::new();
    let mut path = "/v1/chat/completions".to_string();
    let mut show_body = false;
    let mut cooling: Vec<(String, Option<u64>)> = Vec::new();
    let mut random = 0u64;
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Long("cooldown") => {
                let value = string_value(parser)?;
                let (model, secs) = match value.split_once('=') {
                    Some((model, secs)) => (
                        model.to_string(),
                        Some(secs.trim().parse::<u64>().map_err(|_| {
                            format!("--cooldown {value:?}: SECONDS must be an integer")
                        })?),
                    ),
                    None => (value, None),
                };
                cooling.push((model, secs));
            }
            Long("show-body") => show_body = true,
            Long("random") => {
                random = string_value(parser)?
                    .parse()
                    .map_err(|_| "--random needs an unsigned integer".to_string())?
            }
            Short('H') | Long("header") => {
                let value = parser
                    .value()
                    .map_err(|e| e.to_string())?
                    .string()
                    .map_err(|e| e.to_string())?;
                let (name, value) = value
                    .split_once(':')
                    .ok_or_else(|| format!("header {value:?} is not 'name: value'"))?;
                headers.insert(name.trim(), value.trim());
            }
            Long("path") => {
                path = parser
                    .value()
                    .map_err(|e| e.to_string())?
                    .string()
                    .map_err(|e| e.to_string())?
            }
            Value(v) => positionals.push(v.string().map_err(|e| e.to_string())?),
            other => return Err(other.unexpected().to_string()),
        }
    }
    let [policy_path, request_path] = positionals.as_slice() else {
        return Err(
            "usage: model-router explain POLICY REQUEST.json [-H 'name: value']... [--path PATH] [--show-body] [--cooldown MODEL[=SECONDS]]... [--random N]"
                .into(),
        );
    };
    let (policy, _) = match load_policy(policy_path) {
        Ok(p) => p,
        Err(message) => {
            eprintln!("{message}");
            return Ok(ExitCode::from(1));
        }
    };
    let body = read_input(request_path)?;
    let shape = ApiShape::from_path(&path)
        .ok_or_else(|| format!("{path} is not an LLM API path the router handles"))?;
    let mut cooldowns = Cooldowns::new();
    for (model, secs) in &cooling {
        if policy.model_by_name(model).is_none() {
            return Err(format!("--cooldown: unknown model {model:?}"));
        }
        let ms = secs.map_or(policy.cooldown.default_ms, |s| s.saturating_mul(1000));
        cooldowns.start(model, EXPLAIN_NOW_MS.saturating_add(ms));
    }
    let traffic = Traffic {
        now_ms: EXPLAIN_NOW_MS,
        random,
        cooldowns: &cooldowns,
    };
    let decision = decide_under(
        &policy,
        &Request {
            shape,
            path: &path,
            headers: &headers,
            body: &body,
        },
        &traffic,
        &model_router_core::classifier::TrainingQuantiles,
    );
    let mut out = model_router_core::explain::explain(&policy, &decision);
    if show_body {
        let upstream =
            model_router_core::explain::upstream_request(&policy, &decision, &path, &body);
        if let Some(map) = out.as_object_mut() {
            map.insert("upstream".into(), upstream);
        }
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?
    );
    Ok(ExitCode::SUCCESS)
}

fn count_tokens(parser: &mut lexopt::Parser) -> Result<ExitCode, String> {
    let mut encoding = Encoding::O200kBase;
    let mut chat = false;
    let mut path = "/v1/chat/completions".to_string();
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Long("encoding") => {
                let name = parser
                    .value()
                    .map_err(|e| e.to_string())?
                    .string()
                    .map_err(|e| e.to_string())?;
                encoding = Encoding::from_name(&name)
                    .ok_or_else(|| format!("unknown encoding {name:?}"))?;
            }
            Long("chat") => chat = true,
            Long("path") => {
                path = parser
                    .value()
                    .map_err(|e| e.to_string())?
                    .string()
                    .map_err(|e| e.to_string())?
            }
            other => return Err(other.unexpected().to_string()),
        }
    }
    let input = read_input("-")?;
    let count = if chat {
        let facts = request::parse(&path, &input).map_err(|e| format!("invalid request: {e}"))?;
        facts.prompt_tokens(encoding).map_err(|e| e.to_string())?
    } else {
        let text = String::from_utf8(input).map_err(|_| "stdin is not UTF-8".to_string())?;
        tokens::count(encoding, &text).map_err(|e| e.to_string())? as u64
    };
    println!("{count}");
    Ok(ExitCode::SUCCESS)
}

fn envoy(parser: &mut lexopt::Parser) -> Result<ExitCode, String> {
    let mut options = EnvoyOptions::default();
    let mut policy_path = None;
    let mut sds_dir = None;
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Long("listen") => {
                let value = string_value(parser)?;
                let (address, port) = value
                    .rsplit_once(':')
                    .ok_or_else(|| format!("--listen {value:?} is not ADDR:PORT"))?;
                options.listen_address = address.to_string();
                options.listen_port = port
                    .parse()
                    .map_err(|_| format!("bad port in --listen {value:?}"))?;
            }
            Long("admin-port") => {
                options.admin_port = string_value(parser)?
                    .parse()
                    .map_err(|_| "bad --admin-port".to_string())?
            }
            Long("wasm") => options.wasm_path = string_value(parser)?,
            Long("sds-dir") => sds_dir = Some(string_value(parser)?),
            Long("ca-bundle") => options.ca_bundle = string_value(parser)?,
            Long("access-log") => options.access_log_path = Some(string_value(parser)?),
            Long("body-limit") => {
                options.body_limit_bytes = string_value(parser)?
                    .parse()
                    .map_err(|_| "bad --body-limit".to_string())?
            }
            Long("upstream") => {
                let value = string_value(parser)?;
                let parsed = value.split_once('=').and_then(|(cluster, addr)| {
                    let (host, port) = addr.rsplit_once(':')?;
                    Some((
                        cluster.to_string(),
                        host.to_string(),
                        port.parse::<u16>().ok()?,
                    ))
                });
                options.upstreams.push(
                    parsed
                        .ok_or_else(|| format!("--upstream {value:?} is not CLUSTER=HOST:PORT"))?,
                );
            }
            Value(v) if policy_path.is_none() => {
                policy_path = Some(v.string().map_err(|e| e.to_string())?)
            }
            other => return Err(other.unexpected().to_string()),
        }
    }
    let policy_path = policy_path.ok_or("usage: model-router envoy POLICY [options]")?;
    let (policy, text) = match load_deployable_policy(&policy_path) {
        Ok(p) => p,
        Err(message) => {
            eprintln!("{message}");
            return Ok(ExitCode::from(1));
        }
    };
    if let Some(clients) = &policy.clients {
        options.client_keys = envoy_provider::read_client_keys(&clients.keys_file)
            .map_err(|e| format!("invalid policy {policy_path}: {e}"))?;
    }
    let secrets = envoy_provider::sds_files(&policy, "");
    if !secrets.is_empty() {
        let dir = sds_dir.ok_or(
            "--sds-dir DIR is required: the providers' keys reach Envoy as SDS secrets, one file per provider written to DIR (naming the key file, never holding the key)",
        )?;
        write_sds_files(&policy, &dir)?;
        options.sds_dir = dir;
    }
    let config = envoy_config::bootstrap(&policy, &text, &options);
    println!(
        "{}",
        serde_json::to_string_pretty(&config).map_err(|e| e.to_string())?
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes each provider's SDS file into `dir` (created if needed), by a
/// rename so that a running Envoy reloads it whole.
fn write_sds_files(policy: &Policy, dir: &str) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {dir}: {e}"))?;
    for (path, secret) in envoy_provider::sds_files(policy, dir) {
        let text = serde_json::to_string_pretty(&secret).map_err(|e| e.to_string())?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

fn report(parser: &mut lexopt::Parser) -> Result<ExitCode, String> {
    let mut url = None;
    let mut file = None;
    let mut dimensions = Dimension::ALL.to_vec();
    let mut as_json = false;
    let mut policy = None;
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Long("url") => url = Some(string_value(parser)?),
            Long("policy") => policy = Some(string_value(parser)?),
            Long("by") => dimensions = Dimension::parse_list(&string_value(parser)?)?,
            Long("json") => as_json = true,
            Value(v) if file.is_none() => file = Some(v.string().map_err(|e| e.to_string())?),
            other => return Err(other.unexpected().to_string()),
        }
    }
    let text = match (url, file) {
        (Some(_), Some(_)) => return Err("report reads either --url or FILE, not both".into()),
        (None, Some(path)) => String::from_utf8(read_input(&path)?)
            .map_err(|_| format!("{path} is not UTF-8 text"))?,
        (Some(url), None) => fetch_scrape(&url)?,
        (None, None) => fetch_scrape(DEFAULT_SCRAPE_URL)?,
    };
    let samples =
        report::parse_exposition(&text).map_err(|e| format!("not a Prometheus scrape: {e}"))?;
    let out = report::build(&samples, &dimensions);
    // With the policy, its classifiers' training scores: score drift (PSI).
    let drifts = match policy {
        Some(path) => Some(score_drift::score_drift(&samples, &load_policy(&path)?.0)),
        None => None,
    };
    if as_json {
        let mut json = report::to_json(&out);
        if let (Some(d), Some(obj)) = (&drifts, json.as_object_mut()) {
            obj.insert("score_drift".into(), score_drift::to_json(d));
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", report::render(&out));
        if let Some(d) = &drifts {
            print!("\n{}", score_drift::render(d));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// GETs a scrape from a local Envoy admin port: plain HTTP to loopback only,
/// no proxy, no redirects.
fn fetch_scrape(url: &str) -> Result<String, String> {
    report::check_loopback_http_url(url)?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .proxy(None)
        .max_redirects(0)
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .build()
        .into();
    let mut response = agent
        .get(url)
        .call()
        .map_err(|e| format!("cannot fetch {url}: {e}"))?;
    let status = response.status();
    let body = response
        .body_mut()
        .with_config()
        .limit(256 * 1024 * 1024)
        .read_to_string()
        .map_err(|e| format!("cannot read {url}: {e}"))?;
    if !status.is_success() {
        let first = body.lines().next().unwrap_or_default();
        return Err(format!("{url} answered {status}: {first}"));
    }
    Ok(body)
}

fn labels(parser: &mut lexopt::Parser) -> Result<ExitCode, String> {
    let (mut files, mut weak, mut output) = (Vec::new(), None, None);
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Long("weak") => weak = Some(string_value(parser)?),
            Short('o') | Long("output") => output = Some(string_value(parser)?),
            Value(v) if files.len() < 2 => files.push(v.string().map_err(|e| e.to_string())?),
            other => return Err(other.unexpected().to_string()),
        }
    }
    let [access, feedback] = files.as_slice() else {
        return Err("labels needs ACCESS_LOG and FEEDBACK_LOG".into());
    };
    let weak = weak.ok_or("labels needs --weak MODEL (the model whose failures are labelled)")?;
    let text = |path: &str| {
        String::from_utf8(read_input(path)?).map_err(|_| format!("{path} is not UTF-8 text"))
    };
    let (rows, stats) = model_router_cli::labels::join(&text(access)?, &text(feedback)?, &weak)
        .map_err(|e| format!("{feedback}: {e}"))?;
    match &output {
        Some(path) => {
            std::fs::write(path, &rows).map_err(|e| format!("cannot write {path}: {e}"))?
        }
        None => print!("{rows}"),
    }
    eprintln!(
        "labels: {} rows from {} feedback ({} for requests not in the access log, {} on other models than {weak}, {} without a prompt)",
        stats.rows, stats.feedback, stats.unknown, stats.other_model, stats.no_prompt
    );
    Ok(ExitCode::SUCCESS)
}

fn string_value(parser: &mut lexopt::Parser) -> Result<String, String> {
    parser
        .value()
        .map_err(|e| e.to_string())?
        .string()
        .map_err(|e| e.to_string())
}

fn read_input(path: &str) -> Result<Vec<u8>, String> {
    if path == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| format!("cannot read stdin: {e}"))?;
        Ok(buf)
    } else {
        std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))
    }
}
