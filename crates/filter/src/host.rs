//! The seam between the request lifecycle and Envoy: everything the filter
//! asks of its host, as one trait. `wasm.rs` implements it with proxy-wasm
//! host calls; the native tests implement it in memory (`fake.rs`), so the
//! whole lifecycle — buffering, decision, actions, response reading,
//! billing, error paths — runs and is tested without Envoy.
//!
//! Every method is infallible by design: a host call that fails is logged by
//! the implementation and answered with an empty value, because no request
//! may fail (or panic) for a host call the router can do without.

use model_router_core::headers::Headers;
use model_router_core::metrics::Kind;

/// What a callback tells Envoy to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Hold the stream: wait for more body, or the filter answered locally.
    Pause,
}

pub trait Host {
    fn request_headers(&self) -> Headers;
    fn response_headers(&self) -> Headers;
    /// Sets (`Some`) or removes (`None`) a request header.
    fn set_request_header(&self, name: &str, value: Option<&str>);
    /// Sets (`Some`) or removes (`None`) a response header.
    fn set_response_header(&self, name: &str, value: Option<&str>);
    /// The buffered request body (`size` bytes, at end of stream).
    fn request_body(&self, size: usize) -> Vec<u8>;
    /// Replaces the first `old_size` bytes of the buffered request body.
    fn replace_request_body(&self, old_size: usize, body: &[u8]);
    /// The current chunk of the response body.
    fn response_body_chunk(&self, size: usize) -> Vec<u8>;
    /// Replaces the first `old_size` bytes of the response body (the current
    /// chunk, or the whole buffered body): a translated answer.
    fn replace_response_body(&self, old_size: usize, body: &[u8]);
    /// Sets filter state `wasm.<name>` (read by the route's matcher, the
    /// upstream filter and access logs).
    fn set_filter_state(&self, name: &str, value: &str);
    fn filter_state(&self, name: &str) -> Option<String>;
    /// Makes Envoy pick the route again (a header the route reads changed).
    fn clear_route_cache(&self);
    /// Answers the request locally with a JSON body.
    fn send_json_reply(&self, status: u32, body: &str);
    /// Microseconds since the epoch (0 if the clock is unavailable).
    fn now_micros(&self) -> u64;
    /// Defines a metric (once per name and VM), returning its id.
    fn define_metric(&self, kind: Kind, name: &str) -> Option<u32>;
    /// Adds to a counter, records a histogram value, or sets a gauge.
    fn update_metric(&self, kind: Kind, id: u32, value: u64);

    /// One request header (the first value). Hosts that can read one
    /// header without the whole map override this.
    fn request_header(&self, name: &str) -> Option<String> {
        self.request_headers().get(name).map(str::to_string)
    }

    /// One response header (the first value). Hosts that can read one
    /// header without the whole map override this.
    fn response_header(&self, name: &str) -> Option<String> {
        self.response_headers().get(name).map(str::to_string)
    }

    /// Shared data (one key-value store for every VM and worker of Envoy):
    /// the value of `key` and its CAS token, `(None, None)` if unset.
    fn get_shared_data(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>);
    /// Sets `key` (`None` stores an empty value: shared data has no delete),
    /// only if its CAS token is still `cas` (when given). `false` on a CAS
    /// mismatch or another failure.
    fn set_shared_data(&self, key: &str, value: Option<&[u8]>, cas: Option<u32>) -> bool;
}
