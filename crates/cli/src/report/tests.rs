use super::*;

/// Shaped like Envoy 1.40's `/stats/prometheus` with the generated config's
/// `stats_tags`: `# TYPE` lines, counters in integers, other Envoy stats and
/// a router histogram around the counters `report` reads.
const SCRAPE: &str = r#"# TYPE envoy_cluster_upstream_rq_total counter
envoy_cluster_upstream_rq_total{envoy_cluster_name="openai"} 212
# TYPE model_router_requests_total counter
model_router_requests_total{model="llama-3.1-8b",rule="faq",cluster="local",task="faq",tenant="support"} 120
model_router_requests_total{model="gpt-4o-mini",rule="faq",cluster="openai",task="faq",tenant="search"} 8
model_router_requests_total{model="gpt-4o-mini",rule="default",cluster="openai",task="none",tenant="search"} 40
model_router_requests_total{model="gpt-4o",rule="code",cluster="openai",task="code",tenant="support"} 12
model_router_requests_total{model="claude-3-5-haiku",rule="default",cluster="anthropic",task="none",tenant="none"} 0
# TYPE model_router_prompt_tokens_total counter
model_router_prompt_tokens_total{model="llama-3.1-8b",rule="faq",cluster="local",task="faq",tenant="support"} 6000
model_router_prompt_tokens_total{model="gpt-4o-mini",rule="faq",cluster="openai",task="faq",tenant="search"} 400
model_router_prompt_tokens_total{model="gpt-4o-mini",rule="default",cluster="openai",task="none",tenant="search"} 20000
model_router_prompt_tokens_total{model="gpt-4o",rule="code",cluster="openai",task="code",tenant="support"} 3600
# TYPE model_router_completion_tokens_total counter
model_router_completion_tokens_total{model="llama-3.1-8b",rule="faq",cluster="local",task="faq",tenant="support"} 7200
model_router_completion_tokens_total{model="gpt-4o-mini",rule="faq",cluster="openai",task="faq",tenant="search"} 480
model_router_completion_tokens_total{model="gpt-4o-mini",rule="default",cluster="openai",task="none",tenant="search"} 8000
model_router_completion_tokens_total{model="gpt-4o",rule="code",cluster="openai",task="code",tenant="support"} 4800
# TYPE model_router_cost_micro_usd_total counter
model_router_cost_micro_usd_total{model="llama-3.1-8b",rule="faq",cluster="local",task="faq",tenant="support"} 480
model_router_cost_micro_usd_total{model="gpt-4o-mini",rule="faq",cluster="openai",task="faq",tenant="search"} 348
model_router_cost_micro_usd_total{model="gpt-4o-mini",rule="default",cluster="openai",task="none",tenant="search"} 7800
model_router_cost_micro_usd_total{model="gpt-4o",rule="code",cluster="openai",task="code",tenant="support"} 57000
# TYPE model_router_baseline_cost_micro_usd_total counter
model_router_baseline_cost_micro_usd_total{model="llama-3.1-8b",rule="faq",cluster="local",task="faq",tenant="support"} 87000
model_router_baseline_cost_micro_usd_total{model="gpt-4o-mini",rule="faq",cluster="openai",task="faq",tenant="search"} 5800
model_router_baseline_cost_micro_usd_total{model="gpt-4o-mini",rule="default",cluster="openai",task="none",tenant="search"} 130000
model_router_baseline_cost_micro_usd_total{model="gpt-4o",rule="code",cluster="openai",task="code",tenant="support"} 57000
# TYPE model_router_fallbacks_total counter
model_router_fallbacks_total{from="gpt-4o-mini",to="claude-3-5-haiku"} 3
model_router_fallbacks_total{from="llama-3.1-8b",to="gpt-4o-mini"} 0
# TYPE model_router_usage_missing_total counter
model_router_usage_missing_total{model="gpt-4o-mini"} 2
# TYPE model_router_rejected_requests_total counter
model_router_rejected_requests_total{reason="budget_exceeded"} 1
# TYPE model_router_request_prompt_tokens histogram
model_router_request_prompt_tokens_bucket{le="64"} 100
model_router_request_prompt_tokens_bucket{le="+Inf"} 180
model_router_request_prompt_tokens_sum{} 30000.5
model_router_request_prompt_tokens_count{} 180
"#;

fn report(dimensions: &[Dimension]) -> Report {
    build(&parse_exposition(SCRAPE).unwrap(), dimensions)
}

#[test]
fn parses_samples_labels_and_values() {
    let samples = parse_exposition(SCRAPE).unwrap();
    assert_eq!(samples.len(), 30);
    let first = &samples[1];
    assert_eq!(first.name, "model_router_requests_total");
    assert_eq!(first.label("model"), Some("llama-3.1-8b"));
    assert_eq!(first.label("tenant"), Some("support"));
    assert_eq!(first.as_u64(), Some(120));
    let sum = samples
        .iter()
        .find(|s| s.name == "model_router_request_prompt_tokens_sum")
        .unwrap();
    assert!(sum.labels.is_empty());
    assert_eq!(sum.as_u64(), Some(30001));
    let inf = samples
        .iter()
        .find(|s| s.label("le") == Some("+Inf"))
        .unwrap();
    assert_eq!(inf.value, "180");
}

