//! Arbitrary input never panics the new parsers (clippy denies panics in
//! the code; these check the arithmetic and slicing paths with data).

use crate::request::images::ImagePricing;
use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

/// Shaped like the bodies of each API, with arbitrary values inside.
fn loose_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        prop_oneof![
            Just("text".to_string()),
            Just("image".to_string()),
            Just("input_image".to_string()),
            Just("tool_use".to_string()),
            Just("tool_result".to_string()),
            Just("base64".to_string()),
            Just("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAMAAAAC".to_string()),
            ".{0,16}",
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        let key = prop_oneof![
            Just("type".to_string()),
            Just("role".to_string()),
            Just("content".to_string()),
            Just("text".to_string()),
            Just("source".to_string()),
            Just("data".to_string()),
            Just("image_url".to_string()),
            Just("detail".to_string()),
            Just("input".to_string()),
            Just("output".to_string()),
            "[a-z_]{1,6}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key, inner), 0..5)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn any_body_of_any_shape_parses_or_is_refused(
        top in prop::collection::vec(
            (prop_oneof![
                Just("messages"), Just("input"), Just("instructions"), Just("system"),
                Just("tools"), Just("tool_choice"), Just("text"), Just("output_config"),
                Just("max_tokens"), Just("max_output_tokens"), Just("stream"), Just("model"),
            ], loose_value()),
            0..6,
        ),
    ) {
        let body: serde_json::Map<String, Value> =
            top.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let text = Value::Object(body).to_string();
        for path in ["/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/messages"] {
            if let Ok(facts) = parse(path, text.as_bytes()) {
                let text = facts.text_tokens(O200kBase).unwrap();
                let ratio = Ratio::new(1.3);
                let total = facts.prompt_tokens_from(text, ratio, Some(u64::MAX));
                prop_assert!(total >= facts.image_tokens(Some(0)));
            }
        }
    }

    #[test]
    fn any_base64_payload_has_a_size_or_none(
        head in prop_oneof![
            Just(b"\x89PNG\r\n\x1a\n".to_vec()),
            Just(b"\xff\xd8".to_vec()),
            Just(b"RIFF\0\0\0\0WEBPVP8".to_vec()),
            Just(b"GIF89a".to_vec()),
            Just(Vec::new()),
        ],
        tail in prop::collection::vec(any::<u8>(), 0..200),
        cut in 0usize..300,
        garbage in "[A-Za-z0-9+/=_-]{0,40}",
    ) {
        let mut bytes = head;
        bytes.extend(tail);
        let text: String = encode(&bytes).chars().take(cut).collect();
        if let Some((w, h)) = crate::request::images::base64_size(&text) {
            for pricing in [ImagePricing::OpenAi, ImagePricing::Anthropic] {
                let tokens = pricing.tokens(Some((w, h)), Detail::High).unwrap();
                prop_assert!((1..=85 + 170 * 16).contains(&tokens));
            }
        }
        let _ = crate::request::images::base64_size(&garbage);
        let _ = crate::request::images::data_url_size(&format!("data:image/png;base64,{garbage}"));
    }
}

/// Standard base64 (test helper).
fn encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((v >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}
