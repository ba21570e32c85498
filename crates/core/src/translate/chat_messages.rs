//! OpenAI Chat Completions clients served by Anthropic Messages models.
//!
//! Request: `system`/`developer` messages → `system`; text and image parts
//! → content blocks (data URLs → base64 sources, other URLs → url
//! sources); assistant `tool_calls` → `tool_use` blocks; `tool` messages →
//! `tool_result` blocks of one user turn (consecutive turns of one role are
//! merged, tool results first, as Anthropic requires); `tools`,
//! `tool_choice`, `parallel_tool_calls`; `max_completion_tokens`/
//! `max_tokens` (required upstream: else the model's default); `stop` →
//! `stop_sequences`; `temperature` (clamped to Anthropic's 0–1), `top_p`;
//! `user` → `metadata.user_id`; `response_format` `json_schema` →
//! `output_config.format`; `stream`. `n > 1` is refused.
//!
//! Responses: `message` → `chat.completion`; the event stream → chunks;
//! errors → OpenAI error bodies with the status kept.

use serde_json::{json, Map, Value};

use super::json::{self as j, Dropped};
use super::stream::{self, EventSink};
use super::{ResponseContext, Target, TranslateError, Translated, Translator};
use crate::request::{Api, ApiShape};

pub struct ChatToMessages;

/// Request fields carried over by name.
const SAME: [&str; 2] = ["top_p", "stream"];
/// Request fields consumed by the translation itself.
const HANDLED: [&str; 15] = [
    "model",
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "temperature",
    "user",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "stream_options",
    "n",
    "top_p",
    "stream",
];

impl Translator for ChatToMessages {
    fn client(&self) -> ApiShape {
        ApiShape::ChatCompletions
    }

    fn upstream(&self) -> Api {
        Api::AnthropicMessages
    }

    fn request(&self, body: &[u8], target: &Target<'_>) -> Result<Translated, TranslateError> {
        let req = j::object(body)?;
        let mut dropped = Dropped::default();
        if let Some(n) = req.get("n").and_then(Value::as_u64) {
            if n > 1 {
                return Err(TranslateError::new(format!(
                    "n = {n} cannot be honoured: the model serving this request (Anthropic Messages) returns one choice"
                )));
            }
        }
        let mut out = Map::new();
        out.insert("model".into(), target.provider_model.into());
        let max_tokens = ["max_completion_tokens", "max_tokens"]
            .iter()
            .find_map(|k| req.get(*k).and_then(Value::as_u64))
            .unwrap_or(target.default_max_tokens);
        out.insert("max_tokens".into(), max_tokens.into());
        let messages = req.get("messages").and_then(Value::as_array);
        let (system, turns) =
            messages_to_turns(messages.map_or(&[][..], Vec::as_slice), &mut dropped)?;
        if !system.is_empty() {
            out.insert("system".into(), system.into());
        }
        out.insert("messages".into(), Value::Array(turns));
        for key in SAME {
            if let Some(v) = req.get(key) {
                out.insert(key.into(), v.clone());
            }
        }
        if let Some(t) = req.get("temperature").and_then(Value::as_f64) {
            out.insert("temperature".into(), json!(t.clamp(0.0, 1.0)));
        }
        if let Some(stop) = req.get("stop") {
            let list: Vec<Value> = match stop {
                Value::String(s) => vec![s.clone().into()],
                Value::Array(a) => a.clone(),
                _ => Vec::new(),
            };
            if !list.is_empty() {
                out.insert("stop_sequences".into(), Value::Array(list));
            }
        }
        if let Some(user) = req.get("user").and_then(Value::as_str) {
            out.insert("metadata".into(), json!({ "user_id": user }));
        }
        tools(&req, &mut out, &mut dropped);
        response_format(&req, &mut out, &mut dropped);
        Ok(dropped.finish(out, &req, |k| HANDLED.contains(&k)))
    }

    fn response(&self, status: u32, body: &[u8], _ctx: &ResponseContext) -> Vec<u8> {
        j::response(status, body, j::openai_error, message_to_completion)
    }

