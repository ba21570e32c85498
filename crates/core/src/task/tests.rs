use super::fold::{orbit, CaseFold};
use super::keywords::is_word;
use super::*;
use crate::request::RequestFacts;

fn matcher(tasks: &[(&[&str], &[&str], Scan)]) -> TaskMatcher {
    let owned: Vec<(Vec<String>, Vec<String>, Scan)> = tasks
        .iter()
        .map(|(k, p, s)| {
            (
                k.iter().map(|s| s.to_string()).collect(),
                p.iter().map(|s| s.to_string()).collect(),
                *s,
            )
        })
        .collect();
    let sources: Vec<TaskSource<'_>> = owned
        .iter()
        .map(|(keywords, patterns, scan)| TaskSource {
            keywords,
            patterns: patterns
                .iter()
                .map(|p| regex_syntax::Parser::new().parse(p).unwrap())
                .collect(),
            scan: *scan,
        })
        .collect();
    TaskMatcher::new(&sources, 1 << 24).unwrap()
}

fn facts(body: &str) -> RequestFacts {
    crate::request::parse("/v1/chat/completions", body.as_bytes()).unwrap()
}

fn user(text: &str) -> RequestFacts {
    let body = serde_json::json!({"messages": [{"role": "user", "content": text}]});
    facts(&body.to_string())
}

fn hit(m: &TaskMatcher, text: &str) -> Option<usize> {
    m.first_match(&user(text)).map(|t| t.0)
}

#[test]
fn keywords_match_whole_words_case_insensitively() {
    let m = matcher(&[(&["rust", "c++"], &[], Scan::LastUser)]);
    for (text, want) in [
        ("Write RUST code", true),
        ("trusted", false),
        ("in C++ please", true),
        ("c++", true),
        ("c+", false),
        ("rust_lang", false),
        ("rust-lang", true),
        ("(rust)", true),
        ("rust2", false),
        ("épée rust", true),
        ("érust", false),
    ] {
        assert_eq!(hit(&m, text).is_some(), want, "{text}");
    }
}

#[test]
fn case_folding_is_unicode_simple_folding() {
    let m = matcher(&[(&["key", "σοφία", "straße"], &[], Scan::LastUser)]);
    for (text, want) in [
        ("\u{212A}EY", true), // KELVIN SIGN folds to k
        ("ΣΟΦΊΑ", true),
        ("σοφίας", false),
        ("ςοφία", true),         // final sigma is in σ's orbit
        ("STRASSE", false),      // ß folds to ß (simple folding), not to "ss"
        ("STRA\u{1E9E}E", true), // capital sharp s
    ] {
        assert_eq!(hit(&m, text).is_some(), want, "{text}");
    }
}

#[test]
fn overlapping_keywords_are_each_tried() {
    // "rust" fails its edge inside "rustacean"; the longer keyword still matches.
    let m = matcher(&[(&["rust", "rustacean"], &[], Scan::LastUser)]);
    assert_eq!(hit(&m, "hello rustacean!"), Some(0));
    let m = matcher(&[
        (&["ab"], &[], Scan::LastUser),
        (&["abc"], &[], Scan::LastUser),
    ]);
    assert_eq!(hit(&m, "abc"), Some(1));
    assert_eq!(hit(&m, "ab abc"), Some(0));
}

#[test]
fn the_first_task_in_policy_order_wins() {
    let m = matcher(&[
        (&["alpha"], &[], Scan::LastUser),
        (&[], &["be+ta"], Scan::LastUser),
        (&["gamma", "beta"], &[], Scan::LastUser),
    ]);
    assert_eq!(hit(&m, "gamma beeta alpha"), Some(0));
    assert_eq!(hit(&m, "gamma beeta"), Some(1));
    assert_eq!(hit(&m, "gamma"), Some(2));
    assert_eq!(
        hit(&m, "beta"),
        Some(1),
        "the pattern of task 1 also matches"
    );
    assert_eq!(hit(&m, "delta"), None);
}

