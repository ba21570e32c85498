//! OpenAI Responses clients served by OpenAI Chat Completions models: the
//! stateless subset.
//!
//! Request: `instructions` → a system message; `input` text or items
//! (messages with text and image parts, `function_call`,
//! `function_call_output`) → messages; function `tools`, `tool_choice`,
//! `parallel_tool_calls`; `text.format` → `response_format`;
//! `max_output_tokens` → `max_completion_tokens`; `temperature`, `top_p`,
//! `user`, `service_tier`, `safety_identifier`, `prompt_cache_key`,
//! `reasoning.effort` → `reasoning_effort`; `stream` (with usage). State kept
//! by OpenAI (`previous_response_id`, `conversation`, stored `prompt`s) is
//! refused: a chat model has none of it.
//!
//! Responses: `chat.completion` → `response`; chunks → `response.created`
//! … `response.completed`; errors keep OpenAI's error shape.

use serde_json::{json, Map, Value};

use super::json::{self as j, Dropped};
use super::stream::{self, EventSink};
use super::{ResponseContext, Target, TranslateError, Translated, Translator};
use crate::request::{Api, ApiShape};

pub struct ResponsesToChat;

/// Carried over under the same name.
const SAME: [&str; 7] = [
    "temperature",
    "top_p",
    "user",
    "parallel_tool_calls",
    "service_tier",
    "safety_identifier",
    "prompt_cache_key",
];
/// State a chat model cannot have.
const STATEFUL: [&str; 3] = ["previous_response_id", "conversation", "prompt"];
const HANDLED: [&str; 9] = [
    "model",
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "text",
    "max_output_tokens",
    "stream",
    "reasoning",
];
/// Streamed output text kept for `response.completed` is capped here (the
/// deltas themselves are all passed on).
const MAX_KEPT_TEXT: usize = 4 << 20;

impl Translator for ResponsesToChat {
    fn client(&self) -> ApiShape {
        ApiShape::Responses
    }

    fn upstream(&self) -> Api {
        Api::OpenaiChat
    }

    fn request(&self, body: &[u8], target: &Target<'_>) -> Result<Translated, TranslateError> {
        let req = j::object(body)?;
        for key in STATEFUL {
            if req.get(key).is_some_and(|v| !v.is_null()) {
                return Err(TranslateError::new(format!(
                    "{key} is not supported: the model serving this request has no stored Responses state; send the whole conversation in input"
                )));
            }
        }
        let mut dropped = Dropped::default();
        let mut out = Map::new();
        out.insert("model".into(), target.provider_model.into());
        let mut messages = Vec::new();
        if let Some(text) = req
            .get("instructions")
            .map(j::text_of)
            .filter(|t| !t.is_empty())
        {
            messages.push(json!({"role": "system", "content": text}));
        }
        match req.get("input") {
            Some(Value::String(s)) => messages.push(json!({"role": "user", "content": s})),
            Some(Value::Array(items)) => {
                for item in items {
                    item_to_messages(item, &mut messages, &mut dropped);
                }
            }
            _ => {}
        }
        out.insert("messages".into(), Value::Array(messages));
        for key in SAME {
            if let Some(v) = req.get(key) {
                out.insert(key.into(), v.clone());
            }
        }
        if let Some(v) = req.get("max_output_tokens") {
            out.insert("max_completion_tokens".into(), v.clone());
        }
        if let Some(effort) = req.get("reasoning").and_then(|r| r.get("effort")) {
            out.insert("reasoning_effort".into(), effort.clone());
        }
        tools(&req, &mut out, &mut dropped);
        text_format(&req, &mut out, &mut dropped);
        if req.get("stream") == Some(&Value::Bool(true)) {
            out.insert("stream".into(), true.into());
            out.insert("stream_options".into(), json!({"include_usage": true}));
        }
        // `store` is only worth naming when the client asked to store.
        let store_off = req.get("store") != Some(&Value::Bool(true));
        Ok(dropped.finish(out, &req, |k| {
            HANDLED.contains(&k) || SAME.contains(&k) || (k == "store" && store_off)
        }))
    }

    fn response(&self, status: u32, body: &[u8], _ctx: &ResponseContext) -> Vec<u8> {
        j::response(status, body, j::openai_error, completion_to_response)
    }

    fn events(&self, _ctx: &ResponseContext) -> Box<dyn EventSink> {
        Box::new(EventWriter::default())
    }
}

