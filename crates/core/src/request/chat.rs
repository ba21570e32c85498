//! OpenAI Chat Completions bodies (`messages`, `tools`, `response_format`).
//!
//! Prompt tokens follow OpenAI's published counting rule (the "How to count
//! tokens with tiktoken" cookbook): the tokens of every string value of each
//! message, plus 3 per message, plus 1 per `name`, plus 3 that prime the reply.
//! An assistant message's `tool_calls` add their function names and
//! arguments; images are priced by OpenAI's tile formula (`images`); a
//! `json_schema` response format adds the tokens of its schema's JSON (an
//! estimate: OpenAI does not publish how the schema is rendered).

use serde_json::{Map, Value};

use super::images::Detail;
use super::top_level::TopLevel;
use super::{field, tools, RequestError, RequestFacts, Role, Segment};

const TOKENS_PER_MESSAGE: i64 = 3;
const TOKENS_PER_NAME: i64 = 1;
const REPLY_PRIMING_TOKENS: i64 = 3;

pub(super) fn read(top: &TopLevel<'_>, facts: &mut RequestFacts) -> Result<(), RequestError> {
    let raw = top
        .get("messages")
        .ok_or_else(|| RequestError::new("`messages` is missing"))?;
    let messages: Vec<Value> = field(raw, "messages")?;
    if messages.is_empty() {
        return Err(RequestError::new("`messages` is empty"));
    }
    facts.messages = messages.len() as u64;
    facts.fixed_tokens = facts.fixed_tokens.saturating_add(REPLY_PRIMING_TOKENS);
    for (index, message) in messages.into_iter().enumerate() {
        match message {
            Value::Object(message) => read_message(index, message, facts)?,
            _ => {
                return Err(RequestError::new(format!(
                    "`messages[{index}]` is not an object"
                )))
            }
        }
    }
    for (key, legacy) in [("tools", false), ("functions", true)] {
        if let Some(raw) = top.get(key) {
            if raw.get() != "null" {
                let definitions: Vec<Value> = field(raw, key)?;
                facts.tools |= !definitions.is_empty();
                tools::read(&definitions, legacy, facts);
            }
        }
    }
    tools::finish(facts);
    if let Some(raw) = top.get("response_format") {
        let format: Value = field(raw, "response_format")?;
        facts.structured_output = matches!(
            format.get("type").and_then(Value::as_str),
            Some("json_object" | "json_schema")
        );
        json_schema_tokens(
            format.get("json_schema").and_then(|s| s.get("schema")),
            facts,
        );
    }
    Ok(())
}

/// A structured-output schema is billed as prompt: counted as its compact JSON.
pub(super) fn json_schema_tokens(schema: Option<&Value>, facts: &mut RequestFacts) {
    if let Some(schema) = schema.filter(|s| !s.is_null()) {
        facts.counted_only.push(schema.to_string());
    }
}

/// The URL and `detail` of an image part: chat `{"image_url": {"url", "detail"}}`
/// (or a bare URL string), Responses `{"image_url": "...", "detail"}`.
pub(super) fn image_part(part: &Map<String, Value>) -> (Option<&str>, Detail) {
    let image = part.get("image_url");
    let url = match image {
        Some(Value::String(url)) => Some(url.as_str()),
        Some(Value::Object(image)) => image.get("url").and_then(Value::as_str),
        _ => None,
    };
    let detail = image
        .and_then(|i| i.get("detail"))
        .or_else(|| part.get("detail"))
        .and_then(Value::as_str);
    (url, Detail::from_name(detail))
}

/// An assistant message's tool calls: their function names and arguments.
fn tool_call_tokens(calls: &[Value], facts: &mut RequestFacts) {
    for call in calls {
        let function = call.get("function").or_else(|| call.get("custom"));
        for key in ["name", "arguments", "input"] {
            if let Some(text) = function.and_then(|f| f.get(key)).and_then(Value::as_str) {
                facts.counted_only.push(text.to_string());
            }
        }
    }
}

fn read_message(
    index: usize,
    message: Map<String, Value>,
    facts: &mut RequestFacts,
) -> Result<(), RequestError> {
    let role = match message.get("role") {
        Some(Value::String(role)) => Role::from_name(role),
        _ => {
            return Err(RequestError::new(format!(
                "`messages[{index}].role` is missing or not a string"
            )))
        }
    };
    facts.fixed_tokens = facts.fixed_tokens.saturating_add(TOKENS_PER_MESSAGE);
    for (key, value) in message {
        match (key.as_str(), value) {
            ("content", Value::String(text)) => facts.content.push(Segment {
                role,
                message: index,
                text,
            }),
            ("content", Value::Array(parts)) => read_parts(index, role, parts, facts)?,
            ("content", Value::Null) => {}
            ("content", _) => {
                return Err(RequestError::new(format!(
                    "`messages[{index}].content` is neither a string nor an array of parts"
                )))
            }
            (key, Value::String(text)) => {
                if key == "name" {
                    facts.fixed_tokens = facts.fixed_tokens.saturating_add(TOKENS_PER_NAME);
                }
                facts.counted_only.push(text);
            }
            ("tool_calls", Value::Array(calls)) => tool_call_tokens(&calls, facts),
            ("function_call", call @ Value::Object(_)) => {
                tool_call_tokens(&[serde_json::json!({ "function": call })], facts)
            }
            _ => {}
        }
    }
    Ok(())
}

fn read_parts(
    index: usize,
    role: Role,
    parts: Vec<Value>,
    facts: &mut RequestFacts,
) -> Result<(), RequestError> {
    for part in parts {
        let Value::Object(mut part) = part else {
            return Err(RequestError::new(format!(
                "`messages[{index}].content` has a part that is not an object"
            )));
        };
        match part.get("type").and_then(Value::as_str) {
            Some("text") => match part.remove("text") {
                Some(Value::String(text)) => facts.content.push(Segment {
                    role,
                    message: index,
                    text,
                }),
                _ => {
                    return Err(RequestError::new(format!(
                        "`messages[{index}].content` has a text part without a string `text`"
                    )))
                }
            },
            Some("image_url" | "input_image") => {
                let (url, detail) = image_part(&part);
                facts.add_image_url(url, detail);
            }
            _ => {}
        }
    }
    Ok(())
}
