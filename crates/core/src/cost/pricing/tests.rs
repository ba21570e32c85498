//! Every pricing rule against an invoice computed by hand (prices in USD per
//! million tokens are micro-USD per token, so each line is tokens × price µUSD).

use super::*;

/// Claude Sonnet 4 as Anthropic publishes it: $3 input, $0.30 cache reads,
/// $3.75 5-minute and $6 1-hour cache writes, $15 output; above 200K prompt
/// tokens $6 / $0.60 / $7.50 / $12 / $22.50.
fn sonnet() -> Pricing {
    let p = |usd: f64| per_token(usd).unwrap();
    let base = Rates::with_defaults(p(3.0), p(15.0), Some(p(0.3)), Some(p(3.75)), Some(p(6.0)));
    Pricing {
        base,
        long_context: Some(LongContext {
            above_prompt_tokens: 200_000,
            rates: Rates::scaled_from(&base, p(6.0), p(22.5), None, None, None),
        }),
    }
}

fn usage(prompt: u64, cached: u64, write_5m: u64, write_1h: u64, completion: u64) -> Usage {
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        cached_tokens: cached,
        cache_write_tokens: write_5m,
        cache_write_1h_tokens: write_1h,
    }
}

struct Case {
    name: &'static str,
    usage: Usage,
    tier: PriceTier,
    /// (input, cached, 5m writes, 1h writes, output, total) in µUSD.
    lines: (u64, u64, u64, u64, u64, u64),
}

#[test]
fn invoices_match_hand_computed_ones() {
    let cases = [
        Case {
            name: "cached reads and 5-minute writes",
            // 2,000 × $3 + 5,000 × $0.30 + 3,000 × $3.75 + 500 × $15
            usage: usage(10_000, 5_000, 3_000, 0, 500),
            tier: PriceTier::Base,
            lines: (6_000, 1_500, 11_250, 0, 7_500, 26_250),
        },
        Case {
            name: "1-hour writes beside 5-minute ones",
            // 1,000 × $3 + 4,000 × $0.30 + 2,000 × $3.75 + 3,000 × $6 + 100 × $15
            usage: usage(10_000, 4_000, 2_000, 3_000, 100),
            tier: PriceTier::Base,
            lines: (3_000, 1_200, 7_500, 18_000, 1_500, 31_200),
        },
        Case {
            name: "exactly at the threshold: base tier",
            // 200,000 × $3 + 1,000 × $15
            usage: usage(200_000, 0, 0, 0, 1_000),
            tier: PriceTier::Base,
            lines: (600_000, 0, 0, 0, 15_000, 615_000),
        },
        Case {
            name: "one token above: the whole request at the long-context tier",
            // 200,001 × $6 + 1,000 × $22.50
            usage: usage(200_001, 0, 0, 0, 1_000),
            tier: PriceTier::LongContext,
            lines: (1_200_006, 0, 0, 0, 22_500, 1_222_506),
        },
        Case {
            name: "long context with cached reads and writes (cache prices scaled ×2)",
            // 50,000 × $6 + 150,000 × $0.60 + 40,000 × $7.50 + 10,000 × $12 + 2,000 × $22.50
            usage: usage(250_000, 150_000, 40_000, 10_000, 2_000),
            tier: PriceTier::LongContext,
            lines: (300_000, 90_000, 300_000, 120_000, 45_000, 855_000),
        },
        Case {
            name: "cache reads count toward the threshold",
            // 1 uncached token + 200,000 cached: above 200K, so $6 and $0.60.
            usage: usage(200_001, 200_000, 0, 0, 0),
            tier: PriceTier::LongContext,
            lines: (6, 120_000, 0, 0, 0, 120_006),
        },
        Case {
            name: "counts that overrun the prompt are cut to it, reads first",
            usage: usage(1_000, 800, 300, 300, 0),
            tier: PriceTier::Base,
            // 800 × $0.30 + 200 × $3.75; the 1-hour writes find no prompt left.
            lines: (0, 240, 750, 0, 0, 990),
        },
    ];
    let pricing = sonnet();
    for case in cases {
        let invoice = pricing.invoice(&case.usage);
        let got = (
            invoice.input.micro_usd(),
            invoice.cached_input.micro_usd(),
            invoice.cache_write.micro_usd(),
            invoice.cache_write_1h.micro_usd(),
            invoice.output.micro_usd(),
            invoice.total().micro_usd(),
        );
        assert_eq!(got, case.lines, "{}", case.name);
        assert_eq!(invoice.tier, case.tier, "{}", case.name);
        assert_eq!(pricing.cost(&case.usage), invoice.total(), "{}", case.name);
    }
}

#[test]
fn sums_are_exact_and_rounded_once() {
    // gpt-4o-mini: $0.15 input, $0.075 cached, $0.60 output.
    let p = Pricing::from_per_mtok(0.15, 0.6, Some(0.075)).unwrap();
    // 210 × 0.15 + 1,024 × 0.075 + 77 × 0.6 = 31.5 + 76.8 + 46.2 = 154.5 µUSD → 155.
    let invoice = p.invoice(&usage(1_234, 1_024, 0, 0, 77));
    assert_eq!(invoice.total(), Money(154_500_000));
    assert_eq!(invoice.total().micro_usd(), 155);
}

#[test]
fn projection_uses_the_tier_the_counted_prompt_falls_in() {
    let p = sonnet();
    assert_eq!(p.projected(200_000, 1_000).micro_usd(), 615_000);
    assert_eq!(p.projected(200_001, 1_000).micro_usd(), 1_222_506);
    assert_eq!(p.tier(200_000).0, PriceTier::Base);
    assert_eq!(p.tier(200_001).0, PriceTier::LongContext);
}

#[test]
fn unset_prices_default_as_providers_without_a_premium_bill() {
    let r = Rates::with_defaults(2_500_000, 10_000_000, None, None, None);
    assert_eq!(
        (r.cached_input, r.cache_write, r.cache_write_1h),
        (2_500_000, 2_500_000, 2_500_000)
    );
    let r = Rates::with_defaults(3_000_000, 15_000_000, Some(300_000), Some(3_750_000), None);
    assert_eq!(r.cache_write_1h, 3_750_000);
    // Long-context cache prices keep their base ratio to input ($3 → $6: ×2).
    let long = sonnet().long_context.unwrap().rates;
    assert_eq!(
        (long.cached_input, long.cache_write, long.cache_write_1h),
        (600_000, 7_500_000, 12_000_000)
    );
    // A free base input cannot give a ratio: the long tier's input price is used.
    let free = Rates::with_defaults(0, 0, None, None, None);
    let long = Rates::scaled_from(&free, 1_000_000, 2_000_000, None, None, None);
    assert_eq!(long.cached_input, 1_000_000);
}
