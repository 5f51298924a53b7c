//! `GET /api/discover`: public projects, sorted, filtered and searched.

use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::extract::{Json, Query};
use crate::api::pagination::{decode_cursor, page_from, Page, PageSize};
use crate::app::AppState;
use crate::cache::{Kind, Scope};
use crate::db::discovery::{self, DiscoveryEntry, DiscoveryQuery, Position, Sort};
use crate::error::{Error, ErrorResponse, Result};
use crate::validate;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(discover))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DiscoverParams {
    /// popular | forks | trending | recent | featured | relevance. Default: relevance with
    /// `search`, recent without.
    sort: Option<Sort>,
    /// Only projects of this projectType.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    project_type: Option<String>,
    /// Case-insensitive substring of the name or the description (2–100 characters).
    search: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

/// PUBLIC projects only, each with its creator (never an e-mail), counters and a short
/// preview. Keyset-paginated: deep pages cost what the first does.
#[utoipa::path(get, path = "/api/discover", tag = "discovery", params(DiscoverParams),
    responses((status = 200, body = Page<DiscoveryEntry>), (status = 400, body = ErrorResponse),
              (status = 422, body = ErrorResponse)))]
async fn discover(
    State(state): State<AppState>,
    Query(params): Query<DiscoverParams>,
) -> Result<Json<Page<DiscoveryEntry>>> {
    let limit = PageSize::STANDARD.resolve(params.limit)?;
    let search = params.search.as_deref().map(str::trim).filter(|term| !term.is_empty());
    if let Some(term) = search {
        validate::text("search", term, 2, 100)?;
    }
    if let Some(project_type) = &params.project_type {
        validate::text("type", project_type, 1, 50)?;
    }
    let sort = match (params.sort, search) {
        (Some(Sort::Relevance), None) => {
            return Err(Error::Unprocessable("sort=relevance needs a search term".into()));
        }
        (Some(sort), _) => sort,
        (None, Some(_)) => Sort::Relevance,
        (None, None) => Sort::Recent,
    };
    let after: Option<Position> = params.cursor.as_deref().map(decode_cursor).transpose()?;
    if after.as_ref().is_some_and(|position| !position.fits(sort)) {
        return Err(Error::BadRequest("the cursor belongs to another sort".into()));
    }
    // Every page is cached under one discovery generation, keyed by its normalised query.
    let suffix = serde_json::to_string(&(sort, &params.project_type, search, &params.cursor, limit))
        .map_err(anyhow::Error::from)?;
    let query = DiscoveryQuery { sort, project_type: params.project_type.as_deref(), search, after, limit: limit + 1 };
    let load = || async {
        let rows = discovery::discover(&state.pool, &query).await?;
        Ok(page_from(rows, limit, |entry| entry.position(sort)))
    };
    Ok(Json(state.cache.get_or_load(Kind::Discovery, &Scope::Discovery, &suffix, load).await?))
}
