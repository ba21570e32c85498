//! The quality loop through Envoy: every routed response carries its request
//! id; feedback posted to `…/v1/router/feedback` (or sent in the
//! `x-model-router-feedback` header of a later request) is answered by the
//! filter itself and counted per model, rule, branch and tenant, on any
//! worker (two here); unknown ids and bad bodies get their documented
//! answers and counters; `model-router report` shows quality beside cost.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{scrape, sum_of, Envoy, Labels, Mock, Setup, TempDir};

fn policy() -> String {
    let model = |cluster: &str, input: f64, output: f64| {
        json!({"cluster": cluster, "context_window": 100_000,
               "pricing": {"input_per_mtok": input, "output_per_mtok": output}})
    };
    let when = |task: &str| json!({"header": {"name": "x-task", "equals": task}});
    json!({
        "models": {"small": model("alpha", 1.0, 2.0), "large": model("beta", 10.0, 30.0)},
        "rules": [
            {"name": "faq", "when": when("faq"), "target": "small"},
            {"name": "code", "when": when("code"), "target": "large"},
        ],
        "default": "small",
        "baseline_model": "large",
        "tenant_header": "x-team",
    })
    .to_string()
}

const CHAT: &str =
    r#"{"model":"auto","messages":[{"role":"user","content":"How do refunds work?"}]}"#;

/// One chat request for `task`; returns the request id the response carries.
fn ask(envoy: &Envoy, task: &str, extra: &[(&str, &str)]) -> String {
    let mut headers = vec![
        ("x-task", task),
        ("x-team", "t1"),
        ("content-type", "application/json"),
    ];
    headers.extend_from_slice(extra);
    let reply = envoy.post("/v1/chat/completions", CHAT.as_bytes(), &headers);
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply
        .header("x-model-router-request-id")
        .expect("a routed response names its request id")
        .to_string()
}

/// Posts a feedback body under a gateway prefix; (status, body).
fn feedback(envoy: &Envoy, body: &Value) -> (u16, String) {
    let reply = envoy.post(
        "/gateway/v1/router/feedback",
        body.to_string().as_bytes(),
        &[("content-type", "application/json")],
    );
    (reply.status, reply.body)
}

fn counter(series: &[(String, Labels, u64)], name: &str, labels: &[(&str, &str)]) -> u64 {
    sum_of(series, name, labels)
}

