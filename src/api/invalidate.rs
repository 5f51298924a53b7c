//! What each kind of write makes stale in the cache. Handlers call these after their
//! transaction commits, so no reader can cache the old state under the new generation.

use crate::app::AppState;
use crate::cache::Scope;
use crate::db::projects;
use crate::error::Result;

/// Who sees a project in their project list; read before a change that may remove them.
pub async fn project_members(state: &AppState, project_id: &str) -> Result<Vec<String>> {
    Ok(projects::member_ids(&state.pool, project_id).await?)
}

/// A project's own data changed (metadata, files, messages): its cached pieces, every
/// member's project list, and discovery.
pub async fn project_changed(state: &AppState, project_id: &str, members: Vec<String>) {
    let mut scopes = vec![Scope::Project(project_id.to_owned()), Scope::Discovery];
    scopes.extend(members.into_iter().map(Scope::MemberProjects));
    state.cache.invalidate(&scopes).await;
}

/// A project's counters changed (views, likes, forks): the project and discovery.
pub async fn project_counters_changed(state: &AppState, project_id: &str) {
    state.cache.invalidate(&[Scope::Project(project_id.to_owned()), Scope::Discovery]).await;
}
