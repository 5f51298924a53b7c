//! Likes: `PUT` likes a project, `DELETE` unlikes it; both idempotent.

use axum::extract::{Path, State};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::extract::{project_access, Json, MaybeUser};
use crate::api::invalidate;
use crate::app::AppState;
use crate::auth::access::Action;
use crate::db::likes;
use crate::error::{ErrorResponse, Result};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(like, unlike))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LikeState {
    liked: bool,
    like_count: i32,
}

/// Likes a project the caller can read. Liking again changes nothing.
#[utoipa::path(put, path = "/api/projects/{id}/like", tag = "likes", params(("id" = String, Path)),
    security(("session" = [])),
    responses((status = 200, body = LikeState), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn like(State(state): State<AppState>, caller: MaybeUser, Path(id): Path<String>) -> Result<Json<LikeState>> {
    project_access(&state, &id, caller.id(), Action::Read).await?;
    let user = caller.require()?;
    let like_count = likes::set(&state.pool, &id, &user.id, true).await?;
    invalidate::project_counters_changed(&state, &id).await;
    Ok(Json(LikeState { liked: true, like_count }))
}

/// Removes the caller's like. Unliking again changes nothing.
#[utoipa::path(delete, path = "/api/projects/{id}/like", tag = "likes", params(("id" = String, Path)),
    security(("session" = [])),
    responses((status = 200, body = LikeState), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn unlike(State(state): State<AppState>, caller: MaybeUser, Path(id): Path<String>) -> Result<Json<LikeState>> {
    project_access(&state, &id, caller.id(), Action::Read).await?;
    let user = caller.require()?;
    let like_count = likes::set(&state.pool, &id, &user.id, false).await?;
    invalidate::project_counters_changed(&state, &id).await;
    Ok(Json(LikeState { liked: false, like_count }))
}
