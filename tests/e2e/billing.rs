//! Cost as providers bill it, through the real Envoy: Anthropic cache reads
//! and 5-minute / 1-hour cache writes (JSON and event stream), OpenAI cached
//! prompt tokens (Chat JSON and stream, Responses), and a long-context
//! request projected and billed at its tier. Every counter is checked to the
//! micro-USD against an invoice computed here from the usage the provider
//! returned and the policy's prices.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{scrape, Envoy, Labels, Mock, Reply};

/// Prices in pico-USD per token (= USD per million tokens × 1e6).
#[derive(Clone, Copy)]
struct Rates {
    input: u64,
    cached: u64,
    write_5m: u64,
    write_1h: u64,
    output: u64,
}

/// Claude's base tier ($3, $0.30, $3.75, $6, $15) and its long-context tier
/// above 400 prompt tokens ($6 and $22.50 set; cache prices scaled ×2).
const CLAUDE: Rates = Rates {
    input: 3_000_000,
    cached: 300_000,
    write_5m: 3_750_000,
    write_1h: 6_000_000,
    output: 15_000_000,
};
const CLAUDE_LONG: Rates = Rates {
    input: 6_000_000,
    cached: 600_000,
    write_5m: 7_500_000,
    write_1h: 12_000_000,
    output: 22_500_000,
};
const LONG_ABOVE: u64 = 400;
/// GPT: $2.50 input, $1.25 cached, $10 output.
const GPT: Rates = Rates {
    input: 2_500_000,
    cached: 1_250_000,
    write_5m: 2_500_000,
    write_1h: 2_500_000,
    output: 10_000_000,
};

fn policy() -> String {
    json!({
        "models": {
            "claude": {"cluster": "anthropic", "provider_model": "claude-sonnet-4-20250514",
                "api": "anthropic_messages", "context_window": 200000,
                "pricing": {"input_per_mtok": 3, "output_per_mtok": 15, "cached_input_per_mtok": 0.3,
                    "cache_write_per_mtok": 3.75, "cache_write_1h_per_mtok": 6,
                    "long_context": {"above_prompt_tokens": LONG_ABOVE, "input_per_mtok": 6, "output_per_mtok": 22.5}}},
            "gpt": {"cluster": "openai", "api": ["openai_chat", "openai_responses"], "context_window": 128000,
                "pricing": {"input_per_mtok": 2.5, "output_per_mtok": 10, "cached_input_per_mtok": 1.25}}
        },
        "rules": [{"name": "anthropic", "when": {"api": "anthropic_messages"}, "target": "claude"}],
        "default": "gpt",
        "tenant_header": "x-team",
    })
    .to_string()
}

struct Stack {
    _anthropic: Mock,
    _openai: Mock,
    envoy: Envoy,
}

fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| {
        let (anthropic, openai) = (Mock::start("anthropic"), Mock::start("openai"));
        let envoy = Envoy::start(
            &policy(),
            vec![("anthropic", &anthropic), ("openai", &openai)],
        );
        Stack {
            _anthropic: anthropic,
            _openai: openai,
            envoy,
        }
    })
}

/// A prompt of about `words` tokens, so cache counts fit inside it.
fn text(words: usize) -> String {
    "lorem ".repeat(words)
}

/// The provider's usage split: (uncached input, cached, 5m writes, 1h writes, output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Split {
    input: u64,
    cached: u64,
    write_5m: u64,
    write_1h: u64,
    output: u64,
}

impl Split {
    fn prompt(&self) -> u64 {
        self.input + self.cached + self.write_5m + self.write_1h
    }

    /// The invoice in pico-USD, rounded once to micro-USD (half up), and its
    /// cache-read and cache-write lines rounded the same way.
    fn micro_usd(&self, r: Rates) -> (u64, u64, u64) {
        let round = |pico: u64| (pico + 500_000) / 1_000_000;
        let reads = self.cached * r.cached;
        let writes = self.write_5m * r.write_5m + self.write_1h * r.write_1h;
        let total = self.input * r.input + reads + writes + self.output * r.output;
        (round(total), round(reads), round(writes))
    }
}

/// Anthropic usage: `input_tokens` excludes cache reads and writes.
fn anthropic_split(usage: &Value, output: u64) -> Split {
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let write_1h = n(&usage["cache_creation"]["ephemeral_1h_input_tokens"]);
    Split {
        input: n(&usage["input_tokens"]),
        cached: n(&usage["cache_read_input_tokens"]),
        write_5m: n(&usage["cache_creation_input_tokens"]) - write_1h,
        write_1h,
        output,
    }
}

