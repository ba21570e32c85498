//! The proxy-wasm adapter: thin glue between Envoy and the core.
//!
//! One `.wasm` serves two roles, chosen by the plugin's `root_id`:
//! - `model_router` (default): the downstream HTTP filter that reads the body,
//!   decides, rewrites and picks the cluster;
//! - `model_router_upstream`: an upstream HTTP filter (in the cluster's filter
//!   chain) that rewrites the body of each retry attempt for its model.

mod downstream;
mod host;
mod metrics;
mod root;
mod translation;
mod upstream;

use proxy_wasm::traits::RootContext;
use proxy_wasm::types::LogLevel;

pub use crate::headers::UPSTREAM_ROOT_ID;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(root::RouterRoot::default()) });
}}
