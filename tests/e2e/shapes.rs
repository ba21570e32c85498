//! Issue 8: every request shape through Envoy. OpenAI Responses and
//! Anthropic Messages requests (JSON and streamed) are routed only to models
//! that accept their API and billed from the provider's usage; images and
//! tools count in the prompt as the providers bill them; a model with an
//! estimated tokenizer reports its estimation error. Counters are checked
//! exactly on the Prometheus scrape.

use std::time::{Duration, Instant};

use base64::Engine as _;
use model_router_core::request::{self, Ratio};
use model_router_core::tokens::Encoding;
use serde_json::{json, Value};

use crate::harness::{scrape, Envoy, Labels, Mock, Reply};

/// The mocks bill with o200k_base, the policy's default encoding: their
/// counts are the router's exact counts. `claude` is estimated with
/// o200k_base × 1.25, so its estimation error is known exactly.
fn policy() -> String {
    json!({
        "models": {
            "gpt": {"cluster": "openai", "context_window": 128_000,
                    "api": ["openai_chat", "openai_responses"],
                    "pricing": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}},
            "gpt-vision": {"cluster": "vision", "provider_model": "gpt-4o", "context_window": 128_000,
                    "api": ["openai_chat", "openai_responses"],
                    "pricing": {"input_per_mtok": 5.0, "output_per_mtok": 10.0}},
            "claude": {"cluster": "anthropic", "provider_model": "claude-sonnet-4", "context_window": 200_000,
                    "api": "anthropic_messages",
                    "estimate": {"encoding": "o200k_base", "ratio": 1.25},
                    "pricing": {"input_per_mtok": 3.0, "output_per_mtok": 15.0}},
        },
        "requested_model": {"aliases": ["auto"], "honor_explicit_model": true},
        "rules": [
            {"name": "anthropic", "when": {"api": "anthropic_messages"}, "target": "claude"},
            {"name": "vision", "when": {"all": [{"images": true}, {"prompt_tokens": {"gt": 700}}]},
             "target": "gpt-vision"},
        ],
        "default": "gpt",
    })
    .to_string()
}

struct Stack {
    openai: Mock,
    vision: Mock,
    anthropic: Mock,
    envoy: Envoy,
}

fn start() -> Stack {
    let (openai, vision, anthropic) = (
        Mock::start("openai"),
        Mock::start("vision"),
        Mock::start("anthropic"),
    );
    let policy = policy();
    let envoy = Envoy::start(
        &policy,
        vec![
            ("openai", &openai),
            ("vision", &vision),
            ("anthropic", &anthropic),
        ],
    );
    Stack {
        openai,
        vision,
        anthropic,
        envoy,
    }
}

/// What one request did, as the test saw it.
struct Sent {
    path: &'static str,
    /// The mock that received it.
    mock: String,
    body: Value,
    reply: Reply,
    /// Billed (prompt, completion) read from the reply.
    billed: (u64, u64),
}

impl Stack {
    /// Posts `body` to `path`; checks it reached `mock` only, with the model
    /// rewritten to `provider_model` and nothing else changed.
    fn send(&self, path: &'static str, body: Value, mock: &str, provider_model: &str) -> Sent {
        let (id, reply) = self.envoy.post_tagged(
            path,
            body.to_string().as_bytes(),
            &[("x-mock-completion-tokens", "9")],
        );
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        let mut received = Vec::new();
        for m in [&self.openai, &self.vision, &self.anthropic] {
            for record in m.requests_for(&id) {
                received.push((m.name.clone(), record));
            }
        }
        assert_eq!(received.len(), 1, "{path}: {received:?}");
        let (name, record) = &received[0];
        assert_eq!(name, mock, "{path}");
        let forwarded: Value = serde_json::from_str(record["body"].as_str().unwrap()).unwrap();
        let mut expected = body.clone();
        expected["model"] = json!(provider_model);
        assert_eq!(forwarded, expected, "{path}: only the model changes");
        let billed = billed(path, &reply).unwrap_or_else(|| panic!("no usage: {}", reply.body));
        Sent {
            path,
            mock: name.clone(),
            body,
            reply,
            billed,
        }
    }
}

