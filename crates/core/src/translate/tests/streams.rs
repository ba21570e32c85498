//! Event streams, each fed whole and in chunks of 1, 2, 7 and 64 bytes.

use serde_json::json;

use super::*;

/// docs.anthropic.com/en/docs/build-with-claude/streaming, "Basic streaming request".
const ANTHROPIC_TEXT: &str = "event: message_start\ndata: {\"type\": \"message_start\", \"message\": {\"id\": \"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY\", \"type\": \"message\", \"role\": \"assistant\", \"content\": [], \"model\": \"claude-opus-4-1-20250805\", \"stop_reason\": null, \"stop_sequence\": null, \"usage\": {\"input_tokens\": 25, \"output_tokens\": 1}}}\n\nevent: content_block_start\ndata: {\"type\": \"content_block_start\", \"index\": 0, \"content_block\": {\"type\": \"text\", \"text\": \"\"}}\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\nevent: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\"type\": \"text_delta\", \"text\": \"Hello\"}}\n\nevent: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\"type\": \"text_delta\", \"text\": \"!\"}}\n\nevent: content_block_stop\ndata: {\"type\": \"content_block_stop\", \"index\": 0}\n\nevent: message_delta\ndata: {\"type\": \"message_delta\", \"delta\": {\"stop_reason\": \"end_turn\", \"stop_sequence\":null}, \"usage\": {\"output_tokens\": 15}}\n\nevent: message_stop\ndata: {\"type\": \"message_stop\"}\n\n";

/// The same page, "Streaming request with tool use" (shortened deltas), CRLF line ends.
const ANTHROPIC_TOOL: &str = "event: message_start\r\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_014p7gG3wDgGV9EUtLvnow3U\",\"model\":\"claude-opus-4-1-20250805\",\"usage\":{\"input_tokens\":472,\"output_tokens\":2}}}\r\n\r\nevent: content_block_start\r\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\r\n\r\nevent: content_block_delta\r\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Okay\"}}\r\n\r\nevent: content_block_stop\r\ndata: {\"type\":\"content_block_stop\",\"index\":0}\r\n\r\nevent: content_block_start\r\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01T1x1fJ34qAmk2tNTrN7Up6\",\"name\":\"get_weather\",\"input\":{}}}\r\n\r\nevent: content_block_delta\r\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"location\\\":\"}}\r\n\r\nevent: content_block_delta\r\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\" \\\"San Francisco, CA\\\"}\"}}\r\n\r\nevent: content_block_stop\r\ndata: {\"type\":\"content_block_stop\",\"index\":1}\r\n\r\nevent: message_delta\r\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":89}}\r\n\r\nevent: message_stop\r\ndata: {\"type\":\"message_stop\"}\r\n\r\n";

#[test]
fn anthropic_text_stream_becomes_chat_chunks_with_usage() {
    let out = events(&stream(
        ApiShape::ChatCompletions,
        Api::AnthropicMessages,
        true,
        ANTHROPIC_TEXT,
    ));
    let data: Vec<&Value> = out.iter().map(|(_, d)| d).collect();
    assert_eq!(data.len(), 6, "{data:?}");
    assert_eq!(
        data[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    assert_eq!(data[0]["object"], "chat.completion.chunk");
    assert_eq!(data[0]["id"], "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY");
    assert_eq!(data[1]["choices"][0]["delta"]["content"], "Hello");
    assert_eq!(data[2]["choices"][0]["delta"]["content"], "!");
    assert_eq!(data[3]["choices"][0]["finish_reason"], "stop");
    assert_eq!(data[4]["choices"], json!([]));
    assert_eq!(data[4]["usage"]["prompt_tokens"], 25);
    assert_eq!(data[4]["usage"]["completion_tokens"], 15);
    assert_eq!(*data[5], json!("[DONE]"));
    // Without include_usage: no usage chunk.
    let out = events(&stream(
        ApiShape::ChatCompletions,
        Api::AnthropicMessages,
        false,
        ANTHROPIC_TEXT,
    ));
    assert_eq!(out.len(), 5);
}

#[test]
fn anthropic_tool_stream_becomes_indexed_tool_call_deltas() {
    let out = events(&stream(
        ApiShape::ChatCompletions,
        Api::AnthropicMessages,
        false,
        ANTHROPIC_TOOL,
    ));
    let deltas: Vec<&Value> = out
        .iter()
        .filter_map(|(_, d)| d.pointer("/choices/0/delta"))
        .collect();
    assert_eq!(deltas[1]["content"], "Okay");
    assert_eq!(
        deltas[2]["tool_calls"],
        json!([{"index": 0, "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "type": "function", "function": {"name": "get_weather", "arguments": ""}}])
    );
    let args: String = deltas
        .iter()
        .filter_map(|d| d.pointer("/tool_calls/0/function/arguments"))
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"location": "San Francisco, CA"})
    );
    let finish: Vec<&Value> = out
        .iter()
        .filter_map(|(_, d)| d.pointer("/choices/0/finish_reason"))
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finish, [&json!("tool_calls")]);
}

#[test]
fn anthropic_stream_error_event_becomes_an_openai_error() {
    let input = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{}}}\n\nevent: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n";
    let out = events(&stream(
        ApiShape::ChatCompletions,
        Api::AnthropicMessages,
        true,
        input,
    ));
    assert_eq!(out[1].1["error"]["code"], "overloaded_error");
    assert_eq!(out.len(), 2);
}

