//! An incremental Server-Sent Events parser with bounded memory.

/// A parser buffer that grew past this for one large event is released after it.
const SHRINK_ABOVE: usize = 64 * 1024;
/// A UTF-8 byte order mark, dropped from the start of an event stream.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// An incremental Server-Sent Events parser (the WHATWG "event stream
/// interpretation", minus `id` and `retry`, which usage does not need).
///
/// Holds only the unfinished line and the fields of the unfinished event,
/// together at most `max_event_bytes`; an event that would need more is
/// skipped up to its closing blank line. An over-long line of a field that is
/// not read (comment, `id`, `retry`, unknown) is dropped alone.
#[derive(Debug)]
pub(crate) struct SseParser {
    max_event_bytes: usize,
    /// The unfinished line, without its terminator.
    line: Vec<u8>,
    /// The unfinished line has at least one byte (kept or dropped).
    line_started: bool,
    /// The rest of the unfinished line is dropped.
    discarding_line: bool,
    /// The last byte seen was a `\r`: a `\n` right after it ends no line.
    after_cr: bool,
    /// No line has ended yet (a leading BOM is dropped from the first one).
    at_start: bool,
    /// `data` values of the unfinished event, joined with `\n`.
    data: Vec<u8>,
    /// The unfinished event has a `data` field (possibly empty).
    has_data: bool,
    /// `event` name of the unfinished event.
    event_name: Vec<u8>,
    /// The unfinished event outgrew the limit and is skipped.
    skipping_event: bool,
    pub(super) oversized_events: u64,
}

impl SseParser {
    pub(crate) fn new(max_event_bytes: usize) -> SseParser {
        SseParser {
            max_event_bytes,
            line: Vec::new(),
            line_started: false,
            discarding_line: false,
            after_cr: false,
            at_start: true,
            data: Vec::new(),
            has_data: false,
            event_name: Vec::new(),
            skipping_event: false,
            oversized_events: 0,
        }
    }

    /// Bytes of the unfinished line and event: at most `max_event_bytes`.
    pub(crate) fn held_bytes(&self) -> usize {
        self.line
            .len()
            .saturating_add(self.data.len())
            .saturating_add(self.event_name.len())
    }

    /// Memory of the buffers: each grows to at most twice the most it held
    /// (amortised growth), so at most about `6 × max_event_bytes`.
    pub(crate) fn retained_bytes(&self) -> usize {
        self.line
            .capacity()
            .saturating_add(self.data.capacity())
            .saturating_add(self.event_name.capacity())
    }

    /// Feeds bytes; `on_event(name, data)` is called for each complete event.
    pub(crate) fn feed<F: FnMut(&[u8], &[u8])>(&mut self, chunk: &[u8], on_event: &mut F) {
        // Lines end with "\r\n", "\n" or "\r".
        for piece in chunk.split_inclusive(|&b| b == b'\n' || b == b'\r') {
            let piece = if std::mem::take(&mut self.after_cr) {
                // The "\n" of a "\r\n" split by the previous piece or chunk.
                piece.strip_prefix(b"\n").unwrap_or(piece)
            } else {
                piece
            };
            match piece.split_last() {
                None => {}
                Some((&end, line)) if end == b'\n' || end == b'\r' => {
                    self.push_line_bytes(line);
                    self.end_line(on_event);
                    self.after_cr = end == b'\r';
                }
                Some(_) => self.push_line_bytes(piece),
            }
        }
    }

    fn push_line_bytes(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.line_started = true;
        if self.discarding_line {
            return;
        }
        if self.skipping_event {
            self.discarding_line = true;
            return;
        }
        let held = self
            .line
            .len()
            .saturating_add(bytes.len())
            .saturating_add(self.data.len())
            .saturating_add(self.event_name.len());
        if held > self.max_event_bytes {
            if self.line_is_read(bytes) {
                self.skip_event();
            }
            self.line.clear();
            release_if_large(&mut self.line);
            self.discarding_line = true;
            return;
        }
        self.line.extend_from_slice(bytes);
    }

    /// Whether the unfinished line (kept part + `more`) is, or may still
    /// become, a `data` or `event` field.
    fn line_is_read(&self, more: &[u8]) -> bool {
        let head: Vec<u8> = self
            .line
            .iter()
            .chain(more)
            .copied()
            .take(BOM.len().saturating_add(6))
            .collect();
        let head = if self.at_start {
            head.strip_prefix(BOM).unwrap_or(&head)
        } else {
            &head
        };
        let may_be = |name: &[u8]| {
            if head.len() <= name.len() {
                name.starts_with(head)
            } else {
                head.starts_with(name) && head.get(name.len()) == Some(&b':')
            }
        };
        may_be(b"data") || may_be(b"event")
    }

    fn skip_event(&mut self) {
        self.oversized_events = self.oversized_events.saturating_add(1);
        self.skipping_event = true;
        self.reset_event();
    }

    fn end_line<F: FnMut(&[u8], &[u8])>(&mut self, on_event: &mut F) {
        if !self.line_started {
            // A blank line ends the event.
            if self.skipping_event {
                self.skipping_event = false;
            } else if self.has_data {
                on_event(&self.event_name, &self.data);
            }
            self.reset_event();
        } else if !self.discarding_line {
            let line = std::mem::take(&mut self.line);
            self.field(&line);
            self.line = line;
        }
        self.line.clear();
        self.line_started = false;
        self.discarding_line = false;
        self.at_start = false;
    }

    /// One complete non-blank line: a field, or a comment.
    fn field(&mut self, line: &[u8]) {
        let line = if self.at_start {
            line.strip_prefix(BOM).unwrap_or(line)
        } else {
            line
        };
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(0) => return, // a comment
            Some(colon) => {
                let value = line.get(colon.saturating_add(1)..).unwrap_or_default();
                (
                    line.get(..colon).unwrap_or_default(),
                    value.strip_prefix(b" ").unwrap_or(value),
                )
            }
            None => (line, &[][..]),
        };
        match name {
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => {
                self.event_name.clear();
                self.event_name.extend_from_slice(value);
            }
            _ => {} // id, retry and unknown fields
        }
    }

    fn reset_event(&mut self) {
        self.data.clear();
        self.has_data = false;
        self.event_name.clear();
        release_if_large(&mut self.data);
        release_if_large(&mut self.event_name);
    }
}

/// Frees an emptied buffer that grew large for one big event or line.
fn release_if_large(buffer: &mut Vec<u8>) {
    if buffer.capacity() > SHRINK_ABOVE {
        *buffer = Vec::new();
    }
}
