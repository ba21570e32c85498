//! Body rewrite invariants: for any body the router can read as a JSON
//! object, writing a model (any name, escaped) into it changes nothing but
//! the top-level `model`: every duplicate `model` member is replaced, other
//! members keep their values, and the result is one JSON object. A body it
//! cannot read is never rewritten.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model_router_core::request::model_spans;
use model_router_core::rewrite::{json_string, set_model};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    // The first line names the model; the rest is the body.
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(0);
    let (name, body) = data.split_at(split);
    let body = body.get(1..).unwrap_or_default();
    let name = String::from_utf8_lossy(name);
    let Ok(spans) = model_spans(body) else {
        // Unreadable: serde_json must not read it as an object either
        // (else the router would skip a body a provider accepts).
        if let Ok(Value::Object(_)) = serde_json::from_slice::<Value>(body) {
            // serde_json's recursion limit equals the router's; anything else is a finding.
            panic!("serde_json reads an object the router refused");
        }
        return;
    };
    let model_json = json_string(&name);
    let new_body = set_model(body, &spans, &model_json);
    let text = std::str::from_utf8(&new_body).expect("the rewrite keeps UTF-8");
    // Bytewise: the body with each span replaced (or `model` inserted first).
    let mut expected = Vec::new();
    if spans.is_empty() {
        let open = body.iter().position(|b| *b == b'{').expect("an object");
        let empty = body[open + 1..].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'}');
        expected.extend_from_slice(&body[..=open]);
        expected.extend_from_slice(format!("\"model\":{model_json}").as_bytes());
        if !empty {
            expected.push(b',');
        }
        expected.extend_from_slice(&body[open + 1..]);
    } else {
        let mut cursor = 0;
        for span in &spans {
            expected.extend_from_slice(&body[cursor..span.start]);
            expected.extend_from_slice(model_json.as_bytes());
            cursor = span.end;
        }
        expected.extend_from_slice(&body[cursor..]);
    }
    assert_eq!(new_body, expected, "only the model values change");
    // The router skips the values it does not read (no depth limit, escapes
    // unchecked): serde_json's Value may refuse those, at 128 levels or on a
    // lone surrogate. The bytewise check above covers them.
    let Ok(before) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let after: Value = serde_json::from_str(text).expect("the rewrite is JSON");
    assert_eq!(after["model"].as_str(), Some(name.as_ref()));
    let (Value::Object(mut before), Value::Object(mut after)) = (before, after) else {
        panic!("the rewrite is not an object");
    };
    before.remove("model");
    after.remove("model");
    assert_eq!(before, after);
    // Every `model` member now holds the new value (no duplicate survives).
    let again = model_spans(&new_body).expect("the rewrite is readable");
    assert_eq!(again.len(), spans.len().max(1));
    for span in again {
        let value: Value = serde_json::from_slice(&new_body[span]).expect("a value");
        assert_eq!(value.as_str(), Some(name.as_ref()));
    }
});
