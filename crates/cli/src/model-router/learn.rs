//! The learned-routing commands: `train`, `eval` and `convert-routellm`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::process::ExitCode;

use lexopt::prelude::*;
use model_router_cli::dataset::{self, LabelOptions, Row, Rows};
use model_router_cli::eval::{self, CurveReport, Interval, Operating, Outcomes};
use model_router_cli::train::{self, TrainOptions};
use model_router_core::classifier::LocalWindows;
use model_router_core::decision::{decide_with, Request};
use model_router_core::headers::Headers;
use model_router_core::policy::{ModelId, Policy};
use model_router_core::request::ApiShape;
use model_router_core::task::Scan;
use model_router_core::tokens::Encoding;

use super::{load_policy, string_value};

const BOOTSTRAP: usize = 200;
const SEED: u64 = 1;

fn parse<T: std::str::FromStr>(parser: &mut lexopt::Parser, flag: &str) -> Result<T, String> {
    string_value(parser)?
        .parse()
        .map_err(|_| format!("bad value for --{flag}"))
}

fn read_rows(path: &str, labels: &LabelOptions) -> Result<Rows, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    Rows::parse(&text, labels).map_err(|e| format!("{path}: {e}"))
}

pub fn train_command(parser: &mut lexopt::Parser) -> Result<ExitCode, String> {
    let mut options = TrainOptions::default();
    let mut labels = LabelOptions::default();
    let (mut data, mut out, mut strong) = (None, None, None);
    let mut strong_wins = false;
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Short('o') | Long("output") => out = Some(string_value(parser)?),
            Long("weak") => labels.weak = Some(string_value(parser)?),
            Long("strong") => strong = Some(string_value(parser)?),
            Long("pass-mark") => labels.pass_mark = Some(parse(parser, "pass-mark")?),
            Long("encoding") => {
                let name = string_value(parser)?;
                options.encoding = Encoding::from_name(&name)
                    .ok_or_else(|| format!("unknown encoding {name:?}"))?;
            }
            Long("scan") => {
                options.scan = match string_value(parser)?.as_str() {
                    "last_user" => Scan::LastUser,
                    "all_user" => Scan::AllUser,
                    "system" => Scan::System,
                    "all" => Scan::All,
                    other => return Err(format!("unknown --scan {other:?}")),
                }
            }
            Long("hash-bits") => options.hash_bits = parse(parser, "hash-bits")?,
            Long("no-bigrams") => options.bigrams = false,
            Long("profile") => options.profile = true,
            Long("label") => {
                strong_wins = match string_value(parser)?.as_str() {
                    "weak-fails" => false,
                    "strong-wins" => true,
                    other => {
                        return Err(format!(
                            "unknown --label {other:?} (weak-fails or strong-wins)"
                        ))
                    }
                }
            }
            Long("max-tokens") => options.max_tokens = parse(parser, "max-tokens")?,
            Long("folds") => options.folds = parse(parser, "folds")?,
            Long("epochs") => options.epochs = parse(parser, "epochs")?,
            Long("lambda") => {
                options.lambdas = string_value(parser)?
                    .split(',')
                    .map(|v| v.trim().parse().map_err(|_| format!("bad --lambda {v:?}")))
                    .collect::<Result<_, _>>()?
            }
            Value(v) if data.is_none() => data = Some(v.string().map_err(|e| e.to_string())?),
            other => return Err(other.unexpected().to_string()),
        }
    }
    let usage = "usage: model-router train DATA.jsonl -o CLASSIFIER.json [--weak MODEL [--pass-mark X]] [--strong MODEL]";
    let (Some(data), Some(out)) = (data, out) else {
        return Err(usage.into());
    };
    if !(8..=20).contains(&options.hash_bits) {
        return Err("--hash-bits must be between 8 and 20".into());
    }
    if strong_wins {
        if strong.is_none() || labels.weak.is_none() {
            return Err("--label strong-wins needs --weak MODEL and --strong MODEL".into());
        }
        labels.strong_wins = strong.clone();
    }
    let rows = read_rows(&data, &labels)?;
    if let Some(i) = rows.rows.iter().position(|r| r.label.is_nan()) {
        return Err(format!(
            "{data}: row {} has no label (give rows a label, or scores and --weak MODEL)",
            i + 1
        ));
    }
    let mut trained = train::train(&rows, &options)?;
    if let Some(notes) = trained.artifact.training.as_object_mut() {
        let label = if strong_wins {
            "strong_wins"
        } else {
            "weak_fails"
        };
        notes.insert("label".into(), label.into());
    }
    let mut report = String::new();
    let t = &trained.artifact.training;
    let _ = writeln!(
        report,
        "trained on {} rows ({} positive: {}), {} groups, {}-fold cross-validation grouped by `group`",
        t["rows"],
        t["positives"],
        if strong_wins {
            "the weak model fails and the strong one passes"
        } else {
            "the weak model fails"
        },
        t["groups"],
        t["folds"]
    );
    for (lambda, auc) in &trained.cv {
        let _ = writeln!(report, "  lambda {lambda:e}: held-out AUC {auc:.4}");
    }
    let m = &trained.artifact.metrics;
    let _ = writeln!(
        report,
        "chosen lambda {:e}; held-out AUC {:.4}, log loss {:.4}, ECE {:.4}",
        t["lambda"].as_f64().unwrap_or_default(),
        m["auc"].as_f64().unwrap_or_default(),
        m["log_loss"].as_f64().unwrap_or_default(),
        m["ece"].as_f64().unwrap_or_default()
    );
    if let (Some(strong), Some(weak)) = (&strong, &labels.weak) {
        eval::scored(&rows.rows, strong, weak)?;
        let outcomes: Vec<Outcomes> = rows
            .rows
            .iter()
            .map(|r| Outcomes {
                strong_quality: r.scores[strong],
                weak_quality: r.scores[weak],
                // Without prices, cost is the strong share (AIQ over share).
                strong_cost: 1.0,
                weak_cost: 0.0,
            })
            .collect();
        let length = length_scores(&rows.rows, options.encoding)?;
        let curves = [
            ("classifier (held out)", trained.oof.clone()),
            ("length rule", length),
            ("random", eval::random_scores(rows.rows.len(), SEED)),
        ];
        let _ = writeln!(
            report,
            "\nheld-out routing figures ({strong} vs {weak}; cost = strong share):"
        );
        let mut json = serde_json::Map::new();
        report.push_str(&curve_table(&curves, &outcomes, &mut json));
        // Paired: both routers on each resample's rows.
        let [(_, classifier), (_, length), _] = &curves;
        let d = eval::apgr_difference(classifier, length, &outcomes, BOOTSTRAP, SEED);
        let _ = writeln!(
            report,
            "classifier − length rule APGR: {} (paired bootstrap)",
            fmt_interval(Some(d))
        );
        json.insert("apgr_minus_length_rule".into(), interval_json(Some(d)));
        if let Some(obj) = trained.artifact.metrics.as_object_mut() {
            obj.insert("routing".into(), json.into());
        }
    }
    let text = serde_json::to_string(&trained.artifact).map_err(|e| e.to_string())?;
    std::fs::write(&out, text + "\n").map_err(|e| format!("cannot write {out}: {e}"))?;
    print!("{report}");
    println!("wrote {out}");
    Ok(ExitCode::SUCCESS)
}