/// An OpenAI stream (the API reference's "Streaming" example plus a tool call and usage).
const OPENAI_STREAM: &str = concat!(
    "data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"chatcmpl-123\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"chatcmpl-123\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"city\\\":\"}}]},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"chatcmpl-123\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"Paris\\\"}\"}}]},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"chatcmpl-123\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
    "data: {\"id\":\"chatcmpl-123\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":12,\"total_tokens\":21,\"prompt_tokens_details\":{\"cached_tokens\":4}}}\n\n",
    "data: [DONE]\n\n",
);

#[test]
fn openai_stream_becomes_anthropic_events() {
    let out = events(&stream(
        ApiShape::Messages,
        Api::OpenaiChat,
        false,
        OPENAI_STREAM,
    ));
    let names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(out[0].1["message"]["id"], "chatcmpl-123");
    assert_eq!(
        out[2].1["delta"],
        json!({"type": "text_delta", "text": "Hello"})
    );
    assert_eq!(out[4].1["index"], 1);
    assert_eq!(
        out[4].1["content_block"],
        json!({"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}})
    );
    assert_eq!(
        out[5].1["delta"],
        json!({"type": "input_json_delta", "partial_json": "{\"city\":"})
    );
    assert_eq!(out[8].1["delta"]["stop_reason"], "tool_use");
    assert_eq!(
        out[8].1["usage"],
        json!({"input_tokens": 5, "output_tokens": 12, "cache_read_input_tokens": 4, "cache_creation_input_tokens": 0})
    );
}

#[test]
fn openai_stream_becomes_responses_events() {
    let out = events(&stream(
        ApiShape::Responses,
        Api::OpenaiChat,
        false,
        OPENAI_STREAM,
    ));
    let names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    let seq: Vec<u64> = out
        .iter()
        .map(|(_, d)| d["sequence_number"].as_u64().unwrap())
        .collect();
    assert_eq!(seq, (0..14).collect::<Vec<u64>>());
    let done = &out[13].1["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"][0]["content"][0]["text"], "Hello");
    assert_eq!(done["output"][1]["arguments"], "{\"city\":\"Paris\"}");
    assert_eq!(done["output"][1]["call_id"], "call_1");
    assert_eq!(done["usage"]["input_tokens"], 9);
    assert_eq!(done["usage"]["input_tokens_details"]["cached_tokens"], 4);
}

#[test]
fn anthropic_stream_becomes_responses_events_through_chat() {
    let out = events(&stream(
        ApiShape::Responses,
        Api::AnthropicMessages,
        false,
        ANTHROPIC_TEXT,
    ));
    let last = &out.last().unwrap().1;
    assert_eq!(last["type"], "response.completed");
    assert_eq!(
        last["response"]["output"][0]["content"][0]["text"],
        "Hello!"
    );
    assert_eq!(last["response"]["usage"]["output_tokens"], 15);
}

#[test]
fn oversized_events_are_skipped_and_memory_stays_bounded() {
    let t = translator(ApiShape::Messages, Api::OpenaiChat).unwrap();
    let mut s = StreamTranslator::new(t.events(&ResponseContext::default()), 4096);
    let big = format!(
        "data: {{\"choices\":[{{\"delta\":{{\"content\":\"{}\"}}}}]}}\n\n",
        "x".repeat(100_000)
    );
    for chunk in big.as_bytes().chunks(1000) {
        s.feed(chunk);
        assert!(
            s.retained_bytes() <= 2 * 4096 + 1024,
            "{}",
            s.retained_bytes()
        );
    }
    let out = String::from_utf8(s.feed(OPENAI_STREAM.as_bytes())).unwrap();
    assert!(out.contains("message_stop") && !out.contains("xxxx"));
}
