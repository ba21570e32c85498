//! `top_share` windows in proxy-wasm shared data, so that every Envoy
//! worker's VM reads and feeds one sliding window per classifier: the
//! threshold is the quantile of the last N scores of the whole proxy, not
//! of one worker. Updates are compare-and-swap; a request that loses the
//! race a few times in a row drops its score rather than wait.
//!
//! The key names the classifier and its artifact's digest: a new model
//! starts from its own training distribution, a policy reload with the same
//! model keeps the window.

use std::cell::RefCell;

use proxy_wasm::hostcalls;
use proxy_wasm::types::Status;

use crate::classifier::window::ScoreWindow;
use crate::classifier::{Classifier, ClassifierId, ScoreQuantiles};
use crate::policy::Policy;

const CAS_ATTEMPTS: usize = 4;

fn key(c: &Classifier) -> String {
    format!("model_router.score_window.{}.{:016x}", c.name, c.digest)
}

/// The window in shared data and its CAS token, or a seeded one.
fn load(c: &Classifier) -> Loaded {
    // Envoy answers Ok or NotFound (the SDK maps the latter to None).
    match hostcalls::get_shared_data(&key(c)) {
        Ok((Some(bytes), cas)) => match ScoreWindow::from_bytes(&bytes, c.window) {
            Some(w) => (w, cas),
            None => (ScoreWindow::seeded(c.window, &c.score_quantiles), cas),
        },
        Ok((None, cas)) => (ScoreWindow::seeded(c.window, &c.score_quantiles), cas),
        Err(status) => {
            log::warn!(
                "model-router: cannot read the score window of {}: {status:?}",
                c.name
            );
            (ScoreWindow::seeded(c.window, &c.score_quantiles), None)
        }
    }
}

/// A window read from shared data, with its CAS token.
type Loaded = (ScoreWindow, Option<u32>);

/// One request's view of the shared windows: read at most once per
/// classifier, only when a `top_share` condition asks.
pub struct SharedWindows<'a> {
    policy: &'a Policy,
    loaded: RefCell<Vec<Option<Loaded>>>,
}

impl<'a> SharedWindows<'a> {
    pub fn new(policy: &'a Policy) -> SharedWindows<'a> {
        SharedWindows {
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
                let (mut window, cas) = cached.take().unwrap_or_else(|| load(c));
                window.push(*score);
                match hostcalls::set_shared_data(&key(c), Some(&window.to_bytes()), cas) {
                    Ok(()) => break,
                    Err(Status::CasMismatch) => continue, // another worker wrote first: reload
                    Err(status) => {
                        log::warn!(
                            "model-router: cannot write the score window of {}: {status:?}",
                            c.name
                        );
                        break;
                    }
                }
            }
        }
    }
}

impl ScoreQuantiles for SharedWindows<'_> {
    fn threshold(&self, classifier: &Classifier, id: ClassifierId, share: f64) -> f64 {
        let Ok(mut loaded) = self.loaded.try_borrow_mut() else {
            return classifier.training_threshold(share);
        };
        let Some(slot) = loaded.get_mut(id.0) else {
            return classifier.training_threshold(share);
        };
        slot.get_or_insert_with(|| load(classifier))
            .0
            .threshold(share)
    }
}