fn item_to_messages(item: &Value, messages: &mut Vec<Value>, dropped: &mut Dropped) {
    let kind = j::str_at(item, "type").unwrap_or(if item.get("role").is_some() {
        "message"
    } else {
        ""
    });
    match kind {
        "message" => {
            let role = match j::str_at(item, "role").unwrap_or("user") {
                "developer" => "developer",
                "system" => "system",
                "assistant" => "assistant",
                _ => "user",
            };
            let content = match item.get("content") {
                Some(Value::String(s)) => json!(s),
                Some(Value::Array(parts)) if role == "user" => user_parts(parts, dropped),
                Some(other) => json!(j::text_of(other)),
                None => json!(""),
            };
            messages.push(json!({"role": role, "content": content}));
        }
        "function_call" => {
            let call = json!({
                "id": item.get("call_id"),
                "type": "function",
                "function": {"name": item.get("name"), "arguments": item.get("arguments").and_then(Value::as_str).unwrap_or("{}")},
            });
            let last_is_assistant = messages
                .last()
                .is_some_and(|m| j::str_at(m, "role") == Some("assistant"));
            if let Some(calls) = messages
                .last_mut()
                .filter(|_| last_is_assistant)
                .and_then(|m| m.as_object_mut())
                .map(|m| m.entry("tool_calls").or_insert_with(|| json!([])))
                .and_then(Value::as_array_mut)
            {
                calls.push(call);
            } else {
                messages.push(json!({"role": "assistant", "content": null, "tool_calls": [call]}));
            }
        }
        "function_call_output" => {
            let output = match item.get("output") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => j::text_of(other),
                None => String::new(),
            };
            messages.push(
                json!({"role": "tool", "tool_call_id": item.get("call_id"), "content": output}),
            );
        }
        other => dropped.add(format!("input[].type={other}")),
    }
}

fn user_parts(parts: &[Value], dropped: &mut Dropped) -> Value {
    let out: Vec<Value> = parts
        .iter()
        .filter_map(|p| match j::str_at(p, "type") {
            Some("input_text") | Some("output_text") | Some("text") => {
                Some(json!({"type": "text", "text": j::str_at(p, "text").unwrap_or_default()}))
            }
            Some("input_image") => {
                let url = j::str_at(p, "image_url")?;
                let mut image = json!({"url": url});
                if let (Some(o), Some(d)) = (image.as_object_mut(), p.get("detail")) {
                    o.insert("detail".into(), d.clone());
                }
                Some(json!({"type": "image_url", "image_url": image}))
            }
            other => {
                dropped.add(format!("input[].content[].type={}", other.unwrap_or("?")));
                None
            }
        })
        .collect();
    Value::Array(out)
}

fn tools(req: &Map<String, Value>, out: &mut Map<String, Value>, dropped: &mut Dropped) {
    let list: Vec<Value> = req
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            if j::str_at(t, "type") != Some("function") {
                dropped.add(format!(
                    "tools[].type={}",
                    j::str_at(t, "type").unwrap_or("?")
                ));
                return None;
            }
            let mut function = Map::new();
            for key in ["name", "description", "parameters", "strict"] {
                if let Some(v) = t.get(key).filter(|v| !v.is_null()) {
                    function.insert(key.into(), v.clone());
                }
            }
            Some(json!({"type": "function", "function": function}))
        })
        .collect();
    if list.is_empty() {
        return;
    }
    out.insert("tools".into(), Value::Array(list));
    match req.get("tool_choice") {
        Some(Value::String(s)) => {
            out.insert("tool_choice".into(), json!(s));
        }
        Some(choice) if j::str_at(choice, "type") == Some("function") => {
            out.insert(
                "tool_choice".into(),
                json!({"type": "function", "function": {"name": choice.get("name")}}),
            );
        }
        Some(_) => dropped.add("tool_choice"),
        None => {}
    }
}

fn text_format(req: &Map<String, Value>, out: &mut Map<String, Value>, dropped: &mut Dropped) {
    let Some(text) = req.get("text").and_then(Value::as_object) else {
        return;
    };
    for key in text.keys().filter(|k| *k != "format") {
        dropped.add(format!("text.{key}"));
    }
    let Some(format) = text.get("format") else {
        return;
    };
    match j::str_at(format, "type") {
        Some("json_schema") => {
            let mut schema = Map::new();
            for key in ["name", "description", "schema", "strict"] {
                if let Some(v) = format.get(key) {
                    schema.insert(key.into(), v.clone());
                }
            }
            out.insert(
                "response_format".into(),
                json!({"type": "json_schema", "json_schema": schema}),
            );
        }
        Some("json_object") => {
            out.insert("response_format".into(), json!({"type": "json_object"}));
        }
        _ => {}
    }
}

/// OpenAI chat usage → Responses usage.
fn usage(u: &Value) -> Value {
    let input = j::u64_at(u, "prompt_tokens");
    let output = j::u64_at(u, "completion_tokens");
    let cached = u
        .get("prompt_tokens_details")
        .map_or(0, |d| j::u64_at(d, "cached_tokens"));
    let reasoning = u
        .get("completion_tokens_details")
        .map_or(0, |d| j::u64_at(d, "reasoning_tokens"));
    json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input.saturating_add(output),
    })
}

