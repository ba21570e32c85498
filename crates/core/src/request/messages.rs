//! Anthropic Messages bodies (`system`, `messages` with content blocks,
//! `tools`, `output_config.format`).
//!
//! Claude's tokenizer is not public, so the prompt is an estimate, counted
//! with an encoding and scaled by the model's `estimate.ratio` (see the
//! policy), made of:
//! - the text: `system`, text blocks, `tool_result` contents, text
//!   documents; `tool_use` blocks as their name and the JSON of their input;
//!   each message framed like a chat message (3 tokens plus its role, and 3
//!   that prime the reply: Anthropic publishes no framing cost);
//! - tool definitions: the JSON of each definition in `tools`, plus the
//!   tool-use system prompt Anthropic adds whenever tools are present,
//!   counted exactly (not scaled): 346 tokens for `tool_choice` `auto` or
//!   `none`, 313 for `any` or `tool`, as Anthropic's "Tool use" pricing
//!   table gives for Claude 4 and Claude 3.5/3.7 Sonnet (Claude 3 models
//!   differ: 159 to 530);
//! - images, by Anthropic's formula (`images`);
//! - a structured-output schema (`output_config.format`, or the beta
//!   `output_format`), as its JSON.
//!
//! `thinking` blocks add nothing: Anthropic drops the thinking of previous
//! turns from the context. PDF documents and files are billed from their
//! pages and are not counted.

use serde_json::{Map, Value};

use super::chat::json_schema_tokens;
use super::images::{self, Detail};
use super::top_level::TopLevel;
use super::{field, RequestError, RequestFacts, Role, Segment};

const TOKENS_PER_MESSAGE: i64 = 3;
const REPLY_PRIMING_TOKENS: i64 = 3;
/// Anthropic's tool-use system prompt, `tool_choice` `auto` or `none`.
const TOOL_PROMPT_AUTO: u64 = 346;
/// Anthropic's tool-use system prompt, `tool_choice` `any` or `tool`.
const TOOL_PROMPT_FORCED: u64 = 313;

pub(super) fn read(top: &TopLevel<'_>, facts: &mut RequestFacts) -> Result<(), RequestError> {
    facts.fixed_tokens = facts.fixed_tokens.saturating_add(REPLY_PRIMING_TOKENS);
    let mut message: usize = 0;
    if let Some(raw) = top.get("system") {
        match field::<Value>(raw, "system")? {
            Value::String(text) => {
                push_system(facts, message, text);
                message = message.saturating_add(1);
            }
            Value::Array(blocks) => {
                if !blocks.is_empty() {
                    facts.fixed_tokens = facts.fixed_tokens.saturating_add(TOKENS_PER_MESSAGE);
                }
                let any = !blocks.is_empty();
                for (i, block) in blocks.into_iter().enumerate() {
                    match block.get("text") {
                        Some(Value::String(text)) => facts.content.push(Segment {
                            role: Role::System,
                            message,
                            text: text.clone(),
                        }),
                        _ => {
                            return Err(RequestError::new(format!(
                                "`system[{i}]` is not a text block"
                            )))
                        }
                    }
                }
                if any {
                    message = message.saturating_add(1);
                }
            }
            Value::Null => {}
            _ => {
                return Err(RequestError::new(
                    "`system` is neither a string nor a list of text blocks",
                ))
            }
        }
    }
    let raw = top
        .get("messages")
        .ok_or_else(|| RequestError::new("`messages` is missing"))?;
    let messages: Vec<Value> = field(raw, "messages")?;
    if messages.is_empty() {
        return Err(RequestError::new("`messages` is empty"));
    }
    for (index, item) in messages.into_iter().enumerate() {
        let Value::Object(item) = item else {
            return Err(RequestError::new(format!(
                "`messages[{index}]` is not an object"
            )));
        };
        read_message(index, message, item, facts)?;
        message = message.saturating_add(1);
    }
    facts.messages = u64::try_from(message).unwrap_or(u64::MAX);
    if let Some(raw) = top.get("tools") {
        if raw.get() != "null" {
            let definitions: Vec<Value> = field(raw, "tools")?;
            if !definitions.is_empty() {
                facts.tools = true;
                for definition in &definitions {
                    facts.counted_only.push(definition.to_string());
                }
                let choice: Option<Value> = match top.get("tool_choice") {
                    Some(raw) => Some(field(raw, "tool_choice")?),
                    None => None,
                };
                let forced = matches!(
                    choice
                        .as_ref()
                        .and_then(|c| c.get("type"))
                        .and_then(Value::as_str),
                    Some("any" | "tool")
                );
                let prompt = if forced {
                    TOOL_PROMPT_FORCED
                } else {
                    TOOL_PROMPT_AUTO
                };
                facts.exact_tokens = facts.exact_tokens.saturating_add(prompt);
            }
        }
    }
    for key in ["output_config", "output_format"] {
        let Some(raw) = top.get(key) else { continue };
        let value: Value = field(raw, key)?;
        let format = if key == "output_config" {
            value.get("format")
        } else {
            Some(&value)
        };
        if let Some(format) = format.filter(|f| !f.is_null()) {
            facts.structured_output |= matches!(
                format.get("type").and_then(Value::as_str),
                Some("json_schema" | "json_object")
            );
            json_schema_tokens(format.get("schema"), facts);
        }
    }
    Ok(())
}

