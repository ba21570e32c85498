//! Rules indexed by the task their first condition asks for, so that a
//! policy with a rule per task tests only the rules that can hold.
//!
//! A rule whose condition is `{"task": …}`, or an `all` whose first member
//! is (recursively), cannot hold unless the request's task is one of those
//! named; since that test is evaluated first and has no side effect (no
//! token count, no error), skipping such a rule for any other task leaves
//! every decision exactly as evaluating it would. Every other rule is
//! always a candidate. Candidates come in policy order.

use super::{Rule, TaskId};
use crate::condition::Condition;

#[derive(Debug, Clone, Default)]
pub struct RuleIndex {
    /// Rules not gated by a task, in order.
    general: Vec<u32>,
    /// Rules gated by task `t`, in order: `by_task[t]`.
    by_task: Vec<Vec<u32>>,
}

impl RuleIndex {
    pub fn new(rules: &[Rule], task_count: usize) -> RuleIndex {
        let mut index = RuleIndex {
            general: Vec::new(),
            by_task: vec![Vec::new(); task_count],
        };
        for (i, rule) in rules.iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            match task_gate(&rule.when) {
                None => index.general.push(i),
                Some(tasks) => {
                    for t in tasks {
                        if let Some(list) = index.by_task.get_mut(t.0) {
                            if list.last() != Some(&i) {
                                list.push(i);
                            }
                        }
                    }
                }
            }
        }
        index
    }

    /// Indexes of the rules that can hold for a request of `task`, in
    /// policy order.
    pub fn candidates(&self, task: Option<TaskId>) -> impl Iterator<Item = usize> + '_ {
        let gated = task
            .and_then(|t| self.by_task.get(t.0))
            .map_or(&[][..], Vec::as_slice);
        Merge {
            a: &self.general,
            b: gated,
        }
        .map(|i| i as usize)
    }
}

/// The tasks a condition requires before anything else is evaluated.
fn task_gate(condition: &Condition) -> Option<&[TaskId]> {
    match condition {
        Condition::Task(tasks) => Some(tasks),
        Condition::All(all) => all.first().and_then(task_gate),
        _ => None,
    }
}

/// Two ascending lists merged into one ascending sequence.
struct Merge<'a> {
    a: &'a [u32],
    b: &'a [u32],
}

impl Iterator for Merge<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        let take_a = match (self.a.first(), self.b.first()) {
            (Some(x), Some(y)) => x <= y,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return None,
        };
        let list = if take_a { &mut self.a } else { &mut self.b };
        let (&head, rest) = list.split_first()?;
        *list = rest;
        Some(head)
    }
}
