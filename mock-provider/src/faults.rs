//! Fault specs: what a request (header `x-mock-fault`) or the whole process
//! (`--fault`) asks the mock to do instead of answering normally.
//!
//! A spec is a comma-separated list of `TARGET=ACTION` items. TARGET is the
//! provider's name, a model name (compared with the request body's `model`)
//! or `*`; an item without `=` targets `*`. The first item whose target
//! matches (and, for `count:`, that still has uses left) applies.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

/// What to do to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Answer this HTTP status with an error body (429 also sends `retry-after: 0`).
    Status(u16),
    /// Close the connection without any response.
    Reset,
    /// Send status, headers and part of the body, then abort the connection.
    ResetMidBody,
    /// Wait before answering normally.
    Delay(Duration),
    /// Streams: headers at once, first event after the delay (others: like `delay`).
    FirstByteDelay(Duration),
    /// Never answer.
    Hang,
    /// 200 with `content-type: application/json` and a body that is not JSON.
    Garbage,
    /// Apply the inner action to the first N matching requests only.
    Count(u64, Box<Action>),
    /// Answer this status with `retry-after: SECONDS` (`retry-after:SECONDS:STATUS`).
    StatusRetryAfter(u16, u64),
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Status(code) => write!(f, "{code}"),
            Action::Reset => f.write_str("reset"),
            Action::ResetMidBody => f.write_str("reset-mid-body"),
            Action::Delay(d) => write!(f, "delay:{}", d.as_millis()),
            Action::FirstByteDelay(d) => write!(f, "first-byte-delay:{}", d.as_millis()),
            Action::Hang => f.write_str("hang"),
            Action::Garbage => f.write_str("garbage"),
            Action::Count(n, inner) => write!(f, "count:{n}:{inner}"),
            Action::StatusRetryAfter(code, secs) => write!(f, "retry-after:{secs}:{code}"),
        }
    }
}

/// Who an item applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Any,
    /// A provider name or a model name.
    Named(String),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Any => f.write_str("*"),
            Target::Named(name) => f.write_str(name),
        }
    }
}

/// One `TARGET=ACTION` item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub target: Target,
    pub action: Action,
}

impl Rule {
    fn matches(&self, provider: &str, model: Option<&str>) -> bool {
        match &self.target {
            Target::Any => true,
            Target::Named(name) => name == provider || Some(name.as_str()) == model,
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.target, self.action)
    }
}

/// A parsed spec: items in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultSpec {
    pub rules: Vec<Rule>,
}

/// A spec that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultSpecError(pub String);

impl fmt::Display for FaultSpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid fault spec: {}", self.0)
    }
}

impl std::error::Error for FaultSpecError {}