/// OpenAI usage: the prompt includes its cached tokens.
fn openai_split(prompt: u64, cached: u64, output: u64) -> Split {
    Split {
        input: prompt - cached,
        cached,
        write_5m: 0,
        write_1h: 0,
        output,
    }
}

fn events(reply: &Reply) -> Vec<Value> {
    reply
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .collect()
}

fn post(path: &str, body: &Value, headers: &[(&str, &str)]) -> Reply {
    let mut all = headers.to_vec();
    all.push(("x-mock-completion-tokens", "7"));
    let (_, reply) = stack()
        .envoy
        .post_tagged(path, body.to_string().as_bytes(), &all);
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply
}

/// Waits until the tenant's request is counted, then returns its counters by name.
fn counters(tenant: &str) -> Vec<(String, u64)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let samples: Vec<(String, Labels, u64)> = scrape(&stack().envoy)
            .into_iter()
            .filter(|(_, l, _)| l.get("tenant").map(String::as_str) == Some(tenant))
            .collect();
        let counted = samples
            .iter()
            .any(|(n, _, v)| n == "model_router_cost_micro_usd_total" && *v > 0);
        if counted || Instant::now() > deadline {
            return samples.into_iter().map(|(n, _, v)| (n, v)).collect();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn counter(counters: &[(String, u64)], name: &str) -> u64 {
    counters
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("no {name} in {counters:#?}"))
}

/// Every billing counter of `tenant` equals the invoice of `split` at `rates`.
fn assert_billed(tenant: &str, split: Split, rates: Rates) {
    let c = counters(tenant);
    let (total, reads, writes) = split.micro_usd(rates);
    assert_eq!(
        counter(&c, "model_router_cost_micro_usd_total"),
        total,
        "{tenant}"
    );
    assert_eq!(
        counter(&c, "model_router_prompt_tokens_total"),
        split.prompt(),
        "{tenant}"
    );
    assert_eq!(
        counter(&c, "model_router_cached_prompt_tokens_total"),
        split.cached,
        "{tenant}"
    );
    assert_eq!(
        counter(&c, "model_router_cache_write_tokens_total"),
        split.write_5m + split.write_1h,
        "{tenant}"
    );
    assert_eq!(
        counter(&c, "model_router_completion_tokens_total"),
        split.output,
        "{tenant}"
    );
    assert_eq!(
        counter(&c, "model_router_cache_read_cost_micro_usd_total"),
        reads,
        "{tenant}"
    );
    assert_eq!(
        counter(&c, "model_router_cache_write_cost_micro_usd_total"),
        writes,
        "{tenant}"
    );
}

fn messages(words: usize, stream: bool) -> Value {
    json!({"model": "auto", "max_tokens": 50, "stream": stream,
           "system": text(words),
           "messages": [{"role": "user", "content": "Summarize the context."}]})
}

#[test]
fn anthropic_cache_reads_and_writes_are_billed_to_the_micro_usd() {
    let cache = ("x-mock-cache", "read=120,write=40,write_1h=30");
    let reply = post(
        "/v1/messages",
        &messages(250, false),
        &[("x-team", "anthropic-json"), cache],
    );
    let body = reply.json();
    let split = anthropic_split(
        &body["usage"],
        body["usage"]["output_tokens"].as_u64().unwrap(),
    );
    // The mock reported what was asked: the invoice has every line.
    assert_eq!(
        (split.cached, split.write_5m, split.write_1h, split.output),
        (120, 40, 30, 7)
    );
    assert!(split.input > 0 && split.prompt() <= LONG_ABOVE, "{split:?}");
    assert_billed("anthropic-json", split, CLAUDE);

    // The same as a stream: message_start carries the cache fields, message_delta the output.
    let reply = post(
        "/v1/messages",
        &messages(250, true),
        &[("x-team", "anthropic-sse"), cache],
    );
    let events = events(&reply);
    let start = events
        .iter()
        .find(|e| e["type"] == "message_start")
        .unwrap();
    let delta = events
        .iter()
        .find(|e| e["type"] == "message_delta")
        .unwrap();
    let split = anthropic_split(
        &start["message"]["usage"],
        delta["usage"]["output_tokens"].as_u64().unwrap(),
    );
    assert_eq!(
        (split.cached, split.write_5m, split.write_1h),
        (120, 40, 30)
    );
    assert_billed("anthropic-sse", split, CLAUDE);
}

