//! The one authorization call of project-scoped requests.

use crate::cache::{Kind, Scope};
use crate::db::projects;
use crate::domain::access::{authorize, Access, Action, ProjectFacts};
use crate::error::{Error, Result};
use crate::state::AppState;

/// Reads a project's access facts fresh, on the primary, and checks `action` for the caller:
/// 404 for a project the caller cannot see, 401/403 as the policy says. Every write is checked
/// this way; pure reads use [`project_read`].
pub async fn project(
    state: &AppState,
    project_id: &str,
    caller: Option<&str>,
    action: Action,
) -> Result<(Access, ProjectFacts)> {
    // On the primary: a replica within its lag limit may not have replayed a removal yet, and
    // the callers here write (a fork, a like, usage, leaving), Action::Read ones included.
    let facts = projects::facts(&state.pool, project_id, caller).await?;
    let access = authorize(facts.as_ref(), caller, action)?;
    Ok((access, facts.ok_or(Error::NotFound("project"))?))
}

/// Checks a read of the project (and the counting of a view) on the caller's access facts
/// from the cache: this process's tier only, as sessions are. Every change of membership,
/// role, visibility or ownership moves the project's generation, so a revoked caller is
/// refused on every instance as soon as the invalidation arrives, and within
/// `cache.local_ttl_secs` when Redis cannot carry it. A project that does not exist is not
/// cached.
pub async fn project_read(state: &AppState, project_id: &str, caller: Option<&str>) -> Result<Access> {
    let scope = Scope::Project(project_id.to_owned());
    let facts = state
        .cache
        .get_or_load(Kind::Access, &scope, caller.unwrap_or_default(), || async {
            projects::facts(&state.pool, project_id, caller).await?.ok_or(Error::NotFound("project"))
        })
        .await;
    let facts = match facts {
        Ok(facts) => Some(facts),
        Err(Error::NotFound(_)) => None,
        Err(error) => return Err(error),
    };
    authorize(facts.as_ref(), caller, Action::Read)
}
