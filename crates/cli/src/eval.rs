//! `model-router eval`: what a router is worth, measured the way RouteLLM
//! and RouterBench do. Every row is replayed through the same decision code
//! as the filter (`decide_with`, with in-process `top_share` windows); its
//! quality is the row's score for the model chosen, its cost the model's
//! prices × the counted prompt tokens and the row's (or expected) output.
//! Baselines: always strong, always weak, random at the same strong share,
//! and the length rule (the longest prompts to the strong model).
//!
//! For a score (a classifier, prompt length, random), the curve over
//! thresholds sends the top k rows to the strong model for every k; from it:
//! PGR(k) = (quality − weak) / (strong − weak); APGR, its mean over strong
//! shares 0..1; CPT(x), the least strong share whose PGR reaches x; AIQ
//! (RouterBench), the area under quality against cost normalised to
//! [weak cost, strong cost]. Intervals are bootstrap 95% (rows resampled).
//!
//! Offline CLI code, never on a request path.
#![allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use crate::dataset::Row;
use crate::train::Rng;

/// One row's outcomes under the two models of the comparison.
#[derive(Debug, Clone, Copy)]
pub struct Outcomes {
    pub strong_quality: f64,
    pub weak_quality: f64,
    pub strong_cost: f64,
    pub weak_cost: f64,
}

/// Figures of a threshold curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurveMetrics {
    pub apgr: f64,
    /// None when the PGR is never reached.
    pub cpt50: Option<f64>,
    pub cpt80: Option<f64>,
    pub aiq: f64,
}

/// A point of the curve: strong share, mean quality, mean cost.
#[derive(Debug, Clone, Copy)]
pub struct Point {
    pub share: f64,
    pub quality: f64,
    pub cost: f64,
}

/// The curve over every threshold of `scores` (higher = send to strong),
/// over the rows in `idx` (a bootstrap resample or all of them).
pub fn curve(scores: &[f64], rows: &[Outcomes], idx: &[usize]) -> Vec<Point> {
    let mut order = idx.to_vec();
    // Highest scores first; ties keep row order (a stable, deterministic curve).
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let n = order.len().max(1) as f64;
    let mut quality: f64 = order.iter().map(|&i| rows[i].weak_quality).sum();
    let mut cost: f64 = order.iter().map(|&i| rows[i].weak_cost).sum();
    let mut out = Vec::with_capacity(order.len() + 1);
    out.push(Point {
        share: 0.0,
        quality: quality / n,
        cost: cost / n,
    });
    for (k, &i) in order.iter().enumerate() {
        let r = rows[i];
        quality += r.strong_quality - r.weak_quality;
        cost += r.strong_cost - r.weak_cost;
        out.push(Point {
            share: (k + 1) as f64 / n,
            quality: quality / n,
            cost: cost / n,
        });
    }
    out
}

pub fn metrics(points: &[Point]) -> CurveMetrics {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return CurveMetrics {
            apgr: 0.0,
            cpt50: None,
            cpt80: None,
            aiq: 0.0,
        };
    };
    let gap = last.quality - first.quality;
    let pgr = |p: &Point| {
        if gap.abs() < 1e-12 {
            0.0
        } else {
            (p.quality - first.quality) / gap
        }
    };
    let mut apgr = 0.0;
    let mut aiq = 0.0;
    let cost_span = last.cost - first.cost;
    for w in points.windows(2) {
        let (a, b) = (w[0], w[1]);
        apgr += (b.share - a.share) * (pgr(&a) + pgr(&b)) / 2.0;
        if cost_span.abs() > 1e-15 {
            aiq += (b.cost - a.cost) / cost_span * (a.quality + b.quality) / 2.0;
        }
    }
    if cost_span.abs() <= 1e-15 {
        aiq = points.iter().map(|p| p.quality).sum::<f64>() / points.len() as f64;
    }
    let cpt = |x: f64| points.iter().find(|p| pgr(p) >= x - 1e-12).map(|p| p.share);
    CurveMetrics {
        apgr,
        cpt50: cpt(0.5),
        cpt80: cpt(0.8),
        aiq,
    }
}

/// A figure with its bootstrap 95% interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurveReport {
    pub apgr: Interval,
    pub cpt50: Option<Interval>,
    pub cpt80: Option<Interval>,
    pub aiq: Interval,
}

fn interval(value: f64, mut samples: Vec<f64>) -> Interval {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| {
        if samples.is_empty() {
            return value;
        }
        samples[((samples.len() - 1) as f64 * q).round() as usize]
    };
    Interval {
        value,
        low: at(0.025),
        high: at(0.975),
    }
}

