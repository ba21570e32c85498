//! Money in integer pico-USD, so sums stay exact.
//!
//! A price in USD per million tokens is numerically the same as micro-USD per
//! token, so one pico-USD unit per token is a millionth of a cent per
//! million tokens: every published price is an exact integer here.

use std::fmt;

mod pricing;

pub use pricing::{per_token, Invoice, LongContext, PriceTier, Pricing, Rates};

/// An amount of US dollars, in pico-USD (1e-12 USD).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(pub u64);

const PICO_PER_USD: f64 = 1e12;
const PICO_PER_MICRO: u64 = 1_000_000;

impl Money {
    pub const ZERO: Money = Money(0);

    /// From a USD amount written as a decimal (a policy price, a budget
    /// header). None for negative, non-finite or absurd (≥ 1e6 USD) values.
    pub fn from_usd(usd: f64) -> Option<Money> {
        if !usd.is_finite() || !(0.0..1e6).contains(&usd) {
            return None;
        }
        Some(Money((usd * PICO_PER_USD).round() as u64))
    }

    /// Parses a decimal USD amount such as `0.002`.
    pub fn parse_usd(text: &str) -> Option<Money> {
        let text = text.trim();
        if text.is_empty() || text.starts_with('+') {
            return None;
        }
        Money::from_usd(text.parse::<f64>().ok()?)
    }

    /// Micro-USD rounded half up: the unit of the cost counters.
    pub fn micro_usd(self) -> u64 {
        self.0.saturating_add(PICO_PER_MICRO / 2) / PICO_PER_MICRO
    }

    pub fn usd(self) -> f64 {
        self.0 as f64 / PICO_PER_USD
    }

    pub fn saturating_add(self, other: Money) -> Money {
        Money(self.0.saturating_add(other.0))
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${:.6}", self.usd())
    }
}

/// Token usage as a provider bills it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Prompt tokens served from cache (a subset of `prompt_tokens`).
    pub cached_tokens: u64,
    /// Prompt tokens written to the cache with the default 5-minute lifetime
    /// (a subset of `prompt_tokens`, disjoint from `cached_tokens`).
    pub cache_write_tokens: u64,
    /// Prompt tokens written to the cache with a 1-hour lifetime (likewise).
    pub cache_write_1h_tokens: u64,
}

impl Usage {
    /// Every cache write, whatever its lifetime.
    pub fn cache_writes(&self) -> u64 {
        self.cache_write_tokens
            .saturating_add(self.cache_write_1h_tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_exact_integers() {
        let p = Pricing::from_per_mtok(0.15, 0.6, Some(0.075)).unwrap();
        assert_eq!(
            (p.base.input, p.base.output, p.base.cached_input),
            (150_000, 600_000, 75_000)
        );
        let p = Pricing::from_per_mtok(2.5, 10.0, None).unwrap();
        assert_eq!(p.base.cached_input, p.base.input);
    }

    #[test]
    fn cost_of_usage() {
        let p = Pricing::from_per_mtok(2.5, 10.0, Some(1.25)).unwrap();
        let usage = Usage {
            prompt_tokens: 1000,
            completion_tokens: 200,
            cached_tokens: 400,
            ..Usage::default()
        };
        // 600 × 2.5 + 400 × 1.25 + 200 × 10 = 4000 micro-USD
        assert_eq!(p.cost(&usage).micro_usd(), 4000);
        assert_eq!(p.projected(1000, 200).micro_usd(), 4500);
    }

    #[test]
    fn micro_usd_rounds_half_up() {
        assert_eq!(Money(1_499_999).micro_usd(), 1);
        assert_eq!(Money(1_500_000).micro_usd(), 2);
    }

    #[test]
    fn parses_budgets() {
        assert_eq!(Money::parse_usd("0.002"), Some(Money(2_000_000_000)));
        assert_eq!(Money::parse_usd(" 1 "), Some(Money(1_000_000_000_000)));
        for bad in ["", "-1", "abc", "NaN", "inf", "+1", "1e9"] {
            assert_eq!(Money::parse_usd(bad), None, "{bad}");
        }
    }
}