impl FaultSpec {
    /// Parses `TARGET=ACTION[,TARGET=ACTION]...`. Blank items are ignored.
    pub fn parse(spec: &str) -> Result<FaultSpec, FaultSpecError> {
        let mut rules = Vec::new();
        for item in spec.split(',') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let (target, action) = match item.split_once('=') {
                Some((target, action)) => (target.trim(), action.trim()),
                None => ("*", item),
            };
            let target = match target {
                "" => return Err(FaultSpecError(format!("empty target in {item:?}"))),
                "*" => Target::Any,
                name => Target::Named(name.to_string()),
            };
            let action =
                parse_action(action).map_err(|why| FaultSpecError(format!("{item:?}: {why}")))?;
            rules.push(Rule { target, action });
        }
        Ok(FaultSpec { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// Parses one ACTION.
pub fn parse_action(text: &str) -> Result<Action, String> {
    let text = text.trim();
    if let Some(rest) = text.strip_prefix("count:") {
        let (n, inner) = rest
            .split_once(':')
            .ok_or_else(|| "count needs the form count:N:ACTION".to_string())?;
        let n: u64 = n
            .trim()
            .parse()
            .map_err(|_| format!("count {n:?} is not a non-negative integer"))?;
        let inner = parse_action(inner)?;
        if matches!(inner, Action::Count(..)) {
            return Err("count cannot be nested".to_string());
        }
        return Ok(Action::Count(n, Box::new(inner)));
    }
    if let Some(rest) = text.strip_prefix("retry-after:") {
        let (secs, status) = rest
            .split_once(':')
            .ok_or_else(|| "retry-after needs the form retry-after:SECONDS:STATUS".to_string())?;
        let secs: u64 = secs
            .trim()
            .parse()
            .map_err(|_| format!("retry-after {secs:?} is not a number of seconds"))?;
        return match parse_action(status)? {
            Action::Status(code) => Ok(Action::StatusRetryAfter(code, secs)),
            _ => Err("retry-after:SECONDS:STATUS needs a status such as 429".to_string()),
        };
    }
    if let Some(ms) = text.strip_prefix("delay:") {
        return Ok(Action::Delay(parse_ms(ms)?));
    }
    if let Some(ms) = text.strip_prefix("first-byte-delay:") {
        return Ok(Action::FirstByteDelay(parse_ms(ms)?));
    }
    match text {
        "reset" => Ok(Action::Reset),
        "reset-mid-body" => Ok(Action::ResetMidBody),
        "hang" => Ok(Action::Hang),
        "garbage" => Ok(Action::Garbage),
        _ if text.len() == 3 && text.bytes().all(|b| b.is_ascii_digit()) => {
            let code: u16 = text
                .parse()
                .map_err(|_| format!("status {text:?} is not a number"))?;
            if (200..=599).contains(&code) {
                Ok(Action::Status(code))
            } else {
                Err(format!("status {code} is outside 200..=599"))
            }
        }
        _ => Err(format!(
            "unknown action {text:?} (expected a status such as 429, reset, reset-mid-body, \
             delay:MS, first-byte-delay:MS, hang, garbage, retry-after:SECONDS:STATUS or \
             count:N:ACTION)"
        )),
    }
}

fn parse_ms(text: &str) -> Result<Duration, String> {
    text.trim()
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| format!("{text:?} is not a number of milliseconds"))
}

/// Where a spec came from; `count:` budgets are kept per source and item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    Header,
    Flag,
}

/// The fault chosen for a request, already resolved through `count:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    /// The action to perform (never `Count`).
    pub action: Action,
    /// The item that chose it, as text, for the request record.
    pub rule: String,
}

/// Process-wide state of `count:` items: how many requests each has matched.
#[derive(Debug, Default)]
pub struct Counters {
    used: Mutex<HashMap<(Source, String), u64>>,
}

impl Counters {
    pub fn new() -> Counters {
        Counters::default()
    }

    /// Forgets every count (as if the process had just started).
    pub fn reset(&self) {
        if let Ok(mut used) = self.used.lock() {
            used.clear();
        }
    }

    /// Takes one use of the budget of `rule`; false when it is spent.
    fn take(&self, source: Source, rule: &Rule, budget: u64) -> bool {
        let Ok(mut used) = self.used.lock() else {
            return false;
        };
        let count = used.entry((source, rule.to_string())).or_insert(0);
        if *count < budget {
            *count += 1;
            true
        } else {
            false
        }
    }
}

