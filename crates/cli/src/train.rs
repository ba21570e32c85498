//! `model-router train`: logistic regression over the classifier's
//! features, in Rust. Rows are JSONL (`dataset`); the L2 strength is chosen
//! by cross-validation grouped by each row's `group` (a group's rows are all
//! in one fold, so the figures are for groups never seen in training); the
//! linear score is Platt-calibrated on the out-of-fold scores, which also
//! give the training score distribution (`top_share`'s seed) and the
//! held-out metrics the artifact carries.
//!
//! Offline CLI code, never on a request path: indices are bounded by
//! construction (buckets < 2^hash_bits, rows and folds counted here).
#![allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use std::collections::BTreeMap;

use serde_json::json;

use crate::dataset::{Row, Rows};
use model_router_core::classifier::artifact::*;
use model_router_core::classifier::features::{Extractor, DENSE, PROFILE};
use model_router_core::classifier::sigmoid;
use model_router_core::task::Scan;
use model_router_core::tokens::Encoding;

/// L2 strength of the dense features.
const DENSE_LAMBDA: f64 = 1e-4;

#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub encoding: Encoding,
    pub scan: Scan,
    pub hash_bits: u32,
    pub bigrams: bool,
    pub max_tokens: usize,
    /// The text-profile dense features (`features::PROFILE`).
    pub profile: bool,
    pub folds: usize,
    /// L2 strengths tried by cross-validation.
    pub lambdas: Vec<f64>,
    pub epochs: usize,
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            encoding: Encoding::O200kBase,
            scan: Scan::AllUser,
            hash_bits: 16,
            bigrams: true,
            max_tokens: 2048,
            profile: false,
            folds: 5,
            lambdas: vec![1e-3, 1e-2, 3e-2, 1e-1, 3e-1],
            epochs: 10,
            seed: 1,
        }
    }
}

/// One row as features: token buckets with their values (already scaled
/// by 1/sqrt(total)), raw dense values.
pub struct Example {
    pub tokens: Vec<(u32, f32)>,
    pub dense: Vec<f64>,
}

pub fn extractor(o: &TrainOptions) -> Extractor {
    Extractor {
        encoding: o.encoding,
        scan: o.scan,
        hash_bits: o.hash_bits,
        bigrams: o.bigrams,
        max_tokens: o.max_tokens,
        tasks: Vec::new(),
        profile: o.profile,
    }
}

pub fn featurize(extractor: &Extractor, rows: &[Row]) -> Result<Vec<Example>, String> {
    rows.iter()
        .enumerate()
        .map(|(i, row)| {
            let facts = row.facts().map_err(|e| format!("row {}: {e}", i + 1))?;
            let mut dense = vec![0.0; extractor.dense_len()];
            let mut counts: BTreeMap<u32, f32> = BTreeMap::new();
            let n = extractor
                .visit(&facts, None, &mut dense, |b| {
                    *counts.entry(b).or_default() += 1.0
                })
                .map_err(|e| e.to_string())?;
            let scale = if n > 0 { 1.0 / (n as f32).sqrt() } else { 0.0 };
            Ok(Example {
                tokens: counts.into_iter().map(|(b, c)| (b, c * scale)).collect(),
                dense,
            })
        })
        .collect()
}

/// A small deterministic generator (splitmix64): shuffles and bootstraps
/// must give the same figures on every run.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % (n.max(1) as u64)) as usize
    }
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

