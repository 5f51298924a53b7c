//! Projects: create, list (own and shared), read with the file listing, update, delete, and
//! the view counter.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::extract::{AuthUser, ClientAddress, Json, JsonBody, MaybeUser, PageQuery, Query};
use crate::api::files::FileEntry;
use crate::db::projects::{NewProject, ProjectPatch, ProjectRow, ProjectSummaryRow};
use crate::domain::access::{Access, Action};
use crate::domain::page::{Page, PageSize};
use crate::domain::{UtcTime, Visibility};
use crate::error::{Error, ErrorResponse, Result};
use crate::service::views::{self, Viewer};
use crate::service::{access, projects};
use crate::state::AppState;
use crate::validate;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_project, list_projects))
        .routes(routes!(get_project, update_project, delete_project))
        .routes(routes!(record_view))
        .routes(routes!(fork_project))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForkRequest {
    /// Defaults to the source's name with " (fork)".
    name: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateProject {
    name: String,
    description: Option<String>,
    project_type: String,
    visibility: Option<Visibility>,
    active_agents: Option<Vec<String>>,
}

/// Only these fields can change; any other is refused with 422. `null` clears
/// `description` and `previewUrl`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateProject {
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    description: Option<Option<String>>,
    project_type: Option<String>,
    active_agents: Option<Vec<String>>,
    visibility: Option<Visibility>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    preview_url: Option<Option<String>>,
}

/// Tells a field sent as `null` (`Some(None)`) from one not sent at all (`None`).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

/// A project's creator as anyone may see them: never an e-mail.
#[derive(Debug, Serialize, ToSchema)]
pub struct Creator {
    pub id: String,
    pub name: Option<String>,
    pub image: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    id: String,
    name: String,
    description: Option<String>,
    project_type: String,
    visibility: Visibility,
    #[schema(value_type = Vec<String>)]
    active_agents: serde_json::Value,
    preview_url: Option<String>,
    like_count: i32,
    fork_count: i32,
    view_count: i32,
    is_featured: bool,
    owner: Creator,
    created_at: UtcTime,
    updated_at: UtcTime,
}

impl From<ProjectRow> for Project {
    fn from(row: ProjectRow) -> Self {
        Project {
            id: row.id,
            name: row.name,
            description: row.description,
            project_type: row.project_type,
            visibility: row.visibility,
            active_agents: row.active_agents,
            preview_url: row.preview_url,
            like_count: row.like_count,
            fork_count: row.fork_count,
            view_count: row.view_count,
            is_featured: row.is_featured,
            owner: Creator { id: row.owner_id, name: row.owner_name, image: row.owner_image },
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// One entry of the caller's project list: metadata, the caller's access and exact counts,
/// never file contents or message bodies.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectSummary {
    id: String,
    name: String,
    description: Option<String>,
    project_type: String,
    visibility: Visibility,
    preview_url: Option<String>,
    like_count: i32,
    fork_count: i32,
    view_count: i32,
    access: Access,
    message_count: i64,
    file_count: i64,
    created_at: UtcTime,
    updated_at: UtcTime,
}

impl From<ProjectSummaryRow> for ProjectSummary {
    fn from(row: ProjectSummaryRow) -> Self {
        let project = row.project;
        ProjectSummary {
            id: project.id,
            name: project.name,
            description: project.description,
            project_type: project.project_type,
            visibility: project.visibility,
            preview_url: project.preview_url,
            like_count: project.like_count,
            fork_count: project.fork_count,
            view_count: project.view_count,
            access: row.access,
            message_count: project.message_count,
            file_count: project.file_count,
            created_at: project.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectDetail {
    #[serde(flatten)]
    project: Project,
    /// What the caller is to this project.
    access: Access,
    /// The first page of the file listing (no contents).
    files: Vec<FileEntry>,
    files_next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ViewCount {
    view_count: i32,
}

fn check_name(name: &str) -> Result<()> {
    validate::text("name", name, 1, 200)
}
fn check_description(description: &str) -> Result<()> {
    validate::text("description", description, 0, 2000)
}
fn check_project_type(project_type: &str) -> Result<()> {
    validate::text("projectType", project_type, 1, 50)
}
fn check_agents(agents: &[String]) -> Result<()> {
    if agents.len() > 20 {
        return Err(Error::Unprocessable("activeAgents holds at most 20 agents".into()));
    }
    agents.iter().try_for_each(|agent| validate::text("activeAgents[]", agent, 1, 100))
}
fn check_preview_url(url: &str) -> Result<()> {
    validate::text("previewUrl", url, 1, 2048)?;
    if url.starts_with("https://") || url.starts_with("http://") {
        Ok(())
    } else {
        Err(Error::Unprocessable("previewUrl must be an http(s) URL".into()))
    }
}

/// Creates a project owned by the caller.
#[utoipa::path(post, path = "/api/projects", tag = "projects", request_body = CreateProject,
    security(("session" = [])),
    responses((status = 201, body = Project), (status = 401, body = ErrorResponse), (status = 422, body = ErrorResponse)))]
async fn create_project(
    State(state): State<AppState>,
    user: AuthUser,
    body: JsonBody<CreateProject>,
) -> Result<(StatusCode, Json<Project>)> {
    let request = body.read(&state).await?;
    check_name(&request.name)?;
    request.description.as_deref().map(check_description).transpose()?;
    check_project_type(&request.project_type)?;
    let agents = request.active_agents.unwrap_or_default();
    check_agents(&agents)?;
    let new = NewProject {
        name: request.name.trim(),
        description: request.description.as_deref(),
        project_type: request.project_type.trim(),
        visibility: request.visibility.unwrap_or(Visibility::Private),
        active_agents: &agents,
    };
    let project = projects::create(&state, &crate::auth::token::new_id(), &user.id, &new).await?;
    Ok((StatusCode::CREATED, Json(project.into())))
}

/// The caller's own projects and those shared with them, most recently updated first, with
/// exact message and file counts. Two SQL statements per page, whatever its size: the page of
/// memberships, then its projects with their counts.
#[utoipa::path(get, path = "/api/projects", tag = "projects", params(PageQuery), security(("session" = [])),
    responses((status = 200, body = Page<ProjectSummary>), (status = 401, body = ErrorResponse)))]
async fn list_projects(
    State(state): State<AppState>,
    user: AuthUser,
    Query(query): Query<PageQuery>,
) -> Result<Json<Page<ProjectSummary>>> {
    let keyset = query.keyset(PageSize::STANDARD)?;
    Ok(Json(projects::list_for_member(&state, &user.id, keyset).await?.map(ProjectSummary::from)))
}

/// A project's metadata and the first page of its file listing.
#[utoipa::path(get, path = "/api/projects/{id}", tag = "projects", params(("id" = String, Path)),
    responses((status = 200, body = ProjectDetail), (status = 404, body = ErrorResponse)))]
