//! Provider APIs: what a request speaks (from its shape) and what a model
//! accepts (its `api` field in the policy).
//!
//! A request is sent natively to models that accept its API, or translated
//! (see `translate`) for the others unless the policy turns translation off.
//!
//! Each shape's API family is in its descriptor (`shape.rs`).

use std::fmt;

use super::ApiShape;

/// A provider API family, as named in a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Api {
    // The discriminants number the bits of an `ApiSet` (fewer than 8 APIs).
    /// OpenAI Chat Completions (`/v1/chat/completions`) and the legacy
    /// Completions endpoint (`/v1/completions`) that OpenAI-compatible
    /// servers serve beside it.
    OpenaiChat,
    /// OpenAI Responses (`/v1/responses`).
    OpenaiResponses,
    /// Anthropic Messages (`/v1/messages`).
    AnthropicMessages,
}

impl Api {
    pub const ALL: [Api; 3] = [
        Api::OpenaiChat,
        Api::OpenaiResponses,
        Api::AnthropicMessages,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Api::OpenaiChat => "openai_chat",
            Api::OpenaiResponses => "openai_responses",
            Api::AnthropicMessages => "anthropic_messages",
        }
    }

    pub fn from_name(name: &str) -> Option<Api> {
        Api::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The path requests of this API are usually sent to.
    pub fn path(self) -> &'static str {
        match self {
            Api::OpenaiChat => "/v1/chat/completions",
            Api::OpenaiResponses => "/v1/responses",
            Api::AnthropicMessages => "/v1/messages",
        }
    }

    /// The request shape of this API's main endpoint (what a translated
    /// request is sent as).
    pub fn shape(self) -> ApiShape {
        match self {
            Api::OpenaiChat => ApiShape::ChatCompletions,
            Api::OpenaiResponses => ApiShape::Responses,
            Api::AnthropicMessages => ApiShape::Messages,
        }
    }

    /// Its bit in an [`ApiSet`]: one per member of [`Api::ALL`].
    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of APIs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ApiSet(u8);

impl ApiSet {
    pub const NONE: ApiSet = ApiSet(0);
    /// Every API: derived from [`Api::ALL`], so a new API is in it.
    pub const ALL: ApiSet = {
        let mut bits = 0;
        let mut rest: &[Api] = &Api::ALL;
        while let [api, tail @ ..] = rest {
            bits |= api.bit();
            rest = tail;
        }
        ApiSet(bits)
    };

    pub fn of(api: Api) -> ApiSet {
        ApiSet(api.bit())
    }

    pub fn contains(self, api: Api) -> bool {
        self.0 & api.bit() != 0
    }

    pub fn with(self, api: Api) -> ApiSet {
        ApiSet(self.0 | api.bit())
    }

    pub fn union(self, other: ApiSet) -> ApiSet {
        ApiSet(self.0 | other.0)
    }

    pub fn intersection(self, other: ApiSet) -> ApiSet {
        ApiSet(self.0 & other.0)
    }

    pub fn minus(self, other: ApiSet) -> ApiSet {
        ApiSet(self.0 & !other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The members, in `Api::ALL` order.
    pub fn iter(self) -> impl Iterator<Item = Api> {
        Api::ALL.into_iter().filter(move |a| self.contains(*a))
    }
}

impl FromIterator<Api> for ApiSet {
    fn from_iter<I: IntoIterator<Item = Api>>(iter: I) -> ApiSet {
        iter.into_iter().fold(ApiSet::NONE, ApiSet::with)
    }
}

impl fmt::Display for ApiSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Api::name).collect();
        f.write_str(&names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::ApiShape;

    #[test]
    fn names_round_trip_and_shapes_map_to_their_api() {
        for api in Api::ALL {
            assert_eq!(Api::from_name(api.name()), Some(api));
            assert_eq!(
                ApiShape::from_path(api.path()).map(ApiShape::api),
                Some(api)
            );
        }
        assert_eq!(Api::from_name("openai"), None);
        assert_eq!(ApiShape::Completions.api(), Api::OpenaiChat);
    }

    #[test]
    fn sets() {
        let chat = ApiSet::of(Api::OpenaiChat);
        let both = chat.with(Api::AnthropicMessages);
        assert!(both.contains(Api::AnthropicMessages) && !both.contains(Api::OpenaiResponses));
        assert_eq!(both.intersection(chat), chat);
        assert_eq!(both.minus(chat), ApiSet::of(Api::AnthropicMessages));
        assert_eq!(ApiSet::ALL.iter().count(), 3);
        assert!(ApiSet::NONE.is_empty());
        assert_eq!(both.to_string(), "openai_chat, anthropic_messages");
        assert_eq!(Api::ALL.into_iter().collect::<ApiSet>(), ApiSet::ALL);
    }
}
