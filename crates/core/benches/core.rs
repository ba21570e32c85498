//! Core benchmarks (native): the routing decision on small and large chat
//! bodies, token counting (ours against tiktoken-rs, the reference, on the
//! same texts), request parsing and the body rewrite.
//!
//! Run: `cargo bench --bench core` (all), or e.g. `cargo bench --bench core -- tokens/`.
//! The whole-proxy figures (Envoy, V8, memory) are `scripts/bench`'s.

// Test code: a failure should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use model_router_core::actions;
use model_router_core::decision::{decide, Request};
use model_router_core::explain;
use model_router_core::headers::Headers;
use model_router_core::metrics::{self, Completion, UsageSource};
use model_router_core::policy::{Policy, TokenCounting};
use model_router_core::request::{self, ApiShape};
use model_router_core::rewrite;
use model_router_core::tokens::{self, Encoding};
use model_router_core::translate::{self, ResponseContext, Target};
use model_router_core::usage::{ResponseFormat, UsageReader};

#[path = "../../../tests/support/scale_policy.rs"]
mod scale_policy;

const POLICY: &str = include_str!("../../../examples/policy.json");
/// The policy of `scripts/bench`'s whole-proxy runs.
const BENCH_POLICY: &str = include_str!("policy.json");
const SMALL_CHAT: &str = include_str!("../../../examples/requests/chat.json");
const CHAT_PATH: &str = "/v1/chat/completions";

/// Deterministic English-like prose with code and numbers mixed in, about
/// `tokens` o200k_base tokens long (words drawn by a fixed LCG).
fn prose(tokens: usize) -> String {
    const WORDS: &str = "the|router|sends|each|request|to|a|model|whose|price|and|context|\
        window|fit|prompt|tokens|budget|of|Envoy|worker|latency|p99|fallback|cluster|streaming|\
        response,|while|cost|estimates|use|exact|counts.|fn|main()|{|}|let|x|=|42;|2024-05-01|\
        JSON|schema|résumé|naïve|données|über|größer|переводы|中文|測試|😀|don't|it's|we'll|\n\n|\
            |http://example.com/a?b=c|#|##|-|1.|(see|below)";
    let words: Vec<&str> = WORDS.split('|').collect();
    let mut text = String::with_capacity(tokens * 5);
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    // ~1.3 tokens per word on this vocabulary; trim to size afterwards.
    for _ in 0..tokens {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let word = words[(state >> 33) as usize % words.len()];
        text.push(' ');
        text.push_str(word);
    }
    let mut lo = 0;
    let mut hi = text.len();
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        let mid = (mid..=text.len())
            .find(|&m| text.is_char_boundary(m))
            .unwrap();
        if tokens::count(Encoding::O200kBase, &text[..mid]).unwrap() <= tokens {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let end = (lo..=text.len())
        .find(|&m| text.is_char_boundary(m))
        .unwrap();
    text.truncate(end);
    text
}

fn chat_body(prompt: &str) -> String {
    serde_json::json!({
        "model": "auto",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": prompt}
        ]
    })
    .to_string()
}

fn configure(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
}

fn decision(c: &mut Criterion) {
    let policy = Policy::from_json(POLICY).unwrap();
    for e in policy.encodings() {
        tokens::preload(e).unwrap();
    }
    let headers = Headers::new();
    let mut bodies = vec![("small".to_string(), SMALL_CHAT.to_string())];
    for k in [1usize, 8, 32, 128] {
        bodies.push((format!("{k}k_tokens"), chat_body(&prose(k * 1000))));
    }
    let mut group = c.benchmark_group("decision");
    configure(&mut group);
    for (name, body) in &bodies {
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), body, |b, body| {
            b.iter(|| {
                decide(
                    &policy,
                    &Request {
                        shape: ApiShape::ChatCompletions,
                        path: CHAT_PATH,
                        headers: &headers,
                        body: black_box(body.as_bytes()),
                    },
                )
            })
        });
    }
    group.finish();
}