#[test]
fn one_keyword_in_several_tasks() {
    let m = matcher(&[
        (&["shared"], &[], Scan::System),
        (&["SHARED"], &[], Scan::LastUser),
    ]);
    assert_eq!(
        hit(&m, "shared"),
        Some(1),
        "task 0 reads only the system prompt"
    );
    let m = matcher(&[
        (&["same"], &[], Scan::System),
        (&["same"], &[], Scan::System),
        (&["same", "same"], &[], Scan::LastUser),
    ]);
    assert_eq!(
        hit(&m, "same"),
        Some(2),
        "an identical keyword reports every task"
    );
}

#[test]
fn scan_scopes() {
    let body = r#"{"messages":[
        {"role":"system","content":"you review rust"},
        {"role":"user","content":"rust question"},
        {"role":"assistant","content":"ok"},
        {"role":"user","content":"thanks"}]}"#;
    let f = facts(body);
    let one = |k: &str, scan| matcher(&[(&[k], &[], scan)]).first_match(&f).is_some();
    assert!(!one("rust", Scan::LastUser));
    assert!(one("rust", Scan::AllUser));
    assert!(one("review", Scan::System));
    assert!(!one("review", Scan::AllUser));
    assert!(one("ok", Scan::All));
    let pattern = |p: &str, scan| matcher(&[(&[], &[p], scan)]).first_match(&f).is_some();
    assert!(!pattern("qu.stion", Scan::LastUser));
    assert!(pattern("qu.stion", Scan::AllUser));
    assert!(pattern("^ok$", Scan::All));
}

#[test]
fn no_tasks_no_match() {
    assert_eq!(hit(&matcher(&[]), "anything"), None);
}

/// The folding table's premises, for every Unicode scalar value: each
/// orbit is an equivalence class (every member has the same orbit), an
/// orbit's ASCII members are one letter's two cases, an orbit with an
/// ASCII member has it first, and `\w` holds for all members or none.
#[test]
fn simple_case_folding_orbits_are_classes_that_keep_word_characters() {
    for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
        let members = orbit(c);
        if members.len() == 1 {
            continue;
        }
        for &m in &members {
            assert_eq!(orbit(m), members, "orbit of {m:?} vs {c:?}");
            assert_eq!(is_word(m), is_word(c), "\\w of {m:?} vs {c:?}");
        }
        let ascii: Vec<char> = members.iter().copied().filter(char::is_ascii).collect();
        if let Some(&a) = ascii.first() {
            assert_eq!(members[0], a, "{c:?}");
            assert_eq!(
                ascii,
                vec![a.to_ascii_uppercase(), a.to_ascii_lowercase()],
                "{c:?}"
            );
        }
    }
}

#[test]
fn folding_copies_only_texts_it_changes() {
    let fold = CaseFold::for_texts(["key", "σ"]);
    assert_eq!(fold.fold("plain ascii"), None);
    assert_eq!(fold.fold("naïve"), None, "ï is in no keyword's orbit");
    assert_eq!(fold.fold("\u{212A}ey ς").as_deref(), Some("Key Σ"));
}

#[test]
fn keywords_written_in_upper_case_match_any_case() {
    // Keywords and texts are both lower-cased (ASCII) before the automaton.
    let m = matcher(&[(&["GraphQL", "\u{212A}EY"], &[], Scan::LastUser)]);
    for (text, want) in [
        ("a graphql query", true),
        ("a GRAPHQL query", true),
        ("GraphQLs", false),
        ("key", true),
        ("\u{212A}ey", true),
    ] {
        assert_eq!(hit(&m, text).is_some(), want, "{text}");
    }
}

#[test]
fn the_keyword_automaton_is_built_on_first_use_or_by_prepare() {
    let lazy = matcher(&[(&["rust"], &["^fn "], Scan::LastUser)]);
    let prepared = matcher(&[(&["rust"], &["^fn "], Scan::LastUser)]);
    prepared.prepare();
    prepared.prepare(); // idempotent
    for text in ["rust", "fn main", "nothing"] {
        assert_eq!(hit(&lazy, text), hit(&prepared, text), "{text}");
    }
    assert_eq!(hit(&lazy, "RUST"), Some(0));
    // A clone searches with caches of its own.
    assert_eq!(hit(&lazy.clone(), "fn x"), Some(0));
}
