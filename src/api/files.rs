//! A project's files: the listing, one file's content, and the batch write.

use axum::extract::{Path, State};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::extract::{project_access, Json, MaybeUser, Query};
use crate::api::invalidate;
use crate::api::pagination::{decode_cursor, page_from, Page, PageQuery, PageSize};
use crate::app::AppState;
use crate::auth::access::Action;
use crate::auth::token;
use crate::cache::{Kind, Scope};
use crate::db::files::{self, BatchOutcome, FileContent, FileEntry, PreparedUpsert};
use crate::db::projects;
use crate::error::{Error, ErrorResponse, Result};
use crate::validate;

/// File listings are metadata only, and a web app wants the whole tree: larger pages.
pub const FILE_PAGE: PageSize = PageSize { default: 100, max: 1000 };

/// The listing and the batch write. The single-file read has a wildcard path, registered in
/// `api::routes` by hand.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_files, write_files))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileBatch {
    operations: Vec<FileOperation>,
}

#[derive(Deserialize, ToSchema)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum FileOperation {
    /// Creates the file or replaces its content; `language` is inferred from the extension
    /// when absent.
    Upsert {
        path: String,
        content: String,
        language: Option<String>,
    },
    Delete {
        path: String,
    },
}

/// The first page of the listing, through the cache.
pub async fn first_file_page(state: &AppState, project_id: &str, limit: u32) -> Result<Page<FileEntry>> {
    let scope = Scope::Project(project_id.to_owned());
    let suffix = format!("first:{limit}");
    state
        .cache
        .get_or_load(Kind::FileListing, &scope, &suffix, || file_page(state, project_id, "", i64::from(limit)))
        .await
}

async fn file_page(state: &AppState, project_id: &str, after_path: &str, limit: i64) -> Result<Page<FileEntry>> {
    let rows = files::list(&state.pool, project_id, after_path, limit + 1).await?;
    Ok(page_from(rows, limit, |file| file.path.clone()))
}

/// The file listing in path order: path, language, size, checksum, updatedAt; no contents.
#[utoipa::path(get, path = "/api/projects/{id}/files", tag = "files", params(("id" = String, Path), PageQuery),
    responses((status = 200, body = Page<FileEntry>), (status = 404, body = ErrorResponse)))]
async fn list_files(
    State(state): State<AppState>,
    caller: MaybeUser,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Json<Page<FileEntry>>> {
    project_access(&state, &id, caller.id(), Action::Read).await?;
    let limit = FILE_PAGE.resolve(query.limit)?;
    match query.cursor.as_deref().map(decode_cursor::<String>).transpose()? {
        Some(after) => Ok(Json(file_page(&state, &id, &after, limit).await?)),
        None => Ok(Json(first_file_page(&state, &id, limit as u32).await?)),
    }
}

/// One file with its content.
#[utoipa::path(get, path = "/api/projects/{id}/files/{path}", tag = "files",
    params(("id" = String, Path), ("path" = String, Path, description = "the file's path; may contain slashes")),
    responses((status = 200, body = FileContent), (status = 404, body = ErrorResponse)))]
pub async fn read_file(
    State(state): State<AppState>,
    caller: MaybeUser,
    Path((id, path)): Path<(String, String)>,
) -> Result<Json<FileContent>> {
    validate::file_path(&path).map_err(Error::Unprocessable)?;
    project_access(&state, &id, caller.id(), Action::Read).await?;
    files::get(&state.pool, &id, &path).await?.map(Json).ok_or(Error::NotFound("file"))
}

/// Applies up to `limits.batch_operations` upserts and deletes in one transaction with two
/// set-based statements. The server computes sizes and SHA-256 checksums; an upsert whose
/// content and language are unchanged rewrites nothing. One invalid operation refuses the
/// whole batch (422, naming it) and nothing is written.
#[utoipa::path(put, path = "/api/projects/{id}/files", tag = "files", params(("id" = String, Path)),
    request_body = FileBatch, security(("session" = [])),
    responses((status = 200, body = BatchOutcome), (status = 403, body = ErrorResponse),
              (status = 404, body = ErrorResponse), (status = 413, body = ErrorResponse),
              (status = 422, body = ErrorResponse)))]
async fn write_files(
    State(state): State<AppState>,
    caller: MaybeUser,
    Path(id): Path<String>,
    Json(batch): Json<FileBatch>,
) -> Result<Json<BatchOutcome>> {
    let max_operations = state.settings.limits.batch_operations;
    if batch.operations.len() > max_operations {
        return Err(Error::Unprocessable(format!("a batch holds at most {max_operations} operations")));
    }
    let (_, facts) = project_access(&state, &id, caller.id(), Action::Write).await?;
    let max_file_bytes = state.settings.limits.file_bytes(&facts.owner_plan);

    // Validating and hashing up to tens of megabytes is CPU work: off the async workers.
    let (upserts, deletes) = tokio::task::spawn_blocking(move || prepare(batch.operations, max_file_bytes))
        .await
        .map_err(anyhow::Error::from)??;

    let mut tx = state.pool.begin().await?;
    let outcome = files::apply_batch(&mut tx, &id, &upserts, &deletes).await?;
    let changed = !(outcome.created.is_empty() && outcome.updated.is_empty() && outcome.deleted.is_empty());
    if changed {
        projects::touch(&mut *tx, &id).await?;
    }
    tx.commit().await?;
    if changed {
        invalidate::project_changed(&state, &id, invalidate::project_members(&state, &id).await?).await;
    }
    Ok(Json(outcome))
}

/// Checks every operation and computes sizes and checksums. Errors name the operation.
fn prepare(operations: Vec<FileOperation>, max_file_bytes: usize) -> Result<(Vec<PreparedUpsert>, Vec<String>)> {
    let mut seen = std::collections::HashSet::new();
    let mut upserts = Vec::new();
    let mut deletes = Vec::new();
    for (index, operation) in operations.into_iter().enumerate() {
        let invalid = |problem: String| Error::Unprocessable(format!("operations[{index}]: {problem}"));
        let path = match &operation {
            FileOperation::Upsert { path, .. } | FileOperation::Delete { path } => path.clone(),
        };
        validate::file_path(&path).map_err(invalid)?;
        if !seen.insert(path.clone()) {
            return Err(invalid(format!("{path} appears more than once in the batch")));
        }
        match operation {
            FileOperation::Delete { path } => deletes.push(path),
            FileOperation::Upsert { path, content, language } => {
                if content.len() > max_file_bytes {
                    return Err(invalid(format!("content is over the plan's {max_file_bytes}-byte limit")));
                }
                let language = match language {
                    Some(language) => {
                        validate::text("language", &language, 1, 30).map_err(|e| invalid(e.to_string()))?;
                        language
                    }
                    None => validate::language_of(&path).to_owned(),
                };
                upserts.push(PreparedUpsert {
                    id: token::new_id(),
                    size: i32::try_from(content.len()).map_err(|_| invalid("content is too large".into()))?,
                    checksum: validate::checksum(&content),
                    path,
                    content,
                    language,
                });
            }
        }
    }
    Ok((upserts, deletes))
}