/// The fold of each row: whole groups go to one fold (rows without a group
/// are their own group). Groups are shuffled, then dealt to the fold with
/// the fewest rows so far, largest first, so folds stay balanced.
pub fn grouped_folds(groups: &[String], folds: usize, seed: u64) -> Vec<usize> {
    let mut sizes: BTreeMap<&str, usize> = BTreeMap::new();
    for g in groups {
        *sizes.entry(g.as_str()).or_default() += 1;
    }
    let mut order: Vec<(&str, usize)> = sizes.into_iter().collect();
    Rng(seed).shuffle(&mut order);
    order.sort_by_key(|g| std::cmp::Reverse(g.1)); // stable: shuffled order among equal sizes
    let folds = folds.max(1);
    let mut load = vec![0usize; folds];
    let mut fold_of: BTreeMap<&str, usize> = BTreeMap::new();
    for (g, n) in order {
        let f = (0..folds).min_by_key(|f| load[*f]).unwrap_or(0);
        load[f] += n;
        fold_of.insert(g, f);
    }
    groups.iter().map(|g| fold_of[g.as_str()]).collect()
}

/// A fitted linear model (dense weights act on standardised values).
#[derive(Debug, Clone)]
pub struct Linear {
    pub bias: f64,
    pub dense: Vec<f64>,
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    pub tokens: Vec<f32>,
}

impl Linear {
    pub fn z(&self, x: &Example) -> f64 {
        let mut z = self.bias;
        for (b, v) in &x.tokens {
            z += f64::from(self.tokens[*b as usize]) * f64::from(*v);
        }
        for i in 0..self.dense.len() {
            if self.std[i] > 1e-12 {
                z += self.dense[i] * (x.dense[i] - self.mean[i]) / self.std[i];
            }
        }
        z
    }
}

/// L2-regularised logistic regression by AdaGrad over shuffled epochs
/// (regularisation applied to the features a row touches: the usual
/// sparse approximation).
#[allow(clippy::needless_range_loop)] // weights, statistics and values share the index
pub fn fit(xs: &[&Example], ys: &[f64], lambda: f64, o: &TrainOptions) -> Linear {
    let d = xs.first().map_or(0, |x| x.dense.len());
    let n = xs.len().max(1) as f64;
    let mut mean = vec![0.0; d];
    let mut std = vec![0.0; d];
    for x in xs {
        for i in 0..d {
            mean[i] += x.dense[i] / n;
        }
    }
    for x in xs {
        for i in 0..d {
            std[i] += (x.dense[i] - mean[i]).powi(2) / n;
        }
    }
    for s in &mut std {
        *s = s.sqrt();
    }
    let size = 1usize << o.hash_bits;
    let mut m = Linear {
        bias: 0.0,
        dense: vec![0.0; d],
        mean,
        std,
        tokens: vec![0.0; size],
    };
    let mut g_tokens = vec![1e-8f32; size];
    let mut g_dense = vec![1e-8; d];
    let mut g_bias = 1e-8;
    let rate = 0.5;
    let mut order: Vec<usize> = (0..xs.len()).collect();
    let mut rng = Rng(o.seed);
    for _ in 0..o.epochs {
        rng.shuffle(&mut order);
        for &i in &order {
            let x = xs[i];
            let err = sigmoid(m.z(x)) - ys[i];
            g_bias += err * err;
            m.bias -= rate * err / f64::sqrt(g_bias);
            for (b, v) in &x.tokens {
                let b = *b as usize;
                let g = err as f32 * v + (lambda as f32) * m.tokens[b];
                g_tokens[b] += g * g;
                m.tokens[b] -= (rate as f32) * g / g_tokens[b].sqrt();
            }
            for j in 0..d {
                if m.std[j] > 1e-12 {
                    let xv = (x.dense[j] - m.mean[j]) / m.std[j];
                    // The few dense features (length, counts, flags) are
                    // barely regularised: `lambda` is for the many token weights.
                    let g = err * xv + DENSE_LAMBDA * m.dense[j];
                    g_dense[j] += g * g;
                    m.dense[j] -= rate * g / f64::sqrt(g_dense[j]);
                }
            }
        }
    }
    m
}

