//! Model cooldowns: a model that answered 429 (or failed too often) leaves
//! the candidate lists for a while, so the next requests go straight to the
//! next model of their chain instead of paying a failed attempt each.
//!
//! Everything here is a pure function of the observations and the time
//! (milliseconds since the Unix epoch, the host's wall clock, which HTTP
//! dates in `Retry-After` are also on). The filter keeps one [`Cooldowns`]
//! table in proxy-wasm shared data, encoded with [`Cooldowns::encode`], so
//! every Envoy worker sees the cooldowns any worker started.

use std::time::{Duration, UNIX_EPOCH};

/// The policy's `cooldown` section, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CooldownSettings {
    pub enabled: bool,
    /// Cooldown when the provider gives no usable `Retry-After`.
    pub default_ms: u64,
    /// Upper bound on any cooldown, whatever `Retry-After` says.
    pub max_ms: u64,
    /// Statuses that start a cooldown at once (default `[429]`).
    pub statuses: Vec<u16>,
    /// 5xx answers and connection failures within `failure_window_ms` that
    /// start a cooldown; 0 turns failure counting off.
    pub failure_threshold: u32,
    pub failure_window_ms: u64,
}

impl Default for CooldownSettings {
    fn default() -> Self {
        CooldownSettings {
            enabled: true,
            default_ms: 5_000,
            max_ms: 60_000,
            statuses: vec![429],
            failure_threshold: 0,
            failure_window_ms: 10_000,
        }
    }
}

impl CooldownSettings {
    /// Whether an answer with `status` can start a cooldown (the filter
    /// reads nothing more for other statuses).
    pub fn watches(&self, status: u16) -> bool {
        self.enabled
            && (self.statuses.contains(&status) || (self.failure_threshold > 0 && status >= 500))
    }
}

/// What one upstream attempt of a model came back with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation<'a> {
    /// An HTTP answer with its `Retry-After` / `Retry-After-Ms` values.
    Status {
        status: u16,
        retry_after: Option<&'a str>,
        retry_after_ms: Option<&'a str>,
    },
    /// No answer: connection refused or reset, or a timeout.
    Failure,
}

/// Why a cooldown started (the `reason` label of the cooldown counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A cooldown status (429) with a `Retry-After` the router honoured.
    RetryAfter,
    /// A cooldown status without a usable `Retry-After`: the policy default.
    Status,
    /// `failure_threshold` failures within the window.
    Failures,
}

impl Reason {
    pub fn label(self) -> &'static str {
        match self {
            Reason::RetryAfter => "retry_after",
            Reason::Status => "status",
            Reason::Failures => "failures",
        }
    }
}

/// A cooldown that an observation started or extended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Started {
    pub until_ms: u64,
    pub reason: Reason,
}

/// One model's row.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    model: String,
    /// Cooling down while now < until_ms.
    until_ms: u64,
    /// Failures counted in the window that began at `window_start_ms`.
    failures: u32,
    window_start_ms: u64,
}

/// Every model's cooldown and failure count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cooldowns {
    entries: Vec<Entry>,
}

/// No cooldowns (what the CLI and `decide` use).
pub static NONE: Cooldowns = Cooldowns::new();

impl Cooldowns {
    pub const fn new() -> Cooldowns {
        Cooldowns {
            entries: Vec::new(),
        }
    }

    /// When `model`'s cooldown ends, if it is cooling down at `now_ms`.
    pub fn until(&self, model: &str, now_ms: u64) -> Option<u64> {
        self.entries
            .iter()
            .find(|e| e.model == model)
            .map(|e| e.until_ms)
            .filter(|until| *until > now_ms)
    }

    /// Models cooling down at `now_ms`, with their end times.
    pub fn active(&self, now_ms: u64) -> impl Iterator<Item = (&str, u64)> {
        self.entries
            .iter()
            .filter(move |e| e.until_ms > now_ms)
            .map(|e| (e.model.as_str(), e.until_ms))
    }

    /// Puts `model` in cooldown until `until_ms` (never shortens one).
    pub fn start(&mut self, model: &str, until_ms: u64) {
        if let Some(entry) = self.entry(model) {
            entry.until_ms = entry.until_ms.max(until_ms);
        }
    }

    /// Books one observation of `model`; returns the cooldown it started.
    pub fn observe(
        &mut self,
        settings: &CooldownSettings,
        model: &str,
        seen: Observation<'_>,
        now_ms: u64,
    ) -> Option<Started> {
        if !settings.enabled {
            return None;
        }
        let (status, retry_after, retry_after_ms) = match seen {
            Observation::Status {
                status,
                retry_after,
                retry_after_ms,
            } => (Some(status), retry_after, retry_after_ms),
            Observation::Failure => (None, None, None),
        };
        let asked = retry_after_ms
            .and_then(parse_retry_after_ms)
            .or_else(|| retry_after.and_then(|v| parse_retry_after(v, now_ms)));
        let (duration, reason) = if status.is_some_and(|s| settings.statuses.contains(&s)) {
            match asked {
                Some(ms) => (ms, Reason::RetryAfter),
                None => (settings.default_ms, Reason::Status),
            }
        } else if status.is_none_or(|s| s >= 500) && self.failed(settings, model, now_ms) {
            (asked.unwrap_or(settings.default_ms), Reason::Failures)
        } else {
            return None;
        };
        // `Retry-After: 0` means "retry now": no cooldown.
        let duration = duration.min(settings.max_ms);
        if duration == 0 {
            return None;
        }
        let until_ms = now_ms.saturating_add(duration);
        self.start(model, until_ms);
        Some(Started { until_ms, reason })
    }