#[test]
fn label_values_keep_separators_and_escapes() {
    let text = r#"model_router_requests_total{model="org/m:1@v2",tenant="a,b=c}d \"q\" back\\slash\nnl"} 7 1700000000000"#;
    let samples = parse_exposition(text).unwrap();
    assert_eq!(samples.len(), 1);
    assert_eq!(samples[0].label("model"), Some("org/m:1@v2"));
    assert_eq!(
        samples[0].label("tenant"),
        Some("a,b=c}d \"q\" back\\slash\nnl")
    );
    assert_eq!(samples[0].as_u64(), Some(7));
    // A trailing comma and spaces are allowed by the format.
    let spaced = parse_exposition("m{ a = \"1\" , b=\"2\", } 3").unwrap();
    assert_eq!(
        spaced[0].labels,
        vec![("a".into(), "1".into()), ("b".into(), "2".into())]
    );
}

#[test]
fn malformed_lines_are_errors_with_line_numbers() {
    for bad in [
        "m{a=\"1\" 2",
        "m{a=1} 2",
        "m{a=\"1} 2",
        "m{a=\"1\"b=\"2\"} 3",
        "m 12abc",
        "m",
        "{a=\"1\"} 2",
        "m 1 2 3",
        "m 1 soon",
    ] {
        let err = parse_exposition(&format!("# TYPE m counter\n\n{bad}\n")).unwrap_err();
        assert_eq!(err.line, 3, "{bad}: {err}");
    }
}

#[test]
fn special_values_parse_but_are_not_counts() {
    let samples = parse_exposition("a NaN\nb +Inf\nc -Inf\nd -1\ne 1.5e3").unwrap();
    let values: Vec<Option<u64>> = samples.iter().map(PromSample::as_u64).collect();
    assert_eq!(values, vec![None, None, None, None, Some(1500)]);
}

#[test]
fn sums_per_dimension_and_in_total() {
    let report = report(&Dimension::ALL);
    assert_eq!(
        report.total,
        Totals {
            requests: 180,
            prompt_tokens: 30000,
            completion_tokens: 20480,
            cost_micro_usd: 65628,
            baseline_cost_micro_usd: 279800,
            ..Totals::default()
        }
    );
    assert_eq!(report.total.savings_micro_usd(), 214172);
    let by_model = &report.tables[0];
    assert_eq!(by_model.dimension, Dimension::Model);
    let names: Vec<&str> = by_model.rows.iter().map(|(k, _)| k.as_str()).collect();
    // Most requests first; the all-zero claude row is left out.
    assert_eq!(names, ["llama-3.1-8b", "gpt-4o-mini", "gpt-4o"]);
    let mini = &by_model.rows[1].1;
    assert_eq!(mini.requests, 48);
    assert_eq!(mini.cost_micro_usd, 8148);
    assert_eq!(mini.baseline_cost_micro_usd, 135800);
    let by_rule = &report.tables[1];
    assert_eq!(by_rule.rows[0].0, "faq");
    assert_eq!(by_rule.rows[0].1.requests, 128);
    let by_tenant = &report.tables[2];
    let tenants: Vec<(&str, u64)> = by_tenant
        .rows
        .iter()
        .map(|(k, t)| (k.as_str(), t.requests))
        .collect();
    assert_eq!(tenants, [("support", 132), ("search", 48)]);
    assert_eq!(
        report.fallbacks,
        vec![("gpt-4o-mini".into(), "claude-3-5-haiku".into(), 3)]
    );
    assert_eq!(report.rejected, vec![("budget_exceeded".into(), 1)]);
    assert_eq!(report.usage_missing, 2);
}

#[test]
fn savings_percent_and_money_formatting() {
    let t = Totals {
        cost_micro_usd: 250,
        baseline_cost_micro_usd: 1000,
        ..Totals::default()
    };
    assert_eq!(t.savings_percent(), Some(75.0));
    assert_eq!(Totals::default().savings_percent(), None);
    let worse = Totals {
        cost_micro_usd: 1100,
        baseline_cost_micro_usd: 1000,
        ..Totals::default()
    };
    assert_eq!(worse.savings_micro_usd(), -100);
    assert_eq!(format_usd(-100), "-$0.000100");
    assert_eq!(format_usd(0), "$0.000000");
    assert_eq!(format_usd(12_345), "$0.012345");
    assert_eq!(format_usd(1_234_567_890), "$1,234.567890");
    assert_eq!(group_digits(0), "0");
    assert_eq!(group_digits(999), "999");
    assert_eq!(group_digits(1000), "1,000");
    assert_eq!(group_digits(12_345_678), "12,345,678");
}

