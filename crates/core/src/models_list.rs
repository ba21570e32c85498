//! `GET /v1/models` and `GET /v1/models/{id}`, answered by the router: the
//! policy's models (by name) and its `requested_model` aliases, in OpenAI's
//! list format (each entry also carries Anthropic's `type`/`display_name`/
//! `created_at`, so both SDKs' `models.list()` read it). Nothing is sent
//! upstream.

use serde_json::{json, Value};

use crate::actions::LocalReply;
use crate::policy::Policy;

/// The answer to a models request, or None for any other request.
pub fn reply(policy: &Policy, method: &str, path: &str) -> Option<LocalReply> {
    if method != "GET" {
        return None;
    }
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let rest = models_suffix(path)?;
    let ids = ids(policy);
    if rest.is_empty() {
        let data: Vec<Value> = ids.iter().map(|(id, owner)| entry(id, owner)).collect();
        let body = json!({
            "object": "list",
            "data": data,
            "has_more": false,
            "first_id": ids.first().map(|(id, _)| id),
            "last_id": ids.last().map(|(id, _)| id),
        });
        return Some(LocalReply {
            status: 200,
            body: body.to_string(),
        });
    }
    Some(match ids.iter().find(|(id, _)| id == rest) {
        Some((id, owner)) => LocalReply {
            status: 200,
            body: entry(id, owner).to_string(),
        },
        None => LocalReply {
            status: 404,
            body: json!({"error": {
                "message": format!("The model '{rest}' does not exist"),
                "type": "invalid_request_error",
                "param": "model",
                "code": "model_not_found",
            }})
            .to_string(),
        },
    })
}

/// What follows `/v1/models` in `path`: "" for the list, the id for one
/// model; None for other paths.
fn models_suffix(path: &str) -> Option<&str> {
    let at = path.find("/v1/models")?;
    let rest = path.get(at.saturating_add("/v1/models".len())..)?;
    if rest.is_empty() || rest == "/" {
        return Some("");
    }
    let id = rest.strip_prefix('/')?.trim_end_matches('/');
    // Model names are header-safe and have no `/`; aliases may not, so keep it whole.
    Some(id)
}

/// Model names then aliases, with who "owns" each.
fn ids(policy: &Policy) -> Vec<(String, &'static str)> {
    let mut out: Vec<(String, &'static str)> = policy
        .models
        .iter()
        .map(|m| (m.name.clone(), "model-router"))
        .collect();
    for alias in &policy.requested_model.aliases {
        if !out.iter().any(|(id, _)| id == alias) {
            out.push((alias.clone(), "model-router-alias"));
        }
    }
    out
}

fn entry(id: &str, owner: &str) -> Value {
    json!({
        "id": id,
        "object": "model",
        "created": 0,
        "owned_by": owner,
        "type": "model",
        "display_name": id,
        "created_at": "1970-01-01T00:00:00Z",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../examples/policy.json");

    fn get(path: &str) -> (u32, Value) {
        let p = Policy::from_json(EXAMPLE).unwrap();
        let r = reply(&p, "GET", path).unwrap();
        (r.status, serde_json::from_str(&r.body).unwrap())
    }

    #[test]
    fn lists_models_then_aliases() {
        let p = Policy::from_json(EXAMPLE).unwrap();
        let (status, v) = get("/v1/models");
        assert_eq!(status, 200);
        assert_eq!(v["object"], "list");
        let ids: Vec<&str> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        let mut expected: Vec<&str> = p.models.iter().map(|m| m.name.as_str()).collect();
        expected.extend(p.requested_model.aliases.iter().map(String::as_str));
        assert_eq!(ids, expected);
        assert!(!p.requested_model.aliases.is_empty());
        assert_eq!(v["data"][0]["object"], "model");
        assert_eq!(get("/openai/v1/models/?x=1").1, v);
    }

    #[test]
    fn one_model_or_404() {
        let (status, v) = get("/v1/models/gpt-4o-mini");
        assert_eq!((status, v["id"].as_str()), (200, Some("gpt-4o-mini")));
        let (status, v) = get("/v1/models/nope");
        assert_eq!(status, 404);
        assert_eq!(v["error"]["code"], "model_not_found");
    }

    #[test]
    fn other_requests_are_not_answered() {
        let p = Policy::from_json(EXAMPLE).unwrap();
        assert!(reply(&p, "POST", "/v1/models").is_none());
        assert!(reply(&p, "GET", "/v1/chat/completions").is_none());
        assert!(reply(&p, "GET", "/v1/modelsx").is_none());
    }
}
