//! Policy parsing and validation: any text either compiles into a policy or
//! is refused with an error naming a JSON path, never a panic. A policy that
//! compiles also generates an Envoy config and decides a request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model_router_core::decision::{decide, Request};
use model_router_cli::envoy_config::{bootstrap, EnvoyOptions};
use model_router_core::headers::Headers;
use model_router_core::policy::Policy;
use model_router_core::request::ApiShape;

const BODY: &str = r#"{"model":"auto","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"summarize this python function"}],"max_tokens":50}"#;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Policy::from_json(text) {
        Err(e) => {
            let message = e.to_string();
            assert!(!message.is_empty());
        }
        Ok(policy) => {
            let _ = bootstrap(&policy, text, &EnvoyOptions::default());
            let headers = Headers::from_pairs(&[("x-task", "code"), ("x-team", "a")]);
            let _ = decide(
                &policy,
                &Request {
                    shape: ApiShape::ChatCompletions,
                    path: "/v1/chat/completions",
                    headers: &headers,
                    body: BODY.as_bytes(),
                },
            );
        }
    }
});
