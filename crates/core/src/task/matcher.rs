//! All tasks of a policy as two automata: every keyword in one
//! Aho-Corasick automaton (`keywords`), every pattern in one multi-pattern
//! regex. Each scanned text is read once by each, whatever the number of
//! tasks; the first task in policy order with a hit is the request's task.
//!
//! The patterns are one Thompson NFA searched by a lazy DFA, falling back
//! to the PikeVM where the lazy DFA gives up: what `regex::RegexSet` runs
//! for `matches`, built directly because the set only ever asks which
//! patterns match anywhere. That skips what `RegexSet` (a `meta::Regex`)
//! would also build for searches a set never runs: the literal prefilter,
//! whose extraction grows quadratically with the number of patterns (7 s
//! to build 1,000 patterns instead of 0.1 s), and the reverse NFA (a
//! third of the compile time).

use regex_automata::hybrid::dfa::{Cache as DfaCache, Config as DfaConfig, DFA};
use regex_automata::nfa::thompson::pikevm::{Cache as PikeCache, Config as PikeConfig, PikeVM};
use regex_automata::nfa::thompson::{self, WhichCaptures, NFA};
use regex_automata::util::pool::Pool;
use regex_automata::{Input, MatchKind, PatternSet};
use regex_syntax::hir::Hir;

use super::keywords::{Keywords, TooManyKeywordBytes};
use super::Scan;
use crate::ids::TaskId;
use crate::request::{RequestFacts, Segment};

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

struct Patterns {
    /// None when the lazy DFA cannot be built (its minimum cache would
    /// exceed PATTERN_CACHE_BYTES): the PikeVM then answers alone.
    dfa: Option<DFA>,
    pikevm: PikeVM,
    /// Search caches, one per thread that searches (the VM has one).
    caches: Pool<Option<PatternCaches>>,
    /// Task index of each pattern of the set.
    owner: Vec<u32>,
    /// The least task index with a pattern: hits after a keyword hit of an
    /// earlier task cannot change the answer.
    first_owner: u32,
}

struct PatternCaches {
    dfa: Option<DfaCache>,
    pikevm: PikeCache,
}

fn no_caches() -> Option<PatternCaches> {
    None
}

impl Clone for Patterns {
    fn clone(&self) -> Patterns {
        Patterns {
            dfa: self.dfa.clone(),
            pikevm: self.pikevm.clone(),
            caches: Pool::new(no_caches),
            owner: self.owner.clone(),
            first_owner: self.first_owner,
        }
    }
}

impl std::fmt::Debug for Patterns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Patterns")
            .field("patterns", &self.owner.len())
            .field("lazy_dfa", &self.dfa.is_some())
            .finish()
    }
}

/// One task's detectors: keywords as written, patterns parsed.
pub struct TaskSource<'a> {
    pub keywords: &'a [String],
    pub patterns: Vec<Hir>,
    pub scan: Scan,
}

#[derive(Debug)]
pub enum MatcherError {
    Keywords(TooManyKeywordBytes),
    Patterns(Box<thompson::BuildError>),
    PatternEngine(Box<thompson::BuildError>),
}

impl std::fmt::Display for MatcherError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MatcherError::Keywords(e) => write!(f, "keywords: {e}"),
            MatcherError::Patterns(e) | MatcherError::PatternEngine(e) => {
                write!(f, "patterns: {e}")
            }
        }
    }
}

