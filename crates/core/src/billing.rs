//! What a finished response is billed as: the provider's reported usage,
//! or an estimate from the text the router counted, or nothing.

use crate::actions::served_model;
use crate::cost::Usage;
use crate::decision::Decision;
use crate::metrics::UsageSource;
use crate::usage::ReadUsage;

/// The usage a response is billed with and where it came from. `attempts`
/// is Envoy's attempt count for the answer (1 without retries); `read` is
/// what the usage reader saw, None when the response was not read (an error
/// status, or no response at all).
pub fn billed_usage(
    decision: &Decision,
    attempts: u32,
    read: Option<ReadUsage>,
) -> (Option<Usage>, UsageSource) {
    match read {
        Some(ReadUsage::Reported(usage)) => (Some(usage), UsageSource::Reported),
        Some(ReadUsage::CountedText { completion_tokens }) => {
            // The prompt count is our own exact count for the serving model.
            let prompt_tokens = served_model(decision, attempts)
                .and_then(|id| decision.prompt_tokens_for(id))
                .unwrap_or(0);
            let usage = Usage {
                prompt_tokens,
                completion_tokens,
                ..Usage::default()
            };
            (Some(usage), UsageSource::Estimated)
        }
        Some(ReadUsage::Missing) | None => (None, UsageSource::Missing),
    }
}
