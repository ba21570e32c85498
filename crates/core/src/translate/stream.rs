//! Event streams translated as they pass: the upstream's bytes are framed
//! into events (across arbitrary chunk boundaries) and each event is
//! translated into zero or more client events at once. Memory is the
//! unfinished event (capped) plus the small per-stream state of the
//! direction (ids, open content block, pending usage).

use serde_json::Value;

use crate::usage::SseParser;

/// One upstream event larger than this is skipped (never buffered further).
pub const MAX_TRANSLATED_EVENT_BYTES: usize = 1 << 20;

/// Translates parsed upstream events into client event-stream bytes.
pub trait EventSink {
    /// One upstream event: its `event` name (empty when none) and `data`.
    fn event(&mut self, name: &str, data: &[u8], out: &mut Vec<u8>);
    /// The upstream stream ended: anything still owed to the client.
    fn finish(&mut self, out: &mut Vec<u8>);
}

/// An upstream event stream → the client's, chunk by chunk.
pub struct StreamTranslator {
    parser: SseParser,
    sink: Box<dyn EventSink>,
    finished: bool,
}

impl StreamTranslator {
    pub fn new(sink: Box<dyn EventSink>, max_event_bytes: usize) -> StreamTranslator {
        StreamTranslator {
            parser: SseParser::new(max_event_bytes),
            sink,
            finished: false,
        }
    }

    /// The client bytes for the next upstream chunk (possibly empty: an
    /// event is only translated once its closing blank line has arrived).
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let sink = &mut self.sink;
        self.parser.feed(chunk, &mut |name, data| {
            sink.event(&String::from_utf8_lossy(name), data, &mut out);
        });
        out
    }

    /// The client bytes owed at the end of the upstream stream (once).
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if !std::mem::replace(&mut self.finished, true) {
            self.sink.finish(&mut out);
        }
        out
    }

    /// Bytes of the unfinished event held between chunks: at most the
    /// `max_event_bytes` it was made with.
    pub fn held_bytes(&self) -> usize {
        self.parser.held_bytes()
    }

    /// Memory of the parser's buffers (capacity): at most about six times
    /// `max_event_bytes`, as each buffer grows to twice what it held.
    pub fn retained_bytes(&self) -> usize {
        self.parser.retained_bytes()
    }
}

/// A named event: `event: NAME` then `data: JSON`.
pub fn named(out: &mut Vec<u8>, name: &str, data: &Value) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.push(b'\n');
    data_only(out, data);
}

/// An unnamed event: `data: JSON` (OpenAI's streams).
pub fn data_only(out: &mut Vec<u8>, data: &Value) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}

/// OpenAI's end of stream.
pub fn done(out: &mut Vec<u8>) {
    out.extend_from_slice(b"data: [DONE]\n\n");
}

/// Upstream events through `inner`, whose output is the input of `outer`.
pub struct ChainedSink {
    pub inner: Box<dyn EventSink>,
    pub outer: StreamTranslator,
    pub scratch: Vec<u8>,
}

impl EventSink for ChainedSink {
    fn event(&mut self, name: &str, data: &[u8], out: &mut Vec<u8>) {
        self.scratch.clear();
        self.inner.event(name, data, &mut self.scratch);
        out.extend_from_slice(&self.outer.feed(&self.scratch));
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        self.scratch.clear();
        self.inner.finish(&mut self.scratch);
        out.extend_from_slice(&self.outer.feed(&self.scratch));
        out.extend_from_slice(&self.outer.finish());
    }
}
