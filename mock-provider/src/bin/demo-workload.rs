//! `demo-workload`: replays a JSONL workload against model-router's Envoy
//! listener and summarises what came back: status codes and the model that
//! answered (`x-model-router-model`) per request name.
//!
//! One request per line:
//! `{"name": "...", "weight": 10, "headers": {...}, "path": "/v1/chat/completions", "body": {...}}`.
//! `weight` (default 1) sets how often the line is sent relative to the
//! others; the order is a deterministic interleaving (smooth weighted round
//! robin), so two runs send the same sequence. A string in the body may hold
//! `{{document:N}}`, replaced by N words of generated prose (long documents
//! without megabytes in the file).
//!
//! Scripted raters: a line's optional `"feedback": {"MODEL": P, "*": P}`
//! rates each answer of that line through the router's feedback endpoint
//! (`POST /v1/router/feedback` with the response's
//! `x-model-router-request-id`): `good` with probability P for the model
//! that answered (`*` for any other), deterministically per request, so the
//! report's quality columns have something true to show.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

const USAGE: &str = "\
usage: demo-workload --url http://127.0.0.1:PORT [--workload FILE] [--requests N] [--concurrency C]
       demo-workload --print NAME [--workload FILE]

  --url URL          the Envoy listener (http:// on loopback)
  --workload FILE    JSONL workload (default examples/workload.jsonl)
  --requests N       requests to send in all, cycling through the weighted lines (default 300)
  --concurrency C    requests in flight at once (default 4)
  --timeout-s S      per-request timeout in seconds (default 60)
  --print NAME       print the body of workload line NAME as sent (documents
                     expanded), e.g. for `model-router explain POLICY -`
  -h, --help         this help

Shows progress on stderr, then prints per request name the status codes and
the models that answered (x-model-router-model). Exits 1 if a request got no
response at all.";

/// Consecutive requests without a response after which the run stops.
const GIVE_UP_AFTER: usize = 25;

/// One workload line.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    #[serde(default = "one")]
    weight: u32,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default = "chat_path")]
    path: String,
    body: Value,
    /// Model (or `*`) → probability that a rater calls its answer good.
    #[serde(default)]
    feedback: BTreeMap<String, f64>,
}

fn one() -> u32 {
    1
}

fn chat_path() -> String {
    "/v1/chat/completions".to_string()
}

/// A workload line ready to send.
struct Prepared {
    name: String,
    headers: Vec<(String, String)>,
    path: String,
    body: Vec<u8>,
    feedback: BTreeMap<String, f64>,
}

struct Options {
    url: String,
    print: Option<String>,
    workload: String,
    requests: usize,
    concurrency: usize,
    timeout: Duration,
}

