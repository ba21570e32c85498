use super::*;

#[test]
fn counts_known_strings() {
    // Reference values from OpenAI's tiktoken.
    assert_eq!(count(Encoding::O200kBase, "hello world").unwrap(), 2);
    assert_eq!(count(Encoding::Cl100kBase, "hello world").unwrap(), 2);
    assert_eq!(count(Encoding::O200kBase, "").unwrap(), 0);
    assert_eq!(
        count(Encoding::Cl100kBase, "tiktoken is great!").unwrap(),
        6
    );
}

#[test]
fn special_tokens_are_ordinary_text() {
    assert!(count(Encoding::O200kBase, "<|endoftext|>").unwrap() > 1);
}

#[test]
fn names_round_trip() {
    for e in Encoding::ALL {
        assert_eq!(Encoding::from_name(e.name()), Some(e));
    }
    assert_eq!(Encoding::from_name("p50k_base"), None);
}

// ---- Differential tests against tiktoken-rs (the reference) ----

use proptest::prelude::*;
use std::sync::OnceLock;

fn reference(encoding: Encoding) -> &'static tiktoken_rs::CoreBPE {
    static O: OnceLock<tiktoken_rs::CoreBPE> = OnceLock::new();
    static C: OnceLock<tiktoken_rs::CoreBPE> = OnceLock::new();
    match encoding {
        Encoding::O200kBase => O.get_or_init(|| tiktoken_rs::o200k_base().unwrap()),
        Encoding::Cl100kBase => C.get_or_init(|| tiktoken_rs::cl100k_base().unwrap()),
    }
}

/// OpenAI's pre-tokenizer regexes, as tiktoken-rs compiles them.
fn regex(encoding: Encoding) -> &'static fancy_regex::Regex {
    static O: OnceLock<fancy_regex::Regex> = OnceLock::new();
    static C: OnceLock<fancy_regex::Regex> = OnceLock::new();
    match encoding {
        Encoding::O200kBase => O.get_or_init(|| {
            fancy_regex::Regex::new(concat!(
                r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
                "|",
                r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
                "|",
                r"\p{N}{1,3}",
                "|",
                r" ?[^\s\p{L}\p{N}]+[\r\n/]*",
                "|",
                r"\s*[\r\n]+",
                "|",
                r"\s+(?!\S)",
                "|",
                r"\s+",
            ))
            .unwrap()
        }),
        Encoding::Cl100kBase => C.get_or_init(|| {
            fancy_regex::Regex::new(r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s")
                .unwrap()
        }),
    }
}

fn assert_same(text: &str) {
    for e in Encoding::ALL {
        let expected: Vec<&str> = regex(e)
            .find_iter(text)
            .map(|m| m.unwrap().as_str())
            .collect();
        let pieces: Vec<&str> =
            Pieces::new(text, tokenizer(e).unwrap().classes, e.pattern()).collect();
        assert_eq!(pieces, expected, "{e} pieces of {text:?}");
        let expected_ids: Vec<u32> = reference(e).encode_ordinary(text);
        assert_eq!(
            count(e, text).unwrap(),
            expected_ids.len(),
            "{e} on {text:?}"
        );
        let mut ids = Vec::new();
        let counted = visit_ids(e, text, |id| ids.push(id)).unwrap();
        assert_eq!(ids, expected_ids, "{e} token ids of {text:?}");
        // The pass that yields the ids is also the count (classifiers share it).
        assert_eq!(
            counted,
            expected_ids.len(),
            "{e} count from the ids of {text:?}"
        );
    }
}

