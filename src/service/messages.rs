//! A project's chat history: append, and pages (the newest one cached with the project).

use crate::cache::{Kind, Scope};
use crate::db::messages::{self, MessageRow};
use crate::db::projects;
use crate::domain::page::{Keyset, Page};
use crate::domain::{Direction, MessageRole};
use crate::error::Result;
use crate::service::invalidation::{self, Subjects, Write};
use crate::state::AppState;

pub async fn append(
    state: &AppState,
    project_id: &str,
    role: MessageRole,
    content: &str,
    tokens: i32,
) -> Result<MessageRow> {
    let mut tx = state.pool.begin().await?;
    let id = crate::auth::token::new_id();
    let message = messages::append(&mut tx, project_id, &id, role, content, tokens).await?;
    let members = projects::member_ids(&mut *tx, project_id).await?;
    tx.commit().await?;
    let subjects = Subjects { projects: &[project_id], members: &members, ..Subjects::default() };
    invalidation::after(&state.cache, Write::AppendMessage, subjects).await;
    Ok(message)
}

/// One page. The newest page, unfiltered, is what opening a chat shows: it is cached.
pub async fn page(
    state: &AppState,
    project_id: &str,
    role: Option<MessageRole>,
    direction: Direction,
    keyset: Keyset<i64>,
) -> Result<Page<MessageRow>> {
    let load = || async {
        let rows = messages::page(&state.pool, project_id, role, direction, keyset.after, keyset.fetch()).await?;
        Ok(keyset.page(rows, |message| message.cursor))
    };
    if keyset.is_first() && direction == Direction::Older && role.is_none() {
        let scope = Scope::Project(project_id.to_owned());
        let suffix = format!("newest:{}", keyset.limit);
        return state.cache.get_or_load(Kind::FirstMessagePage, &scope, &suffix, load).await;
    }
    load().await
}
