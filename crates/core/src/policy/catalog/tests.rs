use super::*;
use crate::policy::Policy;

fn date(text: &str) -> Option<time::Date> {
    time::Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()
}

fn policy_with(model: serde_json::Value) -> Result<Policy, crate::policy::PolicyError> {
    let json = serde_json::json!({"models": {"m": model}, "default": "m"});
    Policy::from_json(&json.to_string())
}

#[test]
fn the_shipped_catalogue_parses_and_every_entry_compiles() {
    let catalog = Catalog::shipped().unwrap();
    assert!(catalog.entries.len() >= 30);
    for provider in [
        "openai",
        "anthropic",
        "google",
        "mistral",
        "deepseek",
        "groq",
        "together",
    ] {
        assert!(
            catalog.entries.iter().any(|e| e.provider() == provider),
            "no {provider} entry"
        );
    }
    for entry in &catalog.entries {
        let policy = policy_with(serde_json::json!({"cluster": "c", "catalog": entry.id}))
            .unwrap_or_else(|e| panic!("{}: {e}", entry.id));
        let model = &policy.models[0];
        assert_eq!(model.context_window, entry.context_window, "{}", entry.id);
        assert!(
            model.pricing.base.input > 0 && model.pricing.base.output > 0,
            "{}",
            entry.id
        );
        assert_eq!(model.catalog.as_deref(), Some(entry.id.as_str()));
        assert!(
            date(&entry.read).is_some(),
            "{}: read {:?}",
            entry.id,
            entry.read
        );
    }
    let mut ids: Vec<&str> = catalog.entries.iter().map(|e| e.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), catalog.entries.len(), "duplicate ids");
}

#[test]
fn a_catalogue_model_takes_prices_window_and_max_output() {
    let policy = policy_with(serde_json::json!({
        "cluster": "anthropic", "provider_model": "claude-sonnet-4-20250514", "pricing": "catalog"
    }))
    .unwrap();
    let m = &policy.models[0];
    assert_eq!(m.catalog.as_deref(), Some("anthropic/claude-sonnet-4"));
    assert_eq!(
        (m.context_window, m.max_output_tokens),
        (1_000_000, Some(64_000))
    );
    let base = m.pricing.base;
    // $3 input, $0.30 cache reads, $3.75 / $6 writes, $15 output, in pico-USD per token.
    assert_eq!(
        (
            base.input,
            base.cached_input,
            base.cache_write,
            base.cache_write_1h,
            base.output
        ),
        (3_000_000, 300_000, 3_750_000, 6_000_000, 15_000_000)
    );
    let long = m.pricing.long_context.unwrap();
    assert_eq!(long.above_prompt_tokens, 200_000);
    assert_eq!(
        (long.rates.input, long.rates.output),
        (6_000_000, 22_500_000)
    );
}

#[test]
fn the_policy_s_own_numbers_win() {
    let policy = policy_with(serde_json::json!({
        "cluster": "c", "catalog": "anthropic/claude-sonnet-4", "context_window": 200000,
        "pricing": {"output_per_mtok": 14, "long_context": {"input_per_mtok": 5}}
    }))
    .unwrap();
    let m = &policy.models[0];
    assert_eq!(m.context_window, 200_000);
    // The catalogue's max output (64K) still fits the policy's window.
    assert_eq!(m.max_output_tokens, Some(64_000));
    assert_eq!(
        (m.pricing.base.input, m.pricing.base.output),
        (3_000_000, 14_000_000)
    );
    let long = m.pricing.long_context.unwrap();
    assert_eq!(
        (long.rates.input, long.rates.output),
        (5_000_000, 22_500_000)
    );
}

#[test]
fn unknown_and_ambiguous_names_are_refused_with_their_path() {
    let err =
        policy_with(serde_json::json!({"cluster": "c", "catalog": "openai/gpt-9"})).unwrap_err();
    assert_eq!(err.path, "models.m.catalog");
    assert!(err.message.contains("unknown catalogue model"), "{err}");
    let err = policy_with(serde_json::json!({
        "cluster": "c", "provider_model": "openai/gpt-oss-120b", "pricing": "catalog"
    }))
    .unwrap_err();
    assert_eq!(err.path, "models.m.pricing");
    assert!(
        err.message.contains("groq/openai/gpt-oss-120b")
            && err.message.contains("together/openai/gpt-oss-120b"),
        "{err}"
    );
    let err = policy_with(serde_json::json!({"cluster": "c", "pricing": "catalog"})).unwrap_err();
    assert!(err.message.contains("no catalogue model is named"), "{err}");
    let err = policy_with(serde_json::json!({"cluster": "c", "pricing": "free"})).unwrap_err();
    assert_eq!(err.path, "models.m.pricing");
    let err = policy_with(serde_json::json!({"cluster": "c"})).unwrap_err();
    assert_eq!(err.path, "models.m.context_window");
}

#[test]
fn entries_filter_by_id_and_alias() {
    let catalog = Catalog::shipped().unwrap();
    let claude = catalog.matching(Some("CLAUDE"));
    assert!(!claude.is_empty() && claude.iter().all(|e| e.provider() == "anthropic"));
    assert_eq!(
        catalog.matching(Some("20250514")).len(),
        2,
        "aliases match too"
    );
    assert_eq!(catalog.matching(None).len(), catalog.entries.len());
    assert_eq!(catalog.named("gpt-4o").len(), 1);
    assert_eq!(
        catalog.named("claude-3-5-haiku-latest")[0].id,
        "anthropic/claude-3-5-haiku"
    );
}

#[test]
fn a_catalogue_with_a_bad_date_or_source_is_refused() {
    let entry = |read: &str, source: &str| {
        format!(
            r#"{{"models":[{{"id":"p/m","context_window":1,"pricing":{{"input_per_mtok":1,"output_per_mtok":1}},"source":"{source}","read":"{read}"}}]}}"#
        )
    };
    assert!(Catalog::from_json(&entry("2026-12-01", "https://example.com")).is_ok());
    assert!(Catalog::from_json(&entry("01/12/2026", "https://example.com")).is_err());
    assert!(Catalog::from_json(&entry("2026-12-01", "http://example.com")).is_err());
}
