//! Compiling artifacts, scoring, and `score` conditions in decisions.

use super::artifact::*;
use super::*;
use crate::decision::{decide, decide_with, Decision, Request};
use crate::headers::Headers;
use crate::policy::Policy;
use crate::request::ApiShape;
use crate::task::Scan;
use proptest::prelude::*;

/// An artifact whose only signal is the token " hard": its bucket has a
/// large weight, everything else is zero.
pub(crate) fn toy_artifact() -> Artifact {
    let extractor = Extractor {
        encoding: Encoding::O200kBase,
        scan: Scan::All,
        hash_bits: 12,
        bigrams: true,
        max_tokens: 512,
        tasks: vec![],
        profile: false,
    };
    let facts = crate::request::parse(
        "/v1/chat/completions",
        br#"{"messages":[{"role":"user","content":"hard"}]}"#,
    )
    .unwrap();
    let mut dense = [0.0; 5];
    let mut hard = Vec::new();
    extractor
        .visit(&facts, None, &mut dense, |b| hard.push(b))
        .unwrap();
    Artifact {
        format: FORMAT.into(),
        version: VERSION,
        features: FeatureSpec {
            encoding: "o200k_base".into(),
            scan: Scan::All,
            hash_bits: 12,
            bigrams: true,
            max_tokens: 512,
            tasks: vec![],
            profile: false,
        },
        weights: Weights {
            bias: -1.0,
            dense: vec![0.0; 5],
            dense_mean: vec![0.0; 5],
            dense_std: vec![1.0; 5],
            tokens: TokenWeights::from_pairs([(hard[0], 4.0)]),
        },
        calibration: Calibration {
            method: CalibrationMethod::Platt,
            a: 1.0,
            b: 0.0,
        },
        score_quantiles: (0..=100).map(|i| f64::from(i) / 100.0).collect(),
        training: serde_json::json!({}),
        metrics: serde_json::json!({}),
    }
}

fn policy(condition: serde_json::Value) -> Policy {
    let json = serde_json::json!({
        "models": {"weak": {"cluster": "w", "context_window": 8000},
                   "strong": {"cluster": "s", "context_window": 8000}},
        "classifiers": {"difficulty": {"inline": toy_artifact(), "window": 100}},
        "rules": [{"name": "hard", "when": {"score": condition}, "target": "strong"}],
        "default": "weak",
    });
    Policy::from_json(&json.to_string()).unwrap()
}

fn route(policy: &Policy, text: &str) -> (String, Vec<(ClassifierId, f64)>) {
    let body = serde_json::json!({"messages": [{"role": "user", "content": text}]}).to_string();
    let d = decide(
        policy,
        &Request {
            shape: ApiShape::ChatCompletions,
            path: "/v1/chat/completions",
            headers: &Headers::new(),
            body: body.as_bytes(),
        },
    );
    let model = policy.model(d.chain()[0]).unwrap().name.clone();
    (model, d.scores)
}

#[test]
fn a_fixed_threshold_sends_high_scores_to_the_strong_model() {
    let p = policy(serde_json::json!({"classifier": "difficulty", "gt": 0.5}));
    let (model, scores) = route(&p, "hard");
    assert_eq!(model, "strong");
    // z = -1 + 4 / sqrt(1): sigmoid(3).
    assert!((scores[0].1 - sigmoid(3.0)).abs() < 1e-9, "{scores:?}");
    let (model, scores) = route(&p, "easy");
    assert_eq!(model, "weak");
    assert!(scores[0].1 < 0.5);
    assert_eq!(p.windowed, vec![false]);
}

#[test]
fn top_share_uses_the_window_and_defaults_to_the_training_distribution() {
    let p = policy(serde_json::json!({"classifier": "difficulty", "top_share": 0.3}));
    assert_eq!(p.windowed, vec![true]);
    // Training quantiles are uniform: the threshold is 0.7.
    let (model, _) = route(&p, "hard"); // 0.95 > 0.7
    assert_eq!(model, "strong");
    // A window where every recent score was 0.99: nothing is in the top 30%.
    let mut windows = LocalWindows::new(&p.classifiers);
    for _ in 0..100 {
        windows.windows[0].push(0.99);
    }
    let body = br#"{"messages":[{"role":"user","content":"hard"}]}"#;
    let d = decide_with(
        &p,
        &Request {
            shape: ApiShape::ChatCompletions,
            path: "/v1/chat/completions",
            headers: &Headers::new(),
            body,
        },
        &windows,
    );
    assert_eq!(p.model(d.chain()[0]).unwrap().name, "weak");
}

