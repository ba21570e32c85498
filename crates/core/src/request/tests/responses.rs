//! OpenAI Responses bodies: counted as the equivalent chat request.

use serde_json::json;

use super::*;

const RESPONSES: &str = "/v1/responses";

fn responses(body: serde_json::Value) -> RequestFacts {
    facts_at(RESPONSES, &body)
}

#[test]
fn responses_count_like_the_equivalent_chat_request() {
    let weather_tool = json!({"name":"get_current_weather",
        "description":"Get the current weather in a given location",
        "parameters":{"type":"object","properties":{
          "location":{"type":"string","description":"The city and state, e.g. San Francisco, CA"},
          "unit":{"type":"string","description":"The unit of temperature to return","enum":["celsius","fahrenheit"]}},
        "required":["location"]}});
    let mut flat_tool = weather_tool.clone();
    flat_tool["type"] = json!("function");
    let cases = [
        (
            json!({"model":"gpt-4o","input":"hello world"}),
            json!({"model":"gpt-4o","messages":[{"role":"user","content":"hello world"}]}),
        ),
        (
            json!({"instructions":"You are terse.","input":"Summarize the plot of Hamlet."}),
            json!({"messages":[{"role":"system","content":"You are terse."},
                               {"role":"user","content":"Summarize the plot of Hamlet."}]}),
        ),
        (
            json!({"input":[
                {"role":"developer","content":"Answer in French."},
                {"type":"message","role":"user","content":[{"type":"input_text","text":"Hi there"},{"type":"input_text","text":"How are you?"}]},
                {"role":"assistant","content":[{"type":"output_text","text":"Bonjour !"}]},
                {"role":"user","content":"Merci"}]}),
            json!({"messages":[
                {"role":"developer","content":"Answer in French."},
                {"role":"user","content":[{"type":"text","text":"Hi there"},{"type":"text","text":"How are you?"}]},
                {"role":"assistant","content":"Bonjour !"},
                {"role":"user","content":"Merci"}]}),
        ),
        // The cookbook's tool example (105 tokens on cl100k_base, 101 on o200k_base).
        (
            json!({"instructions":"You are a helpful assistant that can answer to questions about the weather.",
                   "input":"What's the weather like in San Francisco?",
                   "tools":[flat_tool, {"type":"web_search"}]}),
            json!({"messages":[
                {"role":"system","content":"You are a helpful assistant that can answer to questions about the weather."},
                {"role":"user","content":"What's the weather like in San Francisco?"}],
                "tools":[{"type":"function","function":weather_tool}]}),
        ),
    ];
    for (body, chat_body) in cases {
        let facts = responses(body.clone());
        let chat = facts_at(CHAT, &chat_body);
        for encoding in [O200kBase, Cl100kBase] {
            assert_eq!(
                facts.prompt_tokens(encoding).unwrap(),
                chat.prompt_tokens(encoding).unwrap(),
                "{encoding} {body}"
            );
        }
        assert_eq!(facts.messages, chat.messages, "{body}");
        assert_eq!(facts.tools, chat.tools, "{body}");
    }
}

#[test]
fn function_tools_match_the_cookbook_counts() {
    let body = json!({"instructions":"You are a helpful assistant that can answer to questions about the weather.",
        "input":"What's the weather like in San Francisco?",
        "tools":[{"type":"function","name":"get_current_weather",
            "description":"Get the current weather in a given location",
            "parameters":{"type":"object","properties":{
              "location":{"type":"string","description":"The city and state, e.g. San Francisco, CA"},
              "unit":{"type":"string","description":"The unit of temperature to return","enum":["celsius","fahrenheit"]}},
            "required":["location"]}}]});
    let facts = responses(body);
    assert!(facts.tools);
    assert_eq!(facts.prompt_tokens(Cl100kBase).unwrap(), 105);
    assert_eq!(facts.prompt_tokens(O200kBase).unwrap(), 101);
}

#[test]
fn function_calls_and_their_outputs_count_as_tool_messages() {
    let facts = responses(json!({"input":[
        {"role":"user","content":"weather in Paris?"},
        {"type":"function_call","call_id":"call_1","name":"get_weather","arguments":"{\"city\":\"Paris\"}"},
        {"type":"function_call_output","call_id":"call_1","output":"18 degrees and sunny"},
        {"type":"reasoning","id":"rs_1","summary":[],"encrypted_content":"gAAAA..."},
        {"type":"item_reference","id":"msg_1"}]}));
    let e = O200kBase;
    let expected = 3 // reply priming
        + 3 + count(e, "user") + count(e, "weather in Paris?")
        + 3 + count(e, "assistant") + count(e, "get_weather") + count(e, "{\"city\":\"Paris\"}")
        + 3 + count(e, "tool") + count(e, "18 degrees and sunny");
    // Reasoning (encrypted) and references (stored server-side) add nothing.
    assert_eq!(facts.prompt_tokens(e).unwrap(), expected);
    assert_eq!(facts.messages, 3);
    let tool = facts.content.iter().find(|s| s.role == Role::Tool).unwrap();
    assert_eq!(tool.text, "18 degrees and sunny");
}

