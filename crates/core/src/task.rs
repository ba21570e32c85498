//! Task categories: keyword and pattern detectors over the prompt text.

use regex::Regex;

use serde::Deserialize;

use crate::request::{RequestFacts, Role};

/// Which text task detection reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scan {
    #[default]
    LastUser,
    AllUser,
    System,
    All,
}

/// A compiled task category.
#[derive(Debug, Clone)]
pub struct Task {
    pub name: String,
    /// Keywords as one case-insensitive whole-word alternation, and the
    /// user's patterns, each built once when the policy loads.
    pub detectors: Vec<Regex>,
    pub scan: Scan,
}

impl Task {
    /// Builds the whole-word, case-insensitive matcher for `keywords`.
    /// Word edges are "not a word character" rather than `\b`, so keywords
    /// that start or end with punctuation (`c++`, `.net`) still match.
    pub fn keyword_regex(keywords: &[String]) -> Result<Regex, regex::Error> {
        let alternation: Vec<String> = keywords.iter().map(|k| regex::escape(k)).collect();
        Regex::new(&format!(
            r"(?i)(?:^|[^\w])(?:{})(?:[^\w]|$)",
            alternation.join("|")
        ))
    }

    pub fn matches(&self, facts: &RequestFacts) -> bool {
        let last_user = facts
            .content
            .iter()
            .filter(|s| s.role == Role::User)
            .map(|s| s.message)
            .max();
        facts
            .content
            .iter()
            .filter(|segment| match self.scan {
                Scan::LastUser => Some(segment.message) == last_user && segment.role == Role::User,
                Scan::AllUser => segment.role == Role::User,
                Scan::System => matches!(segment.role, Role::System | Role::Developer),
                Scan::All => true,
            })
            .any(|segment| self.detectors.iter().any(|d| d.is_match(&segment.text)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(keywords: &[&str], scan: Scan) -> Task {
        let keywords: Vec<String> = keywords.iter().map(|s| s.to_string()).collect();
        Task {
            name: "t".into(),
            detectors: vec![Task::keyword_regex(&keywords).unwrap()],
            scan,
        }
    }

    fn facts(body: &str) -> RequestFacts {
        crate::request::parse("/v1/chat/completions", body.as_bytes()).unwrap()
    }

    #[test]
    fn keywords_match_whole_words_case_insensitively() {
        let t = task(&["rust", "c++"], Scan::LastUser);
        for (text, hit) in [
            ("Write RUST code", true),
            ("trusted", false),
            ("in C++ please", true),
            ("c++", true),
            ("c+", false),
        ] {
            let body = format!(r#"{{"messages":[{{"role":"user","content":{text:?}}}]}}"#);
            assert_eq!(t.matches(&facts(&body)), hit, "{text}");
        }
    }

    #[test]
    fn scan_scopes() {
        let body = r#"{"messages":[
            {"role":"system","content":"you review rust"},
            {"role":"user","content":"rust question"},
            {"role":"assistant","content":"ok"},
            {"role":"user","content":"thanks"}]}"#;
        let f = facts(body);
        assert!(!task(&["rust"], Scan::LastUser).matches(&f));
        assert!(task(&["rust"], Scan::AllUser).matches(&f));
        assert!(task(&["review"], Scan::System).matches(&f));
        assert!(!task(&["review"], Scan::AllUser).matches(&f));
        assert!(task(&["ok"], Scan::All).matches(&f));
    }
}