    fn events(&self, ctx: &ResponseContext) -> Box<dyn EventSink> {
        Box::new(ChunkWriter {
            include_usage: ctx.include_usage,
            ..ChunkWriter::default()
        })
    }
}

/// Chat messages → (system text, Anthropic turns).
fn messages_to_turns(
    messages: &[Value],
    dropped: &mut Dropped,
) -> Result<(String, Vec<Value>), TranslateError> {
    let mut system: Vec<String> = Vec::new();
    let mut turns: Vec<(String, Vec<Value>)> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let role = j::str_at(m, "role").unwrap_or_default();
        if m.get("name").is_some() {
            dropped.add("messages[].name");
        }
        let (role, blocks) = match role {
            "system" | "developer" => {
                let text = j::text_of(m.get("content").unwrap_or(&Value::Null));
                if !text.is_empty() {
                    system.push(text);
                }
                continue;
            }
            "user" => ("user", user_blocks(m.get("content"), dropped)),
            "assistant" => ("assistant", assistant_blocks(m, i)?),
            "tool" => ("user", vec![tool_result(m)]),
            other => {
                dropped.add(format!("messages[].role={other}"));
                continue;
            }
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, content)) if last == role => content.extend(blocks),
            _ => turns.push((role.to_string(), blocks)),
        }
    }
    let turns = turns
        .into_iter()
        .map(|(role, mut content)| {
            // Tool results must open their user turn.
            content.sort_by_key(|b| j::str_at(b, "type") != Some("tool_result"));
            json!({"role": role, "content": content})
        })
        .collect();
    Ok((system.join("\n\n"), turns))
}

fn user_blocks(content: Option<&Value>, dropped: &mut Dropped) -> Vec<Value> {
    match content {
        Some(Value::String(s)) => vec![json!({"type": "text", "text": s})],
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| match j::str_at(p, "type") {
                Some("text") => {
                    Some(json!({"type": "text", "text": j::str_at(p, "text").unwrap_or_default()}))
                }
                Some("image_url") => {
                    let url = p
                        .get("image_url")
                        .and_then(|u| u.get("url").or(Some(u)))
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    Some(image_block(url))
                }
                other => {
                    dropped.add(format!(
                        "messages[].content[].type={}",
                        other.unwrap_or("?")
                    ));
                    None
                }
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// An image block: a `data:` URL becomes a base64 source, anything else a url source.
fn image_block(url: &str) -> Value {
    if let Some(rest) = url.strip_prefix("data:") {
        if let Some((meta, data)) = rest.split_once(',') {
            let media_type = meta.split(';').next().unwrap_or("image/png");
            return json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}});
        }
    }
    json!({"type": "image", "source": {"type": "url", "url": url}})
}

fn assistant_blocks(m: &Value, index: usize) -> Result<Vec<Value>, TranslateError> {
    let mut blocks = Vec::new();
    let text = j::text_of(m.get("content").unwrap_or(&Value::Null));
    if !text.is_empty() {
        blocks.push(json!({"type": "text", "text": text}));
    }
    for call in m
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let function = call.get("function").unwrap_or(&Value::Null);
        let Some(name) = j::str_at(function, "name") else {
            return Err(TranslateError::new(format!(
                "messages[{index}].tool_calls: a call without function.name"
            )));
        };
        let arguments = j::str_at(function, "arguments").unwrap_or_default();
        blocks.push(json!({
            "type": "tool_use",
            "id": j::str_at(call, "id").unwrap_or_default(),
            "name": name,
            "input": j::arguments_value(arguments),
        }));
    }
    Ok(blocks)
}

fn tool_result(m: &Value) -> Value {
    let content = match m.get("content") {
        Some(Value::String(s)) => json!(s),
        Some(other) => json!(j::text_of(other)),
        None => json!(""),
    };
    json!({
        "type": "tool_result",
        "tool_use_id": j::str_at(m, "tool_call_id").unwrap_or_default(),
        "content": content,
    })
}

