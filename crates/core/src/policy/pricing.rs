//! A model's prices, context window and max output: the policy's own
//! numbers, with whatever it leaves out taken from the price catalogue entry
//! it names. Compiled into integer pico-USD per token.

use super::catalog::{Catalog, Entry};
use super::raw::{RawLongContext, RawModel, RawPricing, RawPricingSource};
use super::PolicyError;
use crate::cost::{per_token, LongContext, Pricing, Rates};

/// What the pricing fields of one model compile to.
#[derive(Debug)]
pub(super) struct Priced {
    pub pricing: Pricing,
    pub context_window: u64,
    pub max_output_tokens: Option<u64>,
    /// The catalogue entry used, if any.
    pub catalog: Option<String>,
}

/// The shipped catalogue, parsed the first time a model asks for it.
#[derive(Debug, Default)]
pub(super) struct CatalogCache(Option<Catalog>);

impl CatalogCache {
    fn get(&mut self, path: &str) -> Result<&Catalog, PolicyError> {
        if self.0.is_none() {
            let catalog = Catalog::shipped().map_err(|e| {
                PolicyError::new(path, format!("the shipped price catalogue is invalid: {e}"))
            })?;
            self.0 = Some(catalog);
        }
        self.0
            .as_ref()
            .ok_or_else(|| PolicyError::new(path, "price catalogue unavailable"))
    }
}

const INVALID_PRICE: &str = "prices must be finite, non-negative USD per million tokens";
const HINT: &str =
    r#"(or take it from the price catalogue with "catalog"; `model-router prices` lists it)"#;

pub(super) fn priced(
    name: &str,
    m: &RawModel,
    provider_model: &str,
    path: &str,
    cache: &mut CatalogCache,
) -> Result<Priced, PolicyError> {
    let entry = catalog_entry(name, m, provider_model, path, cache)?;
    let own = match &m.pricing {
        Some(RawPricingSource::Prices(p)) => Some(p),
        _ => None,
    };
    let pricing = match (own, entry) {
        (None, None) => Pricing::default(),
        (own, entry) => {
            let merged = merge(own, entry.map(|e| &e.pricing));
            compile_pricing(&merged, &format!("{path}.pricing"))?
        }
    };
    let context_window = m
        .context_window
        .or(entry.map(|e| e.context_window))
        .ok_or_else(|| {
            PolicyError::new(format!("{path}.context_window"), format!("required {HINT}"))
        })?;
    let max_output_tokens = m.max_output_tokens.or_else(|| {
        entry
            .and_then(|e| e.max_output_tokens)
            .map(|max| max.min(context_window))
    });
    Ok(Priced {
        pricing,
        context_window,
        max_output_tokens,
        catalog: entry.map(|e| e.id.clone()),
    })
}

