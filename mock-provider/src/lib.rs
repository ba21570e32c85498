//! A mock LLM provider for model-router's demo, end-to-end tests and
//! benchmarks.
//!
//! It answers OpenAI Chat Completions, legacy Completions, Responses and
//! Anthropic Messages requests with deterministic text and exact token usage
//! (prompt tokens billed by model-router's own counting), records what it
//! received (`GET /__mock/requests`), and injects faults on demand (header
//! `x-mock-fault`, flag `--fault`). See the crate's README for the details.
//!
//! Embed it with [`serve`] or [`Server`]; the `mock-provider` binary is a thin
//! CLI over them.

pub mod answers;
mod body;
pub mod cli;
mod conn;
pub mod faults;
pub mod record;
pub mod server;
pub mod tls;
pub mod tool_calls;

use std::time::Duration;

use model_router_core::tokens::Encoding;

pub use server::{serve, Server};

/// How a mock provider behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// The provider's name: in answers, headers and fault targets.
    pub name: String,
    /// Faults applied to every request (after the request's own header).
    pub faults: faults::FaultSpec,
    /// Added before every answer of a model endpoint.
    pub latency: Duration,
    /// Encoding of prompt and completion token counts.
    pub encoding: Encoding,
    /// Record requests for `GET /__mock/requests`.
    pub record: bool,
    /// Records kept at most.
    pub max_records: usize,
    /// Request bodies larger than this get 413.
    pub max_body_bytes: usize,
    /// Serve HTTPS too (TLS connections; plain ones stay HTTP).
    pub tls: Option<tls::TlsFiles>,
}

impl Config {
    pub fn new(name: impl Into<String>) -> Config {
        Config {
            name: name.into(),
            faults: faults::FaultSpec::default(),
            latency: Duration::ZERO,
            encoding: Encoding::O200kBase,
            record: true,
            max_records: record::DEFAULT_MAX_RECORDS,
            max_body_bytes: 64 * 1024 * 1024,
            tls: None,
        }
    }
}
