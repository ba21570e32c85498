//! JSON helpers shared by the translators: reading request objects, the
//! dropped-field record, and each API's error body and whole answers.

use serde_json::{json, Map, Value};

use super::{TranslateError, Translated};

/// The request body as a JSON object.
pub fn object(body: &[u8]) -> Result<Map<String, Value>, TranslateError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(TranslateError::new("the request body is not a JSON object")),
        Err(e) => Err(TranslateError::new(format!(
            "the request body is not JSON: {e}"
        ))),
    }
}

/// Fields of a request with no counterpart upstream.
#[derive(Debug, Default)]
pub struct Dropped(pub Vec<String>);

impl Dropped {
    pub fn add(&mut self, name: impl Into<String>) {
        let name = name.into();
        if !self.0.contains(&name) {
            self.0.push(name);
        }
    }
}

impl Dropped {
    /// The request translated into `out`: every member of `req` that
    /// `handled` does not take is named as dropped.
    pub fn finish(
        mut self,
        out: Map<String, Value>,
        req: &Map<String, Value>,
        handled: impl Fn(&str) -> bool,
    ) -> Translated {
        for key in req.keys() {
            if !handled(key) {
                self.add(key.clone());
            }
        }
        Translated {
            body: Value::Object(out).to_string().into_bytes(),
            dropped: self.0,
        }
    }
}

/// A whole upstream answer in the client's API: errors through `error`
/// (in the client's format), a success through `convert`; an unreadable
/// success is a 502 in the client's format.
pub fn response(
    status: u32,
    body: &[u8],
    error: fn(u32, &[u8]) -> Vec<u8>,
    convert: fn(&Value) -> Value,
) -> Vec<u8> {
    if !is_success(status) {
        return error(status, body);
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(answer) => convert(&answer).to_string().into_bytes(),
        Err(_) => error(
            502,
            br#"{"error":{"message":"unreadable upstream response"}}"#,
        ),
    }
}

/// A string, or the text parts of a content array joined (other parts are
/// the caller's business).
pub fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

pub fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

pub fn u64_at(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// The body of an error response, whatever API it came from: the message
/// and the provider's error type, when readable.
pub fn read_error(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return (None, None);
    };
    let error = v.get("error").unwrap_or(&v);
    let message = match error {
        Value::String(s) => Some(s.clone()),
        _ => str_at(error, "message").map(str::to_string),
    };
    let kind = str_at(error, "type")
        .or_else(|| str_at(error, "code"))
        .map(str::to_string);
    (message, kind)
}

/// OpenAI's error type for an HTTP status.
pub fn openai_error_type(status: u32) -> &'static str {
    match status {
        400 | 404 | 409 | 413 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_error",
        _ => "server_error",
    }
}

/// Anthropic's error type for an HTTP status.
pub fn anthropic_error_type(status: u32) -> &'static str {
    match status {
        400 | 409 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        503 => "overloaded_error",
        _ => "api_error",
    }
}

/// An OpenAI error body; `code` keeps the provider's own error type.
pub fn openai_error(status: u32, body: &[u8]) -> Vec<u8> {
    let (message, kind) = read_error(body);
    let message = message.unwrap_or_else(|| format!("upstream error (HTTP {status})"));
    json!({
        "error": {
            "message": message,
            "type": openai_error_type(status),
            "param": null,
            "code": kind,
        }
    })
    .to_string()
    .into_bytes()
}

/// An Anthropic error body.
pub fn anthropic_error(status: u32, body: &[u8]) -> Vec<u8> {
    let (message, _) = read_error(body);
    let message = message.unwrap_or_else(|| format!("upstream error (HTTP {status})"));
    json!({
        "type": "error",
        "error": {"type": anthropic_error_type(status), "message": message},
    })
    .to_string()
    .into_bytes()
}

/// A successful status.
pub fn is_success(status: u32) -> bool {
    (200..300).contains(&status)
}

/// A JSON value parsed from a tool call's `arguments` string; an
/// unreadable one is kept as a string under `_raw` rather than lost.
pub fn arguments_value(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return json!({});
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        Ok(other) => json!({ "_value": other }),
        Err(_) => json!({ "_raw": arguments }),
    }
}
