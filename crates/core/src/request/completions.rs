//! OpenAI legacy Completions bodies (`prompt`).

use serde_json::Value;

use super::top_level::TopLevel;
use super::{field, RequestError, RequestFacts, Role, Segment};

/// `prompt` may be a string, a list of strings, a token list, or a list of
/// token lists; token lists are counted as they are.
pub(super) fn read(top: &TopLevel<'_>, facts: &mut RequestFacts) -> Result<(), RequestError> {
    let raw = top
        .get("prompt")
        .ok_or_else(|| RequestError::new("`prompt` is missing"))?;
    match field::<Value>(raw, "prompt")? {
        Value::String(text) => push(facts, 0, text),
        Value::Array(items) => {
            for (index, item) in items.into_iter().enumerate() {
                match item {
                    Value::String(text) => push(facts, index, text),
                    Value::Number(_) => facts.fixed_tokens = facts.fixed_tokens.saturating_add(1),
                    Value::Array(tokens) if tokens.iter().all(Value::is_number) => {
                        facts.fixed_tokens = facts
                            .fixed_tokens
                            .saturating_add(i64::try_from(tokens.len()).unwrap_or(i64::MAX))
                    }
                    _ => return Err(wrong_type()),
                }
            }
        }
        _ => return Err(wrong_type()),
    }
    Ok(())
}

fn push(facts: &mut RequestFacts, index: usize, text: String) {
    facts.content.push(Segment {
        role: Role::User,
        message: index,
        text,
    });
}

fn wrong_type() -> RequestError {
    RequestError::new(
        "`prompt` must be a string, a list of strings, a token list or a list of token lists",
    )
}
