//! model-router's core: everything the router knows and decides, as plain
//! Rust with no proxy-wasm types and no I/O — policy → compiled rules →
//! decision, request parsing, token counting, effects as data, usage, cost
//! and metric samples. The filter crate (`model_router`, the `.wasm`) and the
//! CLI crate (`model-router`) are both thin layers over it; see
//! docs/architecture.md.

// No panics by construction (with the `[lints.clippy]` of Cargo.toml):
// arithmetic that can overflow, divide by zero or wrap is denied in the
// filter and the core; sizes and counts use checked or saturating
// operations. Test builds (`cfg(test)`) are exempt, like the
// `allow-*-in-tests` settings of clippy.toml, since clippy has no such
// setting for this lint; integration tests and benches are other crates.
#![cfg_attr(
    not(test),
    deny(
        clippy::arithmetic_side_effects,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

pub mod actions;
pub mod billing;
pub mod classifier;
pub mod condition;
pub mod cost;
pub mod decision;
pub mod explain;
pub mod feedback;
pub mod headers;
pub mod ids;
pub mod metrics;
pub mod models_list;
pub mod policy;
pub mod provider;
/// The dated price catalogue (in `policy`, whose pricing it feeds).
pub use policy::catalog;
pub mod range;
pub mod request;
pub mod rewrite;
pub mod signals;
pub mod task;
pub mod tokens;
pub mod translate;
pub mod translation;
pub mod usage;
