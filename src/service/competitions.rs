//! Competitions: the owner of a PUBLIC project enters it once; anyone lists them by status;
//! the owner closes one (ACTIVE → CLOSED).

use crate::auth::token;
use crate::db::competitions::{self, CompetitionRow, PROJECT_KEY};
use crate::db::projects;
use crate::domain::access::{authorize, Action, ProjectFacts};
use crate::domain::page::{Keyset, Page};
use crate::domain::time::Position;
use crate::domain::CompetitionStatus;
use crate::error::{Error, Result, ResultExt};
use crate::service::invalidation::{self, Subjects, Write};
use crate::state::AppState;

/// Competitions are the owner's business: `Delete` is the one action only the owner holds, so
/// others get the usual answers (404 if they cannot see the project, 401 anonymous, 403
/// otherwise). Returns whether the project is PUBLIC.
async fn owner_only(state: &AppState, project_id: &str, caller: Option<&str>) -> Result<bool> {
    let facts = projects::facts(&state.pool, project_id, caller).await?;
    authorize(facts.as_ref(), caller, Action::Delete)?;
    Ok(facts.is_some_and(|facts| facts.is_public))
}

/// Enters the caller's PUBLIC project, given the facts of the caller's authorization (as its
/// owner: `Action::Delete`). A PRIVATE project is 422, decided again by the insert; a project
/// enters at most once (409, decided by the unique index).
pub async fn enter(state: &AppState, project_id: &str, facts: &ProjectFacts, title: &str) -> Result<CompetitionRow> {
    let private = || Error::Unprocessable("only a PUBLIC project can enter a competition".into());
    if !facts.is_public {
        return Err(private());
    }
    let id = token::new_id();
    let entered = competitions::create(&state.pool, &id, project_id, title)
        .await
        .on_unique_violation(PROJECT_KEY, || Error::Conflict("this project is already in a competition".into()))?;
    if !entered {
        return Err(private());
    }
    invalidation::after(&state.cache, Write::EnterCompetition, Subjects::default()).await;
    competitions::get(&state.pool, &id).await?.ok_or(Error::NotFound("competition"))
}

pub async fn page(
    state: &AppState,
    status: Option<CompetitionStatus>,
    keyset: Keyset<Position>,
) -> Result<Page<CompetitionRow>> {
    let rows = competitions::page(&state.pool, status, keyset.after.as_ref(), keyset.fetch()).await?;
    Ok(keyset.page(rows, |competition| (competition.created_at.0, competition.id.clone())))
}

/// Closes a competition: ACTIVE → CLOSED, final. Owner of the project only; closing a CLOSED
/// competition is 409.
pub async fn close(state: &AppState, id: &str, caller: Option<&str>) -> Result<CompetitionRow> {
    let not_found = || Error::NotFound("competition");
    let project_id = competitions::project_of(&state.pool, id).await?.ok_or_else(not_found)?;
    // A competition of a project the caller cannot see does not exist for them either.
    owner_only(state, &project_id, caller).await.map_err(|error| match error {
        Error::NotFound(_) => not_found(),
        other => other,
    })?;
    if !competitions::close(&state.pool, id).await? {
        return Err(Error::Conflict("the competition is already closed".into()));
    }
    invalidation::after(&state.cache, Write::CloseCompetition, Subjects::default()).await;
    competitions::get(&state.pool, id).await?.ok_or_else(not_found)
}
