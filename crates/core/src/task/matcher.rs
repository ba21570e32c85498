//! All tasks of a policy as two automata: every keyword in one
//! Aho-Corasick automaton (`keywords`), every pattern in one multi-pattern
//! regex (what `regex::RegexSet` is, built directly to drop its literal
//! prefilter, whose extraction grows quadratically with the number of
//! patterns: 7 s to build 1,000 patterns instead of 0.1 s).
//! Each scanned text is read once by each, whatever the number of tasks;
//! the first task in policy order with a hit is the request's task.

use regex_automata::meta;
use regex_automata::nfa::thompson::WhichCaptures;
use regex_automata::{Input, MatchKind, PatternSet};
use regex_syntax::hir::Hir;

use super::keywords::Keywords;
use super::Scan;
use crate::ids::TaskId;
use crate::request::{RequestFacts, Role, Segment};

/// Bound on the lazy DFA cache of the pattern set: past it the engine
/// clears its cache (and, thrashing, falls back to a slower NFA simulation)
/// instead of growing, so a policy's patterns cannot grow the VM's memory
/// with the texts it reads.
const PATTERN_CACHE_BYTES: usize = 2 << 20;

#[derive(Debug, Clone, Default)]
pub struct TaskMatcher {
    /// The scope of each task, by task index.
    scopes: Vec<Scan>,
    keywords: Option<Keywords>,
    patterns: Option<Patterns>,
}

#[derive(Debug, Clone)]
struct Patterns {
    set: meta::Regex,
    /// Task index of each pattern of `set`.
    owner: Vec<u32>,
    /// The least task index with a pattern: hits after a keyword hit of an
    /// earlier task cannot change the answer.
    first_owner: u32,
}

/// One task's detectors: keywords as written, patterns parsed.
pub struct TaskSource<'a> {
    pub keywords: &'a [String],
    pub patterns: Vec<Hir>,
    pub scan: Scan,
}

#[derive(Debug)]
pub enum MatcherError {
    Keywords(aho_corasick::BuildError),
    Patterns(Box<meta::BuildError>),
}

impl std::fmt::Display for MatcherError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MatcherError::Keywords(e) => write!(f, "keywords: {e}"),
            MatcherError::Patterns(e) => write!(f, "patterns: {e}"),
        }
    }
}

impl TaskMatcher {
    /// Builds the matcher of `tasks`, in policy order. Patterns are parsed
    /// and checked one by one by the policy compiler, so that errors name
    /// their JSON path; `size_limit` bounds the set as a whole.
    pub fn new(tasks: &[TaskSource<'_>], size_limit: usize) -> Result<TaskMatcher, MatcherError> {
        let index = |i: usize| u32::try_from(i).unwrap_or(u32::MAX);
        let keywords = tasks
            .iter()
            .enumerate()
            .flat_map(|(i, t)| t.keywords.iter().map(move |k| (index(i), k.as_str())));
        let keywords = Keywords::new(keywords).map_err(MatcherError::Keywords)?;
        let mut hirs = Vec::new();
        let mut owner = Vec::new();
        for (i, t) in tasks.iter().enumerate() {
            for p in &t.patterns {
                hirs.push(p);
                owner.push(index(i));
            }
        }
        let patterns = match owner.first() {
            None => None,
            Some(&first_owner) => Some(Patterns {
                set: pattern_set(&hirs, size_limit).map_err(MatcherError::Patterns)?,
                owner,
                first_owner,
            }),
        };
        Ok(TaskMatcher {
            scopes: tasks.iter().map(|t| t.scan).collect(),
            keywords,
            patterns,
        })
    }

    /// The first task, in policy order, whose keywords or patterns match a
    /// text of its scope.
    pub fn first_match(&self, facts: &RequestFacts) -> Option<TaskId> {
        if self.scopes.is_empty() {
            return None;
        }
        let used = self.scopes.iter().fold(0u8, |m, &s| m | bit(s));
        let last_user = facts
            .content
            .iter()
            .filter(|s| s.role == Role::User)
            .map(|s| s.message)
            .max();
        let segments: Vec<(&Segment, u8)> = facts
            .content
            .iter()
            .map(|s| (s, scopes_of(s, last_user) & used))
            .filter(|&(_, mask)| mask != 0)
            .collect();
        let mut first = First(u32::MAX);
        if let Some(keywords) = &self.keywords {
            for &(segment, mask) in &segments {
                keywords.scan(&segment.text, |t| first.record(&self.scopes, t, mask));
                if first.0 == 0 {
                    return Some(TaskId(0)); // nothing comes earlier
                }
            }
        }
        if let Some(patterns) = &self.patterns {
            let mut hits = PatternSet::new(patterns.set.pattern_len());
            for &(segment, mask) in &segments {
                if patterns.first_owner >= first.0 {
                    break; // no pattern can name an earlier task
                }
                hits.clear();
                patterns
                    .set
                    .which_overlapping_matches(&Input::new(&segment.text), &mut hits);
                for p in hits.iter() {
                    if let Some(&task) = patterns.owner.get(p.as_usize()) {
                        first.record(&self.scopes, task, mask);
                    }
                }
            }
        }
        let first = first.0;
        (first != u32::MAX).then_some(TaskId(first as usize))
    }
}

/// `regex::RegexSet`'s configuration (every pattern that matches, no
/// captures, UTF-8 text) without the prefilter, and with a bounded cache.
fn pattern_set(hirs: &[&Hir], size_limit: usize) -> Result<meta::Regex, Box<meta::BuildError>> {
    let config = meta::Config::new()
        .match_kind(MatchKind::All)
        .utf8_empty(true)
        .which_captures(WhichCaptures::None)
        .auto_prefilter(false)
        // Engines for anchored and capturing searches, which a set never runs.
        .onepass(false)
        .backtrack(false)
        .nfa_size_limit(Some(size_limit))
        .hybrid_cache_capacity(PATTERN_CACHE_BYTES);
    meta::Builder::new()
        .configure(config)
        .build_many_from_hir(hirs)
        .map_err(Box::new)
}

/// The least task index with a hit in its scope so far (u32::MAX: none).
struct First(u32);

impl First {
    fn record(&mut self, scopes: &[Scan], task: u32, mask: u8) {
        let in_scope = scopes
            .get(task as usize)
            .is_some_and(|&s| bit(s) & mask != 0);
        if in_scope && task < self.0 {
            self.0 = task;
        }
    }
}

fn bit(scan: Scan) -> u8 {
    match scan {
        Scan::LastUser => 1,
        Scan::AllUser => 2,
        Scan::System => 4,
        Scan::All => 8,
    }
}

/// The scopes a segment belongs to, as a mask of `bit`s.
fn scopes_of(segment: &Segment, last_user: Option<usize>) -> u8 {
    let mut mask = bit(Scan::All);
    match segment.role {
        Role::User => {
            mask |= bit(Scan::AllUser);
            if Some(segment.message) == last_user {
                mask |= bit(Scan::LastUser);
            }
        }
        Role::System | Role::Developer => mask |= bit(Scan::System),
        _ => {}
    }
    mask
}