#[test]
fn renders_aligned_tables_and_a_total() {
    let text = render(&report(&[Dimension::Rule]));
    let expected = "\
By rule:
rule     requests  prompt tokens  completion tokens       cost  baseline cost    savings  savings %
faq           128          6,400              7,680  $0.000828      $0.092800  $0.091972      99.1%
default        40         20,000              8,000  $0.007800      $0.130000  $0.122200      94.0%
code           12          3,600              4,800  $0.057000      $0.057000  $0.000000       0.0%
---------------------------------------------------------------------------------------------------
total         180         30,000             20,480  $0.065628      $0.279800  $0.214172      76.5%

Total: 180 requests, 30,000 prompt + 20,480 completion tokens; cost $0.065628 vs $0.279800 on the baseline model: saved $0.214172 (76.5%)
Fallbacks: gpt-4o-mini -> claude-3-5-haiku x3
Rejected: budget_exceeded x1
Not billed: 2 responses carried no usage (errors, cut-off streams)
";
    assert_eq!(text, expected, "\n{text}");
}

#[test]
fn a_scrape_without_router_metrics_says_so() {
    let samples = parse_exposition("envoy_server_live 1\n").unwrap();
    let report = build(&samples, &Dimension::ALL);
    assert!(!report.has_router_metrics);
    assert!(render(&report).starts_with("No model_router_* metrics"));
}

#[test]
fn json_has_exact_micro_usd_and_rows_in_order() {
    let value = to_json(&report(&[Dimension::Tenant, Dimension::Model]));
    assert_eq!(value["tables"][0]["by"], "tenant");
    assert_eq!(value["tables"][0]["rows"][0]["tenant"], "support");
    assert_eq!(value["tables"][0]["rows"][0]["requests"], 132);
    assert_eq!(value["tables"][1]["by"], "model");
    assert_eq!(value["total"]["cost_micro_usd"], 65628);
    assert_eq!(value["total"]["savings_micro_usd"], 214172);
    assert_eq!(value["total"]["cost_usd"], 0.065628);
    assert_eq!(value["fallbacks"][0]["count"], 3);
    assert_eq!(value["usage_missing"], 2);
}

#[test]
fn dimension_lists() {
    assert_eq!(
        Dimension::parse_list("tenant, model,tenant").unwrap(),
        vec![Dimension::Tenant, Dimension::Model]
    );
    assert!(Dimension::parse_list("cluster").is_err());
    assert!(Dimension::parse_list(",").is_err());
}

#[test]
fn only_loopback_http_urls() {
    for ok in [
        "http://127.0.0.1:9901/stats/prometheus",
        "http://127.1.2.3/stats/prometheus",
        "http://localhost:9901/stats/prometheus?usedonly",
        "http://[::1]:9901/stats/prometheus",
        "http://LOCALHOST",
    ] {
        assert!(check_loopback_http_url(ok).is_ok(), "{ok}");
    }
    for bad in [
        "https://127.0.0.1:9901/stats/prometheus",
        "http://10.0.0.1:9901/stats/prometheus",
        "http://example.com/stats",
        "http://127.0.0.1@example.com/",
        "http://localhost.example.com/",
        "http://[::2]:9901/",
        "ftp://127.0.0.1/",
        "127.0.0.1:9901",
    ] {
        assert!(check_loopback_http_url(bad).is_err(), "{bad}");
    }
}

#[test]
fn feedback_sums_into_quality_and_a_branch_table_appears_only_for_splits() {
    let scrape = r#"model_router_requests_total{model="s",rule="faq",tenant="t"} 4
model_router_feedback_total{model="s",rule="faq",branch="none",tenant="t",verdict="good"} 3
model_router_feedback_total{model="s",rule="faq",branch="none",tenant="t",verdict="bad"} 1
model_router_feedback_score_milli_total{model="s",rule="faq",branch="none",tenant="t",verdict="good"} 2700
model_router_feedback_unknown_total 2
"#;
    let samples = parse_exposition(scrape).unwrap();
    let report = build(&samples, &Dimension::ALL);
    let q = report.total.quality;
    assert_eq!((q.feedback, q.good, q.score_milli), (4, 3, 2700));
    assert_eq!(report.feedback_unknown, 2);
    // No split: no branch table.
    assert!(report
        .tables
        .iter()
        .all(|t| t.dimension != Dimension::Branch));
    let split = scrape.replace("branch=\"none\"", "branch=\"a\"");
    let report = build(&parse_exposition(&split).unwrap(), &Dimension::ALL);
    let branch = report
        .tables
        .iter()
        .find(|t| t.dimension == Dimension::Branch)
        .unwrap();
    assert_eq!(
        branch
            .rows
            .iter()
            .find(|r| r.0 == "a")
            .unwrap()
            .1
            .quality
            .feedback,
        4
    );
}