/// (prompt, completion) tokens billed in a reply of any API, JSON or streamed.
fn billed(path: &str, reply: &Reply) -> Option<(u64, u64)> {
    let pair = |usage: &Value| {
        Some((
            usage["input_tokens"]
                .as_u64()
                .or(usage["prompt_tokens"].as_u64())?,
            usage["output_tokens"]
                .as_u64()
                .or(usage["completion_tokens"].as_u64())?,
        ))
    };
    if reply.body.starts_with('{') {
        return pair(&reply.json()["usage"]);
    }
    let events: Vec<Value> = reply
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str(d).ok())
        .collect();
    if path.ends_with("/chat/completions") {
        pair(&events.iter().rfind(|e| e["usage"].is_object())?["usage"])
    } else if path.ends_with("/responses") {
        let done = events.iter().rfind(|e| e["type"] == "response.completed")?;
        pair(&done["response"]["usage"])
    } else {
        let start = events.iter().find(|e| e["type"] == "message_start")?;
        let delta = events.iter().rfind(|e| e["type"] == "message_delta")?;
        Some((
            start["message"]["usage"]["input_tokens"].as_u64()?,
            delta["usage"]["output_tokens"].as_u64()?,
        ))
    }
}

/// The router's exact prompt count for a body (o200k_base, as the mocks bill).
fn router_count(path: &str, body: &Value) -> u64 {
    request::parse(path, body.to_string().as_bytes())
        .unwrap()
        .prompt_tokens(Encoding::O200kBase)
        .unwrap()
}

/// The router's estimate for `claude` (text × 1.25, images and the tool-use
/// system prompt as they are) minus the billed exact count.
fn claude_estimate_error(body: &Value) -> u64 {
    let facts = request::parse("/v1/messages", body.to_string().as_bytes()).unwrap();
    let text = facts.text_tokens(Encoding::O200kBase).unwrap();
    Ratio::new(1.25).unwrap().apply(text) - text
}

