//! Issue 7: bounded load at a steady rate through Envoy with the example
//! policy — valid, invalid and streaming requests — watching for 5xx the
//! router causes, Envoy's memory and VM reloads. Ignored in the normal test
//! run: `scripts/soak [MINUTES]` runs it and prints its figures.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{try_send, Envoy, Mock};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The mix: (weight, name, path, body, extra headers).
fn mix() -> Vec<(
    u32,
    &'static str,
    &'static str,
    Vec<u8>,
    Vec<(&'static str, &'static str)>,
)> {
    let example = |name: &str| {
        std::fs::read(format!(
            "{}/../../examples/requests/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    };
    let chat = "/v1/chat/completions";
    let mut stream: Value = serde_json::from_slice(&example("chat")).unwrap();
    stream["stream"] = Value::Bool(true);
    let mut plain: Value = serde_json::from_slice(&example("chat")).unwrap();
    plain.as_object_mut().unwrap().remove("stream");
    plain.as_object_mut().unwrap().remove("stream_options");
    vec![
        (20, "chat", chat, plain.to_string().into_bytes(), vec![]),
        (
            15,
            "faq",
            chat,
            example("faq-refund"),
            vec![("x-team", "support")],
        ),
        (10, "json-mode", chat, example("json-mode"), vec![]),
        (
            10,
            "code",
            chat,
            example("code-review"),
            vec![("x-team", "eng")],
        ),
        (5, "long-summary", chat, example("long-summary"), vec![]),
        (15, "stream", chat, stream.to_string().into_bytes(), vec![]),
        (
            5,
            "stream-no-usage",
            chat,
            {
                let mut s = stream.clone();
                s.as_object_mut().unwrap().remove("stream_options");
                s.to_string().into_bytes()
            },
            vec![],
        ),
        (
            8,
            "not-json",
            chat,
            b"definitely { not json".to_vec(),
            vec![],
        ),
        (
            4,
            "wrong-messages",
            chat,
            br#"{"model":"auto","messages":"hi"}"#.to_vec(),
            vec![],
        ),
        (
            4,
            "forged",
            chat,
            plain.to_string().into_bytes(),
            vec![
                ("x-model-router-cluster", "anthropic"),
                ("x-envoy-max-retries", "9"),
            ],
        ),
        (
            2,
            "budget",
            chat,
            example("faq-refund"),
            vec![("x-model-router-max-cost-usd", "0.000001")],
        ),
        (
            2,
            "legacy",
            "/v1/completions",
            br#"{"model":"auto","prompt":"Say hi","max_tokens":5}"#.to_vec(),
            vec![],
        ),
    ]
}

#[derive(Default)]
struct Counts {
    by_status: std::collections::BTreeMap<u16, u64>,
    /// 5xx answers no provider sent (no x-mock-provider header): Envoy or the filter.
    router_5xx: u64,
    transport_errors: u64,
    latencies_ms: Vec<u32>,
}

/// Wasm stats that count VMs and plugin failures (all of `wasm.*` but custom metrics).
fn wasm_stats(envoy: &Envoy) -> Vec<(String, u64)> {
    envoy
        .stats()
        .lines()
        .filter(|l| l.starts_with("wasm.") || l.contains("wasm_filter") || l.contains("lds."))
        .filter_map(|l| {
            let (name, value) = l.split_once(": ")?;
            Some((name.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

#[test]
#[ignore = "long: scripts/soak [MINUTES]"]
fn soak() {
    let minutes = env("SOAK_MINUTES", 10);
    let rate = env("SOAK_RPS", 50);
    let warmup = Duration::from_secs(env("SOAK_WARMUP_S", 60));
    let duration = Duration::from_secs(minutes * 60);
    let mocks = [
        Mock::start_with("local", &["--no-record", "--encoding", "cl100k_base"]),
        Mock::start_with("openai", &["--no-record"]),
        Mock::start_with("anthropic", &["--no-record", "--encoding", "cl100k_base"]),
    ];
    let policy = std::fs::read_to_string(format!(
        "{}/../../examples/policy.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let envoy = Envoy::start(
        &policy,
        vec![
            ("local", &mocks[0]),
            ("openai", &mocks[1]),
            ("anthropic", &mocks[2]),
        ],
    );
    let mix = mix();
    let total_weight: u32 = mix.iter().map(|m| m.0).sum();
    let threads = 8u64;
    let per_thread = Duration::from_secs_f64(threads as f64 / rate as f64);
    let begun = Instant::now();
    let stop = AtomicBool::new(false);
    let sent = AtomicU64::new(0);
    let counts = Mutex::new(Counts::default());
    let mut rss: Vec<(u64, u64)> = Vec::new();
    // Envoy's own heap (tcmalloc), beside the RSS that also holds the VMs' memory.
    let mut heap: Vec<u64> = Vec::new();
    let mut warm_stats = Vec::new();

    std::thread::scope(|scope| {
        for t in 0..threads {
            let (mix, counts, stop, sent, envoy) = (&mix, &counts, &stop, &sent, &envoy);
            scope.spawn(move || {
                let mut next = Instant::now() + per_thread.mul_f64(t as f64 / threads as f64);
                let mut n: u64 = t;
                while !stop.load(Ordering::SeqCst) {
                    let now = Instant::now();
                    if next > now {
                        std::thread::sleep(next - now);
                    }
                    next += per_thread;
                    // A deterministic walk over the weighted mix.
                    n = n
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let mut pick = ((n >> 33) % total_weight as u64) as u32;
                    let (_, _, path, body, headers) = mix
                        .iter()
                        .find(|m| {
                            let hit = pick < m.0;
                            pick = pick.saturating_sub(m.0);
                            hit
                        })
                        .unwrap();
                    let mut all = headers.clone();
                    all.push(("content-type", "application/json"));
                    let started = Instant::now();
                    let reply = try_send("POST", &envoy.url(path), Some(body), &all);
                    let ms = started.elapsed().as_millis() as u32;
                    sent.fetch_add(1, Ordering::SeqCst);
                    let mut c = counts.lock().unwrap();
                    c.latencies_ms.push(ms);
                    match reply {
                        Ok(r) => {
                            *c.by_status.entry(r.status).or_default() += 1;
                            if r.status >= 500 && r.header("x-mock-provider").is_none() {
                                c.router_5xx += 1;
                                eprintln!("soak: router 5xx {}: {}", r.status, r.body);
                            }
                        }
                        Err(e) => {
                            c.transport_errors += 1;
                            eprintln!("soak: transport error: {e}");
                        }
                    }
                }
            });
        }
        // The sampler: RSS every 10 s, wasm stats at the end of the warm-up.
        let mut warm = false;
        while begun.elapsed() < duration {
            std::thread::sleep(
                Duration::from_secs(10).min(duration.saturating_sub(begun.elapsed())),
            );
            let kib = envoy.rss_kib();
            let at = begun.elapsed().as_secs();
            rss.push((at, kib));
            let allocated = envoy.stat("server.memory_allocated");
            if Duration::from_secs(at) >= warmup {
                heap.push(allocated);
            }
            eprintln!(
                "soak: t={at:>4}s sent={:>7} envoy_rss={:>7} KiB heap={:>10} B",
                sent.load(Ordering::SeqCst),
                kib,
                allocated
            );
            if !warm && begun.elapsed() >= warmup {
                warm = true;
                warm_stats = wasm_stats(&envoy);
            }
        }
        stop.store(true, Ordering::SeqCst);
    });

    let elapsed = begun.elapsed();
    let end_stats = wasm_stats(&envoy);
    let c = counts.into_inner().unwrap();
    let total: u64 = c.by_status.values().sum::<u64>() + c.transport_errors;
    let mut lat = c.latencies_ms.clone();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    let after_warmup: Vec<u64> = rss
        .iter()
        .filter(|(t, _)| Duration::from_secs(*t) >= warmup)
        .map(|(_, k)| *k)
        .collect();
    let base = *after_warmup.first().unwrap_or(&1);
    let last = *after_warmup.last().unwrap_or(&1);
    let peak = after_warmup.iter().copied().max().unwrap_or(0);
    let growth = (last as f64 - base as f64) * 100.0 / base as f64;
    let changed: Vec<String> = end_stats
        .iter()
        .filter(|(name, value)| {
            warm_stats.iter().find(|(n, _)| n == name).map(|(_, v)| v) != Some(value)
        })
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    eprintln!(
        "\nsoak summary ({:.1} min at {rate} req/s target):",
        elapsed.as_secs_f64() / 60.0
    );
    eprintln!(
        "  requests: {total} ({:.1}/s), by status: {:?}",
        total as f64 / elapsed.as_secs_f64(),
        c.by_status
    );
    eprintln!(
        "  5xx caused by the router (no provider header): {}",
        c.router_5xx
    );
    eprintln!("  transport errors: {}", c.transport_errors);
    eprintln!(
        "  latency ms: p50 {} p99 {} max {}",
        pct(0.5),
        pct(0.99),
        lat.last().copied().unwrap_or(0)
    );
    eprintln!(
        "  envoy RSS after warm-up ({}s): start {base} KiB, end {last} KiB, peak {peak} KiB, growth {growth:.2} %",
        warmup.as_secs()
    );
    eprintln!(
        "  envoy heap (server.memory_allocated) after warm-up: start {} B, end {} B, peak {} B",
        heap.first().copied().unwrap_or(0),
        heap.last().copied().unwrap_or(0),
        heap.iter().copied().max().unwrap_or(0)
    );
    eprintln!(
        "  VM reloads (wasm.*vm_reload* counters): {}",
        envoy.vm_reloads()
    );
    eprintln!("  wasm stats at end: {end_stats:?}");
    eprintln!("  wasm stats changed since warm-up: {changed:?}");
    assert_eq!(c.router_5xx, 0, "5xx caused by the router");
    assert_eq!(c.transport_errors, 0);
    assert!(growth < 5.0, "RSS grew {growth:.2} % after warm-up");
    assert_eq!(envoy.vm_reloads(), 0, "no VM reloads");
    assert!(
        !changed
            .iter()
            .any(|s| s.contains("created") || s.contains("fail") || s.contains("reload")),
        "VMs were created or failed after warm-up: {changed:?}"
    );
}
