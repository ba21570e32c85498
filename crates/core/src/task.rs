//! Task categories: keyword and pattern detectors over the prompt text,
//! compiled for the whole policy into one `TaskMatcher`.

mod fold;
mod keywords;
mod matcher;

pub use matcher::{MatcherError, TaskMatcher, TaskSource};

use serde::Deserialize;

use crate::request::{Role, Segment};

/// Which text task detection reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(serde::Serialize))]
#[serde(rename_all = "snake_case")]
pub enum Scan {
    #[default]
    LastUser,
    AllUser,
    System,
    All,
}

impl Scan {
    /// Whether this scope reads `segment`; `last_user` is
    /// [`crate::request::RequestFacts::last_user_message`]. The one definition
    /// of the scopes, for task detection and classifier features alike.
    pub fn covers(self, segment: &Segment, last_user: Option<usize>) -> bool {
        match self {
            Scan::LastUser => segment.role == Role::User && Some(segment.message) == last_user,
            Scan::AllUser => segment.role == Role::User,
            Scan::System => matches!(segment.role, Role::System | Role::Developer),
            Scan::All => true,
        }
    }
}

/// A task category: its name, and the texts its detectors read. The
/// detectors themselves live in the policy's `TaskMatcher`.
#[derive(Debug, Clone)]
pub struct Task {
    pub name: String,
    pub scan: Scan,
}

#[cfg(test)]
mod tests;
