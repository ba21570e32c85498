//! Every task's keywords in one Aho-Corasick automaton: one pass over a
//! text finds every keyword of every task.
//!
//! Semantics are those of the regex `(?i)(?:^|[^\w])(?:k1|k2|…)(?:[^\w]|$)`
//! the router used per task: a keyword matches where the text spells it
//! case-insensitively (Unicode simple case folding, see `fold`) and the
//! characters just outside the occurrence, if any, are not word characters
//! (Unicode `\w`), so `c++` and `.net` work and `rust` does not match
//! `trusted`. Occurrences are searched overlapping, so that `rust` failing
//! its edge in `rustacean` does not hide a keyword `rustacean`.
//!
//! The automaton is built on first use (or by `prepare`), not when the
//! policy is compiled: a policy that never detects tasks (`model-router
//! check`, the per-attempt upstream filter) never pays for it. Everything
//! that can make the build fail is checked when the policy is compiled.

use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

use super::fold::CaseFold;

/// Bound on the keyword bytes of a policy: far above any real policy, and
/// far below the automaton's own limits (2^31 states and patterns), so
/// the lazy build cannot fail on a policy that compiled.
pub const MAX_KEYWORD_BYTES: usize = 16 << 20;

#[derive(Debug, Clone)]
pub struct Keywords {
    fold: CaseFold,
    /// Every keyword, folded as the automaton holds it (non-ASCII
    /// characters to their orbit's representative, then ASCII to lower
    /// case), one after another.
    text: String,
    /// End offset in `text` of each keyword.
    ends: Vec<u32>,
    /// Task of each keyword (automaton pattern).
    owners: Vec<u32>,
    automaton: OnceLock<Option<AhoCorasick>>,
}

#[derive(Debug)]
pub struct TooManyKeywordBytes(pub usize);

impl std::fmt::Display for TooManyKeywordBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} bytes of keywords in total, more than {MAX_KEYWORD_BYTES}",
            self.0
        )
    }
}

impl Keywords {
    /// `keywords`: (task index, keyword) in any order. None when empty.
    pub fn new<'a>(
        keywords: impl Iterator<Item = (u32, &'a str)> + Clone,
    ) -> Result<Option<Keywords>, TooManyKeywordBytes> {
        let total = keywords
            .clone()
            .fold(0usize, |n, (_, k)| n.saturating_add(k.len()));
        // Folding never lengthens a keyword (an orbit's least member is
        // never longer in UTF-8), so `text` stays within the bound too.
        if total > MAX_KEYWORD_BYTES {
            return Err(TooManyKeywordBytes(total));
        }
        let fold = CaseFold::for_texts(keywords.clone().map(|(_, k)| k));
        // One automaton pattern per keyword, duplicates included: the
        // automaton reports every pattern of an occurrence.
        let mut text = String::with_capacity(total);
        let mut ends = Vec::new();
        let mut owners = Vec::new();
        for (task, k) in keywords {
            text.extend(k.chars().map(|c| fold.fold_char(c).to_ascii_lowercase()));
            ends.push(u32::try_from(text.len()).unwrap_or(u32::MAX));
            owners.push(task);
        }
        if owners.is_empty() {
            return Ok(None);
        }
        Ok(Some(Keywords {
            fold,
            text,
            ends,
            owners,
            automaton: OnceLock::new(),
        }))
    }

    /// The keywords as the automaton's patterns, in order.
    fn patterns(&self) -> impl Iterator<Item = &str> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(start, end)| self.text.get(start as usize..end as usize).unwrap_or(""))
    }

    /// Builds the automaton now rather than on the first scan.
    pub fn prepare(&self) {
        let _ = self.automaton();
    }

    fn automaton(&self) -> Option<&AhoCorasick> {
        self.automaton
            .get_or_init(|| {
                AhoCorasick::builder()
                    .match_kind(MatchKind::Standard)
                    // ASCII case is folded in the keywords and the text
                    // (`scan`): a case-insensitive automaton takes a fifth
                    // longer to build (two transitions per letter).
                    .ascii_case_insensitive(false)
                    // Thousands of patterns defeat every prefilter.
                    .prefilter(false)
                    // The contiguous NFA: a few bytes per pattern byte, where a DFA
                    // would spend a full transition table per state.
                    .kind(Some(AhoCorasickKind::ContiguousNFA))
                    .build(self.patterns())
                    // Only overflows fail, which MAX_KEYWORD_BYTES rules out.
                    .inspect_err(|e| log::error!("model-router: task keywords: {e}"))
                    .ok()
            })
            .as_ref()
    }

    /// Calls `hit` with the task index of every keyword found in `text`.
    pub fn scan(&self, text: &str, mut hit: impl FnMut(u32)) {
        let Some(automaton) = self.automaton() else {
            return;
        };
        let mut folded = self.fold.fold(text);
        if folded.is_none() && text.bytes().any(|b| b.is_ascii_uppercase()) {
            folded = Some(text.to_owned());
        }
        if let Some(folded) = folded.as_mut() {
            folded.make_ascii_lowercase();
        }
        let text = folded.as_deref().unwrap_or(text);
        for m in automaton.find_overlapping_iter(text) {
            if !is_edge(text, m.start(), m.end()) {
                continue;
            }
            if let Some(&task) = self.owners.get(m.pattern().as_usize()) {
                hit(task);
            }
        }
    }
}

/// Whether the occurrence `start..end` stands alone: no word character
/// just before or just after it.
fn is_edge(text: &str, start: usize, end: usize) -> bool {
    let before = text.get(..start).and_then(|s| s.chars().next_back());
    let after = text.get(end..).and_then(|s| s.chars().next());
    !before.is_some_and(is_word) && !after.is_some_and(is_word)
}

/// Unicode `\w`, as the regex engine reads it.
pub fn is_word(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric() || c == '_';
    }
    regex_syntax::try_is_word_character(c).unwrap_or(false)
}