#[test]
fn scripted_feedback_shows_quality_per_model_and_rule_in_stats_and_report() {
    let (alpha, beta) = (Mock::start("alpha"), Mock::start("beta"));
    let policy = policy();
    let mut setup = Setup::new(&policy, vec![("alpha", &alpha), ("beta", &beta)]);
    setup.concurrency = Some(2);
    let envoy = Envoy::launch(setup).unwrap_or_else(|log| panic!("Envoy did not start:\n{log}"));

    // The small model's FAQ answers are rated worse than the large model's code answers.
    let faq_scores = [0.9, 0.2, 0.1, 0.8, 0.3, 0.6];
    let faq: Vec<String> = faq_scores.iter().map(|_| ask(&envoy, "faq", &[])).collect();
    let code: Vec<String> = (0..4).map(|_| ask(&envoy, "code", &[])).collect();
    let chat: Vec<String> = (0..3).map(|_| ask(&envoy, "chat", &[])).collect();
    let mut ids: Vec<&String> = faq.iter().chain(&code).chain(&chat).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 13, "every request has its own id");

    // The audit record in the access log carries the same id (the log is flushed within seconds).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let logged: Vec<Value> = std::fs::read_to_string(&envoy.access_log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|l| serde_json::from_str(l["decision"].as_str()?).ok())
            .collect();
        if logged
            .iter()
            .any(|d: &Value| d["request_id"] == faq[0].as_str())
        {
            break;
        }
        assert!(Instant::now() < deadline, "{logged:#?}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // The application keeps what it rated, with the prompt, for `model-router labels`.
    let mut feedback_log = String::new();
    let mut rate = |body: Value| {
        let (status, reply) = feedback(&envoy, &body);
        assert_eq!((status, reply.as_str()), (204, ""), "{body}");
        let mut line = body;
        line["prompt"] = Value::from("How do refunds work?");
        feedback_log.push_str(&format!("{line}\n"));
    };
    for (id, score) in faq.iter().zip(faq_scores) {
        rate(json!({"request_id": id, "score": score}));
    }
    for id in &code {
        rate(json!({"request_id": id, "verdict": "good", "label": "correct"}));
    }
    for id in &chat[..2] {
        rate(json!({"request_id": id, "verdict": "good"}));
    }
    // The lighter option: feedback on the previous answer, riding on the next request.
    let header = format!("request_id={}; verdict=bad; label=off-topic", chat[2]);
    ask(&envoy, "chat", &[("x-model-router-feedback", &header)]);

    // Unknown ids: accepted (the request may have expired) and counted apart.
    for id in ["no-such-request", "f0000000-0000-0000-0000-000000000000"] {
        assert_eq!(
            feedback(&envoy, &json!({"request_id": id, "verdict": "bad"})).0,
            204
        );
    }
    // Bad bodies: 400 naming the JSON path.
    for (body, message) in [
        (
            json!({"request_id": faq[0], "score": 3}),
            "score: expected a number from 0 to 1",
        ),
        (json!({"score": 1}), "request_id: missing"),
        (
            json!({"request_id": faq[0], "verdict": "great"}),
            r#"verdict: expected "good" or "bad""#,
        ),
    ] {
        let (status, reply) = feedback(&envoy, &body);
        assert_eq!(status, 400, "{body}");
        let reply: Value = serde_json::from_str(&reply).unwrap();
        assert_eq!(reply["error"]["message"], message, "{body}");
    }
    // Nothing of the feedback reached a provider: 14 chat requests, no more.
    assert_eq!(alpha.requests().len() + beta.requests().len(), 14);

    let series = scrape(&envoy);
    let fb = "model_router_feedback_total";
    let small_faq = [
        ("model", "small"),
        ("rule", "faq"),
        ("branch", "none"),
        ("tenant", "t1"),
    ];
    assert_eq!(
        counter(
            &series,
            fb,
            &[small_faq.as_slice(), &[("verdict", "good")]].concat()
        ),
        3
    );
    assert_eq!(
        counter(
            &series,
            fb,
            &[small_faq.as_slice(), &[("verdict", "bad")]].concat()
        ),
        3
    );
    let score = "model_router_feedback_score_milli_total";
    assert_eq!(
        counter(
            &series,
            score,
            &[small_faq.as_slice(), &[("verdict", "good")]].concat()
        ),
        2300
    );
    assert_eq!(
        counter(
            &series,
            score,
            &[small_faq.as_slice(), &[("verdict", "bad")]].concat()
        ),
        600
    );
    assert_eq!(
        counter(
            &series,
            fb,
            &[("model", "large"), ("rule", "code"), ("verdict", "good")]
        ),
        4
    );
    assert_eq!(
        counter(&series, fb, &[("model", "large"), ("verdict", "bad")]),
        0
    );
    assert_eq!(
        counter(&series, fb, &[("rule", "default"), ("verdict", "good")]),
        2
    );
    assert_eq!(
        counter(&series, fb, &[("rule", "default"), ("verdict", "bad")]),
        1
    );
    assert_eq!(
        counter(&series, "model_router_feedback_unknown_total", &[]),
        2
    );
    assert_eq!(
        counter(&series, "model_router_feedback_invalid_total", &[]),
        3
    );
    assert_eq!(
        counter(&series, "model_router_feedback_evicted_total", &[]),
        0
    );

    // The report: quality beside cost, with a Wilson interval on each good-rate.
    let dir = TempDir::new("model-router-feedback");
    let file = dir.0.join("scrape.prom");
    std::fs::write(&file, envoy.prometheus()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_model-router"))
        .arg("report")
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = |key: &str| -> Vec<String> {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .unwrap_or_else(|| panic!("no row {key}:\n{text}"))
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect()
    };
    // key, requests, …, feedback, good rate, mean score
    let tail = |key: &str| row(key)[row(key).len() - 3..].to_vec();
    assert_eq!(tail("faq"), ["6", "50.0% [18.8-81.2]", "0.483"], "{text}");
    assert_eq!(
        tail("code"),
        ["4", "100.0% [51.0-100.0]", "1.000"],
        "{text}"
    );
    assert_eq!(
        tail("default"),
        ["3", "66.7% [20.8-93.9]", "0.667"],
        "{text}"
    );
    assert_eq!(tail("small"), ["9", "55.6% [26.7-81.1]", "0.544"], "{text}");
    assert_eq!(
        row("faq")[1],
        "6",
        "requests beside their feedback:\n{text}"
    );
    labels_join_the_access_log_with_the_feedback(&envoy, &dir, &feedback_log);
    assert!(
        text.contains("Feedback: 13 attributed (good 69.2% [42.4-87.3], mean score 0.685); 2 for unknown or expired request ids; 3 invalid; 0 requests overwritten"),
        "{text}"
    );
}

/// `model-router labels` over the run's access log and the application's
/// feedback log: a row per rating of the small model's answers.
fn labels_join_the_access_log_with_the_feedback(envoy: &Envoy, dir: &TempDir, feedback_log: &str) {
    // Every routed request in the (periodically flushed) access log.
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::fs::read_to_string(&envoy.access_log)
        .unwrap_or_default()
        .matches("request_id")
        .count()
        < 14
    {
        assert!(Instant::now() < deadline, "access log incomplete");
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = dir.0.join("feedback.jsonl");
    let rows = dir.0.join("data.jsonl");
    std::fs::write(&log, feedback_log).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_model-router"))
        .arg("labels")
        .arg(&envoy.access_log)
        .arg(&log)
        .args(["--weak", "small", "-o"])
        .arg(&rows)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("8 rows from 12 feedback (0 for requests not in the access log, 4 on other models than small, 0 without a prompt)"),
        "{stderr}"
    );
    let rows: Vec<Value> = std::fs::read_to_string(&rows)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let labelled = |group: &str, label: u64| {
        rows.iter()
            .filter(|r| r["group"] == group && r["label"] == label)
            .count()
    };
    // FAQ: three bad ratings (the strong model was needed), three good.
    assert_eq!(
        (labelled("faq", 1), labelled("faq", 0)),
        (3, 3),
        "{rows:#?}"
    );
    assert_eq!(
        (labelled("default", 1), labelled("default", 0)),
        (0, 2),
        "{rows:#?}"
    );
    assert!(rows.iter().all(|r| r["prompt"] == "How do refunds work?"));
    // The loop closes: `train` accepts the rows `labels` wrote.
    let artifact = dir.0.join("from-feedback.json");
    let out = Command::new(env!("CARGO_BIN_EXE_model-router"))
        .arg("train")
        .arg(dir.0.join("data.jsonl"))
        .args(["--hash-bits", "8", "--folds", "2", "-o"])
        .arg(&artifact)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("trained on 8 rows (3 positive: the weak model fails), 2 groups"),
        "{stdout}"
    );
    let trained: Value =
        serde_json::from_str(&std::fs::read_to_string(&artifact).unwrap()).unwrap();
    assert_eq!(trained["format"], "model-router-classifier");
}

