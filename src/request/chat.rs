//! OpenAI Chat Completions bodies (`messages`, `tools`, `response_format`).
//!
//! Prompt tokens follow OpenAI's published counting rule (the "How to count
//! tokens with tiktoken" cookbook): the tokens of every string value of each
//! message, plus 3 per message, plus 1 per `name`, plus 3 that prime the reply.

use serde_json::{Map, Value};

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
    facts.fixed_tokens += REPLY_PRIMING_TOKENS;
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
    }
    Ok(())
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
    facts.fixed_tokens += TOKENS_PER_MESSAGE;
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
                    facts.fixed_tokens += TOKENS_PER_NAME;
                }
                facts.counted_only.push(text);
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
            Some("image_url" | "input_image") => facts.images += 1,
            _ => {}
        }
    }
    Ok(())
}
