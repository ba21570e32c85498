//! The proxy-wasm glue (wasm32 only): the [`Host`] implemented with host
//! calls, and Envoy's root and HTTP contexts delegating to the lifecycle in
//! `root`, `downstream` and `upstream`.
//!
//! Everything goes through `hostcalls` and turns errors into logs or empty
//! values: the SDK's trait helpers unwrap (and its string variants panic on
//! non-UTF-8 header values).

use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, MapType, MetricType};

use model_router_core::headers::{Headers, UPSTREAM_ROOT_ID};
use model_router_core::metrics::Kind;

use crate::downstream::Downstream;
use crate::host::{Flow, Host};
use crate::root::{self, Role, Shared};
use crate::upstream::Upstream;

/// The host Envoy is: every call a proxy-wasm host call.
pub struct ProxyWasm;

impl Host for ProxyWasm {
    fn request_headers(&self) -> Headers {
        map_to_headers(MapType::HttpRequestHeaders)
    }

    fn response_headers(&self) -> Headers {
        map_to_headers(MapType::HttpResponseHeaders)
    }

    fn set_request_header(&self, name: &str, value: Option<&str>) {
        set_header(MapType::HttpRequestHeaders, name, value);
    }

    fn set_response_header(&self, name: &str, value: Option<&str>) {
        set_header(MapType::HttpResponseHeaders, name, value);
    }

    fn request_body(&self, size: usize) -> Vec<u8> {
        buffer(BufferType::HttpRequestBody, size)
    }

    fn replace_request_body(&self, old_size: usize, body: &[u8]) {
        if let Err(status) = hostcalls::set_buffer(BufferType::HttpRequestBody, 0, old_size, body) {
            log::warn!("model-router: cannot replace the request body: {status:?}");
        }
    }

    fn response_body_chunk(&self, size: usize) -> Vec<u8> {
        buffer(BufferType::HttpResponseBody, size)
    }

    fn replace_response_body(&self, old_size: usize, body: &[u8]) {
        if let Err(status) = hostcalls::set_buffer(BufferType::HttpResponseBody, 0, old_size, body)
        {
            log::warn!("model-router: cannot replace the response body: {status:?}");
        }
    }

    fn set_filter_state(&self, name: &str, value: &str) {
        if let Err(status) = hostcalls::set_property(vec![name], Some(value.as_bytes())) {
            log::warn!("model-router: cannot set filter state {name}: {status:?}");
        }
    }

    fn filter_state(&self, name: &str) -> Option<String> {
        property(&[name]).and_then(|v| String::from_utf8(v).ok())
    }

    fn clear_route_cache(&self) {
        if let Err(status) = hostcalls::call_foreign_function("clear_route_cache", None) {
            log::warn!("model-router: clear_route_cache failed: {status:?}");
        }
    }

    fn send_json_reply(&self, status: u32, body: &str) {
        let headers = vec![("content-type", "application/json")];
        if let Err(e) = hostcalls::send_http_response(status, headers, Some(body.as_bytes())) {
            log::warn!("model-router: cannot send the local reply: {e:?}");
        }
    }

    fn now_micros(&self) -> u64 {
        hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }

    fn define_metric(&self, kind: Kind, name: &str) -> Option<u32> {
        let kind = match kind {
            Kind::Counter => MetricType::Counter,
            Kind::Histogram => MetricType::Histogram,
            Kind::Gauge => MetricType::Gauge,
        };
        hostcalls::define_metric(kind, name)
            .map_err(|status| log::warn!("model-router: cannot define metric {name}: {status:?}"))
            .ok()
    }

    fn update_metric(&self, kind: Kind, id: u32, value: u64) {
        let result = match kind {
            Kind::Counter => {
                hostcalls::increment_metric(id, i64::try_from(value).unwrap_or(i64::MAX))
            }
            Kind::Histogram | Kind::Gauge => hostcalls::record_metric(id, value),
        };
        if let Err(status) = result {
            log::warn!("model-router: cannot update metric {id}: {status:?}");
        }
    }

    fn request_header(&self, name: &str) -> Option<String> {
        header(MapType::HttpRequestHeaders, name)
    }

    fn response_header(&self, name: &str) -> Option<String> {
        header(MapType::HttpResponseHeaders, name)
    }

    fn get_shared_data(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        hostcalls::get_shared_data(key).unwrap_or_else(|status| {
            log::warn!("model-router: cannot read shared data {key}: {status:?}");
            (None, None)
        })
    }

