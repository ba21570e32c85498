//! Memory and decisions of large policies (the example policy plus N
//! generated tasks × 20 keywords + 1 regex, and N rules): the native heap a
//! compiled policy holds, counted by a global allocator, after a first
//! decision has warmed its search caches. The heap must stay within 10 MB
//! above the example policy's at N = 1,000 (each Envoy worker holds one
//! copy per VM). `cargo test --release --test policy_scale -- --nocapture`
//! prints the figures of the README's numbers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "support/scale_policy.rs"]
mod scale_policy;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use model_router_core::decision::{decide, DecidedBy, Request};
use model_router_core::headers::Headers;
use model_router_core::policy::Policy;
use model_router_core::request::ApiShape;
use scale_policy::{chat_body_1k, scale_policy, EXAMPLE_POLICY};

/// Live heap bytes, and the most seen since the last reset.
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        unsafe { System.dealloc(p, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

struct Figures {
    policy_bytes: usize,
    /// After `prepare` (the task keyword automaton), as the routing filter
    /// does at configure time.
    prepared_bytes: usize,
    /// Peak over compiling and preparing: what a VM's memory grows to.
    compile_peak: usize,
    compile_ms: f64,
    after_decision: usize,
    decision_peak: usize,
}

/// Compiles `json`, decides one 1 KB request, and measures.
fn measure(json: &str) -> (Policy, Figures) {
    let body = chat_body_1k();
    let headers = Headers::new();
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let t0 = Instant::now();
    let policy = Policy::from_json(json).unwrap();
    let policy_bytes = LIVE.load(Ordering::Relaxed) - base;
    policy.prepare();
    let compile_ms = t0.elapsed().as_secs_f64() * 1e3;
    let prepared_bytes = LIVE.load(Ordering::Relaxed) - base;
    let compile_peak = PEAK.load(Ordering::Relaxed) - base;
    let request = Request {
        shape: ApiShape::ChatCompletions,
        path: "/v1/chat/completions",
        headers: &headers,
        body: body.as_bytes(),
    };
    let decision = decide(&policy, &request);
    assert_eq!(
        decision.decided_by,
        DecidedBy::Default,
        "the prompt matches no task"
    );
    assert_eq!(decision.task, None);
    let after = LIVE.load(Ordering::Relaxed);
    PEAK.store(after, Ordering::Relaxed);
    let _ = decide(&policy, &request);
    let decision_peak = PEAK.load(Ordering::Relaxed) - after;
    let after_decision = after - base;
    (
        policy,
        Figures {
            policy_bytes,
            prepared_bytes,
            compile_peak,
            compile_ms,
            after_decision,
            decision_peak,
        },
    )
}

const MB: f64 = 1024.0 * 1024.0;

/// One test: the allocator's counts are process-wide.
#[test]
fn a_large_policy_holds_little_memory_and_finds_every_task() {
    // Warm-up: the tokenizer tables load once per process (VM), whatever
    // the policy; they are not the policy's memory.
    let _ = measure(EXAMPLE_POLICY);
    let (_, example) = measure(EXAMPLE_POLICY);
    eprintln!("| tasks / rules | heap after compile | after prepare (task automaton) | after a first decision | peak while compiling and preparing | compile + prepare (debug or release, loaded machine) | one decision's extra peak |");
    eprintln!("|---|---|---|---|---|---|---|");
    let row = |label: &str, f: &Figures| {
        eprintln!(
            "| {label} | {:.2} MB | {:.2} MB | {:.2} MB | {:.2} MB | {:.1} ms | {:.0} KB |",
            f.policy_bytes as f64 / MB,
            f.prepared_bytes as f64 / MB,
            f.after_decision as f64 / MB,
            f.compile_peak as f64 / MB,
            f.compile_ms,
            f.decision_peak as f64 / 1024.0
        )
    };
    row("example (4 / 4)", &example);
    let mut last = None;
    for n in [10, 100, 1000] {
        let json = scale_policy(n);
        let (policy, figures) = measure(&json);
        row(&format!("+{n} / +{n}"), &figures);
        last = Some((policy, figures));
    }
    for (label, keep) in [("keywords only", "keywords"), ("patterns only", "patterns")] {
        let mut p: serde_json::Value = serde_json::from_str(&scale_policy(1000)).unwrap();
        for (_, t) in p["tasks"].as_object_mut().unwrap().iter_mut() {
            let drop = if keep == "keywords" {
                "patterns"
            } else {
                "keywords"
            };
            if t.get(keep).is_some() {
                t.as_object_mut().unwrap().remove(drop);
            }
        }
        row(
            &format!("+1000 / +1000, {label}"),
            &measure(&p.to_string()).1,
        );
    }
    let (policy, at_1000) = last.unwrap();
    let above = at_1000
        .after_decision
        .saturating_sub(example.after_decision);
    assert!(
        above as f64 <= 10.0 * MB,
        "1,000 tasks hold {:.1} MB above the example policy",
        above as f64 / MB
    );
    // A VM's linear memory never shrinks: its compile peak is what it keeps.
    let peak_above = at_1000.compile_peak.saturating_sub(example.compile_peak);
    assert!(
        peak_above as f64 <= 10.0 * MB,
        "compiling 1,000 tasks peaks {:.1} MB above the example policy",
        peak_above as f64 / MB
    );

    // Every generated task is found, by keyword and by pattern, and
    // decided by its own rule (the rule index finds it among 1,004 rules).
    let headers = Headers::new();
    for i in [0usize, 1, 499, 998, 999] {
        for text in [
            format!("question about invoice{i} please"),
            format!("Question about SHIPMENT AREA{i}."),
            format!("see ticket #{i}-12345"),
        ] {
            let body = serde_json::json!({"model": "auto", "messages": [{"role": "user", "content": text}]})
                .to_string();
            let decision = decide(
                &policy,
                &Request {
                    shape: ApiShape::ChatCompletions,
                    path: "/v1/chat/completions",
                    headers: &headers,
                    body: body.as_bytes(),
                },
            );
            let task = decision.task.map(|t| policy.tasks[t.0].name.clone());
            assert_eq!(task.as_deref(), Some(format!("gen-{i}").as_str()), "{text}");
            let DecidedBy::Rule(r) = decision.decided_by else {
                panic!("{text}: decided by {:?}", decision.decided_by);
            };
            assert_eq!(policy.rules[r].name, format!("gen-{i}"), "{text}");
        }
    }
}
