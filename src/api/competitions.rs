//! Competitions: the owner of a PUBLIC project enters it once; anyone lists them by status;
//! the owner closes one (ACTIVE → CLOSED).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::extract::{Json, MaybeUser, Query};
use crate::api::pagination::{decode_cursor, page_from, Page, PageSize};
use crate::app::AppState;
use crate::auth::access::{authorize, Action, ProjectFacts};
use crate::auth::token;
use crate::db::collab::Position;
use crate::db::competitions::{self, Competition, CompetitionStatus, PROJECT_KEY};
use crate::db::projects;
use crate::error::{Error, ErrorResponse, Result, ResultExt};
use crate::validate;

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

/// Competitions are the owner's business: `Delete` is the one action only the owner holds, so
/// others get the usual answers (404 if they cannot see the project, 401 anonymous, 403
/// otherwise).
fn owner_only(facts: Option<&ProjectFacts>, caller: &MaybeUser) -> Result<()> {
    authorize(facts, caller.id(), Action::Delete).map(|_| ())
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
    Json(request): Json<NewCompetition>,
) -> Result<(StatusCode, Json<Competition>)> {
    validate::text("title", &request.title, 1, 200)?;
    let facts = projects::facts(&state.pool, &id, caller.id()).await?;
    owner_only(facts.as_ref(), &caller)?;
    let private = || Error::Unprocessable("only a PUBLIC project can enter a competition".into());
    if !facts.is_some_and(|facts| facts.is_public) {
        return Err(private());
    }
    let competition = competitions::create(&state.pool, &token::new_id(), &id, request.title.trim())
        .await
        .on_unique_violation(PROJECT_KEY, || Error::Conflict("this project is already in a competition".into()))?
        .ok_or_else(private)?;
    Ok((StatusCode::CREATED, Json(competition)))
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
    let limit = PageSize::STANDARD.resolve(query.limit)?;
    let after: Option<Position> = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let rows = competitions::page(&state.pool, query.status, after.as_ref(), limit + 1).await?;
    Ok(Json(page_from(rows, limit, |competition| (competition.created_at, competition.id.clone()))))
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
    let not_found = || Error::NotFound("competition");
    let project_id = competitions::project_of(&state.pool, &id).await?.ok_or_else(not_found)?;
    let facts = projects::facts(&state.pool, &project_id, caller.id()).await?;
    // A competition of a project the caller cannot see does not exist for them either.
    owner_only(facts.as_ref(), &caller).map_err(|error| match error {
        Error::NotFound(_) => not_found(),
        other => other,
    })?;
    competitions::close(&state.pool, &id)
        .await?
        .map(Json)
        .ok_or_else(|| Error::Conflict("the competition is already closed".into()))
}