fn token_counting(c: &mut Criterion) {
    let o200k = tiktoken_rs::o200k_base().unwrap();
    let cl100k = tiktoken_rs::cl100k_base().unwrap();
    let mut texts = vec![
        (
            "short".to_string(),
            "Suggest three names for an internal newsletter.".to_string(),
        ),
        (
            "multilingual".to_string(),
            include_str!("../../../tests/token_parity/corpus/multilingual.txt").to_string(),
        ),
    ];
    for k in [1usize, 32, 128] {
        texts.push((format!("prose_{k}k"), prose(k * 1000)));
    }
    texts.push(("one_long_word_4kb".to_string(), "ab".repeat(2048)));
    let mut group = c.benchmark_group("tokens");
    configure(&mut group);
    for (name, text) in &texts {
        let n = tokens::count(Encoding::O200kBase, text).unwrap();
        assert_eq!(n, o200k.encode_ordinary(text).len(), "{name}");
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("ours/o200k_base", name), text, |b, t| {
            b.iter(|| tokens::count(Encoding::O200kBase, black_box(t)).unwrap())
        });
        group.bench_with_input(
            BenchmarkId::new("tiktoken-rs/o200k_base", name),
            text,
            |b, t| b.iter(|| o200k.encode_ordinary(black_box(t)).len()),
        );
        group.bench_with_input(BenchmarkId::new("ours/cl100k_base", name), text, |b, t| {
            b.iter(|| tokens::count(Encoding::Cl100kBase, black_box(t)).unwrap())
        });
        group.bench_with_input(
            BenchmarkId::new("tiktoken-rs/cl100k_base", name),
            text,
            |b, t| b.iter(|| cl100k.encode_ordinary(black_box(t)).len()),
        );
    }
    // A threshold test ("more than 1K tokens?") on a 128K-token prompt.
    let long = &texts.iter().find(|(n, _)| n == "prose_128k").unwrap().1;
    group.throughput(Throughput::Elements(1000));
    group.bench_function("ours/o200k_base/count_up_to_1k_of_128k", |b| {
        b.iter(|| tokens::count_up_to(Encoding::O200kBase, black_box(long), 1000).unwrap())
    });
    group.finish();

    let mut group = c.benchmark_group("tokenizer_load");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(200));
    group.bench_function("ours/o200k_base", |b| {
        b.iter(|| tokens::load_uncached(Encoding::O200kBase).unwrap())
    });
    group.bench_function("tiktoken-rs/o200k_base", |b| {
        b.iter(|| tiktoken_rs::o200k_base().unwrap())
    });
    group.bench_function("ours/cl100k_base", |b| {
        b.iter(|| tokens::load_uncached(Encoding::Cl100kBase).unwrap())
    });
    group.bench_function("tiktoken-rs/cl100k_base", |b| {
        b.iter(|| tiktoken_rs::cl100k_base().unwrap())
    });
    group.finish();
}

fn parsing_and_rewrite(c: &mut Criterion) {
    let large = chat_body(&prose(32_000));
    let mut group = c.benchmark_group("request");
    configure(&mut group);
    for (name, body) in [("small", SMALL_CHAT.to_string()), ("32k_tokens", large)] {
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::new("parse", name), &body, |b, body| {
            b.iter(|| request::parse(CHAT_PATH, black_box(body.as_bytes())).unwrap())
        });
        let spans = request::model_spans(body.as_bytes()).unwrap();
        group.bench_with_input(BenchmarkId::new("rewrite_model", name), &body, |b, body| {
            b.iter(|| rewrite::set_model(black_box(body.as_bytes()), &spans, "\"gpt-4o-mini\""))
        });
    }
    group.finish();
}

