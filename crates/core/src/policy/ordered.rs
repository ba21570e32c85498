//! A JSON object read as a list of entries in the order written, because
//! policy order means something (tasks are tried in order; ties between
//! equally priced models go to the one written first). Duplicate keys are
//! refused rather than silently overwritten.
//!
//! The same entries may be written as a list of objects with a `name`
//! (`[{"name": "code", "keywords": [..]}, ..]`): transports that store the
//! policy as a structured object (Istio `pluginConfig`, Envoy Gateway
//! `config`) sort object keys, and a list keeps its order through them.

use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, Error, MapAccess, SeqAccess, Visitor};

#[derive(Debug)]
pub struct OrderedMap<T>(pub Vec<(String, T)>);

impl<T> Default for OrderedMap<T> {
    fn default() -> Self {
        OrderedMap(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OrderedMap<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(OrderedVisitor(PhantomData))
    }
}

struct OrderedVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for OrderedVisitor<T> {
    type Value = OrderedMap<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object, or a list of objects with a `name`")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut entries: Vec<(String, T)> = Vec::new();
        let mut seen = HashSet::new();
        while let Some(mut item) =
            seq.next_element::<serde_json::Map<String, serde_json::Value>>()?
        {
            let name = match item.remove("name") {
                Some(serde_json::Value::String(name)) => name,
                _ => {
                    return Err(A::Error::custom(format!(
                        "entry {} needs a string `name`",
                        entries.len()
                    )))
                }
            };
            if !seen.insert(name.clone()) {
                return Err(A::Error::custom(format!("duplicate name {name:?}")));
            }
            let value = T::deserialize(serde_json::Value::Object(item))
                .map_err(|e| A::Error::custom(format!("{name:?}: {e}")))?;
            entries.push((name, value));
        }
        Ok(OrderedMap(entries))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries: Vec<(String, T)> = Vec::new();
        // A set, not a scan of `entries`: a policy may name thousands.
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(A::Error::custom(format!("duplicate key {key:?}")));
            }
            let value = map.next_value()?;
            entries.push((key, value));
        }
        Ok(OrderedMap(entries))
    }
}
