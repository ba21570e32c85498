//! A model's prices as providers bill them: plain input, cache reads, 5-minute
//! and 1-hour cache writes, output, and an optional long-context tier that
//! prices the *whole* request higher once its prompt exceeds a threshold.
//!
//! Every price is an integer number of pico-USD per token (= USD per million
//! tokens × 1e6), so an invoice is exact integer arithmetic: the sum of its
//! lines is the request's cost, rounded to micro-USD once at the end.

use super::{Money, Usage};

/// The prices of one tier, each in pico-USD per token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rates {
    /// Prompt tokens neither read from nor written to the provider's cache.
    pub input: u64,
    pub output: u64,
    /// Prompt tokens served from the provider's cache.
    pub cached_input: u64,
    /// Prompt tokens written to the cache with the default (5-minute) lifetime.
    pub cache_write: u64,
    /// Prompt tokens written to the cache with a 1-hour lifetime.
    pub cache_write_1h: u64,
}

/// The higher tier: applies to a request whose prompt tokens (cached reads
/// and cache writes included) are strictly more than `above_prompt_tokens`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LongContext {
    pub above_prompt_tokens: u64,
    pub rates: Rates,
}

/// A model's prices: the base tier and, optionally, a long-context tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pricing {
    pub base: Rates,
    pub long_context: Option<LongContext>,
}

/// Which tier priced a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceTier {
    Base,
    LongContext,
}

impl PriceTier {
    pub fn label(self) -> &'static str {
        match self {
            PriceTier::Base => "base",
            PriceTier::LongContext => "long_context",
        }
    }
}

/// What one request costs, line by line (the audit record shows these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invoice {
    pub tier: PriceTier,
    /// The tier's prices that were applied.
    pub rates: Rates,
    /// Uncached prompt tokens × input price.
    pub input: Money,
    pub cached_input: Money,
    pub cache_write: Money,
    pub cache_write_1h: Money,
    pub output: Money,
}

impl Invoice {
    pub fn total(&self) -> Money {
        self.input
            .saturating_add(self.cached_input)
            .saturating_add(self.cache_write)
            .saturating_add(self.cache_write_1h)
            .saturating_add(self.output)
    }

    /// Both cache-write lines.
    pub fn cache_writes(&self) -> Money {
        self.cache_write.saturating_add(self.cache_write_1h)
    }
}

/// USD per million tokens → pico-USD per token. None for negative,
/// non-finite or absurd prices.
pub fn per_token(usd_per_mtok: f64) -> Option<u64> {
    Money::from_usd(usd_per_mtok / 1e6).map(|m| m.0)
}

impl Rates {
    /// A tier from its input and output prices; the optional ones default as
    /// providers without a cache premium bill them: cache reads and 5-minute
    /// writes at the input price, 1-hour writes at the 5-minute write price.
    pub fn with_defaults(
        input: u64,
        output: u64,
        cached_input: Option<u64>,
        cache_write: Option<u64>,
        cache_write_1h: Option<u64>,
    ) -> Rates {
        let cache_write = cache_write.unwrap_or(input);
        Rates {
            input,
            output,
            cached_input: cached_input.unwrap_or(input),
            cache_write,
            cache_write_1h: cache_write_1h.unwrap_or(cache_write),
        }
    }

    /// A long-context tier whose unset cache prices keep their base-tier
    /// ratio to the input price (providers scale them together: Anthropic's
    /// and Google's long-context cache prices are the base ones × the same
    /// factor as input).
    pub fn scaled_from(
        base: &Rates,
        input: u64,
        output: u64,
        cached_input: Option<u64>,
        cache_write: Option<u64>,
        cache_write_1h: Option<u64>,
    ) -> Rates {
        let scale = |price: u64| scale(price, input, base.input);
        Rates {
            input,
            output,
            cached_input: cached_input.unwrap_or_else(|| scale(base.cached_input)),
            cache_write: cache_write.unwrap_or_else(|| scale(base.cache_write)),
            cache_write_1h: cache_write_1h.unwrap_or_else(|| scale(base.cache_write_1h)),
        }
    }
}

/// `price × to ÷ from`, rounded half up; `to` when `from` is 0.
fn scale(price: u64, to: u64, from: u64) -> u64 {
    let Some(half) = u128::from(from).checked_div(2) else {
        return to;
    };
    u128::from(price)
        .saturating_mul(u128::from(to))
        .saturating_add(half)
        .checked_div(u128::from(from))
        .map_or(to, |v| u64::try_from(v).unwrap_or(u64::MAX))
}

impl Pricing {
    /// From USD per million tokens, one tier. Cached input defaults to the
    /// input price.
    pub fn from_per_mtok(input: f64, output: f64, cached_input: Option<f64>) -> Option<Pricing> {
        let cached_input = match cached_input {
            Some(price) => Some(per_token(price)?),
            None => None,
        };
        Some(Pricing {
            base: Rates::with_defaults(
                per_token(input)?,
                per_token(output)?,
                cached_input,
                None,
                None,
            ),
            long_context: None,
        })
    }

    /// The tier a request with this many prompt tokens is billed at: the
    /// long-context tier only strictly above its threshold.
    pub fn tier(&self, prompt_tokens: u64) -> (PriceTier, &Rates) {
        match &self.long_context {
            Some(long) if prompt_tokens > long.above_prompt_tokens => {
                (PriceTier::LongContext, &long.rates)
            }
            _ => (PriceTier::Base, &self.base),
        }
    }

    /// What a request is expected to cost before it is sent: its counted
    /// prompt, uncached, at the tier that prompt falls in.
    pub fn projected(&self, prompt_tokens: u64, output_tokens: u64) -> Money {
        self.cost(&Usage {
            prompt_tokens,
            completion_tokens: output_tokens,
            ..Usage::default()
        })
    }

    /// What billed usage costs.
    pub fn cost(&self, usage: &Usage) -> Money {
        self.invoice(usage).total()
    }

    /// The request's invoice. Cached reads and cache writes are parts of the
    /// prompt tokens; whatever they do not cover is plain input. Counts that
    /// overrun the prompt (a provider's inconsistency) are cut to it, reads
    /// first, so no token is billed twice.
    pub fn invoice(&self, usage: &Usage) -> Invoice {
        let (tier, rates) = self.tier(usage.prompt_tokens);
        let mut left = usage.prompt_tokens;
        let mut take = |tokens: u64| {
            let part = tokens.min(left);
            left = left.saturating_sub(part);
            part
        };
        let cached = take(usage.cached_tokens);
        let write_5m = take(usage.cache_write_tokens);
        let write_1h = take(usage.cache_write_1h_tokens);
        Invoice {
            tier,
            rates: *rates,
            input: line(left, rates.input),
            cached_input: line(cached, rates.cached_input),
            cache_write: line(write_5m, rates.cache_write),
            cache_write_1h: line(write_1h, rates.cache_write_1h),
            output: line(usage.completion_tokens, rates.output),
        }
    }
}

/// Tokens × pico-USD per token, saturating (u64 × u64 fits in u128).
fn line(tokens: u64, price: u64) -> Money {
    let total = u128::from(tokens).saturating_mul(u128::from(price));
    Money(u64::try_from(total).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests;
