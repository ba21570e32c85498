use std::fmt;

/// A policy that cannot be used, and where in its JSON the problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// JSON path such as `rules[2].target` (`.` for the whole document).
    pub path: String,
    pub message: String,
}

impl PolicyError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> PolicyError {
        PolicyError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for PolicyError {}

impl From<crate::classifier::CompileError> for PolicyError {
    fn from(e: crate::classifier::CompileError) -> PolicyError {
        PolicyError::new(e.path, e.message)
    }
}
