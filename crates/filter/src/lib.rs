//! The proxy-wasm filter: the request lifecycle over a [`host::Host`], and
//! its proxy-wasm glue (`wasm`, wasm32 only).
//!
//! One `.wasm` serves two roles, chosen by the plugin's `root_id`:
//! - `model_router` (default): the downstream HTTP filter that reads the body,
//!   decides, rewrites and picks the cluster (`downstream`);
//! - `model_router_upstream`: an upstream HTTP filter (in the cluster's filter
//!   chain) that rewrites the body of each retry attempt for its model
//!   (`upstream`).
//!
//! Everything but `wasm` builds natively too, so the lifecycle is tested
//! over an in-memory host (`fake`, tests only).

// No panics by construction, as in the core (see its lib.rs).
#![cfg_attr(
    not(test),
    deny(
        clippy::arithmetic_side_effects,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

mod attempt_outcome;
pub mod downstream;
pub mod feedback;
pub mod host;
pub mod metrics;
pub mod root;
mod shared_data;
#[cfg(feature = "test-trap")]
mod test_trap;
mod translation;
pub mod upstream;
#[cfg(target_arch = "wasm32")]
mod wasm;
mod windows;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_feedback;
#[cfg(test)]
mod tests_host_calls;
#[cfg(test)]
mod tests_translation;
#[cfg(test)]
mod tests_variants;

pub use model_router_core::headers::UPSTREAM_ROOT_ID;

#[cfg(target_arch = "wasm32")]
proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(wasm::RouterRoot::default())
    });
}}
