//! A project's chat history: append, and pages (the newest one cached with the project).

use crate::cache::{Kind, Scope};
use crate::db::messages::{self, MessageRow};
use crate::db::projects;
use crate::domain::page::{Keyset, Page};
use crate::domain::{Direction, MessageRole};
use crate::error::{Error, Result};
use crate::service::invalidation::{self, Subjects, Write};
use crate::service::reads;
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

/// A message as a page carries it: whole, or cut to keep the page within its byte budget.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PagedMessage {
    pub message: MessageRow,
    /// The content was cut; [`one`] reads it whole.
    pub truncated: bool,
}

/// Keeps a page's message content within `budget` bytes: messages go in whole while they fit;
/// the first that does not, and every one after it, is cut (at a character boundary) to what
/// is left of the budget.
pub fn bound(rows: Vec<MessageRow>, budget: usize) -> Vec<PagedMessage> {
    let mut left = budget;
    rows.into_iter()
        .map(|mut message| {
            let truncated = message.content.len() > left;
            if truncated {
                let mut cut = left;
                while !message.content.is_char_boundary(cut) {
                    cut -= 1;
                }
                message.content.truncate(cut);
            }
            left -= message.content.len();
            PagedMessage { message, truncated }
        })
        .collect()
}

/// One message, whole, read for `caller`. 404 when the project has no such message.
pub async fn one(state: &AppState, caller: Option<&str>, project_id: &str, message_id: &str) -> Result<MessageRow> {
    let read = |db| messages::by_id(db, project_id, message_id);
    reads::run(state, caller, read).await?.ok_or(Error::NotFound("message"))
}

/// One page, within `limits.message_page_bytes` of content, read for `caller`. The newest
/// page, unfiltered, is what opening a chat shows: it is cached, bounded.
pub async fn page(
    state: &AppState,
    caller: Option<&str>,
    project_id: &str,
    role: Option<MessageRole>,
    direction: Direction,
    keyset: Keyset<i64>,
) -> Result<Page<PagedMessage>> {
    let read = |db| messages::page(db, project_id, role, direction, keyset.after, keyset.fetch());
    let page = |rows| {
        let Page { items, next_cursor } = keyset.page(rows, |message: &MessageRow| message.cursor);
        Page { items: bound(items, state.settings.limits.message_page_bytes), next_cursor }
    };
    if keyset.is_first() && direction == Direction::Older && role.is_none() {
        let scope = Scope::Project(project_id.to_owned());
        let suffix = format!("newest:{}", keyset.limit);
        let load = || async { Ok(page(read(&state.pool).await?)) };
        return state.cache.get_or_load(Kind::FirstMessagePage, &scope, &suffix, load).await;
    }
    Ok(page(reads::run(state, caller, read).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(content: &str) -> MessageRow {
        MessageRow {
            id: content.chars().take(3).collect(),
            role: MessageRole::User,
            content: content.to_owned(),
            tokens: 0,
            cursor: 1,
            created_at: crate::domain::UtcTime(chrono::NaiveDateTime::default()),
        }
    }

    #[test]
    fn a_page_keeps_whole_messages_while_they_fit_and_cuts_the_rest_at_a_character() {
        let page = bound(vec![message("aaaa"), message("bbbbbb"), message("é-é"), message("cc")], 8);
        let cut: Vec<(&str, bool)> = page.iter().map(|m| (m.message.content.as_str(), m.truncated)).collect();
        // 4 bytes fit; "bbbbbb" gets the 4 left; nothing is left for the rest. "é" is 2 bytes.
        assert_eq!(cut, [("aaaa", false), ("bbbb", true), ("", true), ("", true)]);
        let page = bound(vec![message("aé")], 2);
        assert_eq!((page[0].message.content.as_str(), page[0].truncated), ("a", true), "never inside a character");
        assert!(bound(vec![message("fits")], 4).iter().all(|m| !m.truncated));
    }
}
