//! Liveness (`/api/health`) and the database health check (`/api/health/database`).
//! The response shapes are documented in docs/operations.md.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::extract::{MaybeAdmin, Query};
use crate::db::catalog::{TableStatsRow, ViewRefreshRow};
use crate::db::maintenance::JobRunRow;
use crate::db::migrate;
use crate::db::replicas::{ReplicaState, ReplicaStatus};
use crate::domain::UtcTime;
use crate::error::{ErrorResponse, Result};
use crate::service::health;
use crate::state::AppState;
use crate::telemetry::latency::Summary;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(liveness)).routes(routes!(database))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Liveness {
    status: &'static str,
    version: &'static str,
    uptime_seconds: u64,
}

/// Liveness: the process is up. Checks no dependency.
#[utoipa::path(get, path = "/api/health", tag = "health", responses((status = 200, body = Liveness)))]
async fn liveness(State(state): State<AppState>) -> Json<Liveness> {
    Json(Liveness {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.started_at.elapsed().as_secs(),
    })
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct DatabaseQuery {
    /// Adds the schema version, table sizes, view refresh times, job runs and the runtime
    /// switches; needs the admin
    /// token (401 without it, 404 when none is configured).
    #[serde(default)]
    detailed: bool,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct DatabaseHealth {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    database: DatabaseCheck,
    pool: PoolStats,
    cache: crate::cache::CacheStatus,
    /// With `detailed`: the runtime switches now, and their last change (time, source and
    /// what it changed); also while the database is down.
    #[serde(skip_serializing_if = "Option::is_none")]
    switches: Option<crate::switches::Report>,
    /// With `detailed`: each read replica (`DATABASE_REPLICA_URLS`), in the order configured;
    /// also while the primary is down.
    #[serde(skip_serializing_if = "Option::is_none")]
    replicas: Option<Vec<ReplicaHealth>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Details>,
}

/// A read replica as the last probe found it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ReplicaHealth {
    /// The replica's URL, its password replaced by `***`.
    url: String,
    /// `in_rotation` (reads go to it), `lagging` (reachable, but its replay is behind the
    /// primary by more than `database.replica_max_lag_ms`) or `down` (unreachable, not a
    /// standby, or not probed yet).
    state: &'static str,
    /// How long ago the primary first reached a WAL position this replica has not replayed
    /// (0 when it has replayed all); null while it cannot be measured.
    lag_ms: Option<f64>,
    /// The primary's WAL position less the replica's replay position.
    lag_bytes: Option<i64>,
    /// Why it is down.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// Milliseconds since the last probe.
    checked_ms_ago: Option<f64>,
    /// Reads routed to it since the instance started.
    reads: u64,
    /// Of those, the ones it failed that ran again on the primary.
    fallbacks: u64,
}

impl From<ReplicaStatus> for ReplicaHealth {
    fn from(status: ReplicaStatus) -> Self {
        ReplicaHealth {
            url: status.url,
            state: match status.state {
                ReplicaState::InRotation => "in_rotation",
                ReplicaState::Lagging => "lagging",
                ReplicaState::Down => "down",
            },
            lag_ms: status.lag.map(millis),
            lag_bytes: status.lag_bytes,
            error: status.error,
            checked_ms_ago: status.checked.map(|checked| millis(checked.elapsed())),
            reads: status.reads,
            fallbacks: status.fallbacks,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct DatabaseCheck {
    status: &'static str,
    response_time_ms: f64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct PoolStats {
    size: u32,
    idle: usize,
    in_use: usize,
    max: u32,
    /// Connections that may be checked out at once: the pool-size switch, at most `max`.
    limit: u32,
    utilization: f64,
    /// Callers waiting for a connection now.
    waiters: u64,
    /// Acquisitions that found no free connection within `DB_POOL_TIMEOUT` since the process
    /// started (each answered 503).
    acquire_timeouts: u64,
    /// How long acquisitions waited for a connection (timeouts count as errors).
    acquire_wait: Summary,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Details {
    schema_version: Option<i64>,
    latest_schema_version: i64,
    tables: Vec<TableStats>,
    materialized_views: Vec<ViewRefresh>,
    /// Each background job's last run, duration and outcome.
    jobs: Vec<JobRun>,
    /// Each index an operator ever switched, with its newest switch: `disabled` ones are
    /// dropped, and `migrate` leaves them so.
    index_switches: Vec<IndexSwitch>,
}

/// The newest `vibing2 index disable|enable` of an index.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct IndexSwitch {
    name: String,
    /// `disabled` or `enabled`.
    state: String,
    /// When, in UTC (`YYYY-MM-DD HH:MM:SS`).
    changed_at: String,
    /// The operator's login, or the database role.
    by: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct TableStats {
    name: String,
    /// `table` or `materialized_view`.
    kind: &'static str,
    /// The planner's estimate (`pg_class.reltuples`); null before the first ANALYZE.
    row_estimate: Option<i64>,
    /// Heap, indexes and TOAST together.
    total_bytes: i64,
}

impl From<TableStatsRow> for TableStats {
    fn from(row: TableStatsRow) -> Self {
        TableStats {
            name: row.name,
            kind: if row.is_materialized_view { "materialized_view" } else { "table" },
            row_estimate: row.row_estimate,
            total_bytes: row.total_bytes,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ViewRefresh {
    name: String,
    populated: bool,
    last_refresh_at: Option<UtcTime>,
    last_refresh_ms: Option<f64>,
}

impl From<ViewRefreshRow> for ViewRefresh {
    fn from(row: ViewRefreshRow) -> Self {
        ViewRefresh {
            name: row.name,
            populated: row.populated,
            last_refresh_at: row.last_refresh_at,
            last_refresh_ms: row.last_refresh_ms,
        }
    }
}

/// The last run of a background job.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct JobRun {
    job: String,
    last_started_at: UtcTime,
    last_succeeded_at: Option<UtcTime>,
    duration_ms: f64,
    outcome: String,
    detail: Option<String>,
    runs: i64,
}

impl From<JobRunRow> for JobRun {
    fn from(row: JobRunRow) -> Self {
        JobRun {
            job: row.job,
            last_started_at: row.last_started_at,
            last_succeeded_at: row.last_succeeded_at,
            duration_ms: row.duration_ms,
            outcome: row.outcome,
            detail: row.detail,
            runs: row.runs,
        }
    }
}

/// Readiness: 200 only when the database answers, 503 with the reason otherwise.
#[utoipa::path(get, path = "/api/health/database", tag = "health", params(DatabaseQuery),
    security((), ("admin" = [])),
    responses((status = 200, body = DatabaseHealth), (status = 401, body = ErrorResponse),
              (status = 404, description = "detailed, while no ADMIN_TOKEN is configured", body = ErrorResponse),
              (status = 503, body = DatabaseHealth)))]
///
/// Answers 200 only when the database answers `SELECT 1` within the health-check timeout;
/// otherwise 503 with the reason. Redis being down degrades the cache, not the service, so it
/// is reported but does not fail the check.
async fn database(
    State(state): State<AppState>,
    admin: MaybeAdmin,
    Query(query): Query<DatabaseQuery>,
) -> Result<Response> {
    // The details (schema version, table sizes, jobs) are for operators only.
    if query.detailed {
        admin.0?;
    }
    let ping = health::ping(&state).await;
    let response_time_ms = millis(ping.elapsed);
    let failure = ping.failure;

    let details = match (&failure, query.detailed) {
        (None, true) => Some(details(&state).await?),
        _ => None,
    };
    let body = DatabaseHealth {
        status: if failure.is_none() { "healthy" } else { "unhealthy" },
        database: DatabaseCheck { status: if failure.is_none() { "up" } else { "down" }, response_time_ms },
        reason: failure,
        pool: pool_stats(&state),
        cache: health::cache_status(&state).await,
        switches: query.detailed.then(|| state.switches.report()),
        replicas: query.detailed.then(|| health::replicas(&state).into_iter().map(ReplicaHealth::from).collect()),
        details,
    };
    let status = if body.reason.is_none() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    Ok((status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

async fn details(state: &AppState) -> Result<Details> {
    let details = health::details(state).await?;
    Ok(Details {
        schema_version: details.schema_version,
        latest_schema_version: migrate::latest_version(),
        tables: details.tables.into_iter().map(TableStats::from).collect(),
        materialized_views: details.views.into_iter().map(ViewRefresh::from).collect(),
        jobs: details.jobs.into_iter().map(JobRun::from).collect(),
        index_switches: details
            .index_switches
            .into_iter()
            .map(|switch| IndexSwitch {
                name: switch.name,
                state: switch.state,
                changed_at: switch.changed_at,
                by: switch.by,
            })
            .collect(),
    })
}

fn pool_stats(state: &AppState) -> PoolStats {
    let pool = health::pool_usage(state);
    let in_use = (pool.size as usize).saturating_sub(pool.idle);
    PoolStats {
        size: pool.size,
        idle: pool.idle,
        in_use,
        max: pool.max,
        limit: pool.limit,
        utilization: in_use as f64 / f64::from(pool.max),
        waiters: pool.waits.waiters,
        acquire_timeouts: pool.waits.acquire_timeouts,
        acquire_wait: pool.waits.acquire_wait,
    }
}

fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1_000_000.0).round() / 1000.0
}
