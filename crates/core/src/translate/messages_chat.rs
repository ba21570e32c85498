//! Anthropic Messages clients served by OpenAI Chat Completions models.
//!
//! Request: `system` → a system message; text and image blocks → content
//! parts (base64 sources → data URLs); `tool_use` blocks → assistant
//! `tool_calls`; `tool_result` blocks → `tool` messages (ahead of the rest
//! of their user turn); `tools`, `tool_choice` (`disable_parallel_tool_use`
//! → `parallel_tool_calls: false`); `max_tokens` → `max_completion_tokens`;
//! `stop_sequences` → `stop`; `temperature`, `top_p`; `metadata.user_id` →
//! `user`; `output_config.format` → `response_format` `json_schema`;
//! `stream` (with `stream_options.include_usage`, so the stream is billed).
//!
//! Responses: `chat.completion` → `message`; chunks → `message_start` …
//! `message_stop`; errors → Anthropic error bodies with the status kept.

use serde_json::{json, Map, Value};

use super::json::{self as j, Dropped};
use super::stream::{self, EventSink};
use super::{ResponseContext, Target, TranslateError, Translated, Translator};
use crate::request::{Api, ApiShape};

pub struct MessagesToChat;

const HANDLED: [&str; 12] = [
    "model",
    "messages",
    "system",
    "max_tokens",
    "stop_sequences",
    "temperature",
    "top_p",
    "metadata",
    "tools",
    "tool_choice",
    "output_config",
    "stream",
];

impl Translator for MessagesToChat {
    fn client(&self) -> ApiShape {
        ApiShape::Messages
    }

    fn upstream(&self) -> Api {
        Api::OpenaiChat
    }

    fn request(&self, body: &[u8], target: &Target<'_>) -> Result<Translated, TranslateError> {
        let req = j::object(body)?;
        let mut dropped = Dropped::default();
        let mut out = Map::new();
        out.insert("model".into(), target.provider_model.into());
        let mut messages = Vec::new();
        let system = j::text_of(req.get("system").unwrap_or(&Value::Null));
        if !system.is_empty() {
            messages.push(json!({"role": "system", "content": system}));
        }
        for m in req
            .get("messages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            turn_to_messages(m, &mut messages, &mut dropped);
        }
        out.insert("messages".into(), Value::Array(messages));
        if let Some(max) = req.get("max_tokens") {
            out.insert("max_completion_tokens".into(), max.clone());
        }
        for key in ["temperature", "top_p"] {
            if let Some(v) = req.get(key) {
                out.insert(key.into(), v.clone());
            }
        }
        if let Some(stop) = req
            .get("stop_sequences")
            .filter(|s| s.as_array().is_some_and(|a| !a.is_empty()))
        {
            out.insert("stop".into(), stop.clone());
        }
        if let Some(user) = req.get("metadata").and_then(|m| m.get("user_id")) {
            out.insert("user".into(), user.clone());
        }
        tools(&req, &mut out, &mut dropped);
        if let Some(format) = req.get("output_config").and_then(|c| c.get("format")) {
            if j::str_at(format, "type") == Some("json_schema") {
                let schema = format.get("schema").cloned().unwrap_or_else(|| json!({}));
                out.insert(
                    "response_format".into(),
                    json!({"type": "json_schema", "json_schema": {"name": "output", "schema": schema, "strict": true}}),
                );
            }
        }
        if let Some(config) = req.get("output_config").and_then(Value::as_object) {
            for key in config.keys().filter(|k| *k != "format") {
                dropped.add(format!("output_config.{key}"));
            }
        }
        if req.get("stream") == Some(&Value::Bool(true)) {
            out.insert("stream".into(), true.into());
            out.insert("stream_options".into(), json!({"include_usage": true}));
        }
        Ok(dropped.finish(out, &req, |k| HANDLED.contains(&k)))
    }

    fn response(&self, status: u32, body: &[u8], _ctx: &ResponseContext) -> Vec<u8> {
        j::response(status, body, j::anthropic_error, completion_to_message)
    }

    fn events(&self, _ctx: &ResponseContext) -> Box<dyn EventSink> {
        Box::new(EventWriter::default())
    }
}

