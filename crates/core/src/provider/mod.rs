//! Providers: where a model's requests go (base URL → host, port, TLS, base
//! path), how the gateway authenticates to them (a key file injected by
//! Envoy), and the fixed headers they need. Compiled once from the policy's
//! `providers` section; the Envoy generator turns them into clusters, and
//! the filter maps each request's path under the provider's base path.

pub mod preset;
pub mod raw;
pub mod url;

pub use preset::Preset;

use crate::request::ApiShape;

/// Index of a provider in `Policy::providers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProviderId(pub usize);

/// The credential the gateway sends: the content of `file` (trimmed) in
/// `header`, after `prefix` (`"Bearer "` or nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// Lower-case header name.
    pub header: String,
    pub prefix: &'static str,
    pub file: String,
    /// Where in the policy the file is named, for errors.
    pub file_path: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    pub name: String,
    pub preset: Option<&'static Preset>,
    pub base_url: url::BaseUrl,
    pub auth: Option<Auth>,
    /// Fixed headers, lower-case names, preset's first then the policy's.
    pub headers: Vec<(String, String)>,
    /// PEM CA bundle for TLS verification; None: the system bundle.
    pub ca_file: Option<String>,
    /// Azure deployment paths, with this `api-version`.
    pub deployments: Option<String>,
}

/// Gateway client authentication: Envoy checks each caller's key against
/// `keys_file` (key → tenant) and the tenant label comes from the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clients {
    pub keys_file: String,
}

/// Every header a client may carry a provider credential in: removed before
/// any provider with `auth` (the gateway's key replaces them).
pub const CLIENT_CREDENTIAL_HEADERS: [&str; 4] =
    ["authorization", "x-api-key", "api-key", "x-goog-api-key"];

/// Header Envoy's API-key filter writes the authenticated tenant into
/// (it overwrites any client copy) when `clients` is set.
pub const CLIENT_TENANT_HEADER: &str = "x-model-router-tenant";

impl Provider {
    /// The upstream path for a request of `shape` sent to this provider
    /// (for `deployment` on Azure): the API's own suffix under the base
    /// path, whatever prefix the client used.
    pub fn upstream_path(&self, shape: ApiShape, deployment: &str) -> String {
        let suffix = api_suffix(shape);
        match &self.deployments {
            None => format!("{}{suffix}", self.base_url.path),
            Some(version) => format!(
                "{}/openai/deployments/{deployment}{suffix}?api-version={version}",
                self.base_url.path
            ),
        }
    }
}

/// The part of an API's path after the version prefix (`/v1`).
pub fn api_suffix(shape: ApiShape) -> &'static str {
    shape.spec().provider_suffix
}

#[cfg(test)]
mod tests;