/// A 50/50 split of the FAQ rule, keyed by session: the control arm (the
/// small model) is rated worse than the candidate (the large one), and the
/// feedback lands on each arm's `branch` label and in `report --by branch`.
#[test]
fn feedback_is_reported_per_split_branch_in_stats_and_report() {
    let (alpha, beta) = (Mock::start("alpha"), Mock::start("beta"));
    let mut policy: Value = serde_json::from_str(&policy()).unwrap();
    policy["rules"][0]["target"] = json!({"split": [
        {"target": "small", "weight": 50, "name": "control"},
        {"target": "large", "weight": 50, "name": "candidate"},
    ], "key": {"header": "x-session-id"}});
    let policy = policy.to_string();
    let mut setup = Setup::new(&policy, vec![("alpha", &alpha), ("beta", &beta)]);
    setup.concurrency = Some(2);
    let envoy = Envoy::launch(setup).unwrap_or_else(|log| panic!("Envoy did not start:\n{log}"));

    // One request per session; the served model says which arm it was.
    let mut arms: Vec<(&str, String)> = Vec::new();
    for session in 0..40 {
        let key = format!("session-{session}");
        let headers = [
            ("x-task", "faq"),
            ("x-team", "t1"),
            ("x-session-id", key.as_str()),
            ("content-type", "application/json"),
        ];
        let reply = envoy.post("/v1/chat/completions", CHAT.as_bytes(), &headers);
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.header("x-model-router-rule"), Some("faq"));
        let arm = match reply.header("x-model-router-model") {
            Some("small") => "control",
            Some("large") => "candidate",
            other => panic!("served by {other:?}"),
        };
        let id = reply.header("x-model-router-request-id").unwrap();
        arms.push((arm, id.to_string()));
    }
    let served = |arm: &str| arms.iter().filter(|(a, _)| *a == arm).count() as u64;
    let (control, candidate) = (served("control"), served("candidate"));
    assert!(control > 0 && candidate > 0, "{arms:?}");

    // Control: every 4th answer good (0.75), the others bad (0.25); candidate: all 0.9.
    let mut expected: std::collections::BTreeMap<(&str, &str), (u64, u64)> = Default::default();
    let mut nth_control = 0;
    for (arm, id) in &arms {
        let score = if *arm == "candidate" {
            0.9
        } else {
            nth_control += 1;
            if nth_control % 4 == 1 {
                0.75
            } else {
                0.25
            }
        };
        let (status, reply) = feedback(&envoy, &json!({"request_id": id, "score": score}));
        assert_eq!((status, reply.as_str()), (204, ""));
        let verdict = if score >= 0.5 { "good" } else { "bad" };
        let cell = expected.entry((*arm, verdict)).or_default();
        cell.0 += 1;
        cell.1 += (score * 1000.0_f64).round() as u64;
    }
    let control_good = expected.get(&("control", "good")).map_or(0, |c| c.0);
    assert_eq!(control_good, control.div_ceil(4));

    let series = scrape(&envoy);
    for arm in ["control", "candidate"] {
        assert_eq!(
            counter(
                &series,
                "model_router_requests_total",
                &[("rule", "faq"), ("branch", arm)]
            ),
            served(arm),
            "{arm}"
        );
        for verdict in ["good", "bad"] {
            let (count, milli) = expected.get(&(arm, verdict)).copied().unwrap_or_default();
            let labels = [("rule", "faq"), ("branch", arm), ("verdict", verdict)];
            assert_eq!(
                counter(&series, "model_router_feedback_total", &labels),
                count,
                "{arm} {verdict}"
            );
            assert_eq!(
                counter(&series, "model_router_feedback_score_milli_total", &labels),
                milli,
                "{arm} {verdict}"
            );
        }
    }
    assert_eq!(
        counter(&series, "model_router_feedback_unknown_total", &[]),
        0
    );

    // `report --by branch`: requests and quality per arm, text and JSON.
    let dir = TempDir::new("model-router-feedback-branch");
    let file = dir.0.join("scrape.prom");
    std::fs::write(&file, envoy.prometheus()).unwrap();
    let report = |json: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_model-router"));
        command.arg("report").arg(&file).args(["--by", "branch"]);
        if json {
            command.arg("--json");
        }
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let parsed: Value = serde_json::from_str(&report(true)).unwrap();
    let rows = parsed["tables"][0]["rows"].as_array().unwrap();
    assert_eq!(parsed["tables"][0]["by"], "branch");
    let row = |arm: &str| rows.iter().find(|r| r["branch"] == arm).unwrap();
    for arm in ["control", "candidate"] {
        let good = expected.get(&(arm, "good")).copied().unwrap_or_default();
        let bad = expected.get(&(arm, "bad")).copied().unwrap_or_default();
        assert_eq!(row(arm)["requests"], served(arm), "{arm}");
        assert_eq!(row(arm)["feedback"], served(arm), "{arm}");
        assert_eq!(row(arm)["feedback_good"], good.0, "{arm}");
        let mean = (good.1 + bad.1) as f64 / 1000.0 / served(arm) as f64;
        let got = row(arm)["mean_score"].as_f64().unwrap();
        assert!((got - mean).abs() < 1e-9, "{arm}: {got} vs {mean}");
    }
    // The candidate's good-rate interval lies above the control's.
    assert!(
        row("candidate")["good_rate_low"].as_f64().unwrap()
            > row("control")["good_rate_high"].as_f64().unwrap(),
        "{parsed:#}"
    );
    let text = report(false);
    let line = |arm: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(arm))
            .unwrap_or_else(|| panic!("no row {arm}:\n{text}"))
            .to_string()
    };
    let control_rate = format!("{:.1}%", control_good as f64 * 100.0 / control as f64);
    assert!(line("control").contains(&control_rate), "{text}");
    assert!(line("candidate").contains("100.0%"), "{text}");
    assert!(
        line("candidate")
            .split_whitespace()
            .nth(1)
            .is_some_and(|n| n == candidate.to_string()),
        "requests column:\n{text}"
    );
}

#[test]
fn a_policy_without_feedback_remembers_nothing_and_counts_feedback_as_unknown() {
    let (alpha, beta) = (Mock::start("alpha"), Mock::start("beta"));
    let mut policy: Value = serde_json::from_str(&policy()).unwrap();
    policy["feedback"] = json!(false);
    let policy = policy.to_string();
    let envoy = Envoy::launch(Setup::new(
        &policy,
        vec![("alpha", &alpha), ("beta", &beta)],
    ))
    .unwrap_or_else(|log| panic!("Envoy did not start:\n{log}"));
    // The request id still goes out; feedback on it is answered, not attributed.
    let ids: Vec<String> = (0..2).map(|_| ask(&envoy, "faq", &[])).collect();
    for id in &ids {
        assert_eq!(
            feedback(&envoy, &json!({"request_id": id, "verdict": "good"})).0,
            204
        );
    }
    let series = scrape(&envoy);
    assert_eq!(
        counter(&series, "model_router_feedback_unknown_total", &[]),
        2
    );
    assert_eq!(counter(&series, "model_router_feedback_total", &[]), 0);
    assert_eq!(counter(&series, "model_router_requests_total", &[]), 2);
}
