//! Quality beside cost: feedback counts per group, the good-rate with its
//! Wilson score interval (a binomial interval that stays inside 0–1 and
//! behaves at small counts, unlike the normal approximation), and the mean
//! score.

/// The z of a two-sided 95% interval.
const Z95: f64 = 1.959_963_984_540_054;

/// Feedback summed over a group of requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quality {
    /// Feedback received (attributed).
    pub feedback: u64,
    /// Of which with verdict `good` (score ≥ 0.5).
    pub good: u64,
    /// Sum of scores × 1000.
    pub score_milli: u64,
}

impl Quality {
    /// Share of good feedback, when there is any.
    pub fn good_rate(&self) -> Option<f64> {
        (self.feedback > 0).then(|| self.good as f64 / self.feedback as f64)
    }

    /// Mean score (0–1), when there is any feedback.
    pub fn mean_score(&self) -> Option<f64> {
        (self.feedback > 0).then(|| self.score_milli as f64 / 1000.0 / self.feedback as f64)
    }

    /// The 95% Wilson interval of the good-rate.
    pub fn interval(&self) -> Option<(f64, f64)> {
        wilson(self.good, self.feedback, Z95)
    }

    /// `62.5% [30.6–86.3]`, or `-` without feedback.
    pub fn format_rate(&self) -> String {
        match (self.good_rate(), self.interval()) {
            (Some(rate), Some((low, high))) => format!(
                "{:.1}% [{:.1}-{:.1}]",
                rate * 100.0,
                low * 100.0,
                high * 100.0
            ),
            _ => "-".to_string(),
        }
    }

    pub fn format_mean(&self) -> String {
        self.mean_score()
            .map_or_else(|| "-".to_string(), |m| format!("{m:.3}"))
    }
}

/// The Wilson score interval of `successes` out of `trials`.
pub fn wilson(successes: u64, trials: u64, z: f64) -> Option<(f64, f64)> {
    if trials == 0 || successes > trials {
        return None;
    }
    let n = trials as f64;
    let p = successes as f64 / n;
    let z2 = z * z;
    let denominator = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denominator;
    let half = z / denominator * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some(((center - half).max(0.0), (center + half).min(1.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_published_values() {
        // 8 of 10: Wilson 95% = [0.490, 0.943] (Newcombe 1998, method 3).
        let (low, high) = wilson(8, 10, Z95).unwrap();
        assert!(
            (low - 0.4902).abs() < 1e-3 && (high - 0.9433).abs() < 1e-3,
            "{low} {high}"
        );
        // 0 of 10 still has an upper bound; 10 of 10 a lower one.
        let (low, high) = wilson(0, 10, Z95).unwrap();
        assert!(low.abs() < 1e-9 && (high - 0.2775).abs() < 1e-3);
        let (low, high) = wilson(10, 10, Z95).unwrap();
        assert!((low - 0.7225).abs() < 1e-3 && (high - 1.0).abs() < 1e-9);
        assert_eq!(wilson(1, 0, Z95), None);
    }

    #[test]
    fn rates_and_means_format_for_the_report() {
        let q = Quality {
            feedback: 10,
            good: 8,
            score_milli: 7_500,
        };
        assert_eq!(q.format_rate(), "80.0% [49.0-94.3]");
        assert_eq!(q.format_mean(), "0.750");
        assert_eq!(Quality::default().format_rate(), "-");
    }
}
