use super::store::{self, WIDTH};
use super::*;

fn attr(model: &str) -> Attribution {
    Attribution {
        model: model.into(),
        rule: "faq".into(),
        tenant: "search".into(),
        branch: None,
        scores: Vec::new(),
    }
}

#[test]
fn bodies_with_a_score_or_a_verdict_parse() {
    let f = Feedback::from_json(br#"{"request_id":"r1","score":0.25,"label":"tone"}"#).unwrap();
    assert_eq!(f.score, 0.25);
    assert_eq!(f.verdict(), "bad");
    assert_eq!(f.label.as_deref(), Some("tone"));
    let f = Feedback::from_json(br#"{"request_id":"r1","verdict":"good"}"#).unwrap();
    assert_eq!((f.score, f.verdict()), (1.0, "good"));
}

#[test]
fn bad_bodies_are_refused_with_the_json_path() {
    let cases: [(&str, &str); 10] = [
        ("not json", ".: invalid JSON"),
        ("[1]", ".: expected an object"),
        (r#"{"score":1}"#, "request_id: missing"),
        (
            r#"{"request_id":7,"score":1}"#,
            "request_id: expected a string",
        ),
        (
            r#"{"request_id":"","score":1}"#,
            "request_id: expected 1 to",
        ),
        (r#"{"request_id":"r"}"#, ".: expected score or verdict"),
        (
            r#"{"request_id":"r","score":1.5}"#,
            "score: expected a number from 0 to 1",
        ),
        (r#"{"request_id":"r","verdict":"meh"}"#, "verdict: expected"),
        (
            r#"{"request_id":"r","score":0.9,"verdict":"bad"}"#,
            "score: contradicts verdict",
        ),
        (
            r#"{"request_id":"r","score":1,"extra":1}"#,
            "extra: unknown field",
        ),
    ];
    for (body, error) in cases {
        let got = Feedback::from_json(body.as_bytes()).unwrap_err();
        assert!(got.starts_with(error), "{body}: {got}");
    }
}

#[test]
fn the_header_form_reads_like_the_body() {
    let f = Feedback::from_header("request_id=abc-1; score=0.75; label=tone").unwrap();
    assert_eq!(
        f,
        Feedback {
            request_id: "abc-1".into(),
            score: 0.75,
            label: Some("tone".into())
        }
    );
    assert_eq!(
        Feedback::from_header("request_id=abc; verdict=bad")
            .unwrap()
            .score,
        0.0
    );
    assert!(Feedback::from_header("request_id=abc; score=high")
        .unwrap_err()
        .starts_with("score:"));
    assert!(Feedback::from_header("abc")
        .unwrap_err()
        .contains("key=value"));
}

#[test]
fn attribution_reads_the_audit_record_and_plugs_in_branch_and_scores() {
    let record = r#"{"status":"routed","model":"small","rule":"faq","tenant":"t1","served_model":"large",
        "branch":"b","scores":{"intent":0.93,"toxicity":{"score":0.1}}}"#;
    let a = Attribution::from_audit(record).unwrap();
    assert_eq!(
        (a.model.as_str(), a.rule.as_str(), a.tenant.as_str()),
        ("large", "faq", "t1")
    );
    assert_eq!(a.branch.as_deref(), Some("b"));
    assert_eq!(
        a.scores,
        vec![("intent".to_string(), 0.93), ("toxicity".to_string(), 0.1)]
    );
    assert_eq!(Attribution::from_audit(&a.to_json()).unwrap(), a);
    assert!(Attribution::from_audit(r#"{"status":"rejected","model":null}"#).is_none());
}

#[test]
fn samples_attribute_or_count_unknown() {
    let f = Feedback::from_json(br#"{"request_id":"r","score":0.8}"#).unwrap();
    let mut a = attr("small");
    a.scores = vec![("intent".into(), 0.93)];
    let names: Vec<(String, u64)> = samples(&f, Some(&a))
        .into_iter()
        .map(|s| (s.name, s.value))
        .collect();
    assert_eq!(
        names,
        [
            ("model_router_feedback_total;model=small;rule=faq;branch=none;tenant=search;verdict=good".to_string(), 1),
            ("model_router_feedback_score_milli_total;model=small;rule=faq;branch=none;tenant=search;verdict=good".to_string(), 800),
            ("model_router_feedback_by_score_total;classifier=intent;bucket=0.9;verdict=good".to_string(), 1),
        ]
    );
    assert_eq!(samples(&f, None)[0].name, FEEDBACK_UNKNOWN);
    assert_eq!(
        (bucket(0.0), bucket(0.05), bucket(1.0)),
        ("0.0".into(), "0.0".into(), "0.9".into())
    );
}

#[test]
fn a_ring_keeps_the_newest_width_requests_and_counts_overwrites() {
    let mut ring = String::new();
    for n in 0..WIDTH {
        let (next, evicted) = store::insert(&ring, &format!("r{n}"), &attr(&format!("m{n}")));
        assert!(!evicted);
        ring = next;
    }
    let (ring, evicted) = store::insert(&ring, "late", &attr("m-late"));
    assert!(evicted);
    assert_eq!(ring.lines().count(), WIDTH);
    assert!(store::find(&ring, "r0").is_none());
    assert_eq!(store::find(&ring, "r1").unwrap().model, "m1");
    assert_eq!(store::find(&ring, "late").unwrap().model, "m-late");
    // The same id again replaces its line rather than taking another.
    let (again, evicted) = store::insert(&ring, "late", &attr("m-again"));
    assert!(!evicted);
    assert_eq!(again.lines().count(), WIDTH);
    assert_eq!(store::find(&again, "late").unwrap().model, "m-again");
}

#[test]
fn keys_are_bounded_and_stable() {
    assert_eq!(store::key("abc"), store::key("abc"));
    let keys: std::collections::BTreeSet<String> =
        (0..5000).map(|n| store::key(&format!("id-{n}"))).collect();
    assert_eq!(keys.len(), store::BUCKETS as usize);
    assert!(!store::storable("a\tb") && store::storable("9f0c-1"));
}

/// The filter attributes a request from its decision; `from_audit` reads
/// the same attribution back from the audit record: they must agree.
pub(crate) fn assert_attribution_matches_the_audit_record(
    policy: &crate::policy::Policy,
    decision: &crate::decision::Decision,
) {
    use crate::explain::{audit_record, with_billing, Billing};
    let record = audit_record(policy, decision, "team-a");
    let first = decision.chain().first().and_then(|id| policy.model(*id));
    assert_eq!(
        Attribution::of(policy, decision, None, "team-a"),
        Attribution::from_audit(&record),
        "{record}"
    );
    // Billed: the served model (here the chain's last) wins.
    let served = decision.chain().last().and_then(|id| policy.model(*id));
    let billed = with_billing(
        &record,
        &Billing {
            attempts: 2,
            served,
            usage: crate::cost::Usage::default(),
            source: "reported",
        },
    );
    assert_eq!(
        Attribution::of(policy, decision, served.or(first), "team-a"),
        Attribution::from_audit(&billed),
        "{billed}"
    );
}

#[test]
fn the_attribution_of_a_decision_is_what_its_audit_record_says() {
    use crate::decision::{decide, Request};
    use crate::headers::Headers;
    use crate::request::ApiShape;
    let policies = [
        include_str!("../../../../examples/policies/deployments.json"),
        include_str!("../../../../examples/policies/multi-api.json"),
        include_str!("../../../../examples/policy.json"),
    ];
    let bodies = [
        r#"{"model":"auto","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
        r#"{"model":"auto","messages":[{"role":"user","content":"write a python function"}]}"#,
        r#"{"messages":"not a list"}"#,
    ];
    for text in policies {
        let policy = crate::policy::Policy::from_json(text).unwrap();
        for body in bodies {
            for session in ["a", "b", "c", "d"] {
                let mut headers = Headers::new();
                headers.insert("x-session-id", session);
                let decision = decide(
                    &policy,
                    &Request {
                        shape: ApiShape::ChatCompletions,
                        path: "/v1/chat/completions",
                        headers: &headers,
                        body: body.as_bytes(),
                    },
                );
                assert_attribution_matches_the_audit_record(&policy, &decision);
            }
        }
    }
}

#[test]
fn the_stored_form_reads_back_and_leaves_out_what_is_absent_or_not_json() {
    let bare = Attribution {
        model: "m \"q\"".into(),
        rule: "r".into(),
        tenant: "t".into(),
        branch: None,
        scores: Vec::new(),
    };
    assert_eq!(
        bare.to_json(),
        r#"{"served_model":"m \"q\"","rule":"r","tenant":"t"}"#
    );
    assert_eq!(Attribution::from_audit(&bare.to_json()).unwrap(), bare);
    let scored = Attribution {
        branch: Some("b".into()),
        scores: vec![("a".into(), 0.25), ("nan".into(), f64::NAN)],
        ..bare.clone()
    };
    let json = scored.to_json();
    assert!(
        json.ends_with(r#","branch":"b","scores":{"a":0.25}}"#),
        "{json}"
    );
    let back = Attribution::from_audit(&json).unwrap();
    assert_eq!(back.scores, vec![("a".to_string(), 0.25)]);
    let only_nan = Attribution {
        scores: vec![("nan".into(), f64::NAN)],
        ..bare.clone()
    };
    assert!(!only_nan.to_json().contains("scores"));
}