/// What one request got back.
struct Outcome {
    entry: usize,
    /// The HTTP status, or the transport error.
    status: Result<u16, String>,
    model: Option<String>,
    attempts: u32,
    /// The verdict posted as feedback on this answer, if any.
    rated: Option<&'static str>,
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("demo-workload: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("demo-workload: {message}");
            ExitCode::from(2)
        }
    }
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut options = Options {
        url: String::new(),
        print: None,
        workload: "examples/workload.jsonl".to_string(),
        requests: 300,
        concurrency: 4,
        timeout: Duration::from_secs(60),
    };
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_string(), Some(value)),
            _ => (arg.clone(), None),
        };
        let mut value = || -> Result<String, String> {
            match inline {
                Some(v) => Ok(v.to_string()),
                None => args.next().ok_or_else(|| format!("{flag} needs a value")),
            }
        };
        let number = |text: String, flag: &str| -> Result<usize, String> {
            text.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{flag} {text:?} is not a positive number"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--url" => options.url = value()?.trim_end_matches('/').to_string(),
            "--workload" => options.workload = value()?,
            "--print" => options.print = Some(value()?),
            "--requests" => options.requests = number(value()?, "--requests")?,
            "--concurrency" => options.concurrency = number(value()?, "--concurrency")?,
            "--timeout-s" => {
                options.timeout = Duration::from_secs(number(value()?, "--timeout-s")? as u64)
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if options.print.is_some() {
        return Ok(Some(options));
    }
    if options.url.is_empty() {
        return Err("--url is required".to_string());
    }
    model_router_cli::report::check_loopback_http_url(&options.url)?;
    Ok(Some(options))
}

fn run(options: &Options) -> Result<bool, String> {
    let text = std::fs::read_to_string(&options.workload)
        .map_err(|e| format!("cannot read {}: {e}", options.workload))?;
    let entries = parse_workload(&text).map_err(|e| format!("{}: {e}", options.workload))?;
    let prepared: Vec<Prepared> = entries.iter().map(prepare).collect::<Result<_, String>>()?;
    if let Some(name) = &options.print {
        let request = prepared
            .iter()
            .find(|p| &p.name == name)
            .ok_or_else(|| format!("no request named {name:?} in {}", options.workload))?;
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(&request.body)
            .and_then(|()| writeln!(stdout))
            .map_err(|e| e.to_string())?;
        return Ok(true);
    }
    let weights: Vec<u32> = entries.iter().map(|e| e.weight).collect();
    let order = schedule(&weights, options.requests);

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .proxy(None)
        .max_redirects(0)
        .http_status_as_error(false)
        .timeout_global(Some(options.timeout))
        .build()
        .into();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    // Transport failures since the last response: past a bound the listener
    // is gone (Envoy stopped), and sending the rest would only add errors.
    let failing = AtomicUsize::new(0);
    let outcomes = Mutex::new(Vec::with_capacity(order.len()));
    let progress = Progress::new(order.len());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..options.concurrency.min(order.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(&entry) = order.get(i) else { break };
                let Some(request) = prepared.get(entry) else {
                    break;
                };
                if failing.load(Ordering::SeqCst) >= GIVE_UP_AFTER {
                    break;
                }
                let outcome = send(&agent, &options.url, entry, request, i);
                if outcome.status.is_ok() {
                    failing.store(0, Ordering::SeqCst);
                } else {
                    failing.fetch_add(1, Ordering::SeqCst);
                }
                if let Ok(mut all) = outcomes.lock() {
                    all.push(outcome);
                }
                progress.show(done.fetch_add(1, Ordering::SeqCst) + 1);
            });
        }
    });
    progress.finish(done.load(Ordering::SeqCst));
    let elapsed = started.elapsed();
    let outcomes = outcomes.into_inner().map_err(|e| e.to_string())?;
    let summary = summarise(&prepared, &outcomes, elapsed, options.concurrency);
    print!("{summary}");
    if failing.load(Ordering::SeqCst) >= GIVE_UP_AFTER {
        println!(
            "Stopped after {GIVE_UP_AFTER} requests in a row got no response ({} of {} not sent).",
            order.len().saturating_sub(outcomes.len()),
            order.len()
        );
    }
    Ok(outcomes.iter().all(|o| o.status.is_ok()))
}

fn parse_workload(text: &str) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let entry: Entry =
            serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        if entry.weight == 0 {
            continue;
        }
        entries.push(entry);
    }
    if entries.is_empty() {
        return Err("no requests in the workload".to_string());
    }
    Ok(entries)
}

fn prepare(entry: &Entry) -> Result<Prepared, String> {
    let mut body = entry.body.clone();
    expand_documents(&mut body);
    let body = serde_json::to_vec(&body).map_err(|e| format!("{}: body: {e}", entry.name))?;
    let mut headers: Vec<(String, String)> = entry
        .headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .collect();
    if !headers.iter().any(|(n, _)| n == "content-type") {
        headers.push(("content-type".into(), "application/json".into()));
    }
    let path = if entry.path.starts_with('/') {
        entry.path.clone()
    } else {
        format!("/{}", entry.path)
    };
    Ok(Prepared {
        name: entry.name.clone(),
        headers,
        path,
        body,
        feedback: entry.feedback.clone(),
    })
}

/// Smooth weighted round robin: `count` indices into `weights`, each index
/// appearing in proportion to its weight, evenly spread.
fn schedule(weights: &[u32], count: usize) -> Vec<usize> {
    let total: i64 = weights.iter().map(|w| i64::from(*w)).sum();
    let mut current = vec![0i64; weights.len()];
    let mut order = Vec::with_capacity(count);
    for _ in 0..count {
        for (c, w) in current.iter_mut().zip(weights) {
            *c += i64::from(*w);
        }
        let mut best = 0;
        for (i, c) in current.iter().enumerate() {
            if current.get(best).is_some_and(|b| c > b) {
                best = i;
            }
        }
        if let Some(c) = current.get_mut(best) {
            *c -= total;
        }
        order.push(best);
    }
    order
}

