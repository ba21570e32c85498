//! The `providers` and `clients` sections as users write them (serde
//! mirrors of the JSON). `provider::compile` validates them.

use serde::Deserialize;

/// `providers.NAME`: a preset and/or explicit settings; explicit fields
/// override the preset's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    #[serde(default)]
    pub preset: Option<String>,
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub auth: Option<RawAuth>,
    /// Fixed request headers, added after (and over) the preset's.
    #[serde(default)]
    pub headers: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    pub tls: Option<RawTls>,
    /// Azure OpenAI: the `api-version` query parameter.
    #[serde(default)]
    pub api_version: Option<String>,
}

/// `{bearer_file}`, `{header, file}`, or `{file}` with the preset's header.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    #[serde(default)]
    pub bearer_file: Option<String>,
    #[serde(default)]
    pub header: Option<String>,
    #[serde(default)]
    pub file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// PEM bundle the provider's certificate is verified against
    /// (default: the system bundle).
    #[serde(default)]
    pub ca_file: Option<String>,
}

/// `clients`: callers authenticate to the gateway with their own keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClients {
    /// JSON object key → tenant label.
    pub keys_file: String,
}