fn length_scores(rows: &[Row], encoding: Encoding) -> Result<Vec<f64>, String> {
    rows.iter()
        .enumerate()
        .map(|(i, r)| {
            let facts = r.facts().map_err(|e| format!("row {}: {e}", i + 1))?;
            Ok(facts.prompt_tokens(encoding).map_err(|e| e.to_string())? as f64)
        })
        .collect()
}

fn fmt_interval(i: Option<Interval>) -> String {
    match i {
        Some(i) => format!("{:.3} [{:.3}, {:.3}]", i.value, i.low, i.high),
        None => "never".into(),
    }
}

fn interval_json(i: Option<Interval>) -> serde_json::Value {
    i.map_or(
        serde_json::Value::Null,
        |i| serde_json::json!({"value": i.value, "low": i.low, "high": i.high}),
    )
}

/// The table of curve figures, and the same as JSON into `json`.
fn curve_table(
    curves: &[(&str, Vec<f64>)],
    outcomes: &[Outcomes],
    json: &mut serde_json::Map<String, serde_json::Value>,
) -> String {
    let mut s = format!(
        "{:<26} {:<22} {:<22} {:<22} {:<22}\n",
        "score", "APGR", "CPT(50%)", "CPT(80%)", "AIQ"
    );
    for (name, scores) in curves {
        let r: CurveReport = eval::report(scores, outcomes, BOOTSTRAP, SEED);
        let _ = writeln!(
            s,
            "{name:<26} {:<22} {:<22} {:<22} {:<22}",
            fmt_interval(Some(r.apgr)),
            fmt_interval(r.cpt50),
            fmt_interval(r.cpt80),
            fmt_interval(Some(r.aiq))
        );
        json.insert(
            name.to_string(),
            serde_json::json!({
                "apgr": interval_json(Some(r.apgr)), "cpt50": interval_json(r.cpt50),
                "cpt80": interval_json(r.cpt80), "aiq": interval_json(Some(r.aiq)),
            }),
        );
    }
    let _ = writeln!(
        s,
        "(bootstrap 95% intervals over {BOOTSTRAP} resamples of the rows)"
    );
    s
}