fn response_object(
    id: &str,
    created: u64,
    model: &Value,
    status: &str,
    output: Vec<Value>,
    usage: Value,
) -> Value {
    json!({
        "id": id,
        "object": "response",
        "created_at": created,
        "status": status,
        "model": model,
        "output": output,
        "parallel_tool_calls": true,
        "tool_choice": "auto",
        "tools": [],
        "text": {"format": {"type": "text"}},
        "error": null,
        "incomplete_details": null,
        "instructions": null,
        "metadata": {},
        "usage": usage,
    })
}

fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({"type": "message", "id": id, "status": status, "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}]})
}

fn call_item(id: &str, call_id: &Value, name: &Value, arguments: &str, status: &str) -> Value {
    json!({"type": "function_call", "id": id, "call_id": call_id, "name": name, "arguments": arguments, "status": status})
}

fn response_id(chat_id: &str) -> String {
    format!("resp_{}", chat_id.trim_start_matches("chatcmpl-"))
}

fn completion_to_response(c: &Value) -> Value {
    let id = response_id(j::str_at(c, "id").unwrap_or_default());
    let choice = c
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .unwrap_or(&Value::Null);
    let message = choice.get("message").unwrap_or(&Value::Null);
    let mut output = Vec::new();
    let text = j::text_of(message.get("content").unwrap_or(&Value::Null));
    if !text.is_empty() {
        output.push(message_item(&format!("msg_{id}"), &text, "completed"));
    }
    for (i, call) in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let function = call.get("function").unwrap_or(&Value::Null);
        output.push(call_item(
            &format!("fc_{id}_{i}"),
            call.get("id").unwrap_or(&Value::Null),
            function.get("name").unwrap_or(&Value::Null),
            j::str_at(function, "arguments").unwrap_or("{}"),
            "completed",
        ));
    }
    let status = if j::str_at(choice, "finish_reason") == Some("length") {
        "incomplete"
    } else {
        "completed"
    };
    response_object(
        &id,
        j::u64_at(c, "created"),
        c.get("model").unwrap_or(&Value::Null),
        status,
        output,
        usage(c.get("usage").unwrap_or(&Value::Null)),
    )
}

/// An output item being streamed.
struct Item {
    id: String,
    /// None for the message item; the call id and name of a function call.
    call: Option<(Value, Value)>,
    /// Text or arguments so far (capped at [`MAX_KEPT_TEXT`] in total).
    text: String,
    done: bool,
}

/// Chat chunks → Responses stream events.
#[derive(Default)]
struct EventWriter {
    sequence: u64,
    id: String,
    created: u64,
    model: Value,
    started: bool,
    items: Vec<Item>,
    /// Output index of the message item and of each chat tool-call index.
    message_item: Option<usize>,
    tool_items: Vec<(u64, usize)>,
    kept: usize,
    incomplete: bool,
    usage: Option<Value>,
    done: bool,
}

impl EventWriter {
    fn emit(&mut self, out: &mut Vec<u8>, name: &str, mut data: Value) {
        if let Some(o) = data.as_object_mut() {
            o.insert("type".into(), name.into());
            o.insert("sequence_number".into(), self.sequence.into());
        }
        self.sequence = self.sequence.saturating_add(1);
        stream::named(out, name, &data);
    }

    fn snapshot(&self, status: &str) -> Value {
        let output = self
            .items
            .iter()
            .map(|i| self.item_value(i, status))
            .collect();
        let usage = self.usage.as_ref().map_or(Value::Null, usage);
        response_object(&self.id, self.created, &self.model, status, output, usage)
    }

    fn item_value(&self, item: &Item, status: &str) -> Value {
        let status = if item.done { "completed" } else { status };
        match &item.call {
            None => message_item(&item.id, &item.text, status),
            Some((call_id, name)) => call_item(&item.id, call_id, name, &item.text, status),
        }
    }

    fn keep(&mut self, index: usize, piece: &str) {
        if self.kept.saturating_add(piece.len()) > MAX_KEPT_TEXT {
            return;
        }
        if let Some(item) = self.items.get_mut(index) {
            item.text.push_str(piece);
            self.kept = self.kept.saturating_add(piece.len());
        }
    }

    fn start(&mut self, chunk: &Value, out: &mut Vec<u8>) {
        if std::mem::replace(&mut self.started, true) {
            return;
        }
        self.id = response_id(j::str_at(chunk, "id").unwrap_or_default());
        self.created = j::u64_at(chunk, "created");
        self.model = chunk.get("model").cloned().unwrap_or(Value::Null);
        let snapshot = self.snapshot("in_progress");
        self.emit(out, "response.created", json!({"response": snapshot}));
        let snapshot = self.snapshot("in_progress");
        self.emit(out, "response.in_progress", json!({"response": snapshot}));
    }

