//! Weighted splits: a target whose requests go to one of several branches
//! (each a model, a chain or a tier) in proportion to their weights. With a
//! key (a header such as a session id) the branch is a stable hash of the
//! key's value, so one session always lands on one branch (its prompt cache
//! stays warm); without one, on the caller's random number (the core takes
//! randomness as an input and stays host-free).

use super::{ModelId, Target};

/// One branch of a split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branch {
    /// Label in metrics and the audit record (`name`, else derived from the target).
    pub name: String,
    /// Share of the traffic; 0 is a dark branch that receives nothing.
    pub weight: u32,
    /// Where the branch's requests go (never another split).
    pub target: Target,
}

/// A compiled split: branches whose weights sum to `total` (> 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub branches: Vec<Branch>,
    /// Lower-case header whose value keys the branch; None: random.
    pub key_header: Option<String>,
    pub total: u64,
    /// Every model of every branch, in first-use order (what the split can route to).
    pub models: Vec<ModelId>,
}

/// How a branch was chosen, for explain and the audit record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChosenBy {
    /// The hash of the key header's value.
    Key,
    /// No key configured, or the request lacks the header: the random input.
    Random,
}

impl Split {
    /// The branch for one request: by the stable hash of `key` (salted with
    /// `salt`, the rule's name, so two splits on the same header are
    /// independent) when there is one, else by `random`. Never picks a
    /// branch of weight 0.
    pub fn choose(&self, key: Option<&str>, salt: &str, random: u64) -> (usize, ChosenBy) {
        let (draw, by) = match key {
            Some(value) => (stable_hash(salt, value), ChosenBy::Key),
            None => (mix(random), ChosenBy::Random),
        };
        (self.branch_at(scale(draw, self.total)), by)
    }

    /// The branch owning point `point` of `0..total`.
    fn branch_at(&self, point: u64) -> usize {
        let mut end = 0u64;
        let mut last = 0;
        for (i, branch) in self.branches.iter().enumerate() {
            if branch.weight == 0 {
                continue;
            }
            end = end.saturating_add(u64::from(branch.weight));
            last = i;
            if point < end {
                return i;
            }
        }
        last
    }
}

/// FNV-1a over `salt`, a separator and `value`, then mixed: stable across
/// builds, platforms and Envoy workers (unlike std's randomly keyed hasher).
pub fn stable_hash(salt: &str, value: &str) -> u64 {
    let bytes = salt
        .bytes()
        .chain(std::iter::once(0xff))
        .chain(value.bytes());
    mix(bytes.fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    }))
}

/// splitmix64's finalizer: every input bit moves every output bit, so the
/// high bits `scale` reads are uniform even for short, similar keys.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `draw` scaled to `0..total` by multiply-shift (no modulo bias).
fn scale(draw: u64, total: u64) -> u64 {
    let wide = u128::from(draw).wrapping_mul(u128::from(total));
    u64::try_from(wide >> 64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(weights: &[u32]) -> Split {
        Split {
            branches: weights
                .iter()
                .enumerate()
                .map(|(i, w)| Branch {
                    name: format!("b{i}"),
                    weight: *w,
                    target: Target::Chain(vec![ModelId(i)]),
                })
                .collect(),
            key_header: None,
            total: weights.iter().map(|w| u64::from(*w)).sum(),
            models: (0..weights.len()).map(ModelId).collect(),
        }
    }

    #[test]
    fn random_draws_follow_the_weights() {
        let s = split(&[90, 10]);
        let mut counts = [0u32; 2];
        for i in 0..100_000u64 {
            counts[s.choose(None, "r", i).0] += 1;
        }
        // Sequential inputs are mixed: 10% ± 0.3% (about 3 sigma).
        assert!((9_700..=10_300).contains(&counts[1]), "{counts:?}");
    }

    #[test]
    fn keys_are_stable_and_spread() {
        let s = split(&[50, 50]);
        let first = s.choose(Some("session-42"), "rule", 1);
        for random in 0..50 {
            assert_eq!(s.choose(Some("session-42"), "rule", random), first);
        }
        assert_eq!(first.1, ChosenBy::Key);
        let ones = (0..10_000)
            .filter(|i| s.choose(Some(&format!("s{i}")), "rule", 0).0 == 1)
            .count();
        assert!((4_700..=5_300).contains(&ones), "{ones}");
        // The salt (the rule) makes splits on the same header independent.
        let agree = (0..10_000)
            .filter(|i| {
                let key = format!("s{i}");
                s.choose(Some(&key), "a", 0).0 == s.choose(Some(&key), "b", 0).0
            })
            .count();
        assert!((4_700..=5_300).contains(&agree), "{agree}");
    }

    const PINNED: u64 = 13_666_506_491_346_606_503;

    #[test]
    fn the_hash_is_fixed_across_builds() {
        // Pinned: a session must keep its branch when the router is upgraded.
        assert_eq!(stable_hash("rule", "session-42"), PINNED);
        assert_ne!(stable_hash("r", "abc"), stable_hash("r", "abd"));
        assert_ne!(stable_hash("ra", "bc"), stable_hash("r", "abc"));
    }

    #[test]
    fn dark_branches_get_nothing() {
        let s = split(&[0, 1, 0]);
        for i in 0..1_000u64 {
            assert_eq!(s.choose(None, "r", i).0, 1);
            assert_eq!(s.choose(Some(&i.to_string()), "r", 0).0, 1);
        }
        let s = split(&[3, 0]);
        assert!((0..1_000u64).all(|i| s.choose(None, "r", i).0 == 0));
        assert_eq!(s.choose(None, "r", u64::MAX).0, 0);
    }
}
