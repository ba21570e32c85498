//! OpenAI Responses bodies (`instructions`, `input`, `tools`, `text.format`).
//!
//! OpenAI publishes no counting rule for the Responses API. The prompt is
//! counted as the equivalent Chat Completions request would be (the rule of
//! OpenAI's cookbook "How to count tokens with tiktoken", see `chat`):
//! `instructions` as a system message, a string `input` as one user message,
//! each input item as one message (3 tokens, plus its role and text), a
//! `function_call` item as an assistant tool call (its name and arguments),
//! a `function_call_output` as a tool message, plus 3 that prime the reply.
//! Function tools follow the cookbook's tool rule (`tools`); built-in tools
//! (`web_search`, `file_search`, ...) are billed by OpenAI in their own way
//! and add nothing here. A `json_schema` text format adds the tokens of its
//! schema's JSON (an estimate: OpenAI does not publish how it is rendered).
//! `reasoning` items and `item_reference`s add nothing: their content is
//! encrypted or kept server-side.

use serde_json::{Map, Value};

use super::chat::{image_part, json_schema_tokens};
use super::top_level::TopLevel;
use super::{field, tools, RequestError, RequestFacts, Role, Segment};

const TOKENS_PER_MESSAGE: i64 = 3;
const REPLY_PRIMING_TOKENS: i64 = 3;

pub(super) fn read(top: &TopLevel<'_>, facts: &mut RequestFacts) -> Result<(), RequestError> {
    facts.fixed_tokens = facts.fixed_tokens.saturating_add(REPLY_PRIMING_TOKENS);
    let mut message: usize = 0;
    if let Some(raw) = top.get("instructions") {
        match field::<Value>(raw, "instructions")? {
            Value::String(text) => {
                push_message(facts, "system");
                facts.content.push(Segment {
                    role: Role::System,
                    message,
                    text,
                });
                message = message.saturating_add(1);
            }
            Value::Null => {}
            _ => return Err(RequestError::new("`instructions` is not a string")),
        }
    }
    if let Some(raw) = top.get("input") {
        match field::<Value>(raw, "input")? {
            Value::String(text) => {
                push_message(facts, "user");
                facts.content.push(Segment {
                    role: Role::User,
                    message,
                    text,
                });
                message = message.saturating_add(1);
            }
            Value::Array(items) => {
                for (index, item) in items.into_iter().enumerate() {
                    let Value::Object(item) = item else {
                        return Err(RequestError::new(format!(
                            "`input[{index}]` is not an object"
                        )));
                    };
                    if read_item(index, message, item, facts)? {
                        message = message.saturating_add(1);
                    }
                }
            }
            Value::Null => {}
            _ => {
                return Err(RequestError::new(
                    "`input` is neither a string nor a list of items",
                ))
            }
        }
    }
    facts.messages = u64::try_from(message).unwrap_or(u64::MAX);
    if let Some(raw) = top.get("tools") {
        if raw.get() != "null" {
            let definitions: Vec<Value> = field(raw, "tools")?;
            facts.tools |= !definitions.is_empty();
            // Function tools are flat: the definition is the function.
            let functions: Vec<Value> = definitions
                .into_iter()
                .filter(|d| d.get("type").and_then(Value::as_str) == Some("function"))
                .collect();
            tools::read(&functions, true, facts);
        }
    }
    tools::finish(facts);
    if let Some(raw) = top.get("text") {
        let text: Value = field(raw, "text")?;
        if let Some(format) = text.get("format") {
            let kind = format.get("type").and_then(Value::as_str);
            facts.structured_output = matches!(kind, Some("json_object" | "json_schema"));
            json_schema_tokens(format.get("schema"), facts);
        }
    }
    Ok(())
}

/// Counts one message's framing and role.
fn push_message(facts: &mut RequestFacts, role: &str) {
    facts.fixed_tokens = facts.fixed_tokens.saturating_add(TOKENS_PER_MESSAGE);
    facts.counted_only.push(role.to_string());
}

