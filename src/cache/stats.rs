//! Cache counters, per kind of data, kept in memory and read by the health endpoint.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;
use utoipa::ToSchema;

use super::Kind;

#[derive(Default)]
pub struct KindCounters {
    pub requests: AtomicU64,
    pub local_misses: AtomicU64,
    pub shared_hits: AtomicU64,
    pub shared_misses: AtomicU64,
    pub shared_errors: AtomicU64,
    pub loads: AtomicU64,
    pub load_errors: AtomicU64,
    pub load_micros: AtomicU64,
    /// Loaded values stored in Redis after their responses.
    pub shared_stores: AtomicU64,
    /// Stores skipped because too many were in flight.
    pub shared_stores_skipped: AtomicU64,
}

#[derive(Default)]
pub struct Counters {
    kinds: [KindCounters; Kind::ALL.len()],
    pub reconnects: AtomicU64,
    /// Invalidations Redis refused that are waiting to be sent again.
    pub pending_invalidations: AtomicU64,
}

impl Counters {
    pub fn kind(&self, kind: Kind) -> &KindCounters {
        &self.kinds[kind as usize]
    }

    pub fn snapshot(&self) -> Vec<KindStats> {
        Kind::ALL
            .iter()
            .map(|kind| {
                let c = self.kind(*kind);
                let requests = c.requests.load(Relaxed);
                let local_misses = c.local_misses.load(Relaxed);
                let shared_hits = c.shared_hits.load(Relaxed);
                let loads = c.loads.load(Relaxed);
                let ratio = |part: u64, whole: u64| if whole == 0 { 0.0 } else { part as f64 / whole as f64 };
                KindStats {
                    kind: kind.name(),
                    requests,
                    local_hits: requests.saturating_sub(local_misses),
                    local_misses,
                    local_hit_rate: ratio(requests.saturating_sub(local_misses), requests),
                    shared_hits,
                    shared_misses: c.shared_misses.load(Relaxed),
                    shared_hit_rate: ratio(shared_hits, local_misses),
                    shared_errors: c.shared_errors.load(Relaxed),
                    shared_stores: c.shared_stores.load(Relaxed),
                    shared_stores_skipped: c.shared_stores_skipped.load(Relaxed),
                    hit_rate: ratio(requests.saturating_sub(loads), requests),
                    loads,
                    load_errors: c.load_errors.load(Relaxed),
                    mean_load_ms: ratio(c.load_micros.load(Relaxed), loads) / 1000.0,
                }
            })
            .collect()
    }
}

/// One kind's figures. A request served by a load already running for another request
/// counts as a local hit: it did not load.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KindStats {
    pub kind: &'static str,
    pub requests: u64,
    pub local_hits: u64,
    pub local_misses: u64,
    pub local_hit_rate: f64,
    pub shared_hits: u64,
    pub shared_misses: u64,
    pub shared_hit_rate: f64,
    pub shared_errors: u64,
    /// Loaded values stored in Redis, each after its response.
    pub shared_stores: u64,
    /// Stores skipped because too many were in flight (the next miss loads again).
    pub shared_stores_skipped: u64,
    /// Requests answered without loading from the database.
    pub hit_rate: f64,
    pub loads: u64,
    pub load_errors: u64,
    pub mean_load_ms: f64,
}
