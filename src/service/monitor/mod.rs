//! The query monitor: the views of `GET /api/monitor/queries`, the hardened explain, and the
//! task that keeps the slow-query history.

mod advisor;
mod plan;
mod statement;

use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

use crate::config::MonitorSettings;
use crate::db::monitor::{self, StatementOrder};
use crate::db::Pool;
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::telemetry::{exposition, queries, routes};

/// The views of `GET /api/monitor/queries?type=…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Slow,
    Usage,
    Unused,
    Duplicate,
    Invalid,
    Tables,
    Health,
    Stats,
    Advise,
}

impl View {
    pub const ALL: [(&'static str, View); 9] = [
        ("slow", View::Slow),
        ("usage", View::Usage),
        ("unused", View::Unused),
        ("duplicate", View::Duplicate),
        ("invalid", View::Invalid),
        ("tables", View::Tables),
        ("health", View::Health),
        ("stats", View::Stats),
        ("advise", View::Advise),
    ];

    /// The view a `type` names; 400 with the valid types otherwise.
    pub fn parse(name: Option<&str>) -> Result<View> {
        let found = name.and_then(|name| View::ALL.iter().find(|(known, _)| *known == name));
        found.map(|(_, view)| *view).ok_or_else(|| {
            let valid: Vec<&str> = View::ALL.iter().map(|(name, _)| *name).collect();
            Error::BadRequest(format!("type must be one of: {}", valid.join(", ")))
        })
    }
}

/// The knobs of the views, with the defaults the docs give.
#[derive(Debug, Clone, Copy)]
pub struct ViewOptions {
    /// Rows of each ranked list.
    pub limit: i64,
    /// `unused`: at most this many scans since the statistics were reset.
    pub max_scans: i64,
    /// `unused`: at least this large.
    pub min_bytes: i64,
    /// `tables`: a table with at least this many live rows whose scans are mostly sequential
    /// gets a missing-index hint.
    pub large_table_rows: i64,
    /// `health`: statements running at least this long are listed.
    pub long_running_ms: f64,
}

impl Default for ViewOptions {
    fn default() -> Self {
        ViewOptions {
            limit: 20,
            max_scans: 50,
            min_bytes: 1024 * 1024,
            large_table_rows: 10_000,
            long_running_ms: 5000.0,
        }
    }
}

/// A missing-index hint: past this share of sequential scans, a large table is read whole too often.
const SEQ_SCAN_HINT_RATIO: f64 = 0.5;

pub async fn view(state: &AppState, view: View, options: ViewOptions) -> Result<Value> {
    let pool = &state.pool;
    let answer = match view {
        View::Slow => slow(state, options.limit).await?,
        View::Usage => json!({ "indexes": monitor::index_use(pool).await? }),
        View::Unused => {
            let unused = monitor::unused_indexes(pool, options.max_scans, options.min_bytes).await?;
            let indexes: Vec<Value> = unused
                .into_iter()
                .map(|index| {
                    let suggestion = format!("DROP INDEX CONCURRENTLY {};", crate::db::quote_identifier(&index.index));
                    json!({ "index": index, "suggestion": suggestion })
                })
                .collect();
            json!({
                "statsReset": monitor::stats_reset(pool).await?,
                "maxScans": options.max_scans,
                "minBytes": options.min_bytes,
                "indexes": indexes,
            })
        }
        View::Duplicate => json!({ "indexes": monitor::duplicate_indexes(pool).await? }),
        View::Invalid => json!({ "indexes": monitor::invalid_indexes(pool).await? }),
        View::Tables => {
            let tables: Vec<Value> = monitor::tables(pool)
                .await?
                .into_iter()
                .map(|table| {
                    let hint = (table.live_rows >= options.large_table_rows
                        && table.seq_scan_ratio.is_some_and(|ratio| ratio > SEQ_SCAN_HINT_RATIO))
                    .then(|| {
                        format!(
                            "{} rows, {:.0}% of scans sequential: a query may be missing an index",
                            table.live_rows,
                            table.seq_scan_ratio.unwrap_or(0.0) * 100.0
                        )
                    });
                    json!({ "table": table, "missingIndexHint": hint })
                })
                .collect();
            json!({ "tables": tables })
        }
        View::Health => json!({
            "sequences": monitor::sequences(pool).await?,
            "wraparound": monitor::wraparound(pool).await?,
            "connections": monitor::connections(pool).await?,
            "longRunning": monitor::long_running(pool, options.long_running_ms).await?,
            "blocked": monitor::blocked(pool).await?,
        }),
        View::Advise => advisor::advise(state, options.limit).await?,
        View::Stats => json!({
            "queries": queries::registry().summaries(),
            "routes": routes::summaries(),
            "allRoutes": routes::overall(),
            "slow": queries::registry().slow_figures(),
            "recentSlowCalls": monitor::recent_slow_calls(pool, options.limit).await?,
        }),
    };
    Ok(answer)
}

/// The Prometheus exposition: what the recorder holds (requests and queries, recorded as
/// they happen) and the gauges read now: the pool, the cache per kind and tier, the jobs.
pub async fn metrics_text(state: &AppState) -> Result<String> {
    use crate::db::replicas::ReplicaState;
    let handle = exposition::install().ok_or_else(|| anyhow::anyhow!("another metrics recorder is installed"))?;
    let pool = &state.pool;
    let idle = pool.num_idle() as f64;
    metrics::gauge!("vibing2_pool_connections", "state" => "open").set(f64::from(pool.size()));
    metrics::gauge!("vibing2_pool_connections", "state" => "idle").set(idle);
    metrics::gauge!("vibing2_pool_connections", "state" => "in_use").set(f64::from(pool.size()) - idle);
    metrics::gauge!("vibing2_pool_max_connections").set(f64::from(state.settings.database.connection_limit));
    for kind in state.cache.status().await.kinds {
        let tiers = [("local", kind.local_hits, kind.local_misses), ("shared", kind.shared_hits, kind.shared_misses)];
        for (tier, hits, misses) in tiers {
            metrics::counter!("vibing2_cache_hits_total", "kind" => kind.kind, "tier" => tier).absolute(hits);
            metrics::counter!("vibing2_cache_misses_total", "kind" => kind.kind, "tier" => tier).absolute(misses);
        }
        metrics::counter!("vibing2_cache_shared_errors_total", "kind" => kind.kind).absolute(kind.shared_errors);
        metrics::counter!("vibing2_cache_loads_total", "kind" => kind.kind).absolute(kind.loads);
    }
    for replica in state.replicas.statuses() {
        let label = replica.url;
        let in_rotation = if replica.state == ReplicaState::InRotation { 1.0 } else { 0.0 };
        metrics::gauge!("vibing2_replica_in_rotation", "replica" => label.clone()).set(in_rotation);
        // As last measured: a replica that cannot be measured keeps its last figures.
        if let Some(lag) = replica.lag {
            metrics::gauge!("vibing2_replica_lag_seconds", "replica" => label.clone()).set(lag.as_secs_f64());
        }
        if let Some(bytes) = replica.lag_bytes {
            metrics::gauge!("vibing2_replica_lag_bytes", "replica" => label.clone()).set(bytes as f64);
        }
        metrics::counter!("vibing2_replica_reads_total", "replica" => label.clone()).absolute(replica.reads);
        metrics::counter!("vibing2_replica_fallbacks_total", "replica" => label).absolute(replica.fallbacks);
    }
    let now = crate::domain::UtcTime::now();
    for job in crate::db::maintenance::job_runs(pool).await? {
        let age = (now.0 - job.last_started_at.0).num_milliseconds() as f64 / 1000.0;
        let succeeded = if job.outcome == "ok" { 1.0 } else { 0.0 };
        metrics::gauge!("vibing2_job_last_run_age_seconds", "job" => job.job.clone()).set(age);
        metrics::gauge!("vibing2_job_last_run_duration_seconds", "job" => job.job.clone())
            .set(job.duration_ms / 1000.0);
        metrics::gauge!("vibing2_job_last_run_succeeded", "job" => job.job).set(succeeded);
    }
    Ok(handle.render())
}

/// `pg_stat_statements` by total and by mean time, beside this process's own figures; when
/// the extension cannot be read, why, and the process's figures alone.
async fn slow(state: &AppState, limit: i64) -> Result<Value> {
    let in_process = json!({
        "queries": queries::registry().summaries(),
        "slow": queries::registry().slow_figures(),
    });
    let by_total = monitor::top_statements(&state.pool, StatementOrder::TotalTime, limit, false).await;
    let by_mean = monitor::top_statements(&state.pool, StatementOrder::MeanTime, limit, false).await;
    let statements = match (by_total, by_mean) {
        (Ok(by_total), Ok(by_mean)) => json!({ "available": true, "byTotalTime": by_total, "byMeanTime": by_mean }),
        (Err(error), _) | (_, Err(error)) => match statements_unavailable(&error) {
            Some(reason) => json!({ "available": false, "reason": reason }),
            None => return Err(error.into()),
        },
    };
    Ok(json!({ "pgStatStatements": statements, "inProcess": in_process }))
}

/// Why `pg_stat_statements` cannot be read, when that is what the error says.
fn statements_unavailable(error: &sqlx::Error) -> Option<&'static str> {
    let code = error.as_database_error()?.code()?;
    match code.as_ref() {
        "42P01" => Some("pg_stat_statements is not installed in this database: CREATE EXTENSION pg_stat_statements"),
        "55000" => Some("pg_stat_statements is installed but not loaded: add it to shared_preload_libraries"),
        _ => None,
    }
}