/// Reads one input item; false for items that are not part of the
/// conversation the router sees (`reasoning`, `item_reference`).
fn read_item(
    index: usize,
    message: usize,
    mut item: Map<String, Value>,
    facts: &mut RequestFacts,
) -> Result<bool, RequestError> {
    let kind = match item.get("type") {
        None | Some(Value::Null) => "message".to_string(),
        Some(Value::String(kind)) => kind.clone(),
        Some(_) => {
            return Err(RequestError::new(format!(
                "`input[{index}].type` is not a string"
            )))
        }
    };
    match kind.as_str() {
        "message" => {
            let role = match item.get("role") {
                Some(Value::String(role)) => role.clone(),
                _ => {
                    return Err(RequestError::new(format!(
                        "`input[{index}].role` is missing or not a string"
                    )))
                }
            };
            push_message(facts, &role);
            let role = Role::from_name(&role);
            match item.remove("content") {
                Some(Value::String(text)) => facts.content.push(Segment {
                    role,
                    message,
                    text,
                }),
                Some(Value::Array(parts)) => {
                    read_parts(index, message, role, parts, facts)?;
                }
                None | Some(Value::Null) => {}
                Some(_) => {
                    return Err(RequestError::new(format!(
                        "`input[{index}].content` is neither a string nor a list of parts"
                    )))
                }
            }
        }
        "function_call" | "custom_tool_call" => {
            push_message(facts, "assistant");
            for key in ["name", "arguments", "input"] {
                if let Some(Value::String(text)) = item.remove(key) {
                    facts.counted_only.push(text);
                }
            }
        }
        "function_call_output" | "custom_tool_call_output" => {
            push_message(facts, "tool");
            match item.remove("output") {
                Some(Value::String(text)) => facts.content.push(Segment {
                    role: Role::Tool,
                    message,
                    text,
                }),
                Some(Value::Array(parts)) => {
                    read_parts(index, message, Role::Tool, parts, facts)?;
                }
                _ => {}
            }
        }
        // Encrypted or stored server-side: nothing the router can count.
        "reasoning" | "item_reference" => return Ok(false),
        // Other items (built-in tool calls and their outputs): their text.
        _ => {
            push_message(facts, "assistant");
            collect_strings(&Value::Object(item), &mut facts.counted_only);
        }
    }
    Ok(true)
}

/// Content parts of a message or a tool output.
fn read_parts(
    index: usize,
    message: usize,
    role: Role,
    parts: Vec<Value>,
    facts: &mut RequestFacts,
) -> Result<(), RequestError> {
    for part in parts {
        let Value::Object(mut part) = part else {
            return Err(RequestError::new(format!(
                "`input[{index}].content` has a part that is not an object"
            )));
        };
        match part.get("type").and_then(Value::as_str) {
            Some("input_text" | "output_text" | "text") => match part.remove("text") {
                Some(Value::String(text)) => facts.content.push(Segment {
                    role,
                    message,
                    text,
                }),
                _ => {
                    return Err(RequestError::new(format!(
                        "`input[{index}].content` has a text part without a string `text`"
                    )))
                }
            },
            Some("refusal") => {
                if let Some(Value::String(text)) = part.remove("refusal") {
                    facts.counted_only.push(text);
                }
            }
            Some("input_image") => {
                let (url, detail) = image_part(&part);
                facts.add_image_url(url, detail);
            }
            // Files (PDFs, ...) are billed by the provider from their pages: not counted.
            _ => {}
        }
    }
    Ok(())
}

/// Every string value inside `value` except identifiers and type tags.
fn collect_strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(text) => out.push(text.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => {
            for (key, value) in map {
                if !matches!(key.as_str(), "type" | "id" | "call_id" | "status") {
                    collect_strings(value, out);
                }
            }
        }
        _ => {}
    }
}
