//! Memory a classifier adds to a VM: wasm linear memory never shrinks, so
//! what counts is the peak while the policy compiles, plus the policy text
//! the VM holds meanwhile (the plugin configuration). A counting allocator
//! measures it deterministically, with and without the classifier.
//!
//! `MODEL_ROUTER_ARTIFACT=classifier.json cargo test -p model-router-core
//! --test classifier_memory -- --nocapture` also measures a real artifact
//! (the README's figure is for the MMLU one).

// A test binary: a failed step is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use model_router_core::policy::Policy;

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
            PEAK.fetch_max(now, Ordering::SeqCst);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes a VM holds at the peak of compiling `text`: the text itself plus
/// the most allocated at once while compiling (the policy is kept).
fn peak_of(text: &str) -> usize {
    let base = CURRENT.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let policy = Policy::from_json(text).unwrap();
    let peak = PEAK.load(Ordering::SeqCst) - base;
    drop(policy);
    text.len() + peak
}

fn policy(classifier: Option<&str>) -> String {
    let models = r#""models": {
        "mixtral": {"cluster": "local", "context_window": 32000},
        "gpt-4": {"cluster": "openai", "context_window": 128000}}"#;
    match classifier {
        Some(artifact) => format!(
            r#"{{{models}, "classifiers": {{"difficulty": {{"inline": {artifact}}}}},
            "rules": [{{"name": "hard", "when": {{"score": {{"classifier": "difficulty", "gt": 0.5}}}}, "target": "gpt-4"}}],
            "default": "mixtral"}}"#
        ),
        None => format!(
            r#"{{{models},
            "rules": [{{"name": "long", "when": {{"prompt_tokens": {{"gt": 100000}}}}, "target": "gpt-4"}}],
            "default": "mixtral"}}"#
        ),
    }
}

/// An artifact shaped like the MMLU one: 2^16 buckets, 65,215 non-zero
/// weights of four decimals, in ascending bucket order (as `train` writes).
fn mmlu_like_artifact() -> String {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut tokens = Vec::new();
    for bucket in 0..1u32 << 16 {
        let r = next();
        if r % 1000 < 995 {
            let w = ((r >> 20) % 10_000) as f32 / 1e4 - 0.5;
            tokens.push(format!("[{bucket},{w}]"));
        }
    }
    let dense = |v: f64| format!("[{v},{v},{v},{v},{v}]");
    let quantiles: Vec<String> = (0..=100)
        .map(|i| format!("{}", f64::from(i) / 100.0))
        .collect();
    format!(
        r#"{{"format": "model-router-classifier", "version": 1,
"features": {{"encoding": "o200k_base", "scan": "all", "hash_bits": 16, "bigrams": true, "max_tokens": 512}},"weights": {{"bias": -0.5, "dense": {}, "dense_mean": {}, "dense_std": {}, "tokens": [{}]}},"calibration": {{"method": "platt", "a": 1.0, "b": 0.0}},"score_quantiles": [{}]}}"#,
        dense(0.1),
        dense(0.5),
        dense(1.0),
        tokens.join(","),
        quantiles.join(",")
    )
}

/// (bytes the classifier adds, of which beyond its policy text).
fn report(label: &str, artifact: &str) -> (usize, usize) {
    let without = peak_of(&policy(None));
    let with_text = policy(Some(artifact));
    let with = peak_of(&with_text);
    let added = with - without;
    let beyond = with - with_text.len();
    println!(
        "{label}: policy text {} bytes; peak with the classifier {with} bytes (text included; {beyond} beyond it), without {without}; added {added} bytes ({:.2} MiB)",
        with_text.len(),
        added as f64 / f64::from(1 << 20)
    );
    (added, beyond)
}

#[test]
fn a_classifier_adds_at_most_2_mib_per_vm() {
    let mut added = vec![(
        "MMLU-like artifact".to_string(),
        report("MMLU-like artifact", &mmlu_like_artifact()),
    )];
    if let Ok(path) = std::env::var("MODEL_ROUTER_ARTIFACT") {
        let text = std::fs::read_to_string(&path).unwrap();
        added.push((path.clone(), report(&path, &text)));
    }
    for (label, (bytes, beyond)) in added {
        assert!(bytes <= 2 << 20, "{label}: {bytes} bytes");
        // Beyond the text, the 2^16-weight table (256 KiB) and little else:
        // no copy of the artifact text, no list of pairs next to the table.
        assert!(
            beyond <= 512 << 10,
            "{label}: {beyond} bytes beyond the text"
        );
    }
}
