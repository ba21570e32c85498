//! The `model-router` command line's library: what the CLI does beyond the
//! core — generating Envoy configurations and reading Envoy's stats back
//! into reports. The binary (`main.rs`) parses arguments and calls these and
//! the core.

#![cfg_attr(
    not(test),
    deny(
        clippy::arithmetic_side_effects,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

pub mod dataset;
pub mod envoy_config;
pub mod envoy_provider;
pub mod eval;
pub mod inline;
pub mod labels;
pub mod quality;
pub mod report;
pub mod score_drift;
pub mod train;