/// The entry named by `"catalog"`, or found by the model's own names with `"pricing": "catalog"`.
fn catalog_entry<'c>(
    name: &str,
    m: &RawModel,
    provider_model: &str,
    path: &str,
    cache: &'c mut CatalogCache,
) -> Result<Option<&'c Entry>, PolicyError> {
    if let Some(id) = &m.catalog {
        let at = format!("{path}.catalog");
        let catalog = cache.get(&at)?;
        return catalog.get(id).map(Some).ok_or_else(|| {
            PolicyError::new(
                at,
                format!("unknown catalogue model {id:?} (`model-router prices` lists them)"),
            )
        });
    }
    if !matches!(m.pricing, Some(RawPricingSource::Catalog)) {
        return Ok(None);
    }
    let at = format!("{path}.pricing");
    let catalog = cache.get(&at)?;
    let mut found = catalog.named(provider_model);
    if found.is_empty() {
        found = catalog.named(name);
    }
    match found.as_slice() {
        [entry] => Ok(Some(*entry)),
        [] => Err(PolicyError::new(
            at,
            format!(
                r#"no catalogue model is named {provider_model:?} or {name:?}; name one with "catalog" (`model-router prices` lists them)"#
            ),
        )),
        several => Err(PolicyError::new(
            at,
            format!(
                r#"{provider_model:?} is in the catalogue more than once; choose with "catalog": one of {}"#,
                several
                    .iter()
                    .map(|e| format!("{:?}", e.id))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// The policy's prices, field by field over the catalogue's.
fn merge(own: Option<&RawPricing>, catalog: Option<&RawPricing>) -> RawPricing {
    let own = own.cloned().unwrap_or_default();
    let Some(base) = catalog else {
        return own;
    };
    let long_context = match (own.long_context, &base.long_context) {
        (Some(o), Some(b)) => Some(RawLongContext {
            above_prompt_tokens: o.above_prompt_tokens.or(b.above_prompt_tokens),
            input_per_mtok: o.input_per_mtok.or(b.input_per_mtok),
            output_per_mtok: o.output_per_mtok.or(b.output_per_mtok),
            cached_input_per_mtok: o.cached_input_per_mtok.or(b.cached_input_per_mtok),
            cache_write_per_mtok: o.cache_write_per_mtok.or(b.cache_write_per_mtok),
            cache_write_1h_per_mtok: o.cache_write_1h_per_mtok.or(b.cache_write_1h_per_mtok),
        }),
        (o, b) => o.or_else(|| b.clone()),
    };
    RawPricing {
        input_per_mtok: own.input_per_mtok.or(base.input_per_mtok),
        output_per_mtok: own.output_per_mtok.or(base.output_per_mtok),
        cached_input_per_mtok: own.cached_input_per_mtok.or(base.cached_input_per_mtok),
        cache_write_per_mtok: own.cache_write_per_mtok.or(base.cache_write_per_mtok),
        cache_write_1h_per_mtok: own.cache_write_1h_per_mtok.or(base.cache_write_1h_per_mtok),
        long_context,
    }
}

/// USD per million tokens → the compiled tiers.
pub(crate) fn compile_pricing(p: &RawPricing, path: &str) -> Result<Pricing, PolicyError> {
    let required = |v: Option<f64>, field: &str| {
        v.ok_or_else(|| PolicyError::new(format!("{path}.{field}"), format!("required {HINT}")))
    };
    let input = price(required(p.input_per_mtok, "input_per_mtok")?, path)?;
    let output = price(required(p.output_per_mtok, "output_per_mtok")?, path)?;
    let base = Rates::with_defaults(
        input,
        output,
        optional(p.cached_input_per_mtok, path)?,
        optional(p.cache_write_per_mtok, path)?,
        optional(p.cache_write_1h_per_mtok, path)?,
    );
    let long_context = match &p.long_context {
        None => None,
        Some(long) => Some(compile_long(long, &base, &format!("{path}.long_context"))?),
    };
    Ok(Pricing { base, long_context })
}

fn compile_long(
    long: &RawLongContext,
    base: &Rates,
    path: &str,
) -> Result<LongContext, PolicyError> {
    let required = |field: &str| PolicyError::new(format!("{path}.{field}"), "required");
    let above_prompt_tokens = long
        .above_prompt_tokens
        .ok_or_else(|| required("above_prompt_tokens"))?;
    if above_prompt_tokens == 0 {
        return Err(PolicyError::new(
            format!("{path}.above_prompt_tokens"),
            "must be greater than 0",
        ));
    }
    let input = price(
        long.input_per_mtok
            .ok_or_else(|| required("input_per_mtok"))?,
        path,
    )?;
    let output = price(
        long.output_per_mtok
            .ok_or_else(|| required("output_per_mtok"))?,
        path,
    )?;
    Ok(LongContext {
        above_prompt_tokens,
        rates: Rates::scaled_from(
            base,
            input,
            output,
            optional(long.cached_input_per_mtok, path)?,
            optional(long.cache_write_per_mtok, path)?,
            optional(long.cache_write_1h_per_mtok, path)?,
        ),
    })
}

fn price(usd_per_mtok: f64, path: &str) -> Result<u64, PolicyError> {
    per_token(usd_per_mtok).ok_or_else(|| PolicyError::new(path, INVALID_PRICE))
}

fn optional(usd_per_mtok: Option<f64>, path: &str) -> Result<Option<u64>, PolicyError> {
    usd_per_mtok.map(|p| price(p, path)).transpose()
}
