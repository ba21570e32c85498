//! `top_share` windows in shared data, so that every Envoy worker's VM
//! reads and feeds one sliding window per classifier: the threshold is the
//! quantile of the last N scores of the whole proxy, not of one worker.
//! Updates are compare-and-swap; a request that loses the race a few times
//! in a row drops its score rather than wait.
//!
//! The key names the classifier and its artifact's digest: a new model
//! starts from its own training distribution, a policy reload with the same
//! model keeps the window.

use std::cell::RefCell;

use model_router_core::classifier::window::ScoreWindow;
use model_router_core::classifier::{Classifier, ClassifierId, ScoreQuantiles};
use model_router_core::policy::Policy;

use crate::host::Host;

const CAS_ATTEMPTS: usize = 4;

fn key(c: &Classifier) -> String {
    format!("model_router.score_window.{}.{:016x}", c.name, c.digest)
}

/// A window read from shared data, with its CAS token.
type Loaded = (ScoreWindow, Option<u32>);

/// The window in shared data and its CAS token, or a seeded one.
fn load(host: &impl Host, c: &Classifier) -> Loaded {
    let (bytes, cas) = host.get_shared_data(&key(c));
    let window = bytes
        .and_then(|b| ScoreWindow::from_bytes(&b, c.window))
        .unwrap_or_else(|| ScoreWindow::seeded(c.window, &c.score_quantiles));
    (window, cas)
}

/// One request's view of the shared windows: read at most once per
/// classifier, only when a `top_share` condition asks.
pub struct SharedWindows<'a, H: Host> {
    host: &'a H,
    policy: &'a Policy,
    loaded: RefCell<Vec<Option<Loaded>>>,
}

impl<'a, H: Host> SharedWindows<'a, H> {
    pub fn new(host: &'a H, policy: &'a Policy) -> SharedWindows<'a, H> {
        SharedWindows {
            host,
            policy,
            loaded: RefCell::new(vec![None; policy.classifiers.len()]),
        }
    }

    /// Adds the request's scores to the windows of classifiers that have one.
    pub fn record(&self, scores: &[(ClassifierId, f64)]) {
        for (id, score) in scores {
            if !self.policy.windowed.get(id.0).copied().unwrap_or(false) {
                continue;
            }
            let Some(c) = self.policy.classifiers.get(id.0) else {
                continue;
            };
            let mut cached = self
                .loaded
                .try_borrow_mut()
                .ok()
                .and_then(|mut l| l.get_mut(id.0).and_then(Option::take));
            for _ in 0..CAS_ATTEMPTS {
                let (mut window, cas) = cached.take().unwrap_or_else(|| load(self.host, c));
                window.push(*score);
                // false: another worker wrote first (or the write failed): reload and retry.
                if self
                    .host
                    .set_shared_data(&key(c), Some(&window.to_bytes()), cas)
                {
                    break;
                }
            }
        }
    }
}

impl<H: Host> ScoreQuantiles for SharedWindows<'_, H> {
    fn threshold(&self, classifier: &Classifier, id: ClassifierId, share: f64) -> f64 {
        let Ok(mut loaded) = self.loaded.try_borrow_mut() else {
            return classifier.training_threshold(share);
        };
        let Some(slot) = loaded.get_mut(id.0) else {
            return classifier.training_threshold(share);
        };
        slot.get_or_insert_with(|| load(self.host, classifier))
            .0
            .threshold(share)
    }
}