/// Characters at the edges of the pre-tokenizer's classes.
const TRICKY: &[char] = &[
    'a',
    'z',
    'A',
    'Z',
    's',
    'S',
    't',
    'T',
    'l',
    'L',
    'r',
    'e',
    'v',
    'm',
    'd',
    'D',
    'ſ', // long s: case-folds to s in (?i)'s
    'K', // Kelvin sign (folds to k)
    '\'',
    '’',
    ' ',
    ' ',
    ' ',
    '\t',
    '\n',
    '\r',
    '\u{b}',
    '\u{c}',
    '\u{85}', // NEL: \s, not \r\n
    '\u{a0}', // no-break space
    '\u{2028}',
    '\u{3000}',
    '\u{200b}', // line separator, ideographic space, zero-width space (not \s)
    '0',
    '9',
    '٣',
    '²',
    '½',
    'Ⅻ',
    '〇', // Nd, No, Nl
    '\u{301}',
    '\u{93f}',
    '\u{20dd}', // Mn, Mc, Me
    'ǅ',        // Lt
    'ʰ',
    'ー', // Lm
    'א',
    '中',
    'ก', // Lo
    'É',
    'Ω',
    'ß',
    'ω', // Lu / Ll beyond ASCII
    '!',
    '.',
    ',',
    '/',
    '\\',
    '-',
    '_',
    '"',
    '(',
    '<',
    '|',
    '>',
    '#',
    '$',
    '😀',
    '👍',
    '\u{1f3fb}',
    '\u{200d}',
    '\u{fe0f}',
    '🇫',
    '\u{10ffff}',
    '\u{e000}',
    '\u{7f}',
    '\u{0}',
];

fn tricky_string(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            8 => prop::sample::select(TRICKY),
            1 => any::<char>(),
        ],
        0..max,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn counts_equal_tiktoken_on_adversarial_strings(text in tricky_string(40)) {
        assert_same(&text);
    }

    #[test]
    fn counts_equal_tiktoken_on_arbitrary_strings(text in any::<String>()) {
        assert_same(&text);
    }

    #[test]
    fn counts_equal_tiktoken_on_repeated_runs(
        unit in tricky_string(4),
        times in 1usize..80,
        tail in tricky_string(6),
    ) {
        // Long runs of one class make pieces of 100+ bytes: tiktoken's heap merge.
        assert_same(&format!("{}{tail}", unit.repeat(times)));
    }

    #[test]
    fn count_up_to_is_the_count_capped(text in tricky_string(60), limit in 0usize..40) {
        for e in Encoding::ALL {
            let full = count(e, &text).unwrap();
            prop_assert_eq!(count_up_to(e, &text, limit).unwrap(), full.min(limit));
        }
    }
}

#[test]
fn counts_equal_tiktoken_on_known_hard_cases() {
    for text in [
        "'s 'S 'ſ 'll 'LL 'Ll 've 're 'd 'm 't 'x",
        "don't I'M we'VE they'Re she'ſ",
        "ÀÉÎ'S ǅa ʰʰʰ'll",
        "   leading and trailing   ",
        "a  \n\n  b \r\n\t c\u{85}\u{a0} d   ",
        "  \n",
        "x \u{3000}\u{3000}y",
        "1234567 ١٢٣٤ ½²³ ⅫⅫ",
        "http://example.com/a/b?c=d&e=f\n//\n/\r\n/",
        "!!!???...\n\n\r\r\n",
        "\u{301}\u{301}a\u{301}B\u{301}",
        "👍🏻👨‍👩‍👧‍👦🇫🇷",
        "<|endoftext|><|fim_prefix|>",
        "",
        " ",
        "\n",
        // The ASCII fast path's edges: what follows a word or digits.
        "12٣ 123٣ 1²",
        "abcé ABCé abc\u{301} ABC\u{301} aBc",
        "hello's HELLO's x' 'x (hello \thello ab12 12ab",
        "helloWorld HELLOworld a-b_c.d",
        // Its runs of ASCII symbols and o200k's contractions after a word.
        "a, b; c - d. (e) {f} [g] x=1 y+=2 -> z => w",
        "..a .\n/x a.\r\n/\n/b !?\r\r\n\n/ ./\t/ -\u{2014} -é (“x”) \t- \t-a",
        " -é - é ' '' 'a -'s x '' a ' b",
        "it's IT'S it'S It'Ll it'sx it'ſ it'x it'\u{301} don't we've I'm they'd",
        // Its white-space runs: newlines, before a word, a digit, a symbol, the end.
        "a  b a \tb a\t\tb x\n\n  y x \n \n z \t1 \t- 1 \r\n\r\nq\u{b}\u{c} x\t\u{a0}y  \u{3000}",
        "def f():\n    return 1\n\n\n    \n",
        "x  \n",
        "x \n  ",
        "   ",
        // Words of any script after an optional ASCII prefix.
        " naïve résumé données 中文 測試 переводы über (Ωmega ΩΩω ǅa ǅǅ ʰʰʰ ーa aー Aー",
        "a\u{301}b \u{301}a x\u{93f}y É'S É's ſ'ſ 'ΩΩ -中 “quoted” —dash",
    ] {
        assert_same(text);
    }
    // Pieces long enough for tiktoken's heap merge.
    assert_same(&"a".repeat(1000));
    assert_same(&"ab".repeat(333));
    assert_same(&"😀".repeat(200));
    assert_same(&"!@#$%^&*()".repeat(40));
    assert_same(&format!("{}\n", " ".repeat(500)));
    assert_same(&"0123456789".repeat(100));
}

