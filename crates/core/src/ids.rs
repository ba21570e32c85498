//! Indexes into the compiled policy, shared by every layer that refers to a
//! model or a task without needing the policy itself.

/// Index of a model in `Policy::models`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModelId(pub usize);

/// Index of a task category in `Policy::tasks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TaskId(pub usize);
