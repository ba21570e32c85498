//! Unicode simple case folding, reduced to the characters a policy's
//! keywords use.
//!
//! Keywords used to be a `(?i)` regex alternation, under which a character
//! matches every character of its simple case-folding orbit (`k`, `K` and
//! KELVIN SIGN; `σ`, `Σ` and `ς`; not `İ` for `i`, which only folds fully).
//! The multi-pattern matcher keeps exactly that by mapping each character
//! to one representative of its orbit (the least one) in the keywords and
//! in the scanned text alike. ASCII is left to lower-casing both (see
//! `keywords`; an orbit's ASCII members are exactly a letter's two
//! cases, and an orbit with an ASCII member has it as its least member), so
//! this table holds only the non-ASCII members of orbits that keywords use.

use regex_syntax::hir::{ClassUnicode, ClassUnicodeRange};

/// Non-ASCII character → least member of its orbit, sorted by character,
/// for the orbits of the keywords' characters.
#[derive(Debug, Clone, Default)]
pub struct CaseFold {
    map: Vec<(char, char)>,
}

/// Every character `c` matches under `(?i)`, `c` included, in order.
pub fn orbit(c: char) -> Vec<char> {
    let mut class = ClassUnicode::new([ClassUnicodeRange::new(c, c)]);
    // Only fails without regex-syntax's `unicode-case` feature, which
    // Cargo.toml enables; the orbit is then `c` alone, as the regex
    // engine would have refused `(?i)` outright.
    if class.try_case_fold_simple().is_err() {
        return vec![c];
    }
    class
        .ranges()
        .iter()
        .flat_map(|r| r.start()..=r.end())
        .collect()
}

impl CaseFold {
    /// The table for the orbits of every character of `texts`.
    pub fn for_texts<'a>(texts: impl IntoIterator<Item = &'a str>) -> CaseFold {
        let mut map = Vec::new();
        // Each distinct character once (thousands of keywords share few):
        // ASCII letters in a bitmap, the rest in a set.
        let mut ascii = [false; 128];
        let mut other = std::collections::BTreeSet::new();
        for text in texts {
            for b in text.bytes().filter(u8::is_ascii_alphabetic) {
                if let Some(seen) = ascii.get_mut(usize::from(b)) {
                    *seen = true;
                }
            }
            if !text.is_ascii() {
                other.extend(text.chars().filter(|c| !c.is_ascii()));
            }
        }
        let letters = (0u8..128).filter(|&b| ascii.get(usize::from(b)) == Some(&true));
        for c in letters.map(char::from).chain(other) {
            let members = orbit(c);
            let Some(&least) = members.first() else {
                continue;
            };
            map.extend(
                members
                    .iter()
                    .filter(|m| !m.is_ascii() && **m != least)
                    .map(|&m| (m, least)),
            );
        }
        map.sort_unstable();
        map.dedup();
        CaseFold { map }
    }

    /// `c`'s representative: the least member of its orbit for non-ASCII
    /// characters of the table, else `c` itself.
    pub fn fold_char(&self, c: char) -> char {
        if c.is_ascii() {
            return c;
        }
        match self.map.binary_search_by_key(&c, |&(from, _)| from) {
            Ok(i) => self.map.get(i).map_or(c, |&(_, to)| to),
            Err(_) => c,
        }
    }

    /// `text` with every character folded, or None when folding changes
    /// nothing (the common case: no non-ASCII character of the table).
    pub fn fold(&self, text: &str) -> Option<String> {
        if self.map.is_empty() || text.is_ascii() {
            return None;
        }
        let mut chars = text.char_indices();
        let first = chars.find(|&(_, c)| self.fold_char(c) != c)?.0;
        let mut out = String::with_capacity(text.len());
        out.push_str(text.get(..first).unwrap_or_default());
        out.extend(
            text.get(first..)
                .unwrap_or_default()
                .chars()
                .map(|c| self.fold_char(c)),
        );
        Some(out)
    }
}
