//! What the events of a stream say: reported usage, or else the streamed text to count.

use serde_json::Value;

use super::objects::RawUsage;
use super::text::TextCounter;
use super::{array, ReadUsage};
use crate::tokens::Encoding;

/// What the events of a stream said so far.
#[derive(Debug)]
pub(super) struct Tally {
    usage: RawUsage,
    text: TextCounter,
}

impl Tally {
    /// Bytes held: the text not tokenized yet.
    pub(super) fn retained_bytes(&self) -> usize {
        self.text.retained_bytes()
    }

    pub(super) fn new(encoding: Encoding) -> Tally {
        Tally {
            usage: RawUsage::default(),
            text: TextCounter::new(encoding),
        }
    }

    /// One dispatched event. `[DONE]` and data that is not JSON are ignored.
    pub(super) fn observe_event(&mut self, name: &[u8], data: &[u8]) {
        if data.trim_ascii() == b"[DONE]" {
            return;
        }
        let Ok(value) = serde_json::from_slice::<Value>(data) else {
            return;
        };
        self.usage.observe(&value);
        if self.usage.reported().is_some() {
            // Reported usage wins: the text is no longer needed.
            self.text.abandon();
            return;
        }
        // The JSON `type` names the event (Anthropic, Responses); the SSE
        // `event:` name is only a fallback.
        let kind = match value.get("type").and_then(Value::as_str) {
            Some(kind) => kind,
            None => std::str::from_utf8(name).unwrap_or_default(),
        };
        let text = &mut self.text;
        event_texts(&value, kind, &mut |piece| text.push(piece));
    }

    pub(super) fn finish(self) -> ReadUsage {
        if let Some(usage) = self.usage.reported() {
            return ReadUsage::Reported(usage);
        }
        match self.text.finish() {
            Some(completion_tokens) => ReadUsage::CountedText { completion_tokens },
            None => ReadUsage::Missing,
        }
    }
}

/// The completion text deltas of one stream event: Chat
/// `choices[].delta.content`, Completions `choices[].text`, Responses
/// `response.output_text.delta` / `response.refusal.delta` `delta`, Anthropic
/// `content_block_delta` `delta.text`.
fn event_texts<'a>(value: &'a Value, kind: &str, out: &mut impl FnMut(&'a str)) {
    for choice in array(value.get("choices")) {
        let content = choice.get("delta").and_then(|d| d.get("content"));
        if let Some(text) = content.and_then(Value::as_str) {
            out(text);
        }
        if let Some(text) = choice.get("text").and_then(Value::as_str) {
            out(text);
        }
    }
    match value.get("delta") {
        Some(Value::String(text))
            if matches!(
                kind,
                "response.output_text.delta" | "response.refusal.delta"
            ) =>
        {
            out(text)
        }
        Some(Value::Object(delta)) => {
            if let Some(text) = delta.get("text").and_then(Value::as_str) {
                out(text);
            }
        }
        _ => {}
    }
}
