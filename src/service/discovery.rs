//! Discovery pages, every one cached under the one discovery generation, keyed by its
//! normalised query.

use crate::cache::{Kind, Scope};
use crate::db::discovery::{self, DiscoveryQuery, DiscoveryRow};
use crate::domain::discovery::{Position, Sort};
use crate::domain::page::{Keyset, Page};
use crate::error::{Error, Result};
use crate::state::AppState;

pub async fn discover(
    state: &AppState,
    sort: Sort,
    project_type: Option<&str>,
    search: Option<&str>,
    keyset: Keyset<Position>,
) -> Result<Page<DiscoveryRow>> {
    if keyset.after.as_ref().is_some_and(|position| !position.fits(sort)) {
        return Err(Error::BadRequest("the cursor belongs to another sort".into()));
    }
    let suffix = serde_json::to_string(&(sort, project_type, search, &keyset.after, keyset.limit))
        .map_err(anyhow::Error::from)?;
    let query = DiscoveryQuery { sort, project_type, search, after: keyset.after.clone(), limit: keyset.fetch() };
    let load = || async {
        let rows = discovery::discover(&state.pool, &query).await?;
        Ok(keyset.page(rows, |entry| entry.position(sort)))
    };
    state.cache.get_or_load(Kind::Discovery, &Scope::Discovery, &suffix, load).await
}
