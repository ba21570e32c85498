//! Exact token counting with OpenAI's BPE encodings (tiktoken-rs).
//!
//! Each encoding's tables are built once per process (once per wasm VM) on
//! first use, and only for the encodings a policy names: a table costs tens of
//! megabytes, so loading one nobody asked for is a waste per Envoy worker.

use std::fmt;
use std::sync::OnceLock;

use tiktoken_rs::CoreBPE;

/// A BPE encoding the router can count with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Encoding {
    /// GPT-4o, GPT-4.1, o-series.
    O200kBase,
    /// GPT-4, GPT-3.5-turbo, text-embedding-3.
    Cl100kBase,
}

impl Encoding {
    pub const ALL: [Encoding; 2] = [Encoding::O200kBase, Encoding::Cl100kBase];

    pub fn name(self) -> &'static str {
        match self {
            Encoding::O200kBase => "o200k_base",
            Encoding::Cl100kBase => "cl100k_base",
        }
    }

    pub fn from_name(name: &str) -> Option<Encoding> {
        Encoding::ALL.into_iter().find(|e| e.name() == name)
    }

    /// Position in per-encoding arrays.
    pub(crate) fn index(self) -> usize {
        match self {
            Encoding::O200kBase => 0,
            Encoding::Cl100kBase => 1,
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The encoding tables could not be built (never expected: they are embedded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenError(pub String);

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tokenizer unavailable: {}", self.0)
    }
}

impl std::error::Error for TokenError {}

static O200K: OnceLock<Result<CoreBPE, TokenError>> = OnceLock::new();
static CL100K: OnceLock<Result<CoreBPE, TokenError>> = OnceLock::new();

fn bpe(encoding: Encoding) -> Result<&'static CoreBPE, TokenError> {
    let cell = match encoding {
        Encoding::O200kBase => &O200K,
        Encoding::Cl100kBase => &CL100K,
    };
    let loaded = cell.get_or_init(|| {
        let built = match encoding {
            Encoding::O200kBase => tiktoken_rs::o200k_base(),
            Encoding::Cl100kBase => tiktoken_rs::cl100k_base(),
        };
        built.map_err(|e| TokenError(format!("{encoding}: {e}")))
    });
    loaded.as_ref().map_err(Clone::clone)
}

/// Builds the tables of `encoding` now, so the first request does not pay for it.
pub fn preload(encoding: Encoding) -> Result<(), TokenError> {
    bpe(encoding).map(|_| ())
}

/// Tokens of `text` as ordinary text: special-token markers such as
/// `<|endoftext|>` count as the plain characters they are, as the API bills
/// user content.
pub fn count(encoding: Encoding, text: &str) -> Result<usize, TokenError> {
    Ok(bpe(encoding)?.encode_ordinary(text).len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_known_strings() {
        // Reference values from OpenAI's tiktoken.
        assert_eq!(count(Encoding::O200kBase, "hello world").unwrap(), 2);
        assert_eq!(count(Encoding::Cl100kBase, "hello world").unwrap(), 2);
        assert_eq!(count(Encoding::O200kBase, "").unwrap(), 0);
        assert_eq!(
            count(Encoding::Cl100kBase, "tiktoken is great!").unwrap(),
            6
        );
    }

    #[test]
    fn special_tokens_are_ordinary_text() {
        assert!(count(Encoding::O200kBase, "<|endoftext|>").unwrap() > 1);
    }

    #[test]
    fn names_round_trip() {
        for e in Encoding::ALL {
            assert_eq!(Encoding::from_name(e.name()), Some(e));
        }
        assert_eq!(Encoding::from_name("p50k_base"), None);
    }
}
