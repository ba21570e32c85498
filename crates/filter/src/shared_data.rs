//! The cooldown table in proxy-wasm shared data: one value for the whole
//! Envoy process (every worker's VM of vm_id `model_router`), updated with
//! compare-and-swap so concurrent writers never lose a cooldown.

use model_router_core::cooldown::Cooldowns;

use crate::host::Host;

/// Shared-data key of the cooldown table.
const COOLDOWNS_KEY: &str = "model_router.cooldowns";
/// CAS retries before an update is given up (logged): writers are rare.
const CAS_ATTEMPTS: usize = 8;

/// The table as last written by any worker (empty when never written).
pub fn cooldowns(host: &impl Host) -> Cooldowns {
    read(host).0
}

fn read(host: &impl Host) -> (Cooldowns, Option<u32>) {
    match host.get_shared_data(COOLDOWNS_KEY) {
        (Some(bytes), cas) => (Cooldowns::decode(&bytes), cas),
        (None, cas) => (Cooldowns::new(), cas),
    }
}

/// Applies `change` to the shared table and writes it back, retrying when
/// another worker wrote in between. Returns what `change` returned and the
/// table as written; None when the update could not be written.
pub fn update<R>(
    host: &impl Host,
    mut change: impl FnMut(&mut Cooldowns) -> R,
) -> Option<(R, Cooldowns)> {
    for _ in 0..CAS_ATTEMPTS {
        let (mut table, cas) = read(host);
        let result = change(&mut table);
        // false: another worker wrote in between (or the write failed,
        // which the host logs): read again.
        if host.set_shared_data(COOLDOWNS_KEY, Some(&table.encode()), cas) {
            return Some((result, table));
        }
    }
    log::warn!("model-router: shared cooldowns kept changing; update dropped");
    None
}
