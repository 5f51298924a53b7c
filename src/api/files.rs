//! A project's files: the listing, one file's content, and the batch write.

use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::extract::{Json, JsonBody, MaybeUser, PageQuery, Query};
use crate::auth::token;
use crate::db::files::{BatchOutcome, FileEntryRow, PreparedUpsert};
use crate::domain::access::Action;
use crate::domain::page::{Page, PageSize};
use crate::domain::UtcTime;
use crate::error::{Error, ErrorResponse, Result};
use crate::service::{access, files};
use crate::state::AppState;
use crate::validate;

/// A file as listings show it: no content.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileEntry {
    path: String,
    language: String,
    size: i32,
    checksum: String,
    updated_at: UtcTime,
}

impl From<FileEntryRow> for FileEntry {
    fn from(row: FileEntryRow) -> Self {
        FileEntry {
            path: row.path,
            language: row.language,
            size: row.size,
            checksum: row.checksum,
            updated_at: row.updated_at,
        }
    }
}

/// One file with its content.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileContent {
    #[serde(flatten)]
    entry: FileEntry,
    content: String,
}

/// What a batch did, path by path.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResult {
    created: Vec<String>,
    updated: Vec<String>,
    unchanged: Vec<String>,
    deleted: Vec<String>,
}

impl From<BatchOutcome> for BatchResult {
    fn from(outcome: BatchOutcome) -> Self {
        BatchResult {
            created: outcome.created,
            updated: outcome.updated,
            unchanged: outcome.unchanged,
            deleted: outcome.deleted,
        }
    }
}

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

/// The file listing in path order: path, language, size, checksum, updatedAt; no contents.
#[utoipa::path(get, path = "/api/projects/{id}/files", tag = "files", params(("id" = String, Path), PageQuery),
    responses((status = 200, body = Page<FileEntry>), (status = 404, body = ErrorResponse)))]
async fn list_files(
    State(state): State<AppState>,
    caller: MaybeUser,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Json<Page<FileEntry>>> {
    access::project_read(&state, &id, caller.id()).await?;
    let keyset = query.keyset(PageSize::FILES)?;
    Ok(Json(files::list(&state, caller.id(), &id, keyset).await?.map(FileEntry::from)))
}

/// One file with its content.
#[utoipa::path(get, path = "/api/projects/{id}/files/{path}", tag = "files",
    params(("id" = String, Path), ("path" = String, Path, description = "the file's path; may contain slashes")),
    responses((status = 200, body = FileContent), (status = 404, body = ErrorResponse),
        (status = 422, description = "not a valid file path", body = ErrorResponse)))]
pub async fn read_file(
    State(state): State<AppState>,
    caller: MaybeUser,
    Path((id, path)): Path<(String, String)>,
) -> Result<Json<FileContent>> {
    validate::file_path(&path).map_err(Error::Unprocessable)?;
    access::project_read(&state, &id, caller.id()).await?;
    let file = files::get(&state, caller.id(), &id, &path).await?;
    Ok(Json(FileContent { entry: file.entry.into(), content: file.content }))
}

/// Applies up to `limits.batch_operations` upserts and deletes in one transaction with two
/// set-based statements. The server computes sizes and SHA-256 checksums; an upsert whose
/// content and language are unchanged rewrites nothing. One invalid operation refuses the
/// whole batch (422, naming it) and nothing is written.
#[utoipa::path(put, path = "/api/projects/{id}/files", tag = "files", params(("id" = String, Path)),
    request_body = FileBatch, security(("session" = [])),
    responses((status = 200, body = BatchResult), (status = 403, body = ErrorResponse),
              (status = 404, body = ErrorResponse), (status = 413, body = ErrorResponse),
              (status = 422, body = ErrorResponse)))]
async fn write_files(
    State(state): State<AppState>,
    caller: MaybeUser,
    Path(id): Path<String>,
    body: JsonBody<FileBatch>,
) -> Result<Json<BatchResult>> {
    let (_, facts) = access::project(&state, &id, caller.id(), Action::Write).await?;
    let batch = body.read(&state).await?;
    let max_operations = state.settings.limits.batch_operations;
    if batch.operations.len() > max_operations {
        return Err(Error::Unprocessable(format!("a batch holds at most {max_operations} operations")));
    }
    let quota = files::owner_quota(&state, &facts.owner_id).await?;
    let max_file_bytes = quota.file_bytes;

    // Validating and hashing up to tens of megabytes is CPU work: off the async workers.
    let (upserts, deletes) = tokio::task::spawn_blocking(move || prepare(batch.operations, max_file_bytes))
        .await
        .map_err(anyhow::Error::from)??;

    Ok(Json(files::write(&state, &id, quota, &upserts, &deletes).await?.into()))
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
