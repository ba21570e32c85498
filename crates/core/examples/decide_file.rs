//! Decides one request N times in one process (one VM's worth of warm
//! caches) and prints the piece cache's hit rates: for instruction counts
//! per decision under callgrind (deterministic on a loaded machine), warm
//! as the filter runs, e.g. (`scripts/decision-cost` does this):
//!
//! ```sh
//! cargo build --release -p model-router-core --example decide_file
//! valgrind --tool=callgrind --toggle-collect='*decide_under*' \
//!     target/release/examples/decide_file POLICY.json REQUEST.json 21
//! ```
//!
//! The policy must carry its classifiers `inline` (the core reads no files).
//! The first decision loads the tokenizer tables and fills the cache: the
//! difference between runs of 21 and 1 decisions, over 20, is a warm one.

use model_router_core::decision::{decide, Request};
use model_router_core::headers::Headers;
use model_router_core::policy::Policy;
use model_router_core::request::ApiShape;
use model_router_core::tokens::cache;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: decide_file POLICY.json REQUEST.json N";
    let policy = std::fs::read_to_string(args.next().ok_or(usage)?)?;
    let body = std::fs::read(args.next().ok_or(usage)?)?;
    let n: usize = args.next().ok_or(usage)?.parse()?;
    let policy = Policy::from_json(&policy).map_err(|e| format!("{e:?}"))?;
    let headers = Headers::new();
    let request = Request {
        shape: ApiShape::ChatCompletions,
        path: "/v1/chat/completions",
        headers: &headers,
        body: &body,
    };
    let mut last = None;
    for _ in 0..n {
        last = Some(decide(&policy, std::hint::black_box(&request)));
    }
    if let Some(d) = last {
        println!("{n} decisions; last: {d:?}");
    }
    for e in policy.encodings() {
        let s = cache::stats(e);
        let rate =
            |hits: u64, misses: u64| hits as f64 / (hits.saturating_add(misses)).max(1) as f64;
        println!(
            "{e} piece cache: counting {} hits, {} misses ({:.3}); ids {} hits, {} misses ({:.3})",
            s.hits,
            s.misses,
            rate(s.hits, s.misses),
            s.id_hits,
            s.id_misses,
            rate(s.id_hits, s.id_misses),
        );
    }
    Ok(())
}