/// The curve's figures on all rows, with intervals over `resamples` bootstrap resamples.
pub fn report(scores: &[f64], rows: &[Outcomes], resamples: usize, seed: u64) -> CurveReport {
    let all: Vec<usize> = (0..rows.len()).collect();
    let full = metrics(&curve(scores, rows, &all));
    let mut rng = Rng(seed);
    let mut samples: Vec<CurveMetrics> = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        let idx: Vec<usize> = (0..rows.len()).map(|_| rng.below(rows.len())).collect();
        samples.push(metrics(&curve(scores, rows, &idx)));
    }
    let pick = |f: &dyn Fn(&CurveMetrics) -> Option<f64>, v: Option<f64>| {
        v.map(|v| interval(v, samples.iter().map(|s| f(s).unwrap_or(1.0)).collect()))
    };
    CurveReport {
        apgr: interval(full.apgr, samples.iter().map(|s| s.apgr).collect()),
        cpt50: pick(&|s| s.cpt50, full.cpt50),
        cpt80: pick(&|s| s.cpt80, full.cpt80),
        aiq: interval(full.aiq, samples.iter().map(|s| s.aiq).collect()),
    }
}

/// APGR of `a` minus APGR of `b` on the same rows, with a paired bootstrap
/// 95% interval (each resample scores both routers on the same rows, the
/// resamples of [`report`] with the same seed): whether one router beats the
/// other, which two overlapping separate intervals cannot say.
pub fn apgr_difference(
    a: &[f64],
    b: &[f64],
    rows: &[Outcomes],
    resamples: usize,
    seed: u64,
) -> Interval {
    let apgr = |scores: &[f64], idx: &[usize]| metrics(&curve(scores, rows, idx)).apgr;
    let all: Vec<usize> = (0..rows.len()).collect();
    let mut rng = Rng(seed);
    let samples = (0..resamples)
        .map(|_| {
            let idx: Vec<usize> = (0..rows.len()).map(|_| rng.below(rows.len())).collect();
            apgr(a, &idx) - apgr(b, &idx)
        })
        .collect();
    interval(apgr(a, &all) - apgr(b, &all), samples)
}

/// Random scores, reproducible: the random router's curve.
pub fn random_scores(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = Rng(seed);
    (0..n).map(|_| rng.unit()).collect()
}

/// A router's operating point: strong share, mean quality, mean cost, PGR.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Operating {
    pub strong_share: f64,
    pub quality: f64,
    pub cost: f64,
    pub pgr: f64,
}

/// The operating point of sending rows where `strong[i]` to the strong model.
pub fn operating(rows: &[Outcomes], strong: &[bool]) -> Operating {
    let n = rows.len().max(1) as f64;
    let (mut q, mut c, mut s) = (0.0, 0.0, 0.0);
    for (r, &st) in rows.iter().zip(strong) {
        if st {
            q += r.strong_quality;
            c += r.strong_cost;
            s += 1.0;
        } else {
            q += r.weak_quality;
            c += r.weak_cost;
        }
    }
    let qs: f64 = rows.iter().map(|r| r.strong_quality).sum::<f64>() / n;
    let qw: f64 = rows.iter().map(|r| r.weak_quality).sum::<f64>() / n;
    let q = q / n;
    Operating {
        strong_share: s / n,
        quality: q,
        cost: c / n,
        pgr: if (qs - qw).abs() < 1e-12 {
            0.0
        } else {
            (q - qw) / (qs - qw)
        },
    }
}

/// Random routing at `share`, in expectation.
pub fn random_at(rows: &[Outcomes], share: f64) -> Operating {
    let n = rows.len().max(1) as f64;
    let mean = |f: &dyn Fn(&Outcomes) -> f64| rows.iter().map(f).sum::<f64>() / n;
    let (qs, qw) = (mean(&|r| r.strong_quality), mean(&|r| r.weak_quality));
    let (cs, cw) = (mean(&|r| r.strong_cost), mean(&|r| r.weak_cost));
    Operating {
        strong_share: share,
        quality: qw + share * (qs - qw),
        cost: cw + share * (cs - cw),
        pgr: share,
    }
}

/// The top `share` of `scores` (ties in row order), as a routing.
pub fn top_share(scores: &[f64], share: f64) -> Vec<bool> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let k = (share * scores.len() as f64).round() as usize;
    let mut out = vec![false; scores.len()];
    for &i in order.iter().take(k) {
        out[i] = true;
    }
    out
}

/// Strong share of each consecutive block of `window` rows.
pub fn windowed_share(strong: &[bool], window: usize) -> Vec<f64> {
    strong
        .chunks(window.max(1))
        .filter(|c| c.len() == window.max(1))
        .map(|c| c.iter().filter(|s| **s).count() as f64 / c.len() as f64)
        .collect()
}

/// Whether every row has a score for both models.
pub fn scored(rows: &[Row], strong: &str, weak: &str) -> Result<(), String> {
    for (i, r) in rows.iter().enumerate() {
        for m in [strong, weak] {
            if !r.scores.contains_key(m) {
                return Err(format!("row {}: no score for model {m:?}", i + 1));
            }
        }
    }
    Ok(())
}