fn push_system(facts: &mut RequestFacts, message: usize, text: String) {
    facts.fixed_tokens = facts.fixed_tokens.saturating_add(TOKENS_PER_MESSAGE);
    facts.content.push(Segment {
        role: Role::System,
        message,
        text,
    });
}

fn read_message(
    index: usize,
    message: usize,
    mut item: Map<String, Value>,
    facts: &mut RequestFacts,
) -> Result<(), RequestError> {
    let role = match item.remove("role") {
        Some(Value::String(role)) => role,
        _ => {
            return Err(RequestError::new(format!(
                "`messages[{index}].role` is missing or not a string"
            )))
        }
    };
    facts.fixed_tokens = facts.fixed_tokens.saturating_add(TOKENS_PER_MESSAGE);
    let role_kind = Role::from_name(&role);
    facts.counted_only.push(role);
    let at = Place {
        index,
        message,
        role: role_kind,
    };
    match item.remove("content") {
        Some(Value::String(text)) => facts.content.push(Segment {
            role: role_kind,
            message,
            text,
        }),
        Some(Value::Array(blocks)) => read_blocks(&at, blocks, facts)?,
        _ => {
            return Err(RequestError::new(format!(
                "`messages[{index}].content` is neither a string nor a list of content blocks"
            )))
        }
    }
    Ok(())
}

/// Where a block is: for error messages and segments.
struct Place {
    index: usize,
    message: usize,
    role: Role,
}

fn read_blocks(
    at: &Place,
    blocks: Vec<Value>,
    facts: &mut RequestFacts,
) -> Result<(), RequestError> {
    for block in blocks {
        let Value::Object(mut block) = block else {
            return Err(RequestError::new(format!(
                "`messages[{}].content` has a block that is not an object",
                at.index
            )));
        };
        match block.get("type").and_then(Value::as_str) {
            Some("text") => match block.remove("text") {
                Some(Value::String(text)) => facts.content.push(Segment {
                    role: at.role,
                    message: at.message,
                    text,
                }),
                _ => {
                    return Err(RequestError::new(format!(
                        "`messages[{}].content` has a text block without a string `text`",
                        at.index
                    )))
                }
            },
            Some("image") => {
                let source = block.get("source");
                let size = match source.and_then(|s| s.get("type")).and_then(Value::as_str) {
                    Some("base64") => source
                        .and_then(|s| s.get("data"))
                        .and_then(Value::as_str)
                        .and_then(images::base64_size),
                    _ => None,
                };
                facts.add_image(size, Detail::High);
            }
            Some("tool_use" | "server_tool_use") => {
                if let Some(Value::String(name)) = block.remove("name") {
                    facts.counted_only.push(name);
                }
                if let Some(input) = block.get("input").filter(|i| !i.is_null()) {
                    facts.counted_only.push(input.to_string());
                }
            }
            Some("tool_result") => {
                let tool = Place {
                    role: Role::Tool,
                    ..*at
                };
                match block.remove("content") {
                    Some(Value::String(text)) => facts.content.push(Segment {
                        role: Role::Tool,
                        message: at.message,
                        text,
                    }),
                    Some(Value::Array(inner)) => read_blocks(&tool, inner, facts)?,
                    _ => {}
                }
            }
            Some("document") => {
                let source = block.get("source");
                match source.and_then(|s| s.get("type")).and_then(Value::as_str) {
                    Some("text") => {
                        if let Some(text) =
                            source.and_then(|s| s.get("data")).and_then(Value::as_str)
                        {
                            facts.counted_only.push(text.to_string());
                        }
                    }
                    Some("content") => {
                        if let Some(Value::Array(inner)) = source.and_then(|s| s.get("content")) {
                            read_blocks(at, inner.clone(), facts)?;
                        }
                    }
                    // PDFs and files: billed from their pages, not counted.
                    _ => {}
                }
            }
            Some("search_result") => {
                if let Some(Value::Array(inner)) = block.remove("content") {
                    read_blocks(at, inner, facts)?;
                }
            }
            // thinking, redacted_thinking, and blocks the router does not know.
            _ => {}
        }
    }
    Ok(())
}