/// One Anthropic turn → chat messages (tool results first, as `tool` messages).
fn turn_to_messages(m: &Value, messages: &mut Vec<Value>, dropped: &mut Dropped) {
    let role = j::str_at(m, "role").unwrap_or("user");
    let content = m.get("content").unwrap_or(&Value::Null);
    let blocks: Vec<Value> = match content {
        Value::String(s) => vec![json!({"type": "text", "text": s})],
        Value::Array(a) => a.clone(),
        _ => Vec::new(),
    };
    let mut parts = Vec::new();
    let mut calls = Vec::new();
    for block in &blocks {
        match j::str_at(block, "type") {
            Some("text") => parts.push(json!({"type": "text", "text": j::str_at(block, "text").unwrap_or_default()})),
            Some("image") => match image_url(block.get("source").unwrap_or(&Value::Null)) {
                Some(url) => parts.push(json!({"type": "image_url", "image_url": {"url": url}})),
                None => dropped.add("messages[].content[].source.type"),
            },
            Some("tool_use") => calls.push(json!({
                "id": block.get("id"),
                "type": "function",
                "function": {
                    "name": block.get("name"),
                    "arguments": block.get("input").map_or_else(|| "{}".to_string(), Value::to_string),
                },
            })),
            Some("tool_result") => messages.push(json!({
                "role": "tool",
                "tool_call_id": block.get("tool_use_id"),
                "content": j::text_of(block.get("content").unwrap_or(&Value::Null)),
            })),
            other => dropped.add(format!("messages[].content[].type={}", other.unwrap_or("?"))),
        }
    }
    if role == "assistant" {
        let text = j::text_of(&Value::Array(parts));
        if text.is_empty() && calls.is_empty() {
            return;
        }
        let mut msg = json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { text.into() }});
        if !calls.is_empty() {
            if let Some(o) = msg.as_object_mut() {
                o.insert("tool_calls".into(), Value::Array(calls));
            }
        }
        messages.push(msg);
    } else if !parts.is_empty() {
        let only_text = parts.iter().all(|p| j::str_at(p, "type") == Some("text"));
        let content = if only_text {
            j::text_of(&Value::Array(parts)).into()
        } else {
            Value::Array(parts)
        };
        messages.push(json!({"role": "user", "content": content}));
    }
}

fn image_url(source: &Value) -> Option<String> {
    match j::str_at(source, "type") {
        Some("base64") => Some(format!(
            "data:{};base64,{}",
            j::str_at(source, "media_type").unwrap_or("image/png"),
            j::str_at(source, "data").unwrap_or_default()
        )),
        Some("url") => j::str_at(source, "url").map(str::to_string),
        _ => None,
    }
}

fn tools(req: &Map<String, Value>, out: &mut Map<String, Value>, dropped: &mut Dropped) {
    let list: Vec<Value> = req
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            // Server tools (web search, code execution, ...) have a versioned type.
            if j::str_at(t, "type").is_some_and(|k| k != "custom") {
                dropped.add(format!(
                    "tools[].type={}",
                    j::str_at(t, "type").unwrap_or_default()
                ));
                return None;
            }
            let mut function = Map::new();
            function.insert("name".into(), t.get("name")?.clone());
            if let Some(d) = t.get("description") {
                function.insert("description".into(), d.clone());
            }
            function.insert(
                "parameters".into(),
                t.get("input_schema")
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object"})),
            );
            Some(json!({"type": "function", "function": function}))
        })
        .collect();
    if list.is_empty() {
        return;
    }
    out.insert("tools".into(), Value::Array(list));
    let Some(choice) = req.get("tool_choice") else {
        return;
    };
    let mapped = match j::str_at(choice, "type") {
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => json!({"type": "function", "function": {"name": choice.get("name")}}),
        _ => json!("auto"),
    };
    out.insert("tool_choice".into(), mapped);
    if choice.get("disable_parallel_tool_use") == Some(&Value::Bool(true)) {
        out.insert("parallel_tool_calls".into(), false.into());
    }
}

/// OpenAI `finish_reason` → Anthropic `stop_reason`.
pub fn stop_reason(finish_reason: &str) -> &'static str {
    match finish_reason {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}

/// OpenAI usage → Anthropic usage (cached prompt tokens are cache reads).
fn usage(u: &Value) -> Value {
    let cached = u
        .get("prompt_tokens_details")
        .map_or(0, |d| j::u64_at(d, "cached_tokens"));
    json!({
        "input_tokens": j::u64_at(u, "prompt_tokens").saturating_sub(cached),
        "output_tokens": j::u64_at(u, "completion_tokens"),
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": 0,
    })
}

fn completion_to_message(c: &Value) -> Value {
    let choice = c
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .unwrap_or(&Value::Null);
    let message = choice.get("message").unwrap_or(&Value::Null);
    let mut content = Vec::new();
    let text = j::text_of(message.get("content").unwrap_or(&Value::Null));
    if !text.is_empty() {
        content.push(json!({"type": "text", "text": text}));
    }
    for call in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let function = call.get("function").unwrap_or(&Value::Null);
        content.push(json!({
            "type": "tool_use",
            "id": call.get("id"),
            "name": function.get("name"),
            "input": j::arguments_value(j::str_at(function, "arguments").unwrap_or_default()),
        }));
    }
    let finish = j::str_at(choice, "finish_reason").unwrap_or("stop");
    json!({
        "id": c.get("id"),
        "type": "message",
        "role": "assistant",
        "model": c.get("model"),
        "content": content,
        "stop_reason": stop_reason(finish),
        "stop_sequence": null,
        "usage": usage(c.get("usage").unwrap_or(&Value::Null)),
    })
}

