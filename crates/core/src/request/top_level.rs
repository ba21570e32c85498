//! One validating pass over the body that keeps each top-level member as a
//! borrowed raw slice, so fields are parsed only when needed and the `model`
//! value can be replaced in place without re-serialising anything else.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

/// The members of a JSON object, in the order written (duplicates kept).
pub struct TopLevel<'a> {
    pub members: Vec<(Cow<'a, str>, &'a RawValue)>,
}

#[derive(Deserialize)]
struct Key<'a>(#[serde(borrow)] Cow<'a, str>);

impl<'a> TopLevel<'a> {
    /// Parses `body` (which must be a JSON object) and validates all of it.
    pub fn parse(body: &'a str) -> Result<TopLevel<'a>, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(body);
        let top = de.deserialize_map(TopLevelVisitor)?;
        de.end()?;
        Ok(top)
    }

    /// The last value written for `key` (what most JSON parsers keep).
    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.members
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| *v)
    }

    /// Byte ranges in `body` of every value written for `key`.
    pub fn spans(&self, body: &str, key: &str) -> Vec<Range<usize>> {
        let base = body.as_ptr() as usize;
        self.members
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| {
                let start = (v.get().as_ptr() as usize).saturating_sub(base);
                start..start.saturating_add(v.get().len())
            })
            .collect()
    }
}

struct TopLevelVisitor;

impl<'de> Visitor<'de> for TopLevelVisitor {
    type Value = TopLevel<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::new();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let value: &'de RawValue = map.next_value()?;
            members.push((key, value));
        }
        Ok(TopLevel { members })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_members_in_order_with_spans() {
        let body = r#"{"model" : "gpt-4o", "n":1, "model":"x"}"#;
        let top = TopLevel::parse(body).unwrap();
        assert_eq!(top.members.len(), 3);
        assert_eq!(top.get("model").unwrap().get(), r#""x""#);
        let spans = top.spans(body, "model");
        assert_eq!(spans.len(), 2);
        assert_eq!(&body[spans[0].clone()], r#""gpt-4o""#);
        assert_eq!(&body[spans[1].clone()], r#""x""#);
    }

    #[test]
    fn escaped_keys_are_unescaped() {
        let body = r#"{"mod\u0065l":"a"}"#;
        let top = TopLevel::parse(body).unwrap();
        assert_eq!(top.get("model").unwrap().get(), r#""a""#);
    }

    #[test]
    fn rejects_non_objects_and_trailing_data() {
        assert!(TopLevel::parse("[1]").is_err());
        assert!(TopLevel::parse("\"s\"").is_err());
        assert!(TopLevel::parse("{} x").is_err());
        assert!(TopLevel::parse("{\"a\":").is_err());
    }
}