/// Platt scaling: (a, b) minimising the log loss of sigmoid(a z + b), by Newton's method.
pub fn platt(zs: &[f64], ys: &[f64]) -> (f64, f64) {
    let (mut a, mut b) = (1.0, 0.0);
    for _ in 0..50 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 1e-9, 0.0, 1e-9);
        for (z, y) in zs.iter().zip(ys) {
            let p = sigmoid(a * z + b);
            let w = p * (1.0 - p);
            ga += (p - y) * z;
            gb += p - y;
            haa += w * z * z;
            hab += w * z;
            hbb += w;
        }
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-18 {
            break;
        }
        let da = (hbb * ga - hab * gb) / det;
        let db = (haa * gb - hab * ga) / det;
        a -= da;
        b -= db;
        if da.abs() + db.abs() < 1e-10 {
            break;
        }
    }
    (a, b)
}

/// Area under the ROC curve (ties count half).
pub fn auc(scores: &[f64], ys: &[f64]) -> f64 {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&i, &j| scores[i].total_cmp(&scores[j]));
    let (mut rank_sum, mut pos) = (0.0, 0.0);
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for k in &idx[i..=j] {
            if ys[*k] > 0.5 {
                rank_sum += avg;
                pos += 1.0;
            }
        }
        i = j + 1;
    }
    let neg = scores.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return 0.5;
    }
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

/// Expected calibration error over 10 equal-width bins.
pub fn ece(ps: &[f64], ys: &[f64]) -> f64 {
    let mut bins = [(0.0, 0.0, 0.0); 10];
    for (p, y) in ps.iter().zip(ys) {
        let b = ((p * 10.0) as usize).min(9);
        bins[b].0 += 1.0;
        bins[b].1 += p;
        bins[b].2 += y;
    }
    let n = ps.len().max(1) as f64;
    bins.iter()
        .filter(|b| b.0 > 0.0)
        .map(|(c, p, y)| (c / n) * ((p - y) / c).abs())
        .sum()
}

pub fn log_loss(ps: &[f64], ys: &[f64]) -> f64 {
    let n = ps.len().max(1) as f64;
    ps.iter()
        .zip(ys)
        .map(|(p, y)| {
            let p = p.clamp(1e-12, 1.0 - 1e-12);
            -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
        })
        .sum::<f64>()
        / n
}

/// Quantiles 0%, 1%, …, 100% (linear interpolation).
pub fn quantiles(values: &[f64]) -> Vec<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    (0..=100)
        .map(|q| {
            if v.is_empty() {
                return 0.5;
            }
            let at = q as f64 / 100.0 * (v.len() - 1) as f64;
            let lo = at.floor() as usize;
            let hi = (lo + 1).min(v.len() - 1);
            v[lo] + (v[hi] - v[lo]) * (at - lo as f64)
        })
        .collect()
}

/// What training produced.
pub struct Trained {
    pub artifact: Artifact,
    /// Calibrated out-of-fold probabilities, one per row (the held-out scores).
    pub oof: Vec<f64>,
    /// Per lambda tried: held-out AUC.
    pub cv: Vec<(f64, f64)>,
}

/// Out-of-fold linear scores for one lambda.
fn out_of_fold(
    xs: &[Example],
    ys: &[f64],
    folds: &[usize],
    k: usize,
    lambda: f64,
    o: &TrainOptions,
) -> Vec<f64> {
    let mut z = vec![0.0; xs.len()];
    for f in 0..k {
        let train: Vec<usize> = (0..xs.len()).filter(|i| folds[*i] != f).collect();
        if train.len() == xs.len() {
            continue; // an empty fold
        }
        let tx: Vec<&Example> = train.iter().map(|i| &xs[*i]).collect();
        let ty: Vec<f64> = train.iter().map(|i| ys[*i]).collect();
        let m = fit(&tx, &ty, lambda, o);
        for i in (0..xs.len()).filter(|i| folds[*i] == f) {
            z[i] = m.z(&xs[i]);
        }
    }
    z
}

