//! Host calls the filter uses, wrapped so that no failure panics: the SDK's
//! trait helpers unwrap (and the string variants panic on non-UTF-8 header
//! values), so everything goes through `hostcalls` and turns errors into
//! logs or empty values.

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType};

use crate::headers::Headers;

pub fn request_headers() -> Headers {
    map_to_headers(MapType::HttpRequestHeaders)
}

pub fn response_headers() -> Headers {
    map_to_headers(MapType::HttpResponseHeaders)
}

/// Header values that are not UTF-8 are converted lossily: they can still
/// be recognised by name (and removed), and can match no condition by accident.
fn map_to_headers(map: MapType) -> Headers {
    let mut headers = Headers::new();
    match hostcalls::get_map_bytes(map) {
        Ok(pairs) => {
            for (name, value) in pairs {
                headers.insert(&name, &String::from_utf8_lossy(&value));
            }
        }
        Err(status) => log::warn!("model-router: cannot read headers: {status:?}"),
    }
    headers
}

pub fn set_request_header(name: &str, value: &str) {
    set(MapType::HttpRequestHeaders, name, Some(value));
}

pub fn remove_request_header(name: &str) {
    set(MapType::HttpRequestHeaders, name, None);
}

pub fn set_response_header(name: &str, value: &str) {
    set(MapType::HttpResponseHeaders, name, Some(value));
}

pub fn remove_response_header(name: &str) {
    set(MapType::HttpResponseHeaders, name, None);
}

fn set(map: MapType, name: &str, value: Option<&str>) {
    if let Err(status) = hostcalls::set_map_value_bytes(map, name, value.map(str::as_bytes)) {
        log::warn!("model-router: cannot set header {name}: {status:?}");
    }
}

/// The whole buffered request body (call at end of stream).
pub fn request_body(size: usize) -> Vec<u8> {
    buffer(BufferType::HttpRequestBody, size)
}

pub fn replace_request_body(old_size: usize, body: &[u8]) {
    if let Err(status) = hostcalls::set_buffer(BufferType::HttpRequestBody, 0, old_size, body) {
        log::warn!("model-router: cannot replace the request body: {status:?}");
    }
}

pub fn plugin_configuration() -> Vec<u8> {
    buffer(BufferType::PluginConfiguration, usize::MAX)
}

fn buffer(kind: BufferType, size: usize) -> Vec<u8> {
    match hostcalls::get_buffer(kind, 0, size) {
        Ok(bytes) => bytes.unwrap_or_default(),
        Err(status) => {
            log::warn!("model-router: cannot read buffer {kind:?}: {status:?}");
            Vec::new()
        }
    }
}

pub fn property(path: &[&str]) -> Option<Vec<u8>> {
    hostcalls::get_property(path.to_vec()).ok().flatten()
}

/// Makes Envoy pick the route again (a header the route reads changed).
pub fn clear_route_cache() {
    if let Err(status) = hostcalls::call_foreign_function("clear_route_cache", None) {
        log::warn!("model-router: clear_route_cache failed: {status:?}");
    }
}

pub fn send_json_reply(status: u32, body: &str) {
    let headers = vec![("content-type", "application/json")];
    if let Err(e) = hostcalls::send_http_response(status, headers, Some(body.as_bytes())) {
        log::warn!("model-router: cannot send the local reply: {e:?}");
    }
}

/// Sets filter state `wasm.<name>` (read by the route's matcher, the
/// upstream filter and access logs).
pub fn set_filter_state(name: &str, value: &str) {
    if let Err(status) = hostcalls::set_property(vec![name], Some(value.as_bytes())) {
        log::warn!("model-router: cannot set filter state {name}: {status:?}");
    }
}

/// Filter state set by the routing filter, read from the upstream filter.
pub fn filter_state(name: &str) -> Option<String> {
    property(&[name]).and_then(|v| String::from_utf8(v).ok())
}

/// Microseconds since the epoch, from the host clock (0 if unavailable).
pub fn now_micros() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The current chunk of the response body.
pub fn response_body_chunk(size: usize) -> Vec<u8> {
    buffer(BufferType::HttpResponseBody, size)
}

/// Replaces the first `old_size` bytes of the response body (the current
/// chunk, or the whole buffered body) with `body`.
pub fn replace_response_body(old_size: usize, body: &[u8]) {
    if let Err(status) = hostcalls::set_buffer(BufferType::HttpResponseBody, 0, old_size, body) {
        log::warn!("model-router: cannot replace the response body: {status:?}");
    }
}
