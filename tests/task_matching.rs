//! Task detection and rule selection at scale decide exactly as the simple
//! evaluation they replace: random policies (keywords with Unicode case
//! variants, punctuation edges and overlaps; patterns; every scan scope;
//! rules gated by tasks or not) and random conversations, compared with
//! an oracle that is the router's previous matcher — one case-insensitive
//! whole-word regex per task plus its patterns, tried task by task over
//! the texts of its scope — and with rules tried one by one in order.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use model_router_core::decision::{decide, DecidedBy, Request};
use model_router_core::headers::Headers;
use model_router_core::policy::{Policy, Scan, TaskId};
use model_router_core::request::{self, ApiShape, RequestFacts, Role};
use model_router_core::signals::Signals;
use proptest::prelude::*;
use regex::Regex;
use serde_json::{json, Value};

/// The previous matcher, kept here as the reference.
struct OracleTask {
    detectors: Vec<Regex>,
    scan: Scan,
}

impl OracleTask {
    fn new(keywords: &[String], patterns: &[String], scan: Scan) -> OracleTask {
        let mut detectors = Vec::new();
        if !keywords.is_empty() {
            let alternation: Vec<String> = keywords.iter().map(|k| regex::escape(k)).collect();
            detectors.push(
                Regex::new(&format!(
                    r"(?i)(?:^|[^\w])(?:{})(?:[^\w]|$)",
                    alternation.join("|")
                ))
                .unwrap(),
            );
        }
        detectors.extend(patterns.iter().map(|p| Regex::new(p).unwrap()));
        OracleTask { detectors, scan }
    }

    fn matches(&self, facts: &RequestFacts) -> bool {
        let last_user = facts.last_user_message();
        facts
            .content
            .iter()
            .filter(|segment| match self.scan {
                Scan::LastUser => Some(segment.message) == last_user && segment.role == Role::User,
                Scan::AllUser => segment.role == Role::User,
                Scan::System => matches!(segment.role, Role::System | Role::Developer),
                Scan::All => true,
            })
            .any(|segment| self.detectors.iter().any(|d| d.is_match(&segment.text)))
    }
}

/// Pieces of keywords and texts chosen to collide: case variants under
/// simple folding (KELVIN SIGN, σ/ς/Σ, ß/ẞ, ǅ, ſ), characters that only
/// fold fully (İ), word and non-word neighbours, multi-word keywords.
const PIECES: &[&str] = &[
    "ab", "AB", "aB", "b", "k", "K", "\u{212A}", "s", "\u{17F}", "σ", "ς", "Σ", "ß", "\u{1E9E}",
    "ǅ", "ǆ", "Ǆ", "i", "İ", "ı", "é", "É", "c++", ".net", "+", ".", "_", "-", "1", "a b", "ab ",
];
const GAPS: &[&str] = &["", " ", "  ", "\n", "-", "_", "é", "1", ",", "(", ")", "ü"];
const PATTERNS: &[&str] = &[
    "a+b", "(?i)σ", "^ab", "b$", r"\d", r"\bab\b", "(?i)k.k", "ß|ẞ", "c\\+\\+", "(?m)^b",
];
const SCANS: &[(Scan, &str)] = &[
    (Scan::LastUser, "last_user"),
    (Scan::AllUser, "all_user"),
    (Scan::System, "system"),
    (Scan::All, "all"),
];
const ROLES: &[&str] = &["system", "developer", "user", "assistant", "tool"];

fn keyword() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 1..4)
        .prop_map(|p| p.concat())
        .prop_filter("keywords are not blank", |k| !k.trim().is_empty())
}

fn task() -> impl Strategy<Value = (Vec<String>, Vec<String>, usize)> {
    (
        prop::collection::vec(keyword(), 0..4),
        prop::collection::vec(prop::sample::select(PATTERNS).prop_map(String::from), 0..2),
        0..SCANS.len(),
    )
        .prop_filter("a task needs a detector", |(k, p, _)| {
            !k.is_empty() || !p.is_empty()
        })
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (prop::sample::select(GAPS), prop::sample::select(PIECES)),
        0..8,
    )
    .prop_map(|parts| parts.into_iter().flat_map(|(g, p)| [g, p]).collect())
}

fn conversation() -> impl Strategy<Value = Vec<(usize, String)>> {
    prop::collection::vec((0..ROLES.len(), text()), 1..5)
}

