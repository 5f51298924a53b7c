//! Projects: create, the member's list, read, update, delete, fork, like and view.

use crate::cache::{Kind, Scope};
use serde::{Deserialize, Serialize};

use crate::db::files::{self, FileEntryRow};
use crate::db::likes::{self, LikeOutcome};
use crate::db::projects::{self, MemberEntry, NewProject, ProjectPatch, ProjectRow, ProjectSummaryRow};
use crate::db::users;
use crate::domain::page::{Keyset, Page};
use crate::domain::time::Position;
use crate::domain::Visibility;
use crate::error::{Error, Result};
use crate::service::files::{check_quota, first_page_on_primary};
use crate::service::invalidation::{self, Subjects, Write};
use crate::service::rate_limit;
use crate::state::AppState;

pub async fn create(state: &AppState, id: &str, owner_id: &str, new: &NewProject<'_>) -> Result<ProjectRow> {
    projects::create(&state.pool, id, owner_id, new).await?;
    let project = projects::get(&state.pool, id).await?.ok_or(Error::NotFound("project"))?;
    let members = [owner_id.to_owned()];
    let subjects = Subjects { members: &members, public: new.visibility == Visibility::Public, ..Subjects::default() };
    invalidation::after(&state.cache, Write::CreateProject, subjects).await;
    Ok(project)
}

/// The member's own and shared projects. The first page is what the web app shows on every
/// visit, so it is cached; deeper pages go to the database.
pub async fn list_for_member(
    state: &AppState,
    user_id: &str,
    keyset: Keyset<Position>,
) -> Result<Page<ProjectSummaryRow>> {
    let load = || async {
        let entries = projects::list_for_member(&state.pool, user_id, keyset.after.as_ref(), keyset.fetch()).await?;
        // The page and its cursor by the entries `UserProject` holds; an entry with no project
        // is left out of the items only.
        Ok(keyset.page(entries, MemberEntry::position).filter_map(MemberEntry::into_summary))
    };
    if keyset.is_first() {
        let scope = Scope::MemberProjects(user_id.to_owned());
        return state.cache.get_or_load(Kind::ProjectList, &scope, &format!("first:{}", keyset.limit), load).await;
    }
    load().await
}

/// What a project read shows: the project and the first page of its file listing.
#[derive(Serialize, Deserialize)]
pub struct ProjectWithFiles {
    pub project: ProjectRow,
    pub files: Page<FileEntryRow>,
}

/// A project with the first `file_limit` entries of its listing, from one cache entry (two
/// statements on a miss). The caller's access was checked before.
pub async fn with_first_files(state: &AppState, id: &str, file_limit: i64) -> Result<ProjectWithFiles> {
    let scope = Scope::Project(id.to_owned());
    state
        .cache
        .get_or_load(Kind::Project, &scope, &format!("with-files:{file_limit}"), || async {
            let project = projects::get(&state.pool, id).await?.ok_or(Error::NotFound("project"))?;
            let files = first_page_on_primary(state, id, &Keyset::first(file_limit)).await?;
            Ok(ProjectWithFiles { project, files })
        })
        .await
}

pub async fn update(state: &AppState, id: &str, patch: &ProjectPatch) -> Result<ProjectRow> {
    let mut tx = state.pool.begin().await?;
    if !projects::update(&mut *tx, id, patch).await? {
        return Err(Error::NotFound("project"));
    }
    let project = projects::get(&mut *tx, id).await?.ok_or(Error::NotFound("project"))?;
    let members = projects::member_ids(&mut *tx, id).await?;
    tx.commit().await?;
    let subjects = Subjects { projects: &[id], members: &members, ..Subjects::default() };
    invalidation::after(&state.cache, Write::UpdateProject, subjects).await;
    Ok(project)
}

pub async fn delete(state: &AppState, id: &str) -> Result<()> {
    let members = projects::delete(&state.pool, id).await?.ok_or(Error::NotFound("project"))?;
    let subjects = Subjects { projects: &[id], members: &members, ..Subjects::default() };
    invalidation::after(&state.cache, Write::DeleteProject, subjects).await;
    Ok(())
}

/// Copies a project the caller can read into a new PRIVATE project of theirs. The forker's
/// plan bounds it twice: forks per hour (429 past it), and what the copy may hold, as for a
/// file batch (403 `quota_exceeded`). The source is locked while it is measured and copied,
/// so no batch lands in between.
pub async fn fork(state: &AppState, source_id: &str, user_id: &str, name: Option<&str>) -> Result<ProjectRow> {
    let forker = users::by_id(&state.pool, user_id).await?.ok_or(Error::Unauthorized)?;
    let quota = state.settings.limits.plan_quota(&forker.plan);
    let key = rate_limit::Key { name: format!("fork:{user_id}"), limit: Some(quota.forks_per_hour) };
    rate_limit::reserve_within(&state.pool, &[key], rate_limit::HOUR).await?;

    let new_id = crate::auth::token::new_id();
    let mut tx = state.pool.begin().await?;
    projects::lock_for_copy(&mut *tx, source_id).await?.ok_or(Error::NotFound("project"))?;
    let (held_files, held_bytes) = files::usage(&mut *tx, source_id).await?;
    check_quota(&quota, held_files, held_bytes)?;
    let mut members =
        projects::fork(&mut *tx, source_id, &new_id, user_id, name).await?.ok_or(Error::NotFound("project"))?;
    tx.commit().await?;
    members.push(user_id.to_owned());
    let subjects = Subjects { projects: &[source_id], members: &members, ..Subjects::default() };
    invalidation::after(&state.cache, Write::ForkProject, subjects).await;
    projects::get(&state.pool, &new_id).await?.ok_or(Error::NotFound("project"))
}

/// Likes (`liked`) or unlikes a project; returns the like count after.
pub async fn set_like(state: &AppState, id: &str, user_id: &str, liked: bool) -> Result<i32> {
    let LikeOutcome { like_count, members } =
        likes::set(&state.pool, id, user_id, liked).await?.ok_or(Error::NotFound("project"))?;
    let write = if liked { Write::LikeProject } else { Write::UnlikeProject };
    invalidation::after(&state.cache, write, Subjects { projects: &[id], members: &members, ..Subjects::default() })
        .await;
    Ok(like_count)
}
