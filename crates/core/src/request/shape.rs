//! One descriptor per API shape: everything shape-specific the router needs
//! to know, in one place, registered in [`SHAPES`]. Path dispatch (here and
//! in the mock provider), the API family, output-limit fields, usage in
//! streams and image pricing all derive from it. Adding a shape is one new
//! reader file beside this one and one entry in the list.

use super::images::ImagePricing;
use super::top_level::TopLevel;
use super::{chat, completions, messages, responses, Api, ApiShape, RequestError, RequestFacts};

/// What the router knows of one API shape.
pub struct ShapeSpec {
    pub shape: ApiShape,
    /// The shape's name in metrics, audit records and `explain`.
    pub name: &'static str,
    /// The API family a model must accept to serve this shape.
    pub api: Api,
    /// The path ends with this (any prefix; query string ignored).
    pub path_suffix: &'static str,
    /// Members that limit the output, most specific first.
    pub output_limit_fields: &'static [&'static str],
    /// Streams end with the usage without being asked (otherwise the client
    /// asks with `stream_options.include_usage`).
    pub stream_always_has_usage: bool,
    /// Whose formula prices this shape's images.
    pub image_pricing: ImagePricing,
    /// Reads the shape's messages, tools and flags into the facts.
    pub read: fn(&TopLevel<'_>, &mut RequestFacts) -> Result<(), RequestError>,
    /// The path under a provider's base URL (`{base_url path}{this}`).
    pub provider_suffix: &'static str,
}

/// Every shape the router serves, in path-matching order: a more specific
/// suffix before one it ends with (`/chat/completions` before `/completions`).
pub static SHAPES: [ShapeSpec; 4] = [
    ShapeSpec {
        shape: ApiShape::ChatCompletions,
        name: "chat_completions",
        api: Api::OpenaiChat,
        path_suffix: "/chat/completions",
        output_limit_fields: &["max_completion_tokens", "max_tokens"],
        stream_always_has_usage: false,
        image_pricing: ImagePricing::OpenAi,
        read: chat::read,
        provider_suffix: "/chat/completions",
    },
    ShapeSpec {
        shape: ApiShape::Completions,
        name: "completions",
        api: Api::OpenaiChat,
        path_suffix: "/completions",
        output_limit_fields: &["max_completion_tokens", "max_tokens"],
        stream_always_has_usage: false,
        image_pricing: ImagePricing::OpenAi,
        read: completions::read,
        provider_suffix: "/completions",
    },
    ShapeSpec {
        shape: ApiShape::Responses,
        name: "responses",
        api: Api::OpenaiResponses,
        path_suffix: "/responses",
        output_limit_fields: &["max_output_tokens"],
        // `response.completed` carries it.
        stream_always_has_usage: true,
        image_pricing: ImagePricing::OpenAi,
        read: responses::read,
        provider_suffix: "/responses",
    },
    ShapeSpec {
        shape: ApiShape::Messages,
        name: "messages",
        api: Api::AnthropicMessages,
        // Not any `.../messages`: OpenAI's `/v1/threads/{id}/messages` is another API.
        path_suffix: "/v1/messages",
        output_limit_fields: &["max_tokens"],
        // `message_start` and `message_delta` carry it.
        stream_always_has_usage: true,
        image_pricing: ImagePricing::Anthropic,
        read: messages::read,
        provider_suffix: "/messages",
    },
];

impl ApiShape {
    /// This shape's descriptor.
    pub fn spec(self) -> &'static ShapeSpec {
        // Every shape is registered (a unit test checks); the first entry is
        // only a fallback the compiler needs.
        let [first, ..] = &SHAPES;
        SHAPES.iter().find(|s| s.shape == self).unwrap_or(first)
    }

    /// The shape served at `path` (query string ignored; any prefix allowed,
    /// e.g. `/openai/v1/chat/completions`), or None for paths the router
    /// leaves alone.
    pub fn from_path(path: &str) -> Option<ApiShape> {
        let path = path.split(['?', '#']).next().unwrap_or(path);
        let path = path.trim_end_matches('/');
        SHAPES
            .iter()
            .find(|s| path.ends_with(s.path_suffix))
            .map(|s| s.shape)
    }

    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// The shape named `name` (its `name`), e.g. from filter state.
    pub fn from_name(name: &str) -> Option<ApiShape> {
        SHAPES.iter().find(|s| s.name == name).map(|s| s.shape)
    }

    /// The API family of requests of this shape.
    pub fn api(self) -> Api {
        self.spec().api
    }

    /// Whose formula prices this shape's images.
    pub fn image_pricing(self) -> ImagePricing {
        self.spec().image_pricing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_is_registered_once_and_found_by_its_path() {
        for (i, spec) in SHAPES.iter().enumerate() {
            assert!(std::ptr::eq(spec.shape.spec(), spec), "{}", spec.name);
            assert_eq!(SHAPES.iter().filter(|s| s.shape == spec.shape).count(), 1);
            for prefix in ["", "/openai", "/a/b"] {
                let path = format!("{prefix}{}?x=1", spec.path_suffix);
                assert_eq!(ApiShape::from_path(&path), Some(spec.shape), "{path}");
            }
            // A suffix that another one ends with must come after it.
            for later in SHAPES.iter().skip(i + 1) {
                assert!(
                    !later.path_suffix.ends_with(spec.path_suffix),
                    "{}",
                    later.name
                );
            }
        }
    }

    #[test]
    fn other_paths_are_left_alone() {
        for path in [
            "/v1/embeddings",
            "/v1/threads/t1/messages",
            "/messages",
            "/",
            "",
        ] {
            assert_eq!(ApiShape::from_path(path), None, "{path}");
        }
        assert_eq!(
            ApiShape::from_path("/v1/messages/"),
            Some(ApiShape::Messages)
        );
    }
}