#[test]
fn counts_equal_tiktoken_on_the_parity_corpus() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/token_parity/corpus"
    );
    let mut files = vec![std::path::PathBuf::from(dir)];
    let mut seen = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if let Ok(text) = std::fs::read_to_string(&path) {
            assert_same(&text);
            for line in text.lines() {
                assert_same(line);
            }
            seen += 1;
        }
    }
    assert!(seen > 0);
}

#[test]
fn classes_agree_with_the_regex_crate_on_every_code_point() {
    use super::classes::*;
    let classes = Classes::build().unwrap();
    let checks: Vec<(u8, regex::Regex)> = [
        (LETTER, r"^\p{L}$"),
        (NUMBER, r"^\p{N}$"),
        (SPACE, r"^\s$"),
        (UPPER, r"^[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]$"),
        (LOWER, r"^[\p{Ll}\p{Lm}\p{Lo}\p{M}]$"),
        (BLANK, r"^ $"),
        (NEWLINE, r"^[\r\n]$"),
        (SLASH, r"^/$"),
    ]
    .into_iter()
    .map(|(flag, re)| (flag, regex::Regex::new(re).unwrap()))
    .collect();
    let mut buf = [0u8; 4];
    for c in (0..=0x10ffffu32).filter_map(char::from_u32) {
        let s = c.encode_utf8(&mut buf);
        let flags = classes.of(c);
        for (flag, re) in &checks {
            assert_eq!(flags & flag != 0, re.is_match(s), "{c:?} flag {flag}");
        }
    }
}

#[test]
fn tables_hold_every_token_once() {
    for e in Encoding::ALL {
        let t = table::Table::load(e.name(), e.asset(), Encoding::O200kBase.asset()).unwrap();
        let n = t.len();
        assert_eq!(
            t.len(),
            if e == Encoding::O200kBase {
                199_998
            } else {
                100_256
            }
        );
        for rank in 0..n as u32 {
            assert_eq!(
                t.rank(t.token(rank).unwrap()),
                Some(rank),
                "{e} rank {rank}"
            );
        }
    }
}

// ---- The piece cache serves the merge's ids ----

fn ids_of(e: Encoding, text: &str) -> Vec<u32> {
    let mut ids = Vec::new();
    let n = visit_ids(e, text, |id| ids.push(id)).unwrap();
    assert_eq!(n, ids.len());
    ids
}

/// `bpe::visit_piece` on every piece: the cache turned off.
fn uncached_ids(e: Encoding, text: &str) -> Vec<u32> {
    cache::set_enabled(false);
    let ids = ids_of(e, text);
    cache::set_enabled(true);
    ids
}

/// Words that fight over one cache slot (each evicts the others), pieces of
/// more tokens than a slot holds ids for, and common words.
fn cache_words() -> &'static [String] {
    static WORDS: OnceLock<Vec<String>> = OnceLock::new();
    WORDS.get_or_init(|| {
        let target = cache::slot_of(b" the");
        let mut words: Vec<String> = (0u32..)
            .map(|mut i| {
                let mut w = String::from(" ");
                loop {
                    w.push(char::from(b'a' + (i % 26) as u8));
                    i /= 26;
                    if i == 0 {
                        break w;
                    }
                }
            })
            .filter(|w| cache::slot_of(w.as_bytes()) == target)
            .take(6)
            .collect();
        words.push(" the".into());
        // Over MAX_IDS tokens in at most MAX_PIECE bytes (checked below).
        for w in [" qzxjvkwqzxjvkw", " !@#$%^&*()_+", "😀👍🇫🇷🇫", " ΩΩΩΩΩΩΩΩΩΩ"]
        {
            words.push(w.into());
        }
        for w in [
            " a", " of", " model", " router", ".", "\n", " 12", "3", " don't",
        ] {
            words.push(w.into());
        }
        words
    })
}

