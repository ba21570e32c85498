//! The cooldown table in proxy-wasm shared data: one value for the whole
//! Envoy process (every worker's VM of vm_id `model_router`), updated with
//! compare-and-swap so concurrent writers never lose a cooldown.

use proxy_wasm::hostcalls;
use proxy_wasm::types::Status;

use crate::cooldown::Cooldowns;

/// Shared-data key of the cooldown table.
const COOLDOWNS_KEY: &str = "model_router.cooldowns";
/// CAS retries before an update is given up (logged): writers are rare.
const CAS_ATTEMPTS: usize = 8;

/// The table as last written by any worker (empty when never written).
pub fn cooldowns() -> Cooldowns {
    read().0
}

fn read() -> (Cooldowns, Option<u32>) {
    match hostcalls::get_shared_data(COOLDOWNS_KEY) {
        Ok((Some(bytes), cas)) => (Cooldowns::decode(&bytes), cas),
        Ok((None, cas)) => (Cooldowns::new(), cas),
        Err(status) => {
            log::warn!("model-router: cannot read shared cooldowns: {status:?}");
            (Cooldowns::new(), None)
        }
    }
}

/// Applies `change` to the shared table and writes it back, retrying when
/// another worker wrote in between. Returns what `change` returned and the
/// table as written; None when the update could not be written.
pub fn update<R>(mut change: impl FnMut(&mut Cooldowns) -> R) -> Option<(R, Cooldowns)> {
    for _ in 0..CAS_ATTEMPTS {
        let (mut table, cas) = read();
        let result = change(&mut table);
        match hostcalls::set_shared_data(COOLDOWNS_KEY, Some(&table.encode()), cas) {
            Ok(()) => return Some((result, table)),
            Err(Status::CasMismatch) => continue,
            Err(status) => {
                log::warn!("model-router: cannot write shared cooldowns: {status:?}");
                return None;
            }
        }
    }
    log::warn!("model-router: shared cooldowns kept changing; update dropped");
    None
}
