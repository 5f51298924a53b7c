//! Every database call of the service runs under a stable name (`projects.get`) through
//! [`timed`]: one distribution per name ([`super::latency`]), and a slow call (past the
//! threshold, `monitor.slow_query_ms`) is logged and handed to the slow-query history, which a
//! task writes to `QueryPerformance` off the request path.
//!
//! The figures are per process, as the pool is.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::postgres::PgQueryResult;
use tokio::sync::mpsc;

use super::latency::{Latency, Summary};

/// A slow call, for the history.
#[derive(Debug, Clone)]
pub struct SlowCall {
    pub name: &'static str,
    pub duration: Duration,
    pub rows: u64,
    pub failed: bool,
}

/// The distributions by query name, the slow threshold, and where slow calls go.
pub struct Registry {
    names: RwLock<BTreeMap<&'static str, Arc<Mutex<Latency>>>>,
    slow_threshold_micros: AtomicU64,
    /// Every call since start, and the slow ones among them.
    calls: AtomicU64,
    slow_calls: AtomicU64,
    /// Slow calls the history's queue had no room for.
    slow_dropped: AtomicU64,
    history: OnceLock<mpsc::Sender<SlowCall>>,
    epoch: Instant,
}

/// The seed's threshold: a call slower than a second is slow.
pub const DEFAULT_SLOW_THRESHOLD: Duration = Duration::from_secs(1);

static QUERIES: LazyLock<Registry> = LazyLock::new(|| Registry {
    names: RwLock::default(),
    slow_threshold_micros: AtomicU64::new(DEFAULT_SLOW_THRESHOLD.as_micros() as u64),
    calls: AtomicU64::new(0),
    slow_calls: AtomicU64::new(0),
    slow_dropped: AtomicU64::new(0),
    history: OnceLock::new(),
    epoch: Instant::now(),
});

/// This process's registry.
pub fn registry() -> &'static Registry {
    &QUERIES
}

/// How many rows a call's result holds (or a write touched), for the slow-call log.
pub trait Rows {
    fn rows(&self) -> u64;
}

impl<T> Rows for Vec<T> {
    fn rows(&self) -> u64 {
        self.len() as u64
    }
}

impl<T> Rows for Option<T> {
    fn rows(&self) -> u64 {
        u64::from(self.is_some())
    }
}

impl Rows for PgQueryResult {
    fn rows(&self) -> u64 {
        self.rows_affected()
    }
}

/// Results that are one row (or a value computed from one).
macro_rules! one_row {
    ($($type:ty),* $(,)?) => {
        $(impl $crate::telemetry::queries::Rows for $type {
            fn rows(&self) -> u64 {
                1
            }
        })*
    };
}

pub(crate) use one_row;

one_row!((), bool, i32, i64, f64, String, (i64, i64));

/// Runs `call` as the query `name`, recording its duration and outcome.
pub async fn timed<T: Rows, F: Future<Output = sqlx::Result<T>>>(name: &'static str, call: F) -> sqlx::Result<T> {
    let started = Instant::now();
    let result = call.await;
    let elapsed = started.elapsed();
    let rows = result.as_ref().map_or(0, Rows::rows);
    registry().record(name, elapsed, result.is_err(), rows);
    result
}

/// The figures of one query name.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamedSummary {
    pub name: String,
    #[serde(flatten)]
    pub summary: Summary,
}

/// The slow-call figures: the seed's KPI is a slow rate under 1%.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SlowFigures {
    pub threshold_ms: f64,
    pub slow_calls: u64,
    pub calls: u64,
    /// `slow_calls / calls`, 0 before any call.
    pub slow_rate: f64,
    pub history_dropped: u64,
}

impl Registry {
    pub fn record(&self, name: &'static str, elapsed: Duration, failed: bool, rows: u64) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let latency = self.latency(name);
        latency.lock().expect("latency lock").record(elapsed, failed, now);
        metrics::histogram!("vibing2_db_query_duration_seconds", "query" => name).record(elapsed.as_secs_f64());
        if failed {
            metrics::counter!("vibing2_db_query_errors_total", "query" => name).increment(1);
        }
        if elapsed.as_micros() as u64 >= self.slow_threshold_micros.load(Ordering::Relaxed) {
            self.slow_calls.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("vibing2_db_slow_queries_total", "query" => name).increment(1);
            // The parameters are never logged: they may hold e-mails, tokens or content.
            tracing::warn!(query = name, duration_ms = elapsed.as_secs_f64() * 1000.0, rows, failed, "slow query");
            if let Some(history) = self.history.get() {
                let call = SlowCall { name, duration: elapsed, rows, failed };
                if history.try_send(call).is_err() {
                    self.slow_dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    fn latency(&self, name: &'static str) -> Arc<Mutex<Latency>> {
        if let Some(latency) = self.names.read().expect("names lock").get(name) {
            return latency.clone();
        }
        let mut names = self.names.write().expect("names lock");
        names.entry(name).or_insert_with(|| Arc::new(Mutex::new(Latency::new(self.epoch)))).clone()
    }

    /// Calls that found no free pooled connection within `DB_POOL_TIMEOUT`, since start.
    /// Calls at least this long are slow.
    pub fn slow_threshold(&self) -> Duration {
        Duration::from_micros(self.slow_threshold_micros.load(Ordering::Relaxed))
    }

    pub fn set_slow_threshold(&self, threshold: Duration) {
        self.slow_threshold_micros.store(threshold.as_micros() as u64, Ordering::Relaxed);
    }

    /// Where slow calls go from now on; the first caller wins (one history per process).
    pub fn send_slow_calls_to(&self, history: mpsc::Sender<SlowCall>) -> bool {
        self.history.set(history).is_ok()
    }

    /// Every name called so far, by name.
    pub fn summaries(&self) -> Vec<NamedSummary> {
        let now = Instant::now();
        let names = self.names.read().expect("names lock");
        names
            .iter()
            .map(|(name, latency)| NamedSummary {
                name: (*name).to_owned(),
                summary: latency.lock().expect("latency lock").summary(now),
            })
            .collect()
    }

    pub fn slow_figures(&self) -> SlowFigures {
        let calls = self.calls.load(Ordering::Relaxed);
        let slow_calls = self.slow_calls.load(Ordering::Relaxed);
        SlowFigures {
            threshold_ms: self.slow_threshold_micros.load(Ordering::Relaxed) as f64 / 1000.0,
            slow_calls,
            calls,
            slow_rate: if calls == 0 { 0.0 } else { slow_calls as f64 / calls as f64 },
            history_dropped: self.slow_dropped.load(Ordering::Relaxed),
        }
    }
}
