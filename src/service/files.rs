//! A project's files: the listing (its first page cached with the project), one file, and
//! the batch write.

use crate::cache::{Kind, Scope};
use crate::config::PlanQuota;
use crate::db::files::{self, BatchOutcome, FileEntryRow, FileRow, PreparedUpsert};
use crate::db::{projects, users};
use crate::domain::page::{Keyset, Page};
use crate::error::{Error, Result};
use crate::service::invalidation::{self, Subjects, Write};
use crate::service::reads;
use crate::state::AppState;

/// A page of the listing in path order, read for `caller`; the first page comes through the
/// cache.
pub async fn list(
    state: &AppState,
    caller: Option<&str>,
    project_id: &str,
    keyset: Keyset<String>,
) -> Result<Page<FileEntryRow>> {
    if keyset.is_first() {
        let load = || first_page_on_primary(state, project_id, &keyset);
        let scope = Scope::Project(project_id.to_owned());
        return state.cache.get_or_load(Kind::FileListing, &scope, &format!("first:{}", keyset.limit), load).await;
    }
    let after = keyset.after.as_deref().unwrap_or("");
    let rows = reads::run(state, caller, |db| files::list(db, project_id, after, keyset.fetch())).await?;
    Ok(keyset.page(rows, FileEntryRow::position))
}

/// A first page of the listing from the primary, for the cache: what it holds must not come
/// from a replica that has not replayed the write that invalidated it.
pub async fn first_page_on_primary(
    state: &AppState,
    project_id: &str,
    keyset: &Keyset<String>,
) -> Result<Page<FileEntryRow>> {
    let rows = files::list(&state.pool, project_id, "", keyset.fetch()).await?;
    Ok(keyset.page(rows, FileEntryRow::position))
}

/// What the project's owner's plan lets the project hold (the per-file size cap among it).
pub async fn owner_quota(state: &AppState, owner_id: &str) -> Result<PlanQuota> {
    let owner = users::by_id(&state.pool, owner_id).await?.ok_or(Error::NotFound("project"))?;
    Ok(state.settings.limits.plan_quota(&owner.plan))
}

pub async fn get(state: &AppState, caller: Option<&str>, project_id: &str, path: &str) -> Result<FileRow> {
    reads::run(state, caller, |db| files::get(db, project_id, path)).await?.ok_or(Error::NotFound("file"))
}

/// Applies a prepared batch in one transaction of two set-based statements; touches the
/// project only when something changed.
pub async fn write(
    state: &AppState,
    project_id: &str,
    quota: PlanQuota,
    upserts: &[PreparedUpsert],
    deletes: &[String],
) -> Result<BatchOutcome> {
    let mut tx = state.pool.begin().await?;
    // The project row first: its lock orders the batches of one project, so the quota check
    // below counts every batch committed before this one.
    projects::touch(&mut *tx, project_id).await?;
    let outcome = files::apply_batch(&mut tx, project_id, upserts, deletes).await?;
    let changed = !(outcome.created.is_empty() && outcome.updated.is_empty() && outcome.deleted.is_empty());
    if !changed {
        return Ok(outcome);
    }
    let (held_files, held_bytes) = files::usage(&mut *tx, project_id).await?;
    // Past the quota, dropping the transaction rolls the whole batch back.
    check_quota(&quota, held_files, held_bytes)?;
    let members = projects::member_ids(&mut *tx, project_id).await?;
    tx.commit().await?;
    let subjects = Subjects { projects: &[project_id], members: &members, ..Subjects::default() };
    invalidation::after(&state.cache, Write::WriteFiles, subjects).await;
    Ok(outcome)
}

/// 403 `quota_exceeded` when a project holding `files` files of `bytes` bytes in all is more
/// than its owner's plan allows.
pub fn check_quota(quota: &PlanQuota, files: i64, bytes: i64) -> Result<()> {
    if files > quota.files || bytes > quota.bytes {
        return Err(Error::QuotaExceeded(format!(
            "the project would hold {files} files and {bytes} bytes; its plan allows {} files and {} bytes",
            quota.files, quota.bytes
        )));
    }
    Ok(())
}