#[test]
fn policies_with_bad_classifiers_are_refused_with_the_path() {
    let base = |classifiers: serde_json::Value, when: serde_json::Value| {
        let json = serde_json::json!({
            "models": {"weak": {"cluster": "w", "context_window": 8000}},
            "classifiers": classifiers,
            "rules": [{"name": "r", "when": when, "target": "weak"}],
            "default": "weak",
        });
        Policy::from_json(&json.to_string())
            .unwrap_err()
            .to_string()
    };
    let ok = serde_json::json!({"c": {"inline": toy_artifact()}});
    let e = base(
        ok.clone(),
        serde_json::json!({"score": {"classifier": "x", "gt": 0.5}}),
    );
    assert!(
        e.starts_with("rules[0].when.score.classifier: unknown classifier"),
        "{e}"
    );
    let e = base(
        ok.clone(),
        serde_json::json!({"score": {"classifier": "c", "gt": 1.5}}),
    );
    assert!(
        e.starts_with("rules[0].when.score.gt: must be between 0 and 1"),
        "{e}"
    );
    let e = base(
        ok.clone(),
        serde_json::json!({"score": {"classifier": "c", "gt": 0.5, "top_share": 0.2}}),
    );
    assert!(e.contains("set exactly one of gt, lt or top_share"), "{e}");
    let e = base(
        serde_json::json!({"c": {"artifact": "model.json"}}),
        serde_json::json!({"score": {"classifier": "c", "gt": 0.5}}),
    );
    assert!(
        e.starts_with("classifiers.c.artifact: \"model.json\": the filter cannot read files"),
        "{e}"
    );
    let mut bad = toy_artifact();
    bad.version = 99;
    let e = base(
        serde_json::json!({"c": {"inline": bad}}),
        serde_json::json!({"score": {"classifier": "c", "gt": 0.5}}),
    );
    assert!(
        e.starts_with("classifiers.c.inline.version: artifact version 99"),
        "{e}"
    );
    let mut bad = toy_artifact();
    bad.weights.tokens.push(1 << 12, 1.0);
    let e = base(
        serde_json::json!({"c": {"inline": bad}}),
        serde_json::json!({"score": {"classifier": "c", "gt": 0.5}}),
    );
    assert!(
        e.starts_with("classifiers.c.inline.weights.tokens[1]"),
        "{e}"
    );
    // A bucket no table can have is refused without being stored.
    let mut json = serde_json::to_value(toy_artifact()).unwrap();
    json["weights"]["tokens"] = serde_json::json!([[1, 0.5], [2, 0.5], [1u32 << 20, 1.0]]);
    let e = base(
        serde_json::json!({"c": {"inline": json}}),
        serde_json::json!({"score": {"classifier": "c", "gt": 0.5}}),
    );
    assert!(
        e.starts_with("classifiers.c.inline.weights.tokens[2]: bucket out of range"),
        "{e}"
    );
    // Parsed in place, an artifact that is not one still names its path.
    let mut json = serde_json::to_value(toy_artifact()).unwrap();
    json.as_object_mut().unwrap().remove("weights");
    let e = base(
        serde_json::json!({"c": {"inline": json}}),
        serde_json::json!({"score": {"classifier": "c", "gt": 0.5}}),
    );
    assert!(
        e.starts_with("classifiers.c.inline: not a classifier artifact: missing field `weights`"),
        "{e}"
    );
}

