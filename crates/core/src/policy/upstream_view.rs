//! The policy as the per-attempt upstream filter needs it. That filter
//! never decides: per attempt it reads the models (by name, in order, with
//! their providers, paths, translation and variant settings) and the
//! cooldown settings. Tasks, rules and classifiers are for deciding only,
//! and at scale they are nearly all of a policy's text and compile (a
//! thousand tasks' keywords and regexes, a classifier's 256 KB weight
//! table), paid in every upstream root context of every VM and by Envoy
//! parsing the bootstrap that embeds the policy once per cluster. So the
//! config generator gives the upstream filter this view instead.
//!
//! The view is the policy's own text with those members left out, every
//! other member kept byte for byte in the order written (model ids are
//! indexes in that order), and `default` replaced by a chain of every
//! model: without the rules that take some APIs first, the written default
//! could be refused for an API it never receives, and a chain of all
//! models accepts every API some model serves.

use super::{Policy, PolicyError};
use crate::request::top_level::TopLevel;
use crate::rewrite::json_string;

/// Members only decisions read.
const DECISION_ONLY: [&str; 3] = ["tasks", "rules", "classifiers"];

/// `json` (whose compiled form is `policy`) reduced to what the upstream
/// filter reads. Compiling the view gives the same models, providers,
/// translation, variant, cooldown and header settings as compiling `json`.
/// The text between kept members (layout, key spelling) is kept too, so a
/// generated config shows the policy as written, minus what was left out.
pub fn upstream_view(policy: &Policy, json: &str) -> Result<String, PolicyError> {
    let top = TopLevel::parse(json).map_err(|e| PolicyError::new(".", e.to_string()))?;
    let base = json.as_ptr() as usize;
    // Where the text of the member being read starts: after `{`, then after
    // the previous member's value (its separator comes with it).
    let opening = json.find('{').map_or(0, |i| i.saturating_add(1));
    let mut out = String::with_capacity(json.len());
    out.push_str(json.get(..opening).unwrap_or_default());
    let mut from = opening;
    let mut first = true;
    for (key, value) in &top.members {
        let start = (value.get().as_ptr() as usize).saturating_sub(base);
        let end = start.saturating_add(value.get().len());
        let before = json.get(from..start).unwrap_or_default();
        from = end;
        if DECISION_ONLY.contains(&key.as_ref()) {
            continue;
        }
        // The first member kept has no comma before it.
        let before = if first {
            let blank = before.len().saturating_sub(before.trim_start().len());
            let (space, rest) = before.split_at(blank);
            out.push_str(space);
            rest.strip_prefix(',').unwrap_or(rest)
        } else {
            before
        };
        first = false;
        out.push_str(before);
        if key == "default" {
            out.push_str(&every_model(policy));
        } else {
            out.push_str(value.get());
        }
    }
    out.push_str(json.get(from..).unwrap_or_default());
    Ok(out)
}

/// A fallback chain of every model, in policy order, as JSON.
fn every_model(policy: &Policy) -> String {
    let names: Vec<String> = policy.models.iter().map(|m| json_string(&m.name)).collect();
    format!("[{}]", names.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"{
        "models": {"b": {"cluster": "c1", "context_window": 1000, "pricing": {"input_per_mtok": 1, "output_per_mtok": 1}},
                   "a": {"cluster": "c2", "context_window": 1000, "pricing": {"input_per_mtok": 1, "output_per_mtok": 1},
                         "api": "anthropic_messages"}},
        "translate": false,
        "tasks": {"code": {"keywords": ["rust"]}},
        "rules": [{"name": "msgs", "when": {"api": "anthropic_messages"}, "target": "a"},
                  {"name": "code", "when": {"task": "code"}, "target": "b"}],
        "default": "b",
        "cooldown": {"default_ms": 1234}
    }"#;

    #[test]
    fn leaves_out_what_only_decisions_read_and_keeps_the_models_in_order() {
        let full = Policy::from_json(POLICY).unwrap();
        let view_text = upstream_view(&full, POLICY).unwrap();
        let view = Policy::from_json(&view_text).unwrap();
        assert!(view.tasks.is_empty() && view.rules.is_empty());
        let names = |p: &Policy| p.models.iter().map(|m| m.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&view), ["b", "a"]);
        assert_eq!(view.cooldown, full.cooldown);
        assert!(!view_text.contains("rust"));
    }

    #[test]
    fn the_first_member_left_out_takes_no_comma_with_it() {
        let json = r#"{ "tasks": {"t": {"keywords": ["k"]}} ,
            "models": {"m": {"cluster": "c", "context_window": 10}}, "rules": [], "default": "m" }"#;
        let full = Policy::from_json(json).unwrap();
        let view = upstream_view(&full, json).unwrap();
        assert_eq!(
            view,
            r#"{ 
            "models": {"m": {"cluster": "c", "context_window": 10}}, "default": ["m"] }"#
        );
        Policy::from_json(&view).unwrap();
    }

    #[test]
    fn the_written_default_alone_would_be_refused_so_it_becomes_every_model() {
        // "b" does not accept anthropic_messages (nor translates): only the
        // first rule made the written default valid.
        let full = Policy::from_json(POLICY).unwrap();
        let view_text = upstream_view(&full, POLICY).unwrap();
        assert!(view_text.contains(r#""default": ["b","a"]"#), "{view_text}");
        let without_rules = POLICY.replace(
            r#"{"name": "msgs", "when": {"api": "anthropic_messages"}, "target": "a"},"#,
            "",
        );
        assert_ne!(without_rules, POLICY);
        let refused = Policy::from_json(&without_rules).unwrap_err();
        assert!(refused.message.contains("anthropic_messages"), "{refused}");
    }
}
