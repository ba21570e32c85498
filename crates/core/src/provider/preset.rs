//! Presets: each provider's published endpoint, auth header and fixed
//! headers, and the API its models speak by default.

use crate::request::{Api, ApiSet};

/// What a preset fills in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    pub name: &'static str,
    /// None: the user must give `base_url` (Azure: per resource).
    pub base_url: Option<&'static str>,
    /// The header the key goes in, and whether it is `Bearer <key>`.
    /// None: the endpoint takes no key (self-hosted).
    pub auth: Option<(&'static str, bool)>,
    pub headers: &'static [(&'static str, &'static str)],
    /// APIs of the preset's models when a model names none.
    pub apis: &'static [Api],
    /// Paths are `/openai/deployments/{deployment}/...?api-version=` (Azure).
    pub deployments: bool,
}

const BEARER: Option<(&str, bool)> = Some(("authorization", true));
const CHAT: &[Api] = &[Api::OpenaiChat];

/// Azure OpenAI's GA data-plane API version, used when a provider sets none.
pub const AZURE_API_VERSION: &str = "2024-10-21";

pub const PRESETS: &[Preset] = &[
    Preset {
        name: "openai",
        base_url: Some("https://api.openai.com/v1"),
        auth: BEARER,
        headers: &[],
        apis: &[Api::OpenaiChat, Api::OpenaiResponses],
        deployments: false,
    },
    Preset {
        name: "anthropic",
        base_url: Some("https://api.anthropic.com/v1"),
        auth: Some(("x-api-key", false)),
        headers: &[("anthropic-version", "2023-06-01")],
        apis: &[Api::AnthropicMessages],
        deployments: false,
    },
    Preset {
        name: "gemini",
        base_url: Some("https://generativelanguage.googleapis.com/v1beta/openai"),
        auth: BEARER,
        headers: &[],
        apis: CHAT,
        deployments: false,
    },
    Preset {
        name: "azure_openai",
        base_url: None,
        auth: Some(("api-key", false)),
        headers: &[],
        apis: CHAT,
        deployments: true,
    },
    Preset {
        name: "groq",
        base_url: Some("https://api.groq.com/openai/v1"),
        auth: BEARER,
        headers: &[],
        apis: CHAT,
        deployments: false,
    },
    Preset {
        name: "together",
        base_url: Some("https://api.together.xyz/v1"),
        auth: BEARER,
        headers: &[],
        apis: CHAT,
        deployments: false,
    },
    Preset {
        name: "mistral",
        base_url: Some("https://api.mistral.ai/v1"),
        auth: BEARER,
        headers: &[],
        apis: CHAT,
        deployments: false,
    },
    Preset {
        name: "deepseek",
        base_url: Some("https://api.deepseek.com/v1"),
        auth: BEARER,
        headers: &[],
        apis: CHAT,
        deployments: false,
    },
    Preset {
        name: "openrouter",
        base_url: Some("https://openrouter.ai/api/v1"),
        auth: BEARER,
        headers: &[],
        apis: CHAT,
        deployments: false,
    },
    Preset {
        name: "vllm",
        base_url: Some("http://localhost:8000/v1"),
        auth: None,
        headers: &[],
        apis: CHAT,
        deployments: false,
    },
    Preset {
        name: "ollama",
        base_url: Some("http://localhost:11434/v1"),
        auth: None,
        headers: &[],
        apis: CHAT,
        deployments: false,
    },
];

impl Preset {
    pub fn find(name: &str) -> Option<&'static Preset> {
        PRESETS.iter().find(|p| p.name == name)
    }

    pub fn names() -> String {
        PRESETS
            .iter()
            .map(|p| p.name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn api_set(&self) -> ApiSet {
        self.apis
            .iter()
            .fold(ApiSet::NONE, |set, api| set.with(*api))
    }
}
