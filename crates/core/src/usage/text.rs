//! Completion text tokenized with bounded memory (when a response reports no usage).

use crate::tokens::{self, Encoding};

/// Streamed text is tokenized in pieces once this much of it is buffered.
pub(super) const TEXT_FLUSH_BYTES: usize = 16 * 1024;
/// A buffer that grew past this for one large piece of text is released after it.
const SHRINK_ABOVE: usize = 64 * 1024;

/// Tokenizes streamed text with bounded memory.
#[derive(Debug)]
pub(super) struct TextCounter {
    encoding: Encoding,
    /// Some text (possibly empty) was seen.
    seen: bool,
    /// Tokenizing failed once: the count is unusable.
    failed: bool,
    /// Tokens of the text already tokenized and dropped.
    counted: u64,
    /// Text not tokenized yet.
    pending: String,
}

impl TextCounter {
    pub(super) fn retained_bytes(&self) -> usize {
        self.pending.capacity()
    }

    pub(super) fn new(encoding: Encoding) -> TextCounter {
        TextCounter {
            encoding,
            seen: false,
            failed: false,
            counted: 0,
            pending: String::new(),
        }
    }

    pub(super) fn push(&mut self, text: &str) {
        self.seen = true;
        if self.failed {
            return;
        }
        self.pending.push_str(text);
        if self.pending.len() > TEXT_FLUSH_BYTES {
            self.flush_prefix();
        }
    }

    /// Tokenizes the pending text up to its last whitespace character (which
    /// starts the kept rest, as BPE pre-tokenizers attach a space to the word
    /// after it), or all of it when there is no whitespace past the start.
    fn flush_prefix(&mut self) {
        let cut = match self
            .pending
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_whitespace())
        {
            Some((at, _)) if at > 0 => at,
            _ => self.pending.len(),
        };
        let head = self.pending.get(..cut).unwrap_or_default();
        self.add(count(self.encoding, head));
        if self.pending.is_char_boundary(cut) {
            self.pending.drain(..cut);
        } else {
            self.pending.clear();
        }
        if self.pending.capacity() > SHRINK_ABOVE {
            self.pending.shrink_to(TEXT_FLUSH_BYTES.saturating_mul(2));
        }
    }

    fn add(&mut self, tokens: Option<u64>) {
        match tokens {
            Some(n) => self.counted = self.counted.saturating_add(n),
            None => {
                self.failed = true;
                self.pending = String::new();
            }
        }
    }

    /// Drops the text for good (usage was reported).
    pub(super) fn abandon(&mut self) {
        if self.pending.capacity() > 0 {
            self.pending = String::new();
        }
    }

    /// Tokens of all the text, or None if there was none or tokenizing failed.
    pub(super) fn finish(mut self) -> Option<u64> {
        if !self.seen {
            return None;
        }
        let rest = std::mem::take(&mut self.pending);
        self.add(count(self.encoding, &rest));
        (!self.failed).then_some(self.counted)
    }
}

pub(super) fn count(encoding: Encoding, text: &str) -> Option<u64> {
    let n = tokens::count(encoding, text).ok()?;
    u64::try_from(n).ok()
}