impl TaskMatcher {
    /// Builds the matcher of `tasks`, in policy order. Patterns are parsed
    /// by the policy compiler, so that syntax errors name their JSON path;
    /// `size_limit` bounds the pattern set's NFA as a whole. The keyword
    /// automaton is built on first use, or by `prepare`.
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
            Some(&first_owner) => Some(Patterns::new(&hirs, size_limit, owner, first_owner)?),
        };
        Ok(TaskMatcher {
            scopes: tasks.iter().map(|t| t.scan).collect(),
            keywords,
            patterns,
        })
    }

    /// Builds what is otherwise built on the first request (the keyword
    /// automaton), so that the first request does not pay for it.
    pub fn prepare(&self) {
        if let Some(keywords) = &self.keywords {
            keywords.prepare();
        }
    }

    /// The first task, in policy order, whose keywords or patterns match a
    /// text of its scope.
    pub fn first_match(&self, facts: &RequestFacts) -> Option<TaskId> {
        if self.scopes.is_empty() {
            return None;
        }
        let used = self.scopes.iter().fold(0u8, |m, &s| m | bit(s));
        let last_user = facts.last_user_message();
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
            let mut hits = PatternSet::new(patterns.owner.len());
            for &(segment, mask) in &segments {
                if patterns.first_owner >= first.0 {
                    break; // no pattern can name an earlier task
                }
                hits.clear();
                patterns.which_match(&segment.text, &mut hits);
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

impl Patterns {
    /// `regex::RegexSet`'s engines for `matches` (every pattern that
    /// matches, no captures, UTF-8 text), with a bounded cache.
    fn new(
        hirs: &[&Hir],
        size_limit: usize,
        owner: Vec<u32>,
        first_owner: u32,
    ) -> Result<Patterns, MatcherError> {
        let nfa = pattern_nfa(hirs, size_limit).map_err(MatcherError::Patterns)?;
        let pikevm = PikeVM::builder()
            .configure(PikeConfig::new().match_kind(MatchKind::All))
            .build_from_nfa(nfa.clone())
            .map_err(|e| MatcherError::PatternEngine(Box::new(e)))?;
        // The configuration `meta::Regex` gives its forward lazy DFA.
        let dfa = DFA::builder()
            .configure(
                DfaConfig::new()
                    .match_kind(MatchKind::All)
                    .byte_classes(true)
                    .unicode_word_boundary(true)
                    .cache_capacity(PATTERN_CACHE_BYTES)
                    .skip_cache_capacity_check(false)
                    .minimum_cache_clear_count(Some(3))
                    .minimum_bytes_per_state(Some(10)),
            )
            .build_from_nfa(nfa)
            .ok();
        Ok(Patterns {
            dfa,
            pikevm,
            caches: Pool::new(no_caches),
            owner,
            first_owner,
        })
    }

    /// Adds to `hits` every pattern that matches somewhere in `text`: the
    /// lazy DFA, or the PikeVM where it gives up (as `meta::Regex` does).
    fn which_match(&self, text: &str, hits: &mut PatternSet) {
        let mut guard = self.caches.get();
        let caches = guard.get_or_insert_with(|| PatternCaches {
            dfa: self.dfa.as_ref().map(DFA::create_cache),
            pikevm: self.pikevm.create_cache(),
        });
        let input = Input::new(text);
        if let (Some(dfa), Some(cache)) = (&self.dfa, caches.dfa.as_mut()) {
            if dfa
                .try_which_overlapping_matches(cache, &input, hits)
                .is_ok()
            {
                return;
            }
        }
        self.pikevm
            .which_overlapping_matches(&mut caches.pikevm, &input, hits);
    }
}

/// The NFA of every pattern, as `regex::RegexSet` compiles it (UTF-8, no
/// captures, unanchored); `size_limit` bounds its states' memory.
fn pattern_nfa(hirs: &[&Hir], size_limit: usize) -> Result<NFA, Box<thompson::BuildError>> {
    thompson::Compiler::new()
        .configure(
            thompson::Config::new()
                .utf8(true)
                .which_captures(WhichCaptures::None)
                .shrink(false)
                .nfa_size_limit(Some(size_limit)),
        )
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
    [Scan::LastUser, Scan::AllUser, Scan::System, Scan::All]
        .into_iter()
        .filter(|s| s.covers(segment, last_user))
        .fold(0, |mask, s| mask | bit(s))
}