/// A rule condition over tasks, with and without a task first.
fn condition(tasks: usize) -> impl Strategy<Value = Value> {
    let name = move |i: usize| format!("t{}", i % tasks);
    prop_oneof![
        (0..tasks).prop_map(move |i| json!({"task": name(i)})),
        prop::collection::vec(0..tasks, 1..3).prop_map(
            move |v| json!({"task": {"in": v.into_iter().map(name).collect::<Vec<_>>()}})
        ),
        ((0..tasks), 1u64..4)
            .prop_map(move |(i, n)| json!({"all": [{"task": name(i)}, {"messages": {"gte": n}}]})),
        ((0..tasks), 0u64..30).prop_map(
            move |(i, n)| json!({"all": [{"task": name(i)}, {"prompt_tokens": {"gt": n}}]})
        ),
        ((0..tasks), 1u64..4)
            .prop_map(move |(i, n)| json!({"all": [{"messages": {"gte": n}}, {"task": name(i)}]})),
        (0..tasks).prop_map(move |i| json!({"not": {"task": name(i)}})),
        (0..tasks).prop_map(move |i| json!({"any": [{"task": name(i)}, {"stream": true}]})),
        Just(json!({"header": {"name": "x-r", "present": true}})),
    ]
}

fn policy_json(tasks: &[(Vec<String>, Vec<String>, usize)], rules: &[Value]) -> String {
    let tasks: Vec<Value> = tasks
        .iter()
        .enumerate()
        .map(|(i, (k, p, s))| json!({"name": format!("t{i}"), "keywords": k, "patterns": p, "scan": SCANS[*s].1}))
        .collect();
    let rules: Vec<Value> = rules
        .iter()
        .enumerate()
        .map(|(i, when)| json!({"name": format!("r{i}"), "when": when, "target": "m"}))
        .collect();
    json!({
        "models": {"m": {"cluster": "c", "context_window": 1_000_000}},
        "tasks": tasks,
        "rules": rules,
        "default": "m",
    })
    .to_string()
}

fn body(conversation: &[(usize, String)]) -> String {
    let messages: Vec<Value> = conversation
        .iter()
        .map(|(r, text)| json!({"role": ROLES[*r], "content": text}))
        .collect();
    json!({"model": "auto", "messages": messages}).to_string()
}

const PATH: &str = "/v1/chat/completions";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn the_detected_task_is_the_first_the_oracle_matches(
        tasks in prop::collection::vec(task(), 1..7),
        conversation in conversation(),
    ) {
        let policy = Policy::from_json(&policy_json(&tasks, &[])).unwrap();
        let oracle: Vec<OracleTask> = tasks
            .iter()
            .map(|(k, p, s)| OracleTask::new(k, p, SCANS[*s].0))
            .collect();
        let body = body(&conversation);
        let facts = request::parse(PATH, body.as_bytes()).unwrap();
        let headers = Headers::new();
        let got = policy.detect_task(&facts, &headers);
        let want = oracle.iter().position(|t| t.matches(&facts)).map(TaskId);
        prop_assert_eq!(got, want, "policy tasks {:?}, body {}", tasks, body);
    }

    #[test]
    fn the_deciding_rule_is_the_first_whose_condition_holds(
        (tasks, conditions) in prop::collection::vec(task(), 1..5).prop_flat_map(|tasks| {
            let n = tasks.len();
            (Just(tasks), prop::collection::vec(condition(n), 0..12))
        }),
        conversation in conversation(),
        header in any::<bool>(),
    ) {
        let policy = Policy::from_json(&policy_json(&tasks, &conditions)).unwrap();
        let body = body(&conversation);
        let headers = if header { Headers::from_pairs(&[("x-r", "1")]) } else { Headers::new() };
        let facts = request::parse(PATH, body.as_bytes()).unwrap();
        let task = policy.detect_task(&facts, &headers);
        let mut signals = Signals::new(policy.counting(), task, &facts, PATH, &headers);
        let mut want = DecidedBy::Default;
        for (i, rule) in policy.rules.iter().enumerate() {
            if rule.when.holds(&mut signals).unwrap() {
                want = DecidedBy::Rule(i);
                break;
            }
        }
        let decision = decide(&policy, &Request { shape: ApiShape::ChatCompletions, path: PATH, headers: &headers, body: body.as_bytes() });
        prop_assert_eq!(decision.decided_by, want, "rules {:?}, body {}", conditions, body);
        prop_assert_eq!(decision.task, signals.task);
    }
}
