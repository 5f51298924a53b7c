//! Likes: `PUT` likes a project, `DELETE` unlikes it; both idempotent.

use axum::extract::{Path, State};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::extract::{Json, MaybeUser};
use crate::domain::access::Action;
use crate::error::{ErrorResponse, Result};
use crate::service::{access, projects};
use crate::state::AppState;

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
    set_like(&state, &caller, &id, true).await
}

/// Removes the caller's like. Unliking again changes nothing.
#[utoipa::path(delete, path = "/api/projects/{id}/like", tag = "likes", params(("id" = String, Path)),
    security(("session" = [])),
    responses((status = 200, body = LikeState), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn unlike(State(state): State<AppState>, caller: MaybeUser, Path(id): Path<String>) -> Result<Json<LikeState>> {
    set_like(&state, &caller, &id, false).await
}

async fn set_like(state: &AppState, caller: &MaybeUser, id: &str, liked: bool) -> Result<Json<LikeState>> {
    access::project(state, id, caller.id(), Action::Read).await?;
    let user = caller.require()?;
    let like_count = projects::set_like(state, id, &user.id, liked).await?;
    Ok(Json(LikeState { liked, like_count }))
}
