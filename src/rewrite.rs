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
    if spans.is_empty() {
        return insert_model(body, model_json);
    }
    let mut out = Vec::with_capacity(body.len() + model_json.len());
    let mut cursor = 0usize;
    for span in spans {
        let (Some(before), true) = (body.get(cursor..span.start), span.end <= body.len()) else {
            continue;
        };
        out.extend_from_slice(before);
        out.extend_from_slice(model_json.as_bytes());
        cursor = span.end;
    }
    out.extend_from_slice(body.get(cursor..).unwrap_or_default());
    out
}

fn insert_model(body: &[u8], model_json: &str) -> Vec<u8> {
    let Some(open) = body.iter().position(|b| *b == b'{') else {
        return body.to_vec();
    };
    let after = open + 1;
    let rest = body.get(after..).unwrap_or_default();
    let empty_object = rest.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'}');
    let mut out = Vec::with_capacity(body.len() + model_json.len() + 10);
    out.extend_from_slice(body.get(..after).unwrap_or_default());
    out.extend_from_slice(b"\"model\":");
    out.extend_from_slice(model_json.as_bytes());
    if !empty_object {
        out.push(b',');
    }
    out.extend_from_slice(rest);
    out
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
    fn escapes_model_names() {
        let body = r#"{"model":"a","messages":[{"role":"user","content":"x"}]}"#;
        let out = rewrite(body, "we\"ird/\u{e9}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["model"], "we\"ird/\u{e9}");
    }
}