#[test]
fn token_weights_are_read_straight_into_the_table() {
    let text = r#"[[5, 0.25], [4095, -1.5], [5, 0.5], [7, 0.0]]"#;
    let t: TokenWeights = serde_json::from_str(text).unwrap();
    // The pairs as `train` writes them: ascending, non-zero, the last of a bucket.
    assert_eq!(t.pairs().collect::<Vec<_>>(), vec![(5, 0.5), (4095, -1.5)]);
    assert_eq!(serde_json::to_string(&t).unwrap(), "[[5,0.5],[4095,-1.5]]");
    let table = t.clone().into_table(1 << 12).unwrap();
    assert_eq!(table.len(), 1 << 12);
    assert_eq!((table[5], table[4095], table[6]), (0.5, -1.5, 0.0));
    // Too small a table for its largest bucket: the entry's index.
    assert_eq!(t.into_table(1 << 11), Err(1));
    let wide: TokenWeights = serde_json::from_str("[[1048575, 1.0]]").unwrap();
    assert_eq!(wide.into_table(1 << 20).unwrap()[(1 << 20) - 1], 1.0);
}

#[test]
fn the_digest_is_that_of_the_listed_weights() {
    // FNV-1a over bias, [bucket, weight] as listed, dense, quantiles and
    // calibration: the shared window's name (it must not change with how
    // the weights are stored).
    let a = toy_artifact();
    let mut h = 0xcbf2_9ce4_8422_2325_u64;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(&a.weights.bias.to_le_bytes());
    let listed = serde_json::to_value(&a.weights.tokens).unwrap();
    for pair in listed.as_array().unwrap() {
        eat(&(pair[0].as_u64().unwrap() as u32).to_le_bytes());
        eat(&(pair[1].as_f64().unwrap() as f32).to_le_bytes());
    }
    for v in a.weights.dense.iter().chain(&a.score_quantiles) {
        eat(&v.to_le_bytes());
    }
    eat(&a.calibration.a.to_le_bytes());
    eat(&a.calibration.b.to_le_bytes());
    assert_eq!(Classifier::from_artifact("c", a, 100).unwrap().digest, h);
}

#[test]
fn artifacts_round_trip_through_json() {
    let a = toy_artifact();
    let text = serde_json::to_string(&a).unwrap();
    let back: Artifact = serde_json::from_str(&text).unwrap();
    assert_eq!(back, a);
}

/// A classifier over `scan` with weights on many buckets, so every token
/// feature moves the score.
fn dense_artifact(scan: Scan, max_tokens: usize) -> Artifact {
    let mut a = toy_artifact();
    a.features.scan = scan;
    a.features.max_tokens = max_tokens;
    a.weights.tokens = (0..1u32 << 12)
        .map(|b| (b, ((b % 17) as f32 - 8.0) / 8.0))
        .collect();
    a.weights.dense = vec![0.3, -0.2, 0.1, 0.0, 0.05];
    a.weights.dense_mean = vec![3.0, 1.0, 0.0, 0.0, 0.0];
    a
}

const CHAT: &str = r#"{"messages":[
    {"role":"system","content":"You are a careful assistant. Answer briefly."},
    {"role":"user","content":"Which statement about the nephron is correct? 42 apples"},
    {"role":"assistant","content":"The loop of Henle concentrates urine."},
    {"role":"user","content":"And the glomerulus, in 3 words?"}],
    "tools":[{"type":"function","function":{"name":"lookup","parameters":{"type":"object"}}}]}"#;

#[test]
fn the_counting_pass_reads_the_same_features_as_a_pass_of_their_own() {
    let facts = crate::request::parse("/v1/chat/completions", CHAT.as_bytes()).unwrap();
    for (scan, profile) in [Scan::LastUser, Scan::AllUser, Scan::System, Scan::All]
        .into_iter()
        .flat_map(|s| [(s, false), (s, true)])
    {
        for max_tokens in [1, 5, 12, 4096] {
            let mut a = dense_artifact(scan, max_tokens);
            if profile {
                a.features.profile = true;
                a.weights.dense.extend([0.5, -0.4, 0.3, 2.0, -1.5, 0.7]);
                a.weights.dense_mean.extend([0.1; 6]);
                a.weights.dense_std.extend([0.5; 6]);
            }
            let c = Classifier::from_artifact("c", a.clone(), 100).unwrap();
            let mut scoring = c.scoring(&facts);
            let n = facts
                .text_tokens_visiting(Encoding::O200kBase, &mut scoring)
                .unwrap();
            assert_eq!(n, facts.text_tokens(Encoding::O200kBase).unwrap());
            let fused = scoring.finish(Some("code"));
            let own = c.linear(&facts, Some("code")).unwrap();
            assert!(
                (fused - own).abs() < 1e-12,
                "{scan:?} profile {profile} max_tokens {max_tokens}: {fused} vs {own}"
            );
        }
    }
}