/// Base64 of the header of a PNG of the given size: all the router reads.
fn png_base64(width: u32, height: u32) -> String {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    bytes.extend_from_slice(&width.to_be_bytes());
    bytes.extend_from_slice(&height.to_be_bytes());
    bytes.extend_from_slice(b"\x08\x02\0\0\0\x90\x77\x53\xde");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn png_data_url(width: u32, height: u32) -> String {
    format!("data:image/png;base64,{}", png_base64(width, height))
}

fn weather_function() -> Value {
    json!({"name": "get_current_weather",
           "description": "Get the current weather in a given location",
           "parameters": {"type": "object", "properties": {
               "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
               "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
           "required": ["location"]}})
}

/// The value of a series whose labels include `labels` (summed over the others).
fn sum(samples: &[(String, Labels, u64)], name: &str, labels: &[(&str, &str)]) -> u64 {
    samples
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| *v)
        .sum()
}

/// Scrapes until `model_router_requests_total` reaches `count` (counters are
/// flushed as requests complete).
fn scrape_after(envoy: &Envoy, count: u64) -> Vec<(String, Labels, u64)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let samples = scrape(envoy);
        let seen = sum(&samples, "model_router_requests_total", &[]);
        if seen >= count || Instant::now() > deadline {
            assert_eq!(seen, count, "requests counted");
            return samples;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn responses_requests_are_routed_and_billed_json_and_streamed() {
    let s = start();
    let simple = json!({"model": "auto", "input": "What is the capital of France?", "max_output_tokens": 50});
    let mut tool = weather_function();
    tool["type"] = json!("function");
    let rich = json!({
        "model": "auto",
        "instructions": "You are a helpful assistant that can answer questions about the weather.",
        "input": [
            {"role": "user", "content": [
                {"type": "input_text", "text": "What's the weather like where this photo was taken?"},
                {"type": "input_image", "image_url": png_data_url(2048, 4096), "detail": "low"}]},
            {"type": "function_call", "call_id": "call_1", "name": "get_current_weather",
             "arguments": "{\"location\":\"Paris, France\"}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "{\"temperature\":18}"}],
        "tools": [tool, {"type": "web_search"}],
        "text": {"format": {"type": "json_schema", "name": "weather",
                            "schema": {"type": "object", "properties": {"summary": {"type": "string"}}}}},
    });
    // A high-detail image: 1105 more tokens push it over the vision rule's 700.
    let mut vision = rich.clone();
    vision["input"][0]["content"][1]["detail"] = json!("high");
    let mut sent = Vec::new();
    for stream in [false, true] {
        for (body, mock, model) in [
            (&simple, "openai", "gpt"),
            (&rich, "openai", "gpt"),
            (&vision, "vision", "gpt-4o"),
        ] {
            let mut body = body.clone();
            if stream {
                body["stream"] = json!(true);
            }
            let one = s.send("/v1/responses", body, mock, model);
            if stream {
                assert!(one.reply.body.starts_with("event: response.created"));
                assert!(
                    !one.reply.body.contains("include_usage"),
                    "no stream_options for Responses"
                );
            }
            sent.push(one);
        }
    }
    let rich_count = router_count("/v1/responses", &rich);
    assert_eq!(
        router_count("/v1/responses", &vision),
        rich_count - 85 + 1105,
        "image tokens: low 85, 2048x4096 high 1105"
    );
    for one in &sent {
        // The router's count is what the provider billed.
        let header: u64 = one
            .reply
            .header("x-model-router-prompt-tokens")
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(header, one.billed.0, "{}", one.body);
        assert_eq!(header, router_count(one.path, &one.body));
        assert_eq!(one.billed.1, 9);
    }

    let samples = scrape_after(&s.envoy, 6);
    let gpt = [("model", "gpt"), ("rule", "default"), ("cluster", "openai")];
    let vision_labels = [
        ("model", "gpt-vision"),
        ("rule", "vision"),
        ("cluster", "vision"),
    ];
    assert_eq!(sum(&samples, "model_router_requests_total", &gpt), 4);
    assert_eq!(
        sum(&samples, "model_router_requests_total", &vision_labels),
        2
    );
    let prompt_at = |mock: &str| -> u64 {
        sent.iter()
            .filter(|o| o.mock == mock)
            .map(|o| o.billed.0)
            .sum()
    };
    let (gpt_prompt, vision_prompt) = (prompt_at("openai"), prompt_at("vision"));
    assert_eq!(
        sum(&samples, "model_router_prompt_tokens_total", &gpt),
        gpt_prompt
    );
    assert_eq!(
        sum(&samples, "model_router_prompt_tokens_total", &vision_labels),
        vision_prompt
    );
    assert_eq!(
        sum(&samples, "model_router_completion_tokens_total", &gpt),
        4 * 9
    );
    // gpt: 1 µUSD per prompt token, 2 per completion token; gpt-vision 5 and 10.
    assert_eq!(
        sum(&samples, "model_router_cost_micro_usd_total", &gpt),
        gpt_prompt + 2 * 4 * 9
    );
    assert_eq!(
        sum(
            &samples,
            "model_router_cost_micro_usd_total",
            &vision_labels
        ),
        5 * vision_prompt + 10 * 2 * 9
    );
    // Exact counts: no estimation error.
    let error = "model_router_prompt_token_estimate_error_total";
    let billed_total = "model_router_prompt_token_estimate_billed_total";
    assert_eq!(sum(&samples, error, &[("model", "gpt")]), 0);
    assert_eq!(sum(&samples, billed_total, &[("model", "gpt")]), gpt_prompt);
    assert_eq!(
        sum(
            &samples,
            "model_router_prompt_token_estimate_counted_total",
            &[("model", "gpt")]
        ),
        gpt_prompt
    );
    assert_eq!(sum(&samples, "model_router_usage_missing_total", &[]), 0);
}

#[test]
fn messages_requests_are_routed_and_billed_json_and_streamed() {
    let s = start();
    let simple = json!({"model": "auto", "max_tokens": 100,
        "messages": [{"role": "user", "content": "Hello, Claude"}]});
    let mut tool = weather_function();
    let schema = tool.as_object_mut().unwrap().remove("parameters").unwrap();
    tool["input_schema"] = schema;
    let rich = json!({
        "model": "claude-sonnet-4", "max_tokens": 300,
        "system": [{"type": "text", "text": "You are a weather assistant."},
                   {"type": "text", "text": "Answer briefly.", "cache_control": {"type": "ephemeral"}}],
        "tools": [tool],
        "tool_choice": {"type": "auto"},
        "messages": [
            {"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                             "data": png_base64(1092, 1092)}},
                {"type": "text", "text": "What's the weather where this was taken?"}]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_current_weather",
                 "input": {"location": "Paris, France"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18 degrees, sunny"}]}],
    });
    let mut sent = Vec::new();
    for stream in [false, true] {
        for body in [&simple, &rich] {
            let mut body = body.clone();
            if stream {
                body["stream"] = json!(true);
            }
            let one = s.send("/v1/messages", body, "anthropic", "claude-sonnet-4");
            if stream {
                assert!(one.reply.body.starts_with("event: message_start"));
            }
            sent.push(one);
        }
    }
    // The image (1092x1092: 1590) and the tool-use system prompt (346) are in the count.
    let facts = request::parse("/v1/messages", rich.to_string().as_bytes()).unwrap();
    assert_eq!(facts.images, 1);
    assert_eq!(facts.image_tokens(None), 1590);
    assert!(facts.tools);
    let text = facts.text_tokens(Encoding::O200kBase).unwrap();
    assert_eq!(router_count("/v1/messages", &rich), text + 1590 + 346);
    for one in &sent {
        let header: u64 = one
            .reply
            .header("x-model-router-prompt-tokens")
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(header, one.billed.0, "{}", one.body);
        assert_eq!(one.reply.header("x-model-router-model"), Some("claude"));
    }
    let rule = |one: &Sent| {
        if one.body["model"] == "auto" {
            "anthropic"
        } else {
            "explicit_model"
        }
    };
    assert!(sent
        .iter()
        .all(|o| o.reply.header("x-model-router-rule") == Some(rule(o))));

    let samples = scrape_after(&s.envoy, 4);
    let claude = [("model", "claude"), ("cluster", "anthropic")];
    let prompt: u64 = sent.iter().map(|o| o.billed.0).sum();
    assert_eq!(sum(&samples, "model_router_requests_total", &claude), 4);
    assert_eq!(
        sum(
            &samples,
            "model_router_requests_total",
            &[("model", "claude"), ("rule", "anthropic")]
        ),
        2
    );
    assert_eq!(
        sum(&samples, "model_router_prompt_tokens_total", &claude),
        prompt
    );
    assert_eq!(
        sum(&samples, "model_router_completion_tokens_total", &claude),
        4 * 9
    );
    assert_eq!(
        sum(&samples, "model_router_cost_micro_usd_total", &claude),
        3 * prompt + 15 * 4 * 9
    );
    // claude is estimated (o200k_base × 1.25): the error is known exactly.
    let error: u64 = sent.iter().map(|o| claude_estimate_error(&o.body)).sum();
    assert!(error > 0);
    assert_eq!(
        sum(
            &samples,
            "model_router_prompt_token_estimate_error_total",
            &[("model", "claude")]
        ),
        error
    );
    assert_eq!(
        sum(
            &samples,
            "model_router_prompt_token_estimate_billed_total",
            &[("model", "claude")]
        ),
        prompt
    );
    assert_eq!(
        sum(
            &samples,
            "model_router_prompt_token_estimate_counted_total",
            &[("model", "claude")]
        ),
        prompt + error
    );
    // The estimate is what was projected for claude.
    assert_eq!(
        sum(
            &samples,
            "model_router_prompt_tokens_estimated_total",
            &claude
        ),
        prompt + error
    );
}

#[test]
fn chat_images_and_tools_are_billed_as_counted_and_apis_never_cross() {
    let s = start();
    let mut chat = json!({"model": "auto", "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is in this image?"},
            {"type": "image_url", "image_url": {"url": png_data_url(1024, 1024), "detail": "low"}}]}],
        "tools": [{"type": "function", "function": weather_function()}]});
    let low = s.send("/v1/chat/completions", chat.clone(), "openai", "gpt");
    assert_eq!(
        low.billed.0,
        router_count("/v1/chat/completions", &chat),
        "the provider bills what the router counted"
    );
    chat["messages"][1]["content"][1]["image_url"]["detail"] = json!("high");
    chat["stream"] = json!(true);
    // 765 tokens instead of 85: over the vision rule's 700.
    let (id, high) = s.envoy.post_tagged(
        "/v1/chat/completions",
        chat.to_string().as_bytes(),
        &[("x-mock-completion-tokens", "9")],
    );
    assert_eq!(high.status, 200);
    assert_eq!(s.vision.requests_for(&id).len(), 1);
    let low_tokens: u64 = low
        .reply
        .header("x-model-router-prompt-tokens")
        .unwrap()
        .parse()
        .unwrap();
    let high_tokens: u64 = high
        .header("x-model-router-prompt-tokens")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(high_tokens - low_tokens, 765 - 85);
    let usage = high
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .rfind(|v| v["usage"].is_object())
        .unwrap();
    assert_eq!(usage["usage"]["prompt_tokens"], high_tokens);

    // A chat request naming the Messages model is served by it, translated
    // (tests/e2e/translation.rs covers translation in depth).
    let named =
        json!({"model": "claude-sonnet-4", "messages": [{"role": "user", "content": "hi"}]});
    let (id, reply) =
        s.envoy
            .post_tagged("/v1/chat/completions", named.to_string().as_bytes(), &[]);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["object"], "chat.completion");
    assert_eq!(reply.header("x-model-router-model"), Some("claude"));
    let sent = s.anthropic.requests_for(&id);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["path"], "/v1/messages");
}

#[test]
fn an_api_no_model_accepts_is_refused_locally() {
    let openai = Mock::start("openai");
    // Translation off: before translation existed, every such request was refused.
    let policy = json!({"models": {"gpt": {"cluster": "openai", "context_window": 128_000}},
                        "default": "gpt", "translate": false})
    .to_string();
    let envoy = Envoy::start(&policy, vec![("openai", &openai)]);
    let body = json!({"model": "claude-sonnet-4", "max_tokens": 10,
                      "messages": [{"role": "user", "content": "hi"}]});
    let (_, reply) = envoy.post_tagged("/v1/messages", body.to_string().as_bytes(), &[]);
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(reply.json()["error"]["code"], "unsupported_api");
    assert!(openai.requests().is_empty(), "never forwarded");
    // Chat still flows.
    let chat = json!({"model": "auto", "messages": [{"role": "user", "content": "hi"}]});
    let (_, reply) = envoy.post_tagged("/v1/chat/completions", chat.to_string().as_bytes(), &[]);
    assert_eq!(reply.status, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let samples = scrape(&envoy);
        let rejected = sum(
            &samples,
            "model_router_rejected_requests_total",
            &[("reason", "unsupported_api")],
        );
        if rejected == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "not counted: {samples:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
