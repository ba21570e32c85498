//! A large policy for scale tests and benchmarks: the example policy plus
//! `n` generated tasks of 20 keywords and one regex each, appended after
//! its own tasks, and `n` rules, one per generated task, appended after its
//! own rules. `scripts/bench` (figure 7) generates the same shape in Python.

use serde_json::{json, Value};

pub const EXAMPLE_POLICY: &str = include_str!("../../examples/policy.json");

/// Words the generated keywords are made of: product-area vocabulary that
/// the benchmark prompts do not contain, so every task is tried.
const WORDS: [&str; 20] = [
    "invoice",
    "shipment",
    "warranty",
    "onboarding",
    "payroll",
    "roaming",
    "mortgage",
    "claim",
    "itinerary",
    "prescription",
    "tariff",
    "lease",
    "subscription",
    "voucher",
    "dispatch",
    "compliance",
    "firmware",
    "calibration",
    "reservation",
    "escrow",
];

pub fn scale_policy(n: usize) -> String {
    let mut policy: Value = serde_json::from_str(EXAMPLE_POLICY).unwrap();
    let tasks = policy["tasks"].as_object_mut().unwrap();
    for i in 0..n {
        // Half one-word keywords, half two-word phrases.
        let keywords: Vec<String> = WORDS
            .iter()
            .enumerate()
            .map(|(j, w)| {
                if j % 2 == 0 {
                    format!("{w}{i}")
                } else {
                    format!("{w} area{i}")
                }
            })
            .collect();
        tasks.insert(
            format!("gen-{i}"),
            json!({"keywords": keywords, "patterns": [format!("(?i)ticket[ -]#?{i}-[0-9]{{4,}}")]}),
        );
    }
    let rules = policy["rules"].as_array_mut().unwrap();
    for i in 0..n {
        rules.push(json!({
            "name": format!("gen-{i}"),
            "when": {"all": [{"task": format!("gen-{i}")}, {"prompt_tokens": {"lt": 50000}}]},
            "target": ["gpt-4o-mini", "gpt-4o"],
        }));
    }
    policy.to_string()
}

/// A chat body of about 1 KB (the words of `scripts/bench`'s prose), which
/// matches no task of the example policy or of the generated ones.
pub fn chat_body_1k() -> String {
    const PROSE: &str = "the router sends each request to a model whose price and context window fit \
        prompt tokens budget of Envoy worker latency p99 fallback cluster streaming response, while \
        cost estimates use exact counts. fn main() { let x = 42; } 2024-05-01 JSON schema résumé \
        naïve données über переводы 中文 測試 don't it's";
    let mut text = String::new();
    while text.len() < 900 {
        text.push_str(PROSE);
        text.push(' ');
    }
    json!({"model": "auto", "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": text}]})
    .to_string()
}