#[test]
fn scores_from_the_piece_cache_are_bit_identical_to_scores_merged_afresh() {
    // Repeated words hit the cache; the one-off ones miss it.
    let body = serde_json::json!({"messages": [
        {"role": "system", "content": "You are a careful assistant. ".repeat(5)},
        {"role": "user", "content": format!(
            "{} qzxjvkwqzx ΩΩΩΩΩΩ 😀👍 1234567 {}",
            "the nephron, the glomerulus and the loop of Henle ".repeat(8),
            "the collecting duct".repeat(3)
        )}
    ]})
    .to_string();
    let facts = crate::request::parse("/v1/chat/completions", body.as_bytes()).unwrap();
    let fused = |c: &Classifier| {
        let mut scoring = c.scoring(&facts);
        facts
            .text_tokens_visiting(Encoding::O200kBase, &mut scoring)
            .unwrap();
        scoring.finish(None)
    };
    for scan in [Scan::LastUser, Scan::All] {
        let c = Classifier::from_artifact("c", dense_artifact(scan, 4096), 100).unwrap();
        crate::tokens::cache::set_enabled(false);
        let (fresh, fresh_own) = (fused(&c), c.linear(&facts, None).unwrap());
        crate::tokens::cache::set_enabled(true);
        for pass in 0..3 {
            assert_eq!(fused(&c).to_bits(), fresh.to_bits(), "{scan:?} pass {pass}");
            let own = c.linear(&facts, None).unwrap();
            assert_eq!(own.to_bits(), fresh_own.to_bits(), "{scan:?} pass {pass}");
        }
    }
    let stats = crate::tokens::cache::stats(Encoding::O200kBase);
    assert!(stats.id_hits > 0 && stats.id_misses > 0, "{stats:?}");
}

fn decide_counting_passes(policy: &Policy, body: &str) -> (Decision, usize) {
    crate::tokens::preload(Encoding::O200kBase).unwrap();
    crate::tokens::PASSES.with(|p| p.set(0));
    let d = decide(
        policy,
        &Request {
            shape: ApiShape::ChatCompletions,
            path: "/v1/chat/completions",
            headers: &Headers::new(),
            body: body.as_bytes(),
        },
    );
    (d, crate::tokens::PASSES.with(std::cell::Cell::get))
}

#[test]
fn a_decision_with_a_classifier_tokenizes_each_text_once() {
    let facts = crate::request::parse("/v1/chat/completions", CHAT.as_bytes()).unwrap();
    let texts = facts.content.len() + facts.counted_only.len();
    let policy_with = |first: serde_json::Value, counting: &str| {
        let json = serde_json::json!({
            "models": {"weak": {"cluster": "w", "context_window": 8000},
                       "strong": {"cluster": "s", "context_window": 8000}},
            "classifiers": {"difficulty": {"inline": dense_artifact(Scan::AllUser, 4096)}},
            "token_counting": counting,
            "rules": [{"name": "first", "when": first, "target": "strong"},
                      {"name": "hard", "when": {"score": {"classifier": "difficulty", "gt": 0.99}}, "target": "strong"}],
            "default": "weak",
        });
        Policy::from_json(&json.to_string()).unwrap()
    };
    let expected = Classifier::from_artifact("c", dense_artifact(Scan::AllUser, 4096), 100)
        .unwrap()
        .score(&facts, None)
        .unwrap();
    // Score first (then the count every request takes), or count first
    // (a prompt_tokens rule) then score: one pass over each text either way.
    for first in [
        serde_json::json!({"header": {"name": "x-never", "equals": "1"}}),
        serde_json::json!({"prompt_tokens": {"gt": 5000}}),
    ] {
        let (d, passes) = decide_counting_passes(&policy_with(first.clone(), "always"), CHAT);
        assert_eq!(passes, texts, "{first}");
        assert_eq!(
            d.prompt_tokens,
            Some(facts.prompt_tokens_from(
                facts.text_tokens(Encoding::O200kBase).unwrap(),
                None,
                None
            ))
        );
        assert!(
            (d.scores[0].1 - expected).abs() < 1e-12,
            "{first}: {:?}",
            d.scores
        );
    }
    // as_needed counts nothing it does not need: the classifier reads only
    // the user messages it scans.
    let (d, passes) = decide_counting_passes(
        &policy_with(
            serde_json::json!({"header": {"name": "x-never", "equals": "1"}}),
            "as_needed",
        ),
        CHAT,
    );
    assert_eq!(passes, 2, "the two user messages");
    assert!((d.scores[0].1 - expected).abs() < 1e-12);
}

