//! Liveness (`/api/health`) and the database health check (`/api/health/database`).
//! The response shapes are documented in docs/operations.md.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::extract::Query;
use crate::app::AppState;
use crate::db::{catalog, maintenance, migrate};
use crate::error::{Error, Result};

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
    /// Adds the schema version, table sizes and view refresh times.
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
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Details>,
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
    utilization: f64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Details {
    schema_version: Option<i64>,
    latest_schema_version: i64,
    tables: Vec<catalog::TableStats>,
    materialized_views: Vec<catalog::ViewRefresh>,
    /// Each background job's last run, duration and outcome.
    jobs: Vec<maintenance::JobRun>,
}

/// Readiness: 200 only when the database answers, 503 with the reason otherwise.
#[utoipa::path(get, path = "/api/health/database", tag = "health", params(DatabaseQuery),
    responses((status = 200, body = DatabaseHealth), (status = 503, body = DatabaseHealth)))]
///
/// Answers 200 only when the database answers `SELECT 1` within the health-check timeout;
/// otherwise 503 with the reason. Redis being down degrades the cache, not the service, so it
/// is reported but does not fail the check.
async fn database(State(state): State<AppState>, Query(query): Query<DatabaseQuery>) -> Result<Response> {
    let timeout = state.settings.database.health_check_timeout();
    let started = Instant::now();
    let ping = tokio::time::timeout(timeout, sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&state.pool)).await;
    let response_time_ms = millis(started.elapsed());
    let failure = match ping {
        Ok(Ok(_)) => None,
        Ok(Err(error)) => Some(Error::from(error).to_string()),
        Err(_) => Some(format!("the database did not answer within {} ms", timeout.as_millis())),
    };

    let details = match (&failure, query.detailed) {
        (None, true) => Some(details(&state).await?),
        _ => None,
    };
    let body = DatabaseHealth {
        status: if failure.is_none() { "healthy" } else { "unhealthy" },
        database: DatabaseCheck { status: if failure.is_none() { "up" } else { "down" }, response_time_ms },
        reason: failure,
        pool: pool_stats(&state),
        cache: state.cache.status().await,
        details,
    };
    let status = if body.reason.is_none() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    Ok((status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

async fn details(state: &AppState) -> Result<Details> {
    let mut conn = state.pool.acquire().await?;
    Ok(Details {
        schema_version: migrate::current_version(&mut conn).await?,
        latest_schema_version: migrate::latest_version(),
        tables: catalog::table_stats(&state.pool).await?,
        materialized_views: catalog::view_refreshes(&state.pool).await?,
        jobs: maintenance::job_runs(&state.pool).await?,
    })
}

fn pool_stats(state: &AppState) -> PoolStats {
    let size = state.pool.size();
    let idle = state.pool.num_idle();
    let in_use = (size as usize).saturating_sub(idle);
    let max = state.settings.database.connection_limit;
    PoolStats { size, idle, in_use, max, utilization: in_use as f64 / f64::from(max) }
}

fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1_000_000.0).round() / 1000.0
}
