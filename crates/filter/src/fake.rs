//! An in-memory [`Host`] for native tests of the lifecycle: it holds the
//! request and response as Envoy would, and records everything the filter
//! did to them.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use model_router_core::headers::Headers;
use model_router_core::metrics::Kind;

use crate::host::Host;

#[derive(Default)]
pub struct FakeHost {
    pub state: RefCell<State>,
    /// The VM's metrics: shared by the hosts of one VM's requests (`next`),
    /// as metric ids are per VM in Envoy.
    pub metrics: Rc<RefCell<Metrics>>,
    /// Envoy's shared data: shared by every host made with `next`, as it is
    /// by every worker in Envoy. Key → (value, CAS token).
    pub shared_data: Rc<RefCell<SharedData>>,
}

/// Shared-data key → (value, CAS token).
pub type SharedData = BTreeMap<String, (Vec<u8>, u32)>;

#[derive(Default)]
pub struct Metrics {
    /// Metric name → its id; values by id.
    pub ids: BTreeMap<String, u32>,
    pub values: BTreeMap<u32, Vec<u64>>,
}

#[derive(Default)]
pub struct State {
    pub request_headers: Vec<(String, String)>,
    pub response_headers: Vec<(String, String)>,
    pub request_body: Vec<u8>,
    pub response_chunk: Vec<u8>,
    pub filter_state: BTreeMap<String, String>,
    pub route_cache_cleared: u32,
    pub reply: Option<(u32, String)>,
    pub now_micros: u64,
}

impl FakeHost {
    pub fn with_request(headers: &[(&str, &str)], body: &str) -> FakeHost {
        let host = FakeHost::default();
        {
            let mut state = host.state.borrow_mut();
            state.request_headers = pairs(headers);
            state.request_body = body.as_bytes().to_vec();
        }
        host
    }

    /// Another request of the same VM (its metrics are shared).
    pub fn next(&self, headers: &[(&str, &str)], body: &str) -> FakeHost {
        let host = FakeHost::with_request(headers, body);
        let metrics = Rc::clone(&self.metrics);
        let shared_data = Rc::clone(&self.shared_data);
        FakeHost {
            metrics,
            shared_data,
            ..host
        }
    }

    pub fn request_header(&self, name: &str) -> Option<String> {
        find(&self.state.borrow().request_headers, name)
    }

    pub fn response_header(&self, name: &str) -> Option<String> {
        find(&self.state.borrow().response_headers, name)
    }

    pub fn body(&self) -> String {
        String::from_utf8_lossy(&self.state.borrow().request_body).into_owned()
    }

    pub fn filter_state_value(&self, name: &str) -> Option<String> {
        self.state.borrow().filter_state.get(name).cloned()
    }

    /// The sum of a counter, or every value a histogram recorded.
    pub fn metric(&self, name: &str) -> Vec<u64> {
        let metrics = self.metrics.borrow();
        metrics
            .ids
            .get(name)
            .and_then(|id| metrics.values.get(id))
            .cloned()
            .unwrap_or_default()
    }

    pub fn metric_names(&self) -> Vec<String> {
        self.metrics.borrow().ids.keys().cloned().collect()
    }

    pub fn counter(&self, name: &str) -> u64 {
        self.metric(name).iter().sum()
    }

    pub fn set_response(&self, headers: &[(&str, &str)]) {
        self.state.borrow_mut().response_headers = pairs(headers);
    }

    pub fn set_response_chunk(&self, chunk: &str) {
        self.state.borrow_mut().response_chunk = chunk.as_bytes().to_vec();
    }
}

fn pairs(headers: &[(&str, &str)]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn find(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

fn set(headers: &mut Vec<(String, String)>, name: &str, value: Option<&str>) {
    headers.retain(|(n, _)| n != name);
    if let Some(value) = value {
        headers.push((name.to_string(), value.to_string()));
    }
}

impl Host for FakeHost {
    fn request_headers(&self) -> Headers {
        Headers::from_pairs(&self.state.borrow().request_headers)
    }

    fn response_headers(&self) -> Headers {
        Headers::from_pairs(&self.state.borrow().response_headers)
    }

    fn set_request_header(&self, name: &str, value: Option<&str>) {
        set(&mut self.state.borrow_mut().request_headers, name, value);
    }

    fn set_response_header(&self, name: &str, value: Option<&str>) {
        set(&mut self.state.borrow_mut().response_headers, name, value);
    }

    fn request_body(&self, size: usize) -> Vec<u8> {
        let body = &self.state.borrow().request_body;
        body[..size.min(body.len())].to_vec()
    }

    fn replace_request_body(&self, old_size: usize, body: &[u8]) {
        let mut state = self.state.borrow_mut();
        let end = old_size.min(state.request_body.len());
        state.request_body.splice(..end, body.iter().copied());
    }

    fn response_body_chunk(&self, size: usize) -> Vec<u8> {
        let chunk = &self.state.borrow().response_chunk;
        chunk[..size.min(chunk.len())].to_vec()
    }

    fn replace_response_body(&self, old_size: usize, body: &[u8]) {
        let mut state = self.state.borrow_mut();
        let end = old_size.min(state.response_chunk.len());
        state.response_chunk.splice(..end, body.iter().copied());
    }

    fn set_filter_state(&self, name: &str, value: &str) {
        let mut state = self.state.borrow_mut();
        state
            .filter_state
            .insert(name.to_string(), value.to_string());
    }

    fn filter_state(&self, name: &str) -> Option<String> {
        self.filter_state_value(name)
    }

    fn clear_route_cache(&self) {
        self.state.borrow_mut().route_cache_cleared += 1;
    }

    fn send_json_reply(&self, status: u32, body: &str) {
        self.state.borrow_mut().reply = Some((status, body.to_string()));
    }

    fn now_micros(&self) -> u64 {
        let mut state = self.state.borrow_mut();
        state.now_micros += 7; // every reading moves the clock: durations are non-zero
        state.now_micros
    }

    fn define_metric(&self, _kind: Kind, name: &str) -> Option<u32> {
        let mut metrics = self.metrics.borrow_mut();
        let next = u32::try_from(metrics.ids.len()).unwrap();
        Some(*metrics.ids.entry(name.to_string()).or_insert(next))
    }

    fn update_metric(&self, kind: Kind, id: u32, value: u64) {
        // As Envoy: a counter increment must be positive (0 is BadArgument,
        // a failed host call and a warning in Envoy's log per request).
        assert!(
            kind != Kind::Counter || value > 0,
            "counter {id} incremented by 0: Envoy refuses it"
        );
        let mut metrics = self.metrics.borrow_mut();
        metrics.values.entry(id).or_default().push(value);
    }

    fn get_shared_data(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        match self.shared_data.borrow().get(key) {
            Some((value, cas)) => (Some(value.clone()), Some(*cas)),
            None => (None, None),
        }
    }

    fn set_shared_data(&self, key: &str, value: Option<&[u8]>, cas: Option<u32>) -> bool {
        let mut data = self.shared_data.borrow_mut();
        let current = data.get(key).map(|(_, c)| *c);
        // Envoy: a CAS of 0 (or none) always writes; otherwise it must match.
        if cas.is_some_and(|c| c != 0 && Some(c) != current) {
            return false;
        }
        let next = current.unwrap_or(0) + 1;
        data.insert(key.to_string(), (value.unwrap_or_default().to_vec(), next));
        true
    }
}