    fn set_shared_data(&self, key: &str, value: Option<&[u8]>, cas: Option<u32>) -> bool {
        match hostcalls::set_shared_data(key, value, cas) {
            Ok(()) => true,
            Err(proxy_wasm::types::Status::CasMismatch) => false,
            Err(status) => {
                log::warn!("model-router: cannot write shared data {key}: {status:?}");
                false
            }
        }
    }
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

/// One header's first value, without copying the whole map out of Envoy.
fn header(map: MapType, name: &str) -> Option<String> {
    match hostcalls::get_map_value_bytes(map, name) {
        Ok(value) => value.map(|v| String::from_utf8_lossy(&v).into_owned()),
        Err(status) => {
            log::warn!("model-router: cannot read header {name}: {status:?}");
            None
        }
    }
}

fn set_header(map: MapType, name: &str, value: Option<&str>) {
    if let Err(status) = hostcalls::set_map_value_bytes(map, name, value.map(str::as_bytes)) {
        log::warn!("model-router: cannot set header {name}: {status:?}");
    }
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

fn property(path: &[&str]) -> Option<Vec<u8>> {
    hostcalls::get_property(path.to_vec()).ok().flatten()
}

fn action(flow: Flow) -> Action {
    match flow {
        Flow::Continue => Action::Continue,
        Flow::Pause => Action::Pause,
    }
}

/// One plugin configuration in one VM.
#[derive(Default)]
pub struct RouterRoot {
    shared: Option<Rc<Shared>>,
    role: Option<Role>,
}

impl Context for RouterRoot {
    /// The plugin is torn down (a new configuration, Envoy draining): what
    /// the sink still holds is sent rather than lost.
    fn on_done(&mut self) -> bool {
        if let Some(shared) = self.shared.as_deref() {
            shared.flush_metrics(&ProxyWasm);
        }
        true
    }
}

impl RootContext for RouterRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let role = if property(&["plugin_root_id"]).as_deref() == Some(UPSTREAM_ROOT_ID.as_bytes())
        {
            Role::Upstream
        } else {
            Role::Routing
        };
        self.role = Some(role);
        let config = buffer(BufferType::PluginConfiguration, usize::MAX);
        match root::configure(&ProxyWasm, config, role) {
            Ok(shared) => {
                self.shared = Some(Rc::new(shared));
                if role == Role::Routing {
                    // Sends the batched metrics; the gauge of models cooling
                    // down falls as cooldowns end.
                    if let Err(status) = hostcalls::set_tick_period(crate::metrics::FLUSH_PERIOD) {
                        log::warn!("model-router: cannot set the tick period: {status:?}");
                    }
                }
                true
            }
            // Returning false makes Envoy refuse the configuration.
            Err(_) => false,
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Never None: the SDK panics on it. Without a policy the context does nothing.
        let shared = self.shared.clone();
        Some(match self.role {
            Some(Role::Upstream) => Box::new(UpstreamContext(Upstream::new(shared))),
            _ => Box::new(RoutingContext(Downstream::new(shared))),
        })
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn on_tick(&mut self) {
        if let Some(shared) = self.shared.as_deref() {
            root::tick(&ProxyWasm, shared);
        }
    }
}

struct RoutingContext(Downstream);

impl Context for RoutingContext {}

impl HttpContext for RoutingContext {
    fn on_http_request_headers(&mut self, _count: usize, end_of_stream: bool) -> Action {
        action(self.0.on_request_headers(&ProxyWasm, end_of_stream))
    }

    fn on_http_request_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        action(self.0.on_request_body(&ProxyWasm, size, end_of_stream))
    }

    fn on_http_response_headers(&mut self, _count: usize, end_of_stream: bool) -> Action {
        action(self.0.on_response_headers(&ProxyWasm, end_of_stream))
    }

    fn on_http_response_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        action(self.0.on_response_body(&ProxyWasm, size, end_of_stream))
    }

    fn on_log(&mut self) {
        self.0.on_log(&ProxyWasm);
    }
}

struct UpstreamContext(Upstream);

impl Context for UpstreamContext {
    fn on_done(&mut self) -> bool {
        self.0.on_done(&ProxyWasm);
        true
    }
}

impl HttpContext for UpstreamContext {
    fn on_http_request_headers(&mut self, _count: usize, end_of_stream: bool) -> Action {
        action(self.0.on_request_headers(&ProxyWasm, end_of_stream))
    }

    fn on_http_request_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        action(self.0.on_request_body(&ProxyWasm, size, end_of_stream))
    }

    fn on_http_response_headers(&mut self, _count: usize, _end_of_stream: bool) -> Action {
        action(self.0.on_response_headers(&ProxyWasm))
    }
}
