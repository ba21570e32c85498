//! The pre-tokenizer: splits text into the pieces OpenAI's regexes match,
//! without a regex engine.
//!
//! Each encoding's pattern is an alternation of short sequences of repeated
//! character classes. [`Pieces`] tries the alternatives in order at each
//! position with the same backtracking a Perl-style engine does (greedy or
//! possessive repeats, the one lookahead `(?!\S)`, `$` = end of text), so it
//! yields exactly the matches of fancy-regex's `find_iter`, which tiktoken
//! uses. Character classes come from [`Classes`]; the differential tests
//! compare the resulting counts with tiktoken-rs on adversarial strings.

use super::classes::{Classes, BLANK, LETTER, LOWER, NEWLINE, NUMBER, SLASH, SPACE, UPPER};

/// A set of characters: flags of which at least one must be set (`any`,
/// 0 = no requirement), and none of `none`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Set {
    any: u8,
    none: u8,
}

impl Set {
    const fn any(any: u8) -> Set {
        Set { any, none: 0 }
    }

    const fn none(none: u8) -> Set {
        Set { any: 0, none }
    }

    #[inline]
    fn contains(self, flags: u8) -> bool {
        (self.any == 0 || flags & self.any != 0) && flags & self.none == 0
    }
}

/// One element of an alternative.
#[derive(Debug, Clone, Copy)]
pub(super) enum Item {
    /// `set{min,max}`, greedy (backtracks) or possessive (never gives back).
    Repeat {
        set: Set,
        min: u32,
        max: u32,
        possessive: bool,
    },
    /// `'(?i:s|t|re|ve|m|ll|d)`, o200k's contraction suffix.
    Suffix { optional: bool },
    /// `'(?i:[sdmt]|ll|ve|re)`, cl100k's contraction.
    Contraction,
    /// `$`: the end of the text.
    End,
    /// `(?!\S)`: the end of the text or a whitespace character next.
    NotBeforeNonSpace,
}

const fn rep(set: Set, min: u32, max: u32) -> Item {
    Item::Repeat {
        set,
        min,
        max,
        possessive: false,
    }
}

const fn pos(set: Set, min: u32, max: u32) -> Item {
    Item::Repeat {
        set,
        min,
        max,
        possessive: true,
    }
}

const MANY: u32 = u32::MAX;
/// `[^\r\n\p{L}\p{N}]`
const NOT_NL_L_N: Set = Set::none(NEWLINE | LETTER | NUMBER);
/// `[^\s\p{L}\p{N}]`
const NOT_S_L_N: Set = Set::none(SPACE | LETTER | NUMBER);
const L: Set = Set::any(LETTER);
const N: Set = Set::any(NUMBER);
const S: Set = Set::any(SPACE);
const U: Set = Set::any(UPPER);
const W: Set = Set::any(LOWER);
const SP: Set = Set::any(BLANK);
const NL: Set = Set::any(NEWLINE);
const NL_SLASH: Set = Set::any(NEWLINE | SLASH);

/// An encoding's pattern: alternatives, tried in order, and how its words
/// split, for the ASCII fast path.
#[derive(Clone, Copy)]
pub(super) struct Pattern {
    alternatives: &'static [&'static [Item]],
    words: Words,
    /// What `[\r\n]*` after a run of symbols takes (o200k: `[\r\n/]*`).
    after_symbols: &'static [u8],
    /// cl100k: `\s++$` comes before the newline alternative, so white space
    /// that ends the text is one piece, newlines or not.
    trailing_spaces_whole: bool,
}

/// How the letters of an ASCII word group into a piece.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Words {
    /// cl100k: `\p{L}+`, whatever the case.
    Letters,
    /// o200k: upper case then lower case (`[A-Z]*[a-z]+` or `[A-Z]+`), then
    /// perhaps a contraction suffix.
    Cased,
}

/// cl100k_base: `'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+|
/// ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s`
pub(super) const CL100K: Pattern = Pattern {
    alternatives: CL100K_ALTERNATIVES,
    words: Words::Letters,
    after_symbols: b"\r\n",
    trailing_spaces_whole: true,
};

const CL100K_ALTERNATIVES: &[&[Item]] = &[
    &[Item::Contraction],
    &[pos(NOT_NL_L_N, 0, 1), pos(L, 1, MANY)],
    &[pos(N, 1, 3)],
    &[rep(SP, 0, 1), pos(NOT_S_L_N, 1, MANY), pos(NL, 0, MANY)],
    &[pos(S, 1, MANY), Item::End],
    &[rep(S, 0, MANY), rep(NL, 1, 1)],
    &[rep(S, 1, MANY), Item::NotBeforeNonSpace],
    &[rep(S, 1, 1)],
];

