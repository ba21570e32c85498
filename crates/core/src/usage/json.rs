//! Whole JSON (non-stream) response bodies: copied up to a limit, parsed once at the end.

use serde_json::Value;

use super::objects::RawUsage;
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
