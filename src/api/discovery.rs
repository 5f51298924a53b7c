//! `GET /api/discover`: public projects, sorted, filtered and searched.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::extract::{Json, Query};
use crate::api::projects::Creator;
use crate::db::discovery::DiscoveryRow;
use crate::domain::discovery::Sort;
use crate::domain::page::{Keyset, Page, PageSize};
use crate::domain::UtcTime;
use crate::error::{Error, ErrorResponse, Result};
use crate::service::discovery;
use crate::state::AppState;
use crate::validate;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveryEntry {
    id: String,
    name: String,
    /// The first 200 characters of the description.
    preview: Option<String>,
    project_type: String,
    preview_url: Option<String>,
    like_count: i32,
    fork_count: i32,
    view_count: i32,
    is_featured: bool,
    /// Search relevance: the name's trigram similarity to the term (0..1); only with `search`.
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<f32>,
    creator: Creator,
    created_at: UtcTime,
    updated_at: UtcTime,
}

impl From<DiscoveryRow> for DiscoveryEntry {
    fn from(row: DiscoveryRow) -> Self {
        DiscoveryEntry {
            id: row.id,
            name: row.name,
            preview: row.preview,
            project_type: row.project_type,
            preview_url: row.preview_url,
            like_count: row.like_count,
            fork_count: row.fork_count,
            view_count: row.view_count,
            is_featured: row.is_featured,
            score: row.score,
            creator: Creator { id: row.owner_id, name: row.owner_name, image: row.owner_image },
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

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
    /// Case-insensitive substring of the name or the description (3–100 characters: a
    /// shorter term has no trigram to search by).
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
    let search = params.search.as_deref().map(str::trim).filter(|term| !term.is_empty());
    if let Some(term) = search {
        validate::text("search", term, 3, 100)?;
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
    let keyset = Keyset::parse(PageSize::STANDARD, params.cursor.as_deref(), params.limit)?;
    let page = discovery::discover(&state, sort, params.project_type.as_deref(), search, keyset).await?;
    Ok(Json(page.map(DiscoveryEntry::from)))
}
