//! End-to-end tests: the built `.wasm` inside a real Envoy 1.40, real HTTP on
//! loopback, mock providers recording what they receive.

// Test code may unwrap and panic: a failed expectation is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::type_complexity
)]

mod accounting;
mod bad_input;
mod billing;
mod classifier;
mod fallback;
mod faults;
mod feedback;
#[allow(dead_code)] // shared by all test modules; not each uses every helper
mod harness;
mod pki;
mod providers;
mod reload;
mod routing;
#[allow(dead_code)] // shared helper: not every module uses every function
mod sdk;
mod shapes;
mod soak;
mod translation;