pub fn train(rows: &Rows, o: &TrainOptions) -> Result<Trained, String> {
    if rows.rows.len() < 2 * o.folds.max(2) {
        return Err(format!(
            "need at least {} rows, got {}",
            2 * o.folds.max(2),
            rows.rows.len()
        ));
    }
    let ys: Vec<f64> = rows.rows.iter().map(|r| r.label).collect();
    let positives = ys.iter().filter(|y| **y > 0.5).count();
    if positives == 0 || positives == ys.len() {
        return Err("every row has the same label: nothing to learn".into());
    }
    let ex = extractor(o);
    let xs = featurize(&ex, &rows.rows)?;
    let groups: Vec<String> = rows
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| r.group.clone().unwrap_or_else(|| format!("\u{0}row{i}")))
        .collect();
    let distinct = groups
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let k = o.folds.clamp(2, distinct.max(2));
    let folds = grouped_folds(&groups, k, o.seed);

    let mut cv = Vec::new();
    let mut best: Option<(f64, f64, Vec<f64>)> = None;
    for &lambda in &o.lambdas {
        let z = out_of_fold(&xs, &ys, &folds, k, lambda, o);
        let a = auc(&z, &ys);
        cv.push((lambda, a));
        if best.as_ref().is_none_or(|b| a > b.1) {
            best = Some((lambda, a, z));
        }
    }
    let (lambda, _, z) = best.ok_or("no lambda to try")?;
    let (a, b) = platt(&z, &ys);
    let oof: Vec<f64> = z.iter().map(|z| sigmoid(a * z + b)).collect();
    let all: Vec<&Example> = xs.iter().collect();
    let m = fit(&all, &ys, lambda, o);

    let tokens: TokenWeights = m
        .tokens
        .iter()
        .enumerate()
        .filter(|(_, w)| w.abs() >= 1e-4)
        .map(|(i, w)| (i as u32, (w * 1e4).round() / 1e4))
        .collect();
    let artifact = Artifact {
        format: FORMAT.into(),
        version: VERSION,
        features: FeatureSpec {
            encoding: o.encoding.name().into(),
            scan: o.scan,
            hash_bits: o.hash_bits,
            bigrams: o.bigrams,
            max_tokens: o.max_tokens,
            tasks: Vec::new(),
            profile: o.profile,
        },
        weights: Weights {
            bias: m.bias,
            dense: m.dense.clone(),
            dense_mean: m.mean.clone(),
            dense_std: m.std.clone(),
            tokens,
        },
        calibration: Calibration {
            method: CalibrationMethod::Platt,
            a,
            b,
        },
        score_quantiles: quantiles(&oof),
        training: json!({
            "rows": ys.len(),
            "positives": positives,
            "groups": distinct,
            "folds": k,
            "lambda": lambda,
            "cv_auc_by_lambda": cv.iter().map(|(l, a)| json!([l, a])).collect::<Vec<_>>(),
            "epochs": o.epochs,
            "data_sha256": rows.sha256,
            "dense_features": DENSE
                .iter()
                .chain(if o.profile { PROFILE.as_slice() } else { &[] })
                .collect::<Vec<_>>(),
        }),
        metrics: json!({
            "held_out": "grouped cross-validation (out-of-fold scores)",
            "auc": auc(&oof, &ys),
            "log_loss": log_loss(&oof, &ys),
            "ece": ece(&oof, &ys),
        }),
    };
    Ok(Trained { artifact, oof, cv })
}

#[cfg(test)]
mod tests {
    use super::*;
    use model_router_core::classifier::Classifier;