/// The quality of `model` on `row`: its score under the model's name or provider name.
fn quality(policy: &Policy, row: &Row, model: ModelId) -> Option<f64> {
    let m = policy.model(model)?;
    row.scores
        .get(&m.name)
        .or_else(|| row.scores.get(&m.provider_model))
        .copied()
}

fn cost(policy: &Policy, row: &Row, model: ModelId) -> Result<f64, String> {
    let m = policy.model(model).ok_or("unknown model")?;
    let facts = row.facts().map_err(|e| e.to_string())?;
    let text = facts.text_tokens(m.encoding).map_err(|e| e.to_string())?;
    let prompt = facts.prompt_tokens_from(text, m.estimate, policy.default_image_tokens);
    let output = row
        .output_tokens
        .or(facts.max_output_tokens)
        .or(m.max_output_tokens)
        .unwrap_or(policy.default_output_tokens);
    Ok(m.pricing.projected(prompt, output).usd())
}

/// The most and least expensive models (1K prompt + 1K output tokens).
fn extremes(policy: &Policy) -> (ModelId, ModelId) {
    let price = |i: &usize| policy.models[*i].pricing.projected(1000, 1000);
    let ids = 0..policy.models.len();
    let strong = ids.clone().max_by_key(price).unwrap_or(0);
    let weak = ids.min_by_key(price).unwrap_or(0);
    (ModelId(strong), ModelId(weak))
}