#[test]
fn the_feedback_attribution_of_a_scored_decision_matches_its_audit_record() {
    let p = policy(serde_json::json!({"classifier": "difficulty", "gt": 0.5}));
    for text in ["hard", "easy", "hard hard easy"] {
        let body = serde_json::json!({"messages": [{"role": "user", "content": text}]}).to_string();
        let d = decide(
            &p,
            &Request {
                shape: ApiShape::ChatCompletions,
                path: "/v1/chat/completions",
                headers: &Headers::new(),
                body: body.as_bytes(),
            },
        );
        assert!(!d.scores.is_empty());
        crate::feedback::tests::assert_attribution_matches_the_audit_record(&p, &d);
        let typed = crate::explain::audit_record(&p, &d, "t");
        assert_eq!(
            typed,
            crate::explain::tests::audit_record_as_map(&p, &d, "t")
        );
        assert!(typed.contains(r#""scores":{"difficulty":"#), "{typed}");
    }
}

/// The linear score as the features define it, written plainly and
/// independently of the scoring path: tiktoken-rs's ids of each scanned
/// segment up to `max_tokens` in all, each token's unigram bucket then its
/// bigram with the token before it, the weights summed one by one in that
/// order, scaled by 1/sqrt(features), plus the standardised dense features.
fn plain_linear(c: &Classifier, facts: &RequestFacts, task: Option<&str>) -> f64 {
    use crate::request::Role;
    let e = &c.extractor;
    let bpe = match e.encoding {
        Encoding::O200kBase => tiktoken_rs::o200k_base_singleton(),
        Encoding::Cl100kBase => tiktoken_rs::cl100k_base_singleton(),
    };
    let last_user = facts.last_user_message();
    let bucket = |key: u64| (features::mix(key) >> (64 - e.hash_bits)) as usize;
    let (mut buckets, mut read) = (Vec::new(), 0usize);
    for s in &facts.content {
        let scanned = match e.scan {
            Scan::LastUser => s.role == Role::User && Some(s.message) == last_user,
            Scan::AllUser => s.role == Role::User,
            Scan::System => matches!(s.role, Role::System | Role::Developer),
            Scan::All => true,
        };
        if !scanned {
            continue;
        }
        let mut ids = bpe.encode_ordinary(&s.text);
        ids.truncate(e.max_tokens - read);
        read += ids.len();
        for (i, &id) in ids.iter().enumerate() {
            buckets.push(bucket(u64::from(id)));
            if e.bigrams && i > 0 {
                let key = (u64::from(ids[i - 1]) << 32 | u64::from(id)) ^ features::BIGRAM_SEED;
                buckets.push(bucket(key));
            }
        }
    }
    let mut sum = 0.0f64;
    for b in &buckets {
        sum += f64::from(c.tokens[*b]);
    }
    // The dense features other than the token count are not the scoring
    // path's concern: taken from the extractor, the count checked.
    let mut dense = [0.0; MAX_DENSE];
    let n = c.extractor.visit(facts, task, &mut dense, |_| {}).unwrap();
    assert_eq!(n as usize, buckets.len());
    assert_eq!(dense[0].to_bits(), (read as f64).ln_1p().to_bits());
    let mut z = c.bias;
    if !buckets.is_empty() {
        z += sum / (buckets.len() as f64).sqrt();
    }
    let weights = c.dense.iter().zip(&c.dense_mean).zip(&c.dense_scale);
    for (((w, m), s), x) in weights.zip(&dense) {
        z += w * (x - m) * s;
    }
    z
}

const WORDS: &[&str] = &[
    " the",
    " nephron",
    " glomerulus",
    "Henle",
    " 42",
    "1234567",
    ",",
    ".",
    "\n\n",
    "  ",
    " qzxjvkwqzxjvkwqzxjvkwqzx",
    "ΩΩΩ",
    "😀👍",
    " don't",
    "x=y+1",
    "\t",
    " hello",
    " world",
];

fn random_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            6 => prop::sample::select(WORDS).prop_map(str::to_string),
            1 => any::<char>().prop_map(String::from),
        ],
        0..60,
    )
    .prop_map(|w| w.concat())
}

