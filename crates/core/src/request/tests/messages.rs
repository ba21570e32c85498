//! Anthropic Messages bodies.

use serde_json::json;

use super::*;

const MESSAGES: &str = "/v1/messages";

fn messages(body: serde_json::Value) -> RequestFacts {
    facts_at(MESSAGES, &body)
}

const WEATHER_TOOL: &str = r#"{"name":"get_weather","description":"Get the current weather in a given location","input_schema":{"type":"object","properties":{"location":{"type":"string","description":"The city and state, e.g. San Francisco, CA"}},"required":["location"]}}"#;

#[test]
fn text_is_counted_with_chat_framing() {
    let e = O200kBase;
    let cases = [
        (
            json!({"model":"claude","max_tokens":100,"messages":[{"role":"user","content":"Hello, Claude"}]}),
            3 + 3 + count(e, "user") + count(e, "Hello, Claude"),
            1,
        ),
        (
            json!({"max_tokens":100,"system":"Respond only in Spanish.",
                   "messages":[{"role":"user","content":"Hello"},{"role":"assistant","content":"Hola"},{"role":"user","content":"Bye"}]}),
            3 + (3 + count(e, "Respond only in Spanish."))
                + (3 + count(e, "user") + count(e, "Hello"))
                + (3 + count(e, "assistant") + count(e, "Hola"))
                + (3 + count(e, "user") + count(e, "Bye")),
            4,
        ),
        // System as blocks: one message.
        (
            json!({"max_tokens":100,"system":[{"type":"text","text":"You are a poet."},{"type":"text","text":"Rhyme.","cache_control":{"type":"ephemeral"}}],
                   "messages":[{"role":"user","content":[{"type":"text","text":"Write about the sea."}]}]}),
            3 + (3 + count(e, "You are a poet.") + count(e, "Rhyme."))
                + (3 + count(e, "user") + count(e, "Write about the sea.")),
            2,
        ),
        // Thinking from earlier turns is dropped by Anthropic: not counted.
        (
            json!({"max_tokens":100,"messages":[
                {"role":"user","content":"2+2?"},
                {"role":"assistant","content":[{"type":"thinking","thinking":"simple arithmetic","signature":"sig"},{"type":"text","text":"4"}]},
                {"role":"user","content":"and 3+3?"}]}),
            3 + (3 + count(e, "user") + count(e, "2+2?"))
                + (3 + count(e, "assistant") + count(e, "4"))
                + (3 + count(e, "user") + count(e, "and 3+3?")),
            3,
        ),
    ];
    for (body, tokens, message_count) in cases {
        let facts = messages(body.clone());
        assert_eq!(facts.prompt_tokens(e).unwrap(), tokens, "{body}");
        assert_eq!(facts.messages, message_count, "{body}");
    }
}

#[test]
fn tools_cost_their_json_plus_anthropics_tool_use_system_prompt() {
    let e = O200kBase;
    let tool: serde_json::Value = serde_json::from_str(WEATHER_TOOL).unwrap();
    let base = json!({"max_tokens":100,"messages":[{"role":"user","content":"Weather in Paris?"}]});
    let without = messages(base.clone()).prompt_tokens(e).unwrap();
    let tool_json = count(e, &tool.to_string());
    let cases = [
        (None, 346),
        (Some(json!({"type":"auto"})), 346),
        (Some(json!({"type":"none"})), 346),
        (Some(json!({"type":"any"})), 313),
        (Some(json!({"type":"tool","name":"get_weather"})), 313),
    ];
    for (choice, system_prompt) in cases {
        let mut body = base.clone();
        body["tools"] = json!([tool]);
        if let Some(choice) = &choice {
            body["tool_choice"] = choice.clone();
        }
        let facts = messages(body);
        assert!(facts.tools);
        assert_eq!(
            facts.prompt_tokens(e).unwrap(),
            without + tool_json + system_prompt,
            "{choice:?}"
        );
    }
    let mut empty = base.clone();
    empty["tools"] = json!([]);
    let facts = messages(empty);
    assert!(!facts.tools);
    assert_eq!(facts.prompt_tokens(e).unwrap(), without);
}

#[test]
fn the_system_prompt_overhead_is_not_scaled_by_an_estimate_ratio() {
    let mut body =
        json!({"max_tokens":100,"messages":[{"role":"user","content":"Weather in Paris?"}]});
    body["tools"] = json!([serde_json::from_str::<serde_json::Value>(WEATHER_TOOL).unwrap()]);
    let facts = messages(body);
    let text = facts.text_tokens(Cl100kBase).unwrap();
    let ratio = Ratio::new(1.25).unwrap();
    assert_eq!(
        facts.prompt_tokens_from(text, Some(ratio), None),
        (text * 5).div_ceil(4) + 346
    );
}