/// o200k_base: `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|
/// [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|
/// \p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`
pub(super) const O200K: Pattern = Pattern {
    alternatives: O200K_ALTERNATIVES,
    words: Words::Cased,
    after_symbols: b"\r\n/",
    trailing_spaces_whole: false,
};

const O200K_ALTERNATIVES: &[&[Item]] = &[
    &[
        rep(NOT_NL_L_N, 0, 1),
        rep(U, 0, MANY),
        rep(W, 1, MANY),
        Item::Suffix { optional: true },
    ],
    &[
        rep(NOT_NL_L_N, 0, 1),
        rep(U, 1, MANY),
        rep(W, 0, MANY),
        Item::Suffix { optional: true },
    ],
    &[rep(N, 1, 3)],
    &[
        rep(SP, 0, 1),
        rep(NOT_S_L_N, 1, MANY),
        rep(NL_SLASH, 0, MANY),
    ],
    &[rep(S, 0, MANY), rep(NL, 1, MANY)],
    &[rep(S, 1, MANY), Item::NotBeforeNonSpace],
    &[rep(S, 1, MANY)],
];

/// The pieces of a text, in order, as byte ranges.
pub(super) struct Pieces<'a> {
    text: &'a str,
    classes: &'a Classes,
    pattern: Pattern,
    at: usize,
}

impl<'a> Pieces<'a> {
    pub(super) fn new(text: &'a str, classes: &'a Classes, pattern: Pattern) -> Pieces<'a> {
        Pieces {
            text,
            classes,
            pattern,
            at: 0,
        }
    }
}

impl<'a> Iterator for Pieces<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let m = Matcher {
            text: self.text,
            classes: self.classes,
        };
        while self.at < self.text.len() {
            let start = self.at;
            if let Some(end) = self.ascii_piece(start).or_else(|| self.word(&m, start)) {
                self.at = end;
                return self.text.get(start..end);
            }
            let end = self
                .pattern
                .alternatives
                .iter()
                .find_map(|alt| m.sequence(alt, start).filter(|&end| end > start));
            match end {
                Some(end) => {
                    self.at = end;
                    return self.text.get(start..end);
                }
                // No alternative matches here (impossible for these patterns,
                // which cover every character): skip a character, as find_iter would.
                None => self.at = m.next_char(start).map_or(self.text.len(), |(_, e)| e),
            }
        }
        None
    }
}

