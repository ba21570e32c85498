//! model-router: an LLM model router that runs inside Envoy as a proxy-wasm
//! filter.
//!
//! The core (everything but `filter`) is plain Rust with no proxy-wasm types:
//! policy → compiled rules → decision, request parsing, token counting, cost.
//! The wasm adapter in `filter` is glue over it, built only for wasm32, and
//! the `model-router` CLI reuses the same core natively.

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
pub mod condition;
pub mod cost;
pub mod decision;
pub mod envoy_config;
pub mod explain;
pub mod headers;
pub mod metrics;
pub mod models_list;
pub mod policy;
#[cfg(not(target_arch = "wasm32"))]
pub mod report;
pub mod request;
pub mod rewrite;
pub mod signals;
pub mod task;
pub mod tokens;
pub mod translate;
pub mod translation;
pub mod usage;

#[cfg(target_arch = "wasm32")]
pub mod filter;
