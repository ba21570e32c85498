//! Writing the chosen model into a request body.
//!
//! The new value is spliced into the byte ranges the parser recorded for
//! the top-level `model` member, so every other byte of the body stays as
//! the client sent it (number formats, key order, whitespace, unknown
//! fields). Duplicate `model` members are all replaced, so no JSON parser
//! downstream can see the client's value.

use std::ops::Range;

/// `body` with each `spans` range (ascending, non-overlapping) replaced by
/// `model_json` (an encoded JSON string), or a `model` member inserted first
/// when there is none.
pub fn set_model(body: &[u8], spans: &[Range<usize>], model_json: &str) -> Vec<u8> {
    let mut edits = Edits::default();
    edits.set_member("model", spans, model_json);
    edits.apply(body)
}

/// Changes to a JSON object body: values replaced in place, members inserted first.
#[derive(Debug, Default)]
pub struct Edits {
    replace: Vec<(Range<usize>, String)>,
    insert: Vec<String>,
}

impl Edits {
    /// Sets top-level member `key` (whose current values are at `spans`) to `value_json`.
    pub fn set_member(&mut self, key: &str, spans: &[Range<usize>], value_json: &str) {
        if spans.is_empty() {
            self.insert
                .push(format!("{}:{value_json}", json_string(key)));
        } else {
            for span in spans {
                self.replace.push((span.clone(), value_json.to_string()));
            }
        }
    }

    pub fn apply(mut self, body: &[u8]) -> Vec<u8> {
        self.replace.sort_by_key(|(range, _)| range.start);
        let extra = self
            .replace
            .iter()
            .map(|(_, t)| t.len())
            .chain(self.insert.iter().map(|t| t.len().saturating_add(1)))
            .fold(0usize, usize::saturating_add);
        let mut out = Vec::with_capacity(body.len().saturating_add(extra));
        let mut cursor = 0usize;
        if !self.insert.is_empty() {
            if let Some(open) = body.iter().position(|b| *b == b'{') {
                let after = open.saturating_add(1);
                let rest = body.get(after..).unwrap_or_default();
                let empty_object = rest.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'}');
                out.extend_from_slice(body.get(..after).unwrap_or_default());
                out.extend_from_slice(self.insert.join(",").as_bytes());
                if !empty_object {
                    out.push(b',');
                }
                cursor = after;
            }
        }
        for (span, text) in &self.replace {
            if span.start < cursor || span.end > body.len() {
                continue;
            }
            out.extend_from_slice(body.get(cursor..span.start).unwrap_or_default());
            out.extend_from_slice(text.as_bytes());
            cursor = span.end;
        }
        out.extend_from_slice(body.get(cursor..).unwrap_or_default());
        out
    }
}

/// The `stream_options` value that asks for a usage chunk, keeping any
/// other options the client set. `current` is the existing value's JSON text.
pub fn stream_options_with_usage(current: Option<&str>) -> String {
    let mut options = current
        .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
        .and_then(|v| match v {
            serde_json::Value::Object(map) => Some(map),
            _ => None,
        })
        .unwrap_or_default();
    options.insert("include_usage".to_string(), serde_json::Value::Bool(true));
    serde_json::Value::Object(options).to_string()
}

/// `text` as a JSON string literal.
pub fn json_string(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request;

    fn rewrite(body: &str, model: &str) -> String {
        let facts = request::parse("/v1/chat/completions", body.as_bytes()).unwrap();
        String::from_utf8(set_model(
            body.as_bytes(),
            &facts.model_spans,
            &json_string(model),
        ))
        .unwrap()
    }

    #[test]
    fn replaces_only_the_model_value() {
        let body = r#"{ "temperature": 1.50, "model" : "auto", "messages":[{"role":"user","content":"model"}], "x": 1e3}"#;
        assert_eq!(
            rewrite(body, "gpt-4o-mini"),
            r#"{ "temperature": 1.50, "model" : "gpt-4o-mini", "messages":[{"role":"user","content":"model"}], "x": 1e3}"#
        );
    }

    #[test]
    fn replaces_every_duplicate() {
        let body = r#"{"model":"a","messages":[{"role":"user","content":"x"}],"model":"b"}"#;
        assert_eq!(
            rewrite(body, "m"),
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"model":"m"}"#
        );
    }

    #[test]
    fn inserts_when_absent() {
        let body = r#" {"messages":[{"role":"user","content":"x"}]}"#;
        assert_eq!(
            rewrite(body, "m"),
            r#" {"model":"m","messages":[{"role":"user","content":"x"}]}"#
        );
        assert_eq!(
            set_model(b"{ }", &[], "\"m\""),
            b"{\"model\":\"m\" }".to_vec()
        );
    }

    #[test]
    fn edits_replace_and_insert_together() {
        let body = br#"{"stream":true,"model":"a","messages":[]}"#;
        let mut edits = Edits::default();
        edits.set_member("model", std::slice::from_ref(&(23..26)), "\"m\"");
        edits.set_member("stream_options", &[], &stream_options_with_usage(None));
        assert_eq!(
            String::from_utf8(edits.apply(body)).unwrap(),
            r#"{"stream_options":{"include_usage":true},"stream":true,"model":"m","messages":[]}"#
        );
        assert_eq!(
            stream_options_with_usage(Some(r#"{"include_usage":false,"x":1}"#)),
            r#"{"include_usage":true,"x":1}"#
        );
        assert_eq!(
            stream_options_with_usage(Some("null")),
            r#"{"include_usage":true}"#
        );
    }

    #[test]
    fn escapes_model_names() {
        let body = r#"{"model":"a","messages":[{"role":"user","content":"x"}]}"#;
        let out = rewrite(body, "we\"ird/\u{e9}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["model"], "we\"ird/\u{e9}");
    }
}
