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

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

use super::fold::CaseFold;

#[derive(Debug, Clone)]
pub struct Keywords {
    automaton: AhoCorasick,
    fold: CaseFold,
    /// Task of each automaton pattern.
    owners: Vec<u32>,
}

impl Keywords {
    /// `keywords`: (task index, keyword) in any order. None when empty.
    pub fn new<'a>(
        keywords: impl Iterator<Item = (u32, &'a str)> + Clone,
    ) -> Result<Option<Keywords>, aho_corasick::BuildError> {
        let fold = CaseFold::for_texts(keywords.clone().map(|(_, k)| k));
        // One automaton pattern per keyword, duplicates included: the
        // automaton reports every pattern of an occurrence.
        let (patterns, owners): (Vec<String>, Vec<u32>) = keywords
            .map(|(task, k)| (fold_keyword(&fold, k), task))
            .unzip();
        if patterns.is_empty() {
            return Ok(None);
        }
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .ascii_case_insensitive(true)
            // The contiguous NFA: a few bytes per pattern byte, where a DFA
            // would spend a full transition table per state.
            .kind(Some(AhoCorasickKind::ContiguousNFA))
            .build(&patterns)?;
        Ok(Some(Keywords {
            automaton,
            fold,
            owners,
        }))
    }

    /// Calls `hit` with the task index of every keyword found in `text`.
    pub fn scan(&self, text: &str, mut hit: impl FnMut(u32)) {
        let folded = self.fold.fold(text);
        let text = folded.as_deref().unwrap_or(text);
        for m in self.automaton.find_overlapping_iter(text) {
            if !is_edge(text, m.start(), m.end()) {
                continue;
            }
            if let Some(&task) = self.owners.get(m.pattern().as_usize()) {
                hit(task);
            }
        }
    }
}

/// The keyword as the automaton holds it: non-ASCII characters folded to
/// their orbit's representative (ASCII case is the automaton's business).
fn fold_keyword(fold: &CaseFold, keyword: &str) -> String {
    keyword.chars().map(|c| fold.fold_char(c)).collect()
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