fn tools(req: &Map<String, Value>, out: &mut Map<String, Value>, dropped: &mut Dropped) {
    let list: Vec<Value> = req
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            if j::str_at(t, "type").is_some_and(|k| k != "function") {
                dropped.add("tools[].type");
                return None;
            }
            let f = t.get("function")?;
            let mut tool = Map::new();
            tool.insert("name".into(), f.get("name")?.clone());
            if let Some(d) = f.get("description") {
                tool.insert("description".into(), d.clone());
            }
            let schema = f
                .get("parameters")
                .cloned()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
            tool.insert("input_schema".into(), schema);
            Some(Value::Object(tool))
        })
        .collect();
    let has_tools = !list.is_empty();
    if has_tools {
        out.insert("tools".into(), Value::Array(list));
    }
    let mut choice = match req.get("tool_choice") {
        Some(Value::String(s)) => match s.as_str() {
            "none" => Some(json!({"type": "none"})),
            "required" => Some(json!({"type": "any"})),
            _ => Some(json!({"type": "auto"})),
        },
        Some(Value::Object(o)) => o
            .get("function")
            .and_then(|f| f.get("name"))
            .map(|name| json!({"type": "tool", "name": name})),
        _ => None,
    };
    if req.get("parallel_tool_calls") == Some(&Value::Bool(false)) && has_tools {
        let c = choice.get_or_insert_with(|| json!({"type": "auto"}));
        if let Some(o) = c.as_object_mut() {
            o.insert("disable_parallel_tool_use".into(), true.into());
        }
    }
    if let Some(c) = choice.filter(|_| has_tools) {
        out.insert("tool_choice".into(), c);
    }
}

fn response_format(req: &Map<String, Value>, out: &mut Map<String, Value>, dropped: &mut Dropped) {
    let Some(format) = req.get("response_format") else {
        return;
    };
    match j::str_at(format, "type") {
        Some("json_schema") => {
            let schema = format
                .get("json_schema")
                .and_then(|s| s.get("schema"))
                .cloned()
                .unwrap_or_else(|| json!({"type": "object"}));
            out.insert(
                "output_config".into(),
                json!({"format": {"type": "json_schema", "schema": schema}}),
            );
        }
        Some("text") | None => {}
        Some(other) => dropped.add(format!("response_format.type={other}")),
    }
}

/// Anthropic `stop_reason` → OpenAI `finish_reason`.
pub fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    }
}

/// Anthropic usage → OpenAI usage (cache reads and writes are prompt tokens).
fn usage(u: &Value) -> Value {
    let cached = j::u64_at(u, "cache_read_input_tokens");
    let prompt = j::u64_at(u, "input_tokens")
        .saturating_add(cached)
        .saturating_add(j::u64_at(u, "cache_creation_input_tokens"));
    let completion = j::u64_at(u, "output_tokens");
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt.saturating_add(completion),
        "prompt_tokens_details": {"cached_tokens": cached},
    })
}

fn message_to_completion(msg: &Value) -> Value {
    let mut text = String::new();
    let mut calls = Vec::new();
    for block in msg
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match j::str_at(block, "type") {
            Some("text") => text.push_str(j::str_at(block, "text").unwrap_or_default()),
            Some("tool_use") => calls.push(json!({
                "id": block.get("id").cloned().unwrap_or(Value::Null),
                "type": "function",
                "function": {
                    "name": block.get("name").cloned().unwrap_or(Value::Null),
                    "arguments": block.get("input").map_or_else(|| "{}".to_string(), Value::to_string),
                },
            })),
            _ => {}
        }
    }
    let mut message = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { text.into() }});
    if !calls.is_empty() {
        if let Some(o) = message.as_object_mut() {
            o.insert("tool_calls".into(), Value::Array(calls));
        }
    }
    let stop = j::str_at(msg, "stop_reason").unwrap_or("end_turn");
    json!({
        "id": msg.get("id").cloned().unwrap_or(Value::Null),
        "object": "chat.completion",
        "created": 0,
        "model": msg.get("model").cloned().unwrap_or(Value::Null),
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(stop), "logprobs": null}],
        "usage": usage(msg.get("usage").unwrap_or(&Value::Null)),
    })
}

