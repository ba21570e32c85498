//! The price catalogue shipped with the router (`catalog/prices.json`,
//! embedded at compile time): the published prices, context window and max
//! output of common models, each with the provider page it was read from
//! and the date it was read.
//!
//! A policy model takes what it leaves out from an entry (`"catalog":
//! "anthropic/claude-sonnet-4"`, or `"pricing": "catalog"` to look the
//! model's own `provider_model`/name up); the policy's own numbers always win.
//! Parsed only when a policy or the CLI asks for it.

use serde::Deserialize;

use super::raw::{RawPricing, RawPricingSource};

/// The catalogue's JSON, as shipped.
pub const JSON: &str = include_str!("catalog/prices.json");

/// Entries older than this are reported by `model-router check`.
pub const MAX_AGE_DAYS: i64 = 180;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    models: Vec<RawEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    id: String,
    #[serde(default)]
    aliases: Vec<String>,
    context_window: u64,
    #[serde(default)]
    max_output_tokens: Option<u64>,
    /// Read as the policy's `pricing` is, so the .wasm carries one copy of
    /// the pricing objects' deserializer; `"catalog"` makes no sense here.
    pricing: RawPricingSource,
    source: String,
    read: String,
}

/// One catalogue model.
#[derive(Debug, Clone)]
pub struct Entry {
    /// `provider/model`, e.g. `anthropic/claude-sonnet-4`.
    pub id: String,
    /// Other names of the same model (dated snapshots, provider spellings).
    pub aliases: Vec<String>,
    pub context_window: u64,
    pub max_output_tokens: Option<u64>,
    pub pricing: RawPricing,
    /// The provider's published pricing page.
    pub source: String,
    /// When the prices were read from `source`: `YYYY-MM-DD` (the CLI does
    /// the date arithmetic, so the filter links no calendar code).
    pub read: String,
}

impl Entry {
    /// `openai` of `openai/gpt-4o`.
    pub fn provider(&self) -> &str {
        self.id.split_once('/').map_or("", |(provider, _)| provider)
    }

    /// `gpt-4o` of `openai/gpt-4o`.
    pub fn model(&self) -> &str {
        self.id.split_once('/').map_or(&self.id, |(_, model)| model)
    }

    /// Whether a model named `name` (its `provider_model` or policy name) is this entry.
    pub fn is_named(&self, name: &str) -> bool {
        self.id == name || self.model() == name || self.aliases.iter().any(|a| a == name)
    }
}

/// The parsed catalogue.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub entries: Vec<Entry>,
}

/// Whether `text` has the shape `YYYY-MM-DD` (the calendar itself is
/// checked by the CLI and the catalogue's tests).
fn is_iso_date(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
}

impl Catalog {
    /// The catalogue shipped with the router.
    pub fn shipped() -> Result<Catalog, String> {
        Catalog::from_json(JSON)
    }

    pub fn from_json(json: &str) -> Result<Catalog, String> {
        // The same deserializer as the policy's, so the pricing objects'
        // deserialization code is shared in the .wasm; errors name their
        // path with `json-paths` (the CLI, which checks the catalogue).
        #[cfg(feature = "json-paths")]
        let raw: RawCatalog = {
            let mut de = serde_json::Deserializer::from_str(json);
            serde_path_to_error::deserialize(&mut de)
                .map_err(|e| format!("{}: {}", e.path(), e.inner()))?
        };
        #[cfg(not(feature = "json-paths"))]
        let raw: RawCatalog = serde_json::from_str(json).map_err(|e| format!(".: {e}"))?;
        let mut entries = Vec::with_capacity(raw.models.len());
        for (i, e) in raw.models.into_iter().enumerate() {
            if !is_iso_date(&e.read) {
                return Err(format!("models[{i}].read: {:?} is not YYYY-MM-DD", e.read));
            }
            if !e.id.contains('/') {
                return Err(format!("models[{i}].id: {:?} is not provider/model", e.id));
            }
            if !e.source.starts_with("https://") {
                return Err(format!("models[{i}].source: must be an https URL"));
            }
            let RawPricingSource::Prices(pricing) = e.pricing else {
                return Err(format!("models[{i}].pricing: must be a pricing object"));
            };
            entries.push(Entry {
                id: e.id,
                aliases: e.aliases,
                context_window: e.context_window,
                max_output_tokens: e.max_output_tokens,
                pricing,
                source: e.source,
                read: e.read,
            });
        }
        Ok(Catalog { entries })
    }

    /// The entry with this exact id.
    pub fn get(&self, id: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.id == id)
    }

    /// The entries a model name may mean (several when providers share a name).
    pub fn named(&self, name: &str) -> Vec<&Entry> {
        match self.get(name) {
            Some(entry) => vec![entry],
            None => self.entries.iter().filter(|e| e.is_named(name)).collect(),
        }
    }

    /// Entries whose id or an alias contains `filter` (case-insensitive); all without one.
    pub fn matching(&self, filter: Option<&str>) -> Vec<&Entry> {
        let Some(filter) = filter.map(str::to_ascii_lowercase) else {
            return self.entries.iter().collect();
        };
        self.entries
            .iter()
            .filter(|e| {
                e.id.to_ascii_lowercase().contains(&filter)
                    || e.aliases
                        .iter()
                        .any(|a| a.to_ascii_lowercase().contains(&filter))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
