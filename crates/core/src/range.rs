//! An inclusive range of counts, the value of every numeric condition.

/// An inclusive range of counts; `lt`/`lte`/`gt`/`gte` normalise into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub min: u64,
    pub max: u64,
}

impl Range {
    pub fn contains(&self, value: u64) -> bool {
        self.min <= value && value <= self.max
    }
}