/// Anthropic stream events → `chat.completion.chunk` events.
#[derive(Default)]
struct ChunkWriter {
    include_usage: bool,
    id: String,
    model: String,
    /// Usage from `message_start` (input) and `message_delta` (output), merged.
    usage: Map<String, Value>,
    /// Content block index → tool call index, for the open tool-use blocks.
    tool_blocks: Vec<(u64, u64)>,
    tools_seen: u64,
    done: bool,
}

impl ChunkWriter {
    fn chunk(&self, out: &mut Vec<u8>, delta: Value, finish: Option<&str>) {
        stream::data_only(
            out,
            &json!({
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": 0,
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}],
            }),
        );
    }

    fn tool_index(&self, block: u64) -> Option<u64> {
        self.tool_blocks
            .iter()
            .find(|(b, _)| *b == block)
            .map(|(_, t)| *t)
    }

    fn merge_usage(&mut self, u: Option<&Value>) {
        if let Some(Value::Object(u)) = u {
            for (k, v) in u {
                if !v.is_null() {
                    self.usage.insert(k.clone(), v.clone());
                }
            }
        }
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        if self.include_usage {
            stream::data_only(
                out,
                &json!({
                    "id": self.id,
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": self.model,
                    "choices": [],
                    "usage": usage(&Value::Object(self.usage.clone())),
                }),
            );
        }
        stream::done(out);
    }
}

impl EventSink for ChunkWriter {
    fn event(&mut self, name: &str, data: &[u8], out: &mut Vec<u8>) {
        let Ok(v) = serde_json::from_slice::<Value>(data) else {
            return;
        };
        let kind = j::str_at(&v, "type").unwrap_or(name);
        let index = j::u64_at(&v, "index");
        match kind {
            "message_start" => {
                let msg = v.get("message").unwrap_or(&Value::Null);
                self.id = j::str_at(msg, "id").unwrap_or_default().to_string();
                self.model = j::str_at(msg, "model").unwrap_or_default().to_string();
                self.merge_usage(msg.get("usage"));
                self.chunk(out, json!({"role": "assistant", "content": ""}), None);
            }
            "content_block_start" => {
                let block = v.get("content_block").unwrap_or(&Value::Null);
                if j::str_at(block, "type") == Some("tool_use") {
                    let tool = self.tools_seen;
                    self.tools_seen = tool.saturating_add(1);
                    self.tool_blocks.push((index, tool));
                    let call = json!({"index": tool, "id": block.get("id"), "type": "function",
                        "function": {"name": block.get("name"), "arguments": ""}});
                    self.chunk(out, json!({"tool_calls": [call]}), None);
                }
            }
            "content_block_delta" => {
                let delta = v.get("delta").unwrap_or(&Value::Null);
                match j::str_at(delta, "type") {
                    Some("text_delta") => {
                        let text = j::str_at(delta, "text").unwrap_or_default();
                        self.chunk(out, json!({"content": text}), None);
                    }
                    Some("input_json_delta") => {
                        if let Some(tool) = self.tool_index(index) {
                            let part = j::str_at(delta, "partial_json").unwrap_or_default();
                            let call = json!({"index": tool, "function": {"arguments": part}});
                            self.chunk(out, json!({"tool_calls": [call]}), None);
                        }
                    }
                    _ => {} // thinking and signatures have no chat counterpart
                }
            }
            "content_block_stop" => self.tool_blocks.retain(|(b, _)| *b != index),
            "message_delta" => {
                self.merge_usage(v.get("usage"));
                if let Some(stop) = v.get("delta").and_then(|d| j::str_at(d, "stop_reason")) {
                    self.chunk(out, json!({}), Some(finish_reason(stop)));
                }
            }
            "message_stop" => self.end(out),
            "error" => {
                let error = v.get("error").unwrap_or(&Value::Null);
                let status = match j::str_at(error, "type") {
                    Some("overloaded_error") => 529,
                    Some("rate_limit_error") => 429,
                    _ => 500,
                };
                let body = j::openai_error(status, data);
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(&body);
                out.extend_from_slice(b"\n\n");
                self.done = true;
            }
            _ => {} // ping
        }
    }

    fn finish(&mut self, _out: &mut Vec<u8>) {
        // A stream cut before `message_stop` gets no [DONE]: the client sees it was cut.
    }
}
