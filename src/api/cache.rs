//! `POST /api/cache/clear`: the operational endpoint that clears the cache, guarded by the
//! admin token. Without an `ADMIN_TOKEN` configured, it is off (404).

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::extract::{bearer_token, Json};
use crate::error::{Error, ErrorResponse, Result};
use crate::service::invalidation;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(clear_cache))
}

/// A request carrying `Authorization: Bearer <ADMIN_TOKEN>`.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        use secrecy::ExposeSecret;
        let Some(expected) = &state.settings.admin_token else {
            return Err(Error::NotFound("route"));
        };
        let presented = bearer_token(parts).unwrap_or_default();
        // Comparing digests keeps the comparison's time independent of where the strings differ.
        if Sha256::digest(presented.as_bytes()) == Sha256::digest(expected.expose_secret().as_bytes()) {
            Ok(Admin)
        } else {
            Err(Error::Unauthorized)
        }
    }
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