    fn text(&mut self, text: &str, out: &mut Vec<u8>) {
        let index = match self.message_item {
            Some(i) => i,
            None => {
                let i = self.items.len();
                let id = format!("msg_{}", self.id);
                self.items.push(Item {
                    id: id.clone(),
                    call: None,
                    text: String::new(),
                    done: false,
                });
                self.message_item = Some(i);
                let item = json!({"type": "message", "id": id, "status": "in_progress", "role": "assistant", "content": []});
                self.emit(
                    out,
                    "response.output_item.added",
                    json!({"output_index": i, "item": item}),
                );
                self.emit(
                    out,
                    "response.content_part.added",
                    json!({"item_id": id, "output_index": i, "content_index": 0,
                    "part": {"type": "output_text", "text": "", "annotations": []}}),
                );
                i
            }
        };
        let id = self
            .items
            .get(index)
            .map(|i| i.id.clone())
            .unwrap_or_default();
        self.keep(index, text);
        self.emit(out, "response.output_text.delta", json!({"item_id": id, "output_index": index, "content_index": 0, "delta": text, "logprobs": []}));
    }

    fn tool(&mut self, call: &Value, out: &mut Vec<u8>) {
        let chat_index = j::u64_at(call, "index");
        let function = call.get("function").unwrap_or(&Value::Null);
        let index = match self.tool_items.iter().find(|(c, _)| *c == chat_index) {
            Some((_, i)) => *i,
            None => {
                let i = self.items.len();
                let id = format!("fc_{}_{chat_index}", self.id);
                let call_id = call.get("id").cloned().unwrap_or(Value::Null);
                let name = function.get("name").cloned().unwrap_or(Value::Null);
                let item = call_item(&id, &call_id, &name, "", "in_progress");
                self.items.push(Item {
                    id,
                    call: Some((call_id, name)),
                    text: String::new(),
                    done: false,
                });
                self.tool_items.push((chat_index, i));
                self.emit(
                    out,
                    "response.output_item.added",
                    json!({"output_index": i, "item": item}),
                );
                i
            }
        };
        if let Some(part) = j::str_at(function, "arguments").filter(|a| !a.is_empty()) {
            let id = self
                .items
                .get(index)
                .map(|i| i.id.clone())
                .unwrap_or_default();
            self.keep(index, part);
            self.emit(
                out,
                "response.function_call_arguments.delta",
                json!({"item_id": id, "output_index": index, "delta": part}),
            );
        }
    }

    fn close_items(&mut self, out: &mut Vec<u8>) {
        for index in 0..self.items.len() {
            let Some(item) = self.items.get(index) else {
                continue;
            };
            if item.done {
                continue;
            }
            let id = item.id.clone();
            let text = item.text.clone();
            let is_call = item.call.is_some();
            if let Some(item) = self.items.get_mut(index) {
                item.done = true;
            }
            if is_call {
                self.emit(
                    out,
                    "response.function_call_arguments.done",
                    json!({"item_id": id, "output_index": index, "arguments": text}),
                );
            } else {
                self.emit(out, "response.output_text.done", json!({"item_id": id, "output_index": index, "content_index": 0, "text": text, "logprobs": []}));
                self.emit(
                    out,
                    "response.content_part.done",
                    json!({"item_id": id, "output_index": index, "content_index": 0,
                    "part": {"type": "output_text", "text": text, "annotations": []}}),
                );
            }
            let value = self
                .items
                .get(index)
                .map(|i| self.item_value(i, "completed"))
                .unwrap_or(Value::Null);
            self.emit(
                out,
                "response.output_item.done",
                json!({"output_index": index, "item": value}),
            );
        }
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        if std::mem::replace(&mut self.done, true) || !self.started {
            return;
        }
        self.close_items(out);
        let (name, status) = if self.incomplete {
            ("response.incomplete", "incomplete")
        } else {
            ("response.completed", "completed")
        };
        let snapshot = self.snapshot(status);
        self.emit(out, name, json!({"response": snapshot}));
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
            self.emit(
                out,
                "error",
                json!({"code": error.get("code"), "message": error.get("message"), "param": null}),
            );
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
            let delta = choice.get("delta").unwrap_or(&Value::Null);
            if let Some(text) = j::str_at(delta, "content").filter(|t| !t.is_empty()) {
                self.text(text, out);
            }
            for call in delta
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                self.tool(call, out);
            }
            if j::str_at(choice, "finish_reason") == Some("length") {
                self.incomplete = true;
            }
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        self.end(out);
    }
}
