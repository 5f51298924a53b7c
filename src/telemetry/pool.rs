//! Waiting for a pooled connection: how many callers wait now, how long each waited (a
//! distribution, [`super::latency`]), and how many gave up at the pool timeout. sqlx exposes
//! none of this, so every acquisition of the service goes through [`acquisition`]
//! (`db::Pool` is the one caller).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::Instant;

use serde::Serialize;

use super::latency::{Latency, Summary};

struct Waits {
    waiting: AtomicU64,
    timeouts: AtomicU64,
    wait: Mutex<Latency>,
}

static WAITS: LazyLock<Waits> =
    LazyLock::new(|| Waits { waiting: AtomicU64::new(0), timeouts: AtomicU64::new(0), wait: Mutex::default() });

/// The acquisition figures of this process.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitFigures {
    /// Callers waiting for a connection right now.
    pub waiters: u64,
    /// Acquisitions that found no connection within `DB_POOL_TIMEOUT` since start.
    pub acquire_timeouts: u64,
    /// How long acquisitions waited (failed ones, the timeouts, count as errors).
    pub acquire_wait: Summary,
}

/// Counts a waiter out when its acquisition ends, also when the caller is dropped mid-wait.
struct Waiting;

impl Waiting {
    fn start() -> Self {
        let now = WAITS.waiting.fetch_add(1, Ordering::Relaxed) + 1;
        metrics::gauge!("vibing2_pool_waiters").set(now as f64);
        Waiting
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let now = WAITS.waiting.fetch_sub(1, Ordering::Relaxed) - 1;
        metrics::gauge!("vibing2_pool_waiters").set(now as f64);
    }
}

/// Runs one acquisition of a pooled connection, counted and timed.
pub async fn acquisition<T>(acquire: impl Future<Output = sqlx::Result<T>>) -> sqlx::Result<T> {
    let started = Instant::now();
    let waiting = Waiting::start();
    let result = acquire.await;
    drop(waiting);
    let waited = started.elapsed();
    let timed_out = matches!(result, Err(sqlx::Error::PoolTimedOut));
    if timed_out {
        WAITS.timeouts.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("vibing2_pool_acquire_timeouts_total").increment(1);
    }
    WAITS.wait.lock().expect("pool wait lock").record(waited, result.is_err(), Instant::now());
    metrics::histogram!("vibing2_pool_acquire_wait_seconds").record(waited.as_secs_f64());
    result
}

pub fn figures() -> WaitFigures {
    WaitFigures {
        waiters: WAITS.waiting.load(Ordering::Relaxed),
        acquire_timeouts: WAITS.timeouts.load(Ordering::Relaxed),
        acquire_wait: WAITS.wait.lock().expect("pool wait lock").summary(Instant::now()),
    }
}
