//! `POST /api/cache/clear`: the operational endpoint that clears the cache, guarded by the
//! admin token. Without an `ADMIN_TOKEN` configured, it is off (404).

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::extract::{Admin, Json};
use crate::error::{ErrorResponse, Result};
use crate::service::invalidation;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(clear_cache))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Cleared {
    /// Keys removed from this service's namespace in Redis.
    removed_keys: u64,
}

/// Clears this service's namespace in Redis (never other keys, never FLUSHDB) and the local
/// tier of every instance.
#[utoipa::path(post, path = "/api/cache/clear", tag = "operations", security(("admin" = [])),
    responses((status = 200, body = Cleared), (status = 401, body = ErrorResponse),
              (status = 404, description = "no ADMIN_TOKEN configured", body = ErrorResponse),
              (status = 503, description = "Redis is unreachable", body = ErrorResponse)))]
async fn clear_cache(State(state): State<AppState>, _admin: Admin) -> Result<Json<Cleared>> {
    let removed_keys = invalidation::clear_all(&state.cache).await?;
    tracing::info!(removed_keys, "cache cleared");
    Ok(Json(Cleared { removed_keys }))
}
