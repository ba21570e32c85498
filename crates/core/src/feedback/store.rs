//! The bounded store of recent requests' attributions, as plain text the
//! filter keeps in proxy-wasm shared data (shared by every worker of Envoy).
//!
//! Shared data has no delete and no iteration, so a key per request id
//! would grow forever. Instead the store is `BUCKETS` keys, each a small
//! ring of the `WIDTH` most recent requests whose id hashes to it, one line
//! per request (`id \t attribution-json`), oldest first. Inserting into a
//! full ring overwrites its oldest line, and that is counted. Capacity is
//! `BUCKETS × WIDTH`; with a uniform hash the requests that fall out are,
//! to within one ring's spread, the oldest ones. Writers use shared data's
//! compare-and-swap, so two workers never lose each other's inserts.

use crate::feedback::Attribution;

/// Number of shared-data keys.
pub const BUCKETS: u32 = 256;
/// Requests kept per key.
pub const WIDTH: usize = 16;
/// Prefix of the shared-data keys.
pub const KEY_PREFIX: &str = "model_router.feedback.";

/// The shared-data key holding `request_id` (FNV-1a: the same in every worker).
pub fn key(request_id: &str) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in request_id.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    format!("{KEY_PREFIX}{}", hash.checked_rem(BUCKETS).unwrap_or(0))
}

/// Whether `request_id` can be stored (its line separators cannot occur in it).
pub fn storable(request_id: &str) -> bool {
    !request_id.is_empty()
        && request_id.len() <= crate::feedback::MAX_ID_LEN
        && !request_id.contains(['\t', '\n'])
}

/// `ring` with `request_id` appended; `true` when the oldest was overwritten.
pub fn insert(ring: &str, request_id: &str, attribution: &Attribution) -> (String, bool) {
    let mut lines: Vec<&str> = ring
        .lines()
        .filter(|line| line.split('\t').next() != Some(request_id))
        .collect();
    let evicted = lines.len() >= WIDTH;
    let keep = lines.len().saturating_sub(WIDTH.saturating_sub(1));
    lines.drain(..keep.min(lines.len()));
    let mut out = String::with_capacity(ring.len().saturating_add(128));
    for line in lines {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(request_id);
    out.push('\t');
    out.push_str(&attribution.to_json());
    out.push('\n');
    (out, evicted)
}

/// The attribution stored for `request_id` in `ring`, if it is still there.
pub fn find(ring: &str, request_id: &str) -> Option<Attribution> {
    ring.lines()
        .rev()
        .filter_map(|line| line.split_once('\t'))
        .find(|(id, _)| *id == request_id)
        .and_then(|(_, json)| Attribution::from_audit(json))
}