    #[test]
    fn grouped_folds_never_split_a_group() {
        let groups: Vec<String> = (0..500).map(|i| format!("g{}", (i * 7) % 23)).collect();
        let folds = grouped_folds(&groups, 5, 3);
        for g in groups.iter() {
            let fs: std::collections::BTreeSet<usize> = groups
                .iter()
                .zip(&folds)
                .filter(|(h, _)| *h == g)
                .map(|(_, f)| *f)
                .collect();
            assert_eq!(fs.len(), 1, "group {g} in folds {fs:?}");
        }
        let used: std::collections::BTreeSet<_> = folds.iter().collect();
        assert_eq!(used.len(), 5);
        let mut load = [0; 5];
        for f in &folds {
            load[*f] += 1;
        }
        assert!(
            load.iter().max().unwrap() - load.iter().min().unwrap() <= 30,
            "{load:?}"
        );
    }

    fn toy_rows() -> Rows {
        // Separable: "integral"/"proof" prompts are hard, "capital"/"color" easy.
        let mut text = String::new();
        for i in 0..120 {
            let (word, label) = match i % 4 {
                0 => ("integral", 1),
                1 => ("proof", 1),
                2 => ("capital", 0),
                _ => ("color", 0),
            };
            text.push_str(
                &serde_json::to_string(&json!({
                    "prompt": format!("question {i}: the {word} of item {}", i % 9),
                    "label": label,
                    "group": format!("g{}", i % 6),
                }))
                .unwrap(),
            );
            text.push('\n');
        }
        Rows::parse(&text, &Default::default()).unwrap()
    }

    #[test]
    fn a_separable_toy_set_is_learned() {
        let rows = toy_rows();
        let trained = train(
            &rows,
            &TrainOptions {
                hash_bits: 12,
                ..Default::default()
            },
        )
        .unwrap();
        let ys: Vec<f64> = rows.rows.iter().map(|r| r.label).collect();
        assert!(
            auc(&trained.oof, &ys) > 0.99,
            "held-out AUC {}",
            auc(&trained.oof, &ys)
        );
        let c = Classifier::from_artifact("toy", trained.artifact.clone(), 1000).unwrap();
        let score = |t: &str| {
            let body = json!({"messages": [{"role": "user", "content": t}]}).to_string();
            let facts =
                model_router_core::request::parse("/v1/chat/completions", body.as_bytes()).unwrap();
            c.score(&facts, None).unwrap()
        };
        assert!(score("question 500: the proof of item 3") > 0.8);
        assert!(score("question 501: the capital of item 3") < 0.2);
        // The scorer in the filter and the trainer agree on the linear score.
        let ex = extractor(&TrainOptions {
            hash_bits: 12,
            ..Default::default()
        });
        let xs = featurize(&ex, &rows.rows[..1]).unwrap();
        let facts = rows.rows[0].facts().unwrap();
        let m = &trained.artifact;
        let expect = {
            let tokens: std::collections::HashMap<u32, f32> = m.weights.tokens.pairs().collect();
            let mut z = m.weights.bias;
            for (b, v) in &xs[0].tokens {
                z += f64::from(*tokens.get(b).unwrap_or(&0.0)) * f64::from(*v);
            }
            for i in 0..5 {
                if m.weights.dense_std[i] > 1e-12 {
                    z += m.weights.dense[i] * (xs[0].dense[i] - m.weights.dense_mean[i])
                        / m.weights.dense_std[i];
                }
            }
            z
        };
        assert!((c.linear(&facts, None).unwrap() - expect).abs() < 1e-4);
    }

    #[test]
    fn platt_recovers_a_known_calibration() {
        let mut rng = Rng(9);
        let zs: Vec<f64> = (0..4000).map(|_| rng.unit() * 8.0 - 4.0).collect();
        let ys: Vec<f64> = zs
            .iter()
            .map(|z| f64::from(u8::from(rng.unit() < sigmoid(2.0 * z - 1.0))))
            .collect();
        let (a, b) = platt(&zs, &ys);
        assert!((a - 2.0).abs() < 0.25 && (b + 1.0).abs() < 0.2, "{a} {b}");
        assert!(
            ece(
                &zs.iter().map(|z| sigmoid(a * z + b)).collect::<Vec<_>>(),
                &ys
            ) < 0.03
        );
    }
}
