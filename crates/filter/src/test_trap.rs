//! TEST BUILDS ONLY (cargo feature `test-trap`, off by default): a request
//! carrying [`HEADER`] traps the VM, so the end-to-end tests can prove that
//! Envoy's `failure_policy: FAIL_RELOAD` replaces a trapped VM and traffic
//! continues. A production `.wasm` has no such code path.

use model_router_core::headers::Headers;

pub const HEADER: &str = "x-model-router-test-trap";

pub fn on_request(headers: &Headers) {
    if headers.get(HEADER).is_some() {
        log::error!("model-router: TEST BUILD: trapping the VM on request");
        // `abort` is the wasm `unreachable` instruction: the VM traps.
        std::process::abort();
    }
}

pub fn warn_loaded() {
    log::error!(
        "model-router: TEST BUILD with feature test-trap: any client can trap this VM; never deploy it"
    );
}