impl Pieces<'_> {
    /// The piece at `start` when it is a plain ASCII word (with an optional
    /// leading space or punctuation) or ASCII digits, and the bytes around it
    /// settle where it ends: exactly what the full pattern would match,
    /// found without it. None means "not sure": the caller runs the pattern.
    #[inline]
    fn ascii_piece(&self, start: usize) -> Option<usize> {
        let bytes = self.text.as_bytes();
        let first = *bytes.get(start)?;
        if first.is_ascii_digit() {
            // `\p{N}{1,3}`: the other alternatives cannot start at a digit.
            let mut end = start.saturating_add(1);
            let most = start.saturating_add(3);
            while end < most && bytes.get(end).is_some_and(u8::is_ascii_digit) {
                end = end.saturating_add(1);
            }
            return match bytes.get(end) {
                Some(&next) if next >= 0x80 && end < most => None, // a non-ASCII digit may follow
                _ => Some(end),
            };
        }
        // `[^\r\n\p{L}\p{N}]?` then letters; an apostrophe could start a
        // contraction, so it is left to the pattern.
        let mut end = start;
        if first < 0x80 && !first.is_ascii_alphanumeric() && !matches!(first, b'\r' | b'\n' | b'\'')
        {
            end = end.saturating_add(1);
        }
        let letters = end;
        match self.pattern.words {
            Words::Letters => {
                while bytes.get(end).is_some_and(u8::is_ascii_alphabetic) {
                    end = end.saturating_add(1);
                }
            }
            Words::Cased => {
                while bytes.get(end).is_some_and(u8::is_ascii_uppercase) {
                    end = end.saturating_add(1);
                }
                while bytes.get(end).is_some_and(u8::is_ascii_lowercase) {
                    end = end.saturating_add(1);
                }
            }
        }
        if end == letters {
            return self
                .ascii_symbols(start, first)
                .or_else(|| self.ascii_spaces(start));
        }
        match bytes.get(end) {
            None => Some(end),
            // A non-ASCII letter or mark may continue the word.
            Some(&next) if next >= 0x80 => None,
            // o200k: the word takes an optional `'s`, `'ll`, ... and ends.
            Some(b'\'') if self.pattern.words == Words::Cased => {
                Some(suffix(self.text, end).unwrap_or(end))
            }
            Some(_) => Some(end),
        }
    }

    /// The piece at `start` when it is a word of any script after an
    /// optional ASCII prefix (` naïve`, `中文`, `(Ωmega`): the first
    /// alternatives of both patterns, read from the character classes
    /// without backtracking. None when no letter follows the prefix, when
    /// an apostrophe could start a cl100k contraction, or when the first
    /// character is non-ASCII and not a letter (a mark is both a possible
    /// prefix and part of o200k's words: the interpreter settles that).
    fn word(&self, m: &Matcher<'_>, start: usize) -> Option<usize> {
        let first = *self.text.as_bytes().get(start)?;
        let at = if first >= 0x80 {
            let (flags, _) = m.next_char(start)?;
            if flags & LETTER == 0 {
                return None;
            }
            start
        } else if first.is_ascii_alphanumeric() || matches!(first, b'\r' | b'\n' | b'\'') {
            start
        } else {
            start.saturating_add(1) // `[^\r\n\p{L}\p{N}]?`: taken whenever letters follow
        };
        match self.pattern.words {
            // `[^\r\n\p{L}\p{N}]?+\p{L}++`
            Words::Letters => {
                let end = m.run(at, LETTER);
                (end > at).then_some(end)
            }
            Words::Cased => cased_word(m, at).map(|end| suffix(self.text, end).unwrap_or(end)),
        }
    }

    /// The piece at `start` when it is ` ?[^\s\p{L}\p{N}]+` then `[\r\n]*`
    /// (o200k: `[\r\n/]*`) over ASCII: a run of punctuation, perhaps after
    /// one space, that no word alternative takes (the caller found no ASCII
    /// letter after the optional prefix). None means "not sure": an
    /// apostrophe may start a contraction, a non-ASCII character may be a
    /// letter after the prefix or continue the run.
    #[inline]
    fn ascii_symbols(&self, start: usize, first: u8) -> Option<usize> {
        let bytes = self.text.as_bytes();
        if first == b'\'' {
            return None;
        }
        let run = if first == b' ' {
            start.saturating_add(1)
        } else {
            start
        };
        let mut end = run;
        while let Some(&b) = bytes.get(end) {
            if b >= 0x80 || self.classes.of(char::from(b)) & (SPACE | LETTER | NUMBER) != 0 {
                break;
            }
            end = end.saturating_add(1);
        }
        if end == run || bytes.get(end).is_some_and(|&b| b >= 0x80) {
            return None;
        }
        while bytes
            .get(end)
            .is_some_and(|b| self.pattern.after_symbols.contains(b))
        {
            end = end.saturating_add(1);
        }
        Some(end)
    }

    /// The piece at `start` when it is ASCII white space and what follows
    /// it is ASCII too (or the end): the white-space alternatives, which
    /// both patterns share but for cl100k's `\s++$`. Up to the last newline
    /// of the run (`\s*[\r\n]+`); else all of it at the end of the text,
    /// all but its last character before a non-space (`\s+(?!\S)`: that one
    /// goes with the next piece), or the one character (`\s+`, `\s`).
    /// A single space or tab before a letter, or a space before a symbol,
    /// starts a word or symbol piece instead: "not sure".
    #[inline]
    fn ascii_spaces(&self, start: usize) -> Option<usize> {
        let bytes = self.text.as_bytes();
        let flags = |b: u8| self.classes.of(char::from(b));
        let mut end = start;
        let mut after_newline = None;
        while let Some(&b) = bytes.get(end) {
            if b >= 0x80 || flags(b) & SPACE == 0 {
                break;
            }
            end = end.saturating_add(1);
            if matches!(b, b'\r' | b'\n') {
                after_newline = Some(end);
            }
        }
        let single = end == start.saturating_add(1);
        match bytes.get(end) {
            _ if end == start => return None,
            // Non-ASCII white space may continue the run.
            Some(&next) if next >= 0x80 => return None,
            Some(&next) if single && after_newline.is_none() && flags(next) & SPACE == 0 => {
                let first = bytes.get(start).copied().unwrap_or(0);
                if flags(next) & LETTER != 0 || (first == b' ' && flags(next) & NUMBER == 0) {
                    return None;
                }
            }
            None if self.pattern.trailing_spaces_whole => return Some(end),
            _ => {}
        }
        Some(match (after_newline, bytes.get(end)) {
            (Some(newline), _) => newline,
            (None, None) => end,
            (None, Some(_)) if single => end,
            (None, Some(_)) => end.saturating_sub(1),
        })
    }
}

struct Matcher<'a> {
    text: &'a str,
    classes: &'a Classes,
}