async fn get_project(
    State(state): State<AppState>,
    caller: MaybeUser,
    Path(id): Path<String>,
) -> Result<Json<ProjectDetail>> {
    let access = access::project_read(&state, &id, caller.id()).await?;
    let detail = projects::with_first_files(&state, &id, i64::from(PageSize::FILES.default)).await?;
    let files = detail.files.map(FileEntry::from);
    Ok(Json(ProjectDetail {
        project: detail.project.into(),
        access,
        files: files.items,
        files_next_cursor: files.next_cursor,
    }))
}

/// Changes the allowed fields. Owner and ADMIN collaborators; `visibility` only the owner.
#[utoipa::path(patch, path = "/api/projects/{id}", tag = "projects", params(("id" = String, Path)),
    request_body = UpdateProject, security(("session" = [])),
    responses((status = 200, body = Project), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse),
              (status = 422, body = ErrorResponse)))]
async fn update_project(
    State(state): State<AppState>,
    caller: MaybeUser,
    Path(id): Path<String>,
    body: JsonBody<UpdateProject>,
) -> Result<Json<Project>> {
    // Any change needs member management; a visibility change, the owner (checked below).
    access::project(&state, &id, caller.id(), Action::Manage).await?;
    let request = body.read(&state).await?;
    request.name.as_deref().map(check_name).transpose()?;
    request.description.clone().flatten().as_deref().map(check_description).transpose()?;
    request.project_type.as_deref().map(check_project_type).transpose()?;
    request.active_agents.as_deref().map(check_agents).transpose()?;
    request.preview_url.clone().flatten().as_deref().map(check_preview_url).transpose()?;

    if request.visibility.is_some() {
        access::project(&state, &id, caller.id(), Action::SetVisibility).await?;
    }
    let patch = ProjectPatch {
        name: request.name.map(|name| name.trim().to_owned()),
        description: request.description,
        project_type: request.project_type.map(|t| t.trim().to_owned()),
        active_agents: request.active_agents,
        visibility: request.visibility,
        preview_url: request.preview_url,
    };
    Ok(Json(projects::update(&state, &id, &patch).await?.into()))
}

/// Deletes the project and everything in it. Owner only.
#[utoipa::path(delete, path = "/api/projects/{id}", tag = "projects", params(("id" = String, Path)),
    security(("session" = [])),
    responses((status = 204), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn delete_project(
    State(state): State<AppState>,
    caller: MaybeUser,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    access::project(&state, &id, caller.id(), Action::Delete).await?;
    projects::delete(&state, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Counts a view, once per viewer (a user, or an anonymous client address) and project within
/// `views.viewer_window_secs`. Views are written in batches: the count reaches project reads
/// and lists within `views.flush_ms`.
#[utoipa::path(post, path = "/api/projects/{id}/view", tag = "projects", params(("id" = String, Path)),
    responses((status = 200, body = ViewCount), (status = 404, body = ErrorResponse)))]
async fn record_view(
    State(state): State<AppState>,
    caller: MaybeUser,
    ClientAddress(client): ClientAddress,
    Path(id): Path<String>,
) -> Result<Json<ViewCount>> {
    access::project_read(&state, &id, caller.id()).await?;
    let viewer = caller.id().map_or(Viewer::Client(&client), Viewer::User);
    Ok(Json(ViewCount { view_count: views::record(&state, &id, viewer).await? }))
}

/// Copies a project the caller can read (metadata and files, not messages) into a new
/// PRIVATE project of theirs, in one statement, and counts the fork on the source. Bounded by
/// the forker's plan: forks per hour (429) and what the copy may hold (403).
#[utoipa::path(post, path = "/api/projects/{id}/fork", tag = "projects", params(("id" = String, Path)),
    request_body = ForkRequest, security(("session" = [])),
    responses((status = 201, body = Project), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 404, body = ErrorResponse), (status = 422, body = ErrorResponse),
              (status = 429, body = ErrorResponse)))]
async fn fork_project(
    State(state): State<AppState>,
    caller: MaybeUser,
    Path(id): Path<String>,
    body: JsonBody<ForkRequest>,
) -> Result<(StatusCode, Json<Project>)> {
    access::project(&state, &id, caller.id(), Action::Read).await?;
    let user = caller.require()?;
    let request = body.read(&state).await?;
    request.name.as_deref().map(check_name).transpose()?;
    let name = request.name.as_deref().map(str::trim);
    let fork = projects::fork(&state, &id, &user.id, name).await?;
    Ok((StatusCode::CREATED, Json(fork.into())))
}