/// Everything the filter's VM does for one 1 KB chat request, stage by
/// stage, with `scripts/bench`'s policy: what the whole-proxy overhead
/// figure is made of, minus Envoy's host calls and V8.
fn request_path(c: &mut Criterion) {
    let policy = Policy::from_json(BENCH_POLICY).unwrap();
    for e in policy.encodings() {
        tokens::preload(e).unwrap();
    }
    let headers = Headers::new();
    // ~1 KB like scripts/bench's body-1024.json: English prose, ~220 tokens.
    let text: String =
        "the router sends each request to a model whose price and context window fit ".repeat(12);
    let body = chat_body(&text[..900]);
    let request = Request {
        shape: ApiShape::ChatCompletions,
        path: CHAT_PATH,
        headers: &headers,
        body: body.as_bytes(),
    };
    let decision = decide(&policy, &request);
    let response = br#"{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there, this is a short answer."},"finish_reason":"stop"}],"usage":{"prompt_tokens":230,"completion_tokens":9,"total_tokens":239}}"#;
    let mut group = c.benchmark_group("request_path");
    configure(&mut group);
    group.bench_function("1_decide", |b| {
        b.iter(|| decide(&policy, black_box(&request)))
    });
    // The same policy with `token_counting: as_needed`: the threshold rule
    // and the window fits are settled from the body size, nothing is counted.
    let mut lazy = policy.clone();
    lazy.token_counting = TokenCounting::AsNeeded;
    group.bench_function("1_decide_as_needed", |b| {
        b.iter(|| decide(&lazy, black_box(&request)))
    });
    group.bench_function("2_actions", |b| {
        b.iter(|| actions::request_actions(&policy, black_box(&decision), body.as_bytes()))
    });
    group.bench_function("3_audit_record", |b| {
        b.iter(|| explain::audit_record(&policy, black_box(&decision), "other"))
    });
    group.bench_function("4_usage_json_response", |b| {
        b.iter(|| {
            let mut reader =
                UsageReader::new(ResponseFormat::Json, 4 << 20, 1 << 20, Encoding::O200kBase);
            reader.feed(black_box(response));
            reader.finish()
        })
    });
    let done = Completion {
        decision: &decision,
        attempts: 1,
        tenant: "other",
        usage: None,
        usage_source: UsageSource::Reported,
        decision_micros: 40,
    };
    group.bench_function("5_metric_samples", |b| {
        b.iter(|| metrics::samples(&policy, black_box(&done)))
    });
    group.bench_function("6_token_count_only", |b| {
        b.iter(|| tokens::count(Encoding::O200kBase, black_box(&text[..900])).unwrap())
    });
    group.finish();
}

/// The decision on `scripts/decision-cost`'s 1 KB chat request (a system and
/// a user message) with a classifier rule (`score … gt 0.5`, the test
/// fixture's artifact inlined) and without one (a `prompt_tokens` rule),
/// `token_counting: always`: what scoring adds once the piece cache is warm.
fn classifier(c: &mut Criterion) {
    let artifact: serde_json::Value = serde_json::from_str(include_str!(
        "../../../tests/data/classifier/classifier.json"
    ))
    .unwrap();
    let mut with: serde_json::Value = serde_json::from_str(include_str!(
        "../../../tests/data/classifier/policy-fixed.json"
    ))
    .unwrap();
    with["classifiers"]["difficulty"] = serde_json::json!({ "inline": artifact });
    with["token_counting"] = "always".into();
    let mut without = with.clone();
    without.as_object_mut().unwrap().remove("classifiers");
    without["rules"] = serde_json::json!([
        {"name": "long", "when": {"prompt_tokens": {"gt": 100000}}, "target": "strong"}
    ]);
    let text = "Which of the following statements about the structure of the kidney is correct? \
        Consider the nephron, the glomerulus, the loop of Henle and the collecting duct. "
        .repeat(6);
    let body = serde_json::json!({"model": "auto", "messages": [
        {"role": "system", "content": "You are a careful assistant."},
        {"role": "user", "content": &text[..900]}
    ]})
    .to_string();
    let headers = Headers::new();
    let request = Request {
        shape: ApiShape::ChatCompletions,
        path: CHAT_PATH,
        headers: &headers,
        body: body.as_bytes(),
    };
    let mut group = c.benchmark_group("classifier");
    configure(&mut group);
    for (name, policy) in [("decide_without", without), ("decide_with", with)] {
        let policy = Policy::from_json(&policy.to_string()).unwrap();
        tokens::preload(Encoding::O200kBase).unwrap();
        assert_eq!(
            decide(&policy, &request).scores.len(),
            usize::from(name == "decide_with")
        );
        group.bench_function(name, |b| b.iter(|| decide(&policy, black_box(&request))));
    }
    group.finish();
}