impl Matcher<'_> {
    /// The character at byte `at`, its flags and where it ends.
    #[inline]
    fn next_char(&self, at: usize) -> Option<(u8, usize)> {
        let bytes = self.text.as_bytes();
        let first = *bytes.get(at)?;
        if first < 0x80 {
            return Some((self.classes.of(char::from(first)), at.saturating_add(1)));
        }
        let c = self.text.get(at..)?.chars().next()?;
        Some((self.classes.of(c), at.saturating_add(c.len_utf8())))
    }

    /// Where the run of characters with any of `flags` from `at` ends.
    #[inline]
    fn run(&self, mut at: usize, flags: u8) -> usize {
        while let Some((f, next)) = self.next_char(at) {
            if f & flags == 0 {
                break;
            }
            at = next;
        }
        at
    }

    /// The start of the character that ends at byte `at`.
    #[inline]
    fn prev_boundary(&self, at: usize) -> usize {
        let mut at = at.saturating_sub(1);
        while at > 0 && !self.text.is_char_boundary(at) {
            at = at.saturating_sub(1);
        }
        at
    }

    /// Where `items` matching at `at` ends (the first success in backtracking order).
    fn sequence(&self, items: &[Item], at: usize) -> Option<usize> {
        let Some((item, rest)) = items.split_first() else {
            return Some(at);
        };
        match *item {
            Item::Repeat {
                set,
                min,
                max,
                possessive,
            } => {
                let mut end = at;
                let mut n = 0u32;
                while n < max {
                    match self.next_char(end) {
                        Some((flags, next)) if set.contains(flags) => {
                            end = next;
                            n = n.saturating_add(1);
                        }
                        _ => break,
                    }
                }
                if n < min {
                    return None;
                }
                loop {
                    if let Some(done) = self.sequence(rest, end) {
                        return Some(done);
                    }
                    if possessive || n == min {
                        return None;
                    }
                    end = self.prev_boundary(end);
                    n = n.saturating_sub(1);
                }
            }
            Item::Suffix { optional } => match suffix(self.text, at) {
                Some(end) => self.sequence(rest, end),
                None if optional => self.sequence(rest, at),
                None => None,
            },
            Item::Contraction => suffix(self.text, at).and_then(|end| self.sequence(rest, end)),
            Item::End => (at == self.text.len()).then_some(at),
            Item::NotBeforeNonSpace => match self.next_char(at) {
                Some((flags, _)) if flags & SPACE == 0 => None,
                _ => self.sequence(rest, at),
            },
        }
    }
}

/// Where o200k's word alternatives, after their prefix, end at `at`
/// (before the optional contraction): `U*W+` first, else `U+W*`, with
/// U = `[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]` and W = `[\p{Ll}\p{Lm}\p{Lo}\p{M}]`.
/// A backtracking engine gives `U*` back one character at a time until `W+`
/// can start, so `U*W+` ends after the W run that starts right after the
/// U run, or else after the last U character that is also a W (the run
/// that starts there is that one character: a W after it would also be a
/// U and a later candidate). With no W at all, `U+W*` is the U run.
fn cased_word(m: &Matcher<'_>, at: usize) -> Option<usize> {
    let mut end = at;
    let mut last_upper_lower = None;
    while let Some((flags, next)) = m.next_char(end) {
        if flags & UPPER == 0 {
            break;
        }
        if flags & LOWER != 0 {
            last_upper_lower = Some(next);
        }
        end = next;
    }
    match m.next_char(end) {
        Some((flags, _)) if flags & LOWER != 0 => Some(m.run(end, LOWER)),
        _ => match last_upper_lower {
            Some(after) => Some(after),
            None => (end > at).then_some(end),
        },
    }
}

/// A contraction at `at`: `'` then (case-insensitively, with Unicode simple
/// case folding: `ſ` is an `s`) o200k's `s|t|re|ve|m|ll|d`, or cl100k's
/// `[sdmt]|ll|ve|re` (the same set, so one matcher serves both).
fn suffix(text: &str, at: usize) -> Option<usize> {
    let rest = text.get(at..)?;
    let mut chars = rest.strip_prefix('\'')?.chars();
    let fold = |c: char| match c {
        'ſ' => 's',
        c => c.to_ascii_lowercase(),
    };
    let first = fold(chars.next()?);
    let one = at.saturating_add(1).saturating_add(first_len(rest));
    match first {
        's' | 't' | 'm' | 'd' => Some(one),
        'r' | 'v' if chars.next().map(fold) == Some('e') => Some(one.saturating_add(1)),
        'l' if chars.next().map(fold) == Some('l') => Some(one.saturating_add(1)),
        _ => None,
    }
}

/// Byte length of the character after the apostrophe at the start of `rest`.
fn first_len(rest: &str) -> usize {
    rest.get(1..)
        .and_then(|r| r.chars().next())
        .map_or(0, char::len_utf8)
}