pub fn eval_command(parser: &mut lexopt::Parser) -> Result<ExitCode, String> {
    let mut positionals = Vec::new();
    let (mut strong, mut weak, mut svg, mut window) = (None, None, None, None);
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Long("strong") => strong = Some(string_value(parser)?),
            Long("weak") => weak = Some(string_value(parser)?),
            Long("svg") => svg = Some(string_value(parser)?),
            Long("window") => window = Some(parse::<usize>(parser, "window")?),
            Value(v) => positionals.push(v.string().map_err(|e| e.to_string())?),
            other => return Err(other.unexpected().to_string()),
        }
    }
    let [policy_path, data] = positionals.as_slice() else {
        return Err("usage: model-router eval POLICY DATA.jsonl [--strong MODEL] [--weak MODEL] [--window N] [--svg FILE]".into());
    };
    let (policy, _) = match load_policy(policy_path) {
        Ok(p) => p,
        Err(message) => {
            eprintln!("{message}");
            return Ok(ExitCode::from(1));
        }
    };
    let by_name = |name: &Option<String>, default: ModelId| -> Result<ModelId, String> {
        match name {
            None => Ok(default),
            Some(n) => policy
                .model_by_name(n)
                .ok_or_else(|| format!("unknown model {n:?}")),
        }
    };
    let (s_default, w_default) = extremes(&policy);
    let (strong, weak) = (by_name(&strong, s_default)?, by_name(&weak, w_default)?);
    let rows = read_rows(data, &LabelOptions::default())?.rows;
    if rows.is_empty() {
        return Err(format!("{data}: no rows"));
    }
    let mut outcomes = Vec::with_capacity(rows.len());
    let mut chosen_quality = Vec::with_capacity(rows.len());
    let mut chosen_cost = Vec::with_capacity(rows.len());
    let mut routed_strong = Vec::with_capacity(rows.len());
    let mut scores: Vec<Vec<f64>> = vec![Vec::with_capacity(rows.len()); policy.classifiers.len()];
    let mut windows = LocalWindows::new(&policy.classifiers);
    let headers = Headers::new();
    for (i, row) in rows.iter().enumerate() {
        let at = |e: String| format!("{data}: row {}: {e}", i + 1);
        let shape = ApiShape::from_path(&row.path)
            .ok_or_else(|| at(format!("no LLM API at {:?}", row.path)))?;
        let d = decide_with(
            &policy,
            &Request {
                shape,
                path: &row.path,
                headers: &headers,
                body: &row.body,
            },
            &windows,
        );
        windows.record(&d.scores, &policy.windowed);
        let model = *d
            .chain()
            .first()
            .ok_or_else(|| at("the policy rejected the request".into()))?;
        let (qs, qw) = (quality(&policy, row, strong), quality(&policy, row, weak));
        let (Some(qs), Some(qw)) = (qs, qw) else {
            return Err(at("needs scores for the strong and the weak model".into()));
        };
        let q = quality(&policy, row, model).ok_or_else(|| {
            at(format!(
                "no score for the chosen model {:?}",
                policy.models[model.0].name
            ))
        })?;
        outcomes.push(Outcomes {
            strong_quality: qs,
            weak_quality: qw,
            strong_cost: cost(&policy, row, strong).map_err(at)?,
            weak_cost: cost(&policy, row, weak).map_err(at)?,
        });
        chosen_quality.push(q);
        chosen_cost.push(cost(&policy, row, model).map_err(at)?);
        routed_strong.push(model == strong);
        let facts = row.facts().map_err(|e| at(e.to_string()))?;
        let task = d.task.and_then(|t| policy.task(t)).map(|t| t.name.as_str());
        for (c, out) in policy.classifiers.iter().zip(scores.iter_mut()) {
            out.push(c.score(&facts, task).map_err(|e| at(e.to_string()))?);
        }
    }
    let n = rows.len() as f64;
    let ours = {
        let base = eval::operating(&outcomes, &routed_strong);
        let quality = chosen_quality.iter().sum::<f64>() / n;
        let gap = eval::operating(&outcomes, &vec![true; rows.len()]).quality
            - eval::operating(&outcomes, &vec![false; rows.len()]).quality;
        let weak_q = eval::operating(&outcomes, &vec![false; rows.len()]).quality;
        Operating {
            strong_share: base.strong_share,
            quality,
            cost: chosen_cost.iter().sum::<f64>() / n,
            pgr: if gap.abs() < 1e-12 {
                0.0
            } else {
                (quality - weak_q) / gap
            },
        }
    };
    let share = ours.strong_share;
    let length = length_scores(&rows, policy.default_encoding)?;
    let baselines = [
        ("policy".to_string(), ours),
        (
            "always strong".to_string(),
            eval::operating(&outcomes, &vec![true; rows.len()]),
        ),
        (
            "always weak".to_string(),
            eval::operating(&outcomes, &vec![false; rows.len()]),
        ),
        (
            format!("random at {:.1}% strong", share * 100.0),
            eval::random_at(&outcomes, share),
        ),
        (
            format!("length rule at {:.1}% strong", share * 100.0),
            eval::operating(&outcomes, &eval::top_share(&length, share)),
        ),
    ];
    let name = |id: ModelId| policy.models[id.0].name.clone();
    let mut s = format!(
        "eval {policy_path} on {data}: {} rows; strong {}, weak {}\n\n{:<32} {:>12} {:>9} {:>20} {:>7}\n",
        rows.len(),
        name(strong),
        name(weak),
        "router",
        "strong share",
        "quality",
        "cost/request (USD)",
        "PGR"
    );
    for (label, op) in &baselines {
        let _ = writeln!(
            s,
            "{label:<32} {:>12.3} {:>9.4} {:>20.6} {:>7.3}",
            op.strong_share, op.quality, op.cost, op.pgr
        );
    }
    if let Some(w) = window {
        let shares = eval::windowed_share(&routed_strong, w);
        let _ = writeln!(
            s,
            "\npolicy strong share per window of {w} rows: {}",
            shares
                .iter()
                .map(|x| format!("{x:.3}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    let mut curves: Vec<(String, Vec<f64>)> = policy
        .classifiers
        .iter()
        .zip(&scores)
        .map(|(c, s)| (format!("classifier {}", c.name), s.clone()))
        .collect();
    curves.push(("length rule".into(), length));
    curves.push(("random".into(), eval::random_scores(rows.len(), SEED)));
    let refs: Vec<(&str, Vec<f64>)> = curves
        .iter()
        .map(|(n, s)| (n.as_str(), s.clone()))
        .collect();
    let _ = writeln!(s, "\ncurves over thresholds:");
    s.push_str(&curve_table(&refs, &outcomes, &mut serde_json::Map::new()));
    if let Some(path) = svg {
        let all: Vec<usize> = (0..rows.len()).collect();
        let drawn: Vec<(&str, Vec<eval::Point>)> = refs
            .iter()
            .map(|(n, sc)| (*n, eval::curve(sc, &outcomes, &all)))
            .collect();
        let point = |op: &Operating| eval::Point {
            share: op.strong_share,
            quality: op.quality,
            cost: op.cost,
        };
        let points: Vec<(&str, eval::Point)> = baselines
            .iter()
            .take(3)
            .map(|(l, op)| (l.as_str(), point(op)))
            .collect();
        std::fs::write(&path, eval::svg(&drawn, &points))
            .map_err(|e| format!("cannot write {path}: {e}"))?;
        let _ = writeln!(s, "wrote {path}");
    }
    print!("{s}");
    Ok(ExitCode::SUCCESS)
}

pub fn convert_routellm_command(parser: &mut lexopt::Parser) -> Result<ExitCode, String> {
    let (mut dir, mut out) = (None, None);
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Short('o') | Long("output") => out = Some(string_value(parser)?),
            Value(v) if dir.is_none() => dir = Some(v.string().map_err(|e| e.to_string())?),
            other => return Err(other.unexpected().to_string()),
        }
    }
    let (Some(dir), Some(out)) = (dir, out) else {
        return Err("usage: model-router convert-routellm DIR -o ROWS.jsonl (DIR holds mmlu/*.csv and mmlu_contaminated_prompts.jsonl)".into());
    };
    let root = std::path::Path::new(&dir);
    let mut names: Vec<std::path::PathBuf> = std::fs::read_dir(root.join("mmlu"))
        .map_err(|e| format!("cannot read {dir}/mmlu: {e}"))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    names.sort();
    let mut files = Vec::new();
    for p in &names {
        let text =
            std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        files.push((name, text));
    }
    let mut contaminated = BTreeSet::new();
    let list = root.join("mmlu_contaminated_prompts.jsonl");
    if list.is_file() {
        let text = std::fs::read_to_string(&list).map_err(|e| e.to_string())?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value =
                serde_json::from_str(line).map_err(|e| format!("{}: {e}", list.display()))?;
            if let Some(p) = v["eval_prompt"].as_str() {
                contaminated.insert(p.to_string());
            }
        }
    }
    let (rows, dropped) = dataset::routellm_rows(&files, &contaminated)?;
    let mut text = String::new();
    for r in &rows {
        text.push_str(&r.to_string());
        text.push('\n');
    }
    std::fs::write(&out, text).map_err(|e| format!("cannot write {out}: {e}"))?;
    println!(
        "{} rows from {} subjects ({dropped} contaminated prompts dropped) → {out}",
        rows.len(),
        files.len()
    );
    Ok(ExitCode::SUCCESS)
}