/// Which content block is open in the Anthropic stream being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    None,
    Text,
    /// A tool-use block for the chat tool call of this index.
    Tool(u64),
}

/// Chat chunks → Anthropic stream events.
struct EventWriter {
    started: bool,
    open: Open,
    /// Index of the next content block.
    next_block: u64,
    stop_reason: Option<&'static str>,
    usage: Option<Value>,
    done: bool,
}

impl Default for EventWriter {
    fn default() -> Self {
        EventWriter {
            started: false,
            open: Open::None,
            next_block: 0,
            stop_reason: None,
            usage: None,
            done: false,
        }
    }
}

impl EventWriter {
    fn start(&mut self, chunk: &Value, out: &mut Vec<u8>) {
        if std::mem::replace(&mut self.started, true) {
            return;
        }
        stream::named(
            out,
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": chunk.get("id"), "type": "message", "role": "assistant",
                "model": chunk.get("model"), "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            }}),
        );
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if self.open == Open::None {
            return;
        }
        let index = self.next_block.saturating_sub(1);
        stream::named(
            out,
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
        );
        self.open = Open::None;
    }

    fn open(&mut self, open: Open, block: Value, out: &mut Vec<u8>) {
        self.close(out);
        let index = self.next_block;
        self.next_block = index.saturating_add(1);
        self.open = open;
        stream::named(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": block}),
        );
    }

    fn delta(&self, delta: Value, out: &mut Vec<u8>) {
        let index = self.next_block.saturating_sub(1);
        stream::named(
            out,
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index, "delta": delta}),
        );
    }

    fn choice(&mut self, choice: &Value, out: &mut Vec<u8>) {
        let delta = choice.get("delta").unwrap_or(&Value::Null);
        if let Some(text) = j::str_at(delta, "content").filter(|t| !t.is_empty()) {
            if self.open != Open::Text {
                self.open(Open::Text, json!({"type": "text", "text": ""}), out);
            }
            self.delta(json!({"type": "text_delta", "text": text}), out);
        }
        for call in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let index = j::u64_at(call, "index");
            let function = call.get("function").unwrap_or(&Value::Null);
            if self.open != Open::Tool(index) {
                let block = json!({"type": "tool_use", "id": call.get("id"), "name": function.get("name"), "input": {}});
                self.open(Open::Tool(index), block, out);
            }
            if let Some(part) = j::str_at(function, "arguments").filter(|a| !a.is_empty()) {
                self.delta(
                    json!({"type": "input_json_delta", "partial_json": part}),
                    out,
                );
            }
        }
        if let Some(finish) = j::str_at(choice, "finish_reason") {
            self.stop_reason = Some(stop_reason(finish));
            self.close(out);
        }
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        if std::mem::replace(&mut self.done, true) || !self.started {
            return;
        }
        self.close(out);
        let usage = self
            .usage
            .as_ref()
            .map_or_else(|| json!({"output_tokens": 0}), usage);
        stream::named(
            out,
            "message_delta",
            &json!({"type": "message_delta",
                "delta": {"stop_reason": self.stop_reason.unwrap_or("end_turn"), "stop_sequence": null},
                "usage": usage}),
        );
        stream::named(out, "message_stop", &json!({"type": "message_stop"}));
    }
}

impl EventSink for EventWriter {
    fn event(&mut self, _name: &str, data: &[u8], out: &mut Vec<u8>) {
        if data.trim_ascii() == b"[DONE]" {
            self.end(out);
            return;
        }
        let Ok(chunk) = serde_json::from_slice::<Value>(data) else {
            return;
        };
        if let Some(error) = chunk.get("error") {
            let body = j::anthropic_error(500, json!({"error": error}).to_string().as_bytes());
            out.extend_from_slice(b"event: error\ndata: ");
            out.extend_from_slice(&body);
            out.extend_from_slice(b"\n\n");
            self.done = true;
            return;
        }
        self.start(&chunk, out);
        if let Some(u) = chunk.get("usage").filter(|u| !u.is_null()) {
            self.usage = Some(u.clone());
        }
        for choice in chunk
            .get("choices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.choice(choice, out);
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        // Some OpenAI-compatible servers end without [DONE]: close the message anyway.
        self.end(out);
    }
}
