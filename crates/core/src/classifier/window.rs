//! The sliding window behind `top_share`: the scores of the last N requests
//! as a ring and a histogram, so that the threshold for "the hardest X% of
//! recent traffic" is a quantile read in one pass over 1,024 buckets. It is
//! plain bytes ([`ScoreWindow::to_bytes`]) so the filter can keep one window
//! in proxy-wasm shared data for all Envoy workers; the core never touches
//! the host. A new window is seeded from the training score distribution,
//! so the first requests already get a sensible threshold.

/// Score resolution: a probability is kept as one of this many buckets.
pub const BUCKETS: usize = 1024;
const HEADER: usize = 12;
const LAST_BUCKET: u16 = 1023;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoreWindow {
    /// Next ring slot to overwrite.
    head: usize,
    /// Bucketed scores, oldest at `head`.
    ring: Vec<u16>,
    counts: Vec<u16>,
}

fn bucket(score: f64) -> u16 {
    let b = (score.clamp(0.0, 1.0) * BUCKETS as f64).floor();
    // In [0, BUCKETS] after the clamp: the cast is exact.
    (b as u16).min(LAST_BUCKET)
}

impl ScoreWindow {
    /// A window of `capacity` scores drawn evenly from `quantiles` (the
    /// artifact's 101 training quantiles, interpolated).
    pub fn seeded(capacity: usize, quantiles: &[f64]) -> ScoreWindow {
        let capacity = capacity.clamp(1, usize::from(u16::MAX));
        let mut window = ScoreWindow {
            head: 0,
            ring: Vec::with_capacity(capacity),
            counts: vec![0; BUCKETS],
        };
        let steps = quantiles.len().saturating_sub(1).max(1) as f64;
        for i in 0..capacity {
            let at = (i as f64 + 0.5) / capacity as f64 * steps;
            let lo = at.floor() as usize;
            let frac = at - lo as f64;
            let a = quantiles.get(lo).copied().unwrap_or(0.5);
            let b = quantiles.get(lo.saturating_add(1)).copied().unwrap_or(a);
            let b = bucket(a + (b - a) * frac);
            window.ring.push(b);
            window.add(b);
        }
        window
    }

    fn add(&mut self, b: u16) {
        if let Some(c) = self.counts.get_mut(usize::from(b)) {
            *c = c.saturating_add(1);
        }
    }

    pub fn len(&self) -> usize {
        self.ring.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// Adds `score`, dropping the oldest.
    pub fn push(&mut self, score: f64) {
        let b = bucket(score);
        if let Some(old) = self.ring.get_mut(self.head) {
            let previous = std::mem::replace(old, b);
            if let Some(c) = self.counts.get_mut(usize::from(previous)) {
                *c = c.saturating_sub(1);
            }
            self.add(b);
            let next = self.head.saturating_add(1);
            self.head = if next >= self.ring.len() { 0 } else { next };
        }
    }

    /// The score above which `share` of the window lies (interpolated
    /// within the bucket that crosses it): "score > threshold" selects the
    /// hardest `share` of recent requests.
    pub fn threshold(&self, share: f64) -> f64 {
        let wanted = share.clamp(0.0, 1.0) * self.ring.len() as f64;
        let mut above = 0.0;
        for (b, &count) in self.counts.iter().enumerate().rev() {
            let count = f64::from(count);
            if count > 0.0 && above + count >= wanted {
                let inside = (wanted - above) / count; // fraction of this bucket taken
                return (b as f64 + 1.0 - inside) / BUCKETS as f64;
            }
            above += count;
        }
        0.0
    }

    /// `capacity, head, len` (u32 LE each), the ring (u16 LE each). The
    /// histogram is rebuilt on read: shared data stays small.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER.saturating_add(self.ring.len().saturating_mul(2)));
        let head = u32::try_from(self.head).unwrap_or(0);
        let len = u32::try_from(self.ring.len()).unwrap_or(0);
        for v in [len, head, len] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for b in &self.ring {
            out.extend_from_slice(&b.to_le_bytes());
        }
        out
    }

    /// Reads [`to_bytes`]; None if the bytes are not a window of `capacity`.
    pub fn from_bytes(bytes: &[u8], capacity: usize) -> Option<ScoreWindow> {
        let word = |i: usize| -> Option<usize> {
            let at = i.checked_mul(4)?;
            let b = bytes.get(at..at.checked_add(4)?)?;
            usize::try_from(u32::from_le_bytes(<[u8; 4]>::try_from(b).ok()?)).ok()
        };
        let (cap, head, len) = (word(0)?, word(1)?, word(2)?);
        let body = bytes.get(HEADER..)?;
        if cap != capacity
            || len != cap
            || head >= len.max(1)
            || body.len() != len.checked_mul(2)?
        {
            return None;
        }
        let mut window = ScoreWindow {
            head,
            ring: Vec::with_capacity(len),
            counts: vec![0; BUCKETS],
        };
        for pair in body.chunks_exact(2) {
            let b = u16::from_le_bytes(<[u8; 2]>::try_from(pair).ok()?);
            if usize::from(b) >= BUCKETS {
                return None;
            }
            window.ring.push(b);
            window.add(b);
        }
        Some(window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uniform() -> Vec<f64> {
        (0..=100).map(|i| f64::from(i) / 100.0).collect()
    }

    #[test]
    fn seeded_from_uniform_quantiles_gives_the_uniform_threshold() {
        let w = ScoreWindow::seeded(1000, &uniform());
        assert_eq!(w.len(), 1000);
        assert!(
            (w.threshold(0.3) - 0.7).abs() < 0.002,
            "{}",
            w.threshold(0.3)
        );
        assert!((w.threshold(0.9) - 0.1).abs() < 0.002);
    }

    #[test]
    fn the_threshold_follows_the_traffic_within_one_window() {
        let mut w = ScoreWindow::seeded(500, &uniform());
        for i in 0..500 {
            w.push(0.1 + 0.2 * (f64::from(i) / 500.0)); // now scores in [0.1, 0.3)
        }
        let t = w.threshold(0.3);
        assert!((t - 0.24).abs() < 0.003, "{t}");
        let above = (0..500)
            .map(|i| 0.1 + 0.2 * (f64::from(i) / 500.0))
            .filter(|s| *s > t)
            .count();
        assert!((above as f64 / 500.0 - 0.3).abs() < 0.01, "{above}");
    }

    #[test]
    fn round_trips_through_bytes_and_refuses_other_shapes() {
        let mut w = ScoreWindow::seeded(300, &uniform());
        for i in 0..77 {
            w.push(f64::from(i) / 77.0);
        }
        let bytes = w.to_bytes();
        assert_eq!(ScoreWindow::from_bytes(&bytes, 300), Some(w.clone()));
        assert_eq!(ScoreWindow::from_bytes(&bytes, 301), None);
        assert_eq!(
            ScoreWindow::from_bytes(&bytes[..bytes.len() - 1], 300),
            None
        );
        assert_eq!(ScoreWindow::from_bytes(b"", 300), None);
    }
}
