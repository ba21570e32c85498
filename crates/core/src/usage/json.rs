//! Whole JSON (non-stream) response bodies: copied up to a limit, parsed once at the end.

use serde_json::Value;

use super::objects::{RawUsage, Usages};
use super::text::count;
use super::{array, ReadUsage};
use crate::tokens::Encoding;

#[derive(Debug)]
pub(super) struct JsonBody {
    bytes: Vec<u8>,
    limit: usize,
    over_limit: bool,
    encoding: Encoding,
}

impl JsonBody {
    pub(super) fn new(limit: usize, encoding: Encoding) -> JsonBody {
        JsonBody {
            bytes: Vec::new(),
            limit,
            over_limit: false,
            encoding,
        }
    }

    /// Bytes held: the capacity of the copy.
    pub(super) fn retained_bytes(&self) -> usize {
        self.bytes.capacity()
    }

    pub(super) fn over_limit(&self) -> bool {
        self.over_limit
    }

    pub(super) fn feed(&mut self, chunk: &[u8]) {
        if self.over_limit || chunk.is_empty() {
            return;
        }
        let len = self.bytes.len().saturating_add(chunk.len());
        if len > self.limit {
            self.over_limit = true;
            self.bytes = Vec::new();
            return;
        }
        if len > self.bytes.capacity() {
            // Grow geometrically, but never past the limit.
            let target = self
                .bytes
                .capacity()
                .saturating_mul(2)
                .max(len)
                .min(self.limit);
            self.bytes
                .reserve_exact(target.saturating_sub(self.bytes.len()));
        }
        self.bytes.extend_from_slice(chunk);
    }

    pub(super) fn finish(self) -> ReadUsage {
        if self.over_limit {
            return ReadUsage::Missing;
        }
        // Most answers report their usage: read only that first.
        if let Ok(usages) = serde_json::from_slice::<Usages>(&self.bytes) {
            let mut usage = RawUsage::default();
            usage.observe_usages(&usages);
            if let Some(usage) = usage.reported() {
                return ReadUsage::Reported(usage);
            }
        }
        let Ok(value) = serde_json::from_slice::<Value>(&self.bytes) else {
            return ReadUsage::Missing;
        };
        let mut usage = RawUsage::default();
        usage.observe(&value);
        if let Some(usage) = usage.reported() {
            return ReadUsage::Reported(usage);
        }
        // Each piece (choice, content block, output part) is tokenized on its
        // own: they are separate texts.
        let mut total: Option<u64> = None;
        let mut failed = false;
        body_texts(&value, &mut |text| match count(self.encoding, text) {
            Some(n) => total = Some(total.unwrap_or(0).saturating_add(n)),
            None => failed = true,
        });
        match total {
            Some(completion_tokens) if !failed => ReadUsage::CountedText { completion_tokens },
            _ => ReadUsage::Missing,
        }
    }
}

/// The completion texts of a whole (non-stream) response:
/// Chat `choices[].message.content`, Completions `choices[].text`,
/// Responses `output[].content[].text`, Anthropic `content[].text`.
fn body_texts<'a>(value: &'a Value, out: &mut impl FnMut(&'a str)) {
    for choice in array(value.get("choices")) {
        let content = choice.get("message").and_then(|m| m.get("content"));
        if let Some(text) = content.and_then(Value::as_str) {
            out(text);
        }
        if let Some(text) = choice.get("text").and_then(Value::as_str) {
            out(text);
        }
    }
    for item in array(value.get("output")) {
        for part in array(item.get("content")) {
            if let Some(text) = part.get("text").and_then(Value::as_str) {
                out(text);
            }
        }
    }
    for block in array(value.get("content")) {
        if let Some(text) = block.get("text").and_then(Value::as_str) {
            out(text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole-document reading the fast path stands in for.
    fn read_whole(body: &str) -> Option<crate::cost::Usage> {
        let value: Value = serde_json::from_str(body).ok()?;
        let mut usage = RawUsage::default();
        usage.observe(&value);
        usage.reported()
    }

    #[test]
    fn reading_only_the_usage_members_gives_what_the_whole_document_gives() {
        let bodies = [
            r#"{"id":"c","choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":9,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":4}}}"#,
            r#"{"type":"message","content":[{"type":"text","text":"hi"}],"usage":{"input_tokens":7,"output_tokens":3,"cache_read_input_tokens":2,"cache_creation":{"ephemeral_5m_input_tokens":1,"ephemeral_1h_input_tokens":5}}}"#,
            r#"{"object":"response","output":[],"usage":{"input_tokens":5,"output_tokens":1,"input_tokens_details":{"cached_tokens":0}}}"#,
            r#"{"type":"response.completed","response":{"usage":{"input_tokens":5,"output_tokens":1}}}"#,
            r#"{"type":"message_start","message":{"usage":{"input_tokens":5,"output_tokens":1}}}"#,
            // Members of other shapes: read whole, same answer.
            r#"{"message":"a string","usage":{"prompt_tokens":1,"completion_tokens":1}}"#,
            r#"{"response":[1,2],"usage":{"prompt_tokens":1,"completion_tokens":1}}"#,
            r#"{"usage":null,"choices":[{"message":{"content":"hello there"}}]}"#,
            r#"{"usage":{"prompt_tokens":1},"usage":{"prompt_tokens":2,"completion_tokens":1}}"#,
            r#"{"choices":[{"text":"no usage at all"}]}"#,
        ];
        for body in bodies {
            let mut json = JsonBody::new(1 << 20, Encoding::O200kBase);
            json.feed(body.as_bytes());
            match (read_whole(body), json.finish()) {
                (Some(whole), ReadUsage::Reported(fast)) => assert_eq!(fast, whole, "{body}"),
                (None, ReadUsage::Reported(fast)) => panic!("{body}: reported {fast:?}"),
                (Some(whole), other) => panic!("{body}: {other:?}, expected {whole:?}"),
                (None, _) => {} // nothing reported: the text is counted, as before
            }
        }
    }
}