/// Cost–quality curves as an SVG: each named curve, and named points.
pub fn svg(curves: &[(&str, Vec<Point>)], points: &[(&str, Point)]) -> String {
    let all = curves
        .iter()
        .flat_map(|(_, c)| c.iter())
        .chain(points.iter().map(|(_, p)| p));
    let (mut c0, mut c1, mut q0, mut q1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for p in all {
        c0 = c0.min(p.cost);
        c1 = c1.max(p.cost);
        q0 = q0.min(p.quality);
        q1 = q1.max(p.quality);
    }
    let (w, h, m) = (640.0, 420.0, 60.0);
    let x = |c: f64| m + (c - c0) / (c1 - c0).max(1e-12) * (w - 2.0 * m);
    let y = |q: f64| h - m - (q - q0) / (q1 - q0).max(1e-12) * (h - 2.0 * m);
    let colors = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    ];
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <line x1=\"{m}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"black\"/>\n\
         <line x1=\"{m}\" y1=\"{m}\" x2=\"{m}\" y2=\"{b}\" stroke=\"black\"/>\n\
         <text x=\"{cx}\" y=\"{lb}\" text-anchor=\"middle\">cost per request (USD): {c0:.6} … {c1:.6}</text>\n\
         <text x=\"15\" y=\"{cy}\" transform=\"rotate(-90 15 {cy})\" text-anchor=\"middle\">quality: {q0:.3} … {q1:.3}</text>\n",
        b = h - m,
        r = w - m,
        cx = w / 2.0,
        lb = h - 20.0,
        cy = h / 2.0,
    );
    for (i, (name, c)) in curves.iter().enumerate() {
        let color = colors[i % colors.len()];
        let step = (c.len() / 400).max(1);
        let path: Vec<String> = c
            .iter()
            .step_by(step)
            .chain(c.last())
            .map(|p| format!("{:.1},{:.1}", x(p.cost), y(p.quality)))
            .collect();
        s.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>\n\
             <text x=\"{lx}\" y=\"{ly}\" fill=\"{color}\">{name}</text>\n",
            path.join(" "),
            lx = m + 10.0,
            ly = m + 15.0 * (i as f64 + 1.0),
        ));
    }
    for (i, (name, p)) in points.iter().enumerate() {
        s.push_str(&format!(
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"black\"/><text x=\"{:.1}\" y=\"{:.1}\">{name}</text>\n",
            x(p.cost),
            y(p.quality),
            x(p.cost) + 6.0,
            y(p.quality) - 6.0 - 12.0 * (i % 2) as f64,
        ));
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Outcomes> {
        // Rows 0..50 the weak model fails (strong succeeds); 50..100 both succeed.
        (0..100)
            .map(|i| Outcomes {
                strong_quality: 1.0,
                weak_quality: if i < 50 { 0.0 } else { 1.0 },
                strong_cost: 10.0,
                weak_cost: 1.0,
            })
            .collect()
    }

    #[test]
    fn an_oracle_reaches_full_quality_at_the_failure_rate() {
        let r = rows();
        let oracle: Vec<f64> = (0..100).map(|i| if i < 50 { 1.0 } else { 0.0 }).collect();
        let m = metrics(&curve(&oracle, &r, &(0..100).collect::<Vec<_>>()));
        assert_eq!(m.cpt50, Some(0.25));
        assert_eq!(m.cpt80, Some(0.4));
        // PGR rises linearly to 1 at share 0.5, then stays: area 0.25 + 0.5.
        assert!((m.apgr - 0.75).abs() < 1e-9, "{}", m.apgr);
        let anti: Vec<f64> = oracle.iter().map(|s| -s).collect();
        let m = metrics(&curve(&anti, &r, &(0..100).collect::<Vec<_>>()));
        assert!((m.apgr - 0.25).abs() < 1e-9);
        assert_eq!(m.cpt50, Some(0.75));
    }

    #[test]
    fn random_scores_average_half_and_intervals_cover_the_value() {
        let r = rows();
        let rep = report(&random_scores(100, 4), &r, 200, 5);
        assert!(rep.apgr.low <= rep.apgr.value && rep.apgr.value <= rep.apgr.high);
        assert!((rep.apgr.value - 0.5).abs() < 0.15, "{:?}", rep.apgr);
        let op = random_at(&r, 0.3);
        assert!((op.pgr - 0.3).abs() < 1e-12 && (op.cost - 3.7).abs() < 1e-12);
        let strong = top_share(&(0..100).map(f64::from).collect::<Vec<_>>(), 0.3);
        let op = operating(&r, &strong);
        assert_eq!(op.strong_share, 0.3);
        assert_eq!(
            op.pgr, 0.0,
            "the 30 highest indices are rows both models pass"
        );
        assert_eq!(windowed_share(&strong, 50), vec![0.0, 0.6]);
    }
}