/// Picks the fault for a request: the header's items first, then the flags',
/// the first matching item with uses left wins.
pub fn choose(
    specs: &[(Source, &FaultSpec)],
    counters: &Counters,
    provider: &str,
    model: Option<&str>,
) -> Option<Chosen> {
    for (source, spec) in specs {
        for rule in &spec.rules {
            if !rule.matches(provider, model) {
                continue;
            }
            let action = match &rule.action {
                Action::Count(budget, inner) => {
                    if !counters.take(*source, rule, *budget) {
                        continue;
                    }
                    (**inner).clone()
                }
                action => action.clone(),
            };
            return Some(Chosen {
                action,
                rule: rule.to_string(),
            });
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn named(name: &str) -> Target {
        Target::Named(name.to_string())
    }

    #[test]
    fn parses_every_action() {
        let spec = FaultSpec::parse(
            "a=429, b=reset,c=reset-mid-body,d=delay:250,e=first-byte-delay:10,\
             f=hang,g=garbage,h=count:2:503,i=500,j=retry-after:2:429",
        )
        .unwrap();
        let actions: Vec<_> = spec.rules.iter().map(|r| r.action.clone()).collect();
        assert_eq!(
            actions,
            vec![
                Action::Status(429),
                Action::Reset,
                Action::ResetMidBody,
                Action::Delay(Duration::from_millis(250)),
                Action::FirstByteDelay(Duration::from_millis(10)),
                Action::Hang,
                Action::Garbage,
                Action::Count(2, Box::new(Action::Status(503))),
                Action::Status(500),
                Action::StatusRetryAfter(429, 2),
            ]
        );
        assert_eq!(spec.rules[9].to_string(), "j=retry-after:2:429");
        assert_eq!(spec.rules[0].target, named("a"));
    }

    #[test]
    fn item_without_target_means_any() {
        let spec = FaultSpec::parse("503").unwrap();
        assert_eq!(spec.rules[0].target, Target::Any);
        let spec = FaultSpec::parse("*=count:1:reset").unwrap();
        assert_eq!(spec.rules[0].target, Target::Any);
        assert_eq!(spec.rules[0].to_string(), "*=count:1:reset");
    }

    #[test]
    fn model_names_with_colons_and_slashes_are_targets() {
        let spec = FaultSpec::parse("llama3:8b=429,accounts/x/models/y=500").unwrap();
        assert_eq!(spec.rules[0].target, named("llama3:8b"));
        assert_eq!(spec.rules[1].target, named("accounts/x/models/y"));
    }

    #[test]
    fn rejects_bad_specs() {
        for bad in [
            "a=",
            "=429",
            "a=42",
            "a=4290",
            "a=099",
            "a=600",
            "a=delay:",
            "a=delay:x",
            "a=count:1",
            "a=count:x:429",
            "a=count:1:count:1:429",
            "a=explode",
            "a=retry-after:2",
            "a=retry-after:x:429",
            "a=retry-after:2:hang",
        ] {
            assert!(FaultSpec::parse(bad).is_err(), "{bad} should not parse");
        }
        assert!(FaultSpec::parse("").unwrap().is_empty());
        assert!(FaultSpec::parse(" , ").unwrap().is_empty());
    }

    #[test]
    fn first_matching_item_wins() {
        let spec = FaultSpec::parse("p1=503,gpt-4o=429,*=500").unwrap();
        let counters = Counters::new();
        let specs = [(Source::Header, &spec)];
        let pick = |provider, model| choose(&specs, &counters, provider, model).map(|c| c.action);
        assert_eq!(pick("p1", Some("gpt-4o")), Some(Action::Status(503)));
        assert_eq!(pick("p2", Some("gpt-4o")), Some(Action::Status(429)));
        assert_eq!(pick("p2", Some("other")), Some(Action::Status(500)));
        assert_eq!(pick("p2", None), Some(Action::Status(500)));
    }

    #[test]
    fn no_match_means_no_fault() {
        let spec = FaultSpec::parse("p1=503,gpt-4o=429").unwrap();
        let counters = Counters::new();
        assert_eq!(
            choose(&[(Source::Header, &spec)], &counters, "p2", Some("m")),
            None
        );
    }

    #[test]
    fn count_applies_to_first_n_then_falls_through() {
        let spec = FaultSpec::parse("m=count:2:503,m=delay:5").unwrap();
        let counters = Counters::new();
        let specs = [(Source::Header, &spec)];
        let pick = || choose(&specs, &counters, "p", Some("m")).map(|c| c.action);
        assert_eq!(pick(), Some(Action::Status(503)));
        assert_eq!(pick(), Some(Action::Status(503)));
        assert_eq!(pick(), Some(Action::Delay(Duration::from_millis(5))));
        // Requests that do not match do not use the budget.
        let other = choose(&specs, &counters, "p", Some("x"));
        assert_eq!(other, None);
        counters.reset();
        assert_eq!(pick(), Some(Action::Status(503)));
    }

    #[test]
    fn count_budgets_are_per_item_and_source() {
        let a = FaultSpec::parse("*=count:1:503").unwrap();
        let b = FaultSpec::parse("*=count:1:429").unwrap();
        let counters = Counters::new();
        let first = choose(&[(Source::Header, &a)], &counters, "p", None);
        assert_eq!(first.unwrap().action, Action::Status(503));
        assert_eq!(choose(&[(Source::Header, &a)], &counters, "p", None), None);
        // Same text from the flag has its own budget; another item too.
        assert!(choose(&[(Source::Flag, &a)], &counters, "p", None).is_some());
        assert!(choose(&[(Source::Header, &b)], &counters, "p", None).is_some());
    }

    #[test]
    fn header_items_come_before_flag_items() {
        let header = FaultSpec::parse("gpt-4o=429").unwrap();
        let flag = FaultSpec::parse("*=500").unwrap();
        let counters = Counters::new();
        let specs = [(Source::Header, &header), (Source::Flag, &flag)];
        let chosen = choose(&specs, &counters, "p", Some("gpt-4o")).unwrap();
        assert_eq!(chosen.action, Action::Status(429));
        assert_eq!(chosen.rule, "gpt-4o=429");
        let chosen = choose(&specs, &counters, "p", Some("other")).unwrap();
        assert_eq!(chosen.action, Action::Status(500));
    }
}
