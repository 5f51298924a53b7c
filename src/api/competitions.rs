//! Competitions: the owner of a PUBLIC project enters it once; anyone lists them by status;
//! the owner closes one (ACTIVE → CLOSED).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::extract::{Json, JsonBody, MaybeUser, Query};
use crate::api::projects::Creator;
use crate::db::competitions::CompetitionRow;
use crate::domain::access::Action;
use crate::domain::page::{Keyset, Page, PageSize};
use crate::domain::{CompetitionStatus, UtcTime};
use crate::error::{ErrorResponse, Result};
use crate::service::{access, competitions};
use crate::state::AppState;
use crate::validate;

/// The entered project, with its creator: never an e-mail.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompetitionProject {
    id: String,
    name: String,
    creator: Creator,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Competition {
    id: String,
    project_id: String,
    title: String,
    status: CompetitionStatus,
    created_at: UtcTime,
    updated_at: UtcTime,
    project: CompetitionProject,
}

impl From<CompetitionRow> for Competition {
    fn from(row: CompetitionRow) -> Self {
        let creator = Creator { id: row.owner_id, name: row.owner_name, image: row.owner_image };
        Competition {
            project: CompetitionProject { id: row.project_id.clone(), name: row.project_name, creator },
            id: row.id,
            project_id: row.project_id,
            title: row.title,
            status: row.status,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(enter_competition))
        .routes(routes!(list_competitions))
        .routes(routes!(close_competition))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCompetition {
    title: String,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CompetitionQuery {
    /// Only competitions with this status; all when absent.
    status: Option<CompetitionStatus>,
    /// The `nextCursor` of the previous page.
    cursor: Option<String>,
    /// Page size (default 20, at most 100; larger values are capped).
    limit: Option<u32>,
}

/// Enters the caller's PUBLIC project in a competition. Owner only; a PRIVATE project is 422;
/// a project enters at most once (409, decided by the unique index).
#[utoipa::path(post, path = "/api/projects/{id}/competition", tag = "competitions", params(("id" = String, Path)),
    request_body = NewCompetition, security(("session" = [])),
    responses((status = 201, body = Competition), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse),
              (status = 422, body = ErrorResponse)))]
async fn enter_competition(
    State(state): State<AppState>,
    caller: MaybeUser,
    Path(id): Path<String>,
    body: JsonBody<NewCompetition>,
) -> Result<(StatusCode, Json<Competition>)> {
    // Only the owner enters a project (`Delete` is the owner's alone), checked before the body.
    let (_, facts) = access::project(&state, &id, caller.id(), Action::Delete).await?;
    let request = body.read(&state).await?;
    validate::text("title", &request.title, 1, 200)?;
    let competition = competitions::enter(&state, &id, &facts, request.title.trim()).await?;
    Ok((StatusCode::CREATED, Json(competition.into())))
}

/// Competitions of PUBLIC projects, newest first, optionally of one status. Public; a stale
/// token is still 401, as on every route.
#[utoipa::path(get, path = "/api/competitions", tag = "competitions", params(CompetitionQuery),
    responses((status = 200, body = Page<Competition>), (status = 400, body = ErrorResponse),
              (status = 422, body = ErrorResponse)))]
async fn list_competitions(
    State(state): State<AppState>,
    _caller: MaybeUser,
    Query(query): Query<CompetitionQuery>,
) -> Result<Json<Page<Competition>>> {
    let keyset = Keyset::parse(PageSize::STANDARD, query.cursor.as_deref(), query.limit)?;
    Ok(Json(competitions::page(&state, query.status, keyset).await?.map(Competition::from)))
}

/// Closes a competition: the one status change, ACTIVE → CLOSED, and final (there is no
/// reopening, so a result stays a result). A route of its own rather than a PATCH of
/// `status`, because it is an action with one legal direction, not a free field. Owner of the
/// project only; closing a CLOSED competition is 409.
#[utoipa::path(post, path = "/api/competitions/{id}/close", tag = "competitions", params(("id" = String, Path)),
    security(("session" = [])),
    responses((status = 200, body = Competition), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)))]
async fn close_competition(
    State(state): State<AppState>,
    caller: MaybeUser,
    Path(id): Path<String>,
) -> Result<Json<Competition>> {
    Ok(Json(competitions::close(&state, &id, caller.id()).await?.into()))
}
