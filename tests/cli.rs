#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Golden tests of the `model-router` command line: exit codes and exact
//! output. The expected outputs live in `tests/golden/`; after an intended
//! change of output, `UPDATE_GOLDEN=1 cargo test --test cli` rewrites them
//! (review the diff).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .canonicalize()
        .unwrap()
}

/// Runs the CLI from the repository root (so relative paths in its output
/// are stable), with `stdin` as standard input.
fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_model-router"))
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    // A command that does not read stdin may close it first: ignore EPIPE.
    let _ = input.write_all(stdin);
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn golden(name: &str, actual: &str) {
    let path = repo().join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (UPDATE_GOLDEN=1 cargo test --test cli creates it)",
            path.display()
        )
    });
    assert!(
        actual == expected,
        "output differs from {} (UPDATE_GOLDEN=1 rewrites it)\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

/// A scrape of Envoy 1.40's /stats/prometheus after a `scripts/demo` run:
/// the router's series and a few of Envoy's own around them.
const SCRAPE: &str = "tests/data/envoy-scrape.prom";

#[test]
fn report_from_a_file() {
    let out = run(&["report", SCRAPE], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    golden("report.txt", &text(&out.stdout));
}

#[test]
fn report_shows_quality_beside_cost_with_intervals() {
    let out = run(&["report", "tests/data/feedback-scrape.prom"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    golden("report-quality.txt", &text(&out.stdout));
}

#[test]
fn report_from_stdin_matches_the_file() {
    let scrape = std::fs::read(repo().join(SCRAPE)).unwrap();
    let from_stdin = run(&["report", "-"], &scrape);
    let from_file = run(&["report", SCRAPE], b"");
    assert_eq!(from_stdin.status.code(), Some(0));
    assert_eq!(from_stdin.stdout, from_file.stdout);
}

#[test]
fn report_as_json_by_one_dimension() {
    let out = run(&["report", "--by", "rule", "--json", SCRAPE], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let value: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(value["tables"].as_array().unwrap().len(), 1);
    assert_eq!(value["tables"][0]["by"], "rule");
    // The micro-USD columns add up to the total.
    let rows = value["tables"][0]["rows"].as_array().unwrap();
    let sum: u64 = rows
        .iter()
        .map(|r| r["cost_micro_usd"].as_u64().unwrap())
        .sum();
    assert_eq!(sum, value["total"]["cost_micro_usd"].as_u64().unwrap());
    golden("report-by-rule.json", &stdout);
}

#[test]
fn report_shows_prompt_cache_reads_and_writes_per_model() {
    let out = run(
        &[
            "report",
            "--by",
            "model",
            "tests/data/envoy-scrape-cache.prom",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    golden("report-cache.txt", &text(&out.stdout));
    let out = run(
        &["report", "--json", "tests/data/envoy-scrape-cache.prom"],
        b"",
    );
    let value: Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    let claude = &value["cache_by_model"][0];
    assert_eq!(claude["model"], "claude-sonnet");
    assert_eq!(claude["cached_tokens"], 6000);
    assert_eq!(claude["cache_write_tokens"], 3000);
    assert_eq!(claude["cache_write_cost_micro_usd"], 13500);
    assert_eq!(value["total"]["cache_read_cost_micro_usd"], 3080);
}

#[test]
fn prices_lists_the_catalogue() {
    let out = run(&["prices", "anthropic/"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    golden("prices-anthropic.txt", &text(&out.stdout));
    let out = run(&["prices", "--json"], b"");
    assert_eq!(out.status.code(), Some(0));
    let entries: Vec<Value> = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert!(entries.len() >= 30);
    for entry in &entries {
        assert!(
            entry["source"].as_str().unwrap().starts_with("https://"),
            "{entry}"
        );
        assert_eq!(entry["read"].as_str().unwrap().len(), 10, "{entry}");
    }
    let out = run(&["prices", "no-such-model"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "no catalogue model matches \"no-such-model\"\n"
    );
}

#[test]
fn check_warns_about_catalogue_prices_older_than_180_days() {
    // Its own directory: other tests remove broken_policy's when done.
    let mut policy: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("examples/policy.json")).unwrap(),
    )
    .unwrap();
    policy["models"]["gpt-4o"]["catalog"] = serde_json::json!("openai/gpt-4o");
    let dir = std::env::temp_dir().join(format!("model-router-cli-catalog-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("catalog.json");
    std::fs::write(&path, policy.to_string()).unwrap();
    let check = |today: &str| run(&["check", path.to_str().unwrap(), "--today", today], b"");
    // Read on 2026-12-01: 180 days later is still fresh.
    let fresh = check("2027-05-30");
    assert_eq!(fresh.status.code(), Some(0), "{}", text(&fresh.stderr));
    assert_eq!(text(&fresh.stderr), "");
    let stale = check("2027-06-01");
    assert_eq!(stale.status.code(), Some(0));
    assert_eq!(
        text(&stale.stderr),
        "warning: models.gpt-4o: the catalogue prices of openai/gpt-4o were read on 2026-12-01 \
         (182 days ago, over 180); check https://platform.openai.com/docs/pricing and set the \
         prices in the policy if they changed\n"
    );
    let bad = check("tomorrow");
    assert_eq!(bad.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn report_without_router_metrics_says_so() {
    let out = run(
        &["report", "-"],
        b"# TYPE envoy_server_live gauge\nenvoy_server_live 1\n",
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        "No model_router_* metrics in this scrape: the filter reports a request once its response is complete.\n"
    );
}

#[test]
fn report_errors() {
    let cases: [(&[&str], &[u8], &str); 6] = [
        (
            &["report", "-"],
            b"model_router_requests_total{model=\"a\" 1\n",
            "model-router: not a Prometheus scrape: line 1: expected ',' or '}' after label model\n",
        ),
        (
            &["report", "--by", "cluster", SCRAPE],
            b"",
            "model-router: unknown --by \"cluster\" (model, rule, tenant or branch)\n",
        ),
        (
            &["report", "--url", "https://127.0.0.1:9901/stats/prometheus"],
            b"",
            "model-router: \"https://127.0.0.1:9901/stats/prometheus\": only http:// URLs on loopback are supported\n",
        ),
        (
            // Refused before any connection is attempted.
            &["report", "--url", "http://203.0.113.7:9901/stats/prometheus"],
            b"",
            "model-router: \"http://203.0.113.7:9901/stats/prometheus\": the host must be a loopback address (127.0.0.1, [::1] or localhost)\n",
        ),
        (
            &["report", "--url", "http://127.0.0.1:9901/", SCRAPE],
            b"",
            "model-router: report reads either --url or FILE, not both\n",
        ),
        (
            &["report", "tests/data/no-such-scrape.prom"],
            b"",
            "model-router: cannot read tests/data/no-such-scrape.prom: No such file or directory (os error 2)\n",
        ),
    ];
    for (args, stdin, expected) in cases {
        let out = run(args, stdin);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(text(&out.stderr), expected, "{args:?}");
        assert_eq!(text(&out.stdout), "", "{args:?}");
    }
}

#[test]
fn report_url_that_does_not_answer() {
    // Port 1 on loopback: nothing listens there, the connection is refused.
    let out = run(
        &["report", "--url", "http://127.0.0.1:1/stats/prometheus"],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr)
            .starts_with("model-router: cannot fetch http://127.0.0.1:1/stats/prometheus: "),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn check_the_example_policy() {
    let out = run(&["check", "examples/policy.json"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "examples/policy.json: ok (5 models, 4 tasks, 4 rules)\n"
    );
}

/// The example policy with one change, written pretty-printed to a temp file.
fn broken_policy(name: &str, change: impl FnOnce(&mut Value)) -> PathBuf {
    let mut policy: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("examples/policy.json")).unwrap(),
    )
    .unwrap();
    change(&mut policy);
    let dir = std::env::temp_dir().join(format!("model-router-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(&policy).unwrap()).unwrap();
    path
}

fn check_fails(path: &Path, expected_problem: &str) {
    let out = run(&["check", path.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        text(&out.stderr),
        format!("invalid policy {}: {expected_problem}\n", path.display())
    );
}

#[test]
fn check_names_the_json_path_of_the_problem() {
    let unknown_model = broken_policy("unknown-model.json", |p| {
        p["rules"][1]["target"] = serde_json::json!(["gpt-4o", "gpt-5-turbo"]);
    });
    check_fails(
        &unknown_model,
        "rules[1].target[1]: unknown model \"gpt-5-turbo\"",
    );
    let bad_price = broken_policy("bad-price.json", |p| {
        p["models"]["gpt-4o"]["pricing"]["input_per_mtok"] = serde_json::json!("cheap");
    });
    let out = run(&["check", bad_price.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "invalid policy {}: models.gpt-4o.pricing.input_per_mtok: invalid type: string \"cheap\", expected f64",
            bad_price.display()
        )),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(unknown_model.parent().unwrap());
    let missing = run(&["check", "examples/no-such-policy.json"], b"");
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(
        text(&missing.stderr),
        "cannot read examples/no-such-policy.json: No such file or directory (os error 2)\n"
    );
}

#[test]
fn explain_the_example_requests() {
    let mut names: Vec<String> = std::fs::read_dir(repo().join("examples/requests"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    assert!(names.len() >= 4, "{names:?}");
    for name in names {
        let request = format!("examples/requests/{name}");
        let out = run(&["explain", "examples/policy.json", &request], b"");
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out.stderr));
        golden(&format!("explain-{name}"), &text(&out.stdout));
    }
}

#[test]
fn explain_with_a_budget_header_takes_the_cheapest_model() {
    let out = run(
        &[
            "explain",
            "examples/policy.json",
            "examples/requests/code-review.json",
            "-H",
            "x-model-router-max-cost-usd: 0.0005",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    golden("explain-code-review-budget.json", &text(&out.stdout));
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["rule"], "code");
    assert_eq!(value["model"], "llama-3.1-8b");
    assert_eq!(value["budget_clamped"], true);
}

#[test]
fn explain_reads_stdin_and_reports_bad_input() {
    let body = std::fs::read(repo().join("examples/requests/faq-refund.json")).unwrap();
    let from_stdin = run(&["explain", "examples/policy.json", "-"], &body);
    let from_file = run(
        &[
            "explain",
            "examples/policy.json",
            "examples/requests/faq-refund.json",
        ],
        b"",
    );
    assert_eq!(from_stdin.status.code(), Some(0));
    assert_eq!(from_stdin.stdout, from_file.stdout);

    let bad_path = run(
        &["explain", "examples/policy.json", "-", "--path", "/healthz"],
        &body,
    );
    assert_eq!(bad_path.status.code(), Some(2));
    assert_eq!(
        text(&bad_path.stderr),
        "model-router: /healthz is not an LLM API path the router handles\n"
    );
    let bad_header = run(
        &["explain", "examples/policy.json", "-", "-H", "no-colon"],
        &body,
    );
    assert_eq!(bad_header.status.code(), Some(2));
    assert_eq!(
        text(&bad_header.stderr),
        "model-router: header \"no-colon\" is not 'name: value'\n"
    );
}

#[test]
fn tokens() {
    let count = |args: &[&str], stdin: &[u8]| -> String {
        let out = run(args, stdin);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    };
    let sentence = b"What is your refund policy if I cancel an annual plan after three months?";
    assert_eq!(count(&["tokens"], sentence), "15\n");
    assert_eq!(
        count(&["tokens", "--encoding", "cl100k_base"], sentence),
        "15\n"
    );
    assert_eq!(count(&["tokens"], "naïve café 日本語".as_bytes()), "6\n");
    assert_eq!(count(&["tokens"], b""), "0\n");
    // --chat: the billed prompt tokens of a request body, as explain reports them.
    let body = std::fs::read(repo().join("examples/requests/faq-refund.json")).unwrap();
    assert_eq!(count(&["tokens", "--chat"], &body), "52\n");
    let explained: Value = serde_json::from_slice(
        &run(
            &[
                "explain",
                "examples/policy.json",
                "examples/requests/faq-refund.json",
            ],
            b"",
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(explained["prompt_tokens"], 52);

    let bad = run(&["tokens", "--encoding", "p50k_base"], b"x");
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(
        text(&bad.stderr),
        "model-router: unknown encoding \"p50k_base\"\n"
    );
    let not_a_request = run(&["tokens", "--chat"], b"{\"messages\": 3}");
    assert_eq!(not_a_request.status.code(), Some(2));
    assert!(text(&not_a_request.stderr).starts_with("model-router: invalid request: "));
}

#[test]
fn usage_lists_every_command() {
    let out = run(&["--help"], b"");
    assert_eq!(out.status.code(), Some(0));
    let usage = text(&out.stdout);
    for command in ["check", "explain", "tokens", "envoy", "report"] {
        assert!(
            usage.contains(&format!("model-router {command}")),
            "{command}"
        );
    }
}

#[test]
fn explain_shows_cooldowns_and_split_branches() {
    let policy = traffic_policy("traffic.json", |p| {
        p["rules"][1]["target"] = serde_json::json!({"split": [
            {"target": "gpt-4o", "weight": 90},
            {"target": ["gpt-4.1", "gpt-4o"], "weight": 10, "name": "sonnet"}],
            "key": {"header": "x-session-id"}});
    });
    let request = "examples/requests/code-review.json";
    let explain = |extra: &[&str]| -> Value {
        let mut args = vec!["explain", policy.to_str().unwrap(), request];
        args.extend_from_slice(extra);
        let out = run(&args, b"");
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    // Sessions are stable; some session lands on each branch.
    let branch =
        |session: &str| explain(&["-H", &format!("x-session-id: {session}")])["branch"].clone();
    let branches: std::collections::BTreeSet<String> = (0..40)
        .map(|i| branch(&format!("s{i}")).as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        branches.into_iter().collect::<Vec<_>>(),
        ["gpt-4o", "sonnet"]
    );
    let one = explain(&["-H", "x-session-id: s1"]);
    assert_eq!(one["branch_by"], "key");
    assert_eq!(branch("s1"), one["branch"]);
    // Without the header, --random picks (a draw in the 10% lands on sonnet).
    let by_random: Vec<Value> = (0..50)
        .map(|r| explain(&["--random", &r.to_string()])["branch"].clone())
        .collect();
    assert!(
        by_random.contains(&Value::from("sonnet")) && by_random.contains(&Value::from("gpt-4o"))
    );
    // A cooling model leaves the chain; the next one serves.
    let sonnet = (0..50)
        .find(|r| explain(&["--random", &r.to_string()])["branch"] == "sonnet")
        .unwrap()
        .to_string();
    let cooled = explain(&["--random", &sonnet, "--cooldown", "gpt-4.1=3"]);
    assert_eq!(cooled["model"], "gpt-4o");
    assert_eq!(
        cooled["cooling_down"],
        serde_json::json!([{"model": "gpt-4.1", "remaining_ms": 3000, "skipped": true}])
    );
    let unknown = run(
        &[
            "explain",
            policy.to_str().unwrap(),
            request,
            "--cooldown",
            "gpt-9",
        ],
        b"",
    );
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("unknown model \"gpt-9\""));
}

#[test]
fn check_refuses_bad_split_weights_and_unknown_split_targets() {
    let weight = traffic_policy("bad-weight.json", |p| {
        p["rules"][0]["target"] = serde_json::json!({"split": [
            {"target": "gpt-4o", "weight": -10}, {"target": "gpt-4o-mini", "weight": 10}]});
    });
    check_fails(
        &weight,
        "rules[0].target.split[0].weight: must be an integer from 0 to 1000000, got -10",
    );
    let unknown = traffic_policy("unknown-split-target.json", |p| {
        p["default"] = serde_json::json!({"split": [
            {"target": "gpt-4o", "weight": 1}, {"target": "gpt-5", "weight": 1}]});
    });
    check_fails(&unknown, "default.split[1].target: unknown model \"gpt-5\"");
    let idle = traffic_policy("negative-idle.json", |p| {
        p["retry"] = serde_json::json!({"per_try_idle_timeout_ms": -1});
    });
    let out = run(&["check", idle.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("retry.per_try_idle_timeout_ms: invalid value: integer `-1`"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn check_warns_of_unknown_variant_fields_and_refuses_bad_sets() {
    let typo = traffic_policy("variant-typo.json", |p| {
        p["models"]["gpt-4o"]["set"] =
            serde_json::json!({"service_tier": "flex", "reasoning_efort": "low"});
    });
    let out = run(
        &["check", typo.to_str().unwrap(), "--today", "2026-12-01"],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        "warning: models.gpt-4o.set.reasoning_efort: not a known request field of openai_chat; sent as written\n"
    );
    let not_object = traffic_policy("variant-string.json", |p| {
        p["models"]["gpt-4o"]["set"] = serde_json::json!("flex");
    });
    check_fails(
        &not_object,
        "models.gpt-4o.set: must be an object of request body fields (`{\"service_tier\": \"flex\"}`)",
    );
    let model = traffic_policy("variant-model.json", |p| {
        p["models"]["gpt-4o"]["set"] = serde_json::json!({"model": "gpt-5"});
    });
    check_fails(
        &model,
        "models.gpt-4o.set.model: the body's `model` is the entry's `provider_model`; set that instead",
    );
}

/// The classifier fixtures: 240 synthetic labeled prompts in 8 topics
/// (generated once; "prove"/"derive"-style prompts mostly fail the weak
/// model), the artifact `train` makes of them, and policies using it.
const CLASSIFIER: &str = "tests/data/classifier";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("model-router-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn train_makes_the_committed_artifact() {
    let out_path = scratch("classifier.json");
    let out_arg = out_path.to_str().unwrap();
    let rows = format!("{CLASSIFIER}/rows.jsonl");
    let args = [
        "train",
        &rows,
        "-o",
        out_arg,
        "--weak",
        "weak",
        "--strong",
        "strong",
        "--hash-bits",
        "12",
        "--folds",
        "4",
    ];
    let out = run(&args, b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    golden("train.txt", &text(&out.stdout).replace(out_arg, "OUT"));
    let written = std::fs::read_to_string(&out_path).unwrap();
    let committed = repo().join(CLASSIFIER).join("classifier.json");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&committed, &written).unwrap();
    }
    assert!(
        written == std::fs::read_to_string(&committed).unwrap(),
        "training is deterministic and {CLASSIFIER}/classifier.json is what it makes (UPDATE_GOLDEN=1 rewrites it)"
    );
    let artifact: Value = serde_json::from_str(&written).unwrap();
    assert_eq!(artifact["format"], "model-router-classifier");
    assert_eq!(artifact["training"]["groups"], 8);
    assert!(
        artifact["metrics"]["auc"].as_f64().unwrap() > 0.8,
        "{}",
        artifact["metrics"]
    );
}

#[test]
fn train_labels_strong_wins_only_where_the_strong_model_passes() {
    let rows = format!("{CLASSIFIER}/rows.jsonl");
    let text_rows = std::fs::read_to_string(repo().join(&rows)).unwrap();
    let (mut weak_fails, mut strong_wins) = (0, 0);
    for line in text_rows.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let (w, s) = (
            v["scores"]["weak"].as_f64().unwrap(),
            v["scores"]["strong"].as_f64().unwrap(),
        );
        weak_fails += usize::from(w < 0.5);
        strong_wins += usize::from(w < 0.5 && s >= 0.5);
    }
    assert!(
        strong_wins < weak_fails,
        "the fixture has rows where both fail"
    );
    let trained = |label: &str| {
        let out_path = scratch(&format!("classifier-{label}.json"));
        let out = run(
            &[
                "train",
                &rows,
                "-o",
                out_path.to_str().unwrap(),
                "--weak",
                "weak",
                "--strong",
                "strong",
                "--hash-bits",
                "12",
                "--folds",
                "4",
                "--label",
                label,
            ],
            b"",
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let artifact: Value =
            serde_json::from_str(&std::fs::read_to_string(&out_path).unwrap()).unwrap();
        artifact
    };
    let a = trained("strong-wins");
    assert_eq!(a["training"]["label"], "strong_wins");
    assert_eq!(a["training"]["positives"], strong_wins);
    let a = trained("weak-fails");
    assert_eq!(a["training"]["label"], "weak_fails");
    assert_eq!(a["training"]["positives"], weak_fails);
    let out = run(
        &[
            "train",
            &rows,
            "-o",
            scratch("x.json").to_str().unwrap(),
            "--weak",
            "weak",
            "--label",
            "strong-wins",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--label strong-wins needs --weak MODEL and --strong MODEL"));
}

/// `labels` → `train` → a policy: the rows `labels` writes are rows `train`
/// reads, and the artifact it makes is one the policy compiler accepts.
#[test]
fn labels_make_rows_that_train_accepts() {
    let (mut access, mut feedback) = (String::new(), String::new());
    let topics = [
        ("refunds", "How do refunds work for order", "good"),
        (
            "proofs",
            "Prove that the sum of the series converges for n =",
            "bad",
        ),
    ];
    for i in 0..40 {
        let (_, prompt, verdict) = topics[i % 2];
        // Four rules, each with both kinds of prompt: what is learned holds across groups.
        let group = ["faq", "chat", "billing", "tutor"][(i / 2) % 4];
        let id = format!("req-{i}");
        // Some ratings go the other way: the labels are not a copy of the group.
        let verdict = if i % 7 == 0 {
            if verdict == "good" {
                "bad"
            } else {
                "good"
            }
        } else {
            verdict
        };
        let decision =
            serde_json::json!({"request_id": id, "model": "small", "rule": group, "task": group});
        access.push_str(
            &serde_json::json!({"path": "/v1/chat/completions", "decision": decision.to_string()})
                .to_string(),
        );
        access.push('\n');
        feedback.push_str(&serde_json::json!({"request_id": id, "verdict": verdict, "prompt": format!("{prompt} {i}?")}).to_string());
        feedback.push('\n');
    }
    let (access_log, feedback_log, rows) = (
        scratch("access.log"),
        scratch("feedback.jsonl"),
        scratch("labelled.jsonl"),
    );
    std::fs::write(&access_log, access).unwrap();
    std::fs::write(&feedback_log, feedback).unwrap();
    let out = run(
        &[
            "labels",
            access_log.to_str().unwrap(),
            feedback_log.to_str().unwrap(),
            "--weak",
            "small",
            "-o",
            rows.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let artifact = scratch("from-labels.json");
    let out = run(
        &[
            "train",
            rows.to_str().unwrap(),
            "-o",
            artifact.to_str().unwrap(),
            "--hash-bits",
            "10",
            "--folds",
            "4",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with(
            "trained on 40 rows (20 positive: the weak model fails), 4 groups, 4-fold"
        ),
        "{}",
        text(&out.stdout)
    );
    let policy = scratch("from-labels-policy.json");
    std::fs::write(
        &policy,
        serde_json::json!({
            "models": {"small": {"cluster": "s", "context_window": 8000}, "large": {"cluster": "l", "context_window": 8000}},
            "classifiers": {"feedback": {"artifact": artifact.to_str().unwrap()}},
            "rules": [{"name": "hard", "when": {"score": {"classifier": "feedback", "gt": 0.5}}, "target": "large"}],
            "default": "small",
        })
        .to_string(),
    )
    .unwrap();
    let request = scratch("from-labels-request.json");
    std::fs::write(&request, r#"{"messages":[{"role":"user","content":"Prove that the sum of the series converges for n = 3?"}]}"#).unwrap();
    let out = run(
        &[
            "explain",
            policy.to_str().unwrap(),
            request.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert!(v["scores"]["feedback"].as_f64().unwrap() > 0.5, "{v}");
}

/// `report --policy`: the PSI of the scrape's score histogram against the
/// training scores of the policy's classifier.
#[test]
fn report_prints_score_drift_against_the_training_scores() {
    let artifact: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join(CLASSIFIER).join("classifier.json")).unwrap(),
    )
    .unwrap();
    let quantiles: Vec<f64> = artifact["score_quantiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q.as_f64().unwrap())
        .collect();
    // Live scores like the training ones (10 per training percentile), or all above 0.95.
    let scrape = |count: &dyn Fn(u32) -> usize| {
        let mut text = String::new();
        for le in (1..=20).map(|i| i * 50) {
            text.push_str(&format!(
                "model_router_classifier_score_permille_bucket{{classifier=\"difficulty\",le=\"{le}\"}} {}\n",
                count(le)
            ));
        }
        text.push_str(&format!(
            "model_router_classifier_score_permille_bucket{{classifier=\"difficulty\",le=\"+Inf\"}} {}\n",
            count(2000)
        ));
        let path = scratch(&format!("scrape-{}.txt", count(1000)));
        std::fs::write(&path, text).unwrap();
        path
    };
    let like_training = scrape(&|le| {
        10 * quantiles
            .iter()
            .skip(1)
            .filter(|q| **q * 1000.0 <= f64::from(le))
            .count()
    });
    let policy = format!("{CLASSIFIER}/policy.json");
    let out = run(
        &[
            "report",
            like_training.to_str().unwrap(),
            "--policy",
            &policy,
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("Classifier score drift (PSI of live scores against the training scores):"),
        "{stdout}"
    );
    assert!(stdout.contains("over 1000 scores (stable)"), "{stdout}");
    let shifted = scrape(&|le| if le >= 1000 { 999 } else { 0 });
    let out = run(
        &[
            "report",
            shifted.to_str().unwrap(),
            "--policy",
            &policy,
            "--json",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    let drift = &v["score_drift"]["difficulty"];
    assert_eq!(drift["scores"], 999);
    assert!(drift["psi"].as_f64().unwrap() > 0.25, "{drift}");
}

#[test]
fn train_refuses_rows_without_labels() {
    let out = run(
        &[
            "train",
            &format!("{CLASSIFIER}/rows.jsonl"),
            "-o",
            scratch("x.json").to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("row 1 has no label"),
        "{}",
        text(&out.stderr)
    );
}

/// Like `broken_policy`, in a directory of its own (that test removes its directory).
fn traffic_policy(name: &str, change: impl FnOnce(&mut Value)) -> PathBuf {
    let mut policy: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("examples/policy.json")).unwrap(),
    )
    .unwrap();
    change(&mut policy);
    let dir = std::env::temp_dir().join(format!("model-router-cli-traffic-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(&policy).unwrap()).unwrap();
    path
}

#[test]
fn explain_shows_classifier_scores() {
    let out = run(
        &[
            "explain",
            &format!("{CLASSIFIER}/policy.json"),
            &format!("{CLASSIFIER}/request.json"),
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    golden("explain-classifier.json", &text(&out.stdout));
    let v: Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    let p = v["scores"]["difficulty"].as_f64().unwrap();
    assert!(p > 0.5 && p < 1.0, "{p}");
}

#[test]
fn eval_replays_a_classifier_policy_and_a_rule_only_policy() {
    let svg = scratch("curve.svg");
    let rows = format!("{CLASSIFIER}/rows.jsonl");
    let out = run(
        &[
            "eval",
            &format!("{CLASSIFIER}/policy.json"),
            &rows,
            "--window",
            "60",
            "--svg",
            svg.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    golden(
        "eval-classifier.txt",
        &text(&out.stdout).replace(svg.to_str().unwrap(), "SVG"),
    );
    let drawn = std::fs::read_to_string(&svg).unwrap();
    assert!(drawn.starts_with("<svg") && drawn.contains("classifier difficulty"));
    let out = run(
        &["eval", &format!("{CLASSIFIER}/rules-only.json"), &rows],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    golden("eval-rules.txt", &text(&out.stdout));
}

#[test]
fn envoy_config_inlines_the_artifact() {
    let out = run(&["envoy", &format!("{CLASSIFIER}/policy.json")], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let config = text(&out.stdout);
    assert!(
        config.contains(r#"\"inline\":"#),
        "the policy carries the artifact"
    );
    assert!(!config.contains(r#"\"artifact\""#));
    let out = run(&["check", &format!("{CLASSIFIER}/policy.json")], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

/// RouteLLM's MMLU responses, beside the repository (`../shared`, or
/// `MODEL_ROUTER_SHARED` when the checkout lives elsewhere).
fn routellm_dir() -> PathBuf {
    let shared = std::env::var_os("MODEL_ROUTER_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared"));
    let dir = shared.join("data/routellm");
    assert!(
        dir.join("mmlu").is_dir(),
        "{} is missing: this test needs the shared RouteLLM data (a read-only copy of shared/ beside the repository)",
        dir.display()
    );
    dir
}

#[test]
fn routellm_mmlu_converts_decontaminated() {
    let out_path = scratch("mmlu.jsonl");
    let out = run(
        &[
            "convert-routellm",
            routellm_dir().to_str().unwrap(),
            "-o",
            out_path.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout)
            .starts_with("11556 rows from 43 subjects (4 contaminated prompts dropped)"),
        "{}",
        text(&out.stdout)
    );
    let first: Value = serde_json::from_str(
        std::fs::read_to_string(&out_path)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(first["group"], "abstract_algebra");
    assert!(first["scores"]["gpt-4-1106-preview"].is_number());
}

/// A policy with providers whose key files live in a fresh temp dir.
fn provider_policy(name: &str, keys: &[&str]) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "model-router-cli-providers-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for key in keys {
        std::fs::write(dir.join(key), "sk-secret-value-123\n").unwrap();
    }
    let policy = serde_json::json!({
        "providers": {
            "openai": {"preset": "openai", "auth": {"bearer_file": dir.join("openai.key")}},
            "claude": {"preset": "anthropic", "auth": {"file": dir.join("anthropic.key")}},
        },
        "models": {
            "gpt-4o-mini": {"provider": "openai", "context_window": 128000, "api": "openai_chat"},
            "sonnet": {"provider": "claude", "context_window": 200000},
        },
        "rules": [{"name": "messages", "when": {"api": "anthropic_messages"}, "target": "sonnet"}],
        "default": "gpt-4o-mini",
    });
    let path = dir.join("policy.json");
    std::fs::write(&path, policy.to_string()).unwrap();
    (dir, path)
}

#[test]
fn check_and_envoy_refuse_a_missing_key_file_with_its_json_path() {
    let (dir, path) = provider_policy("missing", &["openai.key"]);
    let missing = dir.join("anthropic.key");
    let expected = format!(
        "invalid policy {}: providers.claude.auth.file: no such file {:?}\n",
        path.display(),
        missing.display().to_string()
    );
    for args in [
        vec!["check"],
        vec!["envoy", "--sds-dir", dir.join("sds").to_str().unwrap()],
    ] {
        let mut args = args.clone();
        args.insert(1, path.to_str().unwrap());
        let out = run(&args, b"");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(text(&out.stderr), expected, "{args:?}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn envoy_writes_sds_files_that_name_the_keys_and_never_holds_a_key() {
    let (dir, path) = provider_policy("sds", &["openai.key", "anthropic.key"]);
    let out = run(&["envoy", path.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--sds-dir DIR is required"),
        "{}",
        text(&out.stderr)
    );
    let sds = dir.join("sds");
    let out = run(
        &[
            "envoy",
            path.to_str().unwrap(),
            "--sds-dir",
            sds.to_str().unwrap(),
            "--upstream",
            "openai=127.0.0.1:9443",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let config = text(&out.stdout);
    assert!(
        !config.contains("sk-secret-value"),
        "a key is in the generated config"
    );
    let config: Value = serde_json::from_str(&config).unwrap();
    let openai = config["static_resources"]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "openai")
        .unwrap();
    // --upstream moves the address only: Host, SNI and the key stay the provider's.
    let endpoint = &openai["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"];
    assert_eq!(
        endpoint["address"]["socket_address"]["address"],
        "127.0.0.1"
    );
    assert_eq!(endpoint["address"]["socket_address"]["port_value"], 9443);
    assert_eq!(endpoint["hostname"], "api.openai.com");
    assert_eq!(
        openai["transport_socket"]["typed_config"]["sni"],
        "api.openai.com"
    );
    for provider in ["openai", "claude"] {
        let file = sds.join(format!("{provider}.sds.json"));
        let secret: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let named = secret["resources"][0]["generic_secret"]["secret"]["filename"]
            .as_str()
            .unwrap();
        assert!(named.ends_with(if provider == "openai" {
            "openai.key"
        } else {
            "anthropic.key"
        }));
        assert!(!secret.to_string().contains("sk-secret-value"));
        assert!(config.to_string().contains(&file.display().to_string()));
    }
    let check = run(&["check", path.to_str().unwrap()], b"");
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));
    let _ = std::fs::remove_dir_all(dir);
}