fn assert_cached_ids_are_the_merges(text: &str) {
    for e in Encoding::ALL {
        let want = uncached_ids(e, text);
        assert_eq!(ids_of(e, text), want, "{e} ids of {text:?}, first pass");
        assert_eq!(ids_of(e, text), want, "{e} ids of {text:?}, warm");
        // The counting pass fills the slots the id pass then reads.
        cache::set_enabled(false);
        let uncached_count = count(e, text).unwrap();
        cache::set_enabled(true);
        assert_eq!(
            count(e, text).unwrap(),
            uncached_count,
            "{e} count of {text:?}"
        );
        assert_eq!(uncached_count, want.len(), "{e} count of {text:?}");
        assert_eq!(ids_of(e, text), want, "{e} ids of {text:?}, after counting");
    }
}

#[test]
fn cache_words_collide_and_overflow_a_slot() {
    let words = cache_words();
    let slot = cache::slot_of(b" the");
    assert_eq!(
        words
            .iter()
            .filter(|w| cache::slot_of(w.as_bytes()) == slot)
            .count(),
        7
    );
    for e in Encoding::ALL {
        let long = words
            .iter()
            .filter(|w| w.len() <= cache::MAX_PIECE)
            .filter(|w| {
                let pieces: Vec<&str> =
                    Pieces::new(w, tokenizer(e).unwrap().classes, e.pattern()).collect();
                pieces.len() == 1 && count(e, w).unwrap() > cache::MAX_IDS
            })
            .count();
        assert!(long >= 2, "{e}: {long} one-piece words of > MAX_IDS tokens");
    }
}

#[test]
fn cached_ids_are_the_merges_when_pieces_evict_each_other() {
    let words = cache_words();
    // Every order of pairs of words, twice: hits, evictions and re-merges.
    let mut text = String::new();
    for a in words {
        for b in words {
            text.push_str(a);
            text.push_str(b);
        }
    }
    let before = cache::stats(Encoding::O200kBase);
    assert_cached_ids_are_the_merges(&text);
    let after = cache::stats(Encoding::O200kBase);
    // Not vacuous: the cache served ids, and merged evicted and long pieces.
    assert!(
        after.id_hits > before.id_hits + 100,
        "{before:?} → {after:?}"
    );
    assert!(
        after.id_misses > before.id_misses + 100,
        "{before:?} → {after:?}"
    );
    assert_cached_ids_are_the_merges(&"ab".repeat(400));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn cached_ids_are_the_merges_on_colliding_words(
        picks in prop::collection::vec(prop::sample::select(cache_words()), 0..80),
    ) {
        assert_cached_ids_are_the_merges(&picks.concat());
    }

    #[test]
    fn ids_of_pieces_first_counted_are_the_merges(
        picks in prop::collection::vec(prop::sample::select(cache_words()), 0..80),
        text in tricky_string(30),
    ) {
        // The counting pass fills the slots first (one-token pieces with their
        // id, longer ones with their count only); the id pass then reads them.
        let text = format!("{}{text}", picks.concat());
        for e in Encoding::ALL {
            let want = uncached_ids(e, &text);
            prop_assert_eq!(count(e, &text).unwrap(), want.len());
            prop_assert_eq!(ids_of(e, &text), want.clone());
            prop_assert_eq!(ids_of(e, &text), want);
        }
    }

    #[test]
    fn cached_ids_are_the_merges_on_adversarial_strings(text in tricky_string(60)) {
        assert_cached_ids_are_the_merges(&text);
    }

    #[test]
    fn cached_ids_are_the_merges_on_arbitrary_strings(text in any::<String>()) {
        assert_cached_ids_are_the_merges(&text);
    }
}
