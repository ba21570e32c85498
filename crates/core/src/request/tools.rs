//! Prompt tokens of tool (function) definitions.
//!
//! OpenAI does not publish the exact serialisation of tool definitions; this
//! follows the method of OpenAI's cookbook "How to count tokens with
//! tiktoken" (`num_tokens_for_tools`), whose constants were fitted to the
//! API's billed counts: per function a framing cost (7 tokens for
//! o200k_base models, 10 for cl100k_base), the tokens of `name:description`,
//! 3 to open the properties, per property 3 plus `name:type:description`,
//! an enum costs -3 plus 3 and its tokens per item, and 12 to close.

use serde_json::Value;

use super::RequestFacts;
use crate::tokens::Encoding;

const PROPERTIES_START: i64 = 3;
const PER_PROPERTY: i64 = 3;
const ENUM_START: i64 = -3;
const PER_ENUM_ITEM: i64 = 3;
const FUNCTIONS_END: i64 = 12;

/// Framing tokens of each function definition.
pub(super) fn function_framing_tokens(encoding: Encoding) -> i64 {
    match encoding {
        Encoding::O200kBase => 7,
        Encoding::Cl100kBase => 10,
    }
}

/// Adds the definitions' text and fixed costs to `facts`. `legacy` marks
/// flat definitions, whose items are the function objects themselves rather
/// than `{"type":"function","function":{...}}`: chat's deprecated
/// `functions` list and the Responses API's function tools.
pub(super) fn read(definitions: &[Value], legacy: bool, facts: &mut RequestFacts) {
    for definition in definitions {
        let function = if legacy {
            Some(definition)
        } else {
            definition.get("function")
        };
        let Some(function) = function else { continue };
        facts.tool_functions = facts.tool_functions.saturating_add(1);
        let name = text_of(function.get("name"));
        let description = text_of(function.get("description"));
        facts
            .counted_only
            .push(format!("{name}:{}", strip_final_period(&description)));
        let properties = function
            .get("parameters")
            .and_then(|p| p.get("properties"))
            .and_then(Value::as_object);
        let Some(properties) = properties.filter(|p| !p.is_empty()) else {
            continue;
        };
        facts.fixed_tokens = facts.fixed_tokens.saturating_add(PROPERTIES_START);
        for (key, property) in properties {
            facts.fixed_tokens = facts.fixed_tokens.saturating_add(PER_PROPERTY);
            if let Some(items) = property.get("enum").and_then(Value::as_array) {
                facts.fixed_tokens = facts.fixed_tokens.saturating_add(ENUM_START);
                for item in items {
                    facts.fixed_tokens = facts.fixed_tokens.saturating_add(PER_ENUM_ITEM);
                    facts.counted_only.push(text_of(Some(item)));
                }
            }
            let kind = text_of(property.get("type"));
            let description = text_of(property.get("description"));
            facts
                .counted_only
                .push(format!("{key}:{kind}:{}", strip_final_period(&description)));
        }
    }
}

/// Closes the function definitions (once, however many lists carried them).
pub(super) fn finish(facts: &mut RequestFacts) {
    if facts.tool_functions > 0 {
        facts.fixed_tokens = facts.fixed_tokens.saturating_add(FUNCTIONS_END);
    }
}

fn strip_final_period(text: &str) -> &str {
    text.strip_suffix('.').unwrap_or(text)
}

/// A string value as is; any other JSON value as its JSON text; absent as "".
fn text_of(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}
