//! The query monitor, for operators (the admin token): `GET /api/monitor/queries?type=…`
//! and `POST /api/monitor/queries/explain`. Without an `ADMIN_TOKEN` configured they are off
//! (404). The views are described in docs/monitoring.md.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::extract::{Admin, Json, JsonBody, Query};
use crate::error::{Error, ErrorResponse, Result};
use crate::service::monitor::{self, View, ViewOptions};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(queries)).routes(routes!(explain)).routes(routes!(metrics))
}

/// The Prometheus exposition: requests by route template and status with latency
/// histograms, query histograms by name, the pool, the cache per kind and tier, the jobs.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(("admin" = [])),
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain"),
              (status = 401, body = ErrorResponse),
              (status = 404, description = "no ADMIN_TOKEN configured", body = ErrorResponse)))]
async fn metrics(State(state): State<AppState>, _admin: Admin) -> Result<impl IntoResponse> {
    let text = monitor::metrics_text(&state).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct MonitorQuery {
    /// slow, usage, unused, duplicate, invalid, tables, health or stats.
    r#type: Option<String>,
    /// Rows of each ranked list (default 20, at most 200).
    limit: Option<i64>,
    /// `unused`: at most this many scans (default 50).
    max_scans: Option<i64>,
    /// `unused`: at least this many bytes (default 1 MiB).
    min_bytes: Option<i64>,
}

/// The most rows a ranked list may ask for; a larger `limit` is refused, not capped.
const MAX_ROWS: i64 = 200;

/// One view of the database and of this process's query figures.
#[utoipa::path(get, path = "/api/monitor/queries", tag = "operations", params(MonitorQuery),
    security(("admin" = [])),
    responses((status = 200, description = "the view, see docs/monitoring.md", body = Object),
              (status = 400, description = "an unknown or missing type; the message lists the valid ones",
               body = ErrorResponse),
              (status = 401, body = ErrorResponse),
              (status = 404, description = "no ADMIN_TOKEN configured", body = ErrorResponse),
              (status = 422, description = "limit outside 1 to 200", body = ErrorResponse)))]
async fn queries(
    State(state): State<AppState>,
    _admin: Admin,
    Query(query): Query<MonitorQuery>,
) -> Result<Json<Value>> {
    let view = View::parse(query.r#type.as_deref())?;
    let defaults = ViewOptions::default();
    let non_negative = |name: &str, value: Option<i64>, default: i64| match value {
        Some(value) if value < 0 => Err(Error::BadRequest(format!("{name} must not be negative"))),
        Some(value) => Ok(value),
        None => Ok(default),
    };
    let options = ViewOptions {
        limit: match query.limit {
            Some(limit) if !(1..=MAX_ROWS).contains(&limit) => {
                return Err(Error::Unprocessable(format!("limit must be between 1 and {MAX_ROWS}")))
            }
            limit => limit.unwrap_or(defaults.limit),
        },
        max_scans: non_negative("maxScans", query.max_scans, defaults.max_scans)?,
        min_bytes: non_negative("minBytes", query.min_bytes, defaults.min_bytes)?,
        ..defaults
    };
    Ok(Json(monitor::view(&state, view, options).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExplainRequest {
    /// One `SELECT` or `WITH … SELECT`; `$1`, `$2`… stand for `params`.
    query: String,
    #[serde(default)]
    params: Vec<Value>,
    /// Run it (`EXPLAIN ANALYZE`), inside the read-only transaction that is rolled back.
    #[serde(default)]
    analyze: bool,
}

/// The longest statement text accepted.
const MAX_STATEMENT_BYTES: usize = 64 * 1024;

/// The JSON plan of one read-only statement and its summary. The statement runs in a READ
/// ONLY transaction that is always rolled back, under `monitor.explain_timeout_ms`.
#[utoipa::path(post, path = "/api/monitor/queries/explain", tag = "operations", request_body = ExplainRequest,
    security(("admin" = [])),
    responses((status = 200, description = "{plan, summary, analyzed}", body = Object),
              (status = 401, body = ErrorResponse),
              (status = 404, description = "no ADMIN_TOKEN configured", body = ErrorResponse),
              (status = 422, description = "not exactly one read-only SELECT, or PostgreSQL refused it",
               body = ErrorResponse)))]
async fn explain(State(state): State<AppState>, _admin: Admin, body: JsonBody<ExplainRequest>) -> Result<Json<Value>> {
    let request = body.read(&state).await?;
    if request.query.len() > MAX_STATEMENT_BYTES {
        return Err(Error::Unprocessable(format!("query is at most {MAX_STATEMENT_BYTES} bytes")));
    }
    Ok(Json(monitor::explain(&state, &request.query, &request.params, request.analyze).await?))
}
