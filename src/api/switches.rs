//! `GET` and `PATCH /api/admin/switches`: the runtime switches of this instance (cache mode,
//! pool size, slow-query threshold, job schedules and pauses), guarded by the admin token.
//! A change takes effect at once, on the instance that answers; SIGHUP applies the
//! configuration's values the same way (see `switches`).

use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::extract::{Admin, Json, JsonBody};
use crate::error::{Error, ErrorResponse, Result};
use crate::state::AppState;
use crate::switches::{Change, Report, Source};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(current, change))
}

/// The switches now, and the time, source and names of their last change.
#[utoipa::path(get, path = "/api/admin/switches", tag = "operations", security(("admin" = [])),
    responses((status = 200, body = Report), (status = 401, body = ErrorResponse),
              (status = 404, description = "no ADMIN_TOKEN configured", body = ErrorResponse)))]
async fn current(State(state): State<AppState>, _admin: Admin) -> Json<Report> {
    Json(state.switches.report())
}

/// Changes the switches named in the body, at once and without a restart; the others stay.
/// The change is applied whole or not at all, and each switch that moves is logged.
#[utoipa::path(patch, path = "/api/admin/switches", tag = "operations", security(("admin" = [])),
    request_body = Change,
    responses((status = 200, description = "the switches after the change", body = Report),
              (status = 401, body = ErrorResponse),
              (status = 404, description = "no ADMIN_TOKEN configured", body = ErrorResponse),
              (status = 422, description = "a value out of range, or an unknown switch or job", body = ErrorResponse)))]
async fn change(State(state): State<AppState>, _admin: Admin, body: JsonBody<Change>) -> Result<Json<Report>> {
    let change = body.read(&state).await?;
    let report = state.switches.apply(&change, Source::Api).map_err(Error::Unprocessable)?;
    Ok(Json(report))
}
