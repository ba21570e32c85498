//! Score drift: the population stability index (PSI) of a classifier's live
//! score histogram against its training score distribution (the artifact's
//! `score_quantiles`). PSI = Σ (live − train) × ln(live / train) over the
//! histogram's bins; by the usual reading, under 0.1 the traffic scores as
//! the training data did, 0.1–0.25 it moved, over 0.25 it is another
//! population and a `gt` threshold no longer sends the share it was set for.

/// Bin shares below this are floored (an empty bin would make ln infinite).
const FLOOR: f64 = 1e-4;

/// PSI above which the scores are read as shifted.
pub const SHIFTED: f64 = 0.25;

/// The training distribution's CDF at `score`, from its ascending
/// quantiles at equal steps (0%, 1%, …, 100%), interpolated linearly.
pub fn training_cdf(quantiles: &[f64], score: f64) -> f64 {
    let steps = quantiles.len().saturating_sub(1);
    let (Some(first), Some(last)) = (quantiles.first(), quantiles.last()) else {
        return 0.0;
    };
    if steps == 0 || score < *first {
        return 0.0;
    }
    if score >= *last {
        return 1.0;
    }
    // The last quantile at or below `score` (ties: the last, so a point mass
    // counts wholly below a bin edge it sits on, as Prometheus' `le` does).
    let i = quantiles.partition_point(|q| *q <= score).saturating_sub(1);
    let (lo, hi) = match (quantiles.get(i), quantiles.get(i.saturating_add(1))) {
        (Some(lo), Some(hi)) => (*lo, *hi),
        _ => return 1.0,
    };
    let within = if hi > lo {
        (score - lo) / (hi - lo)
    } else {
        1.0
    };
    ((i as f64 + within) / steps as f64).clamp(0.0, 1.0)
}

/// PSI of a histogram given as cumulative counts at ascending upper bounds
/// (Prometheus buckets: `(le, count of scores ≤ le)`, scores as
/// probabilities; the last bound may be +∞) against the training
/// quantiles. `None` when the histogram holds no score.
pub fn psi(quantiles: &[f64], buckets: &[(f64, u64)]) -> Option<f64> {
    let total = buckets.iter().map(|(_, c)| *c).max().filter(|n| *n > 0)? as f64;
    let (mut previous_count, mut previous_cdf, mut sum) = (0u64, 0.0, 0.0);
    for (le, count) in buckets {
        let cdf = if le.is_finite() {
            training_cdf(quantiles, *le)
        } else {
            1.0
        };
        let live = (count.saturating_sub(previous_count) as f64 / total).max(FLOOR);
        let train = (cdf - previous_cdf).max(FLOOR);
        sum += (live - train) * (live / train).ln();
        previous_count = (*count).max(previous_count);
        previous_cdf = cdf.max(previous_cdf);
    }
    Some(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Uniform training scores on [0, 1].
    fn uniform() -> Vec<f64> {
        (0..=100).map(|i| f64::from(i) / 100.0).collect()
    }

    /// Cumulative buckets at 0.1, 0.2, …, 1.0 and +∞ of `scores`.
    fn buckets(scores: &[f64]) -> Vec<(f64, u64)> {
        let mut edges: Vec<f64> = (1..=10).map(|i| f64::from(i) / 10.0).collect();
        edges.push(f64::INFINITY);
        edges
            .iter()
            .map(|le| (*le, scores.iter().filter(|s| *s <= le).count() as u64))
            .collect()
    }

    #[test]
    fn the_cdf_interpolates_the_quantiles() {
        let q = uniform();
        assert_eq!(training_cdf(&q, -0.1), 0.0);
        assert!((training_cdf(&q, 0.25) - 0.25).abs() < 1e-9);
        assert!((training_cdf(&q, 0.333) - 0.333).abs() < 1e-9);
        assert_eq!(training_cdf(&q, 1.0), 1.0);
        // A distribution piled at 0.3: everything is at or below 0.3.
        let piled = vec![0.3; 101];
        assert_eq!(training_cdf(&piled, 0.29), 0.0);
        assert_eq!(training_cdf(&piled, 0.3), 1.0);
    }

    #[test]
    fn the_same_population_is_stable_and_a_shifted_one_is_not() {
        let q = uniform();
        let same: Vec<f64> = (0..1000).map(|i| (f64::from(i) + 0.5) / 1000.0).collect();
        let stable = psi(&q, &buckets(&same)).unwrap();
        assert!(stable < 0.01, "{stable}");
        // The same traffic with every score 0.2 higher (capped): harder traffic.
        let harder: Vec<f64> = same.iter().map(|s| (s + 0.2).min(0.999)).collect();
        let shifted = psi(&q, &buckets(&harder)).unwrap();
        assert!(shifted > SHIFTED, "{shifted}");
        // A small move reads as moderate, between the two.
        let nudged: Vec<f64> = same.iter().map(|s| (s + 0.05).min(0.999)).collect();
        let moderate = psi(&q, &buckets(&nudged)).unwrap();
        assert!(moderate > stable && moderate < shifted, "{moderate}");
        assert_eq!(psi(&q, &buckets(&[])), None);
    }
}