fn random_body() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            prop::sample::select(&["system", "user", "assistant", "developer"][..]),
            random_text(),
        ),
        1..5,
    )
    .prop_map(|messages| {
        let messages: Vec<_> = messages
            .into_iter()
            .map(|(role, content)| serde_json::json!({"role": role, "content": content}))
            .collect();
        serde_json::json!({ "messages": messages }).to_string()
    })
}

/// A classifier of random-looking weights with the given spec.
fn spec_classifier(scan: Scan, bigrams: bool, profile: bool, max_tokens: usize) -> Classifier {
    let mut a = dense_artifact(scan, max_tokens);
    a.features.bigrams = bigrams;
    if profile {
        a.features.profile = true;
        a.weights.dense.extend([0.5, -0.4, 0.3, 2.0, -1.5, 0.7]);
        a.weights.dense_mean.extend([0.1; 6]);
        a.weights.dense_std.extend([0.5; 6]);
    }
    // Magnitudes from 2^-20 to 2^20: sums of such weights round, so a
    // path that adds them in another order gives other bits.
    a.weights.tokens = (0..1u32 << 12)
        .map(|b| {
            let h = b.wrapping_mul(2_654_435_761);
            let sign = if h & 1 == 0 { 1.0 } else { -1.0 };
            (
                b,
                sign * (1.0 + (h >> 9) as f32 / 8_388_608.0) * 2f32.powi((h % 41) as i32 - 20),
            )
        })
        .collect();
    Classifier::from_artifact("c", a, 100).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Every path a decision scores by (a pass of its own, the counting
    /// pass with one classifier and with two, the piece cache on and off)
    /// gives exactly the plain score.
    #[test]
    fn scores_are_bit_identical_to_the_plain_definition(
        body in random_body(),
        scan in prop::sample::select(&[Scan::LastUser, Scan::AllUser, Scan::System, Scan::All][..]),
        bigrams in any::<bool>(),
        profile in any::<bool>(),
        max_tokens in prop::sample::select(&[1usize, 3, 17, 4096][..]),
        cache in any::<bool>(),
    ) {
        let facts = crate::request::parse("/v1/chat/completions", body.as_bytes()).unwrap();
        let c = spec_classifier(scan, bigrams, profile, max_tokens);
        let other = spec_classifier(Scan::All, !bigrams, false, 4096);
        crate::tokens::cache::set_enabled(cache);
        let plain = plain_linear(&c, &facts, Some("code"));
        let own = c.linear(&facts, Some("code")).unwrap();
        prop_assert_eq!(own.to_bits(), plain.to_bits(), "{} vs {}", own, plain);
        for classifiers in [vec![c.clone()], vec![c.clone(), other.clone()]] {
            let headers = Headers::new();
            let counting = crate::signals::Counting {
                default_encoding: Encoding::O200kBase,
                default_image_tokens: None,
                mode: crate::signals::TokenCounting::Always,
            };
            let mut signals =
                crate::signals::Signals::new(counting, None, &facts, "/v1/chat/completions", &headers)
                    .with_classifiers(&classifiers, Some("code"), &TrainingQuantiles);
            let fused = signals.score(ClassifierId(0)).unwrap();
            prop_assert_eq!(fused.to_bits(), c.calibrate(plain).to_bits());
            if classifiers.len() == 2 {
                let second = signals.score(ClassifierId(1)).unwrap();
                let alone = other.calibrate(plain_linear(&other, &facts, Some("code")));
                prop_assert_eq!(second.to_bits(), alone.to_bits());
            }
            prop_assert_eq!(
                signals.default_prompt_tokens().unwrap(),
                facts.prompt_tokens_from(facts.text_tokens(Encoding::O200kBase).unwrap(), None, None)
            );
        }
        crate::tokens::cache::set_enabled(true);
    }
}