#[test]
fn openai_cached_tokens_are_billed_to_the_micro_usd() {
    let chat = |stream: bool| {
        json!({"model": "auto", "stream": stream, "stream_options": {"include_usage": true},
               "messages": [{"role": "system", "content": text(200)},
                            {"role": "user", "content": "Answer briefly."}]})
    };
    let cache = ("x-mock-cache", "read=128");
    let reply = post(
        "/v1/chat/completions",
        &chat(false),
        &[("x-team", "chat-json"), cache],
    );
    let usage = &reply.json()["usage"];
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 128);
    let split = openai_split(
        usage["prompt_tokens"].as_u64().unwrap(),
        128,
        usage["completion_tokens"].as_u64().unwrap(),
    );
    assert_billed("chat-json", split, GPT);

    let reply = post(
        "/v1/chat/completions",
        &chat(true),
        &[("x-team", "chat-sse"), cache],
    );
    let usage = events(&reply)
        .into_iter()
        .map(|e| e["usage"].clone())
        .rfind(Value::is_object)
        .unwrap();
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 128);
    let split = openai_split(
        usage["prompt_tokens"].as_u64().unwrap(),
        128,
        usage["completion_tokens"].as_u64().unwrap(),
    );
    assert_billed("chat-sse", split, GPT);

    let responses = json!({"model": "auto", "instructions": text(200), "input": "Answer briefly."});
    let reply = post(
        "/v1/responses",
        &responses,
        &[("x-team", "responses"), cache],
    );
    let usage = &reply.json()["usage"];
    assert_eq!(usage["input_tokens_details"]["cached_tokens"], 128);
    let split = openai_split(
        usage["input_tokens"].as_u64().unwrap(),
        128,
        usage["output_tokens"].as_u64().unwrap(),
    );
    assert_billed("responses", split, GPT);
}

#[test]
fn a_long_context_request_is_projected_and_billed_at_its_tier() {
    let reply = post(
        "/v1/messages",
        &messages(600, false),
        &[("x-team", "long"), ("x-mock-cache", "read=200,write=100")],
    );
    let counted: u64 = reply
        .header("x-model-router-prompt-tokens")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        counted > LONG_ABOVE,
        "the prompt must be past the threshold: {counted}"
    );
    let body = reply.json();
    let split = anthropic_split(
        &body["usage"],
        body["usage"]["output_tokens"].as_u64().unwrap(),
    );
    assert!(split.prompt() > LONG_ABOVE);
    assert_billed("long", split, CLAUDE_LONG);
    let c = counters("long");
    assert_eq!(counter(&c, "model_router_long_context_requests_total"), 1);
    // Billed at the base tier it would have cost much less: the tier mattered.
    assert!(split.micro_usd(CLAUDE).0 < split.micro_usd(CLAUDE_LONG).0);

    // Projected before sending: the counted prompt and max_tokens (50) at the long tier.
    let projected = (counted * CLAUDE_LONG.input + 50 * CLAUDE_LONG.output) as f64 / 1e12;
    let decision = audit_record("long");
    let estimated = decision["estimated_cost_usd"].as_f64().unwrap();
    assert!(
        (estimated - projected).abs() < 1e-12,
        "{estimated} vs {projected}"
    );
    assert_eq!(decision["billed"]["price_tier"], "long_context");
    assert_eq!(decision["billed"]["cache_write_tokens"], 100);
    assert_eq!(
        decision["billed"]["cost_micro_usd"],
        split.micro_usd(CLAUDE_LONG).0
    );
    assert_eq!(decision["billed"]["prices_per_mtok"]["input"], 6.0);
    assert_eq!(decision["billed"]["prices_per_mtok"]["cache_write"], 7.5);
}

/// The audit record (access log) of the tenant's billed request.
fn audit_record(tenant: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = std::fs::read_to_string(&stack().envoy.access_log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|l| serde_json::from_str::<Value>(l["decision"].as_str()?).ok())
            .find(|d| d["tenant"] == tenant && d["billed"].is_object());
        match found {
            Some(decision) => return decision,
            None if Instant::now() > deadline => panic!("no billed audit record for {tenant}"),
            None => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}
