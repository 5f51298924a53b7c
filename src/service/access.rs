//! The one authorization call of project-scoped requests.

use crate::db::projects;
use crate::domain::access::{authorize, Access, Action, ProjectFacts};
use crate::error::{Error, Result};
use crate::service::reads;
use crate::state::AppState;

/// Reads a project's access facts (fresh on every request, never cached) and checks `action`
/// for the caller: 404 for a project the caller cannot see, 401/403 as the policy says.
pub async fn project(
    state: &AppState,
    project_id: &str,
    caller: Option<&str>,
    action: Action,
) -> Result<(Access, ProjectFacts)> {
    // A write is authorized on the primary; a read may be, within the replicas' lag limit.
    let facts = if action.writes() {
        projects::facts(&state.pool, project_id, caller).await?
    } else {
        reads::run(state, caller, |db| projects::facts(db, project_id, caller)).await?
    };
    let access = authorize(facts.as_ref(), caller, action)?;
    Ok((access, facts.ok_or(Error::NotFound("project"))?))
}
