//! Images count in the prompt as each provider bills them.

use serde_json::json;

use super::*;

const RESPONSES: &str = "/v1/responses";
const MESSAGES: &str = "/v1/messages";

/// Prompt tokens of a body minus those of the same body without its image.
fn image_cost(path: &str, with: serde_json::Value, without: serde_json::Value) -> u64 {
    let with = facts_at(path, &with);
    let without = facts_at(path, &without);
    assert_eq!(with.images, 1);
    assert_eq!(without.images, 0);
    with.prompt_tokens(O200kBase).unwrap() - without.prompt_tokens(O200kBase).unwrap()
}

fn chat_image(image_url: serde_json::Value) -> (serde_json::Value, serde_json::Value) {
    (
        json!({"messages":[{"role":"user","content":[
            {"type":"text","text":"what is this?"},
            {"type":"image_url","image_url":image_url}]}]}),
        json!({"messages":[{"role":"user","content":[{"type":"text","text":"what is this?"}]}]}),
    )
}

fn responses_image(part: serde_json::Value) -> (serde_json::Value, serde_json::Value) {
    let mut image = json!({"type":"input_image"});
    for (k, v) in part.as_object().unwrap() {
        image[k] = v.clone();
    }
    (
        json!({"input":[{"role":"user","content":[{"type":"input_text","text":"what is this?"}, image]}]}),
        json!({"input":[{"role":"user","content":[{"type":"input_text","text":"what is this?"}]}]}),
    )
}

fn messages_image(source: serde_json::Value) -> (serde_json::Value, serde_json::Value) {
    (
        json!({"max_tokens":10,"messages":[{"role":"user","content":[
            {"type":"image","source":source},{"type":"text","text":"what is this?"}]}]}),
        json!({"max_tokens":10,"messages":[{"role":"user","content":[
            {"type":"text","text":"what is this?"}]}]}),
    )
}

#[test]
fn chat_images_cost_openai_tiles() {
    let cases = [
        (json!({"url": png_data_url(1024, 1024)}), 765),
        (
            json!({"url": png_data_url(1024, 1024), "detail": "high"}),
            765,
        ),
        (
            json!({"url": png_data_url(2048, 4096), "detail": "auto"}),
            1105,
        ),
        (
            json!({"url": png_data_url(4096, 8192), "detail": "low"}),
            85,
        ),
        (json!({"url": png_data_url(512, 512)}), 255),
        // Size unknown: priced as a 1024x1024 high-detail image.
        (json!({"url": "https://example.com/cat.png"}), 765),
        (
            json!({"url": "https://example.com/cat.png", "detail": "low"}),
            85,
        ),
        // A bare URL string, as some clients send.
        (json!(png_data_url(2048, 4096)), 1105),
    ];
    for (image_url, tokens) in cases {
        let (with, without) = chat_image(image_url.clone());
        assert_eq!(image_cost(CHAT, with, without), tokens, "{image_url}");
    }
}

#[test]
fn responses_images_cost_openai_tiles() {
    let cases = [
        (
            json!({"image_url": png_data_url(1024, 1024), "detail": "auto"}),
            765,
        ),
        (
            json!({"image_url": png_data_url(2048, 4096), "detail": "high"}),
            1105,
        ),
        (
            json!({"image_url": png_data_url(2048, 4096), "detail": "low"}),
            85,
        ),
        (json!({"file_id": "file-123", "detail": "auto"}), 765),
    ];
    for (part, tokens) in cases {
        let (with, without) = responses_image(part.clone());
        assert_eq!(image_cost(RESPONSES, with, without), tokens, "{part}");
    }
}

#[test]
fn messages_images_cost_anthropics_pixels() {
    let cases = [
        (
            json!({"type":"base64","media_type":"image/png","data": png_base64(1092, 1092)}),
            1590,
        ),
        (
            json!({"type":"base64","media_type":"image/png","data": png_base64(200, 200)}),
            54,
        ),
        (
            json!({"type":"base64","media_type":"image/png","data": png_base64(1000, 1000)}),
            1334,
        ),
        // Long edge over 1568 px: scaled to 1568x784, then (over ~1600
        // tokens) to 1549x774, about 1.2 MP.
        (
            json!({"type":"base64","media_type":"image/png","data": png_base64(3136, 1568)}),
            1599,
        ),
        // Size unknown: a 1024x1024 image, 1048576 / 750 rounded up.
        (
            json!({"type":"url","url":"https://example.com/cat.png"}),
            1399,
        ),
        (json!({"type":"file","file_id":"file_1"}), 1399),
    ];
    for (source, tokens) in cases {
        let (with, without) = messages_image(source.clone());
        assert_eq!(image_cost(MESSAGES, with, without), tokens, "{source}");
    }
}

#[test]
fn a_policy_default_prices_images_of_unknown_size() {
    let (with, _) = chat_image(json!({"url": "https://example.com/a.png"}));
    let facts = facts_at(CHAT, &with);
    let text = facts.text_tokens(O200kBase).unwrap();
    assert_eq!(
        facts.prompt_tokens_from(text, None, Some(1000)),
        text + 1000
    );
    assert_eq!(facts.prompt_tokens_from(text, None, None), text + 765);
    // Known sizes are priced by the formula whatever the default.
    let (with, _) = chat_image(json!({"url": png_data_url(1024, 1024)}));
    let facts = facts_at(CHAT, &with);
    let text = facts.text_tokens(O200kBase).unwrap();
    assert_eq!(facts.prompt_tokens_from(text, None, Some(1000)), text + 765);
}

#[test]
fn images_inside_tool_results_count() {
    let body = json!({"max_tokens":10,"messages":[
        {"role":"user","content":"look"},
        {"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"shot","input":{}}]},
        {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[
            {"type":"text","text":"here"},
            {"type":"image","source":{"type":"base64","media_type":"image/png","data":png_base64(1092, 1092)}}]}]}]});
    let facts = facts_at(MESSAGES, &body);
    assert_eq!(facts.images, 1);
    assert_eq!(facts.image_tokens(None), 1590);
}