/// Explains one read-only statement (see [`statement::check_statement`]) with its parameters
/// inlined.
pub async fn explain(state: &AppState, statement: &str, params: &[Value], analyze: bool) -> Result<Value> {
    let statement = statement::check_statement(statement, params)?;
    let timeout_ms = state.settings.monitor.explain_timeout_ms;
    let plan = monitor::explain(&state.pool, &statement, analyze, timeout_ms).await.map_err(|error| {
        match error.as_database_error() {
            // The statement's own failure: it writes (25006), does not parse, names nothing
            // that exists, or ran past the explain timeout.
            Some(db) => Error::Unprocessable(format!("the statement was refused: {}", db.message())),
            None => Error::from(error),
        }
    })?;
    let summary = plan::summarize(&plan);
    Ok(json!({ "plan": plan, "summary": summary, "analyzed": analyze }))
}

/// Writes the slow calls `telemetry::queries` hands over to `QueryPerformance`, in batches,
/// keeping the newest `monitor.slow_history_rows`, until `stop` turns true. Off the request
/// path: a full queue drops calls (counted in the stats) rather than slow a request down.
pub async fn keep_slow_history(pool: Pool, settings: MonitorSettings, mut stop: watch::Receiver<bool>) {
    const QUEUE: usize = 1024;
    const BATCH: usize = 256;
    let (history, mut calls) = mpsc::channel(QUEUE);
    if !queries::registry().send_slow_calls_to(history) {
        tracing::warn!("another slow-query history already runs in this process");
        return;
    }
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            received = calls.recv_many(&mut batch, BATCH) => if received == 0 { return },
            _ = stop.changed() => return,
        }
        let queries: Vec<String> = batch.iter().map(|call: &queries::SlowCall| call.name.to_owned()).collect();
        let durations: Vec<f64> = batch.iter().map(|call| call.duration.as_secs_f64() * 1000.0).collect();
        let rows: Vec<i64> = batch.iter().map(|call| i64::try_from(call.rows).unwrap_or(i64::MAX)).collect();
        let failed: Vec<bool> = batch.iter().map(|call| call.failed).collect();
        let keep = settings.slow_history_rows;
        if let Err(error) = monitor::append_slow_calls(&pool, &queries, &durations, &rows, &failed, keep).await {
            tracing::warn!(%error, calls = batch.len(), "the slow-query history could not be written");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        batch.clear();
    }
}