    /// Counts a failure; true when it reaches the threshold (the count restarts).
    fn failed(&mut self, settings: &CooldownSettings, model: &str, now_ms: u64) -> bool {
        if settings.failure_threshold == 0 {
            return false;
        }
        let Some(entry) = self.entry(model) else {
            return false;
        };
        if now_ms.saturating_sub(entry.window_start_ms) > settings.failure_window_ms {
            entry.window_start_ms = now_ms;
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        if entry.failures >= settings.failure_threshold {
            entry.failures = 0;
            return true;
        }
        false
    }

    /// `model`'s row, added if missing (None only if the push failed to land).
    fn entry(&mut self, model: &str) -> Option<&mut Entry> {
        if !self.entries.iter().any(|e| e.model == model) {
            self.entries.push(Entry {
                model: model.to_string(),
                until_ms: 0,
                failures: 0,
                window_start_ms: 0,
            });
        }
        self.entries.iter_mut().find(|e| e.model == model)
    }

    /// Drops rows that no longer say anything at `now_ms`, keeping the shared value small.
    pub fn prune(&mut self, settings: &CooldownSettings, now_ms: u64) {
        self.entries.retain(|e| {
            e.until_ms > now_ms
                || (e.failures > 0
                    && now_ms.saturating_sub(e.window_start_ms) <= settings.failure_window_ms)
        });
    }

    /// One line per model: `name until_ms failures window_start_ms`
    /// (model names never contain spaces: they travel in headers).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::new();
        for e in &self.entries {
            out.push_str(&format!(
                "{} {} {} {}\n",
                e.model, e.until_ms, e.failures, e.window_start_ms
            ));
        }
        out.into_bytes()
    }

    /// The inverse of [`encode`](Self::encode); lines that do not parse are skipped.
    pub fn decode(bytes: &[u8]) -> Cooldowns {
        let text = String::from_utf8_lossy(bytes);
        let entries = text
            .lines()
            .filter_map(|line| {
                let mut parts = line.split(' ');
                let model = parts.next().filter(|m| !m.is_empty())?.to_string();
                let mut number = || parts.next()?.parse::<u64>().ok();
                let until_ms = number()?;
                let failures = u32::try_from(number()?).ok()?;
                let window_start_ms = number()?;
                Some(Entry {
                    model,
                    until_ms,
                    failures,
                    window_start_ms,
                })
            })
            .collect();
        Cooldowns { entries }
    }
}

/// `Retry-After` (RFC 9110 §10.2.3) as milliseconds from `now_ms`: delay
/// seconds, or an HTTP date (0 when it is past). None when it is neither.
pub fn parse_retry_after(value: &str, now_ms: u64) -> Option<u64> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(
            value
                .parse::<u64>()
                .unwrap_or(u64::MAX)
                .saturating_mul(1000),
        );
    }
    let date = httpdate::parse_http_date(value).ok()?;
    let at_ms = date
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis();
    let at_ms = u64::try_from(at_ms).unwrap_or(u64::MAX);
    Some(at_ms.saturating_sub(now_ms))
}

