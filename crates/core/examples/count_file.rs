//! Counts the tokens of text files, with the piece cache on or off, and
//! prints the count and the cache's hit rate: for instruction counts under
//! callgrind (deterministic on a loaded machine), e.g.
//!
//! ```sh
//! cargo build --release -p model-router-core --example count_file
//! valgrind --tool=callgrind target/release/examples/count_file o200k_base cache FILE...
//! valgrind --tool=callgrind target/release/examples/count_file o200k_base nocache FILE...
//! ```
//!
//! The tables are loaded before counting; subtract a run on an empty file.

use model_router_core::tokens::{self, cache, Encoding};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let encoding = args
        .next()
        .and_then(|e| Encoding::from_name(&e))
        .ok_or("usage: count_file ENCODING cache|nocache FILE...")?;
    cache::set_enabled(args.next().as_deref() == Some("cache"));
    tokens::preload(encoding)?;
    let mut total = 0usize;
    for path in args {
        let text = std::fs::read_to_string(&path)?;
        total = total.saturating_add(tokens::count(encoding, &text)?);
    }
    let cache::Stats { hits, misses, .. } = cache::stats(encoding);
    let rate = hits as f64 / (hits.saturating_add(misses)).max(1) as f64;
    println!("{total} tokens; piece cache {hits} hits, {misses} misses ({rate:.3})");
    Ok(())
}