#[test]
fn tool_use_and_results_count_as_their_text() {
    let e = O200kBase;
    let facts = messages(json!({"max_tokens":100,"messages":[
        {"role":"user","content":"Weather in Paris?"},
        {"role":"assistant","content":[{"type":"text","text":"Checking."},
            {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"location":"Paris"}}]},
        {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"18 C, sunny"},
            {"type":"tool_result","tool_use_id":"toolu_2","content":[{"type":"text","text":"no rain"}],"is_error":false}]}]}));
    let expected = 3
        + (3 + count(e, "user") + count(e, "Weather in Paris?"))
        + (3 + count(e, "assistant")
            + count(e, "Checking.")
            + count(e, "get_weather")
            + count(e, r#"{"location":"Paris"}"#))
        + (3 + count(e, "user") + count(e, "18 C, sunny") + count(e, "no rain"));
    assert_eq!(facts.prompt_tokens(e).unwrap(), expected);
    let tool_texts: Vec<&str> = facts
        .content
        .iter()
        .filter(|s| s.role == Role::Tool)
        .map(|s| s.text.as_str())
        .collect();
    assert_eq!(tool_texts, ["18 C, sunny", "no rain"]);
}

#[test]
fn text_documents_count_and_pdfs_do_not() {
    let e = O200kBase;
    let doc = |source: serde_json::Value| {
        messages(
            json!({"max_tokens":100,"messages":[{"role":"user","content":[
            {"type":"document","source":source},{"type":"text","text":"Summarize."}]}]}),
        )
        .prompt_tokens(e)
        .unwrap()
    };
    let none = doc(json!({"type":"base64","media_type":"application/pdf","data":"JVBERi0x"}));
    assert_eq!(
        doc(json!({"type":"text","media_type":"text/plain","data":"The grass is green."})),
        none + count(e, "The grass is green.")
    );
    assert_eq!(
        doc(json!({"type":"content","content":[{"type":"text","text":"The sky is blue."}]})),
        none + count(e, "The sky is blue.")
    );
}

#[test]
fn reads_messages_signals() {
    let schema = json!({"type":"object","properties":{"name":{"type":"string"}},"required":["name"],"additionalProperties":false});
    for key in ["output_config", "output_format"] {
        let format = json!({"type":"json_schema","schema":schema});
        let mut body = json!({"model":"claude-sonnet-4","max_tokens":777,"stream":true,
            "messages":[{"role":"user","content":"Extract: Jane Doe"}]});
        body[key] = if key == "output_config" {
            json!({"format": format})
        } else {
            format
        };
        let facts = messages(body);
        assert_eq!(facts.shape, Some(ApiShape::Messages));
        assert!(facts.structured_output, "{key}");
        assert!(
            facts.stream && facts.stream_include_usage,
            "Messages streams always carry usage"
        );
        assert_eq!(facts.max_output_tokens, Some(777));
        assert_eq!(facts.requested_model.as_deref(), Some("claude-sonnet-4"));
        let plain = messages(
            json!({"max_tokens":1,"messages":[{"role":"user","content":"Extract: Jane Doe"}]}),
        );
        assert_eq!(
            facts.prompt_tokens(O200kBase).unwrap(),
            plain.prompt_tokens(O200kBase).unwrap() + count(O200kBase, &schema.to_string()),
            "{key}"
        );
    }
    // `max_completion_tokens` is not a Messages field.
    let facts =
        messages(json!({"max_completion_tokens":5,"messages":[{"role":"user","content":"x"}]}));
    assert_eq!(facts.max_output_tokens, None);
    assert!(!facts.structured_output && !facts.tools && facts.images == 0);
}

#[test]
fn invalid_messages_bodies_are_named() {
    let cases: &[(&str, &str)] = &[
        (r#"{"model":"claude"}"#, "`messages` is missing"),
        (r#"{"messages":[]}"#, "`messages` is empty"),
        (r#"{"messages":{}}"#, "`messages` has the wrong type"),
        (r#"{"messages":["hi"]}"#, "`messages[0]` is not an object"),
        (
            r#"{"messages":[{"content":"x"}]}"#,
            "`messages[0].role` is missing",
        ),
        (
            r#"{"messages":[{"role":"user"}]}"#,
            "`messages[0].content` is neither",
        ),
        (
            r#"{"messages":[{"role":"user","content":[1]}]}"#,
            "`messages[0].content` has a block that is not an object",
        ),
        (
            r#"{"messages":[{"role":"user","content":[{"type":"text"}]}]}"#,
            "without a string `text`",
        ),
        (
            r#"{"system":5,"messages":[{"role":"user","content":"x"}]}"#,
            "`system` is neither",
        ),
        (
            r#"{"system":[{"type":"image"}],"messages":[{"role":"user","content":"x"}]}"#,
            "`system[0]` is not a text block",
        ),
        (
            r#"{"max_tokens":"many","messages":[{"role":"user","content":"x"}]}"#,
            "`max_tokens` has the wrong type",
        ),
        (
            r#"{"tools":"all","messages":[{"role":"user","content":"x"}]}"#,
            "`tools` has the wrong type",
        ),
    ];
    for (body, expected) in cases {
        let message = error(MESSAGES, body.as_bytes());
        assert!(
            message.contains(expected),
            "{body}: {message:?} lacks {expected:?}"
        );
    }
}