/// An Anthropic event stream of about `bytes` bytes: one text block of
/// 12-byte deltas, with the usage events around it.
fn anthropic_stream(bytes: usize) -> Vec<u8> {
    let mut out = String::with_capacity(bytes + 1024);
    out.push_str("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude\",\"content\":[],\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n");
    out.push_str("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
    while out.len() < bytes {
        out.push_str("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" the router \"}}\n\n");
    }
    out.push_str(
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    );
    out.push_str("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":15}}\n\n");
    out.push_str("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    out.into_bytes()
}

/// Translation's added cost: a 1 KB chat request to Anthropic Messages and
/// its JSON answer back, and a 40 MB Anthropic stream read for usage
/// (`untranslated`, what the filter does for a native answer) against read
/// and translated to chat chunks (`translated`), in 16 KiB chunks.
fn translation(c: &mut Criterion) {
    let text: String =
        "the router sends each request to a model whose price and context window fit ".repeat(12);
    let body = chat_body(&text[..900]);
    let chat_messages = translate::translator(
        ApiShape::ChatCompletions,
        model_router_core::request::Api::AnthropicMessages,
    )
    .unwrap();
    let target = Target {
        provider_model: "claude-3-5-haiku-latest",
        default_max_tokens: 1024,
    };
    let answer = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[{"type":"text","text":"Hello there, this is a short answer."}],"stop_reason":"end_turn","usage":{"input_tokens":230,"output_tokens":9}}"#;
    let mut group = c.benchmark_group("translation");
    configure(&mut group);
    group.bench_function("request_1kb_chat_to_messages", |b| {
        b.iter(|| {
            chat_messages
                .request(black_box(body.as_bytes()), &target)
                .unwrap()
        })
    });
    group.bench_function("response_json_messages_to_chat", |b| {
        b.iter(|| chat_messages.response(200, black_box(answer), &ResponseContext::default()))
    });
    let stream = anthropic_stream(40 << 20);
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Bytes(stream.len() as u64));
    let read = |translate: bool| {
        let mut reader = UsageReader::new(
            ResponseFormat::EventStream,
            4 << 20,
            1 << 20,
            Encoding::O200kBase,
        );
        let mut out = 0usize;
        let mut t = translate.then(|| {
            chat_messages.stream(&ResponseContext {
                include_usage: true,
            })
        });
        for chunk in stream.chunks(16 * 1024) {
            reader.feed(chunk);
            if let Some(t) = t.as_mut() {
                out += t.feed(chunk).len();
            }
        }
        (reader.finish(), out)
    };
    group.bench_function("stream_40mb/untranslated", |b| b.iter(|| read(false)));
    group.bench_function("stream_40mb/translated", |b| b.iter(|| read(true)));
    group.finish();
}

/// The decision on a 1 KB chat body that matches no task (so every task
/// is tried) and the policy compile, for the example policy and for it plus
/// 10 / 100 / 1,000 generated tasks (20 keywords + 1 regex each) and rules.
fn policy_scale(c: &mut Criterion) {
    let headers = Headers::new();
    let body = scale_policy::chat_body_1k();
    let mut group = c.benchmark_group("policy_scale");
    configure(&mut group);
    for n in [0usize, 10, 100, 1000] {
        let json = scale_policy::scale_policy(n);
        let policy = Policy::from_json(&json).unwrap();
        for e in policy.encodings() {
            tokens::preload(e).unwrap();
        }
        group.bench_with_input(BenchmarkId::new("decide_1k", n), &policy, |b, policy| {
            b.iter(|| {
                decide(
                    policy,
                    &Request {
                        shape: ApiShape::ChatCompletions,
                        path: CHAT_PATH,
                        headers: &headers,
                        body: black_box(body.as_bytes()),
                    },
                )
            })
        });
        group.bench_with_input(BenchmarkId::new("compile", n), &json, |b, json| {
            b.iter(|| Policy::from_json(black_box(json)).unwrap())
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    decision,
    policy_scale,
    token_counting,
    parsing_and_rewrite,
    request_path,
    classifier,
    translation
);
criterion_main!(benches);