/// OpenAI's `retry-after-ms` (milliseconds, possibly fractional).
pub fn parse_retry_after_ms(value: &str) -> Option<u64> {
    let ms: f64 = value.trim().parse().ok()?;
    if !ms.is_finite() || ms < 0.0 {
        return None;
    }
    // Saturating float → integer conversion (`as` never panics).
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Some(ms.ceil() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000; // 2023-11-14T22:13:20Z

    fn status(code: u16, retry_after: Option<&str>) -> Observation<'_> {
        Observation::Status {
            status: code,
            retry_after,
            retry_after_ms: None,
        }
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        assert_eq!(parse_retry_after("2", T0), Some(2_000));
        assert_eq!(parse_retry_after(" 0 ", T0), Some(0));
        assert_eq!(
            parse_retry_after("99999999999999999999", T0),
            Some(u64::MAX)
        );
        // T0 + 30 s as an IMF-fixdate, and the two obsolete forms.
        assert_eq!(
            parse_retry_after("Tue, 14 Nov 2023 22:13:50 GMT", T0),
            Some(30_000)
        );
        assert_eq!(
            parse_retry_after("Tuesday, 14-Nov-23 22:13:50 GMT", T0),
            Some(30_000)
        );
        assert_eq!(
            parse_retry_after("Tue Nov 14 22:13:50 2023", T0),
            Some(30_000)
        );
        // A date in the past: retry now.
        assert_eq!(
            parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", T0),
            Some(0)
        );
        for bad in ["", "-1", "1.5", "soon", "Tue, 99 Nov 2023 22:13:50 GMT"] {
            assert_eq!(parse_retry_after(bad, T0), None, "{bad:?}");
        }
        assert_eq!(parse_retry_after_ms("1500"), Some(1500));
        assert_eq!(parse_retry_after_ms("20.2"), Some(21));
        assert_eq!(parse_retry_after_ms("-3"), None);
        assert_eq!(parse_retry_after_ms("NaN"), None);
    }

    #[test]
    fn a_429_cools_the_model_for_its_retry_after_then_it_returns() {
        let s = CooldownSettings::default();
        let mut c = Cooldowns::new();
        let started = c.observe(&s, "gpt", status(429, Some("2")), T0);
        assert_eq!(
            started,
            Some(Started {
                until_ms: T0 + 2_000,
                reason: Reason::RetryAfter
            })
        );
        assert_eq!(c.until("gpt", T0 + 1_999), Some(T0 + 2_000));
        assert_eq!(c.until("gpt", T0 + 2_000), None);
        assert_eq!(c.until("other", T0), None);
        assert_eq!(c.active(T0).count(), 1);
        assert_eq!(c.active(T0 + 2_000).count(), 0);
    }

    #[test]
    fn cooldowns_take_the_default_are_capped_and_never_shorten() {
        let s = CooldownSettings {
            default_ms: 7_000,
            max_ms: 10_000,
            ..CooldownSettings::default()
        };
        let mut c = Cooldowns::new();
        let d = c.observe(&s, "m", status(429, None), T0).unwrap();
        assert_eq!((d.until_ms, d.reason), (T0 + 7_000, Reason::Status));
        let d = c.observe(&s, "m", status(429, Some("3600")), T0).unwrap();
        assert_eq!(d.until_ms, T0 + 10_000);
        // A shorter Retry-After later does not shorten the cooldown.
        c.observe(&s, "m", status(429, Some("1")), T0 + 1).unwrap();
        assert_eq!(c.until("m", T0 + 5_000), Some(T0 + 10_000));
        // retry-after-ms wins over retry-after.
        let seen = Observation::Status {
            status: 429,
            retry_after: Some("9"),
            retry_after_ms: Some("250"),
        };
        assert_eq!(c.observe(&s, "n", seen, T0).unwrap().until_ms, T0 + 250);
    }

    #[test]
    fn retry_after_zero_and_other_statuses_start_nothing() {
        let s = CooldownSettings::default();
        let mut c = Cooldowns::new();
        assert_eq!(c.observe(&s, "m", status(429, Some("0")), T0), None);
        assert_eq!(c.observe(&s, "m", status(500, Some("5")), T0), None);
        assert_eq!(c.observe(&s, "m", status(200, None), T0), None);
        assert_eq!(c.observe(&s, "m", Observation::Failure, T0), None);
        let off = CooldownSettings {
            enabled: false,
            ..CooldownSettings::default()
        };
        assert_eq!(c.observe(&off, "m", status(429, Some("5")), T0), None);
        assert_eq!(c.active(T0).count(), 0);
    }

    #[test]
    fn failures_past_the_threshold_within_the_window_cool_the_model() {
        let s = CooldownSettings {
            failure_threshold: 3,
            failure_window_ms: 1_000,
            default_ms: 4_000,
            ..CooldownSettings::default()
        };
        let mut c = Cooldowns::new();
        assert_eq!(c.observe(&s, "m", status(503, None), T0), None);
        assert_eq!(c.observe(&s, "m", Observation::Failure, T0 + 100), None);
        // 4xx other than 429 are the client's fault, not the model's.
        assert_eq!(c.observe(&s, "m", status(400, None), T0 + 150), None);
        let d = c.observe(&s, "m", status(500, None), T0 + 200).unwrap();
        assert_eq!((d.until_ms, d.reason), (T0 + 4_200, Reason::Failures));
        // The count restarted; failures spread wider than the window never add up.
        let mut c = Cooldowns::new();
        for i in 0..10 {
            assert_eq!(c.observe(&s, "m", Observation::Failure, T0 + i * 600), None);
        }
    }

    #[test]
    fn the_table_round_trips_and_prunes() {
        let s = CooldownSettings {
            failure_threshold: 5,
            ..CooldownSettings::default()
        };
        let mut c = Cooldowns::new();
        c.observe(&s, "a/b:c", status(429, Some("2")), T0);
        c.observe(&s, "m", status(500, None), T0);
        let text = c.encode();
        assert_eq!(Cooldowns::decode(&text), c);
        assert_eq!(
            Cooldowns::decode(b"ok 5 0 0\nbroken line\n\nx y z w\n"),
            Cooldowns {
                entries: vec![Entry {
                    model: "ok".into(),
                    until_ms: 5,
                    failures: 0,
                    window_start_ms: 0
                }]
            }
        );
        c.prune(&s, T0 + 1_000);
        assert_eq!(c.entries.len(), 2);
        c.prune(&s, T0 + 60_000);
        assert_eq!(c, Cooldowns::new());
    }
}