#[test]
fn reads_responses_signals() {
    let schema =
        json!({"type":"object","properties":{"city":{"type":"string"}},"required":["city"]});
    let facts = responses(json!({
        "model":"auto","stream":true,"max_output_tokens":300,
        "instructions":"Be brief.",
        "input":[{"role":"developer","content":"Use JSON."},{"role":"user","content":"Where is the Louvre?"}],
        "text":{"format":{"type":"json_schema","name":"place","schema":schema,"strict":true}},
        "tools":[{"type":"web_search"}],
        "max_tokens": "ignored: not a Responses field"}));
    assert_eq!(facts.shape, Some(ApiShape::Responses));
    assert_eq!(facts.requested_model.as_deref(), Some("auto"));
    assert!(
        facts.stream && facts.stream_include_usage,
        "Responses streams always carry usage"
    );
    assert!(facts.structured_output && facts.tools);
    assert_eq!(facts.max_output_tokens, Some(300));
    assert_eq!(facts.messages, 3);
    let roles: Vec<Role> = facts.content.iter().map(|s| s.role).collect();
    assert_eq!(roles, [Role::System, Role::Developer, Role::User]);
    // The schema's JSON is counted; a built-in tool adds nothing.
    let plain = responses(json!({
        "instructions":"Be brief.",
        "input":[{"role":"developer","content":"Use JSON."},{"role":"user","content":"Where is the Louvre?"}]}));
    assert_eq!(
        facts.prompt_tokens(O200kBase).unwrap(),
        plain.prompt_tokens(O200kBase).unwrap() + count(O200kBase, &schema.to_string())
    );
}

#[test]
fn text_format_kinds() {
    for (format, structured) in [
        (json!({"type":"text"}), false),
        (json!({"type":"json_object"}), true),
        (json!({"type":"json_schema","name":"x","schema":{}}), true),
    ] {
        let facts = responses(json!({"input":"x","text":{"format":format}}));
        assert_eq!(facts.structured_output, structured, "{format}");
    }
    assert!(!responses(json!({"input":"x","text":{"verbosity":"low"}})).structured_output);
    assert!(responses(json!({"input":"x"})).stream_include_usage);
}

#[test]
fn server_side_context_is_not_counted() {
    // Only what the body carries: a previous response's context is not known here.
    let facts = responses(json!({"previous_response_id":"resp_1","input":"and then?"}));
    assert_eq!(facts.messages, 1);
    let facts = responses(json!({"prompt":{"id":"pmpt_1"}}));
    assert_eq!(facts.messages, 0);
    assert_eq!(facts.prompt_tokens(O200kBase).unwrap(), 3);
}

#[test]
fn invalid_responses_bodies_are_named() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"input":5}"#,
            "`input` is neither a string nor a list of items",
        ),
        (r#"{"input":[1]}"#, "`input[0]` is not an object"),
        (
            r#"{"input":[{"content":"x"}]}"#,
            "`input[0].role` is missing",
        ),
        (
            r#"{"input":[{"type":7,"role":"user"}]}"#,
            "`input[0].type` is not a string",
        ),
        (
            r#"{"input":[{"role":"user","content":5}]}"#,
            "`input[0].content` is neither",
        ),
        (
            r#"{"input":[{"role":"user","content":[7]}]}"#,
            "`input[0].content` has a part that is not an object",
        ),
        (
            r#"{"input":[{"role":"user","content":[{"type":"input_text"}]}]}"#,
            "without a string `text`",
        ),
        (
            r#"{"instructions":["x"],"input":"x"}"#,
            "`instructions` is not a string",
        ),
        (
            r#"{"input":"x","max_output_tokens":-1}"#,
            "`max_output_tokens` has the wrong type",
        ),
        (r#"{"input":"x","tools":{}}"#, "`tools` has the wrong type"),
        (
            r#"{"input":"x","stream":"yes"}"#,
            "`stream` has the wrong type",
        ),
        (r#"{"input":"x","text":3}"#, ""),
    ];
    for (body, expected) in cases {
        let result = parse(RESPONSES, body.as_bytes());
        match result {
            Err(e) => assert!(
                e.message.contains(expected),
                "{body}: {e} lacks {expected:?}"
            ),
            // `text` that is not an object carries no format: accepted.
            Ok(_) => assert_eq!(*expected, "", "{body} was accepted"),
        }
    }
}