/// Replaces `{{document:N}}` in every string with N generated words.
fn expand_documents(value: &mut Value) {
    match value {
        Value::String(s) => {
            while let Some(start) = s.find("{{document:") {
                let Some(len) = s.get(start..).and_then(|rest| rest.find("}}")) else {
                    return;
                };
                let words = s
                    .get(start + "{{document:".len()..start + len)
                    .and_then(|n| n.parse::<usize>().ok())
                    .unwrap_or(0);
                s.replace_range(start..start + len + 2, &document(words));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(expand_documents),
        Value::Object(map) => map.values_mut().for_each(expand_documents),
        _ => {}
    }
}

const SENTENCES: [&str; 12] = [
    "Revenue for the period reached 48.2 million dollars, up 14 percent year over year, driven by the enterprise tier and by expansion within existing accounts.",
    "Gross margin improved to 71 percent as the migration of the search cluster to the new storage layer removed most of the duplicated indexing work.",
    "Operating expenses grew more slowly than revenue; hiring was concentrated in support and in the platform team, while marketing spend stayed flat.",
    "Customer churn fell to 2.1 percent, the lowest in six quarters, after the onboarding flow was rebuilt and the median time to first value dropped to four days.",
    "The supplier shall deliver the services described in each statement of work with reasonable skill and care and in accordance with good industry practice.",
    "Either party may terminate this agreement on ninety days written notice, or at once if the other party commits a material breach that is not remedied within thirty days.",
    "The customer shall pay each undisputed invoice within thirty days of receipt; late payments carry interest at two percent above the base rate.",
    "Neither party's liability under this agreement shall exceed the fees paid in the twelve months before the event giving rise to the claim.",
    "The support organisation handled 61 thousand tickets, 38 percent of which were resolved by the self-service assistant without a human agent.",
    "Risks for the next period include the renewal of two large public-sector contracts, the exchange rate of the euro, and the cost of model providers.",
    "Personal data is processed only on documented instructions, within the European Economic Area, and deleted within thirty days of the end of the services.",
    "The steering committee meets monthly to review the service levels, the change requests in flight and the risks that need a decision from either party.",
];

/// About `words` words of plausible business prose, deterministic.
fn document(words: usize) -> String {
    let mut out = String::new();
    let mut count = 0;
    let mut i = 0usize;
    let mut section = 1;
    while count < words {
        if i % 6 == 0 {
            if !out.is_empty() {
                out.push_str("\n\n");
            }
            out.push_str(&format!("Section {section}. "));
            section += 1;
        } else {
            out.push(' ');
        }
        // Step through the sentences by a stride coprime with their number.
        let sentence = SENTENCES
            .get((i * 5 + section) % SENTENCES.len())
            .copied()
            .unwrap_or_default();
        out.push_str(sentence);
        count += sentence.split_whitespace().count();
        i += 1;
    }
    out
}

fn send(agent: &ureq::Agent, base: &str, entry: usize, request: &Prepared, n: usize) -> Outcome {
    let url = format!("{base}{}", request.path);
    let mut builder = ureq::http::Request::builder().method("POST").uri(&url);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    let failed = |e: String| Outcome {
        entry,
        status: Err(e),
        model: None,
        attempts: 0,
        rated: None,
    };
    let http_request = match builder.body(request.body.clone()) {
        Ok(r) => r,
        Err(e) => return failed(e.to_string()),
    };
    let mut response = match agent.run(http_request) {
        Ok(r) => r,
        Err(e) => return failed(e.to_string()),
    };
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let model = header("x-model-router-model");
    let request_id = header("x-model-router-request-id");
    let attempts = header("x-model-router-attempts")
        .or_else(|| header("x-envoy-attempt-count"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let status = response.status().as_u16();
    // Read the whole answer (streams included) so the router sees it complete.
    let mut sink = Vec::new();
    if let Err(e) = response.body_mut().as_reader().read_to_end(&mut sink) {
        return failed(format!("reading the body: {e}"));
    }
    let rated = match (&request_id, &model) {
        (Some(id), Some(model)) if status == 200 => rate(agent, base, request, model, id, n),
        _ => None,
    };
    Outcome {
        entry,
        status: Ok(status),
        model,
        attempts,
        rated,
    }
}

/// The scripted rater: posts `good` or `bad` on one answer (request `n`).
fn rate(
    agent: &ureq::Agent,
    base: &str,
    request: &Prepared,
    model: &str,
    request_id: &str,
    n: usize,
) -> Option<&'static str> {
    let p = request
        .feedback
        .get(model)
        .or_else(|| request.feedback.get("*"))?;
    let verdict = if verdict_draw(n) < *p { "good" } else { "bad" };
    let body = serde_json::json!({"request_id": request_id, "verdict": verdict}).to_string();
    let response = agent
        .post(&format!("{base}/v1/router/feedback"))
        .header("content-type", "application/json")
        .send(body.as_bytes())
        .ok()?;
    (response.status().as_u16() == 204).then_some(verdict)
}

/// A deterministic draw in [0, 1) for request `n` (a golden-ratio sequence:
/// evenly spread, the same in every run).
fn verdict_draw(n: usize) -> f64 {
    (n as f64 * 0.618_033_988_749_895).fract()
}

/// A one-line progress bar on stderr, redrawn in place on a terminal; one
/// final line otherwise (logs get no carriage returns).
struct Progress {
    total: usize,
    tty: bool,
    last: Mutex<Instant>,
}

impl Progress {
    fn new(total: usize) -> Progress {
        let progress = Progress {
            total,
            tty: std::io::stderr().is_terminal(),
            last: Mutex::new(Instant::now()),
        };
        progress.draw(0);
        progress
    }

    /// Redraws at most every 50 ms (and always at the end).
    fn show(&self, done: usize) {
        if let Ok(mut last) = self.last.lock() {
            if done < self.total && last.elapsed() < Duration::from_millis(50) {
                return;
            }
            *last = Instant::now();
            self.draw(done);
        }
    }

    fn draw(&self, done: usize) {
        if self.tty {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r{}", bar(done, self.total));
            let _ = err.flush();
        }
    }

    fn finish(&self, done: usize) {
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = writeln!(err, "\r{}", bar(done, self.total));
        } else {
            let _ = writeln!(err, "{}", bar(done, self.total));
        }
    }
}

/// `[=========>          ] 150/300`
fn bar(done: usize, total: usize) -> String {
    const WIDTH: usize = 30;
    let filled = done
        .saturating_mul(WIDTH)
        .checked_div(total)
        .unwrap_or(WIDTH)
        .min(WIDTH);
    let bar: String = (0..WIDTH)
        .map(|i| match i.cmp(&filled) {
            std::cmp::Ordering::Less => '=',
            std::cmp::Ordering::Equal if done < total => '>',
            _ => ' ',
        })
        .collect();
    format!("[{bar}] {done}/{total}")
}

/// Per request name: how many were sent, their statuses, who answered.
fn summarise(
    prepared: &[Prepared],
    outcomes: &[Outcome],
    elapsed: Duration,
    concurrency: usize,
) -> String {
    #[derive(Default)]
    struct Row {
        sent: usize,
        statuses: BTreeMap<String, usize>,
        models: BTreeMap<String, usize>,
        retried: usize,
    }
    let mut rows: Vec<Row> = prepared.iter().map(|_| Row::default()).collect();
    let mut all_statuses: BTreeMap<String, usize> = BTreeMap::new();
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    for outcome in outcomes {
        let Some(row) = rows.get_mut(outcome.entry) else {
            continue;
        };
        row.sent += 1;
        let status = match &outcome.status {
            Ok(code) => code.to_string(),
            Err(e) => {
                *errors.entry(e.clone()).or_default() += 1;
                "error".to_string()
            }
        };
        *row.statuses.entry(status.clone()).or_default() += 1;
        *all_statuses.entry(status).or_default() += 1;
        if outcome.status.is_ok() {
            let model = outcome.model.clone().unwrap_or_else(|| "-".to_string());
            *row.models.entry(model).or_default() += 1;
        }
        if outcome.attempts > 1 {
            row.retried += 1;
        }
    }
    let counts = |map: &BTreeMap<String, usize>| -> String {
        let mut items: Vec<(&String, &usize)> = map.iter().collect();
        items.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        items
            .iter()
            .map(|(k, n)| format!("{k} x{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let table: Vec<[String; 5]> = prepared
        .iter()
        .zip(&rows)
        .filter(|(_, row)| row.sent > 0)
        .map(|(p, row)| {
            [
                p.name.clone(),
                row.sent.to_string(),
                counts(&row.statuses),
                row.retried.to_string(),
                counts(&row.models),
            ]
        })
        .collect();
    let heading = [
        "request".to_string(),
        "sent".to_string(),
        "status".to_string(),
        "fallbacks".to_string(),
        "answered by (x-model-router-model)".to_string(),
    ];
    let mut widths = heading.clone().map(|h| h.len());
    for row in &table {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        outcomes.len() as f64 / secs
    } else {
        0.0
    };
    out.push_str(&format!(
        "Sent {} requests in {secs:.1}s ({rate:.0} req/s, concurrency {concurrency}): {}\n",
        outcomes.len(),
        counts(&all_statuses)
    ));
    let good = outcomes.iter().filter(|o| o.rated == Some("good")).count();
    let bad = outcomes.iter().filter(|o| o.rated == Some("bad")).count();
    if good + bad > 0 {
        out.push_str(&format!(
            "Rated {} answers through the feedback endpoint: {good} good, {bad} bad\n",
            good + bad
        ));
    }
    out.push('\n');
    for row in std::iter::once(&heading).chain(&table) {
        let [name, sent, status, retried, models] = row;
        let [w0, w1, w2, w3, _] = widths;
        out.push_str(
            format!("{name:<w0$}  {sent:>w1$}  {status:<w2$}  {retried:>w3$}  {models}").trim_end(),
        );
        out.push('\n');
    }
    for (error, n) in &errors {
        out.push_str(&format!("error x{n}: {error}\n"));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn schedule_follows_weights_and_interleaves() {
        let order = schedule(&[5, 1, 2], 16);
        let count = |i| order.iter().filter(|&&x| x == i).count();
        assert_eq!((count(0), count(1), count(2)), (10, 2, 4));
        // Never two of the light entries back to back.
        assert!(order.windows(2).all(|w| !(w[0] != 0 && w[1] != 0)));
        assert_eq!(schedule(&[1], 3), vec![0, 0, 0]);
    }

    #[test]
    fn documents_expand_to_about_n_words() {
        let mut body = serde_json::json!({"messages": [{"content": "Summarize:\n\n{{document:500}}\n\nThanks"}]});
        expand_documents(&mut body);
        let text = body["messages"][0]["content"].as_str().unwrap();
        assert!(text.starts_with("Summarize:\n\nSection 1. "));
        assert!(text.ends_with("\n\nThanks"));
        let words = text.split_whitespace().count();
        assert!((500..560).contains(&words), "{words}");
        assert_eq!(document(300), document(300));
    }

    #[test]
    fn the_shipped_workload_parses() {
        let text = include_str!("../../../examples/workload.jsonl");
        let entries = parse_workload(text).unwrap();
        assert!(entries.len() >= 10);
        for entry in &entries {
            let prepared = prepare(entry).unwrap();
            assert!(!String::from_utf8(prepared.body)
                .unwrap()
                .contains("{{document"));
        }
    }

    #[test]
    fn progress_bar() {
        assert_eq!(bar(0, 300), format!("[>{}] 0/300", " ".repeat(29)));
        assert_eq!(
            bar(150, 300),
            format!("[{}>{}] 150/300", "=".repeat(15), " ".repeat(14))
        );
        assert_eq!(bar(300, 300), format!("[{}] 300/300", "=".repeat(30)));
    }

    #[test]
    fn arguments() {
        let args = |a: &[&str]| parse_args(a.iter().map(|s| s.to_string()));
        let options = args(&[
            "--url",
            "http://127.0.0.1:1/",
            "--requests=10",
            "--concurrency",
            "2",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(options.url, "http://127.0.0.1:1");
        assert_eq!((options.requests, options.concurrency), (10, 2));
        assert!(args(&["--url", "http://10.1.1.1:80"]).is_err());
        assert!(args(&["--requests", "0", "--url", "http://127.0.0.1:1"]).is_err());
        assert!(args(&[]).is_err());
        assert!(args(&["--help"]).unwrap().is_none());
    }
}
